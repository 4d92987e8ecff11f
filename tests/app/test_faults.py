"""Faults: damaged index files, a database that goes away, and kill -9 in the middle of a write.

Index files: a deleted, truncated or mismatched index (or one saved for another model) is found when
the service starts; rankings answer at once from BM25 and the structured features, with a Chinese
notice on pages and ``"degraded": "lexical_only"`` in the API, while a background thread rebuilds
the indexes from the stored vectors; then dense ranking is back and the files are valid again.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings import VectorIndex
from tests.conftest import app_config

NOTICE = "语义索引正在重建"


def _damage(index_dir: Path, how: str) -> None:
    faiss_file = index_dir / "projects.faiss"
    manifest = index_dir / "projects.manifest.json"
    if how == "delete":
        faiss_file.unlink()
    elif how == "truncate":
        data = faiss_file.read_bytes()
        faiss_file.write_bytes(data[: len(data) // 2])
    elif how == "corrupt_manifest":
        manifest.write_text('{"format": 1, "model": ', encoding="utf-8")
    elif how == "other_model":
        body = json.loads(manifest.read_text("utf-8"))
        body["model"] = "st:some-other-model"
        manifest.write_text(json.dumps(body), encoding="utf-8")
    elif how == "other_vectors":
        # A valid pair of files, but not the vectors the database holds (e.g. a stale copy).
        index = VectorIndex.load(index_dir, "projects", _model(manifest), 384)
        assert index is not None
        pid = int(index.ids()[0])
        index.add([pid], -index.vectors_for([pid]))
        index.save(index_dir, "projects", _model(manifest))
    else:  # pragma: no cover
        raise AssertionError(how)


def _model(manifest: Path) -> str:
    return str(json.loads(manifest.read_text("utf-8"))["model"])


def _ranked(client: Any, url: str) -> list[tuple[int, float]]:
    body = client.get(url).get_json()
    return [(item["id"], item["score"]) for item in body["items"]]


@pytest.mark.parametrize("how", ["delete", "truncate", "corrupt_manifest", "other_model", "other_vectors"])
def test_damaged_index_is_rebuilt_in_the_background_while_rankings_stay_lexical(
    make_app: Any, how: str
) -> None:
    healthy = make_app()
    gate = threading.Event()
    app = make_app(INDEX_REBUILD_GATE=gate)
    index_dir = Path(app.config["INDEX_DIR"])
    _damage(index_dir, how)
    client = app.test_client()
    url = "/api/projects/1/matches?kind=fund&k=8"

    r = client.get(url)
    assert r.status_code == 200
    body = r.get_json()
    assert body["degraded"] == "lexical_only"
    assert body["items"], "rankings still answer while the index is rebuilt"
    service = app.extensions["matching"]
    assert service.degraded == "lexical_only" and not service.wait_until_ready(0)
    dense = [m.features["dense"] for m in service.match_project(1, "fund", k=8)]
    assert dense and all(d == 0.0 for d in dense), "no dense similarity while degraded"
    page = client.get("/projects/1")
    assert page.status_code == 200 and NOTICE in page.get_data(as_text=True)
    inst_page = client.get("/institutions/1")
    assert NOTICE in inst_page.get_data(as_text=True)

    gate.set()
    assert service.wait_until_ready(60), "the rebuild finished"
    assert service.degraded is None
    r = client.get(url)
    assert "degraded" not in r.get_json()
    assert NOTICE not in client.get("/projects/1").get_data(as_text=True)
    # Dense ranking is back: the same ranking as a service that loaded intact files.
    assert _ranked(client, url) == _ranked(healthy.test_client(), url)
    # ... and the files are valid again, holding the stored vectors.
    model, dim = service.embedder.name, service.embedder.dim
    for name in ("projects", "institutions"):
        assert VectorIndex.load(index_dir, name, model, dim) is not None, name
    fresh = make_app()
    fresh_dir = Path(fresh.config["INDEX_DIR"])
    for name in (
        "projects",
        "institutions",
    ):
        (fresh_dir / f"{name}.faiss").write_bytes((index_dir / f"{name}.faiss").read_bytes())
        (fresh_dir / f"{name}.manifest.json").write_bytes((index_dir / f"{name}.manifest.json").read_bytes())
    fresh_client = fresh.test_client()
    assert "degraded" not in fresh_client.get(url).get_json()
    assert fresh.extensions["matching"].loaded_from_disk == {"projects": True, "institutions": True}


def test_intact_index_is_used_without_a_rebuild(app: Any) -> None:
    client = app.test_client()
    body = client.get("/api/projects/1/matches?kind=fund&k=5").get_json()
    assert "degraded" not in body
    service = app.extensions["matching"]
    assert service.degraded is None and service.loaded_from_disk == {"projects": True, "institutions": True}
    assert NOTICE not in client.get("/projects/1").get_data(as_text=True)


def _login(client: Any, username: str = "admin") -> None:
    from app.auth.accounts import DEMO_ACCOUNTS

    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}[username]
    assert client.post("/login", data={"username": username, "password": password}).status_code == 302


def test_edits_made_during_the_rebuild_reach_the_rebuilt_index(make_app: Any) -> None:
    from app.extensions import db
    from app.services import stored_vectors

    gate = threading.Event()
    app = make_app(INDEX_REBUILD_GATE=gate)
    (Path(app.config["INDEX_DIR"]) / "projects.faiss").unlink()
    client = app.test_client()
    assert client.get("/api/projects/2/matches?kind=fund&k=3").get_json()["degraded"] == "lexical_only"
    service = app.extensions["matching"]
    _login(client)
    r = client.patch(
        "/api/projects/2", json={"description": "一种用于锂电池回收的湿法冶金新工艺，回收率高、污染小。"}
    )
    assert r.status_code == 200, r.get_json()
    service.remove_project(5)  # e.g. archived meanwhile
    time.sleep(service.save_delay_s + 0.5)
    assert not (Path(app.config["INDEX_DIR"]) / "projects.faiss").exists(), (
        "no placeholder index saved meanwhile"
    )
    gate.set()
    assert service.wait_until_ready(60)
    assert 5 not in service._proj_index
    with app.app_context():
        session = db.new_session(app)
        try:
            stored = stored_vectors(session, "project", service.embedder.name)
        finally:
            session.close()
    np.testing.assert_array_equal(service._proj_index.vectors_for([2])[0], stored[2])
    assert sorted(service._proj_index.ids().tolist()) == sorted(set(stored) - {5})


# --- a database that goes away ----------------------------------------------------------------------

UNAVAILABLE = "数据库暂时无法访问"


def _assert_unavailable(client: Any) -> None:
    page = client.get("/projects/")
    assert page.status_code == 503
    assert UNAVAILABLE in page.get_data(as_text=True) and "Traceback" not in page.get_data(as_text=True)
    assert page.headers["Retry-After"]
    api = client.get("/api/projects")
    assert api.status_code == 503
    assert api.get_json() == {
        "error": {
            "status": 503,
            "code": "database_unavailable",
            "message": api.get_json()["error"]["message"],
        }
    }
    assert UNAVAILABLE in api.get_json()["error"]["message"]


def test_sqlite_database_that_goes_away_gives_503_then_recovers(demo_template: Path, tmp_path: Path) -> None:
    import shutil

    from app import create_app

    folder = tmp_path / "db"
    folder.mkdir()
    shutil.copy(demo_template / "match.db", folder / "match.db")
    shutil.copytree(demo_template / "index", tmp_path / "index")
    app = create_app(app_config(folder / "match.db", tmp_path / "index"))
    try:
        client = app.test_client()
        _login(client)
        assert client.get("/projects/").status_code == 200
        assert client.get("/api/projects").status_code == 200

        folder.rename(tmp_path / "db.away")
        # SQLite keeps an open file handle, so a pooled connection would not notice the move; a real
        # outage (a server restart, a lost volume) drops the connections too: drop the pool likewise.
        app.extensions["db"]["engine"].dispose()
        _assert_unavailable(client)
        _assert_unavailable(client)  # and again: nothing is stuck half-way

        (tmp_path / "db.away").rename(folder)
        assert client.get("/projects/").status_code == 200, "recovers by itself, no restart"
        assert client.get("/api/projects").get_json()["total"] > 0
        assert "退出" in client.get("/projects/").get_data(as_text=True), "the session survived the outage"
    finally:
        app.extensions["db"]["engine"].dispose()


PG_URL = __import__("os").environ.get(
    "MATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture()
def pg_app(tmp_path: Path) -> Any:
    """An app on a dedicated, migrated PostgreSQL database (created here, dropped afterwards)."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from app import create_app
    from app.cli import upgrade_database
    from models.db import make_engine

    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL tests skipped: no server at {PG_URL} ({exc.orig.__class__.__name__})")
    name = f"match_fault_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    app = create_app(app_config(tmp_path / "unused.db", tmp_path / "index", DATABASE_URL=url))
    upgrade_database(app)
    app.config["PG_ADMIN"], app.config["PG_NAME"] = admin, name
    try:
        yield app
    finally:
        app.extensions["db"]["engine"].dispose()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _terminate(app: Any) -> int:
    from sqlalchemy import text

    with app.config["PG_ADMIN"].connect() as conn:
        return len(
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": app.config["PG_NAME"]},
            ).all()
        )


@pytest.mark.postgres
def test_postgres_terminated_connections_are_replaced_without_an_error(pg_app: Any) -> None:
    client = pg_app.test_client()
    assert client.get("/api/contests").status_code == 200
    assert _terminate(pg_app) >= 1, "the pooled connection was killed"
    r = client.get("/api/contests")
    assert r.status_code == 200 and r.get_json()["total"] > 0


@pytest.mark.postgres
def test_postgres_database_that_goes_away_gives_503_then_recovers(pg_app: Any) -> None:
    from sqlalchemy import text

    client = pg_app.test_client()
    assert client.get("/api/contests").status_code == 200
    name = pg_app.config["PG_NAME"]
    with pg_app.config["PG_ADMIN"].connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    _terminate(pg_app)
    _assert_unavailable(client)
    with pg_app.config["PG_ADMIN"].connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    assert client.get("/api/contests").get_json()["total"] > 0, "recovers by itself, no restart"
    assert client.get("/projects/").status_code == 200


# --- kill -9 in the middle of an import, an embedding job or a connection move ----------------------

CHILD = Path(__file__).with_name("fault_child.py")
IMPORT_NAME = "故障测试项目"


@pytest.fixture()
def fault_db(demo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo database and indexes for a child process; return its folder."""
    import shutil

    shutil.copy(demo_template / "match.db", tmp_path / "match.db")
    shutil.copytree(demo_template / "index", tmp_path / "index")
    return tmp_path


def _kill_child_at(folder: Path, scenario: str, point: str, **env: str) -> None:
    """Run the child until it reports it reached point, then SIGKILL it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    marker = folder / f"{scenario}-{point.replace(':', '-')}.stopped"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            scenario,
            str(folder / "match.db"),
            str(folder / "index"),
            str(marker),
            point,
        ],
        cwd=CHILD.parents[2],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    try:
        while not marker.exists():
            if proc.poll() is not None:
                out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
                pytest.fail(
                    f"the child ended (code {proc.returncode}) before reaching {point}:\n{out[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the child did not reach {point} in time")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


class _Db:
    """A session on a fault test's database (after the child died), closed by the context manager."""

    def __init__(self, folder: Path) -> None:
        from sqlalchemy.orm import Session

        from models.db import make_engine

        self.engine = make_engine(f"sqlite:///{folder / 'match.db'}")
        self.session = Session(self.engine)

    def __enter__(self) -> Any:
        return self.session

    def __exit__(self, *_exc: object) -> None:
        self.session.close()
        self.engine.dispose()


def _integrity_ok(folder: Path) -> None:
    with _Db(folder) as session:
        from sqlalchemy import text

        assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def _vectors_match_texts(session: Any) -> dict[str, set[int]]:
    """Assert every stored vector is whole and belongs to its record's current text; return owners by kind."""
    from sqlalchemy import select

    from app.services import _rows_and_texts
    from embeddings import text_hash
    from models import EmbeddingRecord

    owners: dict[str, set[int]] = {}
    for kind in ("project", "institution", "need"):
        texts = dict(_rows_and_texts(session, kind))
        recs = session.scalars(select(EmbeddingRecord).where(EmbeddingRecord.owner_kind == kind)).all()
        for rec in recs:
            assert rec.owner_id in texts, f"orphan vector {kind} {rec.owner_id}"
            assert rec.text_hash == text_hash(texts[rec.owner_id]), f"stale vector {kind} {rec.owner_id}"
            vec = np.frombuffer(rec.vector, dtype=np.float32)
            assert vec.shape == (rec.dim,) and np.isfinite(vec).all() and abs(float(vec @ vec) - 1) < 1e-3
        owners[kind] = {r.owner_id for r in recs}
    return owners


def _embed(folder: Path) -> dict[str, int]:
    """Run `flask embed` on the folder's database; return how many records it encoded per kind."""
    import re

    from app import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{folder / 'match.db'}",
            "INDEX_DIR": str(folder / "index"),
            "SECRET_KEY": "test-secret",
        }
    )
    try:
        result = app.test_cli_runner().invoke(args=["embed"])
        assert result.exit_code == 0, result.output
        line = re.search(r"encoded project (\d+), institution (\d+), need (\d+)", result.output)
        assert line, result.output
        return dict(zip(("project", "institution", "need"), map(int, line.groups()), strict=True))
    finally:
        app.extensions["db"]["engine"].dispose()


@pytest.mark.parametrize("point", ["flush:1", "commit:1"])
def test_kill_during_an_import_leaves_all_rows_or_none(fault_db: Path, point: str) -> None:
    from sqlalchemy import func, select

    from models import Project
    from models.accounts import AuditLog

    with _Db(fault_db) as session:
        before = session.scalar(select(func.count()).select_from(Project))
    _kill_child_at(fault_db, "import", point)
    _integrity_ok(fault_db)
    with _Db(fault_db) as session:
        imported = session.scalars(select(Project.id).where(Project.name.startswith(IMPORT_NAME))).all()
        total = session.scalar(select(func.count()).select_from(Project))
        owners = _vectors_match_texts(session)
        audited = session.scalar(select(func.count()).where(AuditLog.action == "import.projects"))
    if point == "flush:1":  # rows written, not committed: as before
        assert imported == [] and total == before
        assert audited == 0
        return
    assert len(imported) == 40 and total == before + 40, "all rows or none"
    assert audited == 1, "the rows and their audit line are committed together"
    missing = set(imported) - owners["project"]
    # Killed before the vectors were stored: `flask embed` encodes exactly those, nothing else.
    assert missing == set(imported)
    assert _embed(fault_db) == {"project": len(missing), "institution": 0, "need": 0}
    with _Db(fault_db) as session:
        assert set(imported) <= _vectors_match_texts(session)["project"]


@pytest.mark.parametrize(("point", "stored"), [("flush:2", 16), ("commit:2", 32)])
def test_kill_during_flask_embed_keeps_whole_batches_and_resumes(
    fault_db: Path, point: str, stored: int
) -> None:
    from sqlalchemy import delete, select

    from app.services import project_record_text
    from embeddings import load_embedder
    from models import EmbeddingRecord, Project

    with _Db(fault_db) as session:
        dropped = session.scalars(
            select(EmbeddingRecord.owner_id).where(EmbeddingRecord.owner_kind == "project")
        ).all()[:40]
        session.execute(
            delete(EmbeddingRecord).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id.in_(dropped)
            )
        )
        session.commit()
    _kill_child_at(fault_db, "embed", point)
    _integrity_ok(fault_db)
    with _Db(fault_db) as session:
        owners = _vectors_match_texts(session)
        back = set(dropped) & owners["project"]
        assert len(back) == stored, "whole batches of 16, each committed with its vectors"
        # A stored vector is the encoding of the record's text, not a neighbour's.
        embedder = load_embedder("e5")
        sample = sorted(back)[:3]
        texts = [project_record_text(session.get(Project, pid)) for pid in sample]
        fresh = embedder.encode_documents(texts)
        recs = {
            r.owner_id: np.frombuffer(r.vector, dtype=np.float32)
            for r in session.scalars(
                select(EmbeddingRecord).where(
                    EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id.in_(sample)
                )
            )
        }
        for pid, vec in zip(sample, fresh, strict=True):
            np.testing.assert_allclose(recs[pid], vec, atol=1e-4)
    assert _embed(fault_db) == {"project": 40 - stored, "institution": 0, "need": 0}, (
        "resumes, re-encodes nothing stored"
    )
    with _Db(fault_db) as session:
        assert set(dropped) <= _vectors_match_texts(session)["project"]


@pytest.mark.parametrize("point", ["flush:1", "commit:1"])
def test_kill_during_a_connection_move_keeps_stage_and_history_in_agreement(
    fault_db: Path, point: str
) -> None:
    from sqlalchemy import func, select

    from models import Connection, ConnectionStage
    from models.accounts import AuditLog
    from models.pipeline import ConnectionEvent

    open_stages = (ConnectionStage.REQUESTED, ConnectionStage.ACCEPTED, ConnectionStage.MET)
    with _Db(fault_db) as session:
        c = session.scalars(
            select(Connection).where(Connection.stage.in_(open_stages)).order_by(Connection.id)
        ).first()
        assert c is not None
        cid, stage = c.id, c.stage
        events = session.scalar(select(func.count()).where(ConnectionEvent.connection_id == cid))
    _kill_child_at(fault_db, "move", point, FAULT_CONNECTION_ID=str(cid))
    _integrity_ok(fault_db)
    with _Db(fault_db) as session:
        c = session.get(Connection, cid)
        history = session.scalars(
            select(ConnectionEvent).where(ConnectionEvent.connection_id == cid).order_by(ConnectionEvent.id)
        ).all()
        moves = session.scalar(
            select(func.count()).where(AuditLog.action == "connection.move", AuditLog.obj_id == cid)
        )
        assert c.stage is history[-1].to_stage, "the stage and its last history event agree"
        if point == "flush:1":
            assert c.stage is stage and len(history) == events and moves == 0, "as before"
        else:
            assert c.stage is ConnectionStage.TERMINATED and len(history) == events + 1 and moves == 1, (
                "as after"
            )
