"""background jobs: one row per job (RQ worker or in-process thread), progress and outcome

Revision ID: 0012_jobs
Revises: 0011_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0012_jobs"
down_revision = "0011_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "background_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("rq_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("result_name", sa.String(length=200), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["started_by_id"],
            ["user_account.id"],
            name=op.f("fk_background_job_started_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_job")),
    )
    with op.batch_alter_table("background_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_background_job_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_background_job_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_background_job_started_by_id"), ["started_by_id"], unique=False)


def downgrade() -> None:
    op.drop_table("background_job")
