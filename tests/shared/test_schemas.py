"""The topic models and the JSON Schema files in schemas/ must not drift."""

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from bounceflow import schemas
from bounceflow.models import TOPIC_MODELS, OutgoingMessage

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schema_files_match_the_models():
    assert schemas.stale(SCHEMA_DIR) == [], "run `bounceflow schemas --write` and commit"


def test_stale_detects_a_changed_file(tmp_path):
    schemas.write_all(tmp_path)
    path = tmp_path / schemas.schema_filename("outgoing")
    path.write_text(path.read_text().replace('"recipient"', '"rcpt"'))
    assert schemas.stale(tmp_path) == ["outgoing"]


@pytest.mark.parametrize("topic", sorted(TOPIC_MODELS))
def test_golden_example_is_valid_for_schema_and_model(topic):
    schema = json.loads((SCHEMA_DIR / schemas.schema_filename(topic)).read_text())
    example = json.loads((SCHEMA_DIR / "examples" / schemas.schema_filename(topic)).read_text())
    jsonschema.Draft202012Validator(schema).validate(example)
    record = TOPIC_MODELS[topic].model_validate(example)
    # What the model writes is valid for the schema too (round trip).
    jsonschema.Draft202012Validator(schema).validate(json.loads(record.to_bytes()))


def test_schema_rejects_what_the_model_rejects():
    schema = json.loads((SCHEMA_DIR / schemas.schema_filename("outgoing")).read_text())
    example = json.loads((SCHEMA_DIR / "examples" / schemas.schema_filename("outgoing")).read_text())
    del example["recipient"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(example)
    with pytest.raises(ValidationError):
        OutgoingMessage.model_validate(example)


def test_unknown_fields_and_versions_are_refused():
    example = json.loads((SCHEMA_DIR / "examples" / schemas.schema_filename("outgoing")).read_text())
    with pytest.raises(ValidationError):
        OutgoingMessage.model_validate({**example, "surprise": 1})
    with pytest.raises(ValidationError):
        OutgoingMessage.model_validate({**example, "schema_version": 2})
