"""TF Serving client over its REST API (JSON), one HTTP session per thread and process."""

import json
import os
import threading
import time

import numpy as np
import requests

from contract.mnist import INPUT_KEY, NUM_CLASSES, PROBABILITIES_KEY, SIGNATURE_NAME
from gateway.client.base import ModelVersionStatus, Prediction, ServingClient, with_retries
from gateway.config import GatewayConfig
from gateway.errors import NotFound, UpstreamError, UpstreamTimeout, UpstreamUnavailable


def upstream_error(status: int, body: str, what: str) -> Exception:
    """Map a TF Serving REST error reply ({"error": "..."}) to the gateway error the API reports."""
    try:
        message = json.loads(body).get("error", body)
    except (ValueError, AttributeError):
        message = body
    message = str(message)[:500]
    if status == 404:
        return NotFound(f"model server: {message}", code="unknown_version")
    if status == 400 and "label" in message.lower():
        return NotFound(f"model server: {message}", code="unknown_label")
    if status in (429, 503):
        return UpstreamUnavailable(f"model server unavailable: {message}")
    if status == 504:
        return UpstreamTimeout(f"model server did not answer {what} in time")
    return UpstreamError(f"model server {what} failed with HTTP {status}: {message}")


class RestServingClient(ServingClient):
    """The REST twin of GrpcServingClient: same calls, same errors, same retries."""

    transport = "rest"

    def __init__(self, config: GatewayConfig):
        self._config = config
        self._base = f"{config.rest_url}/v1/models/{config.model_name}"
        self._local = threading.local()

    def _session(self) -> requests.Session:
        """This thread's session; a forked child or a new thread opens its own connections."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.session = requests.Session()
            local.pid = os.getpid()
        return local.session

    def _request(self, method: str, path: str, what: str, payload: bytes | None = None) -> dict:
        """One HTTP call with a deadline, retrying connection failures and 503 with backoff."""
        deadline = time.monotonic() + self._config.upstream_timeout_s

        def attempt():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout(f"model server did not answer {what} in time")
            try:
                response = self._session().request(
                    method,
                    self._base + path,
                    data=payload,
                    timeout=remaining,
                    headers={"Content-Type": "application/json"} if payload is not None else None,
                )
            except requests.Timeout as exc:
                raise UpstreamTimeout(f"model server did not answer {what} in time") from exc
            except requests.ConnectionError as exc:
                raise UpstreamUnavailable(f"model server unreachable: {exc.__class__.__name__}") from exc
            if response.status_code != 200:
                raise upstream_error(response.status_code, response.text, what)
            try:
                return response.json()
            except ValueError as exc:
                raise UpstreamError(f"model server {what} reply is not JSON") from exc

        return with_retries(
            attempt,
            retries=self._config.upstream_retries,
            backoff_s=self._config.upstream_backoff_s,
            deadline=deadline,
        )

    def predict(self, images: np.ndarray, version: int) -> Prediction:
        """POST .../versions/<v>:predict in the columnar ("inputs") format."""
        body = json.dumps(
            {"signature_name": SIGNATURE_NAME, "inputs": {INPUT_KEY: images.astype(np.float32).tolist()}}
        ).encode()
        reply = self._request("POST", f"/versions/{int(version)}:predict", "predict", body)
        outputs = reply.get("outputs") if isinstance(reply, dict) else None
        if isinstance(outputs, dict):
            outputs = outputs.get(PROBABILITIES_KEY)
        try:
            probabilities = np.asarray(outputs, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise UpstreamError("model reply has no usable probabilities") from exc
        if probabilities.shape != (len(images), NUM_CLASSES):
            raise UpstreamError(f"model returned probabilities of shape {list(probabilities.shape)}")
        return Prediction(probabilities=probabilities, version=int(version))

    def version_for_label(self, label: str) -> int:
        """GET .../labels/<label>/metadata and read model_spec.version."""
        reply = self._request("GET", f"/labels/{requests.utils.quote(label, safe='')}/metadata", "metadata")
        try:
            return int(reply["model_spec"]["version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"metadata for label {label!r} carries no version") from exc

    def model_status(self) -> list[ModelVersionStatus]:
        """GET /v1/models/<name>: the model_version_status list."""
        reply = self._request("GET", "", "status")
        try:
            return [
                ModelVersionStatus(version=int(item["version"]), state=str(item["state"]))
                for item in reply.get("model_version_status", [])
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError("model status reply is malformed") from exc
