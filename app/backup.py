"""Back up and restore the whole state: every table of the database and the index manifests.

A backup is one zip file:

- ``manifest.json``: format, Alembic revision, schema fingerprint, creation time, source dialect,
  and per table its columns, row count and the SHA-256 of its data file; the SHA-256 of each
  index manifest;
- ``tables/<table>.jsonl``: one JSON object per row, in primary-key order (timestamps and dates in
  ISO 8601, binary columns such as the embedding vectors in base64, enums by member name);
- ``index/<name>.manifest.json``: the FAISS index manifests (model, dim, count, checksums). The
  index files themselves are not kept: a restore rebuilds them from the restored vectors.

A restore checks the whole file first (checksums, row counts, revision, fingerprint), refuses a
database that already holds data, and inserts everything in one transaction: any failure leaves
the target as it was. It works across SQLite and PostgreSQL in both directions.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum as PyEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Engine,
    Enum,
    LargeBinary,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from models import Base

__all__ = ["BackupError", "BackupSummary", "create_backup", "read_backup", "restore_backup"]

FORMAT = 1
MANIFEST = "manifest.json"
#: Tables a freshly initialised database may already fill (the shipped contest catalogue); a restore
#: replaces their rows. Every other table must be empty.
REPLACEABLE = frozenset({"contest"})
_INSERT_CHUNK = 500


class BackupError(Exception):
    """A backup cannot be written or restored; the message says why, for the operator."""


@dataclass
class BackupSummary:
    """What a backup holds (or what a restore wrote)."""

    revision: str
    rows: dict[str, int] = field(default_factory=dict)
    index_manifests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


# --- schema identity -----------------------------------------------------------------------------------


def tables() -> list[Table]:
    """Return every mapped table, parents before children (the insert order)."""
    return list(Base.metadata.sorted_tables)


def schema_fingerprint() -> str:
    """Return the SHA-256 of the mapped tables and their columns' names and types."""
    parts = []
    for table in sorted(tables(), key=lambda t: t.name):
        cols = ",".join(f"{c.name}:{type(c.type).__name__}" for c in table.columns)
        parts.append(f"{table.name}({cols})")
    return hashlib.sha256(";".join(parts).encode("utf-8")).hexdigest()


def alembic_revision(conn: Connection) -> str | None:
    """Return the database's Alembic revision, or None when it was never migrated."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    heads = sorted(conn.scalars(text("SELECT version_num FROM alembic_version")).all())
    return "+".join(heads) if heads else None


# --- values <-> JSON -----------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, PyEnum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _decoder(column: Any) -> Any:
    """Return a function turning a column's JSON value back into what the column type binds."""
    kind = column.type
    impl = getattr(kind, "impl", kind)
    if isinstance(kind, Enum) and kind.enum_class is not None:
        enum_cls = kind.enum_class
        return lambda v: None if v is None else enum_cls[v]
    if isinstance(impl, DateTime):

        def as_datetime(v: Any) -> Any:
            if v is None:
                return None
            at = datetime.fromisoformat(v)
            return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

        return as_datetime
    if isinstance(impl, Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(impl, LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v, validate=True)
    return lambda v: v


def _rows(conn: Connection, table: Table) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    for row in conn.execute(select(table).order_by(*order)):
        yield {c.name: _encode(row._mapping[c]) for c in table.columns}


# --- create --------------------------------------------------------------------------------------------


def _snapshot(conn: Connection) -> None:
    """Read every table from one consistent snapshot of the database."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")  # pysqlite starts no transaction for reads on its own
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def create_backup(engine: Engine, out: str | Path, index_dir: str | Path | None = None) -> BackupSummary:
    """Write the whole state to one zip file at out (replaced atomically); return what it holds.

    Raises:
        BackupError: the database is not migrated, or the file cannot be written.
    """
    out = Path(out)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema_fingerprint": schema_fingerprint(),
        "tables": {},
        "index": {},
    }
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with engine.connect() as conn, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            _snapshot(conn)
            revision = alembic_revision(conn)
            if revision is None:
                raise BackupError("the database has no Alembic revision: run `flask --app app init-db` first")
            manifest["alembic_revision"] = revision
            manifest["dialect"] = conn.dialect.name
            summary = BackupSummary(revision)
            for table in tables():
                digest, count = hashlib.sha256(), 0
                with zf.open(f"tables/{table.name}.jsonl", "w") as member:
                    for row in _rows(conn, table):
                        line = (json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
                        digest.update(line)
                        member.write(line)
                        count += 1
                manifest["tables"][table.name] = {
                    "columns": [c.name for c in table.columns],
                    "rows": count,
                    "sha256": digest.hexdigest(),
                }
                summary.rows[table.name] = count
            conn.rollback()
            for path in sorted(Path(index_dir).glob("*.manifest.json")) if index_dir else []:
                data = path.read_bytes()
                zf.writestr(f"index/{path.name}", data)
                manifest["index"][path.name] = hashlib.sha256(data).hexdigest()
                summary.index_manifests[path.name] = json.loads(data)
            zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return summary


# --- read and check ------------------------------------------------------------------------------------


@dataclass
class _Backup:
    manifest: dict[str, Any]
    data: dict[str, bytes]  # table name -> its JSON-lines file
    index: dict[str, bytes]  # manifest file name -> bytes


def read_backup(path: str | Path) -> _Backup:
    """Open a backup and check it whole: layout, checksums and row counts.

    Raises:
        BackupError: the file is missing, not a backup, or damaged.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                manifest = json.loads(zf.read(MANIFEST))
            except KeyError:
                raise BackupError(f"{path.name} is not a backup of this service (no {MANIFEST})") from None
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise BackupError(f"{path.name}: unknown backup format {manifest.get('format')!r}")
            data = {name: zf.read(f"tables/{name}.jsonl") for name in manifest.get("tables", {})}
            index = {name: zf.read(f"index/{name}") for name in manifest.get("index", {})}
    except FileNotFoundError:
        raise BackupError(f"no such file: {path}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        raise BackupError(f"{path.name} is damaged or not a backup: {exc}") from None
    for name, info in manifest["tables"].items():
        if hashlib.sha256(data[name]).hexdigest() != info.get("sha256"):
            raise BackupError(f"{path.name} is damaged: the data of table {name} does not match its checksum")
        if data[name].count(b"\n") != info.get("rows"):
            raise BackupError(f"{path.name} is damaged: table {name} does not hold {info.get('rows')} rows")
    for name, digest in manifest["index"].items():
        if hashlib.sha256(index[name]).hexdigest() != digest:
            raise BackupError(f"{path.name} is damaged: index/{name} does not match its checksum")
    return _Backup(manifest, data, index)


# --- restore -------------------------------------------------------------------------------------------


def _check_target(conn: Connection, backup: _Backup) -> None:
    revision = alembic_revision(conn)
    if revision is None:
        raise BackupError("the target database is not migrated: run `flask --app app init-db` first")
    wanted = backup.manifest.get("alembic_revision")
    if revision != wanted:
        raise BackupError(
            f"the backup is of schema revision {wanted}, the target database is at {revision}: "
            "restore it with the code version that wrote it, then upgrade"
        )
    if backup.manifest.get("schema_fingerprint") != schema_fingerprint():
        raise BackupError("the backup's tables and columns differ from this version's schema")
    names = {t.name for t in tables()}
    if set(backup.manifest["tables"]) != names:
        raise BackupError("the backup's list of tables differs from this version's schema")
    for table in tables():
        if table.name in REPLACEABLE:
            continue
        if conn.scalar(select(func.count()).select_from(table)):
            raise BackupError(
                f"the target database is not empty (table {table.name} has rows): "
                "restore into an empty, freshly migrated database"
            )


def _reset_sequences(conn: Connection) -> None:
    """Move PostgreSQL's id sequences past the restored ids (explicit ids do not advance them)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not pk[0].autoincrement or pk[0].type.python_type is not int:
            continue
        seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name})
        if seq:
            conn.execute(
                text(f"SELECT setval(:s, COALESCE(MAX({pk[0].name}), 0) + 1, false) FROM {table.name}"),
                {"s": seq},
            )


def restore_backup(engine: Engine, path: str | Path) -> BackupSummary:
    """Restore a backup into an empty database migrated to the same revision, in one transaction.

    Returns:
        What was written; its index_manifests are the saved manifests, to compare with the
        indexes the caller rebuilds from the restored vectors.

    Raises:
        BackupError: the file is damaged, of another schema revision, or the target holds data;
            the target is left as it was.
    """
    backup = read_backup(path)
    summary = BackupSummary(str(backup.manifest["alembic_revision"]))
    summary.index_manifests = {name: json.loads(raw) for name, raw in backup.index.items()}
    try:
        with engine.begin() as conn:
            _check_target(conn, backup)
            for name in REPLACEABLE:
                conn.execute(Base.metadata.tables[name].delete())
            for table in tables():
                decoders = {c.name: _decoder(c) for c in table.columns}
                batch: list[dict[str, Any]] = []
                count = 0
                for line in io.BytesIO(backup.data[table.name]):
                    raw = json.loads(line)
                    if set(raw) != set(decoders):
                        raise BackupError(f"table {table.name}: a row's columns differ from the schema")
                    batch.append({k: decoders[k](v) for k, v in raw.items()})
                    if len(batch) >= _INSERT_CHUNK:
                        conn.execute(table.insert(), batch)
                        count += len(batch)
                        batch = []
                if batch:
                    conn.execute(table.insert(), batch)
                    count += len(batch)
                summary.rows[table.name] = count
            _reset_sequences(conn)
    except BackupError:
        raise
    except (SQLAlchemyError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"restore failed, nothing was written: {exc.__class__.__name__}: {exc}") from None
    return summary


def dump_tables(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Return every table's rows in primary-key order, JSON-encoded as a backup holds them."""
    with engine.connect() as conn:
        return {table.name: list(_rows(conn, table)) for table in tables()}


def index_summary(manifests: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Return the parts of index manifests a rebuild must reproduce: model, dim, count, ids."""
    keys = ("model", "dim", "count", "ids_sha256")
    return {name: tuple(m.get(k) for k in keys) for name, m in manifests.items()}
