"""merge the accounts (0002) and pipeline (0003) branches

Revision ID: 0004
Revises: 0002, 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0004"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: this revision only joins the two branches into one head."""


def downgrade() -> None:
    """Nothing to change."""
