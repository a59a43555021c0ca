"""The committed OpenAPI document of the REST API (`schemas/ingress-openapi.json`).

`python -m bounceflow_ingress.openapi [--write PATH]` prints or writes it; a
test fails when the committed file and the app differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bounceflow.accounts import AccountStore
from bounceflow_ingress.auth_limit import FailureLimiter
from bounceflow_ingress.publisher import Publisher
from bounceflow_ingress.rest_api import create_app
from bounceflow_ingress.settings import IngressSettings

DEFAULT_PATH = "schemas/ingress-openapi.json"


def render(app) -> str:
    """The app's OpenAPI document, as committed."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def document() -> str:
    """The document of an app built with default settings (no Kafka, no accounts needed)."""
    settings = IngressSettings(_env_file=None)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            AccountStore(Path(tmp) / "none.json"),
            Publisher(settings),
            FailureLimiter(1, 1),
            hostname="localhost",
            max_message_size=settings.ingress_max_message_size,
            max_recipients=settings.ingress_max_recipients,
            max_total_bytes=settings.ingress_max_message_size,
            health_checks={},
        )
        return render(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bounceflow_ingress.openapi")
    parser.add_argument("--write", metavar="PATH", nargs="?", const=DEFAULT_PATH)
    args = parser.parse_args(argv)
    text = document()
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
