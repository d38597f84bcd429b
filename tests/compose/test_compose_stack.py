"""Compose for real: images built from their Dockerfiles, the stack healthy, a predict, corrections kept
across a re-created gateway, a promote under traffic, and `make down` leaving nothing of the project
behind but the feedback volume.

The official tensorflow/serving image cannot be pulled here, so docker-compose.local-server.yml swaps in the
local model server's image (serving/Dockerfile), started by the same entrypoint and flags.
"""

import io
import json
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from stack.compose import Compose
from tests.compose.conftest import PROJECT
from tests.support.model_server import baseline_version
from tests.support.processes import REPO_ROOT, run_stack_cli
from tests.support.traffic import Traffic, export_copy
from tests.support.ui_client import canvas_value, drawn_digit, shown_digit
from training.dataset import DEFAULT_DATA_DIR
from training.idx import read_idx

pytestmark = [pytest.mark.compose, pytest.mark.slow]
TIMINGS: dict[str, float] = {}


def stack(env: dict, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`python -m stack <args>`, with room for image builds."""
    return run_stack_cli(env, *args, timeout=timeout)


def project_objects(kind: str) -> list[str]:
    """IDs of the project's containers, networks or volumes (Compose labels everything it creates)."""
    command = {
        "container": ["ps", "-a", "-q"],
        "network": ["network", "ls", "-q"],
        "volume": ["volume", "ls", "-q"],
    }
    result = subprocess.run(
        ["docker", *command[kind], "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


@pytest.fixture(scope="module")
def running_stack(base_image, stack_env):
    """Every image built (training included, not run), then `python -m stack up`; down again at the end."""
    TIMINGS["base image (build or reuse)"] = base_image
    assert not project_objects("container"), f"project {PROJECT} already has containers"
    compose = Compose(stack_env)
    for service, extra in [("tfserving", []), ("gateway", []), ("ui", []), ("train", ["--profile", "train"])]:
        started = time.monotonic()
        result = compose.run(*extra, "build", service, capture=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        TIMINGS[f"build {service}"] = time.monotonic() - started
    started = time.monotonic()
    up = stack(stack_env, "up")
    TIMINGS["stack up (cached images) -> healthy"] = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield compose
    finally:
        if project_objects("container"):
            print(compose.logs_tail(60))
        stack(stack_env, "down")
        remove_volumes()  # `down` keeps named volumes (the corrections); this project's are the test's own
        print("\n".join(f"{name}: {value:.1f} s" for name, value in TIMINGS.items()))


def remove_volumes() -> None:
    """Delete the test project's volumes (never another project's)."""
    volumes = project_objects("volume")
    if volumes:
        subprocess.run(["docker", "volume", "rm", *volumes], capture_output=True, check=True)


@pytest.fixture(scope="module")
def digits():
    images = read_idx(REPO_ROOT / DEFAULT_DATA_DIR / "t10k-images-idx3-ubyte")[:20]
    return [image.tolist() for image in images]


def test_every_service_is_healthy_through_its_healthcheck(running_stack, stack_env):
    assert running_stack.health() == {"tfserving": "healthy", "gateway": "healthy", "ui": "healthy"}
    status = stack(stack_env, "status")
    assert status.returncode == 0, status.stdout + status.stderr


def inspect(container: str, template: str) -> str:
    """`docker inspect -f <template>` of one container."""
    return subprocess.run(
        ["docker", "inspect", "-f", template, container], capture_output=True, text=True, check=True
    ).stdout


def test_services_run_non_root_on_read_only_roots(running_stack):
    for service, container in running_stack.container_ids().items():
        user, read_only = inspect(container, "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}").split()
        uid = subprocess.run(
            ["docker", "exec", container, "id", "-u"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert user not in ("", "root", "0") and uid != "0", f"{service} runs as {user!r} (uid {uid})"
        assert read_only == "true", service


def test_published_ports_are_on_loopback_only(running_stack):
    for service, container in running_stack.container_ids().items():
        ports = json.loads(inspect(container, "{{json .NetworkSettings.Ports}}"))
        bindings = [b for entries in ports.values() if entries for b in entries]
        assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}, (service, bindings)


def test_predict_through_the_published_gateway_port(running_stack, stack_env, digits):
    url = f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}/v1/predict"
    request = urllib.request.Request(
        url, data=json.dumps({"pixels": digits[0]}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    assert response.status == 200 and reply["digit"] == 7 and reply["model"]["version"] == baseline_version()


def test_ui_reads_a_drawn_digit_through_the_gateway(running_stack, stack_env, tmp_path):
    # Gradio keeps the upload in /tmp (tmpfs): the read-only root does not stop a drawing being read.
    client = Client(f"http://127.0.0.1:{stack_env['UI_PORT']}/", verbose=False)
    digit_html, *_ = client.predict(
        canvas_value(drawn_digit(tmp_path, 3)), "enhanced", "default", api_name="/predict_drawing"
    )
    assert shown_digit(digit_html) == 3


def feedback_stats(stack_env: dict) -> dict:
    """GET /v1/feedback/stats on the published gateway port."""
    url = f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}/v1/feedback/stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_correction(stack_env: dict, image: np.ndarray, label: int) -> dict:
    """POST /v1/feedback with the image as a PNG body and the label in the query; the 201 record."""
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}/v1/feedback?label={label}",
        data=png.getvalue(),
        headers={"Content-Type": "image/png"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_corrections_survive_recreating_the_gateway_container(running_stack, stack_env):
    images = read_idx(REPO_ROOT / DEFAULT_DATA_DIR / "t10k-images-idx3-ubyte")[:2]
    before = feedback_stats(stack_env)  # counts, not zero: a volume left by an aborted run still counts
    record = post_correction(stack_env, images[0], label=7)  # the first write migrates, as UID 10001
    assert feedback_stats(stack_env)["by_label"]["7"] == before["by_label"]["7"] + 1
    old_container = running_stack.container_ids()["gateway"]

    started = time.monotonic()
    result = running_stack.run(
        "up", "-d", "--no-deps", "--no-build", "--force-recreate", "gateway", capture=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    running_stack.wait_healthy()
    TIMINGS["gateway re-created -> healthy"] = time.monotonic() - started
    assert running_stack.container_ids()["gateway"] != old_container

    after = feedback_stats(stack_env)
    assert after["total"] == before["total"] + 1 and after["by_label"]["7"] == before["by_label"]["7"] + 1
    # The new container writes to the same volume too, and ids go on from the kept records.
    assert post_correction(stack_env, images[1], label=2)["id"] > record["id"]
    assert feedback_stats(stack_env)["total"] == before["total"] + 2


def test_promote_under_traffic_has_zero_failed_requests(running_stack, stack_env, workspace, digits):
    traffic = Traffic(f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}", digits)
    traffic.start()
    try:
        time.sleep(2)
        new = baseline_version() + 1
        export_copy(workspace / "models" / "mnist", new)  # the container sees it through the models mount
        since = time.monotonic()
        # The lifecycle asks the containerised model server (GetModelStatus on the published gRPC port)
        # and waits for the new version to be AVAILABLE before it moves `stable`.
        promote = stack(stack_env, "promote", str(new), "--force", timeout=300)
        assert promote.returncode == 0, promote.stdout + promote.stderr
        confirmed = time.monotonic()
        TIMINGS["new version -> promote confirmed"] = confirmed - since
        TIMINGS["promote confirmed -> replies from the new version"] = traffic.wait_until_only(new, confirmed)
        time.sleep(1)
    finally:
        traffic.stopping.set()
        traffic.join(15)
    failures = [reply for reply in traffic.replies if reply[1] != 200]
    print(f"requests: {len(traffic.replies)}, failed: {len(failures)}")
    assert not failures, failures[:5]
    assert len(traffic.replies) > 50 and {new - 1, new} <= set(traffic.versions_since(0))
    with urllib.request.urlopen(f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}/v1/models", timeout=10) as r:
        labels = {row["version"]: row["labels"] for row in json.loads(r.read())["versions"]}
    assert "stable" in labels[new] and "stable" not in labels[new - 1], labels


def test_make_down_leaves_no_container_or_network_and_keeps_the_feedback_volume(running_stack, stack_env):
    down = stack(stack_env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    for kind in ("container", "network"):
        assert project_objects(kind) == [], f"{kind}s of {PROJECT} left after down"
    assert project_objects("volume") == [f"{PROJECT}_feedback"]  # `volume ls -q` lists names
    remove_volumes()
    assert project_objects("volume") == []
