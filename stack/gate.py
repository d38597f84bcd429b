"""The promotion gate: a candidate's model card against the stable one's, measured the same way.

Cards are compared only when both were measured on the full MNIST test set (10,000 images) with the
same test-file hashes, and then by error counts: accuracies from different test sets (a `--test-limit`
smoke run scores 0.999 on 300 images) say nothing about each other.
"""

import os
from dataclasses import dataclass

from training.dataset import FILE_SHA256

FULL_TEST_EXAMPLES = 10_000  # MNIST's t10k set
TEST_FILES = tuple(name for name in FILE_SHA256 if name.startswith("t10k-"))
DEFAULT_MIN_ACCURACY = 0.99
# Errors a candidate may make beyond stable's on the same 10,000 images. 0: never promote a version that
# is worse on the test set; raise it to accept run-to-run spread (a few errors between seeds here).
DEFAULT_MAX_EXTRA_ERRORS = 0
FORCE_HINT = "use FORCE=1 to promote it anyway"


class GateRefused(ValueError):
    """The candidate may not be promoted; the message says why."""


@dataclass(frozen=True)
class GateRules:
    """Accuracy floor and error margin over stable (PROMOTE_MIN_ACCURACY, PROMOTE_MAX_EXTRA_ERRORS)."""

    min_accuracy: float = DEFAULT_MIN_ACCURACY
    max_extra_errors: int = DEFAULT_MAX_EXTRA_ERRORS

    @classmethod
    def from_env(cls, env=os.environ) -> "GateRules":
        """The rules from the environment, defaults when unset; ValueError on a malformed value."""
        floor = float(env.get("PROMOTE_MIN_ACCURACY", cls.min_accuracy))
        margin = int(env.get("PROMOTE_MAX_EXTRA_ERRORS", cls.max_extra_errors))
        if not 0.0 <= floor <= 1.0 or margin < 0:
            raise ValueError(
                f"PROMOTE_MIN_ACCURACY must be in [0, 1] and PROMOTE_MAX_EXTRA_ERRORS >= 0 "
                f"(got {floor}, {margin})"
            )
        return cls(floor, margin)


@dataclass(frozen=True)
class Measurement:
    """What a card says about its test run: errors out of how many images, on which test files."""

    errors: int
    examples: int
    test_hashes: dict[str, str]


def measurement(card: dict | None, version: int) -> Measurement:
    """The card's test measurement; GateRefused when it lacks one or it is not the full test set."""
    if not isinstance(card, dict):
        raise GateRefused(f"version {version} has no model card; {FORCE_HINT}")
    try:
        errors, examples = int(card["errors"]), int(card["test_examples"])
        hashes = {name: card["data"]["sha256"][name] for name in TEST_FILES}
    except (KeyError, TypeError, ValueError) as exc:
        raise GateRefused(
            f"version {version}'s model card does not record errors, test_examples and the test files' "
            f"sha256 (missing {exc}); {FORCE_HINT}"
        ) from None
    if examples != FULL_TEST_EXAMPLES:
        raise GateRefused(
            f"version {version} was measured on {examples} test images, not the full {FULL_TEST_EXAMPLES} "
            f"(a --test-limit run?); its accuracy is not comparable; {FORCE_HINT}"
        )
    if hashes != {name: FILE_SHA256[name] for name in TEST_FILES}:
        raise GateRefused(f"version {version} was measured on other test files than MNIST's; {FORCE_HINT}")
    return Measurement(errors, examples, hashes)


def check_promotion(
    candidate_card: dict | None,
    version: int,
    stable_card: dict | None,
    stable: int | None,
    rules: GateRules = GateRules(),
) -> str:
    """Why `version` may replace `stable` (a sentence for the log); GateRefused when it may not."""
    candidate = measurement(candidate_card, version)
    allowed = int((1.0 - rules.min_accuracy) * candidate.examples + 1e-9)
    if candidate.errors > allowed:
        raise GateRefused(
            f"version {version} makes {candidate.errors} errors on {candidate.examples} test images, more "
            f"than the {allowed} that PROMOTE_MIN_ACCURACY={rules.min_accuracy} allows; {FORCE_HINT}"
        )
    if stable is None:
        return f"version {version}: {candidate.errors} errors / {candidate.examples}; no stable to compare"
    current = measurement(stable_card, stable)
    limit = current.errors + rules.max_extra_errors
    if candidate.errors > limit:
        raise GateRefused(
            f"version {version} makes {candidate.errors} errors on the {candidate.examples} test images, "
            f"stable version {stable} {current.errors}; the margin PROMOTE_MAX_EXTRA_ERRORS="
            f"{rules.max_extra_errors} allows at most {limit}; {FORCE_HINT}"
        )
    return (
        f"version {version}: {candidate.errors} errors / {candidate.examples} against stable version "
        f"{stable}'s {current.errors} (margin {rules.max_extra_errors})"
    )
