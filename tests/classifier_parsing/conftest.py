"""Fixtures for the bounce parser tests (helpers live in bounce_corpus.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_CLASSIFIER = str(Path(__file__).resolve().parents[2] / "services" / "classifier")
if _CLASSIFIER not in sys.path:  # until the classifier is pip-installed by `make install`
    sys.path.insert(0, _CLASSIFIER)

from classifier_parsing.bounce_corpus import corpus_labels  # noqa: E402


@pytest.fixture(scope="session")
def labels() -> dict[str, dict]:
    return corpus_labels()
