"""The demo's shipped vectors: a first run encodes nothing, a changed text or another model is encoded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app import create_app
from app.cli import upgrade_database
from app.demo.vectors import VECTORS, demo_keys, restore_shipped_vectors, write_shipped_vectors
from app.extensions import db
from embeddings import load_embedder, model_name
from models import EmbeddingRecord, Project
from tests.conftest import app_config


@pytest.fixture(scope="module")
def bare_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the demo loaded and no vector at all (as `flask demo load` before this change)."""
    from app.demo.load import load_demo

    folder = tmp_path_factory.mktemp("bare-demo")
    app = create_app(app_config(folder / "match.db", folder / "index"))
    upgrade_database(app)
    session = db.new_session(app)
    try:
        load_demo(session)
    finally:
        session.close()
    app.extensions["db"]["engine"].dispose()
    return folder / "match.db"


@pytest.fixture()
def fresh(bare_demo: Path, tmp_path: Path) -> Iterator[Flask]:
    shutil.copy(bare_demo, tmp_path / "match.db")
    application = create_app(app_config(tmp_path / "match.db", tmp_path / "index"))
    yield application
    application.extensions["db"]["engine"].dispose()


@pytest.fixture()
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every text the default embedder encodes as a document."""
    embedder = load_embedder("e5")
    texts: list[str] = []
    real = embedder.encode_documents

    def counting(batch: Any, batch_size: int = 32) -> Any:
        texts.extend(batch)
        return real(batch, batch_size)

    monkeypatch.setattr(embedder, "encode_documents", counting)
    return texts


def _count_vectors(app: Flask, model: str | None = None) -> int:
    session = db.new_session(app)
    try:
        stmt = select(func.count(EmbeddingRecord.id))
        if model:
            stmt = stmt.where(EmbeddingRecord.model == model)
        return int(session.scalar(stmt) or 0)
    finally:
        session.close()


def test_fresh_demo_load_stores_shipped_vectors_and_embed_encodes_nothing(tmp_path, encoded):
    app = create_app(app_config(tmp_path / "match.db", tmp_path / "index"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    r = runner.invoke(args=["demo", "load"])
    assert r.exit_code == 0, r.output
    # The file covers every demo record: regenerate it (see app/demo/vectors.py) when this fails.
    assert f"shipped vectors {len(demo_keys())}" in r.output
    r = runner.invoke(args=["embed"])
    assert r.exit_code == 0, r.output
    assert "encoded project 0, institution 0, need 0" in r.output
    assert encoded == []
    assert _count_vectors(app, model_name("e5")) == len(demo_keys())
    client = app.test_client()
    items = client.get("/api/projects/1/matches?kind=fund&k=5").get_json()["items"]
    assert len(items) == 5
    app.extensions["db"]["engine"].dispose()


def test_changed_demo_text_is_reencoded_alone(fresh, encoded):
    from app.services import sync_embeddings

    session = db.new_session(fresh)
    try:
        first = session.scalar(select(Project).order_by(Project.id).limit(1))
        session.execute(
            update(Project)
            .where(Project.id == first.id)
            .values(description=first.description + "新增一条描述。")
        )
        session.commit()
        restored = restore_shipped_vectors(session, model_name("e5"))
        assert restored == len(demo_keys()) - 1
        totals: list[int] = []
        batches: list[tuple[str, int]] = []
        report = sync_embeddings(
            session, load_embedder("e5"), progress=lambda k, n: batches.append((k, n)), on_start=totals.append
        )
    finally:
        session.close()
    assert report.encoded == {"project": 1, "institution": 0, "need": 0}
    assert totals == [1] and batches == [("project", 1)]  # what the progress bar of `flask embed` shows
    assert len(encoded) == 1 and "新增一条描述" in encoded[0]


def test_shipped_vectors_are_the_default_models_own(fresh):
    """A restored vector is the one the model gives for the record's current text."""
    from app.services import project_record_text

    session = db.new_session(fresh)
    try:
        restore_shipped_vectors(session, model_name("e5"))
        p = session.scalar(select(Project).order_by(Project.id).limit(1))
        rec = session.scalar(
            select(EmbeddingRecord).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id == p.id
            )
        )
        stored = np.frombuffer(rec.vector, dtype=np.float32)
        fresh_vec = load_embedder("e5").encode_documents([project_record_text(p)])[0]
    finally:
        session.close()
    assert float(stored @ fresh_vec) > 0.999


def test_another_model_ignores_the_shipped_vectors(fresh):
    session = db.new_session(fresh)
    try:
        assert restore_shipped_vectors(session, "st:some-other-model") == 0
        assert restore_shipped_vectors(session, "synthetic") == 0
    finally:
        session.close()
    assert _count_vectors(fresh) == 0


def test_vectors_command_round_trips(fresh, tmp_path):
    session = db.new_session(fresh)
    try:
        restore_shipped_vectors(session, model_name("e5"))
        written, missing = write_shipped_vectors(session, model_name("e5"), tmp_path / "v.npz")
    finally:
        session.close()
    assert (written, missing) == (len(demo_keys()), 0)
    with np.load(tmp_path / "v.npz") as mine, np.load(VECTORS) as shipped:
        assert str(mine["model"]) == str(shipped["model"]) == model_name("e5")
        order = np.lexsort((shipped["key"], shipped["kind"]))
        assert list(mine["key"]) == list(shipped["key"][order])
        assert np.array_equal(mine["vector"], shipped["vector"][order])
