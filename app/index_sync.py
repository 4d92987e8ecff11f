"""Keep the matching indexes of every worker in step with records changed in another worker.

Each gunicorn worker ranks with its own :class:`matching.service.MatchingService` in memory. A write
that changes what is ranked (a project or institution created, edited, imported, archived, restored
or deleted; an institution whose signed connections changed) adds a row to ``index_changes`` in the
same transaction (:func:`record_changes`). Before a matching read, a worker that has not looked for
``INDEX_SYNC_SECONDS`` (``MATCH_INDEX_SYNC_SECONDS``, default 1 s) reads the rows after the last id
it applied, one primary-key range query, and applies them through the service's upsert and remove
methods, reading each record's current state (profile, portfolio, stored vector) from the database.
Applying the current state, not the logged one, makes it idempotent and order-free: the worker that
made the change applies it at once and again from the log, harmlessly.

The bound: a matching read that starts more than ``INDEX_SYNC_SECONDS`` after a change was committed
ranks with it, in every worker (the check that would have missed it was made before the commit, so
it is due again). A ranking of a record this worker has not heard of yet checks at once.

PostgreSQL hands ids out at insert, not at commit, so a higher id can be visible before a lower one:
ids skipped in a batch are asked for again for ``GAP_SECONDS``, and a worker starting up re-applies
the rows of the last ``GAP_SECONDS``. Rows older than ``RETENTION_SECONDS`` are pruned; a worker that
has not looked for nearly that long reloads its service instead (see :func:`behind`).
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload

from app.extensions import db
from matching.service import MatchingService
from models import EmbeddingRecord, IndexChange, Institution, Project
from models.base import utcnow
from models.db import rowcount

log = logging.getLogger(__name__)

#: The record kinds the matching service ranks, and what happened to one.
RANKED = ("project", "institution")
UPSERT, REMOVE = "upsert", "remove"
#: How long a writing transaction may hold a change row before it commits and still be seen.
GAP_SECONDS = 120.0
#: Change rows are kept this long, then pruned (by any worker, at most every PRUNE_EVERY_SECONDS).
RETENTION_SECONDS = 24 * 3600.0
PRUNE_EVERY_SECONDS = 600.0
#: Change rows read per query.
BATCH = 500
#: More ids missing from one batch than this is not a transaction in flight (e.g. a restored backup).
MAX_GAPS = 1000

_EXTENSION = "index_sync"


def record_changes(session: Session, kind: str, record_ids: Iterable[int], op: str = UPSERT) -> None:
    """Add change rows for ranked records to the session's transaction (the caller commits)."""
    if kind not in RANKED or op not in (UPSERT, REMOVE):
        raise ValueError(f"not a ranked change: {kind} {op}")
    session.add_all(IndexChange(record_kind=kind, record_id=int(i), op=op) for i in record_ids)


def start_position(session: Session) -> int:
    """Return the id a worker starting now follows from: the rows of the last GAP_SECONDS are re-applied."""
    horizon = utcnow() - timedelta(seconds=GAP_SECONDS)
    older = session.scalar(select(func.max(IndexChange.id)).where(IndexChange.created_at < horizon))
    if older is not None:
        return int(older)
    first = session.scalar(select(func.min(IndexChange.id)))
    return int(first) - 1 if first is not None else 0


class IndexFollower:
    """One worker's position in the change log; applies what other workers changed (thread-safe).

    Args:
        position: the last change id already reflected in the service (see start_position).
        interval_s: at most one check per this many seconds (0: before every read).
    """

    def __init__(self, position: int, interval_s: float) -> None:
        self.last_id = position
        self.interval_s = max(0.0, float(interval_s))
        self._gaps: dict[int, float] = {}  # change id -> monotonic time it stops being waited for
        self._due = 0.0
        self._checked_at = time.time()  # wall clock: compared with created_at of pruned rows
        self._pruned_at = 0.0
        self._lock = threading.Lock()

    def behind(self) -> bool:
        """Return True when rows this worker may not have applied could be pruned already."""
        return time.time() - self._checked_at > RETENTION_SECONDS - 2 * GAP_SECONDS

    def catch_up(self, app: Flask, service: MatchingService, force: bool = False) -> int:
        """Apply the changes logged since the last check, when due (or forced); return how many records."""
        if not force and time.monotonic() < self._due:
            return 0
        with self._lock:
            started = time.monotonic()
            if not force and started < self._due:
                return 0
            checked_at = time.time()
            session = db.new_session(app)
            try:
                applied = 0
                while True:
                    rows = self._read(session)
                    applied += apply_changes(session, service, rows)
                    if len(rows) < BATCH:
                        break
                if started - self._pruned_at >= PRUNE_EVERY_SECONDS:
                    self._pruned_at = started
                    try:
                        prune(session)
                    except OperationalError:  # busy (another writer): the next due check prunes
                        log.warning("index change log not pruned this time (database busy)")
            finally:
                session.close()
            self._checked_at = checked_at
            self._due = started + self.interval_s
            return applied

    def _read(self, session: Session) -> Sequence[Any]:
        """Return the next rows after the position (and any awaited gap), and advance past them."""
        now = time.monotonic()
        self._gaps = {i: until for i, until in self._gaps.items() if until > now}
        where = IndexChange.id > self.last_id
        if self._gaps:
            where = or_(where, IndexChange.id.in_(sorted(self._gaps)))
        cols = (IndexChange.id, IndexChange.record_kind, IndexChange.record_id, IndexChange.op)
        rows = session.execute(select(*cols).where(where).order_by(IndexChange.id).limit(BATCH)).all()
        new = [r.id for r in rows if r.id > self.last_id]
        for r in rows:
            self._gaps.pop(r.id, None)
        if new:
            top = max(new)
            skipped = top - self.last_id - len(new)
            missing = set(range(self.last_id + 1, top)) - set(new) if skipped <= MAX_GAPS else set()
            for i in missing:
                self._gaps[i] = now + GAP_SECONDS
            self.last_id = top
        return rows


def apply_changes(session: Session, service: MatchingService, rows: Iterable[Any]) -> int:
    """Bring the service's copy of each changed record to its current database state; return how many."""
    from app.services import institution_profile, portfolios, project_profile

    ids: dict[str, set[int]] = {kind: set() for kind in RANKED}
    for r in rows:
        if r.record_kind in ids:
            ids[r.record_kind].add(int(r.record_id))
    model = service.embedder.name
    if ids["project"]:  # projects first: an institution's derived vector is its portfolio's mean
        wanted = sorted(ids["project"])
        live = {
            p.id: p
            for p in session.scalars(
                select(Project)
                .where(Project.id.in_(wanted), Project.archived_at.is_(None))
                .options(selectinload(Project.contest))
            )
        }
        vectors = _vectors(session, "project", list(live), model)
        for pid in wanted:
            if pid in live:
                service.upsert_project(project_profile(live[pid]), vectors.get(pid))
            else:
                service.remove_project(pid)
    if ids["institution"]:
        wanted = sorted(ids["institution"])
        live_insts = {
            i.id: i
            for i in session.scalars(
                select(Institution).where(Institution.id.in_(wanted), Institution.archived_at.is_(None))
            )
        }
        evidence = portfolios(session, list(live_insts))
        vectors = _vectors(session, "institution", list(live_insts), model)
        for iid in wanted:
            if iid in live_insts:
                service.upsert_institution(
                    institution_profile(live_insts[iid], evidence.get(iid, ())), vectors.get(iid)
                )
            else:
                service.remove_institution(iid)
    return len(ids["project"]) + len(ids["institution"])


def _vectors(session: Session, kind: str, owner_ids: Sequence[int], model: str) -> dict[int, Any]:
    """Return {owner id: stored vector} of the given records made by this model."""
    import numpy as np

    if not owner_ids:
        return {}
    stmt = select(EmbeddingRecord.owner_id, EmbeddingRecord.vector).where(
        EmbeddingRecord.owner_kind == kind,
        EmbeddingRecord.owner_id.in_(owner_ids),
        EmbeddingRecord.model == model,
    )
    return {oid: np.frombuffer(vec, dtype=np.float32).copy() for oid, vec in session.execute(stmt)}


def prune(session: Session) -> int:
    """Delete change rows older than RETENTION_SECONDS; return how many.

    It writes only when there is something to delete: a ranking made inside another transaction that
    holds SQLite's write lock (e.g. a saved search taking its first list) must not wait for that lock.
    """
    horizon = utcnow() - timedelta(seconds=RETENTION_SECONDS)
    old = session.scalar(select(IndexChange.id).where(IndexChange.created_at < horizon).limit(1))
    session.rollback()  # end the read: the delete below starts its own transaction
    if old is None:
        return 0
    try:
        gone = rowcount(session.execute(delete(IndexChange).where(IndexChange.created_at < horizon)))
        session.commit()
    except Exception:
        session.rollback()
        raise
    return int(gone or 0)


@contextmanager
def one_process_at_a_time(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file in the index folder (workers starting together encode in turn).

    The first worker encodes what changed and stores the vectors; the next finds nothing left to do
    instead of encoding the same records and colliding on their rows.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".encode.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the app's follower, kept beside its matching service --------------------------------------------


def follow(app: Flask, position: int) -> IndexFollower:
    """Start following the change log from position (call once the service reflects the state after it)."""
    follower = IndexFollower(position, float(app.config.get("INDEX_SYNC_SECONDS", 1.0)))
    app.extensions[_EXTENSION] = follower
    return follower


def position(app: Flask) -> int:
    """Return where a service built from the database now should follow the change log from."""
    session = db.new_session(app)
    try:
        return start_position(session)
    finally:
        session.close()


def behind(app: Flask) -> bool:
    """Return True when the app's service must be rebuilt: it has not followed the log for too long."""
    follower: IndexFollower | None = app.extensions.get(_EXTENSION)
    return follower is not None and follower.behind()


def catch_up(app: Flask, service: MatchingService, force: bool = False) -> int:
    """Apply what other workers changed, when a check is due (or forced); return how many records."""
    follower: IndexFollower | None = app.extensions.get(_EXTENSION)
    if follower is None:
        return 0
    return follower.catch_up(app, service, force)
