"""organisers' intake: project import keys and eligibility figures, duplicate pairs, contest filings

Revision ID: 0010_intake
Revises: 0009_index_changes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0010_intake"
down_revision = "0009_index_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("credit_code", sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column("team_lead", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("assets_wan", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("sme_industry", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_project_ref"), ["ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_project_credit_code"), ["credit_code"], unique=False)
    op.create_table(
        "duplicate_pair",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_a_id", sa.Integer(), nullable=False),
        sa.Column("project_b_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("embedding_score", sa.Float(), nullable=True),
        sa.Column("text_score", sa.Float(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("SAME", "SIMILAR", name="duplicatekind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("OPEN", "CONFIRMED", "DISMISSED", name="duplicatestatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("found_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("project_a_id < project_b_id", name=op.f("ck_duplicate_pair_ordered")),
        sa.ForeignKeyConstraint(
            ["project_a_id"],
            ["project.id"],
            name=op.f("fk_duplicate_pair_project_a_id_project"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_b_id"],
            ["project.id"],
            name=op.f("fk_duplicate_pair_project_b_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_pair")),
        sa.UniqueConstraint("project_a_id", "project_b_id", name="uq_duplicate_pair_projects"),
    )
    with op.batch_alter_table("duplicate_pair", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duplicate_pair_project_a_id"), ["project_a_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_duplicate_pair_project_b_id"), ["project_b_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_duplicate_pair_status"), ["status"], unique=False)
    op.create_table(
        "contest_filing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("filing_unit", sa.String(length=200), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("organisers", sa.Text(), nullable=False),
        sa.Column("final_venue", sa.String(length=200), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("declaration", sa.Boolean(), nullable=False),
        sa.Column("liaison", sa.String(length=100), nullable=False),
        sa.Column("liaison_phone", sa.String(length=32), nullable=False),
        sa.Column("liaison_email", sa.String(length=120), nullable=False),
        sa.Column("site_admin", sa.String(length=64), nullable=True),
        sa.Column("site_admin_phone", sa.String(length=32), nullable=True),
        sa.Column("site_admin_email", sa.String(length=120), nullable=True),
        sa.Column("filed_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contest_id"],
            ["contest.id"],
            name=op.f("fk_contest_filing_contest_id_contest"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contest_filing")),
        sa.UniqueConstraint("contest_id", name=op.f("uq_contest_filing_contest_id")),
    )


def downgrade() -> None:
    op.drop_table("contest_filing")
    with op.batch_alter_table("duplicate_pair", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_pair_status"))
        batch_op.drop_index(batch_op.f("ix_duplicate_pair_project_b_id"))
        batch_op.drop_index(batch_op.f("ix_duplicate_pair_project_a_id"))
    op.drop_table("duplicate_pair")
    # drop the columns in place: recreating `project` would break the foreign keys pointing at it
    with op.batch_alter_table("project", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_credit_code"))
        batch_op.drop_index(batch_op.f("ix_project_ref"))
        batch_op.drop_column("sme_industry")
        batch_op.drop_column("assets_wan")
        batch_op.drop_column("team_lead")
        batch_op.drop_column("credit_code")
        batch_op.drop_column("ref")
