"""Which model version serves a request: explicit version, a label, or the default route with canary."""

import logging
import os
import random
import threading
import time
from dataclasses import dataclass

from contract.mnist import CANARY_LABEL
from contract.routing import RoutingFileError, read_routing
from gateway.client.base import ServingClient
from gateway.deadline import Deadline
from gateway.errors import NotFound, UpstreamUnavailable

log = logging.getLogger(__name__)

NO_AVAILABLE_VERSION = "the model server has no AVAILABLE version of the model"


@dataclass(frozen=True)
class Route:
    """What to call: a version, a label TF Serving resolves itself, or neither (TF Serving's latest)."""

    version: int | None
    label: str | None


class RoutingFile:
    """The canary share from the routing file (contract/routing.py), re-read when its mtime changes."""

    def __init__(self, path: str):
        self.path = path
        self._mtime: float | None = None
        self._percent = 0.0

    def canary_percent(self) -> float:
        """The current canary share in percent; 0 when the file is absent, the last good one if invalid."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            self._mtime, self._percent = None, 0.0
            return 0.0
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._percent = float(read_routing(self.path)["canary_percent"])
            except RoutingFileError as exc:
                # A half-edited file must not flip traffic: keep serving the last good share.
                log.warning("keeping canary_percent=%s: %s", self._percent, exc)
        return self._percent


class Router:
    """Choose a request's route; labels and "latest" are resolved (cached `cache_s`) only where needed.

    Over gRPC a predict names the label, or no version at all for the latest, and TF Serving resolves
    it, so the predict path makes no metadata or status call; a label that turned out unknown is
    remembered for `cache_s` so the default route skips it. Over REST (whose predict reply does not
    name the version) labels are resolved with metadata, the latest with status, both cached.
    """

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
        self._by_reply = client.reply_names_version
        self._default_label = default_label
        self._routing_file = routing_file
        self._cache_s = cache_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._labels: dict[str, tuple[float, int | None]] = {}
        self._latest: tuple[float, int | None] | None = None

    def route(
        self, version: int | None = None, label: str | None = None, deadline: Deadline | None = None
    ) -> Route:
        """The route for a request's options; NotFound for an unknown label, 503 if none is servable."""
        if version is not None:
            return Route(version, None)
        if label is not None:
            if self._by_reply:
                return Route(None, label)
            resolved = self.resolve_label(label, deadline)
            if resolved is None:
                raise NotFound(f"unknown model version label {label!r}", code="unknown_label")
            return Route(resolved, label)
        return self.default_route(deadline=deadline)

    def default_route(
        self, *, allow_canary: bool = True, resolve: bool = False, deadline: Deadline | None = None
    ) -> Route:
        """Canary by its share when the label exists, else the default label, else the latest version.

        The latest is Route(None, None) where the predict reply names the version: TF Serving serves its
        latest AVAILABLE, so no status call can disagree with the predict (a KServe canary puts two
        revisions behind one target). `resolve` asks for a version number anyway (readiness).
        """
        percent = self._routing_file.canary_percent() if allow_canary else 0.0
        if percent > 0 and self._rng.random() * 100 < percent:
            canary = self._label_route(CANARY_LABEL, resolve, deadline)
            if canary is not None:
                return canary
        if self._default_label:
            stable = self._label_route(self._default_label, resolve, deadline)
            if stable is not None:
                return stable
        if self._by_reply and not resolve:
            return Route(None, None)
        latest = self.latest_available(deadline)
        if latest is None:
            raise UpstreamUnavailable(NO_AVAILABLE_VERSION)
        return Route(latest, None)

    def _label_route(self, label: str, resolve: bool, deadline: Deadline | None) -> Route | None:
        if self._by_reply and not resolve:
            return None if self._known_missing(label) else Route(None, label)
        version = self.resolve_label(label, deadline)
        return Route(version, label) if version is not None else None

    def _known_missing(self, label: str) -> bool:
        cached = self._labels.get(label)
        return cached is not None and cached[1] is None and cached[0] > time.monotonic()

    def resolve_label(self, label: str, deadline: Deadline | None = None) -> int | None:
        """The label's version, or None when the model server does not know the label (both cached)."""
        now = time.monotonic()
        cached = self._labels.get(label)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            version: int | None = self._client.version_for_label(label, deadline)
        except NotFound:
            version = None
        with self._lock:
            self._labels[label] = (now + self._cache_s, version)
        return version

    def label_missing(self, label: str) -> None:
        """Remember for `cache_s` that the model server cannot serve `label` (a predict said so)."""
        with self._lock:
            self._labels[label] = (time.monotonic() + self._cache_s, None)

    def latest_available(self, deadline: Deadline | None = None) -> int | None:
        """The highest AVAILABLE version (cached like labels)."""
        now = time.monotonic()
        if self._latest is not None and self._latest[0] > now:
            return self._latest[1]
        statuses = self._client.model_status(deadline)
        available = [item.version for item in statuses if item.state == "AVAILABLE"]
        latest = max(available) if available else None
        self._latest = (now + self._cache_s, latest)
        return latest

    def forget(self) -> None:
        """Drop cached resolutions (a resolved version just disappeared)."""
        with self._lock:
            self._labels.clear()
            self._latest = None

    def known_labels(self, deadline: Deadline | None = None) -> dict[str, int]:
        """Labels the gateway routes by that currently resolve (cached like any resolution, never flushed)."""
        names = [name for name in dict.fromkeys([self._default_label, CANARY_LABEL]) if name]
        resolved = {name: self.resolve_label(name, deadline) for name in names}
        return {name: version for name, version in resolved.items() if version is not None}

    def routing_summary(self) -> dict:
        """The default route's configuration, for GET /v1/models."""
        return {
            "default": self._default_label or "latest",
            "canary_percent": self._routing_file.canary_percent(),
        }
