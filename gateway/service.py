"""The prediction use case: decode, preprocess, route, one upstream call (two to explain), shape the reply."""

import base64
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from contract.mnist import (
    DIGIT_SCORE_KEY,
    EXPLAIN_BASELINE,
    EXPLAIN_METHOD,
    EXPLAIN_SIGNATURE_NAME,
    EXPLAIN_STEPS,
    IS_DIGIT_KEY,
    MODEL_NAME,
)
from gateway.client.base import Explanation, Prediction, ServingClient
from gateway.config import GatewayConfig
from gateway.deadline import Deadline
from gateway.errors import (
    ExplanationUnavailable,
    GatewayError,
    JudgementUnavailable,
    MissingSignature,
    NotADigit,
    NotFound,
    UpstreamError,
    UpstreamUnavailable,
)
from gateway.heatmap import heatmap_png
from gateway.inputs import ImageInput, Options
from gateway.metrics import GatewayMetrics
from gateway.preprocess import decode_image, pixels_to_image, preprocess, stack, to_png
from gateway.routing import NO_AVAILABLE_VERSION, Route, Router

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

    def predict(
        self, images: list[np.ndarray], options: Options, deadline: Deadline | None = None
    ) -> tuple[Prediction, Route, float]:
        """One upstream predict for the batch, all upstream calls within one deadline (the request's).

        The default route falls back (canary -> default label -> latest) past a label the server
        cannot serve, and re-routes when a cached version vanished in a hot swap; an unpinned latest
        that finds no version is a 503. reject=true against a version without the digit judgement is
        a 409: the guard asked for cannot be given.
        """
        batch = stack(images)
        deadline = deadline or Deadline.after(self.config.upstream_timeout_s)
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
                if route.version is None and route.label is None:
                    # The unpinned latest found nothing: no version is AVAILABLE, nothing to fall back to.
                    raise UpstreamUnavailable(NO_AVAILABLE_VERSION) from error
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
        if options.reject and prediction.digit_score is None:
            raise JudgementUnavailable(
                f"model version {prediction.version} has no digit judgement ({DIGIT_SCORE_KEY}, "
                f"{IS_DIGIT_KEY}), so reject=true cannot be honoured: ask a version that has it, "
                "or leave reject off",
                details={"version": prediction.version},
            )
        return prediction, route, upstream_ms

    def _call(self, batch: np.ndarray, route: Route, deadline: Deadline) -> Prediction:
        with self._upstream("predict"):
            return self.client.predict(
                batch,
                version=route.version,
                label=route.label if route.version is None else None,
                deadline=deadline,
            )

    @contextmanager
    def _upstream(self, call: str):
        """Time an upstream call and count its failure."""
        start = time.perf_counter()
        try:
            yield
        except GatewayError as error:
            self.metrics.upstream_errors.labels(self.client.transport, error.code).inc()
            raise
        finally:
            self.metrics.upstream_latency.labels(self.client.transport, call).observe(
                time.perf_counter() - start
            )

    def explain(
        self, images: list[np.ndarray], version: int, deadline: Deadline
    ) -> tuple[Explanation, float]:
        """One call to the explain signature of exactly `version` (the one that predicted), in `deadline`.

        409 explanation_unavailable when that version has no such signature.
        """
        start = time.perf_counter()
        try:
            with self._upstream("explain"):
                explanation = self.client.explain(stack(images), version=version, deadline=deadline)
        except MissingSignature as error:
            raise ExplanationUnavailable(
                f"model version {version} has no {EXPLAIN_SIGNATURE_NAME!r} signature, so it cannot "
                "explain its answer: ask a version that has one, or leave explain off",
                details={"version": version},
            ) from error
        except NotFound as error:
            # The version answered the predict, then went (a hot swap): explaining another would mix versions.
            raise UpstreamUnavailable(
                f"model version {version} was unloaded between its answer and the explanation; retry",
                code="version_unloaded",
            ) from error
        return explanation, _ms(time.perf_counter() - start)

    def rejection(self, prediction: Prediction, index: int, options: Options) -> NotADigit | None:
        """The not_a_digit error for image `index` when reject=true and the model judged it no digit."""
        if not options.reject or bool(prediction.is_digit[index]):
            return None
        probabilities = prediction.probabilities[index]
        digit = int(np.argmax(probabilities))
        score = float(prediction.digit_score[index])
        self.metrics.rejections.labels(NotADigit.code, str(prediction.version)).inc()
        return NotADigit(
            f"this does not look like a digit to model version {prediction.version} "
            f"({DIGIT_SCORE_KEY} {score:.3f}); its best guess would be {digit}",
            details={
                DIGIT_SCORE_KEY: score,
                "digit": digit,
                "confidence": float(probabilities[digit]),
                "version": prediction.version,
            },
        )

    def result(self, prediction: Prediction, index: int, prepared: PreparedImage, options: Options) -> dict:
        """The per-image part of a reply: digit, confidence, probabilities, judgement (+ processed image).

        `is_digit` and `digit_score` are None when the version has no judgement.
        """
        probabilities = prediction.probabilities[index]
        digit = int(np.argmax(probabilities))
        self.metrics.predictions.labels(str(digit), str(prediction.version)).inc()
        judged = prediction.digit_score is not None
        result = {
            "digit": digit,
            "confidence": float(probabilities[digit]),
            "probabilities": [float(value) for value in probabilities],
            IS_DIGIT_KEY: bool(prediction.is_digit[index]) if judged else None,
            DIGIT_SCORE_KEY: float(prediction.digit_score[index]) if judged else None,
        }
        if options.return_processed:
            result["processed_image"] = base64.b64encode(to_png(prepared.image)).decode("ascii")
        return result

    def explanation(self, explanation: Explanation, index: int, image: np.ndarray, options: Options) -> dict:
        """The "explanation" object of one result: method, heat-map PNG over `image` (+ raw values)."""
        attribution = explanation.attribution[index]
        reply = {
            "method": EXPLAIN_METHOD,
            "baseline": EXPLAIN_BASELINE,
            "steps": EXPLAIN_STEPS,
            "digit": int(explanation.digits[index]),
            "heatmap_png": base64.b64encode(heatmap_png(image, attribution)).decode("ascii"),
        }
        if options.explain_values:
            reply["values"] = attribution.tolist()
        return reply

    def model_info(self, prediction: Prediction, route: Route) -> dict:
        """The "model" object of a reply: name, served version, label it was routed by."""
        label = route.label if route.version in (None, prediction.version) else None
        return {"name": self.model_name, "version": prediction.version, "label": label}
