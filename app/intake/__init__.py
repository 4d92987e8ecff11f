"""Organisers' intake: column-mapped idempotent imports, entry conditions, duplicate projects, 备案表."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the intake pages, their template helpers and the import/duplicates commands."""
    from app.intake import cli, views

    app.register_blueprint(views.bp)
    views.init_app(app)
    cli.init_app(app)
