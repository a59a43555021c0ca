"""Settings come from BOUNCEFLOW_* variables; secrets never show in a repr or log."""

import pytest

from bounceflow.settings import CommonSettings


def test_lists_from_comma_separated_env(monkeypatch):
    monkeypatch.setenv("BOUNCEFLOW_VERP_SECRETS", "new-secret, old-secret")
    monkeypatch.setenv("BOUNCEFLOW_BOUNCE_DOMAINS", "bounces.example.com,bounces.example.net")
    monkeypatch.setenv("BOUNCEFLOW_TOPIC_PREFIX", "t1-")
    settings = CommonSettings()
    assert settings.verp_secret_values() == ["new-secret", "old-secret"]
    assert settings.bounce_domains == ["bounces.example.com", "bounces.example.net"]
    assert settings.topic("outgoing") == "t1-outgoing"
    assert settings.group("sender") == "t1-sender"
    assert "new-secret" not in repr(settings) and "new-secret" not in str(settings.model_dump())


def test_missing_verp_secret_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("BOUNCEFLOW_VERP_SECRETS", raising=False)
    with pytest.raises(ValueError, match="BOUNCEFLOW_VERP_SECRETS"):
        CommonSettings().verp_secret_values()


def test_every_setting_is_documented():
    for name, field in CommonSettings.model_fields.items():
        assert field.description, f"{name} has no description"


def test_subclasses_parse_lists_too(monkeypatch):
    class ServiceSettings(CommonSettings):
        extra_key: int = 1

    monkeypatch.setenv("BOUNCEFLOW_VERP_SECRETS", "a,b")
    monkeypatch.setenv("BOUNCEFLOW_BOUNCE_DOMAINS", "bounces.localhost")
    settings = ServiceSettings()
    assert settings.verp_secret_values() == ["a", "b"]
    assert settings.bounce_domains == ["bounces.localhost"]
