"""MX ordering (RFC 5321 §5.1, RFC 7505) and static routes, without DNS."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from bounceflow_sender.routing import NullMx, order_mx, static_route
from bounceflow_sender.settings import SenderSettings, parse_smarthost


def test_lowest_preference_first():
    assert order_mx([(20, "mx2.example.com."), (10, "mx1.example.com.")]) == ["mx1.example.com", "mx2.example.com"]


def test_equal_preferences_are_shuffled_but_stay_in_their_group():
    records = [(10, "a."), (10, "b."), (10, "c."), (5, "first."), (30, "last.")]
    seen = set()
    for seed in range(30):
        ordered = order_mx(records, random.Random(seed))
        assert ordered[0] == "first" and ordered[-1] == "last"
        seen.add(tuple(ordered[1:4]))
    assert len(seen) > 1


def test_duplicates_keep_their_best_preference():
    assert order_mx([(30, "MX.example.com."), (10, "mx.example.com"), (20, "b.")]) == ["mx.example.com", "b"]


def test_null_mx_raises():
    with pytest.raises(NullMx):
        order_mx([(0, ".")])


def test_a_root_exchange_with_nonzero_preference_is_ignored():
    assert order_mx([(10, "."), (20, "mx.")]) == ["mx"]


def test_no_records_means_no_hosts():
    assert order_mx([]) == []


def test_static_route_exact_then_wildcard():
    routes = {"example.com": "127.0.0.1:2600", "*": "[::1]:2601"}
    assert static_route("example.com", routes).key == "127.0.0.1:2600"
    hop = static_route("other.org", routes)
    assert (hop.host, hop.port) == ("::1", 2601)
    assert static_route("other.org", {"example.com": "h:1"}) is None


@pytest.mark.parametrize("bad", ['{"*": "127.0.0.1"}', '{"*": "host:port"}', '{"*": ":25"}'])
def test_static_routes_without_a_port_are_refused(monkeypatch, bad):
    monkeypatch.setenv("BOUNCEFLOW_SENDER_STATIC_ROUTES", bad)
    with pytest.raises(ValidationError):
        SenderSettings()


def test_retry_schedule_from_env(monkeypatch):
    monkeypatch.setenv("BOUNCEFLOW_SENDER_RETRY_SCHEDULE", "1, 2.5,10")
    assert SenderSettings().sender_retry_schedule == [1, 2.5, 10]
    monkeypatch.setenv("BOUNCEFLOW_SENDER_RETRY_SCHEDULE", "[5, 6]")
    assert SenderSettings().sender_retry_schedule == [5, 6]


@pytest.mark.parametrize("bad", ["", "-1", "x"])
def test_bad_retry_schedules_are_refused(monkeypatch, bad):
    monkeypatch.setenv("BOUNCEFLOW_SENDER_RETRY_SCHEDULE", bad)
    with pytest.raises(ValidationError):
        SenderSettings()


def test_smarthost_url_is_parsed_and_the_password_stays_secret(monkeypatch):
    monkeypatch.setenv("BOUNCEFLOW_SENDER_SMARTHOST", "smtp://user%40x:p%3Ass@relay.example.com:2587")
    settings = SenderSettings()
    smarthost = settings.smarthost()
    assert (smarthost.host, smarthost.port, smarthost.username) == ("relay.example.com", 2587, "user@x")
    assert smarthost.password.get_secret_value() == "p:ss"
    assert "p:ss" not in repr(settings) and "p%3Ass" not in repr(settings) and "p:ss" not in repr(smarthost)


@pytest.mark.parametrize("bad", ["http://relay:25", "smtp://", "relay.example.com:25", "smtp://h:notaport"])
def test_bad_smarthost_urls_are_refused(bad):
    with pytest.raises(ValueError):
        parse_smarthost(bad)


def test_no_smarthost_by_default():
    assert SenderSettings().smarthost() is None
