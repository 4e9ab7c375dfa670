"""The deployment files keep their promises: parsed and checked here, since no Docker
engine or cluster runs in CI. A service added without a health check, an image the docs
do not name, a published port other than web's, or an egress route fails these tests."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
K8S_DIR = DEPLOY / "k8s" / "base"
K8S = [
    (path.name, doc)
    for path in sorted(K8S_DIR.glob("*.yaml"))
    if path.name != "kustomization.yaml"
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
WORKLOADS = [(name, doc) for name, doc in K8S if doc["kind"] in {"Deployment", "StatefulSet"}]
DOCS = (DEPLOY / "README.md").read_text()


def images_in_compose() -> set[str]:
    return {s["image"] for s in COMPOSE["services"].values() if "image" in s and "build" not in s}


def images_in_k8s() -> set[str]:
    return {
        c["image"]
        for _, doc in K8S
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        if c["image"] != "private-rag"
    }


# --- compose ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_compose_service_has_a_health_check(name):
    service = COMPOSE["services"][name]
    assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_compose_has_no_route_out_except_the_published_web_port():
    assert COMPOSE["networks"]["internal"].get("internal") is True
    for name, service in COMPOSE["services"].items():
        networks = set(service.get("networks", []))
        assert "internal" in networks, name
        if name == "web":
            assert networks == {"internal", "edge"}
        else:
            assert networks == {"internal"}, f"{name} must not join a network with a route out"
            assert "ports" not in service, f"{name} must not publish a port"


def test_compose_secrets_come_from_files_not_literals():
    assert all("file" in spec for spec in COMPOSE["secrets"].values())
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"(PASSWORD|SECRET|KEY)$", key) or key.endswith("_FILE"), f"{name}: {key}"
            assert "://" not in str(value) or "@" not in str(value), f"{name}: credentials in {key}"


def test_compose_vllm_runs_on_the_gpu_offline():
    vllm = COMPOSE["services"]["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert vllm["environment"]["HF_HUB_OFFLINE"] == "1" and vllm["environment"]["VLLM_NO_USAGE_STATS"] == "1"
    assert any("--tensor-parallel-size" in arg for arg in vllm["command"])
    assert any(v.endswith(":/models:ro") for v in vllm["volumes"])


def test_compose_runs_parse_and_embed_queues_separately():
    parse = " ".join(COMPOSE["services"]["worker-parse"]["command"])
    embed = " ".join(COMPOSE["services"]["worker-embed"]["command"])
    assert "--queues parse" in parse and "--queues embed" in embed


# --- kubernetes --------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "doc"), K8S, ids=[f"{d['kind']}-{d['metadata']['name']}" for _, d in K8S])
def test_kubernetes_manifests_match_the_schema(file, doc):
    if doc["apiVersion"].startswith("keda.sh"):
        pytest.skip("KEDA custom resources have no schema in kubernetes-validate")
    kubernetes_validate.validate(doc, "1.30", strict=True)


@pytest.mark.parametrize(("file", "doc"), WORKLOADS, ids=[d["metadata"]["name"] for _, d in WORKLOADS])
def test_every_workload_has_readiness_and_liveness_probes(file, doc):
    for container in doc["spec"]["template"]["spec"]["containers"]:
        assert "readinessProbe" in container and "livenessProbe" in container, doc["metadata"]["name"]


@pytest.mark.parametrize(("file", "doc"), [w for w in WORKLOADS if w[1]["kind"] == "Deployment"], ids=[d["metadata"]["name"] for _, d in WORKLOADS if d["kind"] == "Deployment"])
def test_every_deployment_has_a_disruption_budget(file, doc):
    budgets = {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for _, d in K8S if d["kind"] == "PodDisruptionBudget"}
    assert doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] in budgets


def test_default_deny_egress_and_only_in_cluster_destinations():
    policies = {d["metadata"]["name"]: d for _, d in K8S if d["kind"] == "NetworkPolicy"}
    deny = policies["default-deny-all"]
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "egress" not in deny["spec"] and "ingress" not in deny["spec"]
    for policy in policies.values():
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                assert "ipBlock" not in peer, f"{policy['metadata']['name']} opens an address range"
                assert peer.get("podSelector") is not None, f"{policy['metadata']['name']} allows a whole namespace"
    app_egress = policies["app-egress-in-cluster-only"]["spec"]["egress"]
    roles = {rule["to"][0]["podSelector"]["matchLabels"]["rag/role"] for rule in app_egress}
    assert roles == {"database", "broker", "llm"}


def test_every_app_pod_is_covered_by_the_egress_policy():
    templates = {doc["metadata"]["name"]: doc["spec"]["template"] for _, doc in K8S
                 if doc.get("spec", {}).get("template")}
    app = {name for name, t in templates.items() if t["spec"]["containers"][0]["image"] == "private-rag"}
    assert {"web", "worker-parse", "worker-embed", "signer", "beat"} <= app, sorted(templates)  # sees the app's pods
    for name in app:
        assert templates[name]["metadata"]["labels"].get("rag/role") == "app", name


def test_vllm_has_gpus_and_a_tensor_parallel_value():
    vllm = next(d for _, d in WORKLOADS if d["metadata"]["name"] == "vllm")
    container = vllm["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"]
    assert "--tensor-parallel-size=$(VLLM_TENSOR_PARALLEL_SIZE)" in container["args"]
    config = next(d for _, d in K8S if d["kind"] == "ConfigMap")
    assert config["data"]["VLLM_TENSOR_PARALLEL_SIZE"]


def test_workers_autoscale_on_queue_length():
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for _, d in K8S if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"worker-parse", "worker-embed"}
    assert all(d["spec"]["triggers"][0]["type"] == "redis" for d in scaled.values())


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


# --- images and systemd -------------------------------------------------------------------


def test_every_public_image_is_named_in_the_deployment_docs():
    for image in images_in_compose() | images_in_k8s():
        assert image in DOCS, f"{image} is pulled but deploy/README.md does not say so"


@pytest.mark.parametrize("unit", sorted(p.name for p in (DEPLOY / "systemd").glob("*.service")))
def test_systemd_units_are_complete(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / unit)
    service = parser["Service"]
    assert service["ExecStart"].startswith("/")
    assert service.get("User", "rag").startswith("rag-"), "one OS user per unit (security review H3)"
    assert "IPAddressDeny" in service, "every unit denies network access by default"
    if service.get("Type") != "oneshot":
        assert service.get("Restart") == "on-failure"


def _unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text().replace("\nLoadCredential=", "\nLoadCredential+="))
    credentials = [line.split("=", 1)[1].split(":", 1)[0] for line in path.read_text().splitlines()
                   if line.startswith("LoadCredential=")]
    return parser["Service"], credentials


def test_systemd_units_each_have_their_own_user_and_only_their_own_secrets():
    """Security review H3: one user per unit, secrets as per-unit credentials, the secret folders
    inaccessible to every unit, and the keys only where they are used."""
    units = {p.name: _unit(p) for p in sorted((DEPLOY / "systemd").glob("*.service"))}
    users = [service["User"] for service, _ in units.values()]
    assert len(set(users)) == len(users), users
    holders: dict[str, set[str]] = {}
    for name, (service, credentials) in units.items():
        hidden = service.get("InaccessiblePaths", "").split()
        assert {"-/etc/private-rag/secrets", "-/etc/private-rag/signer"} <= set(hidden), name
        for credential in credentials:
            holders.setdefault(credential, set()).add(name)
        for line in (DEPLOY / "systemd" / name).read_text().splitlines():
            if line.startswith("Environment=") and "_FILE=" in line and "WITNESS" not in line:
                assert "=%d/" in line, f"{name}: a secret file outside its credentials: {line}"
    assert holders["audit_signing_key"] == {"private-rag-signer.service"}
    assert holders["database_owner_url"] == {"private-rag-migrate.service"}
    assert holders["audit_master_key"] == {"private-rag-web.service", "private-rag-migrate.service"}
    assert "django_secret_key" in units["private-rag-web.service"][1]
    assert holders["django_secret_key"] == {"private-rag-web.service"}
    shared = (DEPLOY / "systemd" / "rag.env.example").read_text()
    assert not [line for line in shared.splitlines() if "_FILE=" in line and not line.startswith("#")], \
        "the environment file every unit reads names no secret"
