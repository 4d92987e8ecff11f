"""Several workers, one database: a change made through one app is ranked by another within the bound.

Two Flask apps on the same database file (and index folder) stand for two gunicorn workers: each holds
its own matching service in memory and follows the index_changes log (app/index_sync.py).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from app import create_app, index_sync
from app.extensions import db
from models import Connection, ConnectionStage, IndexChange, Institution, Project
from tests.conftest import app_config

SYNC = 0.2  # MATCH_INDEX_SYNC_SECONDS of both apps: the bound the tests wait for


def _login(app: Flask) -> Any:
    from app.auth.accounts import DEMO_ACCOUNTS

    client = app.test_client()
    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}["admin"]
    assert client.post("/login", data={"username": "admin", "password": password}).status_code in (200, 302)
    return client


def _ranked(app: Flask, institution_id: int) -> list[int]:
    """Return the project ids an anonymous visitor of this app sees ranked for an institution."""
    r = app.test_client().get(f"/api/institutions/{institution_id}/matches?k=10")
    assert r.status_code == 200, r.json
    return [item["id"] for item in r.json["items"]]


def _service(app: Flask) -> Any:
    from app.services import get_matching

    with app.test_request_context():
        return get_matching()


@pytest.fixture()
def workers(demo_template: Path, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    """Two apps on one copy of the demo database and index folder, as two gunicorn workers."""
    shutil.copy(demo_template / "match.db", tmp_path / "match.db")
    shutil.copytree(demo_template / "index", tmp_path / "index")
    apps = [
        create_app(app_config(tmp_path / "match.db", tmp_path / "index", INDEX_SYNC_SECONDS=SYNC))
        for _ in range(2)
    ]
    yield apps[0], apps[1]
    for a in apps:
        a.extensions["db"]["engine"].dispose()


def _institution(app: Flask) -> tuple[int, dict[str, Any]]:
    with app.app_context():
        inst = db.session.scalars(
            select(Institution).where(Institution.archived_at.is_(None)).order_by(Institution.id)
        ).first()
        assert inst is not None
        return inst.id, {"description": inst.description, "industries": list(inst.industries or ())}


def test_an_edit_in_one_worker_is_ranked_by_the_other_after_the_bound(workers: tuple[Flask, Flask]) -> None:
    a, b = workers
    iid, inst = _institution(a)
    before = _ranked(b, iid)  # b builds its service and starts following the log
    _ranked(a, iid)
    with a.app_context():
        unranked = select(Project.id).where(Project.id.not_in(before)).order_by(Project.id)
        pid = db.session.scalars(unranked).first()
    # Made to read like the institution's own profile: it should rank first for it.
    body = {"description": inst["description"] + "，本项目正是面向这一方向。"}
    if inst["industries"]:
        body["industry"] = inst["industries"][0]
    r = _login(a).patch(f"/api/projects/{pid}", json=body)
    assert r.status_code == 200, r.json
    time.sleep(SYNC)
    after = _ranked(b, iid)
    assert pid in after and after.index(pid) < 3, (pid, after)
    assert _ranked(a, iid) == after  # both workers rank the same records the same way


def test_archive_and_restore_in_one_worker_reach_the_other(workers: tuple[Flask, Flask]) -> None:
    a, b = workers
    iid, _ = _institution(a)
    top = _ranked(b, iid)[0]
    admin = _login(a)
    r = admin.delete(f"/api/projects/{top}")
    assert r.status_code == 200 and r.json["archived"], r.json  # the demo's best match has connections
    time.sleep(SYNC)
    assert top not in _ranked(b, iid)
    assert top not in _service(b).project_ids()
    assert admin.post(f"/api/projects/{top}/restore").status_code == 200
    time.sleep(SYNC)
    assert _ranked(b, iid)[0] == top


def test_a_new_institution_is_ranked_at_once_by_another_worker(workers: tuple[Flask, Flask]) -> None:
    a, b = workers
    iid, inst = _institution(a)
    _ranked(b, iid)
    b.config["INDEX_SYNC_SECONDS"] = 3600.0  # no periodic check in b: only the unknown id makes it look
    index_sync.follow(b, b.extensions["index_sync"].last_id)
    r = _login(a).post(
        "/api/institutions",
        json={"name": "新设的产业投资基金", "kind": "创业投资机构", "description": inst["description"]},
    )
    assert r.status_code == 201, r.json
    new_id = r.json["id"]
    ranked = _ranked(b, new_id)
    assert len(ranked) == 10
    assert new_id in _service(b).institution_ids()


def test_a_signature_change_reaches_the_other_workers_evidence(workers: tuple[Flask, Flask]) -> None:
    a, b = workers
    with a.app_context():
        c = db.session.scalars(
            select(Connection).where(Connection.stage == ConnectionStage.SIGNED).order_by(Connection.id)
        ).first()
        assert c is not None
        cid, iid, pid = c.id, c.institution_id, c.project_id
    service = _service(b)
    assert pid in {item.project_id for item in service.institution(iid).portfolio}
    r = _login(a).post(f"/api/connections/{cid}/move", json={"to_stage": "终止", "note": "协议解除"})
    assert r.status_code == 200, r.json
    with a.app_context():
        logged = db.session.scalars(select(IndexChange).order_by(IndexChange.id.desc())).first()
        assert (logged.record_kind, logged.record_id) == ("institution", iid)
    time.sleep(SYNC)
    _ranked(b, iid)
    assert pid not in {item.project_id for item in service.institution(iid).portfolio}


def test_a_check_is_made_at_most_once_per_interval(workers: tuple[Flask, Flask], monkeypatch: Any) -> None:
    a, b = workers
    iid, _ = _institution(a)
    _ranked(b, iid)
    follower = b.extensions["index_sync"]
    queries: list[int] = []
    real = follower._read
    monkeypatch.setattr(follower, "_read", lambda s: queries.append(1) or real(s))
    clock = [time.monotonic()]
    monkeypatch.setattr(index_sync.time, "monotonic", lambda: clock[0])
    follower._due = clock[0] + SYNC
    for _ in range(5):
        _ranked(b, iid)
    assert queries == []
    clock[0] += SYNC
    _ranked(b, iid)
    _ranked(b, iid)
    assert queries == [1]


def test_out_of_order_commits_are_waited_for(workers: tuple[Flask, Flask]) -> None:
    """PostgreSQL shows ids in commit order, not id order: a skipped id is asked for again."""
    a, _ = workers
    with a.app_context():
        s = db.session
        start = index_sync.start_position(s)
        follower = index_sync.IndexFollower(start, 0)
        s.add_all(
            [
                IndexChange(id=start + 1, record_kind="project", record_id=1, op="upsert"),
                IndexChange(id=start + 3, record_kind="project", record_id=3, op="upsert"),
            ]
        )
        s.commit()
        assert [r.record_id for r in follower._read(s)] == [1, 3]
        assert follower.last_id == start + 3
        s.add(IndexChange(id=start + 2, record_kind="project", record_id=2, op="upsert"))  # commits late
        s.commit()
        assert [r.record_id for r in follower._read(s)] == [2]
        assert follower._read(s) == []


def test_a_worker_that_was_away_too_long_reloads(workers: tuple[Flask, Flask], monkeypatch: Any) -> None:
    a, b = workers
    iid, _ = _institution(a)
    _ranked(b, iid)
    first = _service(b)
    follower = b.extensions["index_sync"]
    follower._checked_at -= index_sync.RETENTION_SECONDS  # rows it had not applied may be pruned by now
    assert index_sync.behind(b)
    assert _service(b) is not first
    assert not index_sync.behind(b)


def test_old_change_rows_are_pruned(workers: tuple[Flask, Flask]) -> None:
    from datetime import timedelta

    from models.base import utcnow

    a, _ = workers
    with a.app_context():
        s = db.session
        old = utcnow() - timedelta(seconds=index_sync.RETENTION_SECONDS + 60)
        s.add_all(
            [
                IndexChange(record_kind="project", record_id=1, op="upsert", created_at=old),
                IndexChange(record_kind="project", record_id=2, op="upsert"),
            ]
        )
        s.commit()
        assert index_sync.prune(s) == 1
        assert [c.record_id for c in s.scalars(select(IndexChange))] == [2]
        # ids are never handed out again, even when the newest rows are pruned (SQLite AUTOINCREMENT)
        top = s.scalar(select(IndexChange.id))
        s.execute(text("DELETE FROM index_changes"))
        s.commit()
        s.add(IndexChange(record_kind="project", record_id=3, op="upsert"))
        s.commit()
        assert s.scalar(select(IndexChange.id)) > top


def test_only_ranked_changes_are_logged(workers: tuple[Flask, Flask]) -> None:
    a, _ = workers
    with a.app_context(), pytest.raises(ValueError):
        index_sync.record_changes(db.session, "need", [1])


# --- PostgreSQL: two apps on one schema ----------------------------------------------------------------


@pytest.mark.postgres
def test_two_workers_on_postgresql(tmp_path: Path) -> None:
    from app.cli import upgrade_database
    from app.demo.load import load_demo
    from app.demo.vectors import restore_shipped_vectors
    from embeddings import model_name
    from tests.conftest import PG_URL, _postgres_schema

    schemas = _postgres_schema()
    engine, _url = next(schemas)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("select current_schema()")).scalar_one()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        config = app_config(tmp_path / "unused.db", tmp_path / "index", INDEX_SYNC_SECONDS=SYNC)
        config["DATABASE_URL"] = url
        apps = [create_app(config) for _ in range(2)]
        upgrade_database(apps[0])  # the catalogue
        session = db.new_session(apps[0])
        try:
            load_demo(session)
            restore_shipped_vectors(session, model_name(apps[0].config["EMBEDDING_MODEL"]))
        finally:
            session.close()
        a, b = apps
        iid, _ = _institution(a)
        top = _ranked(b, iid)[0]
        assert _ranked(a, iid)[0] == top
        r = _login(a).delete(f"/api/projects/{top}")
        assert r.status_code == 200, r.json
        time.sleep(SYNC)
        assert top not in _ranked(b, iid)
        for application in apps:
            application.extensions["db"]["engine"].dispose()
    finally:
        next(schemas, None)


def test_the_migration_goes_up_and_down(migrated_db: tuple[Engine, str], migrate: Any) -> None:
    engine, url = migrated_db
    assert "index_changes" in inspect(engine).get_table_names()
    migrate(engine, url, "0008_event_group_rules", down=True)
    assert "index_changes" not in inspect(engine).get_table_names()
    migrate(engine, url)
    with Session(engine) as s:
        s.add(IndexChange(record_kind="institution", record_id=7, op="remove"))
        s.commit()
        assert s.scalar(select(IndexChange.record_id)) == 7


def test_workers_starting_together_encode_in_turn(tmp_path: Path) -> None:
    import threading

    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with index_sync.one_process_at_a_time(tmp_path / "index"):
            order.append("first in")
            inside.set()
            release.wait(5)
            order.append("first out")

    def second() -> None:
        inside.wait(5)
        with index_sync.one_process_at_a_time(tmp_path / "index"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(5)
    time.sleep(0.2)
    assert order == ["first in"]  # the second waits for the lock
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["first in", "first out", "second in"]


def test_a_new_worker_reads_all_texts_only_when_a_vector_is_missing(app: Flask, monkeypatch: Any) -> None:
    from sqlalchemy import delete

    from app import services
    from models import EmbeddingRecord

    calls: list[int] = []
    real = services.sync_embeddings
    monkeypatch.setattr(services, "sync_embeddings", lambda *a, **k: calls.append(1) or real(*a, **k))
    services.build_matching(app, background=True)
    assert calls == []  # the demo's records all have their vectors
    with app.app_context():
        one = (EmbeddingRecord.owner_kind == "project") & (EmbeddingRecord.owner_id == 3)
        db.session.execute(delete(EmbeddingRecord).where(one))
        db.session.commit()
    services.build_matching(app, background=True)
    assert calls == [1]
    with app.app_context():
        assert db.session.scalar(select(EmbeddingRecord.id).where(one)) is not None


@pytest.mark.postgres
def test_a_change_committed_after_a_higher_id_is_applied_on_postgresql() -> None:
    """Two transactions: the first to insert commits last; its lower id is still read once it commits."""
    from tests.conftest import _postgres_schema

    schemas = _postgres_schema()
    engine, _url = next(schemas)
    try:
        with Session(engine) as reader, Session(engine) as slow, Session(engine) as fast:
            follower = index_sync.IndexFollower(index_sync.start_position(reader), 0)
            reader.commit()
            index_sync.record_changes(slow, "project", [1])
            slow.flush()  # takes its id from the sequence now, commits later
            index_sync.record_changes(fast, "project", [2])
            fast.commit()
            assert [r.record_id for r in follower._read(reader)] == [2]
            reader.commit()  # each check is its own transaction (a new session in the app)
            slow.commit()
            assert [r.record_id for r in follower._read(reader)] == [1]
            reader.commit()
            assert follower._read(reader) == []
    finally:
        next(schemas, None)


def test_the_ranked_list_shows_another_workers_edits_after_the_bound(workers: tuple[Flask, Flask]) -> None:
    """The API's ranked lists are made from the service's profiles: renames and archives reach them too."""
    a, b = workers
    iid, _ = _institution(a)
    client = b.test_client()
    top = client.get(f"/api/institutions/{iid}/matches?k=10").json["items"][0]
    admin = _login(a)
    renamed = top["name"] + "（更名）"
    assert admin.patch(f"/api/projects/{top['id']}", json={"name": renamed}).status_code == 200
    time.sleep(SYNC)
    items = client.get(f"/api/institutions/{iid}/matches?k=10").json["items"]
    assert {i["id"]: i["name"] for i in items}.get(top["id"]) == renamed
    assert admin.delete(f"/api/institutions/{iid}").status_code in (200, 204)
    time.sleep(SYNC)
    assert client.get(f"/api/institutions/{iid}/matches?k=10").status_code == 404
