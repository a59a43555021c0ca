"""Where the labelled bounce corpus is, and the import paths of the parser.

The corpus lives next to the repository (`<repo>/../shared/corpus`, or
BOUNCEFLOW_CORPUS); tests read its files and labels, never copy them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for extra in (REPO / "common", REPO / "services" / "classifier"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

CORPUS = Path(os.environ.get("BOUNCEFLOW_CORPUS") or REPO.parent / "shared" / "corpus")


def corpus_bytes(name: str) -> bytes:
    """Raw bytes of corpus file `eml/<name>.eml`."""
    return (CORPUS / "eml" / f"{name}.eml").read_bytes()


def corpus_labels() -> dict[str, dict]:
    """Corpus index keyed by file stem (e.g. 'lhost-postfix-01')."""
    with open(CORPUS / "index.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {Path(r["file"]).stem: r for r in rows}
