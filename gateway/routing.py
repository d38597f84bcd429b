"""Which model version serves a request: explicit version, a label, or the default route with canary."""

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass

from contract.mnist import CANARY_LABEL
from gateway.client.base import ServingClient
from gateway.errors import NotFound, UpstreamUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """The version to call and the label it came from (None for explicit or latest)."""

    version: int
    label: str | None


class RoutingFile:
    """The canary share from a JSON file ({"canary_percent": 10}), re-read when its mtime changes."""

    def __init__(self, path: str):
        self.path = path
        self._mtime: float | None = None
        self._percent = 0.0

    def canary_percent(self) -> float:
        """The current canary share in percent; 0 when the file is absent or invalid."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            self._mtime, self._percent = None, 0.0
            return 0.0
        if mtime != self._mtime:
            self._mtime, self._percent = mtime, self._read()
        return self._percent

    def _read(self) -> float:
        try:
            with open(self.path) as handle:
                percent = float(json.load(handle).get("canary_percent", 0))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring routing file %s: %s", self.path, exc)
            return 0.0
        return min(100.0, max(0.0, percent))


class Router:
    """Resolve labels (cached for `cache_s`) and the default route; predict-path calls stay cheap."""

    def __init__(
        self,
        client: ServingClient,
        *,
        default_label: str,
        routing_file: RoutingFile,
        cache_s: float,
        rng: random.Random | None = None,
    ):
        self._client = client
        self._default_label = default_label
        self._routing_file = routing_file
        self._cache_s = cache_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._labels: dict[str, tuple[float, int | None]] = {}
        self._latest: tuple[float, int | None] | None = None

    def route(self, version: int | None = None, label: str | None = None) -> Route:
        """The version for a request's options; NotFound for an unknown label, 503 if none is servable."""
        if version is not None:
            return Route(version, None)
        if label is not None:
            resolved = self.resolve_label(label)
            if resolved is None:
                raise NotFound(f"unknown model version label {label!r}", code="unknown_label")
            return Route(resolved, label)
        return self.default_route()

    def default_route(self, *, allow_canary: bool = True) -> Route:
        """Canary by its share when the label exists, else the default label, else the latest version."""
        percent = self._routing_file.canary_percent() if allow_canary else 0.0
        if percent > 0 and self._rng.random() * 100 < percent:
            canary = self.resolve_label(CANARY_LABEL)
            if canary is not None:
                return Route(canary, CANARY_LABEL)
        if self._default_label:
            stable = self.resolve_label(self._default_label)
            if stable is not None:
                return Route(stable, self._default_label)
        latest = self.latest_available()
        if latest is None:
            raise UpstreamUnavailable("the model server has no AVAILABLE version of the model")
        return Route(latest, None)

    def resolve_label(self, label: str) -> int | None:
        """The label's version, or None when the model server does not know the label (both cached)."""
        now = time.monotonic()
        cached = self._labels.get(label)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            version: int | None = self._client.version_for_label(label)
        except NotFound:
            version = None
        with self._lock:
            self._labels[label] = (now + self._cache_s, version)
        return version

    def latest_available(self) -> int | None:
        """The highest AVAILABLE version (cached like labels)."""
        now = time.monotonic()
        if self._latest is not None and self._latest[0] > now:
            return self._latest[1]
        available = [item.version for item in self._client.model_status() if item.state == "AVAILABLE"]
        latest = max(available) if available else None
        self._latest = (now + self._cache_s, latest)
        return latest

    def forget(self) -> None:
        """Drop cached resolutions (a resolved version just disappeared)."""
        with self._lock:
            self._labels.clear()
            self._latest = None

    def known_labels(self) -> dict[str, int]:
        """Labels the gateway routes by that currently resolve, fresh from the model server."""
        self.forget()
        names = [name for name in dict.fromkeys([self._default_label, CANARY_LABEL]) if name]
        return {name: version for name in names if (version := self.resolve_label(name)) is not None}

    def routing_summary(self) -> dict:
        """The default route's configuration, for GET /v1/models."""
        return {
            "default": self._default_label or "latest",
            "canary_percent": self._routing_file.canary_percent(),
        }
