"""Prometheus text exposition of request counts and latency, named like TF Serving's own metrics."""

import bisect
import threading
from collections import defaultdict

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
MODEL_LOAD_STATE = ":tensorflow:serving:model_version_state"
# TF Serving's request_latency buckets: exponential from 10 us, factor 1.8, 33 buckets (microseconds).
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    body = ",".join(f'{key}="{value}"' for key, value in pairs)
    return "{" + body + "}" if body else ""


class Metrics:
    """Thread-safe counters and histograms, rendered in the Prometheus text format."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple, int] = defaultdict(int)
        self._latency: dict[tuple, list] = {}
        self._states: dict[tuple, str] = {}

    def observe_request(
        self, model_name: str, api: str, entrypoint: str, status: str, latency_s: float
    ) -> None:
        """Count one request by status and record its latency."""
        latency_us = latency_s * 1e6
        key = (("entrypoint", entrypoint), ("model_name", model_name), ("status", status))
        hist_key = (("API", api), ("entrypoint", entrypoint), ("model_name", model_name))
        with self._lock:
            self._counts[key] += 1
            hist = self._latency.get(hist_key)
            if hist is None:
                hist = self._latency[hist_key] = [[0] * (len(LATENCY_BUCKETS_US) + 1), 0.0, 0]
            hist[0][bisect.bisect_left(LATENCY_BUCKETS_US, latency_us)] += 1
            hist[1] += latency_us
            hist[2] += 1

    def set_version_state(self, model_name: str, version: int, state: str) -> None:
        """Remember a version's state for the model_version_state gauge."""
        with self._lock:
            self._states[(model_name, version)] = state

    def render(self) -> str:
        """The exposition page."""
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        with self._lock:
            for key, value in sorted(self._counts.items()):
                lines.append(f"{REQUEST_COUNT}{_labels(key)} {value}")
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for key, (buckets, total, count) in sorted(self._latency.items()):
                running = 0
                for bound, bucket in zip(LATENCY_BUCKETS_US, buckets, strict=False):
                    running += bucket
                    lines.append(
                        f"{REQUEST_LATENCY}_bucket{_labels(key + (('le', f'{bound:g}'),))} {running}"
                    )
                lines.append(f"{REQUEST_LATENCY}_bucket{_labels(key + (('le', '+Inf'),))} {count}")
                lines.append(f"{REQUEST_LATENCY}_sum{_labels(key)} {total:.1f}")
                lines.append(f"{REQUEST_LATENCY}_count{_labels(key)} {count}")
            lines.append(f"# TYPE {MODEL_LOAD_STATE} gauge")
            for (name, version), state in sorted(self._states.items()):
                for candidate in ("LOADING", "AVAILABLE", "UNLOADING", "END"):
                    labels = (("model_name", name), ("state", candidate), ("version", str(version)))
                    lines.append(f"{MODEL_LOAD_STATE}{_labels(labels)} {int(state == candidate)}")
        return "\n".join(lines) + "\n"
