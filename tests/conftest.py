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


def app_config(db_path: Path, index_dir: Path, **extra: Any) -> dict[str, Any]:
    """Return the test configuration of an app on a SQLite file and an index folder (extra overrides)."""
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
    app = create_app(app_config(folder / "match.db", folder / "index"))
    upgrade_database(app)
    from app.services import build_matching

    # `flask demo load`: the demo data with the vectors shipped with it (model and text hash checked)
    loaded = app.test_cli_runner().invoke(args=["demo", "load"])
    assert loaded.exit_code == 0, loaded.output
    with app.app_context():
        build_matching(app)  # encodes any record without a shipped vector, persists the indexes
    app.extensions["db"]["engine"].dispose()
    return folder


@pytest.fixture()
def app(demo_template: Path, tmp_path: Path) -> Iterator[Flask]:
    """An app on a private copy of the demo database and indexes."""
    shutil.copy(demo_template / "match.db", tmp_path / "match.db")
    shutil.copytree(demo_template / "index", tmp_path / "index")
    application = create_app(app_config(tmp_path / "match.db", tmp_path / "index"))
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


class AuthActions:
    """Log the test client in and out as a demo account (flaskr's auth helper)."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, username: str = "admin", password: str | None = None) -> Any:
        """Log in; the password defaults to the demo account's documented one."""
        from app.auth.accounts import DEMO_ACCOUNTS

        if password is None:
            password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}[username]
        return self._client.post("/login", data={"username": username, "password": password})

    def logout(self) -> Any:
        return self._client.post("/logout")


@pytest.fixture()
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture()
def make_app(demo_template: Path, tmp_path: Path) -> Iterator[Any]:
    """Return a factory of apps on private copies of the demo database, with extra settings (CSRF on, ...)."""
    made: list[Flask] = []

    def factory(**extra: Any) -> Flask:
        folder = tmp_path / f"app{len(made)}"
        folder.mkdir()
        shutil.copy(demo_template / "match.db", folder / "match.db")
        shutil.copytree(demo_template / "index", folder / "index")
        application = create_app(app_config(folder / "match.db", folder / "index", **extra))
        made.append(application)
        return application

    yield factory
    for application in made:
        application.extensions["db"]["engine"].dispose()


# --- the data layer on SQLite and on the real PostgreSQL ----------------------------------------------

PG_URL = os.environ.get("MATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _migrate(engine: Any, url: str, target: str = "head", down: bool = False) -> None:
    """Run Alembic up (or down) to target on the engine's database."""
    from alembic import command

    from app.cli import alembic_config

    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def _postgres_schema() -> Iterator[tuple[Any, str]]:
    """Yield an engine on a fresh, migrated PostgreSQL schema (dropped afterwards), or skip saying why."""
    import uuid

    from sqlalchemy import event, text
    from sqlalchemy.exc import OperationalError

    from models.db import make_engine

    probe = make_engine(PG_URL)
    try:
        with probe.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL tests skipped: no server at {PG_URL} ({exc.orig.__class__.__name__})")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with probe.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL)

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f'SET search_path TO "{schema}"')
        cur.close()
        dbapi_conn.commit()

    try:
        _migrate(engine, PG_URL)
        yield engine, PG_URL
    finally:
        engine.dispose()
        with probe.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        probe.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """An (engine, url) of an empty database migrated to head: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        from models.db import make_engine

        url = f"sqlite:///{tmp_path / 'layer.db'}"
        engine = make_engine(url)
        _migrate(engine, url)
        yield engine, url
        engine.dispose()
    else:
        yield from _postgres_schema()


@pytest.fixture()
def migrate() -> Any:
    """Return the Alembic runner: migrate(engine, url, target="head", down=False)."""
    return _migrate
