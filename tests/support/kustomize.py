"""Render the Kustomize trees under deploy/ with the real kubectl, and look objects up in the result."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = REPO_ROOT / "deploy" / "kubernetes"
KSERVE_DIR = REPO_ROOT / "deploy" / "kserve"
# Every kustomization the repository ships, by a short name.
KUSTOMIZATIONS = {
    "base": KUBERNETES_DIR / "base",
    "local": KUBERNETES_DIR / "overlays" / "local",
    "production": KUBERNETES_DIR / "overlays" / "production",
    "kserve": KSERVE_DIR,
}
# The manifests use kustomize v5 features (`labels`, `$patch: delete` in inline patches).
MIN_KUSTOMIZE_MAJOR = 5
RENDER_TIMEOUT_S = 60


def kubectl() -> str:
    """The kubectl binary; a test failure (not a skip) when there is none, saying what to install."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH: the deploy/ manifests are rendered with `kubectl kustomize` "
            "(kubectl >= 1.27 with kustomize v5). Install kubectl; no cluster is needed.",
            pytrace=False,
        )
    return path


def kustomize_version() -> str:
    """The kustomize version built into kubectl, e.g. v5.5.0."""
    result = subprocess.run(
        [kubectl(), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=True,
    )
    return json.loads(result.stdout).get("kustomizeVersion", "")


def render(directory: Path) -> list[dict]:
    """`kubectl kustomize directory`, parsed: one dict per object, in kubectl's order."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}", pytrace=False)
    return [item for item in yaml.safe_load_all(result.stdout) if item]


def find(objects: list[dict], kind: str, name: str) -> dict:
    """The one object of `kind` named `name`."""
    matches = [item for item in objects if item["kind"] == kind and item["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    """Every object of `kind`."""
    return [item for item in objects if item["kind"] == kind]


def pod_spec(workload: dict) -> dict:
    """The pod template's spec of a Deployment or Job."""
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    """A workload's containers and init containers."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict, config_maps: dict[str, dict] | None = None) -> dict[str, str]:
    """A container's literal environment: envFrom ConfigMaps (from `config_maps` by name), then `env`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        env.update((config_maps or {})[ref].get("data", {}))
    env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return env
