"""deploy/kserve: the InferenceService against KServe's own CRD schema, and the gateway configured for it.

The CRD and the TF Serving runtime are copies in deploy/kserve/schema/ (SOURCE.md), so this runs from a
fresh clone; where the originals are on the machine (KSERVE_SCHEMA_ORIGINAL, default ../shared/schemas/kserve
beside the repository), the copies must equal them.
"""

import copy
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from contract.mnist import MODEL_NAME
from gateway.config import ENV_VARS, GatewayConfig
from tests.support.kustomize import KSERVE_DIR, KUSTOMIZATIONS, containers, env_of, find, of_kind, render
from tests.support.openapi_schema import crd_version_schema, to_json_schema
from ui.config import UIConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = KSERVE_DIR / "schema"
CRD_FILE = SCHEMA_DIR / "serving.kserve.io_inferenceservices.yaml"
RUNTIME_FILE = SCHEMA_DIR / "kserve-tensorflow-serving.yaml"
ORIGINAL_DIR = Path(
    os.environ.get("KSERVE_SCHEMA_ORIGINAL", REPO_ROOT.parent / "shared" / "schemas" / "kserve")
)
COPIED = ("serving.kserve.io_inferenceservices.yaml", "kserve-tensorflow-serving.yaml", "LICENSE")
# The longest cold start the predictor's timeout (so the gateway's deadline) must cover: schedule a pod,
# start TF Serving from a cached image, load and warm up one version (README "Scaling out", KServe).
COLD_START_BUDGET_S = 30


def _load(path: Path):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD is 2 MB: libyaml's loader when built
    with open(path) as stream:
        return yaml.load(stream, Loader=loader)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    crd = _load(CRD_FILE)
    assert crd["spec"]["names"]["kind"] == "InferenceService"
    schema = crd_version_schema(crd, "v1beta1")
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render(KUSTOMIZATIONS["kserve"])


@pytest.fixture(scope="module")
def isvc(objects) -> dict:
    return find(objects, "InferenceService", MODEL_NAME)


@pytest.fixture(scope="module")
def runtime_args() -> list[str]:
    runtime = _load(RUNTIME_FILE)
    assert runtime["metadata"]["name"] == "kserve-tensorflow-serving"
    (container,) = runtime["spec"]["containers"]
    return container["args"]


def _errors(validator, item: dict) -> list[str]:
    return [f"{'.'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(item)]


def _merged(base: dict, patch: dict) -> dict:
    """`base` with a JSON merge patch (RFC 7386) applied, as `kubectl patch --type=merge` does."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.mark.parametrize("name", COPIED)
def test_schema_copies_equal_the_originals(name):
    original = ORIGINAL_DIR / name
    if not original.is_file():
        pytest.skip(f"no original at {original} to compare with (set KSERVE_SCHEMA_ORIGINAL)")
    assert (SCHEMA_DIR / name).read_bytes() == original.read_bytes()


def test_schema_copy_keeps_its_attribution():
    source = (SCHEMA_DIR / "SOURCE.md").read_text()
    assert "github.com/kserve/kserve" in source and "Apache License 2.0" in source
    assert "Apache License" in (SCHEMA_DIR / "LICENSE").read_text()


def test_the_inference_service_is_valid_for_kserves_crd(validator, isvc):
    assert _errors(validator, isvc) == []


def test_the_canary_patch_is_valid_for_kserves_crd(validator, isvc):
    patch = _load(KSERVE_DIR / "canary-patch.yaml")
    canary = _merged(isvc, patch)
    assert _errors(validator, canary) == []
    predictor = canary["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    assert predictor["model"]["storageUri"] != isvc["spec"]["predictor"]["model"]["storageUri"]


@pytest.mark.parametrize(
    "path, value, complaint",
    [
        (("spec", "predictor", "minReplica"), 0, "Additional properties"),
        (("spec", "predictor", "scaleMetric"), "qps", "is not one of"),
        (("spec", "predictor", "model", "storageURI"), "pvc://x", "Additional properties"),
        (("spec", "predictor", "minReplicas"), "zero", "is not of type"),
        (
            ("spec", "predictor", "model", "modelFormat"),
            {"nam": "tensorflow"},
            "'name' is a required property",
        ),
    ],
)
def test_validation_rejects_what_kserve_would(validator, isvc, path, value, complaint):
    broken = copy.deepcopy(isvc)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = _errors(validator, broken)
    assert errors and any(complaint in error for error in errors), errors


def test_the_converter_maps_kubernetes_extensions():
    schema = to_json_schema(
        {
            "type": "object",
            "properties": {
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
                "items": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}},
            },
        }
    )
    validator = jsonschema.Draft4Validator(schema)
    assert validator.is_valid({"port": 8080, "note": None, "free": {"any": 1}, "items": ["a"]})
    assert validator.is_valid({"port": "http"})
    assert not validator.is_valid({"port": 1.5})
    assert not validator.is_valid({"prot": 8080})
    assert "x-kubernetes-list-type" not in schema["properties"]["items"]


def test_the_runtime_is_kserves_tf_serving_at_the_projects_version(isvc, runtime_args):
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    tf_serving_tag = compose["services"]["tfserving"]["image"].rsplit(":", 1)[1]
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "tensorflow"
    assert model["runtime"] == _load(RUNTIME_FILE)["metadata"]["name"]
    assert model["runtimeVersion"] == tf_serving_tag
    # The runtime names the model after the InferenceService and reads no model config: no version labels.
    assert "--model_name={{.Name}}" in runtime_args and isvc["metadata"]["name"] == MODEL_NAME
    assert not [arg for arg in runtime_args if arg.startswith("--model_config_file")]


def test_knative_exposes_the_runtimes_grpc_port(isvc, runtime_args):
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    (port,) = isvc["spec"]["predictor"]["model"]["ports"]
    assert port["name"] == "h2c" and f"--port={port['containerPort']}" in runtime_args


def test_the_predictor_pod_passes_the_namespaces_restricted_pod_security(objects, isvc):
    namespace = find(objects, "Namespace", isvc["metadata"]["namespace"])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = isvc["spec"]["predictor"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = _load(RUNTIME_FILE)["spec"]["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] > 0


def test_it_scales_to_zero_on_concurrency(isvc):
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == 0 and predictor["maxReplicas"] >= 1
    assert predictor["scaleMetric"] == "concurrency" and predictor["scaleTarget"] > 0


def test_storage_uri_is_a_release_folder_on_the_model_claim(objects, isvc):
    claim = find(objects, "PersistentVolumeClaim", "mnist-models")["metadata"]["name"]
    uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert uri.startswith(f"pvc://{claim}/kserve/{MODEL_NAME}-")
    version = uri.rsplit("-", 1)[1]
    assert version.isdigit(), "the release folder holds the numeric version directory of that number"


def test_no_model_server_of_our_own_runs_beside_kserve(objects):
    names = {(item["kind"], item["metadata"]["name"]) for item in objects}
    assert (
        not {("Deployment", "tfserving"), ("Service", "tfserving"), ("Service", "tfserving-headless")} & names
    )


def test_the_gateway_is_configured_for_kserve_by_its_own_variables(objects, isvc, runtime_args):
    config_maps = {item["metadata"]["name"]: item for item in of_kind(objects, "ConfigMap")}
    (gateway,) = containers(find(objects, "Deployment", "gateway"))
    env = env_of(gateway, config_maps)
    assert set(env) <= set(ENV_VARS), set(env) - set(ENV_VARS)
    config = GatewayConfig.from_env(env)
    namespace = isvc["metadata"]["namespace"]
    assert (
        config.grpc_target == f"dns:///{isvc['metadata']['name']}-predictor.{namespace}.svc.cluster.local:80"
    )
    assert config.transport == "grpc" and config.model_name == isvc["metadata"]["name"]
    assert config.default_label == "", "no version labels on KServe: route to the latest AVAILABLE version"
    assert config.upstream_timeout_s >= COLD_START_BUDGET_S
    # Readiness must not call the predictor (each probe would be a request keeping it from zero).
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_knative_gives_up_on_a_cold_start_before_the_gateway_does(objects, validator, isvc):
    config_maps = {item["metadata"]["name"]: item for item in of_kind(objects, "ConfigMap")}
    (gateway,) = containers(find(objects, "Deployment", "gateway"))
    config = GatewayConfig.from_env(env_of(gateway, config_maps))
    timeout_s = isvc["spec"]["predictor"]["timeout"]  # KServe: the revision's timeoutSeconds
    assert _errors(validator, isvc) == []
    # Knative's activator answers first (504 -> gRPC UNAVAILABLE), so the gateway's answer is 503 +
    # Retry-After, not its own 504 at the deadline; and the activator waits out the cold start budgeted.
    assert COLD_START_BUDGET_S <= timeout_s < config.upstream_timeout_s
    assert config.retry_after_s > 0


def test_the_ui_waits_for_the_gateway_longer_than_the_gateway_waits_for_a_cold_start(objects):
    config_maps = {item["metadata"]["name"]: item for item in of_kind(objects, "ConfigMap")}
    (gateway,) = containers(find(objects, "Deployment", "gateway"))
    (ui,) = containers(find(objects, "Deployment", "ui"))
    ui_config = UIConfig.from_env(env_of(ui))
    assert (
        ui_config.gateway_timeout_s > GatewayConfig.from_env(env_of(gateway, config_maps)).upstream_timeout_s
    )


def test_gateway_env_file_is_what_the_gateway_gets(objects):
    lines = (KSERVE_DIR / "gateway.env").read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    (config_map,) = [
        c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("gateway-kserve")
    ]
    assert config_map["data"] == pairs
