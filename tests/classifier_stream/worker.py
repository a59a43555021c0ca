"""Run `python -m bounceflow_classifier` as a subprocess, and read topics back, for the live tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_broker import free_ports


class ClassifierWorker:
    """One worker process; its JSON log goes to `log_path`."""

    def __init__(self, bootstrap: str, prefix: str, data_dir: Path, log_path: Path, **settings: str) -> None:
        self.http_port = free_ports(1)[0]
        self.log_path = log_path
        self.env = {
            **os.environ,
            "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "BOUNCEFLOW_TOPIC_PREFIX": prefix,
            "BOUNCEFLOW_CLASSIFIER_DATA_DIR": str(data_dir),
            "BOUNCEFLOW_CLASSIFIER_HTTP_PORT": str(self.http_port),
            "BOUNCEFLOW_CLASSIFIER_SESSION_TIMEOUT": "6",
            **{f"BOUNCEFLOW_{k.upper()}": v for k, v in settings.items()},
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "ClassifierWorker":
        """Start and wait until `/health` answers 200."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bounceflow_classifier"], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while self.health() != 200:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"worker not healthy after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def health(self) -> int:
        return self.get("/health")[0]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class TopicReader:
    """Reads every partition of a topic from the beginning, without a consumer group."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = 4) -> None:
        self.topic = topic
        self.partitions = partitions
        self.records: list = []
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                          auto_offset_reset="earliest")

    async def start(self) -> "TopicReader":
        await self._consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return self

    async def stop(self) -> None:
        await self._consumer.stop()

    async def until(self, done: Callable[[list], bool], timeout: float) -> list:
        """Poll until `done(records)` holds; raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.topic}: condition not met after {timeout}s ({len(self.records)} records)")
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batch.values():
                self.records.extend(records)
        return self.records


async def wait_committed(admin, group: str, end_offsets: dict, timeout: float) -> None:
    """Poll until `group` committed at least `end_offsets` on every non-empty partition."""
    deadline = time.monotonic() + timeout
    while True:
        committed = await admin.list_consumer_group_offsets(group)
        if all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in end_offsets.items()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} did not commit {end_offsets} in {timeout}s: {committed}")
        await asyncio.sleep(0.2)
