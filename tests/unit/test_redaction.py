"""Redaction rules (stream/redaction.py), the secret-file settings, and the replay's outputs
with and without redaction."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from pydantic import ValidationError

from agents.replay import ReplayOptions, replay_files
from agents.settings import Settings
from stream.events import DeadLetter
from stream.redaction import Redactor


def test_hash_is_hmac_sha256_of_the_value_with_the_key():
    r = Redactor(hash="features.*", key=b"k1")
    doc = r.document({"features": {"email": "a@b.c", "n": 3}})
    assert doc["features"]["email"] == hmac.new(b"k1", b"a@b.c", hashlib.sha256).hexdigest()[:32]
    assert doc["features"]["n"] == hmac.new(b"k1", b"3", hashlib.sha256).hexdigest()[:32]
    other = Redactor(hash="features.*", key=b"k2").document({"features": {"email": "a@b.c"}})
    assert other["features"]["email"] != doc["features"]["email"]


def test_rules_and_dead_letters():
    r = Redactor(drop="prediction,headers.x-*", mask="error_message", hash="features.id",
                 key=b"k")
    doc = r.document({"request_id": "r", "prediction": 1, "error_message": "boom",
                      "features": {"id": None}})
    assert doc == {"request_id": "r", "error_message": "***", "features": {"id": None}}
    dl = r.dead_letter(DeadLetter("invalid_json", "x", b"{secret", {"X-A": "1", "ce-type": "t"}))
    assert json.loads(dl.raw) == {"length": 7, "redacted": r.digest(b"{secret")}
    assert dl.headers == {"ce-type": "t"} and dl.reason == "invalid_json"
    kept = Redactor(drop="headers.x-a", keep_dead_letters=True).dead_letter(
        DeadLetter("r", "d", b"{secret", {"x-a": "1"}))
    assert kept.raw == b"{secret" and kept.headers == {}
    assert "k" not in repr(Redactor(hash="features.a", key=b"kkkk")).replace("keep", "")
    with pytest.raises(ValueError):
        Redactor(hash="features.a")  # no key
    with pytest.raises(ValueError):
        Redactor(drop="request_id")


def test_secrets_from_files(tmp_path):
    (tmp_path / "pw").write_text("file-s3cret\n")
    s = Settings(elasticsearch_username="u", elasticsearch_password_file=str(tmp_path / "pw"),
                 redact_hash="features.a", redact_key_file=str(tmp_path / "pw"))
    assert s.elasticsearch_password.get_secret_value() == "file-s3cret"
    assert "file-s3cret" not in repr(s) and "file-s3cret" not in str(s.model_dump())
    with pytest.raises(ValidationError, match="PREDLOG_ELASTICSEARCH_PASSWORD_FILE") as info:
        Settings(elasticsearch_username="u", elasticsearch_password_file=str(tmp_path / "no"))
    with pytest.raises(ValidationError, match="not both") as info:
        Settings(elasticsearch_username="u", elasticsearch_password="env-s3cret",
                 elasticsearch_password_file=str(tmp_path / "pw"))
    assert "env-s3cret" not in str(info.value)
    with pytest.raises(ValidationError, match="go together"):
        Settings(mlflow_tracking_username="u")
    with pytest.raises(ValidationError, match="PREDLOG_REDACT_KEY"):
        Settings(redact_hash="features.a")
    # a CA file is checked where the client is built (the ConfigMap is shared by every pod)
    from agents.elasticsearch_client import ElasticsearchRefused, elasticsearch_client
    from agents.mlflow_auth import MlflowRefused, apply_mlflow_credentials

    missing = Settings(elasticsearch_ca_file=str(tmp_path / "none.crt"),
                       mlflow_ca_file=str(tmp_path / "none.crt"))
    with pytest.raises(ElasticsearchRefused, match="PREDLOG_ELASTICSEARCH_CA_FILE=.*no such file"):
        elasticsearch_client(missing)
    with pytest.raises(MlflowRefused, match="PREDLOG_MLFLOW_CA_FILE=.*no such file"):
        apply_mlflow_credentials(missing)


def _lines(tmp_path):
    path = tmp_path / "in.ndjson"
    rows = []
    for i in range(40):
        rid, t = f"r{i}", f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}Z"
        h = {"ce-type": "io.seldon.serving.inference.request", "ce-requestid": rid,
             "ce-inferenceservicename": "loan", "ce-namespace": "ns", "ce-time": t,
             "ce-specversion": "1.0", "ce-id": rid + "q", "content-type": "application/json"}
        body = {"data": {"names": ["email", "age"], "ndarray": [[f"MARKER{i}@x.org", 30.0 + i]]}}
        rows.append({"headers": h, "body": json.dumps(body)})
        rows.append({"headers": {**h, "ce-type": "io.seldon.serving.inference.response",
                                 "ce-id": rid + "s"},
                     "body": json.dumps({"data": {"names": ["p"], "ndarray": [[0.5]]}})})
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"headers": {"x": "MARKERBAD"}, "body": "{'
    path.write_text(text + "\n")
    return path


def test_replay_redacts_predictions_and_dead_letters_and_keeps_windows(tmp_path):
    path = _lines(tmp_path)
    plain, redacted = tmp_path / "plain", tmp_path / "redacted"
    replay_files([path], Settings(), plain, ReplayOptions(mlflow=False))
    replay_files([path], Settings(redact_hash="features.email", redact_key="k"), redacted,
                 ReplayOptions(mlflow=False))
    assert b"MARKER" in (plain / "predictions.jsonl").read_bytes()
    for name in ("predictions.jsonl", "dead-letters.jsonl"):
        assert b"MARKER" not in (redacted / name).read_bytes(), name
    assert b'"age":31.0' in (redacted / "predictions.jsonl").read_bytes()
    # statistics on the original values: the same window summaries, byte for byte
    assert (plain / "windows.jsonl").read_bytes() == (redacted / "windows.jsonl").read_bytes()
    # a redacted numeric feature: its values (stats) leave with nothing, its drift stays
    hashed = tmp_path / "hashed"
    replay_files([path], Settings(redact_hash="features.age", redact_key="k"), hashed,
                 ReplayOptions(mlflow=False))
    assert b'"age":31.0' not in (hashed / "predictions.jsonl").read_bytes()
    for line_plain, line_hashed in zip((plain / "windows.jsonl").read_text().splitlines(),
                                       (hashed / "windows.jsonl").read_text().splitlines(),
                                       strict=True):
        p, h = json.loads(line_plain), json.loads(line_hashed)
        assert "age" in p["feature_stats"] and "age" not in h["feature_stats"]
        assert p["drift"] == h["drift"] and p["requests"] == h["requests"]
    # without rules, the documents' dict path and the template path agree byte for byte
    again = tmp_path / "again"
    replay_files([path], Settings(), again, ReplayOptions(mlflow=False))
    assert (again / "predictions.jsonl").read_bytes() == (plain / "predictions.jsonl").read_bytes()


def test_summary_stats_of_redacted_features_are_left_out_of_dicts_and_records():
    import msgspec

    class Summary(msgspec.Struct, frozen=True, kw_only=True):  # the typed summary's shape
        model: str
        feature_stats: dict = {}

    r = Redactor(drop="features.ssn", hash="features.inc*", key=b"k")
    stats = {"ssn": {"max": 123456789.0}, "income": {"max": 9.0}, "age": {"max": 61.0}}
    assert r.summary({"model": "m", "feature_stats": stats})["feature_stats"] == {
        "age": {"max": 61.0}}
    record = Summary(model="m", feature_stats=stats)
    assert r.summary(record) == Summary(model="m", feature_stats={"age": {"max": 61.0}})
    assert record.feature_stats == stats  # not changed
    assert Redactor(mask="prediction").summary(record) is record
