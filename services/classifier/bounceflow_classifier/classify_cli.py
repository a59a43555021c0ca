"""`bounceflow classify FILE...`: classify returned mails from files or stdin.

This is the contract the classifier is measured by: one JSON object per
input, one per line, always exit 0 (an unreadable file gets `"error"`).
See docs/classify.md.
"""

from __future__ import annotations

import json
import sys
from typing import IO

from bounceflow.models import Classification

from .parsing import parse_bounce

FIELDS = ("is_bounce", "category", "bounce_type", "reason", "status", "smtp_code", "recipient",
          "diagnostic", "remote_mta", "feedback_type")
RECIPIENT_FIELDS = ("recipient", "action", "status", "smtp_code", "reason", "bounce_type", "diagnostic",
                    "remote_mta")


def to_record(name: str, result: Classification) -> dict:
    """The CLI's JSON object for one classified input."""
    record: dict = {"file": name}
    record.update({f: getattr(result, f) for f in FIELDS})
    record["recipients"] = [
        {"file": name, "is_bounce": result.is_bounce, "category": result.category,
         **{f: getattr(r, f) for f in RECIPIENT_FIELDS}, "feedback_type": result.feedback_type}
        for r in result.recipients
    ]
    if result.error:
        record["error"] = result.error
    return record


def _error_record(name: str, error: str) -> dict:
    record: dict = {"file": name, **{f: None for f in FIELDS}, "recipients": []}
    record.update(is_bounce=False, category="unknown", error=error)
    return record


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


def run_classify(paths: list[str], out: IO[str] = sys.stdout) -> int:
    """Classify each path ('-' = stdin) and print one JSON line per input; returns 0."""
    for path in paths or ["-"]:
        try:
            raw = _read(path)
        except OSError as exc:
            record = _error_record(path, f"{type(exc).__name__}: {exc.strerror or exc}")
        else:
            record = to_record(path, parse_bounce(raw))
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m bounceflow_classifier.classify_cli FILE...`."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m bounceflow_classifier.classify_cli FILE... ('-' reads stdin)")
        return 0
    return run_classify(args)


if __name__ == "__main__":
    sys.exit(main())
