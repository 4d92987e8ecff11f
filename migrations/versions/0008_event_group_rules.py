"""matchmaking events: group rules (e.g. at least one bank for a project that seeks a bank loan)

Revision ID: 0008_event_group_rules
Revises: 0007_events
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_event_group_rules"
down_revision = "0007_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("match_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("group_rules", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("match_event", schema=None) as batch_op:
        batch_op.drop_column("group_rules")
