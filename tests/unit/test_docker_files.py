"""Static checks of docker-compose.yml and the Dockerfiles (no Docker engine is needed or used)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILES = sorted(REPO_ROOT.glob("*/Dockerfile"))
_DEFAULTED_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolated(text: str) -> str:
    """Compose-style `${VAR:-default}` interpolation with an empty environment."""
    return _DEFAULTED_VARIABLE.sub(lambda match: match.group(2), text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(interpolated(COMPOSE_FILE.read_text()))


def test_compose_file_is_valid_compose_spec():
    from compose_spec import PyCompose

    parsed = PyCompose.from_yaml(interpolated(COMPOSE_FILE.read_text()))
    assert set(parsed.service_names()) == {"tfserving", "gateway", "ui", "train"}


def test_tf_serving_is_the_official_image_at_a_pinned_tag(compose):
    image = compose["services"]["tfserving"]["image"]
    name, _, tag = image.partition(":")
    assert name == "tensorflow/serving"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"unpinned tag {tag!r}"


def test_every_long_running_service_has_a_healthcheck_and_restart_policy(compose):
    for name in ("tfserving", "gateway", "ui"):
        service = compose["services"][name]
        has_check = "healthcheck" in service or _dockerfile_has_healthcheck(service)
        assert has_check, f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def _dockerfile_has_healthcheck(service: dict) -> bool:
    build = service.get("build")
    if not build:
        return False
    return "HEALTHCHECK" in (REPO_ROOT / build["dockerfile"]).read_text()


def test_tf_serving_healthcheck_needs_no_curl(compose):
    test = " ".join(compose["services"]["tfserving"]["healthcheck"]["test"])
    assert "curl" not in test and "wget" not in test


def test_dependencies_wait_for_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule["condition"] == "service_healthy"
    assert "tfserving" in services["gateway"]["depends_on"]
    assert "gateway" in services["ui"]["depends_on"]


def test_only_gateway_and_ui_publish_ports(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"gateway", "ui"}


def test_models_and_serving_config_are_mounted_read_only_into_tf_serving(compose):
    volumes = compose["services"]["tfserving"]["volumes"]
    assert "./models:/models:ro" in volumes and "./serving:/serving:ro" in volumes
    command = compose["services"]["tfserving"]["command"]
    for flag in ("--model_config_file=", "--monitoring_config_file=", "--batching_parameters_file="):
        (path,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(flag)]
        assert (REPO_ROOT / "serving" / Path(path).name).is_file(), path


def test_train_service_sits_behind_a_profile(compose):
    assert compose["services"]["train"]["profiles"] == ["train"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_is_multi_stage_non_root_and_pinned(dockerfile):
    text = dockerfile.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(bases) >= 2, "expected a multi-stage build"
    for base in bases:
        assert ":" in base and not base.endswith(":latest"), f"unpinned base {base}"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_contexts_small():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "data", "models"):
        assert entry in ignored
