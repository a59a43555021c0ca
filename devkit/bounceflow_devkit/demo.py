"""`make demo`: a simulated internet and a mixed batch of mail through the real stack.

Runs against what `make run` started (same services, same settings; only the
sender's MX resolution points at the MX simulator). It injects a few thousand
messages over SMTP and REST to recipients whose local part tells the
simulator what to do (accept, refuse, defer, bounce with a DSN, reply out of
office, complain, ...), receives the demo account's webhooks for the
duration, waits until the bounces are in ClickHouse and prints the statistics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bounceflow.accounts import Webhook, new_webhook_secret, read_accounts, write_accounts
from bounceflow_devkit.loadgen import Mail, rest_send, simple_mail, smtp_send
from bounceflow_devkit.stack import REPO
from bounceflow_devkit.webhook_sink import WebhookSink

DOMAINS = ("example.com", "example.net", "example.org", "example.edu")
# keyword -> (share of the batch, what comes back: bounce category or None)
MIX = {
    "accept": (0.50, None),
    "dsn-failure": (0.10, "dsn-failure"),
    "mailboxfull": (0.04, "dsn-failure"),
    "refuse-rcpt": (0.08, None),
    "refuse-data": (0.03, None),
    "defer": (0.04, None),
    "dsn-delay": (0.05, "dsn-delay"),
    "autoreply": (0.07, "autoreply"),
    "nonstandard": (0.05, "nonstandard-bounce"),
    "complaint": (0.04, "complaint"),
}
FAILING = frozenset(("dsn-failure", "mailboxfull", "refuse-rcpt", "refuse-data"))


def plan(total: int, seed: int = 7) -> list[tuple[str, str]]:
    """(keyword, recipient) pairs in the proportions of MIX, shuffled."""
    rng = random.Random(seed)
    pairs = []
    for keyword, (share, _) in MIX.items():
        for n in range(max(1, round(total * share))):
            pairs.append((keyword, f"{keyword}+{n}@{rng.choice(DOMAINS)}"))
    rng.shuffle(pairs)
    return pairs


def expected_bounces(pairs: list[tuple[str, str]]) -> int:
    return sum(1 for keyword, _ in pairs if MIX[keyword][1])


def expected_failures(pairs: list[tuple[str, str]]) -> int:
    """Messages that end in the failure log: refused at SMTP time or answered with a failure DSN."""
    return sum(1 for keyword, _ in pairs if keyword in FAILING)


def webhooks_since(calls, since: datetime) -> Counter:
    """This run's webhook calls by path: events that happened at or after `since`.

    The sink also gets what earlier runs left behind (retries still due, a
    backlog the notifier had not worked off when that demo stopped).
    """
    counts: Counter = Counter()
    for call in calls:
        body = json.loads(call.body)
        moment = body.get("received_at") or body.get("occurred_at")
        if moment and datetime.fromisoformat(moment) >= since:
            counts[call.path] += 1
    return counts


def _table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> str:
    header = [title] + [label for _, label in columns]
    body = [[str(r["key"])] + [str(r.get(key, "")) for key, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(("{:<%d}" if i == 0 else "{:>%d}") % w for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*line) for line in body]
    return "\n".join(lines)


class Demo:
    def __init__(self, args) -> None:
        self.args = args
        self.var = REPO / "var"
        credentials = json.loads((self.var / "dev-credentials.json").read_text())
        self.password, self.api_key = credentials["smtp_password"], credentials["api_key"]
        self.api = f"http://127.0.0.1:{args.notifier_port}"

    def stats(self, by: str, since: datetime) -> dict:
        response = httpx.get(f"{self.api}/api/stats", params={"by": by, "from": since.isoformat()},
                             headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30)
        response.raise_for_status()
        return response.json()

    def point_webhooks_at(self, sink: WebhookSink | None, saved: dict | None = None) -> dict:
        """Route the demo account's feedback loops to `sink` (None: restore `saved`)."""
        path = self.var / "accounts.json"
        accounts = read_accounts(path)
        demo = next(a for a in accounts.accounts if a.name == "demo")
        previous = {"bounce_webhook": demo.bounce_webhook, "failure_webhook": demo.failure_webhook}
        if sink is not None:
            secret = new_webhook_secret()
            demo.bounce_webhook = Webhook(url=sink.url("bounces"), secret=secret)
            demo.failure_webhook = Webhook(url=sink.url("failures"), secret=secret)
        else:
            demo.bounce_webhook, demo.failure_webhook = saved["bounce_webhook"], saved["failure_webhook"]
        write_accounts(path, accounts)
        return previous

    async def inject(self, pairs) -> None:
        half = len(pairs) // 2
        smtp_mails = [Mail("info@example.com", [rcpt], simple_mail("info@example.com", rcpt, "demo"))
                      for _, rcpt in pairs[:half]]
        bodies = [{"envelope": "bounces@example.com", "recipient": rcpt, "from": "info@example.com",
                   "to": rcpt, "subject": "demo", "text": "Hello from the bounceflow demo.",
                   "dsn": {"notify": "FAILURE,DELAY"}} for _, rcpt in pairs[half:]]
        smtp, rest = await asyncio.gather(
            smtp_send("127.0.0.1", self.args.smtp_port, smtp_mails, connections=10,
                      username="demo", password=self.password),
            rest_send(f"http://127.0.0.1:{self.args.rest_port}/v1/send", self.api_key, bodies, concurrency=10),
        )
        print(f"injected {smtp.sent} messages over SMTP ({smtp.rate:.0f}/s) and "
              f"{rest.sent} over REST ({rest.rate:.0f}/s)")
        for error in (smtp.errors + rest.errors)[:5]:
            print(f"  error: {error}")

    async def wait_for_bounces(self, since: datetime, want: int) -> dict:
        deadline = time.monotonic() + self.args.wait
        while True:
            totals = (await asyncio.to_thread(self.stats, "category", since))["totals"]
            print(f"\r  bounces in ClickHouse: {totals['bounces']}/{want}, "
                  f"failures: {totals['failures']}, delivered: {totals['delivered']}", end="", flush=True)
            if totals["bounces"] >= want or time.monotonic() > deadline:
                print()
                return totals
            await asyncio.sleep(1)

    async def wait_for_webhooks(self, sink: WebhookSink, since: datetime, want: dict[str, int]) -> None:
        deadline = time.monotonic() + self.args.wait
        while True:
            got = webhooks_since(sink.calls, since)
            print("\r  webhook calls: " + ", ".join(f"{path} {got[path]}/{n}" for path, n in want.items()),
                  end="", flush=True)
            if all(got[path] >= n for path, n in want.items()) or time.monotonic() > deadline:
                print()
                return
            await asyncio.sleep(0.5)

    async def run(self) -> int:
        since = datetime.now(timezone.utc)
        pairs = plan(self.args.messages)
        print(f"bounceflow demo: {len(pairs)} messages, behaviours {dict(Counter(k for k, _ in pairs))}")
        sink = WebhookSink()
        await sink.start()
        saved = self.point_webhooks_at(sink)
        try:
            await asyncio.sleep(1.5)  # the services re-read the accounts file within a second
            await self.inject(pairs)
            await self.wait_for_bounces(since, expected_bounces(pairs))
            await self.wait_for_webhooks(sink, since, {"/bounces": expected_bounces(pairs),
                                                       "/failures": expected_failures(pairs)})
        finally:
            self.point_webhooks_at(None, saved)
            await sink.stop()
        self.report(since, sink)
        return 0

    def report(self, since: datetime, sink: WebhookSink) -> None:
        columns = [("messages", "msgs"), ("delivered", "delivered"), ("failures", "failures"),
                   ("hard", "hard"), ("soft", "soft"), ("bounces", "bounces"),
                   ("autoreplies", "auto-replies"), ("complaints", "complaints")]
        for by in ("category", "reason", "domain"):
            data = self.stats(by, since)
            print()
            print(_table(by, data["rows"] + [data["totals"]], columns))
        log = self.var / "demo-webhooks.jsonl"
        with log.open("w") as fh:
            for call in sink.calls:
                fh.write(json.dumps({"path": call.path, "headers": call.headers,
                                     "body": call.body.decode(errors="replace")}) + "\n")
        paths, ours = Counter(call.path for call in sink.calls), webhooks_since(sink.calls, since)
        print(f"\nwebhook calls received: {dict(ours)} for this run, {dict(paths - ours) or 'none'} left over "
              f"from earlier runs (bodies in {log.relative_to(REPO)})")
        print("\nwhere to look next:")
        print("  .venv/bin/bounceflow stats --by reason          bounce statistics as a table")
        print(f"  curl -H 'Authorization: Bearer <api_key>' '{self.api}/api/bounces?category=complaint'")
        print("  var/log/*.log                                   each service's JSON log")
        print("  docs/topics.md                                  reading the topics with a console consumer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the bounces")
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--rest-port", type=int, default=8080)
    parser.add_argument("--notifier-port", type=int, default=8082)
    args = parser.parse_args(argv)
    if not (REPO / "var" / "dev-credentials.json").exists():
        sys.stderr.write("no var/dev-credentials.json: run `make run` first\n")
        return 1
    return asyncio.run(Demo(args).run())


if __name__ == "__main__":
    sys.exit(main())
