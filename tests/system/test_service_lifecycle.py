"""Every service serves /health and /metrics, and stops cleanly on SIGTERM."""

import time

import httpx

SERVICES_HTTP = {
    "ingress": "ingress_http", "sender": "sender_http", "bounce-receiver": "receiver_http",
    "classifier": "classifier_http", "notifier": "notifier_http",
}


def healthy_within(url: str, timeout: float = 60.0) -> httpx.Response:
    """/health may say 503 for a moment (the classifier recovers its table after a
    rebalance); wait for 200 within a bound and return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_health_and_metrics_then_a_clean_stop(system):
    for name, port in SERVICES_HTTP.items():
        health = healthy_within(f"http://127.0.0.1:{system.ports[port]}/health")
        assert health.status_code == 200, f"{name}: {health.text}"
        metrics = httpx.get(f"http://127.0.0.1:{system.ports[port]}/metrics", timeout=10)
        assert metrics.status_code == 200 and "# TYPE" in metrics.text, name
    codes = system.stack.stop()
    assert codes == {name: 0 for name in SERVICES_HTTP}, "each service exits 0 on SIGTERM, in time"
