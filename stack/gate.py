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
# Points of one class's MNIST test accuracy a candidate may lose against stable. A relabelled class (7s
# corrected to 1s) barely moves the total but shows here: each class has about 1,000 test images, so
# 0.005 is about five of them.
DEFAULT_MAX_CLASS_DROP = 0.005
FORCE_HINT = "use FORCE=1 to promote it anyway"


class GateRefused(ValueError):
    """The candidate may not be promoted; the message says why."""


@dataclass(frozen=True)
class GateRules:
    """Accuracy floor and margins over stable (PROMOTE_MIN_ACCURACY, PROMOTE_MAX_EXTRA_ERRORS,
    PROMOTE_MAX_CLASS_DROP)."""

    min_accuracy: float = DEFAULT_MIN_ACCURACY
    max_extra_errors: int = DEFAULT_MAX_EXTRA_ERRORS
    max_class_drop: float = DEFAULT_MAX_CLASS_DROP

    @classmethod
    def from_env(cls, env=os.environ) -> "GateRules":
        """The rules from the environment, defaults when unset; ValueError on a malformed value."""
        floor = float(env.get("PROMOTE_MIN_ACCURACY", cls.min_accuracy))
        margin = int(env.get("PROMOTE_MAX_EXTRA_ERRORS", cls.max_extra_errors))
        class_drop = float(env.get("PROMOTE_MAX_CLASS_DROP", cls.max_class_drop))
        if not 0.0 <= floor <= 1.0 or margin < 0 or not 0.0 <= class_drop <= 1.0:
            raise ValueError(
                f"PROMOTE_MIN_ACCURACY and PROMOTE_MAX_CLASS_DROP must be in [0, 1] and "
                f"PROMOTE_MAX_EXTRA_ERRORS >= 0 (got {floor}, {class_drop}, {margin})"
            )
        return cls(floor, margin, class_drop)


@dataclass(frozen=True)
class Measurement:
    """What a card says about its test run: errors out of how many images, on which test files."""

    errors: int
    examples: int
    test_hashes: dict[str, str]
    per_class_accuracy: dict[str, float]


def measurement(card: dict | None, version: int) -> Measurement:
    """The card's test measurement; GateRefused when it lacks one or it is not the full test set."""
    if not isinstance(card, dict):
        raise GateRefused(f"version {version} has no model card; {FORCE_HINT}")
    try:
        errors, examples = int(card["errors"]), int(card["test_examples"])
        hashes = {name: card["data"]["sha256"][name] for name in TEST_FILES}
        per_class = {str(digit): float(card["per_class_accuracy"][str(digit)]) for digit in range(10)}
    except (KeyError, TypeError, ValueError) as exc:
        raise GateRefused(
            f"version {version}'s model card does not record errors, test_examples, per_class_accuracy and "
            f"the test files' sha256 (missing {exc}); {FORCE_HINT}"
        ) from None
    if examples != FULL_TEST_EXAMPLES:
        raise GateRefused(
            f"version {version} was measured on {examples} test images, not the full {FULL_TEST_EXAMPLES} "
            f"(a --test-limit run?); its accuracy is not comparable; {FORCE_HINT}"
        )
    if hashes != {name: FILE_SHA256[name] for name in TEST_FILES}:
        raise GateRefused(f"version {version} was measured on other test files than MNIST's; {FORCE_HINT}")
    return Measurement(errors, examples, hashes, per_class)


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
    check_classes(candidate, version, current, stable, rules)
    held_out = check_held_out_corrections(candidate_card, version, stable)
    return (
        f"version {version}: {candidate.errors} errors / {candidate.examples} against stable version "
        f"{stable}'s {current.errors} (margin {rules.max_extra_errors}), no class more than "
        f"{rules.max_class_drop:.1%} below stable{held_out}"
    )


def check_classes(candidate: Measurement, version: int, current: Measurement, stable: int, rules) -> None:
    """GateRefused naming the class whose MNIST test accuracy fell most, when it fell beyond the margin."""
    drops = {
        digit: current.per_class_accuracy[digit] - candidate.per_class_accuracy[digit]
        for digit in current.per_class_accuracy
    }
    worst = max(drops, key=drops.get)
    if drops[worst] > rules.max_class_drop + 1e-9:
        raise GateRefused(
            f"version {version} reads class {worst} worse than stable version {stable}: "
            f"{candidate.per_class_accuracy[worst]:.2%} of the test set's {worst}s against "
            f"{current.per_class_accuracy[worst]:.2%}, beyond the margin PROMOTE_MAX_CLASS_DROP="
            f"{rules.max_class_drop}; were {worst}s relabelled in the corrections it was retrained on? "
            f"{FORCE_HINT}"
        )


def check_held_out_corrections(card: dict, version: int, stable: int) -> str:
    """For a version retrained from corrections: it must start from today's stable and read more of the
    held-out corrections right than stable did. A clause for the verdict ('' for other versions)."""
    retrained = card.get("retrained")
    if not isinstance(retrained, dict):
        return ""
    try:
        source = int(retrained["from_version"])
        held_out = retrained["held_out_corrections"]
        total, before, after = int(held_out["n"]), int(held_out["right_before"]), int(held_out["right_after"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GateRefused(
            f"version {version}'s model card does not record its retraining's held-out corrections "
            f"(missing {exc}); {FORCE_HINT}"
        ) from None
    if source != stable:
        raise GateRefused(
            f"version {version} was retrained from version {source}, but stable is version {stable}: its "
            f"held-out comparison is against the wrong version; retrain from the current stable; {FORCE_HINT}"
        )
    if after <= before:
        why = "there were none to measure on" if total == 0 else f"{after} of {total} against {before}"
        raise GateRefused(
            f"version {version} does not read more held-out corrections right than stable version "
            f"{stable} ({why}); {FORCE_HINT}"
        )
    return f", held-out corrections {after}/{total} right against {before}/{total}"
