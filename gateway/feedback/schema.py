"""The feedback tables as the store queries them; migrations/ builds them (a test compares the two)."""

import sqlalchemy as sa

from contract.feedback import STORED_INPUT_BYTES
from contract.mnist import NUM_CLASSES, PREPROCESSING_MODES

# Alembic's bookkeeping table, named apart so the feedback schema can share a database with others.
VERSION_TABLE = "feedback_alembic_version"

metadata = sa.MetaData()

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("label", sa.SmallInteger, nullable=False),
    sa.Column("predicted", sa.SmallInteger, nullable=True),
    sa.Column("version", sa.BigInteger, nullable=True),
    sa.Column("preprocessing", sa.String(16), nullable=False),
    # The upload as received (at most MAX_UPLOAD_BYTES) and the model input made from it
    # (contract/feedback.py: float32 little-endian, STORED_INPUT_BYTES).
    sa.Column("upload", sa.LargeBinary, nullable=False),
    sa.Column("model_input", sa.LargeBinary, nullable=False),
    sa.Column("held_out", sa.Boolean, nullable=False),
    sa.CheckConstraint(f"label >= 0 AND label < {NUM_CLASSES}", name="ck_feedback_label"),
    sa.CheckConstraint(
        f"predicted IS NULL OR (predicted >= 0 AND predicted < {NUM_CLASSES})", name="ck_feedback_predicted"
    ),
    sa.CheckConstraint("version IS NULL OR version > 0", name="ck_feedback_version"),
    sa.CheckConstraint(
        "preprocessing IN (" + ", ".join(f"'{mode}'" for mode in PREPROCESSING_MODES) + ")",
        name="ck_feedback_preprocessing",
    ),
    sa.CheckConstraint(f"length(model_input) = {STORED_INPUT_BYTES}", name="ck_feedback_model_input"),
)

# Which records each model version was trained on; written by retraining, read by the stats.
trained_on = sa.Table(
    "feedback_trained_on",
    metadata,
    sa.Column("model_version", sa.BigInteger, primary_key=True),
    sa.Column("feedback_id", sa.Integer, sa.ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True),
)
