"""make trust's counting and judging of gateway replies (tools/trust.py), on hand-made slots."""

import json

import numpy as np
import pytest

from tools import batch_client, trust
from tools.trust_sets import DIGIT, NON_DIGIT, TrustSet


def _slot(digit: int = 3, is_digit: bool | None = True, score: float | None = 0.9) -> dict:
    probabilities = [0.0] * 10
    probabilities[digit] = 1.0
    return {
        "digit": digit,
        "confidence": 1.0,
        "probabilities": probabilities,
        "is_digit": is_digit,
        "digit_score": score,
    }


def _error(code: str, status: int) -> dict:
    return {"error": {"code": code, "message": code}, "status": status}


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        (_slot(is_digit=True), "accepted"),
        (_slot(is_digit=False, score=0.1), "rejected_by_model"),
        (_slot(is_digit=None, score=None), "unjudged"),
        ({k: v for k, v in _slot().items() if k not in ("is_digit", "digit_score")}, "unjudged"),
        (_error("no_digit", 422), "refused_by_gateway"),
        (_error("not_a_digit", 422), "rejected_by_model"),
        (_error("not_an_image", 415), "error"),
        (_error("too_large", 413), "error"),
    ],
)
def test_each_slot_has_one_outcome(slot, expected):
    assert trust.outcome(slot) == expected


def test_counts_add_up_and_rejected_includes_gateway_refusals():
    results = [_slot(), _slot(is_digit=False, score=0.2), _error("no_digit", 422), _slot(7)]
    row = trust.tally(results, None, ["a", "b", "b", "c"])
    assert row["n"] == 4
    assert row["accepted"] + row["rejected"] + row["unjudged"] + row["errors"] == row["n"]
    assert (row["accepted"], row["rejected_by_model"], row["refused_by_gateway"]) == (2, 1, 1)
    assert row["rejected_rate"] == 0.5
    assert row["by_kind"] == {
        "a": {"n": 1, "rejected": 0},
        "b": {"n": 2, "rejected": 2},
        "c": {"n": 1, "rejected": 0},
    }
    assert row["digit_score"]["p50"] == pytest.approx(0.9)
    assert "accuracy" not in row


def test_digit_accuracy_counts_refused_digits_as_wrong():
    results = [_slot(3), _slot(4, is_digit=False, score=0.1), _error("no_digit", 422), _slot(9)]
    row = trust.tally(results, np.array([3, 4, 5, 1]))
    assert row["accuracy"] == 0.5  # 3 and 4 right, the refused 5 and the 9-for-1 wrong
    assert row["accuracy_accepted"] == 0.5  # of the accepted 3 and 9, the 3
    assert row["by_kind"]["5"] == {"n": 1, "rejected": 1}


def _set(kind: str, target: float | None, min_accuracy: float | None = None) -> TrustSet:
    return TrustSet("x", kind, lambda n, seed: None, 10, target, min_accuracy)


def _row(rejected_rate: float, **extra) -> dict:
    return {"rejected_rate": rejected_rate, "errors": 0, "unjudged": 0, **extra}


@pytest.mark.parametrize(
    ("trust_set", "row", "expected"),
    [
        (_set(NON_DIGIT, 0.95), _row(0.95), "pass"),
        (_set(NON_DIGIT, 0.95), _row(0.949), "fail"),
        (_set(DIGIT, 0.01), _row(0.01), "pass"),
        (_set(DIGIT, 0.01), _row(0.011), "fail"),
        (_set(DIGIT, 0.003, 0.995), _row(0.0, accuracy=0.994), "fail"),
        (_set(DIGIT, 0.003, 0.995), _row(0.0, accuracy=0.995), "pass"),
        (_set(DIGIT, None), _row(0.5), "info"),
        (_set(NON_DIGIT, 0.95), _row(1.0, unjudged=1), "no judgement"),
        (_set(DIGIT, None), _row(0.0, errors=2), "error"),
    ],
)
def test_verdict_against_the_target(trust_set, row, expected):
    assert trust.verdict(trust_set, row) == expected


def test_batches_keep_order_and_limits(monkeypatch):
    monkeypatch.setattr(batch_client, "BATCH_BYTES", 10)
    images = [b"1234", b"5678", b"9", b"0" * 25, b"ab"] + [b"c"] * 70
    chunks = list(batch_client.batches(images))
    assert [image for chunk in chunks for image in chunk] == images
    assert all(len(chunk) <= batch_client.BATCH for chunk in chunks)
    assert chunks[:3] == [[b"1234", b"5678", b"9"], [b"0" * 25], [b"ab"] + [b"c"] * 8]
    assert all(sum(map(len, chunk)) <= 10 for chunk in chunks if len(chunk) > 1)


def test_markdown_names_the_missed_sets():
    rows = [
        {
            "set": "letters",
            "kind": NON_DIGIT,
            "target": 0.95,
            "min_accuracy": None,
            "status": "fail",
            "versions": [2],
        }
        | trust.tally([_slot(), _slot(is_digit=False)], None),
        {
            "set": "mnist_test",
            "kind": DIGIT,
            "target": 0.003,
            "min_accuracy": 0.995,
            "status": "pass",
            "versions": [2],
        }
        | trust.tally([_slot(3)], np.array([3])),
    ]
    text = trust.markdown({"seed": 0, "runtime_s": 1.0, "sets": rows})
    assert "| letters | non-digit | 2 | 50.00 % | 0 | >= 95.0 % | fail |" in text
    assert "| mnist_test | digit | 1 | 0.00 % | 0 | <= 0.3 %, accuracy >= 99.5 % | pass | 100.00 % |" in text
    assert "missed: letters." in text
    assert "- letters: " not in text  # no kinds given for it
    assert "- mnist_test: 3 0/1" in text
    json.dumps(rows)  # the JSON report holds the same rows


def test_unknown_set_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        trust.parse_args(["--sets", "letters,nope"])
    assert exit_info.value.code == 2
    assert "unknown set(s) nope" in capsys.readouterr().err


def test_missing_version_exits_1_with_a_message(tmp_path, capsys):
    assert trust.main(["--models", str(tmp_path), "--version", "7", "--reports", str(tmp_path)]) == 1
    assert "no model version 7" in capsys.readouterr().err
    assert not (tmp_path / "trust.json").exists()
