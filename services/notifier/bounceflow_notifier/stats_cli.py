"""`bounceflow stats`: the read API's statistics as a table in the terminal.

It asks the running notifier (`GET /api/stats`) rather than opening
ClickHouse itself: with chDB only the notifier may open the data path.
The API key comes from `--api-key`, `BOUNCEFLOW_API_KEY`, or the
development credentials that `make run` writes (`var/dev-credentials.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

COLUMNS = (
    ("key", "{}", None),
    ("messages", "{:,}", "msgs"),
    ("delivered", "{:,}", None),
    ("failures", "{:,}", None),
    ("hard", "{:,}", None),
    ("soft", "{:,}", None),
    ("bounces", "{:,}", None),
    ("delivery_rate", "{:.1%}", "delivered%"),
    ("failure_rate", "{:.1%}", "failed%"),
    ("bounce_rate", "{:.1%}", "bounced%"),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bounceflow stats", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("BOUNCEFLOW_NOTIFIER_URL", "http://127.0.0.1:8082"),
                        help="notifier read API (default %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("BOUNCEFLOW_API_KEY"),
                        help="API key (default: $BOUNCEFLOW_API_KEY, else --credentials)")
    parser.add_argument("--credentials", default="var/dev-credentials.json",
                        help="JSON file with an `api_key` (default %(default)s)")
    parser.add_argument("--days", type=int, default=30, help="period ending now (default %(default)s)")
    parser.add_argument("--by", choices=("day", "domain", "reason", "category"), default="day")
    parser.add_argument("--domain", help="only this recipient domain")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    return parser.parse_args(argv)


def render_table(stats: dict[str, Any]) -> str:
    """The stats response as an aligned text table with a totals line."""
    header = [label or name.replace("_", " ") for name, _, label in COLUMNS]
    header[0] = stats["by"]
    body = [[_cell(row, name, fmt) for name, fmt, _ in COLUMNS] for row in stats["rows"]]
    total = [_cell(stats["totals"], name, fmt) for name, fmt, _ in COLUMNS]
    total[0] = "total"
    widths = [max(len(r[i]) for r in [header, *body, total]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "  ".join("-" * w for w in widths)
    title = f"account {stats['account']}: {stats['from'][:10]} .. {stats['to'][:10]}, by {stats['by']}"
    rows = [line(r) for r in body] or ["(no data in this period)"]
    return "\n".join([title, "", line(header), rule, *rows, rule, line(total)]) + "\n"


def _cell(row: dict[str, Any], name: str, fmt: str) -> str:
    value = row.get(name)
    if value is None:
        return "-"
    if value == "" and name == "key":
        return "(none)"
    return fmt.format(value)


def api_key(args: argparse.Namespace) -> str | None:
    if args.api_key:
        return args.api_key
    path = Path(args.credentials)
    if path.exists():
        return json.loads(path.read_text()).get("api_key")
    return None


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of `bounceflow stats`; returns the exit code."""
    out = out or sys.stdout
    args = parse_args(sys.argv[1:] if argv is None else argv)
    key = api_key(args)
    if not key:
        print(f"no API key: pass --api-key, set BOUNCEFLOW_API_KEY, or create {args.credentials}", file=sys.stderr)
        return 2
    params = {"by": args.by, "days": args.days}
    if args.domain:
        params["domain"] = args.domain
    try:
        response = httpx.get(f"{args.url.rstrip('/')}/api/stats", params=params,
                             headers={"Authorization": f"Bearer {key}"}, timeout=30)
    except httpx.HTTPError as exc:
        print(f"cannot reach the notifier at {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"{args.url} answered {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    stats = response.json()
    out.write(json.dumps(stats, indent=2) + "\n" if args.json else render_table(stats))
    return 0
