"""list indexes: keyset paging by (sort column, id), a connection's history in order

Revision ID: 0013_list_indexes
Revises: 0012_jobs
"""

from __future__ import annotations

from alembic import op

revision = "0013_list_indexes"
down_revision = "0012_jobs"
branch_labels = None
depends_on = None

#: (index name, table, columns): the same as the models' __table_args__.
INDEXES = (
    ("ix_project_name_id", "project", ["name", "id"]),
    ("ix_project_province_id", "project", ["province", "id"]),
    ("ix_project_industry_id", "project", ["industry", "id"]),
    ("ix_project_contest_id_id", "project", ["contest_id", "id"]),
    ("ix_institution_name_id", "institution", ["name", "id"]),
    ("ix_institution_province_id", "institution", ["province", "id"]),
    ("ix_need_title_id", "need", ["title", "id"]),
    ("ix_need_deadline_id", "need", ["deadline", "id"]),
    ("ix_connection_last_activity_id", "connection", ["last_activity_at", "id"]),
    ("ix_connection_event_connection_at", "connection_event", ["connection_id", "at", "id"]),
    ("ix_connection_event_stage_at", "connection_event", ["to_stage", "at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
