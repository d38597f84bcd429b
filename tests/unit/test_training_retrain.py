"""Retraining's parts: the replay mix, fine-tuning a real SavedModel version, and the command's refusals."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from contract import mnist
from gateway.feedback.schema import feedback
from gateway.feedback.store import Correction, FeedbackStore, create_feedback_engine
from tests.support.model_server import COMMITTED_MODEL_DIR, baseline_version
from tools.trust_sets import DIGIT, NON_DIGIT, Samples, TrustSet, sketchpad_png
from training import retrain
from training.finetune import FineTuner, batches_per_epoch, replay_batches
from training.trust_figures import trust_inputs

BASELINE_DIR = COMMITTED_MODEL_DIR / str(baseline_version())


def marked(count: int, value: float) -> np.ndarray:
    """Float images whose pixel [0, 0] tells where they came from."""
    images = np.zeros((count, 28, 28), np.float32)
    images[:, 0, 0] = value
    return images


def test_each_epoch_has_every_correction_once_and_ratio_times_as_many_replayed():
    corrections, replay = marked(30, 0.5), np.zeros((5000, 28, 28), np.uint8)
    batches = list(
        replay_batches(
            corrections,
            np.full(30, 3),
            replay,
            np.full(5000, 8, np.uint8),
            ratio=10,
            batch_size=64,
            epochs=2,
            seed=1,
        )
    )
    assert len(batches) == 2 * batches_per_epoch(30, 5000, 10, 64)
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    assert images.shape == (2 * 330, 28, 28, 1) and images.dtype == np.float32
    from_corrections = images[:, 0, 0, 0] == 0.5
    assert from_corrections.sum() == 60  # 30 per epoch
    assert set(labels[from_corrections]) == {3} and set(labels[~from_corrections]) == {8}
    # Corrections are spread through the epoch, not appended at its end.
    first_epoch = from_corrections[:330]
    assert first_epoch[:165].sum() > 5 and first_epoch[165:].sum() > 5


def test_replay_is_capped_by_the_mnist_images_there_are():
    assert batches_per_epoch(100, 500, 10, 100) == 6


def test_replayed_uint8_images_become_model_inputs_in_0_1():
    replay = np.full((20, 28, 28), 255, np.uint8)
    x, _ = next(
        replay_batches(
            marked(1, 0.5), np.zeros(1), replay, np.zeros(20), ratio=5, batch_size=6, epochs=1, seed=0
        )
    )
    replayed = x[x[:, 0, 0, 0] != 0.5]
    assert len(replayed) == 5 and np.all(replayed == 1.0)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """The committed baseline fine-tuned 20 steps on one batch of 4s labelled 9, saved to a new directory."""
    from training.dataset import DEFAULT_DATA_DIR, load_mnist

    train, _ = load_mnist(DEFAULT_DATA_DIR)
    fours = (train.images[train.labels == 4][:32].astype(np.float32) / 255.0)[..., None]
    tuner = FineTuner(BASELINE_DIR, learning_rate=1e-3)
    losses = [tuner.step(fours, np.full(32, 9)) for _ in range(20)]
    target = tmp_path_factory.mktemp("tuned") / "saved"
    tuner.save(target)
    return tuner, target, fours, losses


def test_fine_tuning_moves_the_versions_own_weights(tuned):
    _, _, _, losses = tuned
    assert losses[-1] < losses[0] / 4


def test_saved_copy_keeps_every_signature_and_the_tuned_weights(tuned):
    import tensorflow as tf

    tuner, target, fours, _ = tuned
    reloaded = tf.saved_model.load(str(target))
    assert set(reloaded.signatures) == set(tf.saved_model.load(str(BASELINE_DIR)).signatures)
    ours = tuner.loaded.signatures[mnist.SIGNATURE_NAME](image=fours)[mnist.DIGIT_KEY].numpy()
    theirs = reloaded.signatures[mnist.SIGNATURE_NAME](image=fours)[mnist.DIGIT_KEY].numpy()
    assert list(ours) == list(theirs) and np.mean(theirs == 9) > 0.9


def test_the_source_version_is_untouched(tuned):
    import tensorflow as tf

    _, _, fours, _ = tuned
    original = tf.saved_model.load(str(BASELINE_DIR)).signatures[mnist.SIGNATURE_NAME]
    assert np.mean(original(image=fours)[mnist.DIGIT_KEY].numpy() == 4) > 0.9


# ----------------------------------------------------------------------------- the command's refusals


def run(tmp_path, capsys, database: str, *extra: str) -> tuple[int, str]:
    models = tmp_path / "models"
    if not models.exists():
        shutil.copytree(BASELINE_DIR, models / "1")
    code = retrain.main(["--from-version", "1", "--model-dir", str(models), "--database", database, *extra])
    return code, capsys.readouterr().err


def test_no_corrections_is_an_error_that_says_how_to_send_some(tmp_path, capsys):
    code, err = run(tmp_path, capsys, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert code == 1 and "no corrections to train on: 0 stored" in err and "POST /v1/feedback" in err


def test_only_held_out_corrections_is_an_error(tmp_path, capsys):
    database = f"sqlite:///{tmp_path / 'held.sqlite3'}"
    store = FeedbackStore(create_feedback_engine(database))
    rng = np.random.default_rng(0)
    records = [
        store.add(Correction(b"png", rng.random((28, 28), dtype=np.float32), 4, None, None, "enhanced"))
        for _ in range(30)
    ]
    trainable = [record["id"] for record in records if not record["held_out"]]
    with store.engine.begin() as connection:
        connection.execute(feedback.delete().where(feedback.c.id.in_(trainable)))
    held = len(records) - len(trainable)
    code, err = run(tmp_path, capsys, database)
    assert held and code == 1 and f"{held} stored, {held} of them held out" in err


def test_unreachable_database_is_an_error_not_a_traceback(tmp_path, capsys):
    code, err = run(tmp_path, capsys, "postgresql://nobody:secret@127.0.0.1:1/feedback")
    assert code == 1 and "feedback database" in err and "cannot be read" in err
    assert "secret" not in err and "nobody:***@127.0.0.1:1" in err


def test_unparsable_database_url_is_an_error_not_a_traceback(tmp_path, capsys):
    code, err = run(tmp_path, capsys, "not a url")
    assert code == 1 and "not one SQLAlchemy can parse" in err


def test_missing_source_version_and_existing_target_are_refused(tmp_path, capsys):
    database = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    code, err = run(tmp_path, capsys, database, "--from-version", "7")
    assert code == 1 and "version 7 has no SavedModel" in err
    code, err = run(tmp_path, capsys, database, "--version", "1")
    assert code == 1 and "exists; versions are never overwritten" in err


def test_card_lines_show_before_and_after():
    table = {
        "columns": ["version 1", "retrained"],
        "held_out_corrections": 50,
        "rows": {
            "mnist_test_errors": [40, 39],
            "mnist_class_7_accuracy": [0.99, 0.98],
            "held_out_corrections_right": [10, 45],
        },
    }
    lines = retrain.table_lines(table, 4)
    assert lines[0] == "| measure | version 1 | version 4 |"
    assert "| mnist test errors | 40 | 39 |" in lines
    assert "| mnist class 7 accuracy | 99.00% | 98.00% |" in lines
    assert "| held out corrections right | 10/50 | 45/50 |" in lines


def test_card_never_records_a_database_password():
    section = retrain.feedback_section([], [], "postgresql://user:secret@db:5432/feedback")
    assert "secret" not in json.dumps(section)
    assert section["database"] == "postgresql+psycopg://user:***@db:5432/feedback"


# ------------------------------------------------------------------------- the trust sets' rows


class FakeSignature:
    """Answers 1 for every image; judges "not a digit" when ink spans more than `widest` columns."""

    def __init__(self, widest: int | None):
        self.widest = widest  # None: a version without the judgement outputs
        self.structured_outputs = {mnist.DIGIT_KEY: None, mnist.PROBABILITIES_KEY: None}
        if widest is not None:
            self.structured_outputs |= {mnist.IS_DIGIT_KEY: None, mnist.DIGIT_SCORE_KEY: None}
        self.seen = 0

    def __call__(self, image):
        import tensorflow as tf

        images = image.numpy()[..., 0]
        self.seen += len(images)
        outputs = {
            mnist.DIGIT_KEY: tf.ones(len(images), tf.int64),
            mnist.PROBABILITIES_KEY: tf.one_hot(tf.ones(len(images), tf.int64), mnist.NUM_CLASSES),
        }
        if self.widest is not None:
            columns = (images > 0.5).any(axis=1).sum(axis=1)
            outputs[mnist.IS_DIGIT_KEY] = tf.constant(columns <= self.widest)
            outputs[mnist.DIGIT_SCORE_KEY] = tf.constant((columns <= self.widest).astype(np.float32))
        return outputs


def canvas(kind: str) -> bytes:
    """A Sketchpad upload: a bar (a 1), a filled square, or nothing (the gateway refuses it: no digit)."""
    ink = np.zeros((56, 56), np.uint8)
    if kind == "bar":
        ink[10:46, 24:32] = 255
    elif kind == "square":
        ink[12:44, 12:44] = 255
    return sketchpad_png(ink)


TINY_SETS = (
    TrustSet(
        "squares",
        NON_DIGIT,
        lambda n, seed: Samples([canvas(k) for k in ("blank", "square", "square", "bar")][:n]),
        4,
        0.95,
    ),
    TrustSet(
        "ones",
        DIGIT,
        lambda n, seed: Samples([canvas(k) for k in ("bar", "bar", "square", "blank")][:n], np.ones(n, int)),
        4,
        0.01,
    ),
)
TINY_TEST = SimpleNamespace(images=np.zeros((2, 28, 28), np.uint8), labels=np.array([1, 0]))
NO_HELD_OUT = (np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64))


@pytest.fixture(scope="module")
def tiny_trust():
    return trust_inputs(TINY_SETS)


def test_trust_rows_count_rejections_as_make_trust_does(tiny_trust):
    strict, lenient = FakeSignature(widest=10), FakeSignature(widest=28)
    before = retrain.measure(strict, TINY_TEST, NO_HELD_OUT, tiny_trust)
    after = retrain.measure(lenient, TINY_TEST, NO_HELD_OUT, tiny_trust)
    table = retrain.before_after(before, after, 3, 0)
    trust_rows = {name: values for name, values in table["rows"].items() if name.startswith("trust_")}
    # Before: the blank canvas is refused by the gateway, the squares judged not a digit. After: only the
    # blank is rejected. A digit judged "not a digit" still counts as read right when its digit is.
    assert trust_rows == {
        "trust_squares_rejected": [0.75, 0.25],
        "trust_ones_falsely_rejected": [0.5, 0.25],
        "trust_ones_accuracy": [0.75, 0.75],
    }
    assert table["trust_uploads"] == {"squares": 4, "ones": 4}
    assert "| trust squares rejected | 75.00% | 25.00% |" in retrain.table_lines(table, 4)
    assert strict.seen == lenient.seen == len(TINY_TEST.images) + 6  # the six uploads the gateway accepts


def test_trust_rows_are_absent_without_a_judgement(tiny_trust):
    unjudged = FakeSignature(widest=None)
    logged = []
    assert retrain.prepared_trust_sets(unjudged, logged.append) is None and not logged
    result = retrain.measure(unjudged, TINY_TEST, NO_HELD_OUT, tiny_trust)
    table = retrain.before_after(result, result, 3, 0)
    assert "trust" not in result and "trust_uploads" not in table
    assert not [name for name in table["rows"] if name.startswith(("trust_", "mnist_test_refused"))]
    assert unjudged.seen == len(TINY_TEST.images)  # the trust sets were never predicted
