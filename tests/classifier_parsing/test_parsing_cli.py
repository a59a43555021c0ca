"""The `classify` command's contract, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from classifier_parsing.bounce_corpus import CORPUS, REPO

TOP_FIELDS = {"file", "is_bounce", "category", "bounce_type", "reason", "status", "smtp_code", "recipient",
              "diagnostic", "remote_mta", "feedback_type", "recipients"}


def run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "common"), str(REPO / "services" / "classifier")]))
    return subprocess.run([sys.executable, "-m", "bounceflow_classifier.classify_cli", *args],
                          input=stdin, capture_output=True, env=env, check=False)


def test_one_json_line_per_input_and_exit_zero(tmp_path: Path):
    bounce = CORPUS / "eml" / "lhost-qmail-01.eml"
    missing = tmp_path / "missing.eml"
    proc = run([str(bounce), str(missing), "-"], stdin=(CORPUS / "eml" / "arf-02.eml").read_bytes())
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)

    assert TOP_FIELDS <= set(first) and "error" not in first
    assert first["file"] == str(bounce)
    assert first["category"] == "nonstandard-bounce" and first["is_bounce"] is True
    assert first["reason"] == "userunknown" and first["bounce_type"] == "hard"
    assert first["recipient"] == "kijitora@example.ne.jp"
    rec = first["recipients"][0]
    assert TOP_FIELDS - {"recipients"} | {"action"} <= set(rec)
    assert rec["action"] == "failed"

    assert second["file"] == str(missing)
    assert "error" in second and second["category"] == "unknown" and second["recipients"] == []

    assert third["file"] == "-"
    assert third["category"] == "complaint" and third["feedback_type"] == "abuse"


def test_unparseable_bytes_still_give_a_line():
    proc = run(["-"], stdin=b"\x00\xff garbage")
    assert proc.returncode == 0
    record = json.loads(proc.stdout)
    assert record["category"] == "unknown" and record["is_bounce"] is False
