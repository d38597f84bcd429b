"""The request deadline bounds retries and backoff; a spent deadline is a 504 unless a 503 was retried."""

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


def scripted(*errors):
    """A call raising `errors` in turn (None answers "ok"), and the list of attempts it saw."""
    attempts = []

    def call():
        attempts.append(len(attempts))
        error = errors[len(attempts) - 1]
        if error is None:
            return "ok"
        raise error

    return call, attempts


def test_a_retry_that_runs_out_of_deadline_answers_the_unavailable_it_retried():
    # A cold start behind Knative: the activator gave up (UNAVAILABLE), the retry met the deadline.
    unavailable = UpstreamUnavailable("activator request timeout")
    call, attempts = scripted(unavailable, UpstreamTimeout("predict in time"))
    with pytest.raises(UpstreamUnavailable) as info:
        with_retries(call, retries=3, backoff_s=0.01, deadline=Deadline.after(5.0), pause=lambda _: None)
    assert info.value is unavailable and info.value.status == 503 and len(attempts) == 2
    assert isinstance(info.value.__cause__, UpstreamTimeout)


def test_a_first_attempt_that_times_out_stays_a_timeout():
    call, attempts = scripted(UpstreamTimeout("predict in time"), None)
    with pytest.raises(UpstreamTimeout) as info:
        with_retries(call, retries=3, backoff_s=0.01, deadline=Deadline.after(5.0), pause=lambda _: None)
    assert info.value.status == 504 and len(attempts) == 1


def test_a_retry_can_still_succeed_after_unavailable():
    call, attempts = scripted(UpstreamUnavailable("down"), None)
    assert (
        with_retries(call, retries=3, backoff_s=0.01, deadline=Deadline.after(5.0), pause=lambda _: None)
        == "ok"
    )
    assert len(attempts) == 2
