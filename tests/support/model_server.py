"""Start the local TF-Serving-compatible model server for tests and wait until a version is AVAILABLE."""

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.mnist import STABLE_LABEL
from serving.flags_source import behaviour_flags
from tests.support.processes import READY_TIMEOUT_S, REPO_ROOT, ServiceProcess, free_port

MODEL_NAME = "mnist"
COMMITTED_MODEL_DIR = REPO_ROOT / "models" / "mnist"
# A tiny export with the same signature, used only while the committed baseline is not there yet.
SMOKE_MODEL_DIR = Path("/tmp/smoke_models")
# The flags `make up` and Compose use besides ports and models (serving/tfserving.flags, the one source);
# `extra_flags` come later and win.
DEFAULT_FLAGS = tuple(behaviour_flags())


def baseline_version(config_file: Path = REPO_ROOT / "serving" / "models.config") -> int:
    """The committed baseline: the version the committed default config labels `stable`."""
    from stack.model_config import mnist_entry, parse_config

    return int(mnist_entry(parse_config(Path(config_file).read_text())).version_labels[STABLE_LABEL])


def default_model_version_dir() -> Path:
    """The lowest committed version of models/mnist, or the smoke export when none is committed yet."""
    for base in (COMMITTED_MODEL_DIR, SMOKE_MODEL_DIR):
        if base.is_dir():
            versions = sorted(
                (int(child.name), child)
                for child in base.iterdir()
                if child.name.isdigit() and (child / "saved_model.pb").is_file()
            )
            if versions:
                return versions[0][1]
    raise FileNotFoundError(f"no SavedModel version under {COMMITTED_MODEL_DIR} or {SMOKE_MODEL_DIR}")


def copy_model(src_version_dir: Path, dst_base: Path, version: int) -> Path:
    """Copy one SavedModel version to `dst_base/<version>` via a staging name and an atomic rename."""
    dst_base = Path(dst_base)
    dst_base.mkdir(parents=True, exist_ok=True)
    staging = dst_base / f".staging-{version}"
    final = dst_base / str(version)
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(src_version_dir, staging)
    staging.rename(final)
    return final


@dataclass
class RunningModelServer:
    """A started model server process and where to reach it."""

    process: ServiceProcess
    grpc_port: int
    rest_port: int
    grpc_socket_path: Path | None = None  # set when started with --grpc_socket_path

    @property
    def grpc_target(self) -> str:
        """host:port for grpc.insecure_channel."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API."""
        return f"http://127.0.0.1:{self.rest_port}"

    def stop(self) -> int | None:
        """SIGTERM the server (it drains requests in flight) and return its exit code."""
        return self.process.stop()


def rest_call(
    server: RunningModelServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict]:
    """One REST request to the model server: (HTTP status, parsed JSON body), errors included."""
    request = urllib.request.Request(
        server.rest_url + path, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_available(
    server: RunningModelServer, model_name: str = MODEL_NAME, timeout_s: float = READY_TIMEOUT_S
) -> dict:
    """Poll GET /v1/models/{model_name} until a version is AVAILABLE; return the status body."""
    url = f"{server.rest_url}/v1/models/{model_name}"
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        if server.process.process.poll() is not None:
            raise RuntimeError(
                f"model server exited with {server.process.process.returncode}:\n{server.process.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = json.loads(response.read())
            states = [entry.get("state") for entry in body.get("model_version_status", [])]
            if "AVAILABLE" in states:
                return body
            last = f"states {states}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(
        f"model server not ready at {url} after {timeout_s}s ({last}):\n{server.process.log_tail()}"
    )


def start_model_server(
    log_dir: Path,
    *,
    model_base_path: Path | None = None,
    model_config_file: Path | None = None,
    extra_flags: Sequence[str] = (),
    name: str = "model_server",
    model_name: str = MODEL_NAME,
) -> RunningModelServer:
    """Start `python -m serving.model_server` on free ports; wait until `model_name` has a version AVAILABLE.

    With neither `model_base_path` nor `model_config_file`, a copy of the default model is served from
    `log_dir/models/mnist/1`. DEFAULT_FLAGS go first, so configs with labels work as with `make serve`.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    grpc_port, rest_port = free_port(), free_port()
    while rest_port == grpc_port:
        rest_port = free_port()
    args = ["-m", "serving.model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
    if model_config_file is not None:
        args.append(f"--model_config_file={model_config_file}")
    else:
        if model_base_path is None:
            model_base_path = log_dir / "models" / model_name
            if not (model_base_path / "1").exists():
                copy_model(default_model_version_dir(), model_base_path, 1)
        args += [f"--model_name={model_name}", f"--model_base_path={model_base_path}"]
    args += [*DEFAULT_FLAGS, *extra_flags]
    server = RunningModelServer(ServiceProcess(name, args, log_dir), grpc_port, rest_port)
    try:
        wait_available(server, model_name)
    except BaseException:
        server.stop()
        raise
    return server


def write_model_config(
    path: Path,
    base_path: Path,
    *,
    policy: str = "latest { num_versions: 1 }",
    labels: dict[str, int] | None = None,
    model_name: str = MODEL_NAME,
) -> Path:
    """Write a models.config (text ModelServerConfig) for one model; return its path."""
    label_lines = "".join(
        f'    version_labels {{ key: "{key}" value: {value} }}\n' for key, value in (labels or {}).items()
    )
    Path(path).write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{model_name}"\n    base_path: "{Path(base_path).resolve()}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {policy} }}\n{label_lines}  }}\n}}\n"
    )
    return Path(path)


def start_stable_and_canary_server(root: Path) -> RunningModelServer:
    """A model server with versions 1 and 2 of the committed model, `stable` -> 1 and `canary` -> 2."""
    base = root / "models" / "mnist"
    for version in (1, 2):
        copy_model(default_model_version_dir(), base, version)
    config = write_model_config(
        root / "models.config", base, policy="all {}", labels={"stable": 1, "canary": 2}
    )
    return start_model_server(root, model_config_file=config)


def official_predict_request(
    images: np.ndarray, name: str = "mnist", version: int | None = None, label: str | None = None
):
    """A PredictRequest built with the official protos (images as typed float_val, optional version/label)."""
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    proto = request.inputs["image"]
    proto.dtype = types_pb2.DT_FLOAT
    for size in images.shape:
        proto.tensor_shape.dim.add().size = size
    proto.float_val.extend(images.ravel().tolist())
    return request
