"""feedback records and the versions trained on them

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create feedback and feedback_trained_on as they were first released (frozen: never edit)."""
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.SmallInteger, nullable=False),
        sa.Column("predicted", sa.SmallInteger, nullable=True),
        sa.Column("version", sa.BigInteger, nullable=True),
        sa.Column("preprocessing", sa.String(16), nullable=False),
        sa.Column("upload", sa.LargeBinary, nullable=False),
        sa.Column("model_input", sa.LargeBinary, nullable=False),
        sa.Column("held_out", sa.Boolean, nullable=False),
        sa.CheckConstraint("label >= 0 AND label < 10", name="ck_feedback_label"),
        sa.CheckConstraint(
            "predicted IS NULL OR (predicted >= 0 AND predicted < 10)", name="ck_feedback_predicted"
        ),
        sa.CheckConstraint("version IS NULL OR version > 0", name="ck_feedback_version"),
        sa.CheckConstraint("preprocessing IN ('standard', 'enhanced')", name="ck_feedback_preprocessing"),
        sa.CheckConstraint("length(model_input) = 3136", name="ck_feedback_model_input"),
    )
    op.create_table(
        "feedback_trained_on",
        sa.Column("model_version", sa.BigInteger, primary_key=True),
        sa.Column(
            "feedback_id", sa.Integer, sa.ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True
        ),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("feedback_trained_on")
    op.drop_table("feedback")
