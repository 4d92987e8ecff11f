"""files that jobs read (an import's uploaded sheet), in the database so a worker on any host reads them

Revision ID: 0016_import_job
Revises: 0015_impressions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0016_import_job"
down_revision = "0015_impressions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["background_job.id"],
            name=op.f("fk_job_file_job_id_background_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_file")),
    )
    with op.batch_alter_table("job_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_file_job_id"), ["job_id"], unique=True)


def downgrade() -> None:
    op.drop_table("job_file")
