"""`flask demo synthetic`: scale data with its own vectors and history, served with the synthetic model."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app import create_app
from app.extensions import db
from embeddings import SyntheticEmbedder, load_embedder, model_name
from models import (
    Connection,
    ConnectionStage,
    Contest,
    EmbeddingRecord,
    Institution,
    InstitutionKind,
    Project,
)
from models.pipeline import EventAction
from tests.conftest import app_config

N_PROJECTS, N_INSTITUTIONS = 300, 40


@pytest.fixture(scope="module")
def synthetic_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str]]:
    """An app on a fresh database filled by the command; yields (app, the command's output)."""
    folder = tmp_path_factory.mktemp("synthetic")
    app = create_app(app_config(folder / "match.db", folder / "index", EMBEDDING_MODEL="synthetic"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    r = runner.invoke(
        args=[
            "demo",
            "synthetic",
            "--projects",
            str(N_PROJECTS),
            "--institutions",
            str(N_INSTITUTIONS),
            "--seed",
            "3",
        ]
    )
    assert r.exit_code == 0, r.output
    yield app, r.output
    app.extensions["db"]["engine"].dispose()


def test_synthetic_fills_every_contest_and_kind_with_synthetic_vectors(synthetic_app):
    app, output = synthetic_app
    assert f"projects {N_PROJECTS}, institutions {N_INSTITUTIONS}" in output
    session = db.new_session(app)
    try:
        assert session.scalar(select(func.count(Project.id))) == N_PROJECTS
        contests = set(session.scalars(select(Contest.id)))
        used = set(session.scalars(select(Project.contest_id).distinct()))
        assert used <= contests and len(used) >= len(contests) - 3
        assert set(session.scalars(select(Institution.kind).distinct())) == set(InstitutionKind)
        recs = session.scalars(select(EmbeddingRecord)).all()
        assert len(recs) == N_PROJECTS + N_INSTITUTIONS
        assert {r.model for r in recs} == {"synthetic"}
        vecs = np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in recs])
        assert vecs.shape[1] == 384 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
        # clustered, not uniform: a project's nearest neighbour is far closer than a random pair
        p = vecs[:N_PROJECTS]
        sims = p @ p.T
        np.fill_diagonal(sims, -1)
        assert np.median(sims.max(axis=1)) > 0.5 > abs(float(np.median(sims)))
        # every stored hash is that of the record's current text: nothing is encoded at start
        from app.services import sync_embeddings

        report = sync_embeddings(session, load_embedder("synthetic"))
        assert sum(report.encoded.values()) == 0
        # texts come from a small industry vocabulary: the same words recur (BM25 has something to match)
        words = [p.description.split("，")[0] for p in session.scalars(select(Project))]
        assert len(set(words)) < N_PROJECTS / 2
    finally:
        session.close()


def test_synthetic_history_is_consistent(synthetic_app):
    app, _ = synthetic_app
    session = db.new_session(app)
    try:
        conns = session.scalars(
            select(Connection).options(selectinload(Connection.events), selectinload(Connection.institution))
        ).all()
        assert len(conns) > 50
        assert len({c.stage for c in conns}) >= 5
        signed = [c for c in conns if c.stage is ConnectionStage.SIGNED]
        assert signed and all(c.outcome_kind and c.signed_at and c.outcome_date for c in signed)
        for c in conns:
            events = c.events
            assert events[0].action is EventAction.CREATED and events[0].from_stage is None
            assert [e.at for e in events] == sorted(e.at for e in events)
            moves = [e for e in events if e.action is not EventAction.SHORTLISTED]
            for before, after in pairwise(moves):
                assert after.from_stage is before.to_stage
            assert moves[-1].to_stage is c.stage
            assert c.last_activity_at == max(e.at for e in events)
    finally:
        session.close()


def test_synthetic_data_is_served_and_written(synthetic_app):
    app, output = synthetic_app
    assert "indexes built" in output
    assert any(Path(app.config["INDEX_DIR"]).glob("*.manifest.json"))
    client = app.test_client()
    session = db.new_session(app)
    try:
        fund = session.scalar(select(Institution.id).where(Institution.kind == InstitutionKind.VC).limit(1))
        pid = session.scalar(select(Project.id).limit(1))
        from app.auth.accounts import load_demo_accounts

        load_demo_accounts(session)
    finally:
        session.close()
    r = client.get(f"/api/institutions/{fund}/matches?k=5")
    assert r.status_code == 200, r.get_json()
    assert len(r.get_json()["items"]) == 5
    assert client.get(f"/api/projects/{pid}/matches?kind=base&k=5").status_code == 200
    # a write encodes with the synthetic backend (a hash-seeded vector) and is ranked at once
    from app.auth.accounts import DEMO_ACCOUNTS

    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}["admin"]
    client.post("/login", data={"username": "admin", "password": password})
    new = {
        "name": "秸秆生物基可降解餐盒",
        "group": "企业组",
        "contest_id": 1,
        "industry": "新材料",
        "stage": "成长期",
        "description": "以农作物秸秆为原料制成可完全降解的餐盒。",
        "needs": ["融资"],
    }
    r = client.post("/api/projects", json=new)
    assert r.status_code == 201, r.get_json()
    session = db.new_session(app)
    try:
        rec = session.scalar(select(EmbeddingRecord).where(EmbeddingRecord.owner_id == r.get_json()["id"]))
        assert rec.model == "synthetic"
    finally:
        session.close()


def test_synthetic_refuses_a_database_with_demo_records(make_app):
    app = make_app(EMBEDDING_MODEL="synthetic")
    before = _count_projects(app)
    r = app.test_cli_runner().invoke(args=["demo", "synthetic", "--projects", "10", "--institutions", "3"])
    assert r.exit_code != 0
    assert "not synthetic" in r.output
    assert _count_projects(app) == before


def test_synthetic_refuses_another_model(tmp_path):
    app = create_app(app_config(tmp_path / "match.db", tmp_path / "index"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    r = runner.invoke(args=["demo", "synthetic", "--projects", "10", "--institutions", "3"])
    assert r.exit_code != 0 and "MATCH_EMBEDDING_MODEL=synthetic" in r.output
    assert _count_projects(app) == 0
    app.extensions["db"]["engine"].dispose()


def test_synthetic_backend_is_deterministic_unit_vectors():
    embedder = load_embedder("synthetic")
    assert isinstance(embedder, SyntheticEmbedder) and model_name("synthetic") == embedder.name == "synthetic"
    a = embedder.encode_documents(["智能温室", "智能温室", "储能电池"])
    assert a.shape == (3, 384) and a.dtype == np.float32
    assert np.array_equal(a[0], a[1]) and not np.allclose(a[0], a[2])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(embedder.encode_queries(["智能温室"])[0], a[0])


def _count_projects(app: Flask) -> int:
    session = db.new_session(app)
    try:
        return int(session.scalar(select(func.count(Project.id))) or 0)
    finally:
        session.close()


def test_synthetic_ids_leave_room_for_later_rows(migrated_db):
    """On SQLite and PostgreSQL, rows written after the bulk load get fresh ids (sequences moved on)."""
    from app.demo.synthetic import load_synthetic
    from models.catalog import catalogue_files, load_contests
    from models.pipeline import ConnectionEvent, Party

    engine, _url = migrated_db
    with Session(engine) as session:
        for path in catalogue_files():
            load_contests(session, path)
    counts = load_synthetic(engine, 60, 14, seed=5, echo=lambda _line: None)
    assert counts["projects"] == 60 and counts["connections"] > 0
    with Session(engine) as session:
        first = session.scalar(select(Project).order_by(Project.id).limit(1))
        inst = session.scalar(select(Institution).order_by(Institution.id).limit(1))
        project = Project(
            name="新项目",
            group=first.group,
            contest_id=first.contest_id,
            industry="新材料",
            description="新的项目。",
        )
        session.add(project)
        session.flush()
        conn = Connection(project_id=project.id, institution_id=inst.id, stage=ConnectionStage.RECOMMENDED)
        session.add(conn)
        session.flush()
        session.add(
            ConnectionEvent(
                connection_id=conn.id,
                action=EventAction.CREATED,
                to_stage=ConnectionStage.RECOMMENDED,
                actor_kind=Party.SYSTEM,
            )
        )
        session.commit()
        assert project.id == 61
        assert session.scalar(select(func.count(Connection.id))) == counts["connections"] + 1
