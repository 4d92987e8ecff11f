"""follow-up pipeline: connection stages, outcomes and the append-only history

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

STAGES = ("RECOMMENDED", "REQUESTED", "ACCEPTED", "REFUSED", "MET", "DUE_DILIGENCE", "SIGNED", "TERMINATED")
PARTIES = ("INSTITUTION", "PROJECT", "SECRETARIAT", "ORGANISER", "SYSTEM")
ROUNDS = ("SEED", "ANGEL", "PRE_A", "A", "B", "C_PLUS", "STRATEGIC", "BANK_LOAN")
SERVICES = ("TESTING", "TECH_TRANSFER", "DIGITAL", "DESIGN", "LEGAL", "HR", "FINANCE", "IP")


def _enum(name: str, values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shortlisted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("initiated_by", _enum("party", PARTIES), nullable=True))
        batch_op.add_column(sa.Column("requested_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("last_activity_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("signed_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "outcome_kind", _enum("outcomekind", ("FINANCING", "LANDING", "SERVICE")), nullable=True
            )
        )
        batch_op.add_column(sa.Column("outcome_amount_wan", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("outcome_round", _enum("fundinground", ROUNDS), nullable=True))
        batch_op.add_column(sa.Column("outcome_base", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("outcome_area_m2", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("outcome_service", _enum("servicekind", SERVICES), nullable=True))
        batch_op.add_column(sa.Column("outcome_date", sa.Date(), nullable=True))

    # Rows from before the pipeline: their last activity is their last update.
    op.execute("UPDATE connection SET last_activity_at = updated_at WHERE last_activity_at IS NULL")

    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.alter_column(
            "last_activity_at", existing_type=models.base.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_connection_stage"), ["stage"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_connection_last_activity_at"), ["last_activity_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_connection_signed_at"), ["signed_at"], unique=False)

    op.create_table(
        "connection_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "action",
            _enum("eventaction", ("CREATED", "MOVED", "SHORTLISTED", "UNSHORTLISTED", "NOTED")),
            nullable=False,
        ),
        sa.Column("from_stage", _enum("connectionstage", STAGES), nullable=True),
        sa.Column("to_stage", _enum("connectionstage", STAGES), nullable=False),
        sa.Column("actor_kind", _enum("party", PARTIES), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=120), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_connection_event_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_event")),
    )
    with op.batch_alter_table("connection_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connection_event_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_connection_event_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_event_to_stage"), ["to_stage"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("connection_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_event_to_stage"))
        batch_op.drop_index(batch_op.f("ix_connection_event_at"))
        batch_op.drop_index(batch_op.f("ix_connection_event_connection_id"))
    op.drop_table("connection_event")

    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_signed_at"))
        batch_op.drop_index(batch_op.f("ix_connection_last_activity_at"))
        batch_op.drop_index(batch_op.f("ix_connection_stage"))
        for column in (
            "outcome_date",
            "outcome_service",
            "outcome_area_m2",
            "outcome_base",
            "outcome_round",
            "outcome_amount_wan",
            "outcome_kind",
            "closed_reason",
            "signed_at",
            "last_activity_at",
            "requested_at",
            "initiated_by",
            "shortlisted",
        ):
            batch_op.drop_column(column)
