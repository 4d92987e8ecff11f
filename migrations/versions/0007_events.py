"""matchmaking events, experts and their assignments; institutions' registration choices

Revision ID: 0007_events
Revises: 0006_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0007_events"
down_revision = "0006_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("tables", sa.Integer(), nullable=True),
        sa.Column("institution_capacity", sa.Integer(), nullable=False),
        sa.Column("project_min", sa.Integer(), nullable=False),
        sa.Column("project_max", sa.Integer(), nullable=False),
        sa.Column("required", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("DRAFT", "PLANNED", "HELD", name="eventstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("plan_report", sa.JSON(), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "project_min >= 0 AND project_max >= 0", name=op.f("ck_match_event_bounds_nonnegative")
        ),
        sa.CheckConstraint("slots >= 1", name=op.f("ck_match_event_slots_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_event")),
    )
    op.create_table(
        "expert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("employer_institution_id", sa.Integer(), nullable=True),
        sa.Column("employer", sa.String(length=200), nullable=True),
        sa.Column("fields", models.base.StrList(), nullable=False),
        sa.Column("kinds", models.base.StrList(), nullable=False),
        sa.Column("roles", models.base.StrList(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["employer_institution_id"],
            ["institution.id"],
            name=op.f("fk_expert_employer_institution_id_institution"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert")),
    )
    with op.batch_alter_table("expert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_expert_employer_institution_id"), ["employer_institution_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_expert_name"), ["name"], unique=False)

    op.create_table(
        "institution_registration",
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("choices", models.base.StrList(), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_institution_registration_institution_id_institution"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("institution_id", name=op.f("pk_institution_registration")),
    )
    op.create_table(
        "match_event_contest",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contest_id"],
            ["contest.id"],
            name=op.f("fk_match_event_contest_contest_id_contest"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["match_event.id"],
            name=op.f("fk_match_event_contest_event_id_match_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "contest_id", name=op.f("pk_match_event_contest")),
    )
    op.create_table(
        "expert_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("expert_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=True),
        sa.Column(
            "role",
            sa.Enum("JUDGE", "MENTOR", "EXPERT", name="expertrole", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contest_id"],
            ["contest.id"],
            name=op.f("fk_expert_assignment_contest_id_contest"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["expert.id"],
            name=op.f("fk_expert_assignment_expert_id_expert"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_expert_assignment_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_assignment")),
        sa.UniqueConstraint("expert_id", "project_id", "role", name="uq_expert_assignment"),
    )
    with op.batch_alter_table("expert_assignment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_expert_assignment_expert_id"), ["expert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_expert_assignment_project_id"), ["project_id"], unique=False)

    op.create_table(
        "match_conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("expert_id", sa.Integer(), nullable=True),
        sa.Column(
            "source",
            sa.Enum("DECLARED", "DETECTED", name="conflictsource", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("cause", sa.String(length=300), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["match_event.id"],
            name=op.f("fk_match_conflict_event_id_match_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["expert.id"], name=op.f("fk_match_conflict_expert_id_expert"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_match_conflict_institution_id_institution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_match_conflict_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_conflict")),
    )
    with op.batch_alter_table("match_conflict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_conflict_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_match_conflict_project_id"), ["project_id"], unique=False)

    op.create_table(
        "match_event_invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("unavailable_slots", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "(project_id IS NULL) <> (institution_id IS NULL)", name=op.f("ck_match_event_invite_one_party")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["match_event.id"],
            name=op.f("fk_match_event_invite_event_id_match_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_match_event_invite_institution_id_institution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_match_event_invite_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_event_invite")),
        sa.UniqueConstraint("event_id", "institution_id", name="uq_match_event_invite_institution"),
        sa.UniqueConstraint("event_id", "project_id", name="uq_match_event_invite_project"),
    )
    with op.batch_alter_table("match_event_invite", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_event_invite_event_id"), ["event_id"], unique=False)

    op.create_table(
        "match_meeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("table_no", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", models.base.StrList(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_match_meeting_connection_id_connection"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["match_event.id"],
            name=op.f("fk_match_meeting_event_id_match_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_match_meeting_institution_id_institution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_match_meeting_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_meeting")),
        sa.UniqueConstraint("event_id", "project_id", "institution_id", name="uq_match_meeting_pair"),
    )
    with op.batch_alter_table("match_meeting", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_meeting_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_match_meeting_institution_id"), ["institution_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_match_meeting_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("match_meeting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_meeting_project_id"))
        batch_op.drop_index(batch_op.f("ix_match_meeting_institution_id"))
        batch_op.drop_index(batch_op.f("ix_match_meeting_event_id"))

    op.drop_table("match_meeting")
    with op.batch_alter_table("match_event_invite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_event_invite_event_id"))

    op.drop_table("match_event_invite")
    with op.batch_alter_table("match_conflict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_conflict_project_id"))
        batch_op.drop_index(batch_op.f("ix_match_conflict_event_id"))

    op.drop_table("match_conflict")
    with op.batch_alter_table("expert_assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expert_assignment_project_id"))
        batch_op.drop_index(batch_op.f("ix_expert_assignment_expert_id"))

    op.drop_table("expert_assignment")
    op.drop_table("match_event_contest")
    op.drop_table("institution_registration")
    with op.batch_alter_table("expert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expert_name"))
        batch_op.drop_index(batch_op.f("ix_expert_employer_institution_id"))

    op.drop_table("expert")
    op.drop_table("match_event")
