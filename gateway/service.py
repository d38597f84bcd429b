"""The prediction use case: decode, preprocess, route, one upstream call, shape the reply."""

import base64
import time
from dataclasses import dataclass

import numpy as np

from contract.mnist import MODEL_NAME
from gateway.client.base import Prediction, ServingClient
from gateway.config import GatewayConfig
from gateway.deadline import Deadline
from gateway.errors import GatewayError, NotFound, UpstreamError
from gateway.inputs import ImageInput, Options
from gateway.metrics import GatewayMetrics
from gateway.preprocess import decode_image, pixels_to_image, preprocess, stack, to_png
from gateway.routing import Route, Router

# Routes one predict may try: canary, then the default label, then the latest version.
MAX_ROUTE_ATTEMPTS = 3


@dataclass
class PreparedImage:
    """A model-ready 28x28 image and how long it took to get there."""

    image: np.ndarray
    decode_ms: float
    preprocess_ms: float


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class PredictionService:
    """Turns request inputs into predictions through the configured client and router."""

    def __init__(self, config: GatewayConfig, client: ServingClient, router: Router, metrics: GatewayMetrics):
        self.config = config
        self.client = client
        self.router = router
        self.metrics = metrics
        self.model_name = config.model_name or MODEL_NAME

    def prepare(self, item: ImageInput, mode: str) -> PreparedImage:
        """Decode and preprocess one input; raises the 4xx error for bad input."""
        start = time.perf_counter()
        if item.data is not None:
            gray = decode_image(item.data, max_pixels=self.config.max_image_pixels)
        else:
            gray = pixels_to_image(item.pixels)
        decoded = time.perf_counter()
        image = preprocess(gray, mode)
        done = time.perf_counter()
        self.metrics.preprocess_latency.labels(mode).observe(done - start)
        return PreparedImage(image=image, decode_ms=_ms(decoded - start), preprocess_ms=_ms(done - decoded))

    def predict(self, images: list[np.ndarray], options: Options) -> tuple[Prediction, Route, float]:
        """One upstream predict for the batch, all upstream calls within one UPSTREAM_TIMEOUT_S deadline.

        The default route falls back (canary -> default label -> latest) past a label the server
        cannot serve, and re-routes when a cached version vanished in a hot swap.
        """
        batch = stack(images)
        deadline = Deadline.after(self.config.upstream_timeout_s)
        start = time.perf_counter()
        route = self.router.route(options.version, options.label, deadline)
        for attempt in range(MAX_ROUTE_ATTEMPTS):
            try:
                prediction = self._call(batch, route, deadline)
                break
            except NotFound as error:
                if options.version is not None:
                    raise NotFound(
                        f"model version {options.version} is not served", code="unknown_version"
                    ) from error
                if options.label is not None and route.version is None:
                    if error.code == "unknown_label":
                        raise NotFound(
                            f"unknown model version label {route.label!r}", code="unknown_label"
                        ) from error
                    raise  # the label's version is not served
                if attempt + 1 == MAX_ROUTE_ATTEMPTS:
                    raise
                if route.version is None:
                    # Default route: the server cannot serve this label (unknown, or its version not
                    # loaded); skip it for LABEL_CACHE_S and fall back to the next choice.
                    self.router.label_missing(route.label)
                else:
                    # A label or "latest" moved (hot swap) since it was cached: resolve afresh.
                    self.router.forget()
                route = self.router.route(None, options.label, deadline)
        upstream_ms = _ms(time.perf_counter() - start)
        if not np.isfinite(prediction.probabilities).all():
            raise UpstreamError("the model returned non-finite probabilities")
        self.metrics.model_version.labels(route.label or "none").set(prediction.version)
        return prediction, route, upstream_ms

    def _call(self, batch: np.ndarray, route: Route, deadline: Deadline) -> Prediction:
        start = time.perf_counter()
        try:
            return self.client.predict(
                batch,
                version=route.version,
                label=route.label if route.version is None else None,
                deadline=deadline,
            )
        except GatewayError as error:
            self.metrics.upstream_errors.labels(self.client.transport, error.code).inc()
            raise
        finally:
            self.metrics.upstream_latency.labels(self.client.transport, "predict").observe(
                time.perf_counter() - start
            )

    def result(
        self, probabilities: np.ndarray, prepared: PreparedImage, options: Options, version: int
    ) -> dict:
        """The per-image part of a reply: digit, confidence, probabilities (+ processed image)."""
        digit = int(np.argmax(probabilities))
        self.metrics.predictions.labels(str(digit), str(version)).inc()
        result = {
            "digit": digit,
            "confidence": float(probabilities[digit]),
            "probabilities": [float(value) for value in probabilities],
        }
        if options.return_processed:
            result["processed_image"] = base64.b64encode(to_png(prepared.image)).decode("ascii")
        return result

    def model_info(self, prediction: Prediction, route: Route) -> dict:
        """The "model" object of a reply: name, served version, label it was routed by."""
        label = route.label if route.version in (None, prediction.version) else None
        return {"name": self.model_name, "version": prediction.version, "label": label}
