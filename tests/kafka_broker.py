"""A real single-node KRaft Kafka broker for tests and scripts (no Docker).

Same jars (var/kafka/lib, from ``scripts/kafka.sh install``), same config
template (kafka/server.properties.template), same JVM options, log4j2 config
and readiness probe (kafka/) as ``scripts/kafka.sh``; only the ports and the
directory differ, so tests can run next to a ``make run`` broker.

    broker = KafkaBroker(tmp_dir)     # free ports picked now
    broker.start()                    # formats tmp_dir/data once, waits until ready
    broker.bootstrap                  # "127.0.0.1:PORT"
    broker.restart()                  # same ports, same data
    broker.stop()

Standalone: ``python tests/kafka_broker.py [DIR]`` runs one until Ctrl-C.
Only the stdlib is needed, except for ``create_topics`` (aiokafka).
"""
from __future__ import annotations

import asyncio
import atexit
import base64
import importlib.util
import os
import re
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[1]
KAFKA_CONF = ROOT / "kafka"
TEMPLATE = KAFKA_CONF / "server.properties.template"
LIB_DIR = ROOT / "var" / "kafka" / "lib"
KAFKA_SH = ROOT / "scripts" / "kafka.sh"

_spec = importlib.util.spec_from_file_location("bounceflow_kafka_probe", KAFKA_CONF / "probe.py")
_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_probe)
is_ready = _probe.is_ready  # (host, port, timeout=2.0) -> bool


class KafkaBrokerError(RuntimeError):
    """The broker could not be installed, formatted, started or stopped."""


def install_jars(timeout: float = 600) -> None:
    """Resolve the broker jars (``scripts/kafka.sh install``; a no-op when present)."""
    try:
        proc = subprocess.run(["bash", str(KAFKA_SH), "install"], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise KafkaBrokerError(f"scripts/kafka.sh install took more than {timeout}s") from exc
    if proc.returncode != 0:
        raise KafkaBrokerError(f"scripts/kafka.sh install failed:\n{proc.stdout}{proc.stderr}")


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def render_config(broker_port: int, controller_port: int, data_dir: Path) -> str:
    values = {"BROKER_PORT": str(broker_port), "CONTROLLER_PORT": str(controller_port),
              "DATA_DIR": str(data_dir)}
    return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], TEMPLATE.read_text())


def jvm_options() -> list[str]:
    lines = (KAFKA_CONF / "jvm.options").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def random_cluster_id() -> str:
    # Kafka's format: 16 random bytes, base64url, no padding; a leading '-'
    # would be read as an option by StorageTool.
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


_live: "weakref.WeakSet[KafkaBroker]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    # Safety net: never leave a JVM behind when a test run dies early.
    for broker in list(_live):
        try:
            broker.stop(timeout=10)
        except Exception:
            pass


class KafkaBroker:
    """One combined broker+controller JVM rooted at ``base_dir``.

    ``base_dir/data`` is the log dir, ``base_dir/server.properties`` the
    rendered config, ``base_dir/kafka.log`` the broker's output.
    """

    host = "127.0.0.1"
    managed = True  # vs ExternalKafka: this one can be stopped/restarted

    def __init__(self, base_dir: str | os.PathLike, port: int | None = None,
                 controller_port: int | None = None, *, start_timeout: float = 60.0,
                 stop_timeout: float = 30.0) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.data_dir = self.base_dir / "data"
        self.config_path = self.base_dir / "server.properties"
        self.log_path = self.base_dir / "kafka.log"
        if port is None or controller_port is None:
            picked = free_ports(2)
            port = port or picked[0]
            controller_port = controller_port or picked[1]
        self.port = port
        self.controller_port = controller_port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _run_errors(self, limit: int = 10) -> str:
        """ERROR lines of the latest start: the cause is often far above the tail."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        run = text.rsplit("===== KafkaBroker start", 1)[-1].splitlines()
        return "\n".join([ln for ln in run if re.search(r"ERROR|FATAL|Exception", ln)][:limit])

    def _fail(self, what: str) -> KafkaBrokerError:
        return KafkaBrokerError(
            f"{what}\n----- errors in this run ({self.log_path}) -----\n{self._run_errors()}"
            f"\n----- last lines -----\n{self.log_tail()}")

    def _log_line(self, text: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(f"===== {text} {time.strftime('%Y-%m-%dT%H:%M:%S')} =====\n")

    def _format_if_needed(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [_java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
               f"-Dlog4j2.configurationFile={KAFKA_CONF / 'log4j2.properties'}",
               "-cp", f"{LIB_DIR}/*", "kafka.tools.StorageTool", "format",
               "-t", random_cluster_id(), "-c", str(self.config_path), "--ignore-formatted"]
        with open(self.log_path, "a") as log:
            try:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=self.start_timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        if rc != 0:
            raise self._fail(f"formatting {self.data_dir} failed ({rc})")

    def start(self) -> "KafkaBroker":
        """Start (formatting the data dir the first time) and wait until ready."""
        if self.is_running():
            return self
        if not (LIB_DIR / ".installed").exists():
            raise KafkaBrokerError(f"no Kafka jars in {LIB_DIR}: run scripts/kafka.sh install "
                                   "(or call install_jars())")
        if is_ready(self.host, self.port, timeout=0.5):
            raise KafkaBrokerError(f"something already serves Kafka on {self.bootstrap}")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.port, self.controller_port, self.data_dir))
        self._log_line(f"KafkaBroker start port {self.port}")
        self._format_if_needed()
        cmd = [_java(), *jvm_options(),
               f"-Dlog4j2.configurationFile={KAFKA_CONF / 'log4j2.properties'}",
               "-cp", f"{LIB_DIR}/*", "kafka.Kafka", str(self.config_path)]
        with open(self.log_path, "a") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        _live.add(self)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the broker serves metadata; on failure stop it and raise with the log tail."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not is_ready(self.host, self.port, timeout=1.0):
            if not self.is_running():
                code = self._proc.returncode if self._proc else None
                raise self._fail(f"Kafka broker on {self.bootstrap} exited during startup (exit {code})")
            if time.monotonic() >= deadline:
                self.stop()
                raise self._fail(f"Kafka broker on {self.bootstrap} not ready after {timeout:.0f}s")
            time.sleep(0.1)

    def stop(self, timeout: float | None = None) -> None:
        """Graceful SIGTERM (controlled shutdown); SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        _live.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self) -> "KafkaBroker":
        """Stop and start again on the same ports and data (clients just reconnect)."""
        self.stop()
        return self.start()

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<KafkaBroker {self.bootstrap} {state} {self.base_dir}>"


class ExternalKafka:
    """A broker someone else runs (BOUNCEFLOW_TEST_KAFKA): bootstrap only, no lifecycle."""

    managed = False

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def restart(self):
        raise KafkaBrokerError("cannot restart an external broker (BOUNCEFLOW_TEST_KAFKA is set)")

    def __repr__(self) -> str:
        return f"<ExternalKafka {self.bootstrap}>"


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 4,
                        timeout: float = 30.0) -> None:
    """Create topics (replication 1; existing ones are fine) and wait until every
    partition has a leader, so producing right away does not race the controller."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    names = list(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(n, partitions, 1) for n in names],
                                         timeout_ms=int(timeout * 1000))
        for err in resp.topic_errors:
            name, code = err[0], err[1]
            if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS
                raise KafkaBrokerError(f"creating topic {name!r} failed: {err}")
        deadline = time.monotonic() + timeout
        while True:
            topics = await admin.describe_topics(names)
            if len(topics) == len(names) and all(
                t["error_code"] == 0 and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"]) for t in topics
            ):
                return
            if time.monotonic() >= deadline:
                raise KafkaBrokerError(f"topics {names} have no leaders after {timeout}s: {topics}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


if __name__ == "__main__":
    import sys
    import tempfile

    install_jars()
    base = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="bounceflow-kafka-")
    with KafkaBroker(base) as b:
        print(f"Kafka ready on {b.bootstrap} (dir {base}); Ctrl-C stops it", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
