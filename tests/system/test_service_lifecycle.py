"""Every service serves /health and /metrics, and stops cleanly on SIGTERM."""

import httpx

SERVICES_HTTP = {
    "ingress": "ingress_http", "sender": "sender_http", "bounce-receiver": "receiver_http",
    "classifier": "classifier_http", "notifier": "notifier_http",
}


def test_health_and_metrics_then_a_clean_stop(system):
    for name, port in SERVICES_HTTP.items():
        health = httpx.get(f"http://127.0.0.1:{system.ports[port]}/health", timeout=10)
        assert health.status_code == 200, f"{name}: {health.text}"
        metrics = httpx.get(f"http://127.0.0.1:{system.ports[port]}/metrics", timeout=10)
        assert metrics.status_code == 200 and "# TYPE" in metrics.text, name
    codes = system.stack.stop()
    assert codes == {name: 0 for name in SERVICES_HTTP}, "each service exits 0 on SIGTERM, in time"
