"""docker-compose.yml cannot be run here (no Docker engine), so check that it
names every service, module, port and setting the code expects."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from bounceflow.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = {
    "ingress": "bounceflow_ingress",
    "sender": "bounceflow_sender",
    "bounce-receiver": "bounceflow_bounce_receiver",
    "classifier": "bounceflow_classifier",
    "notifier": "bounceflow_notifier",
}


def settings_class(package: str) -> type[CommonSettings]:
    module = importlib.import_module(f"{package}.settings")
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, CommonSettings) and c is not CommonSettings and c.__module__ == module.__name__]
    assert len(classes) == 1, f"{package}.settings should define one settings class"
    return classes[0]


def test_compose_runs_kafka_clickhouse_and_the_five_services():
    assert set(SERVICES) | {"kafka", "clickhouse"} <= set(COMPOSE["services"])
    assert COMPOSE["services"]["kafka"]["image"].startswith("apache/kafka")
    assert COMPOSE["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert COMPOSE["services"]["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_entry_point_settings_ports_and_health(name):
    service, package = COMPOSE["services"][name], SERVICES[name]
    assert service["command"] == ["python", "-m", package]
    importlib.import_module(f"{package}.__main__".replace(".__main__", ""))
    assert importlib.util.find_spec(f"{package}.__main__") is not None

    fields = settings_class(package).model_fields
    env = service["environment"]
    for key, value in env.items():
        if key.startswith("BOUNCEFLOW_"):
            assert key[len("BOUNCEFLOW_"):].lower() in fields, f"{name}: {key} is not a setting"
    # The health check probes the port the service serves /health on.
    http_port_key = next(k for k in env if k.endswith("_HTTP_PORT"))
    assert str(env["HEALTH_PORT"]) == str(env[http_port_key])
    assert "/health" in " ".join(service["healthcheck"]["test"])
    # Published ports are the ones the service listens on inside the container.
    listening = {str(v) for k, v in env.items() if k.endswith("_PORT") and k.startswith("BOUNCEFLOW_")}
    for mapping in service.get("ports", []):
        assert mapping.rsplit(":", 1)[1] in listening, f"{name}: {mapping} is not a port it listens on"
    # A service starts only once Kafka has its topics.
    assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_secrets_are_required_from_the_environment_not_written_here():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${BOUNCEFLOW_VERP_SECRETS:?" in text and "${CLICKHOUSE_PASSWORD:?" in text


def test_notifier_uses_the_clickhouse_server_and_waits_for_it():
    notifier = COMPOSE["services"]["notifier"]
    assert notifier["environment"]["BOUNCEFLOW_CLICKHOUSE_DSN"].startswith("http://")
    assert notifier["depends_on"]["clickhouse"]["condition"] == "service_healthy"
