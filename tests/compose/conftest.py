"""Fixtures of the Compose tier: an engine, the stand-in base image, and a project of our own."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.compose.engine import StartedEngine, can_start_engine, engine_answers
from tests.support.model_server import baseline_version
from tests.support.processes import REPO_ROOT, free_port

PROJECT = "mnist-compose-test"  # never the user's `make up` project (mnist-serving)
COMPOSE_FILES = f"{REPO_ROOT / 'docker-compose.yml'}:{REPO_ROOT / 'docker-compose.local-server.yml'}"


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    """The Docker engine: one that answers already, else a dockerd started here (as root) and stopped after.

    Without either the tests skip, unless REQUIRE_DOCKER=1 (make test-compose, CI), where they fail.
    """
    if engine_answers():
        yield None
        return
    if not can_start_engine():
        message = "no Docker engine answers and this user cannot start dockerd (needs root and docker.io)"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    engine = StartedEngine(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def base_image(docker_engine):
    """The Dockerfiles' FROM image: present already, or built from Debian by scripts/build-base-image.sh."""
    started = time.monotonic()
    subprocess.run([str(REPO_ROOT / "scripts" / "build-base-image.sh")], check=True, cwd=REPO_ROOT)
    return time.monotonic() - started


@pytest.fixture(scope="session")
def workspace():
    """A world-readable directory with the committed baseline version and an empty state dir.

    World-readable because the containers read it as a non-root user; outside the repository so the test
    never touches the user's models or live state.
    """
    root = Path(tempfile.mkdtemp(prefix="mnist-compose-"))
    os.chmod(root, 0o755)
    baseline = str(baseline_version())  # what the committed models.config, seeded by `up`, labels stable
    shutil.copytree(REPO_ROOT / "models" / "mnist" / baseline, root / "models" / "mnist" / baseline)
    (root / "state").mkdir()
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_env(workspace):
    """The environment `python -m stack` and Compose run with: our project, files, ports and directories."""
    return {
        **os.environ,
        "STACK_MODE": "docker",
        "COMPOSE_PROJECT_NAME": PROJECT,
        "COMPOSE_FILE": COMPOSE_FILES,
        "MODELS_DIR": str(workspace / "models"),
        "STATE_DIR": str(workspace / "state"),
        "RUN_DIR": str(workspace / "run"),
        "STORAGE_PATH_PREFIX": str(workspace),  # /models/mnist in models.config is <workspace>/models/mnist
        "TF_SERVING_HOST": "127.0.0.1",
        "TF_SERVING_GRPC_PORT": str(free_port()),
        "TF_SERVING_REST_PORT": str(free_port()),
        "GATEWAY_PORT": str(free_port()),
        "UI_PORT": str(free_port()),
    }
