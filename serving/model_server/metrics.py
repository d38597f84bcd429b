"""Request counts, latency and version states for Prometheus, named like TF Serving's own metrics."""

from collections.abc import Callable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REQUEST_COUNT = ":tensorflow:serving:request_count"  # prometheus_client exposes it as <name>_total
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
MODEL_LOAD_STATE = ":tensorflow:serving:model_version_state"
# TF Serving's request_latency buckets: exponential from 10 us, factor 1.8, 33 buckets (microseconds).
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
STATES = ("LOADING", "AVAILABLE", "UNLOADING", "END")
# Requests for a model the config does not list are counted under this name: client-chosen names must
# not create series (a flood of random names would otherwise grow the page without bound).
UNLISTED_MODEL = ""
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


class Metrics:
    """Prometheus series in a registry of their own; `is_listed(name)` says which model names count."""

    def __init__(self, is_listed: Callable[[str], bool]):
        prometheus_client.disable_created_metrics()  # TF Serving exports no *_created series
        self._is_listed = is_listed
        self.registry = CollectorRegistry(auto_describe=True)
        self._count = Counter(
            REQUEST_COUNT,
            "The total number of requests.",
            ("entrypoint", "model_name", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            REQUEST_LATENCY,
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("API", "entrypoint", "model_name"),
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._state = Gauge(
            MODEL_LOAD_STATE,
            "Whether a model version is in a state (1) or not (0).",
            ("model_name", "state", "version"),
            registry=self.registry,
        )

    def observe_request(
        self, model_name: str, api: str, entrypoint: str, status: str, latency_s: float
    ) -> None:
        """Count one request by status and record its latency in microseconds."""
        name = model_name if model_name and self._is_listed(model_name) else UNLISTED_MODEL
        self._count.labels(entrypoint, name, status).inc()
        self._latency.labels(api, entrypoint, name).observe(latency_s * 1e6)

    def set_version_state(self, model_name: str, version: int, state: str) -> None:
        """Set the model_version_state gauge: 1 for `state`, 0 for the other states."""
        for candidate in STATES:
            self._state.labels(model_name, candidate, str(version)).set(int(state == candidate))

    def render(self) -> str:
        """The text exposition page (prometheus_client escapes label values)."""
        return prometheus_client.generate_latest(self.registry).decode()
