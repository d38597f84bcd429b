"""A client of the gateway's batch endpoint for the tools, and a local stack to point it at."""

from collections.abc import Iterator, Sequence
from pathlib import Path

import requests

BATCH = 64  # the gateway's default MAX_BATCH_SIZE
BATCH_BYTES = 8 * 1024 * 1024  # well under the gateway's 32 MB request cap, whatever the images weigh
TIMEOUT_S = 60


class BatchError(RuntimeError):
    """The gateway did not answer a batch as the API promises."""


def batches(images: Sequence[bytes]) -> Iterator[list[bytes]]:
    """Consecutive runs of at most BATCH images and BATCH_BYTES bytes (one image may exceed it alone)."""
    batch, size = [], 0
    for data in images:
        if batch and (len(batch) == BATCH or size + len(data) > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(data)
        size += len(data)
    if batch:
        yield batch


def _kind(data: bytes) -> str:
    """png or jpeg, from the file's signature (the hard JPEG variant is the only JPEG)."""
    return "jpeg" if data[:2] == b"\xff\xd8" else "png"


def predict_batch(url: str, files: list[bytes], params: dict[str, str]) -> tuple[list[dict], dict | None]:
    """One POST /v1/predict/batch: the per-image results in order, and the reply's model object."""
    response = requests.post(
        f"{url}/v1/predict/batch",
        params=params,
        files=[
            ("images", (f"{i}.{_kind(data)}", data, f"image/{_kind(data)}")) for i, data in enumerate(files)
        ],
        timeout=TIMEOUT_S,
    )
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    body = response.json() if is_json else {}
    # A batch none of whose images could be used is a 4xx that still lists each image's error.
    if response.status_code < 500 and body.get("error", {}).get("code") == "batch_failed":
        return body["results"], None
    if response.status_code != 200 or "results" not in body:
        detail = body.get("error") if body else response.text[:300]
        raise BatchError(f"POST {url}/v1/predict/batch answered {response.status_code}: {detail}")
    if len(body["results"]) != len(files):
        raise BatchError(f"sent {len(files)} images, the gateway answered {len(body['results'])} results")
    return body["results"], body.get("model")


def start_stack(models_dir: Path, version: int, log_dir: Path):
    """The local model server on `version` alone and a gunicorn gateway in front; return (url, services)."""
    from tests.fixtures.gateway_process import gateway_env, start_gateway
    from tests.support.model_server import start_model_server, write_model_config

    config = write_model_config(
        log_dir / "models.config", models_dir, policy=f"specific {{ versions: {version} }}"
    )
    server = start_model_server(log_dir, model_config_file=config)
    try:
        # A routing file of its own (absent: no labels): never the live state of a `make up` stack.
        routing = str(log_dir / "routing.json")
        env = gateway_env(
            server.grpc_port, server.rest_port, "grpc", MAX_BATCH_SIZE=str(BATCH), ROUTING_FILE=routing
        )
        gateway = start_gateway(log_dir, env)
    except BaseException:
        server.stop()
        raise
    return gateway.url, [gateway, server]
