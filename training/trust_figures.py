"""`make trust`'s figures measured in-process, for the before/after table of `make retrain`'s model card.

Each held-out set of tools/trust_sets.py is generated as `make trust` generates it, decoded and preprocessed
by the gateway's own functions (training/evaluate.py), predicted through the version's `serving_default`
signature and counted by tools/trust.py's `tally`, so "rejected" means what it means there: `is_digit`
false, or the upload refused as unusable. No gateway or model server runs. Local only, like `make retrain`:
it imports tools/, which the training image does not have.
"""

from dataclasses import dataclass

import numpy as np

from contract import mnist
from tools.trust import DEFAULT_SEED, tally
from tools.trust_sets import DIGIT, SETS, TrustSet

# Uploads per set, for every set: what `make trust TRUST_ARGS="--limit 200"` sends. Making and preprocessing
# them took 14-21 s here, once a retrain (both versions predict the same inputs, 2 s each); a share is then
# known to a few points, so the card shows figures, not make trust's pass/fail (run it on the new version).
SAMPLES_PER_SET = 200


@dataclass(frozen=True)
class TrustInputs:
    """One trust set's uploads as the model receives them, and what the gateway answers for the others."""

    trust_set: TrustSet
    images: np.ndarray  # [m, 28, 28] float32: model inputs of the uploads the gateway accepts, in order
    refused: list[dict | None]  # per upload: its error slot in a batch reply, None if accepted
    labels: np.ndarray | None  # digit sets' labels
    kinds: list[str] | None


def trust_inputs(
    sets: tuple[TrustSet, ...] = SETS, samples: int = SAMPLES_PER_SET, seed: int = DEFAULT_SEED
) -> list[TrustInputs]:
    """`samples` uploads of each set (its own seeded generator) through the gateway's preprocessing."""
    from training.evaluate import gateway_inputs

    prepared = []
    for trust_set in sets:
        made = trust_set.make(min(samples, trust_set.n), seed)
        images, errors = gateway_inputs(made.images)
        # The slot POST /v1/predict/batch gives a refused upload (gateway/api.py), which `tally` reads.
        refused = [None if error is None else error.to_dict() | {"status": error.status} for error in errors]
        prepared.append(TrustInputs(trust_set, images, refused, made.labels, made.kinds))
    return prepared


def trust_figures(signature, prepared: list[TrustInputs]) -> dict[str, dict]:
    """Per set, for one version: its kind and `make trust`'s counts (rejected_rate; digit sets' accuracy)."""
    from training.evaluate import predict

    figures = {}
    for inputs in prepared:
        outputs = predict(signature, inputs.images) if len(inputs.images) else {}
        rows = iter(range(len(inputs.images)))
        slots = [answer(outputs, next(rows)) if slot is None else slot for slot in inputs.refused]
        figures[inputs.trust_set.name] = {
            "kind": inputs.trust_set.kind,
            **tally(slots, inputs.labels, inputs.kinds),
        }
    return figures


def answer(outputs: dict[str, np.ndarray], row: int) -> dict:
    """The fields of a batch reply's slot that `tally` reads, for one accepted upload (gateway/service.py)."""
    judged = mnist.IS_DIGIT_KEY in outputs
    return {
        "digit": int(outputs[mnist.DIGIT_KEY][row]),
        mnist.IS_DIGIT_KEY: bool(outputs[mnist.IS_DIGIT_KEY][row]) if judged else None,
        mnist.DIGIT_SCORE_KEY: float(outputs[mnist.DIGIT_SCORE_KEY][row]) if judged else None,
    }


def table_rows(before: dict[str, dict], after: dict[str, dict]) -> dict[str, list[float]]:
    """Before/after rows: each non-digit set's share rejected, each digit set's share falsely rejected and
    its accuracy as `make trust` counts it (an upload the gateway refuses is wrong)."""
    rows = {}
    for name, was in before.items():
        now = after[name]
        if was["kind"] == DIGIT:
            rows[f"trust_{name}_falsely_rejected"] = _pair(was, now, "rejected_rate")
            rows[f"trust_{name}_accuracy"] = _pair(was, now, "accuracy")
        else:
            rows[f"trust_{name}_rejected"] = _pair(was, now, "rejected_rate")
    return rows


def _pair(was: dict, now: dict, key: str) -> list[float]:
    return [round(float(was[key]), 6), round(float(now[key]), 6)]  # rounded as the card's other shares
