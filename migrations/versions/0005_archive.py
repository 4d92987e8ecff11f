"""archive instead of delete: projects, institutions and needs with history are archived

Revision ID: 0005_archive
Revises: 0004
Create Date: 2026-12-01

A record that has connections is never deleted (its outcomes count in past quarters' figures); it gets an
`archived_at` timestamp and the id of the account that archived it, and disappears from lists and rankings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0005_archive"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("project", "institution", "need")


def upgrade() -> None:
    for table in TABLES:
        # Adding nullable columns needs no table copy on SQLite (batch mode keeps it an ALTER TABLE).
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("archived_at", models.base.UTCDateTime(timezone=True), nullable=True)
            )
            batch_op.add_column(sa.Column("archived_by_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_archived_at"), ["archived_at"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        # recreate="never": a table copy on SQLite would DROP the referenced table with foreign keys on,
        # which deletes or nulls the rows that point at it (connections, accounts). SQLite >= 3.35 drops
        # an unindexed column in place.
        with op.batch_alter_table(table, schema=None, recreate="never") as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_archived_at"))
            batch_op.drop_column("archived_by_id")
            batch_op.drop_column("archived_at")
