"""docs/settings.md lists every setting of every service, as the code defines it."""

from pathlib import Path

from bounceflow.settings_doc import SERVICE_SETTINGS, _settings_class, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_settings_reference_is_up_to_date():
    assert DOC.read_text() == render(), "run `bounceflow settings-doc --write docs/settings.md`"


def test_every_service_setting_has_a_description():
    for service, module in SERVICE_SETTINGS.items():
        for name, field in _settings_class(module).model_fields.items():
            assert field.description, f"{service}: {name} has no description"
