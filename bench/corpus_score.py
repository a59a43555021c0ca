"""Score the classifier's parser on the labelled bounce corpus.

Scoring follows shared/corpus/README.md: per recipient record — reason,
status (where the label has one), recipient found (case-insensitive),
hard/soft of failed records; per email — is_bounce and category agreeing
with `kind`. Files marked `duplicate_of` are skipped; files marked
`label_changed_since` are ambiguous and scored separately; files without a
label are counted as unlabelled. Throughput is single-core mails/s over
several passes of the whole corpus, parsing only.

Usage: python bench/corpus_score.py [--corpus DIR] [--json] [--failures] [--passes N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "common", ROOT / "services" / "classifier"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from bounceflow_classifier.parsing import parse_bounce  # noqa: E402

KIND_CATEGORIES = {
    "dsn": {"dsn-failure", "dsn-delay"},
    "non-standard": {"nonstandard-bounce"},
    "arf": {"complaint"},
    "autoreply": {"autoreply"},
    "dsn-success": {"dsn-success"},
}
METRICS = ("reason", "status", "recipient", "hard_soft", "category", "is_bounce")


def default_corpus() -> Path:
    """BOUNCEFLOW_CORPUS, else <repo>/../shared/corpus."""
    env = os.environ.get("BOUNCEFLOW_CORPUS")
    return Path(env) if env else ROOT.parent / "shared" / "corpus"


def load_index(corpus: Path) -> list[dict]:
    """The corpus index, one dict per line."""
    with open(corpus / "index.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _match(records, got):
    by_addr = {(r.recipient or "").lower(): r for r in got.recipients}
    for i, rec in enumerate(records):
        want = (rec.get("recipient") or "").lower()
        mine = by_addr.get(want)
        if mine is None and i < len(got.recipients):
            mine = got.recipients[i]
        yield rec, mine


def score_one(expected: dict, got) -> tuple[dict, list[str]]:
    """(metric → [hits, total], failure notes) for one email."""
    tally = {m: [0, 0] for m in METRICS}
    notes = []

    def count(metric, ok, note):
        tally[metric][1] += 1
        if ok:
            tally[metric][0] += 1
        else:
            notes.append(f"{metric}: {note}")

    count("is_bounce", got.is_bounce == expected["is_bounce"], f"want {expected['is_bounce']} got {got.is_bounce}")
    kind = expected.get("kind")
    if kind in KIND_CATEGORIES:
        count("category", got.category in KIND_CATEGORIES[kind], f"want {kind} got {got.category}")
    found = {(r.recipient or "").lower() for r in got.recipients}
    for rec, mine in _match(expected.get("records") or [], got):
        reason = mine.reason if mine else None
        count("reason", reason == rec["reason"], f"want {rec['reason']} got {reason} [{(rec.get('diagnostic') or '')[:90]}]")
        if rec.get("status"):
            status = mine.status if mine else None
            count("status", status == rec["status"], f"want {rec['status']} got {status}")
        if rec.get("recipient"):
            count("recipient", rec["recipient"].lower() in found, f"want {rec['recipient']} got {sorted(found)}")
        if rec.get("action") == "failed" and rec.get("permanence"):
            want = "hard" if rec["permanence"] == "permanent" else "soft"
            got_bt = mine.bounce_type if mine else None
            count("hard_soft", got_bt == want, f"want {want} got {got_bt}")
    return tally, notes


def score(corpus: Path) -> dict:
    """Accuracy per metric for the clean and the ambiguous subsets."""
    groups = {"clean": {m: [0, 0] for m in METRICS}, "ambiguous": {m: [0, 0] for m in METRICS}}
    failures, counts = [], {"clean": 0, "ambiguous": 0, "duplicate": 0, "unlabelled": 0}
    for row in load_index(corpus):
        if row.get("duplicate_of"):
            counts["duplicate"] += 1
            continue
        expected = row.get("expected")
        got = parse_bounce((corpus / row["file"]).read_bytes())
        if not expected:
            counts["unlabelled"] += 1
            continue
        group = "ambiguous" if row.get("label_changed_since") else "clean"
        counts[group] += 1
        tally, notes = score_one(expected, got)
        for m in METRICS:
            groups[group][m][0] += tally[m][0]
            groups[group][m][1] += tally[m][1]
        failures.extend(f"{group[0]} {row['file']}: {n}" for n in notes)
    result = {"counts": counts, "failures": failures}
    for group, tally in groups.items():
        result[group] = {m: {"hits": h, "total": t, "accuracy": round(h / t, 4) if t else None}
                         for m, (h, t) in tally.items()}
    return result


def throughput(corpus: Path, passes: int) -> dict:
    """Single-core parse rate over `passes` passes of every corpus file."""
    blobs = [p.read_bytes() for p in sorted((corpus / "eml").glob("*.eml"))]
    for raw in blobs:  # warm-up (regex compilation, imports)
        parse_bounce(raw)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(passes):
        for raw in blobs:
            parse_bounce(raw)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start  # on a shared machine the CPU-time rate is the steadier figure
    n = len(blobs) * passes
    return {"mails": n, "seconds": round(elapsed, 3), "mails_per_second": round(n / elapsed, 1),
            "cpu_seconds": round(cpu, 3), "mails_per_cpu_second": round(n / cpu, 1) if cpu else None}


def main(argv: list[str] | None = None) -> int:
    """Print (or emit as JSON) the corpus scores and throughput."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=default_corpus())
    ap.add_argument("--json", action="store_true", help="emit one JSON object")
    ap.add_argument("--failures", action="store_true", help="list every mismatch")
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args(argv)
    result = score(args.corpus)
    result["throughput"] = throughput(args.corpus, args.passes) if args.passes > 0 else None
    if args.json:
        if not args.failures:
            result.pop("failures")
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    if args.failures:
        print("\n".join(result["failures"]))
    print(f"corpus {args.corpus}: {result['counts']}")
    for group in ("clean", "ambiguous"):
        line = ", ".join(f"{m} {v['accuracy'] * 100:.1f}% ({v['hits']}/{v['total']})"
                         for m, v in result[group].items() if v["total"])
        print(f"{group:9}: {line}")
    if result["throughput"]:
        t = result["throughput"]
        print(f"throughput: {t['mails_per_second']} mails/s ({t['mails']} mails in {t['seconds']} s, one core); "
              f"{t['mails_per_cpu_second']} mails per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
