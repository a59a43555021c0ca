"""`make bench`: every benchmark in one run, one report.

Starts one Kafka broker on this machine for all of them, runs each bench
script with `--json`, and writes bench/results/report.json and report.md:
a headline table against the goals of the issues, then every figure each
bench produced. A bench that fails is reported as failed, with its output
tail; the others still run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from kafka_broker import KafkaBroker, install_jars  # noqa: E402

# name -> (script, extra arguments, time limit in seconds). The system bench runs
# last: the component benches before it warm up the broker's JIT, which on a fresh
# JVM cost the broker twice the CPU per message for the first minute or so.
BENCHES = {
    "corpus": ("corpus_score.py", ["--passes", "3"], 600),
    "ingress": ("ingress_bench.py", [], 900),
    "sender": ("sender_bench.py", [], 900),
    "receiver": ("receiver_bench.py", [], 600),
    "classifier_stream": ("classifier_stream_bench.py", [], 900),
    "notifier": ("notifier_bench.py", [], 900),
    "webhooks": ("webhooks_bench.py", [], 900),
    "system": ("system_bench.py", [], 1800),
}
NEEDS_KAFKA = set(BENCHES) - {"corpus"}


def run_bench(name: str, broker: KafkaBroker) -> dict:
    script, extra, limit = BENCHES[name]
    out = RESULTS / f"{name}.json"
    command = [sys.executable, str(ROOT / "bench" / script), *extra]
    if name == "system":
        command += ["--broker-pid", str(broker.pid)]  # the broker's CPU in the system figures
    if name in NEEDS_KAFKA:
        command += ["--bootstrap", broker.bootstrap, "--json", str(out)]
    else:
        command += ["--json"]
    started = time.monotonic()
    print(f"bench: {name} ...", flush=True)
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"no result within {limit}s"}
    seconds = round(time.monotonic() - started, 1)
    if proc.returncode != 0:
        return {"status": "failed", "seconds": seconds, "error": (proc.stdout + proc.stderr)[-3000:]}
    if name not in NEEDS_KAFKA:
        out.write_text(proc.stdout)
    try:
        data = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return {"status": "failed", "seconds": seconds, "error": f"unreadable result: {exc}"}
    return {"status": "ok", "seconds": seconds, "result": data}


def find(data, *path, default=None):
    """data[path[0]][path[1]]..., or default."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def headline(report: dict) -> list[tuple[str, str, str]]:
    """(figure, goal, measured) rows for the goals the issues set."""
    system = find(report, "benches", "system", "result", default={})
    corpus = find(report, "benches", "corpus", "result", default={})

    def pct(value):
        return f"{100 * value:.1f}%" if isinstance(value, (int, float)) and value <= 1 else str(value)

    def rate(phase: str, key: str) -> str:
        return (f"{find(system, phase, key + '_sustained_per_s')} sustained "
                f"({find(system, phase, key + '_per_s')} over the whole run)")

    rows = [
        ("SMTP injection to delivery-result (msg/s)", ">= 1,000", rate("injection", "injection_to_delivery_result")),
        ("bounce-receiver to ClickHouse (bounces/s)", ">= 1,000", rate("bounces", "receiver_to_clickhouse")),
        ("bounce to webhook p99 at 200 bounces/s (ms)", "< 500", str(find(system, "latency", "p99_ms"))),
    ]
    for metric, goal in (("reason", ">= 95%"), ("recipient", ">= 99%"), ("category", ">= 97%"),
                         ("hard_soft", ">= 97%"), ("status", "")):
        rows.append((f"corpus {metric} accuracy", goal, pct(find(corpus, "clean", metric, "accuracy"))))
    throughput = find(corpus, "throughput", default={})
    rows.append(("parse throughput, one core (mails/s)", ">= 2,500", json.dumps(throughput)))
    return rows


def flatten(data, prefix=""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from flatten(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        if all(not isinstance(v, (dict, list)) for v in data):
            yield prefix.rstrip("."), ", ".join(map(str, data))
        else:
            for i, value in enumerate(data):
                yield from flatten(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), data


def markdown(report: dict) -> str:
    lines = ["# bounceflow benchmark report", "",
             f"{report['when']} on {report['machine']}. {report['note']}", "",
             "| figure | goal | measured |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in headline(report)]
    for name, bench in report["benches"].items():
        lines += ["", f"## {name} ({bench['status']}, {bench.get('seconds', '?')} s)", ""]
        if bench["status"] != "ok":
            lines += ["```", bench["error"], "```"]
            continue
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in flatten(bench["result"]) if not isinstance(v, str) or len(v) < 120]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "note": "Kafka (one KRaft broker), the services, the MX simulator, the webhook endpoint and the load "
                "generators all run on this machine. Sustained = items/s between 10% and 90% done; the services "
                "log at WARNING; the system bench's load generator uses 50 SMTP sessions (see bench/system_bench.py).",
        "benches": {},
    }
    install_jars()
    with tempfile.TemporaryDirectory(prefix="bounceflow-bench-kafka-") as tmp:
        with KafkaBroker(Path(tmp)) as broker:
            for name in names:
                report["benches"][name] = run_bench(name, broker)
                print(f"bench: {name} {report['benches'][name]['status']}", flush=True)
    (RESULTS / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "report.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(b["status"] == "ok" for b in report["benches"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
