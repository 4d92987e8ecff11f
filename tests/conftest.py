"""Shared fixtures: a demo database built once per run, copied fresh for every test that needs it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.cli import upgrade_database
from app.extensions import db

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _config(db_path: Path, index_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "INDEX_DIR": str(index_dir),
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        **extra,
    }


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the demo database once (schema, catalogue, demo data, vectors, indexes); return its folder."""
    folder = tmp_path_factory.mktemp("demo-template")
    app = create_app(_config(folder / "match.db", folder / "index"))
    upgrade_database(app)
    from app.demo.load import load_demo
    from app.services import build_matching

    with app.app_context():
        session = db.new_session(app)
        try:
            load_demo(session)
        finally:
            session.close()
        build_matching(app)  # encodes every record once and persists the indexes
    app.extensions["db"]["engine"].dispose()
    return folder


@pytest.fixture()
def app(demo_template: Path, tmp_path: Path) -> Iterator[Flask]:
    """An app on a private copy of the demo database and indexes."""
    shutil.copy(demo_template / "match.db", tmp_path / "match.db")
    shutil.copytree(demo_template / "index", tmp_path / "index")
    application = create_app(_config(tmp_path / "match.db", tmp_path / "index"))
    yield application
    application.extensions["db"]["engine"].dispose()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture()
def session(app: Flask) -> Iterator[Any]:
    """A database session of the app, inside an app context."""
    with app.app_context():
        yield db.session
