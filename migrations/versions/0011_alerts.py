"""saved searches, alert notifications and each account's alert e-mail settings

Revision ID: 0011_alerts
Revises: 0010_intake
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0011_alerts"
down_revision = "0010_intake"
branch_labels = None
depends_on = None

_FREQUENCY = sa.Enum("IMMEDIATE", "DAILY", "WEEKLY", name="alertfrequency", native_enum=False, length=32)
_KIND = sa.Enum("INSTITUTION", "NEED", name="searchkind", native_enum=False, length=32)
_AT = models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "saved_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("kind", _KIND, nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("rank_threshold", sa.Integer(), nullable=False),
        sa.Column("frequency", _FREQUENCY, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("auto_key", sa.String(length=64), nullable=True),
        sa.Column("baseline", sa.JSON(), nullable=False),
        sa.Column("last_run_at", _AT, nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_saved_search_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_saved_search_institution_id_institution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["need_id"], ["need.id"], name=op.f("fk_saved_search_need_id_need"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_search")),
        sa.UniqueConstraint("auto_key", name=op.f("uq_saved_search_auto_key")),
    )
    op.create_index(op.f("ix_saved_search_user_id"), "saved_search", ["user_id"])
    op.create_index(op.f("ix_saved_search_institution_id"), "saved_search", ["institution_id"])
    op.create_index(op.f("ix_saved_search_need_id"), "saved_search", ["need_id"])

    op.create_table(
        "alert_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("search_name", sa.String(length=60), nullable=False),
        sa.Column("kind", _KIND, nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("rank_threshold", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("frequency", _FREQUENCY, nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("read_at", _AT, nullable=True),
        sa.Column("viewed_at", _AT, nullable=True),
        sa.Column("emailed_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_alert_notification_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["saved_search.id"],
            name=op.f("fk_alert_notification_search_id_saved_search"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_alert_notification_institution_id_institution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["need_id"], ["need.id"], name=op.f("fk_alert_notification_need_id_need"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_alert_notification_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notification")),
        sa.UniqueConstraint("search_id", "project_id", name="uq_alert_notification_search_project"),
    )
    op.create_index(op.f("ix_alert_notification_user_id"), "alert_notification", ["user_id"])
    op.create_index(op.f("ix_alert_notification_institution_id"), "alert_notification", ["institution_id"])
    op.create_index(op.f("ix_alert_notification_project_id"), "alert_notification", ["project_id"])
    op.create_index(op.f("ix_alert_notification_created_at"), "alert_notification", ["created_at"])
    op.create_index(op.f("ix_alert_notification_emailed_at"), "alert_notification", ["emailed_at"])

    op.create_table(
        "alert_settings",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("unsubscribed_at", _AT, nullable=True),
        sa.Column("last_digest", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_alert_settings_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_alert_settings")),
    )


def downgrade() -> None:
    op.drop_table("alert_settings")
    for name in ("emailed_at", "created_at", "project_id", "institution_id", "user_id"):
        op.drop_index(op.f(f"ix_alert_notification_{name}"), table_name="alert_notification")
    op.drop_table("alert_notification")
    for name in ("need_id", "institution_id", "user_id"):
        op.drop_index(op.f(f"ix_saved_search_{name}"), table_name="saved_search")
    op.drop_table("saved_search")
