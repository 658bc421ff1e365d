"""Alertmanager config: valid for Alertmanager 0.25 (amtool), the seed's routing, and every
credential read from a file of the mounted Secret, never written in the config."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO, run

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
SECRET_DIR = "/etc/alertmanager/secrets/predlog-alertmanager-receivers/"
CREDENTIAL_FIELDS = {"auth_password", "auth_secret", "api_url", "service_key", "routing_key",
                     "password", "bot_token", "token", "user_key", "auth_identity"}


def test_amtool_check_config():
    proc = run(["amtool", "check-config", str(CONFIG)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("labels, receivers", [
    (["severity=critical"], "pagerduty,slack"),   # PagerDuty, continue -> Slack too
    (["severity=warning"], "slack"),
    (["severity=info"], "default"),               # e-mail
    ([], "default"),
])
def test_routing(labels, receivers):
    proc = run(["amtool", "config", "routes", "test", f"--config.file={CONFIG}",
                "alertname=DataDriftDetected", *labels])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == receivers


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


def test_credentials_come_from_mounted_files():
    config = yaml.safe_load(CONFIG.read_text())
    files = {}
    for path, value in _walk(config):
        key = str(path[-1])
        assert key not in CREDENTIAL_FIELDS, f"literal credential at {'.'.join(map(str, path))}"
        if key.endswith("_file"):
            assert str(value).startswith(SECRET_DIR), value
            files[key] = str(value)[len(SECRET_DIR):]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["slack"]["slack_configs"][0]["api_url_file"]
    assert receivers["pagerduty"]["pagerduty_configs"][0]["routing_key_file"]
    assert receivers["default"]["email_configs"][0]["auth_password_file"]
    # docs/deploy.md creates exactly these keys in the Secret
    doc = (REPO / "docs" / "deploy.md").read_text()
    for key in files.values():
        assert re.search(rf"--from-file={re.escape(key)}=", doc), key
