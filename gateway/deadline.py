"""A request-scoped deadline: one time budget shared by every upstream call of a request."""

import time
from dataclasses import dataclass

from gateway.errors import UpstreamTimeout


@dataclass(frozen=True)
class Deadline:
    """The monotonic instant by which a request's upstream work (calls, retries, backoff) must end."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        """A deadline `seconds` from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    def left_for(self, what: str) -> float:
        """Seconds left for the next call; UpstreamTimeout (504) when none are."""
        remaining = self.remaining()
        if remaining <= 0:
            raise UpstreamTimeout(f"model server did not answer {what} in time")
        return remaining
