"""JSON Schema files for the topics, generated from `bounceflow.models`.

`schemas/<topic>.v<N>.json` is what non-Python consumers read; the pydantic
models are the source. `bounceflow schemas --write` regenerates the files and
a test fails when a committed file differs from what the models produce.
"""

from __future__ import annotations

import json
from pathlib import Path

from bounceflow.models import SCHEMA_VERSION, TOPIC_MODELS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def topic_schema(topic: str) -> dict:
    """The JSON Schema of one topic's payload."""
    model = TOPIC_MODELS[topic]
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://bounceflow.dev/schemas/{topic}.v{SCHEMA_VERSION}.json",
        "x-kafka-topic": topic,
        **schema,
    }


def schema_filename(topic: str) -> str:
    return f"{topic}.v{SCHEMA_VERSION}.json"


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    """(Re)write every topic schema into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in TOPIC_MODELS:
        path = directory / schema_filename(topic)
        path.write_text(render(topic_schema(topic)))
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Topics whose committed schema file differs from the models."""
    return [
        topic
        for topic in TOPIC_MODELS
        if not (directory / schema_filename(topic)).exists()
        or (directory / schema_filename(topic)).read_text() != render(topic_schema(topic))
    ]
