import pytest
from pydantic import ValidationError

from agents.settings import Settings, load_settings


def test_environment_overrides_with_prefix(monkeypatch):
    monkeypatch.setenv("PREDLOG_KAFKA_BOOTSTRAP", "10.0.0.1:9092,10.0.0.2:9092")
    monkeypatch.setenv("PREDLOG_WINDOW_SECONDS", "60")
    s = load_settings()
    assert s.kafka_bootstrap == "10.0.0.1:9092,10.0.0.2:9092"
    assert s.window_seconds == 60.0


def test_settings_are_frozen_and_validated():
    s = Settings()
    with pytest.raises(ValidationError):
        s.window_seconds = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Settings(kafka_bootstrap="no-port")
    with pytest.raises(ValidationError):
        Settings(window_seconds=0)


def test_secrets_are_not_printed(monkeypatch):
    monkeypatch.setenv("PREDLOG_INGEST_TOKEN", "s3cret-token")
    s = load_settings()
    assert s.ingest_token.get_secret_value() == "s3cret-token"
    assert "s3cret-token" not in repr(s) and "s3cret-token" not in str(s.model_dump())
