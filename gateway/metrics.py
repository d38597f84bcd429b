"""Prometheus metrics for the gateway; multi-process aware under gunicorn (PROMETHEUS_MULTIPROC_DIR)."""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Request latencies on this stack are milliseconds; buckets resolve 1 ms to 10 s.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """The gateway's metric families, registered in a registry of their own (one per app)."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "gateway_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_duration_seconds",
            "Model server call latency by transport and call",
            ["transport", "call"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Failed model server calls by error",
            ["transport", "code"],
            registry=registry,
        )
        self.preprocess_latency = Histogram(
            "gateway_preprocess_duration_seconds",
            "Decode + preprocessing time per image by mode",
            ["mode"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.predictions = Counter(
            "gateway_predictions_total",
            "Predicted digits by model version",
            ["digit", "version"],
            registry=registry,
        )
        self.rejections = Counter(
            "gateway_rejections_total",
            "Inputs refused on the model's judgement (reject=true), by reason and model version",
            ["reason", "version"],
            registry=registry,
        )
        self.feedback_received = Counter(
            "gateway_feedback_received_total",
            "Corrections stored (POST /v1/feedback), by the digit the user said it is",
            ["label"],
            registry=registry,
        )
        self.feedback_rejected = Counter(
            "gateway_feedback_rejected_total",
            "Corrections refused, nothing stored, by error code",
            ["code"],
            registry=registry,
        )
        self.model_version = Gauge(
            "gateway_model_version",
            "Model version that served the last prediction",
            ["label"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition: all workers' files in multi-process mode, else this registry."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
