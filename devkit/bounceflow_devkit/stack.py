"""The local stack: the five services (and an MX simulator) as processes.

`make run` / `make stop` / `make status` call this module; the end-to-end
tests use the same `Stack` with their own ports, data folder and topic
prefix, so what the tests run is what a developer runs. Kafka is not started
here (scripts/kafka.sh owns it) but its address is passed to every service.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one process and how to tell it is up."""

    name: str
    module: str
    http_port_key: str | None  # BOUNCEFLOW_<key> of its /health port
    default_http_port: int | None
    listens: tuple[tuple[str, str, int], ...] = ()  # (label, env key, default port)
    args: tuple[str, ...] = ()  # "{key}" is replaced by the BOUNCEFLOW_<KEY> setting


SERVICES = (
    ServiceSpec("mx-simulator", "bounceflow_devkit.mx_simulator", None, None,
                (("SMTP (simulated remote MX)", "mxsim_port", 2600),),
                ("--port", "{mxsim_port}", "--bounce-relay", "{mxsim_bounce_relay}")),
    ServiceSpec("notifier", "bounceflow_notifier", "notifier_http_port", 8082,
                (("read API", "notifier_http_port", 8082),)),
    ServiceSpec("classifier", "bounceflow_classifier", "classifier_http_port", 8084),
    ServiceSpec("sender", "bounceflow_sender", "sender_http_port", 8081),
    ServiceSpec("bounce-receiver", "bounceflow_bounce_receiver", "receiver_http_port", 8083,
                (("SMTP (bounces)", "receiver_smtp_port", 2526),)),
    ServiceSpec("ingress", "bounceflow_ingress", "ingress_http_port", 8080,
                (("SMTP injection", "ingress_smtp_port", 2525), ("REST", "ingress_http_port", 8080))),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _get(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """Per-installation secrets under var/ (never in the repo), created once."""
    if path.exists():
        return json.loads(path.read_text())
    values = {"BOUNCEFLOW_VERP_SECRETS": secrets.token_urlsafe(32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh, indent=2)
    return values


@dataclass
class Stack:
    """Starts, watches and stops the service processes of one installation."""

    var_dir: Path = REPO / "var"
    env: dict[str, str] = field(default_factory=dict)  # BOUNCEFLOW_* for every service
    services: tuple[ServiceSpec, ...] = SERVICES
    python: str = sys.executable
    # Processes started by this object (not those found by pid file), for exit codes.
    _children: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    def setting(self, key: str, default):
        return self.env.get(f"BOUNCEFLOW_{key.upper()}", default)

    def pid(self, spec: ServiceSpec) -> int | None:
        path = self.run_dir / f"{spec.name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text().strip() or 0)
        return pid if pid and _alive(pid) else None

    def render_args(self, spec: ServiceSpec) -> list[str]:
        settings = {k[len("BOUNCEFLOW_"):].lower(): v for k, v in self.env.items() if k.startswith("BOUNCEFLOW_")}
        return [arg.format(**settings) for arg in spec.args]

    def start(self) -> None:
        """Start every service that is not running yet, then wait until all are healthy."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        for spec in self.services:
            if self.pid(spec):
                continue
            log = open(self.log_dir / f"{spec.name}.log", "ab")
            process = subprocess.Popen(
                [self.python, "-m", spec.module, *self.render_args(spec)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
            log.close()
            self._children[spec.name] = process
            (self.run_dir / f"{spec.name}.pid").write_text(str(process.pid))
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Block until each service answers /health 200 (or listens); raise with its log tail."""
        deadline = time.monotonic() + timeout
        for spec in self.services:
            while not self.healthy(spec):
                if not self.pid(spec):
                    raise RuntimeError(f"{spec.name} exited during start:\n{self.log_tail(spec)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{spec.name} not healthy after {timeout:.0f}s:\n{self.log_tail(spec)}")
                time.sleep(0.2)

    def healthy(self, spec: ServiceSpec) -> bool:
        if spec.http_port_key:
            port = self.setting(spec.http_port_key, spec.default_http_port)
            return _get(f"http://127.0.0.1:{port}/health") == 200
        for _, key, default in spec.listens:
            try:
                socket.create_connection(("127.0.0.1", int(self.setting(key, default))), 1).close()
            except OSError:
                return False
        return True

    def log_tail(self, spec: ServiceSpec, lines: int = 30) -> str:
        path = self.log_dir / f"{spec.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def stop(self, timeout: float = 20.0) -> dict[str, int | None]:
        """SIGTERM every service (reverse order), SIGKILL what is still there after `timeout`.

        Returns the exit code of each process this object started (None: unknown).
        """
        for spec in reversed(self.services):
            pid = self.pid(spec)
            if pid:
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for spec in reversed(self.services):
            pid = self.pid(spec)
            while pid and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid and _alive(pid):
                os.killpg(pid, signal.SIGKILL)
            (self.run_dir / f"{spec.name}.pid").unlink(missing_ok=True)
        codes = {}
        for name, process in self._children.items():
            try:
                codes[name] = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                codes[name] = None
        self._children.clear()
        return codes

    def status_lines(self) -> list[str]:
        lines = []
        for spec in self.services:
            pid = self.pid(spec)
            state = "running" if pid else "stopped"
            if pid and not self.healthy(spec):
                state = "unhealthy"
            where = ", ".join(f"{label} 127.0.0.1:{self.setting(key, port)}" for label, key, port in spec.listens)
            if spec.http_port_key:
                port = self.setting(spec.http_port_key, spec.default_http_port)
                where = (where + ", " if where else "") + f"health http://127.0.0.1:{port}/health"
            lines.append(f"  {spec.name:<16} {state:<9} pid {pid or '-':<8} {where}")
        return lines


def local_env(var_dir: Path) -> dict[str, str]:
    """The settings of `make run`: embedded defaults, overridable from the environment."""
    env = {
        "BOUNCEFLOW_ACCOUNTS_FILE": str(var_dir / "accounts.json"),
        "BOUNCEFLOW_CLICKHOUSE_DSN": f"chdb://{var_dir / 'clickhouse'}",
        "BOUNCEFLOW_CLASSIFIER_DATA_DIR": str(var_dir / "classifier"),
        "BOUNCEFLOW_INGRESS_AUTH_PLAINTEXT_LOOPBACK": "true",
        # Local runs deliver to the MX simulator, never to the internet by accident.
        "BOUNCEFLOW_SENDER_STATIC_ROUTES": json.dumps({"*": "127.0.0.1:2600"}),
        "BOUNCEFLOW_MXSIM_PORT": "2600",
        "BOUNCEFLOW_MXSIM_BOUNCE_RELAY": "127.0.0.1:2526",
        "BOUNCEFLOW_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    env.update(load_or_create_secrets(var_dir / "secrets.json"))
    env.update({k: v for k, v in os.environ.items() if k.startswith("BOUNCEFLOW_")})
    return env


ISOLATED_PORTS = ("ingress_smtp", "ingress_http", "sender_http", "receiver_smtp", "receiver_http",
                  "classifier_http", "notifier_http", "mx", "webhooks", "mailbox")


def isolated_env(var_dir: Path, bootstrap: str, topic_prefix: str, verp_secret: str,
                 bounce_domain: str = "bounces.localhost", **overrides: str) -> tuple[dict[str, str], dict[str, int]]:
    """Settings for a stack of its own (tests, benchmarks): free ports, its own data folder.

    The MX simulator and the webhook endpoint are left to the caller (they run
    in the caller's process so it can look at what arrived); their ports are
    in the returned map as `mx` and `webhooks`, and `mailbox` for the customers'
    mailboxes that forwarded bounces are delivered to.
    """
    ports = {name: free_port() for name in ISOLATED_PORTS}
    env = {
        "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap,
        "BOUNCEFLOW_TOPIC_PREFIX": topic_prefix,
        "BOUNCEFLOW_ACCOUNTS_FILE": str(var_dir / "accounts.json"),
        "BOUNCEFLOW_VERP_SECRETS": verp_secret,
        "BOUNCEFLOW_BOUNCE_DOMAINS": bounce_domain,
        "BOUNCEFLOW_CLICKHOUSE_DSN": f"chdb://{var_dir / 'clickhouse'}",
        "BOUNCEFLOW_CLASSIFIER_DATA_DIR": str(var_dir / "classifier"),
        "BOUNCEFLOW_INGRESS_AUTH_PLAINTEXT_LOOPBACK": "true",
        "BOUNCEFLOW_INGRESS_SMTP_PORT": str(ports["ingress_smtp"]),
        "BOUNCEFLOW_INGRESS_HTTP_PORT": str(ports["ingress_http"]),
        "BOUNCEFLOW_SENDER_HTTP_PORT": str(ports["sender_http"]),
        "BOUNCEFLOW_SENDER_STATIC_ROUTES": json.dumps({"*": f"127.0.0.1:{ports['mx']}"}),
        "BOUNCEFLOW_RECEIVER_SMTP_PORT": str(ports["receiver_smtp"]),
        "BOUNCEFLOW_RECEIVER_HTTP_PORT": str(ports["receiver_http"]),
        "BOUNCEFLOW_CLASSIFIER_HTTP_PORT": str(ports["classifier_http"]),
        "BOUNCEFLOW_NOTIFIER_HTTP_PORT": str(ports["notifier_http"]),
        "BOUNCEFLOW_WEBHOOK_ALLOW_PRIVATE": "true",
        "BOUNCEFLOW_NOTIFIER_FORWARD_ROUTES": json.dumps({"*": f"127.0.0.1:{ports['mailbox']}"}),
    }
    env.update({f"BOUNCEFLOW_{k.upper()}": v for k, v in overrides.items()})
    return env, ports


def services_without_simulator() -> tuple[ServiceSpec, ...]:
    return tuple(s for s in SERVICES if s.name != "mx-simulator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bounceflow_devkit.stack")
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    var_dir = REPO / "var"
    stack = Stack(var_dir=var_dir, env=local_env(var_dir))
    if args.command == "start":
        from bounceflow.accounts import ensure_dev_account

        ensure_dev_account(var_dir / "accounts.json", var_dir / "dev-credentials.json")
        try:
            stack.start()
        except RuntimeError as exc:
            sys.stderr.write(f"bounceflow: {exc}\n")
            return 1
        print("bounceflow is running:")
    elif args.command == "stop":
        stack.stop()
        print("bounceflow services stopped")
        return 0
    else:
        print("bounceflow services:")
    print("\n".join(stack.status_lines()))
    if args.command == "start":
        print(f"  credentials      {var_dir / 'dev-credentials.json'}")
        print(f"  logs             {var_dir / 'log'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
