"""feedback log: ranked-list impressions and the actions taken on shown pairs

Revision ID: 0015_impressions
Revises: 0014_competitor_policy
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0015_impressions"
down_revision = "0014_competitor_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("viewer_user_id", sa.Integer(), nullable=True),
        sa.Column("viewer_institution_id", sa.Integer(), nullable=True),
        sa.Column("viewer_project_id", sa.Integer(), nullable=True),
        sa.Column("query_kind", sa.String(length=16), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("surface", sa.String(length=8), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impression")),
    )
    with op.batch_alter_table("impression", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_impression_list_id"), ["list_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_impression_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_impression_viewer_user_id"), ["viewer_user_id"], unique=False)
        batch_op.create_index("ix_impression_pair", ["project_id", "institution_id", "at"], unique=False)
    op.create_table(
        "feedback_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("impression_id", sa.Integer(), nullable=True),
        sa.Column("list_id", sa.String(length=32), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["impression_id"],
            ["impression.id"],
            name=op.f("fk_feedback_action_impression_id_impression"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_action")),
    )
    with op.batch_alter_table("feedback_action", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_action_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_action_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_action_impression_id"), ["impression_id"], unique=False)
        batch_op.create_index("ix_feedback_action_pair", ["project_id", "institution_id"], unique=False)


def downgrade() -> None:
    op.drop_table("feedback_action")
    op.drop_table("impression")
