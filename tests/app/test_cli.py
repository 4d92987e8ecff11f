"""Commands: init-db, demo load, embed (only what changed), index rebuild from stored vectors."""

from __future__ import annotations

from sqlalchemy import select, update

from models import EmbeddingRecord, Project


def test_embed_encodes_only_changed_records(app, runner, session):
    r = runner.invoke(args=["embed"])
    assert r.exit_code == 0, r.output
    assert "encoded project 0, institution 0, need 0" in r.output
    p = session.scalar(select(Project).limit(1))
    session.execute(
        update(Project).where(Project.id == p.id).values(description=p.description + "新增一条描述。")
    )
    session.commit()
    r = runner.invoke(args=["embed"])
    assert "encoded project 1, institution 0, need 0" in r.output, r.output


def test_model_switch_reencodes_everything(app, runner, session):
    session.execute(
        update(EmbeddingRecord).where(EmbeddingRecord.owner_kind == "need").values(model="old-model")
    )
    session.commit()
    r = runner.invoke(args=["embed"])
    assert r.exit_code == 0, r.output
    n_needs = len(session.scalars(select(EmbeddingRecord).where(EmbeddingRecord.owner_kind == "need")).all())
    assert f"need {n_needs}" in r.output


def test_index_rebuild_and_reload(app, runner, client):
    before = client.get("/api/projects/5/matches?kind=fund&k=5").get_json()["items"]
    r = runner.invoke(args=["index", "rebuild"])
    assert r.exit_code == 0, r.output
    assert "rebuilt" in r.output
    app.extensions.pop("matching", None)  # a restart: load from disk
    after = client.get("/api/projects/5/matches?kind=fund&k=5").get_json()["items"]
    assert [i["id"] for i in before] == [i["id"] for i in after]


def test_demo_load_is_idempotent_and_init_db_repeatable(runner):
    assert runner.invoke(args=["init-db"]).exit_code == 0
    r = runner.invoke(args=["demo", "load"])
    assert r.exit_code == 0 and "skipped" in r.output


def test_ranker_retrains_from_connection_outcomes(app, runner, client):
    r = runner.invoke(args=["ranker", "train", "--source", "outcomes"])
    assert r.exit_code == 0, r.output
    assert "trained lambdarank ranker" in r.output and "positive" in r.output
    r = runner.invoke(args=["ranker", "train"])  # the default: the feedback log, position-weighted
    assert r.exit_code == 0, r.output
    assert "trained logistic ranker" in r.output and "positive" in r.output
    from app.services import ranker_path

    assert ranker_path(app).is_file()
    app.extensions.pop("matching", None)  # a restart picks the saved model up
    items = client.get("/api/projects/7/matches?kind=fund&k=5").get_json()["items"]
    assert len(items) == 5 and all(i["reasons"] for i in items)
