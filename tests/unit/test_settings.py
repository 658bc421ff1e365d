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


def test_native_decoding_is_a_setting_the_drivers_apply(monkeypatch, tmp_path):
    """PREDLOG_NATIVE=0 is the setting `native`; replay switches the compiled decoder off
    for every fast path, including those built before it ran."""
    from agents.replay import SAMPLE, replay_files
    from stream.decode import native

    if native._MODULE is None:
        pytest.skip("predlog-native is not installed")
    calls = []

    def python_decode_line(line, source=None):
        calls.append(line)
        from stream.decode.lines import decode_line_python

        return decode_line_python(line, source)

    decode = native.with_line_fast_path(python_decode_line)
    line = SAMPLE.read_bytes().splitlines()[0]
    monkeypatch.setenv("PREDLOG_NATIVE", "0")
    settings = load_settings(window_seconds=300)
    assert settings.native is False
    was = native._ENABLED
    try:
        native.set_enabled(True)
        decode(line)
        assert calls == []  # the compiled decoder answered
        replay_files([SAMPLE], settings, tmp_path)
        assert not native.enabled()
        decode(line)
        assert calls == [line]  # the Python definition only
    finally:
        native.set_enabled(was)
        native._SWITCHES.remove(native._SWITCHES[-1])
