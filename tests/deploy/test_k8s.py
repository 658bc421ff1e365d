"""Kubernetes manifests: every overlay renders with `kubectl kustomize`, core kinds validate
offline (kubernetes-validate), custom resources validate against the CRDs in ../shared/crds
(jsonschema; unknown fields rejected) or, without a CRD file, structurally; security
properties hold; and no secret is written into the manifests."""

from __future__ import annotations

import copy
import json
import re
from functools import cache

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import CRDS, DEPLOY, K8S, OVERLAYS, render
from tests.deploy.dashboards import load_dashboards

K8S_VERSIONS = ("1.29", "1.33")  # schema sets of kubernetes-validate to check against
CORE_KINDS = {"Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment",
              "PodDisruptionBudget", "Secret"}
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"}
STRUCTURAL_KINDS = {"KafkaTopic", "TriggerAuthentication", "SeldonDeployment",
                    "InferenceService"}
INGEST_URL = "http://predlog-ingest.predlog.svc.cluster.local:8085/"


def objects(overlay: str) -> list[dict]:
    return render(K8S / "overlays" / overlay)


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


# ------------------------------------------------------------------ rendering / schemas

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_known_kinds(overlay):
    objs = objects(overlay)
    kinds = {o["kind"] for o in objs}
    assert kinds <= CORE_KINDS | CRD_KINDS | STRUCTURAL_KINDS, kinds
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor",
                 "PrometheusRule", "ScaledObject", "KafkaTopic", "ConfigMap"):
        assert kind in kinds
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), "duplicate objects"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_validate_offline(overlay, version):
    for obj in objects(overlay):
        if obj["kind"] in CORE_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)


def _strict(schema: dict) -> dict:
    """The CRD schema with additionalProperties: false wherever properties are listed and
    unknown fields are not explicitly preserved (the API server prunes them silently)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            # Go's RE2 allows a flag group after ^ (`^(?i)...`); Python wants it first
            if isinstance(node.get("pattern"), str) and "(?i)" in node["pattern"]:
                node["pattern"] = "(?i)" + node["pattern"].replace("(?i)", "")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict openAPIV3Schema from ../shared/crds."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                out[(f"{group}/{v['name']}", kind)] = _strict(v["schema"]["openAPIV3Schema"])
    return out


def test_crds_are_there():
    assert {k for _, k in crd_schemas()} >= CRD_KINDS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_crds(overlay):
    seen = set()
    for obj in objects(overlay):
        if obj["kind"] not in CRD_KINDS:
            continue
        schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
        assert schema, f"no CRD for {obj['apiVersion']} {obj['kind']}"
        jsonschema.Draft7Validator(schema).validate(obj)
        seen.add(obj["kind"])
    assert seen == {"ServiceMonitor", "PrometheusRule", "ScaledObject"}


def test_strict_crd_validation_catches_a_misplaced_field():
    sm = copy.deepcopy(one(objects("dev"), "ServiceMonitor", "predlog-worker"))
    sm["spec"]["endpoints"][0]["honourLabels"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(
            crd_schemas()[("monitoring.coreos.com/v1", "ServiceMonitor")]).validate(sm)


def _check_kafka_topic(obj: dict) -> None:
    assert obj["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert obj["metadata"]["labels"]["strimzi.io/cluster"]
    spec = obj["spec"]
    assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
    assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
    assert isinstance(spec["replicas"], int) and 1 <= spec["replicas"] <= 32767
    assert spec["config"]["min.insync.replicas"] <= spec["replicas"]
    assert re.fullmatch(r"[a-zA-Z0-9._-]{1,249}", spec["topicName"])


def _check_trigger_auth(obj: dict) -> None:
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    for ref in obj["spec"]["secretTargetRef"]:
        assert set(ref) == {"parameter", "name", "key"}


def _check_seldon(obj: dict) -> None:
    assert obj["apiVersion"] == "machinelearning.seldon.io/v1"
    for predictor in obj["spec"]["predictors"]:
        graph = predictor["graph"]
        assert graph["name"] and graph["logger"]["mode"] in {"all", "request", "response"}
        assert graph["logger"]["url"] == INGEST_URL


def _check_inference_service(obj: dict) -> None:
    assert obj["apiVersion"] == "serving.kserve.io/v1beta1"
    logger = obj["spec"]["predictor"]["logger"]
    assert logger["mode"] in {"all", "request", "response"} and logger["url"] == INGEST_URL


STRUCTURAL = {"KafkaTopic": _check_kafka_topic, "TriggerAuthentication": _check_trigger_auth,
              "SeldonDeployment": _check_seldon, "InferenceService": _check_inference_service}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_without_crd_files_are_structurally_sound(overlay):
    for obj in objects(overlay):
        if obj["kind"] in STRUCTURAL:
            STRUCTURAL[obj["kind"]](obj)


def test_examples_point_the_loggers_at_predlog_ingest():
    objs = render(K8S / "examples")
    assert {o["kind"] for o in objs} == {"SeldonDeployment", "InferenceService"}
    for obj in objs:
        STRUCTURAL[obj["kind"]](obj)
    # ... which is the ingest Service the overlays deploy
    svc = one(objects("prod"), "Service", "predlog-ingest")
    host = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    assert INGEST_URL == f"http://{host}:{svc['spec']['ports'][0]['port']}/"


# ------------------------------------------------------------------ workloads

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_locked_down(overlay):
    deployments = by_kind(objects(overlay), "Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {
        "predlog-worker", "predlog-ingest", "predlog-mlflow-exporter"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        mounted = set()
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            assert c["image"].startswith("predlog") and ":" in c["image"]
            mounted |= {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounted
        # Writable scratch is emptyDir; anything else is a Secret mounted read-only (a CA).
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        secrets = {v["name"] for v in pod["volumes"] if "secret" in v}
        for m in (m for c in pod["containers"] + pod.get("initContainers", [])
                  for m in c["volumeMounts"]):
            assert m["name"] in empty_dirs or (m["name"] in secrets and m["readOnly"]), m


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_probes_state_and_pdb(overlay):
    objs = objects(overlay)
    worker = one(objs, "Deployment", "predlog-worker")
    c = worker["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["worker"]
    assert {"name": "web", "containerPort": 6066, "protocol": "TCP"} in c["ports"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    assert "/var/lib/predlog" in {m["mountPath"] for m in c["volumeMounts"]}
    pdb = one(objs, "PodDisruptionBudget", "predlog-worker")
    assert pdb["spec"]["selector"]["matchLabels"] == worker["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_starts_after_predlog_check(overlay):
    """The init container runs `predlog check` with the worker's settings, Secrets and mounts."""
    pod = one(objects(overlay), "Deployment", "predlog-worker")["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    worker = pod["containers"][0]
    assert init["args"] == ["check"] and init["image"] == worker["image"]
    assert init["envFrom"] == worker["envFrom"]
    assert init["env"] == worker["env"]
    mounts = {m["mountPath"]: m for m in worker["volumeMounts"] if m.get("readOnly")}
    assert mounts.items() <= {m["mountPath"]: m for m in init["volumeMounts"]}.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_partitions_setting_matches_the_events_topic(overlay):
    """PREDLOG_PARTITIONS = partitions of the events topic (`predlog check` fails otherwise)."""
    objs = objects(overlay)
    settings = next(c for c in by_kind(objs, "ConfigMap")
                    if c["metadata"]["name"].startswith("predlog-settings"))["data"]
    topics = {t["spec"]["topicName"]: t["spec"] for t in by_kind(objs, "KafkaTopic")}
    assert int(settings["PREDLOG_PARTITIONS"]) == \
        topics[settings["PREDLOG_TOPIC_EVENTS"]]["partitions"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_deployment_and_service(overlay):
    objs = objects(overlay)
    ingest = one(objs, "Deployment", "predlog-ingest")
    c = ingest["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["ingest"]
    assert c["ports"][0]["containerPort"] == 8085
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    svc = one(objs, "Service", "predlog-ingest")
    assert svc["spec"]["ports"][0]["port"] == 8085
    assert svc["spec"]["selector"] == ingest["spec"]["selector"]["matchLabels"]
    pdb = one(objs, "PodDisruptionBudget", "predlog-ingest")
    if ingest["spec"]["replicas"] <= 1:  # a minAvailable 1 budget would block node drains
        assert "minAvailable" not in pdb["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_configmap_and_secret_references(overlay):
    objs = objects(overlay)
    settings = [c for c in by_kind(objs, "ConfigMap")
                if c["metadata"]["name"].startswith("predlog-settings")]
    assert len(settings) == 1
    data = settings[0]["data"]
    assert all(k.startswith("PREDLOG_") for k in data)
    assert data["PREDLOG_INGEST_HOST"] == "0.0.0.0" and data["PREDLOG_INGEST_PORT"] == "8085"
    assert data["PREDLOG_CONSUMER_GROUP"] == "predlog"
    secret_refs = {}
    for d in by_kind(objs, "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["envFrom"] == [{"configMapRef": {"name": settings[0]["metadata"]["name"]}}]
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                secret_refs[env["name"]] = ref
    assert {"PREDLOG_KAFKA_USERNAME", "PREDLOG_KAFKA_PASSWORD", "PREDLOG_ELASTICSEARCH_API_KEY",
            "PREDLOG_INGEST_TOKEN", "PREDLOG_MLFLOW_TRACKING_PASSWORD",
            "PREDLOG_ELASTICSEARCH_PASSWORD", "PREDLOG_REDACT_KEY"} <= secret_refs.keys()
    for ref in secret_refs.values():
        assert ref["name"].startswith("predlog-") and ref.get("optional") is True


SECRETISH_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|APIKEY|CREDENTIAL|PRIVATE)", re.I)
SECRETISH_VALUE = re.compile(
    r"(://[^/\s:@]+:[^/\s@]+@"            # user:password@host
    r"|AKIA[0-9A-Z]{16}"                  # AWS key id
    r"|xox[abposr]-"                      # Slack token
    r"|hooks\.slack\.com/services/"       # Slack webhook
    r"|-----BEGIN [A-Z ]*PRIVATE KEY"
    r"|eyJ[A-Za-z0-9_-]{10,}\.)")         # JWT


def _walk_env(obj: dict):
    for c in (obj["spec"]["template"]["spec"].get("containers", [])
              + obj["spec"]["template"]["spec"].get("initContainers", [])):
        yield from c.get("env", [])


@pytest.mark.parametrize("overlay", [*OVERLAYS, "../examples"])
def test_no_literal_secrets(overlay):
    objs = render((K8S / "overlays" / overlay).resolve())
    for obj in objs:
        assert obj["kind"] != "Secret", "Secrets are created out of band (docs/deploy.md)"
        text = json.dumps(obj)
        assert not SECRETISH_VALUE.search(text), f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Deployment":
            for env in _walk_env(obj):
                if SECRETISH_NAME.search(env["name"]):
                    assert "value" not in env, f"literal value for {env['name']}"
                    assert "secretKeyRef" in env["valueFrom"], env["name"]
        if obj["kind"] == "ConfigMap":
            for key in obj["data"]:
                if not key.endswith(".json"):
                    assert not SECRETISH_NAME.search(key), f"{key} belongs in a Secret"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_exporter_deployment_and_service(overlay):
    objs = objects(overlay)
    exporter = one(objs, "Deployment", "predlog-mlflow-exporter")
    pod = exporter["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"] == ["mlflow-exporter"]
    settings = next(c for c in by_kind(objs, "ConfigMap")
                    if c["metadata"]["name"].startswith("predlog-settings"))["data"]
    port = int(settings["PREDLOG_MLFLOW_EXPORTER_PORT"])
    assert settings["PREDLOG_MLFLOW_EXPORTER_HOST"] == "0.0.0.0"
    assert settings["PREDLOG_MLFLOW_TRACKING_URI"]
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in c["ports"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["PREDLOG_MLFLOW_TRACKING_PASSWORD"] == {
        "name": "predlog-mlflow", "key": "password", "optional": True}
    svc = one(objs, "Service", "predlog-mlflow-exporter")
    assert svc["spec"]["selector"] == exporter["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == port
    # selects only the exporter's pods, not the worker's or ingest's
    for other in ("predlog-worker", "predlog-ingest"):
        labels = one(objs, "Deployment", other)["spec"]["template"]["metadata"]["labels"]
        assert not svc["spec"]["selector"].items() <= labels.items()


# ------------------------------------------------------------------ monitoring and scaling

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitors_select_the_services(overlay):
    objs = objects(overlay)
    for name, port, job in (("predlog-worker", "web", "predlog"),
                            ("predlog-ingest", "http", "predlog-ingest"),
                            ("predlog-mlflow-exporter", "metrics", "predlog-mlflow-exporter")):
        sm = one(objs, "ServiceMonitor", name)
        svc = one(objs, "Service", name)
        selector = sm["spec"]["selector"]["matchLabels"]
        assert selector.items() <= svc["metadata"]["labels"].items()
        assert sm["metadata"]["namespace"] == svc["metadata"]["namespace"]
        assert [e["port"] for e in sm["spec"]["endpoints"]] == [port]
        assert port in {p["name"] for p in svc["spec"]["ports"]}
        # the job label the alert rules use (up{job="predlog"})
        assert svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == job
    worker_sm = one(objs, "ServiceMonitor", "predlog-worker")
    assert worker_sm["spec"]["endpoints"][0]["honorLabels"] is True  # keep the model's namespace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheusrule_matches_plain_rules_file(overlay):
    rule = one(objects(overlay), "PrometheusRule", "predlog")
    plain = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "predlog.yml").read_text())
    assert rule["spec"]["groups"] == plain["groups"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_on_the_predlog_group_within_the_partitions(overlay):
    objs = objects(overlay)
    so = one(objs, "ScaledObject", "predlog-worker")
    assert so["spec"]["scaleTargetRef"]["name"] == "predlog-worker"
    topics = {t["spec"]["topicName"]: t["spec"] for t in by_kind(objs, "KafkaTopic")}
    assert set(topics) == {"predlog.events", "predlog.labels", "predlog.windows", "predlog.dlq",
                           "seldon"}
    inputs = {"predlog.events", "seldon", "predlog.labels"}
    partitions = {topics[t]["partitions"] for t in inputs}
    assert len(partitions) == 1, "input topics must be co-partitioned"
    for trig in so["spec"]["triggers"]:
        assert trig["type"] == "kafka"
        assert trig["metadata"]["consumerGroup"] == "predlog"
        assert trig["metadata"]["topic"] in inputs
        assert trig["metadata"]["allowIdleConsumers"] == "false"
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    assert so["spec"]["maxReplicaCount"] <= min(partitions)
    settings = next(c for c in by_kind(objs, "ConfigMap")
                    if c["metadata"]["name"].startswith("predlog-settings"))["data"]
    assert {settings[k] for k in ("PREDLOG_TOPIC_EVENTS", "PREDLOG_TOPIC_SELDON",
                                  "PREDLOG_TOPIC_LABELS", "PREDLOG_TOPIC_WINDOWS",
                                  "PREDLOG_TOPIC_DLQ")} == set(topics)
    for trig in so["spec"]["triggers"]:
        assert trig["metadata"]["bootstrapServers"] == settings["PREDLOG_KAFKA_BOOTSTRAP"]


def test_prod_keda_authenticates_like_predlog():
    objs = objects("prod")
    so = one(objs, "ScaledObject", "predlog-worker")
    auth = one(objs, "TriggerAuthentication", "predlog-kafka")
    assert all(t["authenticationRef"]["name"] == "predlog-kafka" for t in so["spec"]["triggers"])
    assert {r["name"] for r in auth["spec"]["secretTargetRef"]} == {"predlog-kafka"}
    expected = one(objs, "PrometheusRule", "predlog-expected-models")
    assert expected["spec"]["groups"][0]["rules"][0]["record"] == "predlog:model_expected"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboards_are_provisioned_as_configmaps(overlay):
    objs = objects(overlay)
    cms = [c for c in by_kind(objs, "ConfigMap") if c["metadata"].get("labels", {})
           .get("grafana_dashboard") == "1"]
    files = load_dashboards()
    shipped = {k: json.loads(v) for c in cms for k, v in c["data"].items()}
    assert shipped == files
    assert {c["metadata"]["namespace"] for c in cms} == {"monitoring"}


def test_alertmanager_secret_template_renders_without_credentials():
    objs = render(DEPLOY / "alertmanager")
    assert [o["kind"] for o in objs] == ["Secret"]
    secret = objs[0]
    assert set(secret["data"]) == {"alertmanager.yaml"}
    import base64
    text = base64.b64decode(secret["data"]["alertmanager.yaml"]).decode()
    assert text == (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    assert not SECRETISH_VALUE.search(text)
