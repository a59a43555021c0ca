"""The `bounceflow` command line.

Small commands live here; the ones that belong to a service (`classify`,
`stats`, `replay-dlq`) are imported from that service's package only when
called, so the shared package does not depend on the services.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

# command -> (module:function taking argv, help)
DELEGATED = {
    "classify": ("bounceflow_classifier.classify_cli:main", "classify bounce mails, one JSON line per file"),
    "stats": ("bounceflow_notifier.stats_cli:main", "bounce and failure statistics as a table"),
    "replay-dlq": ("bounceflow_notifier.replay:main", "send dead-lettered webhook/forward events again"),
}


def _schemas(args) -> int:
    from bounceflow import schemas

    directory = Path(args.dir)
    if args.write:
        for path in schemas.write_all(directory):
            print(path)
        return 0
    stale = schemas.stale(directory)
    for topic in stale:
        print(f"stale: {directory / schemas.schema_filename(topic)} (run `bounceflow schemas --write`)")
    return 1 if stale else 0


def _ensure_dev_account(args) -> int:
    from bounceflow.accounts import ensure_dev_account

    created = ensure_dev_account(args.accounts, args.credentials)
    print(("created" if created else "exists") + f": account demo ({args.credentials})")
    return 0


def _create_topics(args) -> int:
    from bounceflow.kafka import ensure_topics
    from bounceflow.settings import TOPICS, CommonSettings

    settings = CommonSettings()
    asyncio.run(ensure_topics(settings, list(TOPICS) + list(args.extra)))
    return 0


def _tail(args) -> int:
    from bounceflow.topic_tail import tail
    from bounceflow.settings import CommonSettings

    try:
        return asyncio.run(tail(CommonSettings(), args.topic, from_beginning=args.from_beginning,
                                limit=args.max, idle=args.idle, full=args.full))
    except (BrokenPipeError, KeyboardInterrupt):  # `| head`, Ctrl-C: a normal way to stop
        return 0


def _settings_doc(args) -> int:
    from bounceflow.settings_doc import render

    text = render()
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        target, _ = DELEGATED[argv[0]]
        module, _, func = target.partition(":")
        return getattr(importlib.import_module(module), func)(argv[1:]) or 0

    parser = argparse.ArgumentParser(prog="bounceflow", description="bounceflow command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)

    p = sub.add_parser("schemas", help="check (default) or --write the topic JSON Schemas")
    p.add_argument("--dir", default="schemas")
    p.add_argument("--write", action="store_true")
    p.set_defaults(run=_schemas)

    p = sub.add_parser("ensure-dev-account", help="create the `demo` account if missing")
    p.add_argument("--accounts", default="var/accounts.json")
    p.add_argument("--credentials", default="var/dev-credentials.json")
    p.set_defaults(run=_ensure_dev_account)

    p = sub.add_parser("create-topics", help="create the contract topics (settings from BOUNCEFLOW_*)")
    p.add_argument("extra", nargs="*", help="more topics, e.g. retry and dead-letter topics")
    p.set_defaults(run=_create_topics)

    p = sub.add_parser("tail", help="print a topic's records as JSON lines (MIME shortened)")
    p.add_argument("topic", help="e.g. classified-bounce (the topic prefix is added)")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--max", type=int, default=None, help="stop after this many records")
    p.add_argument("--idle", type=float, default=None, help="stop after this many seconds without a record")
    p.add_argument("--full", action="store_true", help="print *_b64 fields in full")
    p.set_defaults(run=_tail)

    p = sub.add_parser("settings-doc", help="print (or --write) the settings reference")
    p.add_argument("--write", metavar="PATH")
    p.set_defaults(run=_settings_doc)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
