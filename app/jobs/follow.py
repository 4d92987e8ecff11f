"""Bring the vectors that workers encoded into this web process's index (RQ mode only).

A worker stores vectors in the database; each web process keeps its own FAISS index in memory. Every
few seconds (on the next request, in a background thread) a web process looks for encoding jobs that
finished since it last looked and adds their records' stored vectors to its index. Upserts are
idempotent, so a job seen twice does no harm.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from models import EmbeddingRecord
from models.base import utcnow
from models.jobs import Job, JobKind, JobStatus

log = logging.getLogger(__name__)

#: Seconds between two looks for finished encoding jobs.
FOLLOW_EVERY_S = 5.0
_CHUNK = 500


class _State:
    def __init__(self) -> None:
        self.since: datetime = utcnow()
        self.next_look = 0.0
        self.lock = threading.Lock()
        self.busy = False


def apply_finished(app: Flask, since: datetime) -> datetime:
    """Add to the built index the vectors of encoding jobs finished after `since`; return the new mark."""
    import numpy as np

    from app.services import index_encoded
    from embeddings import model_name

    service = app.extensions.get("matching")
    mark = since
    session = db.new_session(app)
    try:
        jobs = session.scalars(
            select(Job)
            .where(Job.kind == JobKind.ENCODE, Job.status == JobStatus.DONE, Job.finished_at > since)
            .order_by(Job.finished_at)
        ).all()
        model = model_name(app.config["EMBEDDING_MODEL"])
        for job in jobs:
            mark = max(mark, job.finished_at or mark)
            only = (job.params or {}).get("only")
            if service is None or not isinstance(only, dict):
                continue  # a full encoding is followed by a restart or an index rebuild
            for kind in ("project", "institution"):
                ids = [i for i in only.get(kind, []) if isinstance(i, int)]
                for start in range(0, len(ids), _CHUNK):
                    rows = session.execute(
                        select(EmbeddingRecord.owner_id, EmbeddingRecord.vector).where(
                            EmbeddingRecord.owner_kind == kind,
                            EmbeddingRecord.model == model,
                            EmbeddingRecord.owner_id.in_(ids[start : start + _CHUNK]),
                        )
                    ).all()
                    vectors = [np.frombuffer(v, dtype=np.float32).copy() for _, v in rows]
                    index_encoded(session, kind, [i for i, _ in rows], vectors)
    finally:
        session.close()
    return mark


def init_app(app: Flask) -> None:
    """Look for finished encoding jobs on requests, at most every FOLLOW_EVERY_S, when jobs run on RQ."""
    state = _State()

    def look() -> None:
        try:
            with app.app_context():
                state.since = apply_finished(app, state.since)
        except Exception:  # the next look tries again
            log.exception("could not apply the vectors of finished jobs")
        finally:
            state.busy = False

    @app.before_request
    def _follow_jobs() -> Any:
        if not app.config.get("REDIS_URL") or "matching" not in app.extensions:
            return None
        now = time.monotonic()
        with state.lock:
            if state.busy or now < state.next_look:
                return None
            state.busy, state.next_look = True, now + FOLLOW_EVERY_S
        threading.Thread(target=look, name="job-follow", daemon=True).start()
        return None
