"""institution.competitor_policy: avoid or welcome candidates that nearly copy a backed project

Revision ID: 0014_competitor_policy
Revises: 0013_list_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_competitor_policy"
down_revision = "0013_list_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("institution") as batch:
        batch.add_column(
            sa.Column("competitor_policy", sa.String(length=16), nullable=False, server_default="avoid")
        )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN in place: recreating the table would break the foreign keys to it on SQLite
    with op.batch_alter_table("institution", recreate="never") as batch:
        batch.drop_column("competitor_policy")
