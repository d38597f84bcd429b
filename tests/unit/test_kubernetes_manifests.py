"""deploy/kubernetes and deploy/kserve, rendered by `kubectl kustomize`: valid for the Kubernetes API,
and consistent with Compose, the one TF Serving flag source and the gateway's own configuration.

No cluster runs here: every core object is validated against the Kubernetes OpenAPI schema of
KUBERNETES_VERSION (kubernetes-validate, strict: unknown fields are errors), custom kinds against their
CRDs (tests/unit/test_kserve_manifests.py).
"""

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from contract.mnist import MODEL_NAME
from contract.routing import DEFAULT_ROUTING, read_routing
from gateway.config import ENV_VARS, GatewayConfig
from serving.flags_source import CONTAINER_SERVING_DIR, FLAGS_FILE, read_flags
from tests.support.kustomize import (
    KUBERNETES_DIR,
    KUSTOMIZATIONS,
    MIN_KUSTOMIZE_MAJOR,
    containers,
    env_of,
    find,
    kustomize_version,
    of_kind,
    pod_spec,
    render,
)
from ui.config import UIConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
# The Kubernetes release the manifests are written for (kubectl here is 1.32; every API used is GA there).
KUBERNETES_VERSION = "1.32"
# API groups whose kinds kubernetes-validate has no schema for; anything else must have one.
CUSTOM_API_GROUPS = {"serving.kserve.io"}
CORE_KINDS = {
    "Namespace",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Job",
}
# The kinds each kustomization must render (so a broken overlay cannot validate nothing).
EXPECTED_KINDS = {
    "base": CORE_KINDS,
    "local": CORE_KINDS - {"HorizontalPodAutoscaler", "PodDisruptionBudget"},
    "production": CORE_KINDS,
    "kserve": CORE_KINDS,
}
EXPECTED_CUSTOM_KINDS = {"base": set(), "local": set(), "production": set(), "kserve": {"InferenceService"}}
# Container name -> Compose service whose image it runs.
COMPOSE_SERVICE_OF = {"tfserving": "tfserving", "gateway": "gateway", "ui": "ui", "train": "train"}
# Kubernetes-only TF Serving flags (on top of serving/tfserving.flags).
KUBERNETES_ONLY_FLAGS = ("grpc_channel_arguments",)
EXPOSED_APPS = {"gateway", "ui"}
APP_LABEL = "app.kubernetes.io/name"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(directory) for name, directory in KUSTOMIZATIONS.items()}


@pytest.fixture(scope="module")
def compose() -> dict:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    return yaml.safe_load(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text))


def kubernetes_kustomizations():
    return [name for name in KUSTOMIZATIONS if name != "kserve"]


def test_kubectl_has_kustomize_v5():
    version = kustomize_version()
    match = re.match(r"v?(\d+)\.", version)
    assert match and int(match.group(1)) >= MIN_KUSTOMIZE_MAJOR, f"kustomize {version!r} is too old"


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_core_object_is_valid_for_the_kubernetes_api(rendered, name):
    validated, custom = set(), set()
    for item in rendered[name]:
        group = item["apiVersion"].split("/")[0] if "/" in item["apiVersion"] else ""
        if group in CUSTOM_API_GROUPS:
            custom.add(item["kind"])
            continue
        label = f"{name}: {item['kind']}/{item['metadata']['name']}"
        try:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{label} is invalid at {path}: {error.message}", pytrace=False)
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(f"{label}: {error.message}", pytrace=False)
        validated.add(item["kind"])
    assert validated == EXPECTED_KINDS[name]
    assert custom == EXPECTED_CUSTOM_KINDS[name]


def test_validation_rejects_an_unknown_field(rendered):
    deployment = find(rendered["base"], "Deployment", "tfserving")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", ["models.config", "monitoring.config", "batching.config"])
def test_the_configmaps_copies_of_serving_files_are_byte_equal(name):
    copy = KUBERNETES_DIR / "base" / "serving" / name
    assert copy.read_bytes() == (REPO_ROOT / "serving" / name).read_bytes(), (
        f"{copy} differs from serving/{name}: copy it again (kustomize loads no file outside "
        "deploy/kubernetes/base, so the ConfigMaps are generated from these copies)"
    )


def _config_without_comments_and_labels(text: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("version_labels")]


def test_production_keeps_a_live_routing_file_the_gateway_reads(rendered, tmp_path):
    state = find(rendered["production"], "ConfigMap", "mnist-state")
    (tmp_path / "routing.json").write_text(state["data"]["routing.json"])
    assert read_routing(tmp_path / "routing.json") == DEFAULT_ROUTING
    (gateway,) = containers(find(rendered["production"], "Deployment", "gateway"))
    assert env_of(gateway)["ROUTING_FILE"] == "/state/routing.json"


def test_production_models_config_is_the_default_but_for_its_labels():
    production = (KUBERNETES_DIR / "overlays" / "production" / "models.config").read_text()
    default = (REPO_ROOT / "serving" / "models.config").read_text()
    assert _config_without_comments_and_labels(production) == _config_without_comments_and_labels(default)


@pytest.mark.parametrize("name", kubernetes_kustomizations())
def test_tfserving_args_are_the_flag_source_plus_kubernetes_only_flags(rendered, name):
    (container,) = containers(find(rendered[name], "Deployment", "tfserving"))
    assert container["command"] == ["tensorflow_model_server"]
    shared = container["args"][: -len(KUBERNETES_ONLY_FLAGS)]
    extra = container["args"][-len(KUBERNETES_ONLY_FLAGS) :]
    assert shared == read_flags(FLAGS_FILE)
    assert [flag[2:].split("=", 1)[0] for flag in extra] == list(KUBERNETES_ONLY_FLAGS)
    channel_arguments = dict(pair.split("=", 1) for pair in extra[0].split("=", 1)[1].split(","))
    assert int(channel_arguments["grpc.max_connection_age_ms"]) > 0


def _flag(container: dict, name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in container["args"] if arg.startswith(f"--{name}=")]
    assert len(values) == 1, name
    return values[0]


def _mounts(workload: dict, container: dict) -> dict[str, tuple[dict, dict]]:
    """mountPath -> (the volume, the mount)."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    return {mount["mountPath"]: (volumes[mount["name"]], mount) for mount in container["volumeMounts"]}


@pytest.mark.parametrize("name", kubernetes_kustomizations())
def test_every_file_a_flag_names_is_in_a_mounted_configmap(rendered, name):
    objects = rendered[name]
    deployment = find(objects, "Deployment", "tfserving")
    (container,) = containers(deployment)
    mounts = _mounts(deployment, container)
    files = [value for arg in container["args"] if (value := arg.split("=", 1)[1]).startswith("/")]
    assert files, "no flag names a file"
    for path in files:
        directory, _, key = path.rpartition("/")
        volume, mount = mounts[directory]
        config_map = find(objects, "ConfigMap", volume["configMap"]["name"])
        assert key in config_map["data"], path
        assert mount.get("readOnly") is True
    assert mounts[CONTAINER_SERVING_DIR][0]["configMap"]["name"].startswith("tfserving-config-")


@pytest.mark.parametrize("name", kubernetes_kustomizations())
def test_the_live_state_configmap_keeps_its_name_so_it_can_be_edited_in_place(rendered, name):
    state = find(rendered[name], "ConfigMap", "mnist-state")
    assert 'base_path: "/models/mnist"' in state["data"]["models.config"]
    for workload in ("tfserving", "gateway"):
        deployment = find(rendered[name], "Deployment", workload)
        (container,) = containers(deployment)
        volume, mount = _mounts(deployment, container)["/state"]
        assert volume["configMap"]["name"] == "mnist-state" and "subPath" not in mount


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_the_model_volume_is_read_only_everywhere_but_in_the_training_job(rendered, name):
    objects = rendered[name]
    claim = find(objects, "PersistentVolumeClaim", "mnist-models")
    writers = []
    for workload in [*of_kind(objects, "Deployment"), *of_kind(objects, "Job")]:
        for container in containers(workload):
            for path, (volume, mount) in _mounts(workload, container).items():
                if volume.get("persistentVolumeClaim", {}).get("claimName") != claim["metadata"]["name"]:
                    continue
                if workload["kind"] == "Job":
                    writers.append((workload["metadata"]["name"], path))
                else:
                    assert mount.get("readOnly") is True and volume["persistentVolumeClaim"]["readOnly"]
    assert writers == [("mnist-train", "/app/models")]
    # A claim the Job writes cannot be ReadOnlyMany; RWX for several nodes, RWO on a one-node cluster.
    expected = ["ReadWriteOnce"] if name == "local" else ["ReadWriteMany"]
    assert claim["spec"]["accessModes"] == expected


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_images_are_pinned_and_are_composes(rendered, name, compose):
    for workload in [*of_kind(rendered[name], "Deployment"), *of_kind(rendered[name], "Job")]:
        for container in containers(workload):
            image = container["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and "/" not in tag, f"{image}: no tag"
            assert tag != "latest", image
            assert image == compose["services"][COMPOSE_SERVICE_OF[container["name"]]]["image"]
            assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_deployment_container_has_liveness_and_readiness_probes(rendered, name):
    deployments = of_kind(rendered[name], "Deployment")
    assert deployments
    for deployment in deployments:
        for container in containers(deployment):
            assert "livenessProbe" in container and "readinessProbe" in container, container["name"]


def _http_probe(container: dict, kind: str) -> tuple[str, int]:
    probe = container[kind]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    return probe["path"], ports.get(probe["port"], probe["port"])


@pytest.mark.parametrize("name", kubernetes_kustomizations())
def test_probes_ask_the_right_endpoints(rendered, name):
    (tfserving,) = containers(find(rendered[name], "Deployment", "tfserving"))
    rest_port = int(_flag(tfserving, "rest_api_port"))
    assert _http_probe(tfserving, "readinessProbe") == (f"/v1/models/{MODEL_NAME}", rest_port)
    assert tfserving["startupProbe"]["tcpSocket"]["port"] == "grpc"
    (gateway,) = containers(find(rendered[name], "Deployment", "gateway"))
    assert _http_probe(gateway, "livenessProbe") == ("/healthz", 8000)
    assert _http_probe(gateway, "readinessProbe") == ("/readyz", 8000)


@pytest.mark.parametrize("name", kubernetes_kustomizations())
def test_ports_agree_with_the_flags_and_the_gateway_defaults(rendered, name):
    objects = rendered[name]
    (tfserving,) = containers(find(objects, "Deployment", "tfserving"))
    grpc_port, rest_port = int(_flag(tfserving, "port")), int(_flag(tfserving, "rest_api_port"))
    defaults = GatewayConfig()
    assert (grpc_port, rest_port) == (defaults.grpc_port, defaults.rest_port)
    assert {p["name"]: p["containerPort"] for p in tfserving["ports"]} == {
        "grpc": grpc_port,
        "http": rest_port,
    }
    headless = find(objects, "Service", "tfserving-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert [(p["port"], p["targetPort"]) for p in headless["spec"]["ports"]] == [(grpc_port, "grpc")]
    rest = find(objects, "Service", "tfserving")
    assert [(p["port"], p["targetPort"]) for p in rest["spec"]["ports"]] == [(rest_port, "http")]

    (gateway,) = containers(find(objects, "Deployment", "gateway"))
    env = env_of(gateway)
    assert set(env) | {"FEEDBACK_DATABASE_URL"} <= set(ENV_VARS), "a variable the gateway does not read"
    config = GatewayConfig.from_env(env)
    assert config.grpc_target == f"dns:///{headless['metadata']['name']}:{grpc_port}"
    assert (config.grpc_port, config.rest_port) == (grpc_port, rest_port)
    assert config.rest_url == f"http://{rest['metadata']['name']}:{rest_port}"
    assert config.model_name == MODEL_NAME and config.transport == "grpc"
    gateway_service = find(objects, "Service", "gateway")
    assert [p["port"] for p in gateway_service["spec"]["ports"]] == [gateway["ports"][0]["containerPort"]]
    # The gateway image listens where its Dockerfile's GATEWAY_BIND says (gunicorn.conf.py reads it).
    bind = re.search(r"GATEWAY_BIND=\S+:(\d+)", (REPO_ROOT / "gateway" / "Dockerfile").read_text())
    assert bind and int(bind.group(1)) == gateway["ports"][0]["containerPort"]
    (ui,) = containers(find(objects, "Deployment", "ui"))
    ui_config = UIConfig.from_env(env_of(ui))
    assert ui_config.gateway_url == f"http://gateway:{gateway_service['spec']['ports'][0]['port']}"
    assert ui_config.port == ui["ports"][0]["containerPort"]
    assert [p["port"] for p in find(objects, "Service", "ui")["spec"]["ports"]] == [ui_config.port]


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_pod_runs_non_root_with_nothing_to_escalate(rendered, name):
    for workload in [*of_kind(rendered[name], "Deployment"), *of_kind(rendered[name], "Job")]:
        pod = pod_spec(workload)["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, workload["metadata"]["name"]
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
            assert context.get("privileged", False) is False


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_container_has_requests_and_limits(rendered, name):
    for workload in [*of_kind(rendered[name], "Deployment"), *of_kind(rendered[name], "Job")]:
        for container in containers(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) >= {"cpu", "memory"}, (container["name"], bound)


def _selected_app(item: dict) -> str | None:
    return (item["spec"].get("selector") or {}).get(APP_LABEL)


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_only_the_gateway_and_the_ui_can_be_exposed(rendered, name):
    objects = rendered[name]
    for service in of_kind(objects, "Service"):
        if service["spec"].get("type", "ClusterIP") in ("LoadBalancer", "NodePort"):
            assert _selected_app(service) in EXPOSED_APPS, service["metadata"]["name"]
        if _selected_app(service) == "tfserving":
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    services = {
        service["metadata"]["name"]: _selected_app(service) for service in of_kind(objects, "Service")
    }
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for path in rule["http"]["paths"]:
                assert services[path["backend"]["service"]["name"]] in EXPOSED_APPS


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_network_policies_let_only_the_gateway_reach_the_model_server(rendered, name):
    policies = of_kind(rendered[name], "NetworkPolicy")
    deny = find(policies, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    sources_of: dict[str, list[dict]] = {}
    for policy in policies:
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get(APP_LABEL)
        for rule in policy["spec"].get("ingress", []):
            sources_of.setdefault(target, []).extend(rule.get("from", [{}]))
    if name != "kserve":
        assert sources_of["tfserving"] == [{"podSelector": {"matchLabels": {APP_LABEL: "gateway"}}}]
    gateway_sources = sources_of["gateway"]
    assert {"podSelector": {"matchLabels": {APP_LABEL: "ui"}}} in gateway_sources
    assert all(
        "podSelector" not in source or source["podSelector"]["matchLabels"][APP_LABEL] == "ui"
        for source in gateway_sources
    )


def test_local_runs_one_replica_of_each_without_autoscaling(rendered):
    objects = rendered["local"]
    assert {d["metadata"]["name"]: d["spec"]["replicas"] for d in of_kind(objects, "Deployment")} == {
        "tfserving": 1,
        "gateway": 1,
        "ui": 1,
    }
    assert not of_kind(objects, "HorizontalPodAutoscaler") and not of_kind(objects, "PodDisruptionBudget")


def test_production_spreads_replicas_and_bounds_autoscaling(rendered):
    objects = rendered["production"]
    tfserving = find(objects, "Deployment", "tfserving")
    assert tfserving["spec"]["replicas"] >= 3
    anti = pod_spec(tfserving)["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    # With one pod per node required, a surge pod could not be scheduled on as many nodes as replicas.
    assert tfserving["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    gateway = find(objects, "Deployment", "gateway")
    assert "replicas" not in gateway["spec"], "the HPA owns the gateway's replica count"
    assert "podAntiAffinity" in pod_spec(gateway)["affinity"]
    hpa = find(objects, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert {pdb["metadata"]["name"] for pdb in of_kind(objects, "PodDisruptionBudget")} == {
        "gateway",
        "tfserving",
    }


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_the_training_job_never_starts_by_itself(rendered, name):
    job = find(rendered[name], "Job", "mnist-train")
    assert job["spec"]["suspend"] is True and job["spec"]["backoffLimit"] == 0
