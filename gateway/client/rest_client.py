"""TF Serving client over its REST API (JSON), one HTTP session per thread and process."""

import json
import os
import threading

import numpy as np
import requests

from contract.mnist import EXPLAIN_SIGNATURE_NAME, INPUT_KEY, PROBABILITIES_KEY, SIGNATURE_NAME
from gateway.client.base import Explanation, ModelVersionStatus, Prediction, ServingClient, with_retries
from gateway.client.outputs import (
    EXPLAIN_OUTPUTS,
    PREDICT_OUTPUTS,
    explanation_from_outputs,
    prediction_from_outputs,
)
from gateway.client.status import grpc_code_for_http, upstream_error
from gateway.config import GatewayConfig
from gateway.deadline import Deadline
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable


def rest_error(status: int, body: str, what: str) -> GatewayError:
    """The gateway error for a TF Serving REST error reply ({"error": "..."}) with HTTP `status`."""
    try:
        message = json.loads(body).get("error", body)
    except (ValueError, AttributeError):
        message = body
    return upstream_error(grpc_code_for_http(status), f"HTTP {status}: {message}", what)


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

    def _request(
        self, method: str, path: str, what: str, deadline: Deadline | None, payload: bytes | None = None
    ) -> dict:
        """One HTTP call within `deadline`, retrying connection failures and 503 with backoff."""
        deadline = deadline or Deadline.after(self._config.upstream_timeout_s)

        def attempt():
            remaining = deadline.left_for(what)
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
                raise rest_error(response.status_code, response.text, what)
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

    def predict(
        self,
        images: np.ndarray,
        *,
        version: int | None = None,
        label: str | None = None,
        deadline: Deadline | None = None,
    ) -> Prediction:
        """POST .../versions/<v>:predict in the columnar ("inputs") format.

        TF Serving's REST API has .../labels/<l>:predict and .../<name>:predict (the latest), but its
        reply does not say which version served, so a label is resolved first (metadata) and the
        version named in the predict; the router resolves the latest (status) for the same reason.
        """
        if (version is None) == (label is None):
            raise ValueError("a REST predict needs exactly one of version or label")
        if version is None:
            version = self.version_for_label(label, deadline)
        reply = self._predict(SIGNATURE_NAME, images, int(version), "predict", deadline)
        outputs = _outputs_from_reply(reply, PREDICT_OUTPUTS, PROBABILITIES_KEY)
        return prediction_from_outputs(outputs, len(images), int(version))

    def explain(self, images: np.ndarray, *, version: int, deadline: Deadline | None = None) -> Explanation:
        """POST .../versions/<version>:predict with signature_name explain."""
        reply = self._predict(EXPLAIN_SIGNATURE_NAME, images, int(version), "explain", deadline)
        outputs = _outputs_from_reply(reply, EXPLAIN_OUTPUTS, None)
        return explanation_from_outputs(outputs, len(images), int(version))

    def _predict(
        self, signature: str, images: np.ndarray, version: int, what: str, deadline: Deadline | None
    ) -> object:
        body = json.dumps(
            {"signature_name": signature, "inputs": {INPUT_KEY: images.astype(np.float32).tolist()}}
        ).encode()
        return self._request("POST", f"/versions/{version}:predict", what, deadline, body)

    def version_for_label(self, label: str, deadline: Deadline | None = None) -> int:
        """GET .../labels/<label>/metadata and read model_spec.version."""
        reply = self._request("GET", f"/labels/{_quote(label)}/metadata", "metadata", deadline)
        try:
            return int(reply["model_spec"]["version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"metadata for label {label!r} carries no version") from exc

    def model_status(self, deadline: Deadline | None = None) -> list[ModelVersionStatus]:
        """GET /v1/models/<name>: the model_version_status list."""
        reply = self._request("GET", "", "status", deadline)
        try:
            return [
                ModelVersionStatus(version=int(item["version"]), state=str(item["state"]))
                for item in reply.get("model_version_status", [])
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError("model status reply is malformed") from exc


def _outputs_from_reply(reply: object, keys: tuple[str, ...], sole: str | None) -> dict[str, np.ndarray]:
    """The columnar reply's outputs among `keys` as arrays.

    TF Serving writes a signature with one output as the bare value, not a map: that value is `sole`.
    """
    outputs = reply.get("outputs") if isinstance(reply, dict) else None
    if not isinstance(outputs, dict):
        if sole is None or outputs is None:
            raise UpstreamError("model reply has no usable outputs")
        outputs = {sole: outputs}
    arrays = {}
    for key in keys:
        if key not in outputs:
            continue
        try:
            arrays[key] = np.asarray(outputs[key])
        except (TypeError, ValueError) as exc:
            raise UpstreamError(f"model reply's {key!r} is not an array") from exc
        if arrays[key].dtype == object:
            raise UpstreamError(f"model reply's {key!r} is not a numeric array")
    return arrays


def _quote(label: str) -> str:
    return requests.utils.quote(label, safe="")
