"""The interface the gateway uses to talk to TF Serving, whatever the transport."""

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from gateway.errors import UpstreamUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Prediction:
    """Class probabilities [N, 10] and the model version that computed them."""

    probabilities: np.ndarray
    version: int


@dataclass(frozen=True)
class ModelVersionStatus:
    """One version's state as TF Serving reports it (AVAILABLE, LOADING, END, ...)."""

    version: int
    state: str


class ServingClient(abc.ABC):
    """Predict, resolve labels and read version states on a TF Serving model.

    Implementations raise gateway.errors: NotFound (unknown version or label), UpstreamUnavailable
    (unreachable; retried with backoff first), UpstreamTimeout (deadline), UpstreamError (bad reply).
    """

    transport = "abstract"

    @abc.abstractmethod
    def predict(self, images: np.ndarray, version: int) -> Prediction:
        """Probabilities for a float32 [N, 28, 28, 1] batch from one explicit model version."""

    @abc.abstractmethod
    def version_for_label(self, label: str) -> int:
        """The version a label points to (GetModelMetadata); NotFound if the label is unknown."""

    @abc.abstractmethod
    def model_status(self) -> list[ModelVersionStatus]:
        """Every version the model server knows for the model, with its state."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    backoff_s: float,
    deadline: float,
    pause: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying only UpstreamUnavailable, with exponential backoff, within `deadline`.

    `pause(seconds)` waits out a backoff: time.sleep, or a wait that also reconnects (gRPC).
    """
    attempt = 0
    while True:
        try:
            return call()
        except UpstreamUnavailable:
            delay = backoff_s * (2**attempt)
            if attempt >= retries or time.monotonic() + delay >= deadline:
                raise
            pause(delay)
            attempt += 1
