"""`flask backup create|restore`: the whole state round-trips on SQLite and PostgreSQL;
nothing is written on a refusal or a failure."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.backup import BackupError, create_backup, dump_tables, restore_backup
from app.cli import upgrade_database
from embeddings import VectorIndex
from models.db import make_engine
from tests.conftest import app_config


@pytest.fixture()
def demo_backup(app: Any, runner: Any, tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """A backup of the demo database written by the command, and the table dumps it was made from."""
    from app.auth.accounts import DEMO_ACCOUNTS

    client = app.test_client()
    client.get("/api/projects/1/matches?kind=fund&k=3")  # build the service: index manifests exist
    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}["admin"]
    client.post("/login", data={"username": "admin", "password": password})
    r = client.patch("/api/projects/3", json={"description": "备份测试：一项经过审计的修改。"})
    assert r.status_code == 200  # leaves a line in the audit log and a new vector
    out = tmp_path / "demo-backup.zip"
    result = runner.invoke(args=["backup", "create", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "backup written" in result.output
    return out, dump_tables(app.extensions["db"]["engine"])


def _fresh_app(folder: Path) -> Any:
    """An app on an empty database initialised like `flask init-db` (migrations and contest catalogue)."""
    folder.mkdir()
    fresh = create_app(app_config(folder / "match.db", folder / "index"))
    upgrade_database(fresh)
    return fresh


def test_backup_holds_every_table_with_checksums_and_the_index_manifests(demo_backup: Any) -> None:
    out, dumps = demo_backup
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["alembic_revision"]
        assert set(manifest["tables"]) == set(dumps)
        for name, info in manifest["tables"].items():
            data = zf.read(f"tables/{name}.jsonl")
            assert info["rows"] == len(dumps[name]) == data.count(b"\n")
            assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert set(manifest["index"]) == {"projects.manifest.json", "institutions.manifest.json"}
    for name in ("audit_log", "embedding", "project", "connection", "connection_event", "user_account"):
        assert manifest["tables"][name]["rows"] > 0, name


def test_restore_round_trips_the_whole_state_and_rebuilds_the_indexes(
    demo_backup: Any, app: Any, tmp_path: Path
) -> None:
    out, dumps = demo_backup
    fresh = _fresh_app(tmp_path / "fresh")
    try:
        result = fresh.test_cli_runner().invoke(args=["backup", "restore", str(out)])
        assert result.exit_code == 0, result.output
        assert "indexes rebuilt" in result.output and "differ" not in result.output
        assert dump_tables(fresh.extensions["db"]["engine"]) == dumps
        index_dir = Path(fresh.config["INDEX_DIR"])
        for name in ("projects", "institutions"):
            saved = json.loads((Path(app.config["INDEX_DIR"]) / f"{name}.manifest.json").read_text("utf-8"))
            rebuilt = json.loads((index_dir / f"{name}.manifest.json").read_text("utf-8"))
            for key in ("model", "dim", "count", "ids_sha256"):
                assert rebuilt[key] == saved[key], (name, key)
            assert VectorIndex.load(index_dir, name, saved["model"], saved["dim"]) is not None
        # The restored site ranks exactly like the original one.
        url = "/api/projects/1/matches?kind=fund&k=8"
        assert (
            fresh.test_client().get(url).get_json()["items"] == app.test_client().get(url).get_json()["items"]
        )
        # New rows get fresh ids after the restored ones.
        from models.accounts import AuditLog

        session = fresh.extensions["db"]["factory"]()
        try:
            session.add(AuditLog(action="test.after_restore", obj_kind="test", obj_id=0, detail={}))
            session.commit()
            assert session.scalar(select(AuditLog.id).where(AuditLog.action == "test.after_restore")) > max(
                r["id"] for r in dumps["audit_log"]
            )
        finally:
            session.close()
    finally:
        fresh.extensions["db"]["engine"].dispose()


def test_restore_into_sqlite_and_postgresql_and_back(
    demo_backup: Any, migrated_db: Any, migrate: Any, tmp_path: Path
) -> None:
    """SQLite -> the target dialect -> a backup made there -> SQLite: the same rows every time."""
    out, dumps = demo_backup
    engine, _url = migrated_db
    summary = restore_backup(engine, out)
    assert summary.rows == {name: len(rows) for name, rows in dumps.items()}
    assert dump_tables(engine) == dumps
    # The id sequences moved past the restored ids (PostgreSQL does not advance them on explicit ids).
    from sqlalchemy.orm import Session

    from models.accounts import AuditLog

    with Session(engine) as session:
        line = AuditLog(action="test.after_restore", obj_kind="test", obj_id=0, detail={})
        session.add(line)
        session.commit()
        assert line.id > max(r["id"] for r in dumps["audit_log"])
    dumps = {**dumps, "audit_log": dump_tables(engine)["audit_log"]}
    again = tmp_path / "second.zip"
    create_backup(engine, again)
    url = f"sqlite:///{tmp_path / 'back.db'}"
    back = make_engine(url)
    try:
        migrate(back, url)
        restore_backup(back, again)
        assert dump_tables(back) == dumps
    finally:
        back.dispose()


def _rewrite(src: Path, dst: Path, change: Any) -> None:
    """Copy a backup, letting change(name, bytes) -> bytes alter members (checksums left as they were)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, change(item.filename, zin.read(item.filename)))


def _resign(manifest: dict[str, Any], name: str, data: bytes) -> None:
    manifest["tables"][name]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["tables"][name]["rows"] = data.count(b"\n")


def test_restore_refuses_bad_files_and_leaves_the_target_as_it_was(demo_backup: Any, tmp_path: Path) -> None:
    out, dumps = demo_backup
    fresh = _fresh_app(tmp_path / "target")
    engine = fresh.extensions["db"]["engine"]
    before = dump_tables(engine)
    runner = fresh.test_cli_runner()

    def refused(path: Path, words: str) -> None:
        result = runner.invoke(args=["backup", "restore", str(path)])
        assert result.exit_code != 0
        assert words in result.output, result.output
        assert "Traceback" not in result.output
        assert dump_tables(engine) == before, "nothing written"

    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip file")
    refused(garbage, "damaged or not a backup")
    refused(tmp_path / "missing.zip", "no such file")

    tampered = tmp_path / "tampered.zip"
    _rewrite(
        out,
        tampered,
        lambda n, b: b.replace(b'"name": "', b'"name": "X', 1) if n == "tables/project.jsonl" else b,
    )
    refused(tampered, "does not match its checksum")

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    refused(truncated, "damaged or not a backup")

    def other_revision(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["alembic_revision"] = "0001_initial"
        return json.dumps(manifest).encode()

    old = tmp_path / "old.zip"
    _rewrite(out, old, other_revision)
    refused(old, "schema revision 0001_initial")

    # A file that checks out but fails half-way (a repeated primary key in the last tables): one
    # transaction, so the contests it replaced and the rows it inserted are all rolled back.
    def repeated_row(name: str, data: bytes) -> bytes:
        return data + data.splitlines(keepends=True)[0] if name == "tables/embedding.jsonl" else data

    with zipfile.ZipFile(out) as zin:
        manifest = json.loads(zin.read("manifest.json"))
        broken_data = repeated_row("tables/embedding.jsonl", zin.read("tables/embedding.jsonl"))
    _resign(manifest, "embedding", broken_data)
    broken = tmp_path / "broken.zip"
    _rewrite(
        out,
        broken,
        lambda n, b: json.dumps(manifest).encode() if n == "manifest.json" else repeated_row(n, b),
    )
    refused(broken, "restore failed, nothing was written")

    # Restoring twice is refused: the target is no longer empty.
    assert runner.invoke(args=["backup", "restore", str(out)]).exit_code == 0
    restored = dump_tables(engine)
    result = runner.invoke(args=["backup", "restore", str(out)])
    assert result.exit_code != 0 and "not empty" in result.output
    assert dump_tables(engine) == restored == dumps
    fresh.extensions["db"]["engine"].dispose()


def test_backup_of_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(BackupError, match="init-db"):
            create_backup(engine, tmp_path / "x.zip")
        assert not (tmp_path / "x.zip").exists()
    finally:
        engine.dispose()
