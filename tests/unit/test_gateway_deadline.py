"""The request deadline bounds retries and backoff; a spent deadline is a 504 before any call."""

import time

import pytest

from gateway.client.base import with_retries
from gateway.deadline import Deadline
from gateway.errors import UpstreamTimeout, UpstreamUnavailable


def test_spent_deadline_is_a_timeout_before_the_call():
    with pytest.raises(UpstreamTimeout) as info:
        Deadline(time.monotonic() - 0.001).left_for("predict")
    assert info.value.status == 504


def test_no_backoff_is_started_that_would_end_past_the_deadline():
    calls, pauses = [], []

    def call():
        calls.append(time.monotonic())
        raise UpstreamUnavailable("down")

    with pytest.raises(UpstreamUnavailable):
        with_retries(call, retries=10, backoff_s=10.0, deadline=Deadline.after(5.0), pause=pauses.append)
    # The first backoff (10 s) already ends past the 5 s deadline: one attempt, no wait.
    assert len(calls) == 1 and pauses == []


def test_retries_stop_within_the_deadline_even_with_retries_left():
    pauses = []

    def pause(seconds):
        pauses.append(seconds)

    deadline = Deadline.after(1.0)
    with pytest.raises(UpstreamUnavailable):
        with_retries(
            lambda: (_ for _ in ()).throw(UpstreamUnavailable("down")),
            retries=10,
            backoff_s=0.3,
            deadline=deadline,
            pause=pause,
        )
    # The pause does not sleep, so about 1 s stays left: backoffs of 0.3 and 0.6 fit, 1.2 does not.
    assert pauses == [0.3, 0.6]
