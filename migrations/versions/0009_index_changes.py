"""index_changes: the log of ranked-record changes that every web worker applies to its matching indexes

Revision ID: 0009_index_changes
Revises: 0008_event_group_rules
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0009_index_changes"
down_revision = "0008_event_group_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_changes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("index_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_index_changes_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("index_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_index_changes_created_at"))
    op.drop_table("index_changes")
