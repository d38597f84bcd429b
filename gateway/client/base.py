"""The interface the gateway uses to talk to TF Serving, whatever the transport."""

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from gateway.deadline import Deadline
from gateway.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Prediction:
    """Class probabilities [N, 10], the model's digit judgement and the version that computed them.

    `digit_score` (float32 [N], 0..1) and `is_digit` (bool [N]) are None for a version exported
    without them: no judgement is available, and none is made up.
    """

    probabilities: np.ndarray
    version: int
    digit_score: np.ndarray | None = None
    is_digit: np.ndarray | None = None


@dataclass(frozen=True)
class Explanation:
    """Per-pixel attribution [N, 28, 28] of the digits [N] it explains, and the version that made it."""

    attribution: np.ndarray
    digits: np.ndarray
    version: int


@dataclass(frozen=True)
class ModelVersionStatus:
    """One version's state as TF Serving reports it (AVAILABLE, LOADING, END, ...)."""

    version: int
    state: str


@dataclass(frozen=True)
class BackendStatus:
    """What one model server behind the target says: its versions, or why it did not answer."""

    address: str
    versions: list[ModelVersionStatus] | None
    error: str | None = None

    def state_of(self, version: int) -> str:
        """The state this server reports for `version` (UNKNOWN when it does not know it or is down)."""
        for item in self.versions or []:
            if item.version == version:
                return item.state
        return "UNKNOWN"


class ServingClient(abc.ABC):
    """Predict, resolve labels and read version states on a TF Serving model.

    Every call takes the request's Deadline (None: a fresh UPSTREAM_TIMEOUT_S one), which bounds its
    attempts and backoff. Implementations raise gateway.errors: NotFound (unknown version or label),
    UpstreamUnavailable (unreachable; retried with backoff first), UpstreamTimeout (deadline),
    UpstreamError (bad reply).
    """

    transport = "abstract"
    # True when a predict's reply names the version that served it (gRPC's reply model_spec), so the
    # router need not resolve a label or "latest" first: TF Serving resolves them within the predict.
    reply_names_version = False

    @abc.abstractmethod
    def predict(
        self,
        images: np.ndarray,
        *,
        version: int | None = None,
        label: str | None = None,
        deadline: Deadline | None = None,
    ) -> Prediction:
        """Probabilities for a float32 [N, 28, 28, 1] batch from one version, a label's version, or
        (neither given, only where `reply_names_version`) the model server's latest AVAILABLE version.
        """

    @abc.abstractmethod
    def explain(self, images: np.ndarray, *, version: int, deadline: Deadline | None = None) -> Explanation:
        """The explain signature of exactly `version` on a float32 [N, 28, 28, 1] batch.

        MissingSignature when that version has no such signature.
        """

    @abc.abstractmethod
    def version_for_label(self, label: str, deadline: Deadline | None = None) -> int:
        """The version a label points to (GetModelMetadata); NotFound if the label is unknown."""

    @abc.abstractmethod
    def model_status(self, deadline: Deadline | None = None) -> list[ModelVersionStatus]:
        """Every version the model server knows for the model, with its state."""

    def backend_statuses(
        self, deadline: Deadline | None = None, known: list[ModelVersionStatus] | None = None
    ) -> list[BackendStatus]:
        """Each model server's own answer to GetModelStatus (one server unless the transport has more).

        Never raises for a server that does not answer: its row carries the error instead. `known` is
        this client's model_status() answer the caller already has: with one server it is that server's.
        """
        if known is not None:
            return [BackendStatus(self.backend_name, known)]
        try:
            return [BackendStatus(self.backend_name, self.model_status(deadline))]
        except GatewayError as error:
            return [BackendStatus(self.backend_name, None, error.message)]

    @property
    def backend_name(self) -> str:
        """How the one model server is named in backend_statuses()."""
        return self.transport

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    backoff_s: float,
    deadline: Deadline,
    pause: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying only UpstreamUnavailable, with exponential backoff, within `deadline`.

    `pause(seconds)` waits out a backoff (time.sleep; a test may record it instead). A backoff
    that would end past the deadline is not started: the last error is the answer. A retry that
    runs out of deadline answers the UpstreamUnavailable it retried (503), not UpstreamTimeout (504).
    """
    attempt = 0
    unavailable: UpstreamUnavailable | None = None
    while True:
        try:
            return call()
        except UpstreamUnavailable as error:
            unavailable = error
            delay = backoff_s * (2**attempt)
            if attempt >= retries or delay >= deadline.remaining():
                raise
            pause(delay)
            attempt += 1
        except UpstreamTimeout as timeout:
            # The server's last real answer was "unavailable" (e.g. Knative's activator giving up on a
            # cold start): a 503 with Retry-After tells the client what to do, a 504 would not.
            if unavailable is None:
                raise
            raise unavailable from timeout
