"""`bounceflow tail` shows a topic's committed records, MIME shortened."""

import base64
import io
import json

from aiokafka import AIOKafkaProducer

from bounceflow.settings import CommonSettings
from bounceflow.topic_tail import render, tail
from kafka_broker import create_topics


def test_render_shortens_base64_fields_and_keeps_non_json():
    value = json.dumps({"message_id": "m1", "mime_b64": base64.b64encode(b"x" * 300).decode(),
                        "nested": {"raw_b64": "A" * 100}}).encode()
    line = json.loads(render(b"m1", value, 2, 7))
    assert line["key"] == "m1" and (line["partition"], line["offset"]) == (2, 7)
    assert line["value"]["mime_b64"].endswith("(400 chars)")
    assert line["value"]["nested"]["raw_b64"].endswith("(100 chars)")
    assert json.loads(render(None, value, 0, 0, full=True))["value"]["mime_b64"] == json.loads(value)["mime_b64"]
    assert json.loads(render(None, b"\xffnot json", 0, 0))["value"] == "\ufffdnot json"


async def test_tail_reads_from_the_beginning_and_stops_at_max(kafka_broker, topic_prefix):
    settings = CommonSettings(kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix)
    await create_topics(kafka_broker.bootstrap, [settings.topic("outgoing")], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(settings.topic("outgoing"), json.dumps({"n": i}).encode(), key=f"m{i}".encode())
    finally:
        await producer.stop()
    out = io.StringIO()
    await tail(settings, "outgoing", from_beginning=True, limit=2, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["key"], line["value"]) for line in lines] == [("m0", {"n": 0}), ("m1", {"n": 1})]
