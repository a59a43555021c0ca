"""The whole system under load: the figures issue 8 asks for, in one run.

Starts a Kafka broker and the five services of its own (as `make run` does,
on free ports, chDB in a temp folder), an MX simulator and a webhook endpoint
in this process, then measures:

0. a warm-up (`--warmup` messages, half as many bounces; not reported): a
   fresh broker JVM compiles its hot paths in the first minute or so and
   costs up to twice the CPU per message meanwhile;
1. injection -> delivery: messages/s sustained from SMTP injection
   (`--connections` sessions) until their `delivery-result` records are on
   the topic;
2. bounces -> ClickHouse: bounces/s from the bounce-receiver (as many SMTP
   senders) until their rows are in `bounce_log`;
3. bounce -> webhook latency (p50/p95/p99) at a fixed offered load;
4. peak memory (VmHWM) of each service process.

Prints JSON (and writes it with --json). Everything runs on this machine,
Kafka included; the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from bounceflow.accounts import Account, AccountsFile, Webhook, hash_api_key, hash_password, new_webhook_secret, write_accounts  # noqa: E402
from bounceflow import lifecycle  # noqa: E402
from bounceflow.kafka import ensure_topics  # noqa: E402
from bounceflow.models import DeliveryResult  # noqa: E402
from bounceflow.settings import CommonSettings  # noqa: E402
from bounceflow_devkit.bounce_mail import dsn_failure  # noqa: E402
from bounceflow_devkit.loadgen import Mail, percentile, simple_mail, smtp_send  # noqa: E402
from bounceflow_devkit.stack import SERVICES, Stack, isolated_env  # noqa: E402
from bounceflow_devkit.webhook_sink import WebhookSink  # noqa: E402
from procstat import cpu_seconds, peak_rss_kb  # noqa: E402
from kafka_broker import KafkaBroker, install_jars  # noqa: E402

import httpx  # noqa: E402


def sustained_rate(progress: list[tuple[float, int]], total: int) -> float | None:
    """Items per second between 10% and 90% done: the steady state, without the start
    (connections, first fetches) and the tail (the last batch waiting out its linger)."""
    low = next(((t, done) for t, done in progress if done >= 0.1 * total), None)
    high = next(((t, done) for t, done in progress if done >= 0.9 * total), None)
    if low is None or high is None or high[0] <= low[0]:
        return None
    return round((high[1] - low[1]) / (high[0] - low[0]), 1)


class SystemBench:
    def __init__(self, args, var_dir: Path, bootstrap: str, broker_pid: int | None = None) -> None:
        self.args = args
        self.broker_pid = broker_pid
        self.var_dir = var_dir
        self.password, self.api_key = secrets.token_urlsafe(12), "bf_" + secrets.token_urlsafe(16)
        self.prefix = f"bench{secrets.token_hex(3)}-"
        # Every load comes from 127.0.0.1: lift the receiver's per-IP limits for the bench.
        self.env, self.ports = isolated_env(var_dir, bootstrap, self.prefix, secrets.token_urlsafe(24),
                                            log_level="WARNING", receiver_rate_per_minute="10000000",
                                            receiver_rate_burst="1000000", receiver_max_connections_per_ip="1000")
        self.settings = CommonSettings(kafka_bootstrap=bootstrap, topic_prefix=self.prefix)
        hooks = f"http://127.0.0.1:{self.ports['webhooks']}"
        secret = new_webhook_secret()
        write_accounts(var_dir / "accounts.json", AccountsFile(accounts=[Account(
            name="bench", smtp_username="bench", smtp_password_hash=hash_password(self.password),
            api_key_hashes=[hash_api_key(self.api_key)],
            bounce_webhook=Webhook(url=f"{hooks}/bounces", secret=secret),
        )]))
        # The MX simulator runs as its own process (as in `make run`), not in the load generator's.
        self.env["BOUNCEFLOW_MXSIM_PORT"] = str(self.ports["mx"])
        self.env["BOUNCEFLOW_MXSIM_BOUNCE_RELAY"] = "127.0.0.1:1"  # accept only: phase 2 sends the bounces
        self.stack = Stack(var_dir=var_dir, env=self.env, services=SERVICES)
        self.results: dict = {"kafka": f"single broker on this machine ({bootstrap})"}
        self.read_api = httpx.AsyncClient(timeout=30)  # one kept-alive connection for the polls

    async def bounce_rows(self) -> int:
        """Rows in bounce_log (the read API's count: one query on one table, cheap to poll)."""
        response = await self.read_api.get(f"http://127.0.0.1:{self.ports['notifier_http']}/api/bounces",
                                           params={"limit": 1}, headers={"Authorization": f"Bearer {self.api_key}"})
        return response.json()["total"] if response.status_code == 200 else 0

    def bounce_mails(self, delivered: list[DeliveryResult]) -> list[Mail]:
        """A DSN failure for each delivered message, to its VERP address.

        The email package takes ~2 ms to build one DSN, so one is built and the
        recipient swapped in; the receiver and classifier link a bounce by the
        VERP address it is sent to, and read the failed recipient from the DSN.
        """
        placeholder = "placeholder-recipient@example.com"
        template = dsn_failure(simple_mail("info@example.com", placeholder, "bench", 256), placeholder)
        return [Mail("", [r.mail_from], template.replace(placeholder.encode(), r.recipient.encode()))
                for r in delivered]

    async def injection_to_delivery(self, n: int, first: int = 0, record: bool = True) -> list[DeliveryResult]:
        """Phase 1: SMTP injection until every message has its delivery result.

        `record=False` is the warm-up: the same path, not reported.
        """
        # MAIL FROM:<> : the customer wants no bounces back, so none is forwarded and the
        # webhook figures measure the webhook path alone (forwarding has tests of its own).
        mails = [Mail("", [f"accept+{i}@example.com"],
                      simple_mail("info@example.com", f"accept+{i}@example.com", "bench", 1024))
                 for i in range(first, first + n)]
        consumer = AIOKafkaConsumer(self.settings.topic("delivery-result"), bootstrap_servers=self.settings.kafka_bootstrap,
                                    auto_offset_reset="latest", group_id=None)
        await consumer.start()
        await consumer.seek_to_end()
        results: list[DeliveryResult] = []

        progress: list[tuple[float, int]] = []  # (when, results so far)

        async def collect():
            while len(results) < n:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    results.extend(DeliveryResult.from_bytes(r.value) for r in records)
                progress.append((time.perf_counter(), len(results)))
            return time.perf_counter()

        collector = asyncio.create_task(collect())
        started = time.perf_counter()
        injected = await smtp_send("127.0.0.1", self.ports["ingress_smtp"], mails, connections=self.args.connections,
                                   username="bench", password=self.password)
        try:
            finished = await asyncio.wait_for(collector, self.args.timeout)
        finally:
            await consumer.stop()
        delivered = [r for r in results if r.status == "delivered"]
        if not record:
            return delivered
        self.results["injection"] = {
            "messages": n, "connections": self.args.connections, "message_bytes": 1024,
            "smtp_accept_per_s": round(injected.rate, 1), "smtp_errors": len(injected.errors),
            "smtp_p50_ms": round(1000 * percentile(injected.latencies, 0.5), 1),
            "smtp_p99_ms": round(1000 * percentile(injected.latencies, 0.99), 1),
            "delivered": len(delivered),
            "injection_to_delivery_result_per_s": round(n / (finished - started), 1),
            "injection_to_delivery_result_sustained_per_s": sustained_rate(progress, n),
        }
        return delivered

    async def bounces_to_clickhouse(self, delivered: list[DeliveryResult], record: bool = True) -> None:
        """Phase 2: DSNs at the bounce-receiver until their rows are in bounce_log.

        `record=False` is the warm-up: the same path, not reported.
        """
        bounces = self.bounce_mails(delivered)
        before = await self.bounce_rows()
        progress: list[tuple[float, int]] = []  # (when, rows so far)

        async def watch() -> None:
            deadline = time.perf_counter() + self.args.timeout
            while time.perf_counter() < deadline:
                progress.append((time.perf_counter(), await self.bounce_rows() - before))
                if progress[-1][1] >= len(bounces):
                    return
                await asyncio.sleep(0.25)

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        sent = await smtp_send("127.0.0.1", self.ports["receiver_smtp"], bounces, connections=self.args.connections)
        await watcher
        finished, rows = progress[-1]
        if not record:
            return
        self.results["bounces"] = {
            "bounces": len(bounces), "senders": self.args.connections, "accepted": sent.sent, "rows_in_bounce_log": rows,
            "receiver_accept_per_s": round(sent.rate, 1),
            "receiver_to_clickhouse_per_s": round(rows / (finished - started), 1),
            "receiver_to_clickhouse_sustained_per_s": sustained_rate(progress, len(bounces)),
        }

    async def bounce_to_webhook_latency(self, delivered: list[DeliveryResult], sink: WebhookSink) -> None:
        """Phase 3: bounces at a fixed rate; time from 250 at the receiver to the webhook call."""
        rate, count = self.args.latency_rate, self.args.latency_bounces
        pool = delivered[:count]
        sink.calls.clear()
        sent_at: dict[str, float] = {}
        bounces = self.bounce_mails(pool)
        ids = [r.message_id for r in pool]

        def sent(i: int) -> None:  # the receiver's 250: where a bounce's latency starts
            sent_at[ids[i]] = time.time()

        await smtp_send("127.0.0.1", self.ports["receiver_smtp"], bounces, connections=20, rate=rate, on_sent=sent)
        latency: dict[str, float] = {}
        seen = 0  # calls already looked at
        deadline = time.monotonic() + self.args.timeout
        while len(latency) < len(sent_at) and time.monotonic() < deadline:
            calls, seen = sink.calls[seen:], len(sink.calls)
            for call in calls:
                message_id = json.loads(call.body).get("id") if call.path == "/bounces" else None
                if message_id in sent_at and message_id not in latency:
                    latency[message_id] = call.received_at - sent_at[message_id]
            await asyncio.sleep(0.2)
        latencies = list(latency.values())
        self.results["latency"] = {
            "offered_bounces_per_s": rate, "bounces": len(bounces), "webhooks_received": len(latencies),
            "p50_ms": round(1000 * (percentile(latencies, 0.5) or 0), 1),
            "p95_ms": round(1000 * (percentile(latencies, 0.95) or 0), 1),
            "p99_ms": round(1000 * (percentile(latencies, 0.99) or 0), 1),
        }

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds each process has used so far: the services, the
        Kafka broker (when this bench started it) and this load generator."""
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def pids(self) -> dict[str, int]:
        pids = {spec.name: self.stack.pid(spec) for spec in self.stack.services}
        pids.update({"kafka": self.broker_pid, "load-generator": os.getpid()})
        return {name: pid for name, pid in pids.items() if pid}

    async def profile(self, phase: str) -> list[subprocess.Popen]:
        """With --profile DIR: py-spy records every process of `cpu_seconds` (raw, GIL
        holders only) into DIR/<phase>.<process>.txt until `stop_profile`.

        py-spy's own CPU shares the cores, so rates fall while profiling: read
        the shares of a profile, not the rates of that run."""
        if not self.args.profile:
            return []
        self.args.profile.mkdir(parents=True, exist_ok=True)
        spies = []
        for name, pid in self.pids().items():
            if name == "kafka":
                continue
            spies.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-r", "100", "--gil", "-f", "raw",
                 "-o", str(self.args.profile / f"{phase}.{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        await asyncio.sleep(1.0)  # py-spy attaches before the phase starts
        return spies

    @staticmethod
    def stop_profile(spies: list[subprocess.Popen]) -> None:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(30)

    def cpu_during(self, phase: str, before: dict[str, float]) -> None:
        after = self.cpu_seconds()
        self.results.setdefault("cpu_seconds", {})[phase] = {
            name: round(after[name] - before.get(name, 0), 1) for name in after}

    def peak_memory(self) -> None:
        memory = {}
        for spec in self.stack.services:
            pid = self.stack.pid(spec)
            kb = peak_rss_kb(pid) if pid else None
            if kb is not None:
                memory[spec.name] = round(kb / 1024, 1)
        self.results["peak_rss_mib"] = memory

    async def run(self) -> dict:
        await ensure_topics(self.settings)
        sink = WebhookSink(port=self.ports["webhooks"])
        await sink.start()
        await asyncio.to_thread(self.stack.start)
        try:
            # Warm-up: the first messages through a fresh process pay for imports, JIT
            # (the broker's JVM), caches and new connections; the goals are sustained rates.
            warm = self.args.warmup
            spare = await self.injection_to_delivery(warm, first=0, record=False) if warm else []
            spies, cpu = await self.profile("injection"), self.cpu_seconds()
            delivered = await self.injection_to_delivery(self.args.messages, first=warm)
            self.cpu_during("injection", cpu)
            self.stop_profile(spies)
            if "bounces" in self.args.phases:
                if spare:
                    await self.bounces_to_clickhouse(spare[: warm // 2], record=False)
                spies, cpu = await self.profile("bounces"), self.cpu_seconds()
                await self.bounces_to_clickhouse(delivered[: self.args.bounces])
                self.cpu_during("bounces", cpu)
                self.stop_profile(spies)
            if "latency" in self.args.phases:
                cpu = self.cpu_seconds()
                await self.bounce_to_webhook_latency(delivered[self.args.bounces:], sink)
                self.cpu_during("latency", cpu)
            self.peak_memory()
        finally:
            await asyncio.to_thread(self.stack.stop)
            await sink.stop()
            await self.read_api.aclose()
        return self.results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000, help="phase 1 messages (also feeds phases 2, 3)")
    parser.add_argument("--bounces", type=int, default=8000, help="phase 2 bounces")
    parser.add_argument("--latency-rate", type=float, default=200.0, help="phase 3 offered bounces/s")
    parser.add_argument("--latency-bounces", type=int, default=2000, help="phase 3 bounces")
    parser.add_argument("--connections", type=int, default=50,
                        help="SMTP sessions of the load generator (phases 1, 2), as a fleet of sending MTAs opens")
    parser.add_argument("--warmup", type=int, default=3000,
                        help="messages (and half as many bounces) through the system before measuring")
    parser.add_argument("--phases", type=lambda text: set(text.split(",")), default={"injection", "bounces", "latency"},
                        help="comma list of injection,bounces,latency (injection always runs: it feeds the others)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--broker-pid", type=int, help="with --bootstrap: that broker's pid, for its CPU figures")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of phases 1 and 2 into this folder (slows the run)")
    args = parser.parse_args(argv)
    assert args.messages >= args.bounces + args.latency_bounces, "phase 1 must deliver enough messages"
    with tempfile.TemporaryDirectory(prefix="bounceflow-bench-") as tmp:
        broker = None
        bootstrap = args.bootstrap
        if not bootstrap:
            install_jars()
            broker = KafkaBroker(Path(tmp) / "kafka")
            broker.start()
            bootstrap = broker.bootstrap
        try:
            var_dir = Path(tmp) / "var"
            var_dir.mkdir()
            results = lifecycle.run(SystemBench(args, var_dir, bootstrap, broker.pid if broker else args.broker_pid).run())
        finally:
            if broker:
                broker.stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
