"""Static checks of docker-compose.yml and the Dockerfiles (no Docker engine is needed or used)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
LOCAL_SERVER_OVERRIDE = REPO_ROOT / "docker-compose.local-server.yml"
DOCKERFILES = sorted(REPO_ROOT.glob("*/Dockerfile"))
GATEWAY_DOCKERFILE = REPO_ROOT / "gateway" / "Dockerfile"
LONG_RUNNING = ("tfserving", "gateway", "ui")
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


def test_every_published_port_is_on_loopback_by_default(compose):
    for name, service in compose["services"].items():
        for mapping in service.get("ports") or []:
            assert mapping.startswith("127.0.0.1:"), f"{name} publishes {mapping} beyond loopback"
    assert set(LONG_RUNNING) == {n for n, s in compose["services"].items() if s.get("ports")}


def test_gateway_and_ui_bind_address_is_the_operators_choice():
    text = COMPOSE_FILE.read_text()
    assert "${GATEWAY_PUBLISH_ADDR:-127.0.0.1}:${GATEWAY_PORT:-8000}:8000" in text
    assert "${UI_PUBLISH_ADDR:-127.0.0.1}:${UI_PORT:-7860}:7860" in text


def test_no_top_level_name_so_docker_compose_1_29_runs_it(compose):
    assert set(compose) == {"services", "volumes"}


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_service_is_non_root_with_a_read_only_root(compose, name):
    service = compose["services"][name]
    user = service.get("user") or _dockerfile_user(service)
    assert user and user.split(":")[0] not in ("root", "0"), f"{name} runs as {user!r}"
    assert service.get("read_only") is True and "/tmp" in service.get("tmpfs", [])


def _dockerfile_user(service: dict) -> str | None:
    build = service.get("build")
    if not build:
        return None
    users = re.findall(r"^USER\s+(\S+)", (REPO_ROOT / build["dockerfile"]).read_text(), flags=re.MULTILINE)
    return users[-1] if users else None


def test_models_and_serving_config_are_mounted_read_only_into_tf_serving(compose):
    from serving.flags_source import CONTAINER_SERVING_DIR, read_flags

    volumes = compose["services"]["tfserving"]["volumes"]
    assert "./models:/models:ro" in volumes and f"./serving:{CONTAINER_SERVING_DIR}:ro" in volumes
    for flag in ("--monitoring_config_file=", "--batching_parameters_file="):
        (path,) = [arg.split("=", 1)[1] for arg in read_flags() if arg.startswith(flag)]
        assert path.startswith(CONTAINER_SERVING_DIR + "/")
        assert (REPO_ROOT / "serving" / Path(path).name).is_file(), path


def test_live_state_is_mounted_read_only_where_the_flags_and_gateway_look(compose):
    from contract.state import CONTAINER_STATE_DIR, MODEL_CONFIG_FILE, ROUTING_FILE
    from serving.flags_source import read_flags

    state_mount = f"./state:{CONTAINER_STATE_DIR}:ro"
    services = compose["services"]
    assert state_mount in services["tfserving"]["volumes"] and state_mount in services["gateway"]["volumes"]
    assert f"--model_config_file={CONTAINER_STATE_DIR}/{MODEL_CONFIG_FILE}" in read_flags()
    assert services["gateway"]["environment"]["ROUTING_FILE"] == f"{CONTAINER_STATE_DIR}/{ROUTING_FILE}"


def _gateway_feedback_dir() -> PurePosixPath:
    """Where the gateway image keeps the default feedback database: WORKDIR / contract's relative path."""
    from contract.feedback import DEFAULT_FEEDBACK_DATABASE

    (workdir,) = re.findall(r"^WORKDIR\s+(\S+)", GATEWAY_DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert not PurePosixPath(DEFAULT_FEEDBACK_DATABASE).is_absolute()
    return PurePosixPath(workdir) / PurePosixPath(DEFAULT_FEEDBACK_DATABASE).parent


def test_gateway_keeps_feedback_on_a_named_volume_where_the_default_database_lives(compose):
    mounts = [v for v in compose["services"]["gateway"]["volumes"] if v.startswith("feedback:")]
    assert mounts == [f"feedback:{_gateway_feedback_dir()}"]
    assert "feedback" in compose["volumes"]


def test_gateway_image_makes_the_feedback_dir_owned_by_its_user():
    # A named volume copies the image directory's owner when first mounted: root-owned, nothing could write.
    text = GATEWAY_DOCKERFILE.read_text()
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)[-1]
    assert f"RUN install -d -o {user} -g {user} {_gateway_feedback_dir()}\n" in text


def test_feedback_database_url_passes_through_and_empty_means_the_sqlite_default(compose):
    from contract.feedback import DEFAULT_FEEDBACK_DATABASE
    from gateway.config import GatewayConfig

    assert "FEEDBACK_DATABASE_URL: ${FEEDBACK_DATABASE_URL:-}" in COMPOSE_FILE.read_text()
    unset = compose["services"]["gateway"]["environment"]["FEEDBACK_DATABASE_URL"]
    config = GatewayConfig.from_env({"FEEDBACK_DATABASE_URL": unset or ""})
    assert config.feedback_database == f"sqlite:///{DEFAULT_FEEDBACK_DATABASE}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_no_dockerfile_declares_a_volume_that_make_down_would_leave(dockerfile):
    # `make down` runs `down` without --volumes (it keeps the feedback volume), so anonymous volumes stay.
    assert not re.search(r"^VOLUME\b", dockerfile.read_text(), flags=re.MULTILINE | re.IGNORECASE)


def test_make_down_keeps_named_volumes(tmp_path):
    from stack.compose import Compose

    seen = tmp_path / "argv"
    fake_cli = [sys.executable, "-c", f"import sys; open({str(seen)!r}, 'w').write(' '.join(sys.argv[1:]))"]
    Compose({"COMPOSE_PROJECT_NAME": "p"}, cli=fake_cli).down()
    argv = seen.read_text().split()
    assert argv[:3] == ["-p", "p", "down"] and "--volumes" not in argv and "-v" not in argv


def test_local_server_override_swaps_only_the_tfserving_image():
    override = yaml.safe_load(LOCAL_SERVER_OVERRIDE.read_text())
    assert set(override) == {"services"} and set(override["services"]) == {"tfserving"}
    assert set(override["services"]["tfserving"]) == {"image", "build"}
    assert override["services"]["tfserving"]["build"]["dockerfile"] == "serving/Dockerfile"


def test_local_server_image_answers_to_the_official_binary_name():
    text = (REPO_ROOT / "serving" / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["tensorflow_model_server"\]', text, flags=re.MULTILINE)
    shim = REPO_ROOT / "serving" / "tensorflow_model_server"
    assert shim.stat().st_mode & 0o111 and "python -m serving.model_server" in shim.read_text()


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
    for entry in (".git", ".venv", "data", "models", "state", "run"):
        assert entry in ignored


FIRST_PARTY = ("contract", "training", "serving", "gateway", "ui")


def _first_party_imports(package: Path) -> set[str]:
    """Top-level first-party packages that the modules of `package` import."""
    found = set()
    for module in package.rglob("*.py"):
        for match in re.finditer(r"^\s*(?:from|import)\s+(\w+)", module.read_text(), flags=re.MULTILINE):
            if match.group(1) in FIRST_PARTY:
                found.add(match.group(1))
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_image_copies_every_first_party_package_its_code_imports(dockerfile):
    copied = set(re.findall(r"^COPY\s+(\w+)/\s", dockerfile.read_text(), flags=re.MULTILINE))
    package = dockerfile.parent
    needed = _first_party_imports(package) | {package.name}
    assert needed <= copied, f"{dockerfile.relative_to(REPO_ROOT)} does not copy {sorted(needed - copied)}"
