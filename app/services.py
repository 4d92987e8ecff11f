"""The one translator between ORM rows and the ranking core, and the record-changing operations.

Every write to a project, institution or need goes through a function here, so that the stored
vectors and the FAISS indexes stay in step with the database in the same place.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from flask import Flask, current_app, g, has_request_context
from numpy.typing import NDArray
from sqlalchemy import Text, cast, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app import index_sync
from app.access import audit, current_user, institution_record_text, is_secretariat, project_record_text
from app.alerts import projects_changed
from app.extensions import db
from app.schemas import InstitutionIn, NeedIn, ProjectIn, missing, validate
from embeddings import load_embedder, set_search_threads, text_hash
from embeddings.stores import VectorBackend, make_backend, parse_store_setting
from embeddings.text import need_text
from matching.service import MatchingService
from matching.types import Filters, InstitutionProfile, Match, NeedProfile, PortfolioItem, ProjectProfile
from models import (
    Award,
    Connection,
    ConnectionStage,
    Contest,
    ContestKind,
    EmbeddingRecord,
    Institution,
    InstitutionKind,
    Need,
    Project,
    ProjectGroup,
    Stage,
)
from models.base import utcnow

log = logging.getLogger(__name__)

#: Connection stages that count as evidence of what an institution backs, hosts or serves.
EVIDENCE_STAGES = (ConnectionStage.SIGNED,)

_build_lock = threading.Lock()


# --- translation: rows -> profiles and texts (the project's and institution's texts: app.access) -------


def need_record_text(n: Need) -> str:
    """Return the text embedded for a need."""
    return need_text(n.title, n.description, n.industries, n.stages, n.services)


def project_profile(p: Project) -> ProjectProfile:
    """Translate a project row into the ranking core's profile."""
    return ProjectProfile(
        id=p.id,
        name=p.name,
        text=project_record_text(p),
        industries=tuple(x for x in (p.industry,) if x),
        track=p.track,
        province=p.province,
        city=p.city,
        stage=p.stage.value if p.stage else None,
        amount_wan=p.amount_wan,
        round=p.funding_round.value if p.funding_round else None,
        award=p.award.value if p.award else None,
        group=p.group.value if p.group else None,
        contest_id=p.contest_id,
        contest_kind=p.contest.kind.value if p.contest else None,
        needs=tuple(p.needs or ()),
        date=p.created_at.date().isoformat() if p.created_at else None,
    )


def institution_profile(i: Institution, portfolio: Sequence[PortfolioItem] = ()) -> InstitutionProfile:
    """Translate an institution row (and its signed connections) into the ranking core's profile."""
    return InstitutionProfile(
        id=i.id,
        name=i.name,
        kind=i.kind.value,
        text=institution_record_text(i),
        industries=tuple(i.industries or ()),
        stages=tuple(i.stages or ()),
        province=i.province,
        city=i.city,
        ticket_min_wan=i.ticket_min_wan,
        ticket_max_wan=i.ticket_max_wan,
        services=tuple(i.services or ()),
        space_m2=i.space_m2,
        capacity=i.capacity,
        portfolio=tuple(portfolio),
        competitor_policy=i.competitor_policy or "avoid",
    )


def need_profile(n: Need) -> NeedProfile:
    """Translate a need row into the ranking core's profile."""
    return NeedProfile(
        id=n.id,
        institution_id=n.institution_id,
        text=need_record_text(n),
        industries=tuple(n.industries or ()),
        stages=tuple(n.stages or ()),
        services=tuple(n.services or ()),
        quota=n.quota,
    )


def portfolios(
    session: Session, institution_ids: Iterable[int] | None = None
) -> dict[int, list[PortfolioItem]]:
    """Return each institution's evidence: the projects of its signed connections."""
    stmt = (
        select(Connection)
        .where(Connection.stage.in_(EVIDENCE_STAGES))
        .options(selectinload(Connection.project))
    )
    if institution_ids is not None:
        stmt = stmt.where(Connection.institution_id.in_(list(institution_ids)))
    out: dict[int, list[PortfolioItem]] = {}
    for c in session.scalars(stmt):
        out.setdefault(c.institution_id, []).append(
            PortfolioItem(
                project_id=c.project_id,
                date=_evidence_date(c),
                round=c.project.funding_round.value if c.project.funding_round else None,
                industries=(c.project.industry,),
                outcome=_outcome_kind(c),
            )
        )
    return out


def _evidence_date(c: Connection) -> str | None:
    at = c.signed_at or c.updated_at
    return at.date().isoformat() if at else None


def _outcome_kind(c: Connection) -> str | None:
    side = c.institution.kind.side if c.institution else None
    return {"fund": "financing", "base": "landing", "platform": "service"}.get(side or "")


# --- embeddings: stored vectors keyed by model and text hash ---------------------------------------

_KINDS = ("project", "institution", "need")


def _rows_and_texts(session: Session, kind: str) -> list[tuple[int, str]]:
    if kind == "project":
        return [(p.id, project_record_text(p)) for p in session.scalars(select(Project))]
    if kind == "institution":
        return [(i.id, institution_record_text(i)) for i in session.scalars(select(Institution))]
    return [(n.id, need_record_text(n)) for n in session.scalars(select(Need))]


def store_vectors(session: Session, kind: str, items: Sequence[tuple[int, str]], embedder: Any) -> np.ndarray:
    """Encode the given (id, text) pairs in batches and upsert their vectors; return them (n, dim)."""
    if not items:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    vecs = embedder.encode_documents([t for _, t in items])
    upsert_vectors(
        session,
        kind,
        [
            (owner_id, embedder.name, text_hash(text), vec)
            for (owner_id, text), vec in zip(items, vecs, strict=True)
        ],
    )
    return vecs


def upsert_vectors(
    session: Session, kind: str, rows: Sequence[tuple[int, str, str, NDArray[np.floating]]]
) -> None:
    """Insert or replace the stored vectors of (owner id, model, text SHA-256, vector) rows.

    One INSERT ... ON CONFLICT DO UPDATE on the (owner_kind, owner_id) key, so a web request encoding a
    record on demand and a background job encoding the same record at the same moment both succeed (the
    later write wins) instead of one failing on the unique constraint. Objects of these rows already in
    the session are refreshed from the database afterwards.
    """
    if not rows:
        return
    values: list[dict[str, Any]] = [
        {
            "owner_kind": kind,
            "owner_id": int(owner_id),
            "model": model,
            "dim": int(np.asarray(vec).shape[-1]),
            "text_hash": digest,
            "vector": np.asarray(vec, dtype=np.float32).tobytes(),
            "updated_at": utcnow(),
        }
        for owner_id, model, digest, vec in rows
    ]
    dialect = session.get_bind().dialect.name
    if dialect not in (
        "postgresql",
        "sqlite",
    ):  # another database: the ORM path (no concurrent-writer guarantee)
        owners = [v["owner_id"] for v in values]
        stored = {
            r.owner_id: r
            for r in session.scalars(
                select(EmbeddingRecord).where(
                    EmbeddingRecord.owner_kind == kind, EmbeddingRecord.owner_id.in_(owners)
                )
            )
        }
        for v in values:
            rec = stored.get(v["owner_id"]) or EmbeddingRecord(owner_kind=kind, owner_id=v["owner_id"])
            rec.model, rec.dim, rec.text_hash, rec.vector = v["model"], v["dim"], v["text_hash"], v["vector"]
            session.add(rec)
        return
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(EmbeddingRecord)
    stmt = stmt.on_conflict_do_update(
        index_elements=["owner_kind", "owner_id"],
        set_={c: stmt.excluded[c] for c in ("model", "dim", "text_hash", "vector", "updated_at")},
    )
    session.flush()  # pending ORM writes first, in their order
    session.execute(stmt, values)
    session.scalars(
        select(EmbeddingRecord)
        .where(
            EmbeddingRecord.owner_kind == kind, EmbeddingRecord.owner_id.in_([v["owner_id"] for v in values])
        )
        .execution_options(populate_existing=True)
    ).all()


@dataclass
class SyncReport:
    encoded: dict[str, int]
    unchanged: dict[str, int]
    removed: dict[str, int]


def embedding_plan(
    session: Session, model: str, only: Mapping[str, Collection[int]] | None = None
) -> list[tuple[str, list[tuple[int, str]], dict[int, tuple[str, str]], list[tuple[int, str]]]]:
    """Return, per kind, (kind, rows, stored, todo): todo = the (id, text) pairs whose text or model changed.

    Args:
        model: the name the embedder records with its vectors (embeddings.model_name: no model loaded).
        only: {kind: ids} to plan only these records (kinds left out are skipped); None plans everything.
    """
    plans = []
    for kind in _KINDS:
        if only is not None and kind not in only:
            continue
        rows = _rows_and_texts(session, kind)
        if only is not None:
            wanted = set(only[kind])
            rows = [(i, t) for i, t in rows if i in wanted]
        stored = {
            r.owner_id: (r.model, r.text_hash)
            for r in session.scalars(select(EmbeddingRecord).where(EmbeddingRecord.owner_kind == kind))
        }
        todo = [(i, t) for i, t in rows if stored.get(i) != (model, text_hash(t))]
        todo.sort(key=lambda item: len(item[1]))  # similar lengths per batch: less padding
        plans.append((kind, rows, stored, todo))
    return plans


def sync_embeddings(
    session: Session,
    embedder: Any,
    batch_size: int = 64,
    progress: Any = None,
    on_start: Any = None,
    only: Mapping[str, Collection[int]] | None = None,
    on_batch: Any = None,
) -> SyncReport:
    """Encode every record whose text or model changed since its vector was stored; drop orphans.

    Each batch is committed with its vectors in one transaction, so a crash keeps whole batches and
    a later run encodes only what is still missing.

    Args:
        progress: called as progress(kind, n) after each batch of n records is stored.
        on_start: called once as on_start(total) with the number of records to encode, before any.
        only: {kind: ids} to encode only these records and keep every other vector (no orphan removal).
        on_batch: called as on_batch(kind, items, vectors) inside each batch's transaction, before its
            commit (a job counts its progress there, so vectors and progress commit together).
    """
    report = SyncReport({}, {}, {})
    plans = embedding_plan(session, embedder.name, only)
    if on_start:
        on_start(sum(len(todo) for *_, todo in plans))
    for kind, rows, stored, todo in plans:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            vecs = store_vectors(session, kind, chunk, embedder)
            if kind in index_sync.RANKED:  # every worker's index takes the new vectors (app.index_sync)
                index_sync.record_changes(session, kind, [owner_id for owner_id, _ in chunk])
            if on_batch:
                on_batch(kind, chunk, vecs)
            session.commit()
            if progress:
                progress(kind, len(chunk))
        alive = {i for i, _ in rows}
        orphans = [] if only is not None else [i for i in stored if i not in alive]
        if orphans:
            session.execute(
                delete(EmbeddingRecord).where(
                    EmbeddingRecord.owner_kind == kind, EmbeddingRecord.owner_id.in_(orphans)
                )
            )
            session.commit()
        report.encoded[kind] = len(todo)
        report.unchanged[kind] = len(rows) - len(todo)
        report.removed[kind] = len(orphans)
    return report


def _unembedded(session: Session, model: str) -> bool:
    """Return True when a project, institution or need has no stored vector made by this model."""
    for kind, table in (("project", Project), ("institution", Institution), ("need", Need)):
        has_vector = (
            select(EmbeddingRecord.id)
            .where(
                EmbeddingRecord.owner_kind == kind,
                EmbeddingRecord.owner_id == table.id,
                EmbeddingRecord.model == model,
            )
            .exists()
        )
        if session.scalar(select(table.id).where(~has_vector).limit(1)) is not None:
            return True
    return False


def stored_vectors(session: Session, kind: str, model: str) -> dict[int, np.ndarray]:
    """Return {owner id: vector} of the stored vectors of one kind made by this model."""
    out: dict[int, np.ndarray] = {}
    for r in session.scalars(
        select(EmbeddingRecord).where(EmbeddingRecord.owner_kind == kind, EmbeddingRecord.model == model)
    ):
        out[r.owner_id] = np.frombuffer(r.vector, dtype=np.float32).copy()
    return out


# --- the matching service kept in app.extensions ---------------------------------------------------


def index_dir(app: Flask) -> Path:
    """Return the folder of the persisted FAISS indexes and the learned ranker."""
    return Path(app.config.get("INDEX_DIR") or os.path.join(app.instance_path, "index"))


def vector_backend(app: Flask) -> VectorBackend:
    """Return where the app's dense vectors are searched (MATCH_VECTOR_STORE), one per app and process."""
    backend = app.extensions.get("vector_backend")
    if backend is None:
        setting = parse_store_setting(app.config.get("VECTOR_STORE"), app.instance_path)
        backend = app.extensions["vector_backend"] = make_backend(setting, index_dir(app))
    return backend


def build_matching(app: Flask, rebuild: bool = False, background: bool = False) -> MatchingService:
    """Build the matching service from the stored vectors (encoding what is missing first).

    Args:
        rebuild: ignore the saved index files and rebuild them now.
        background: when a saved index is missing, damaged or for another model, answer at once
            with lexical-only rankings and rebuild the indexes from the stored vectors in a
            background thread (the web app); otherwise rebuild before returning (commands).
    """
    # One OpenMP thread per search: with several request threads on 2 cores, FAISS' own threads only
    # make every single query wait (bench/bench_embeddings.py measures it).
    set_search_threads(1)
    embedder = load_embedder(app.config["EMBEDDING_MODEL"])
    ranker = _load_ranker(app)
    service = MatchingService(
        embedder, index_dir=index_dir(app), ranker=ranker, vector_backend=vector_backend(app)
    )
    session = db.new_session(app)
    try:
        with index_sync.one_process_at_a_time(index_dir(app)):  # workers starting together encode once
            # Every write stores its record's vector in its own transaction: a web worker compares the
            # texts' hashes (reading every record) only when a record lacks a vector of this model.
            if not background or _unembedded(session, embedder.name):
                sync_embeddings(session, embedder)
        projects = [project_profile(p) for p in _all_projects(session)]
        evidence = portfolios(session)
        institutions = [
            institution_profile(i, evidence.get(i.id, ()))
            for i in session.scalars(select(Institution).where(Institution.archived_at.is_(None)))
        ]
        vectors = (
            stored_vectors(session, "project", embedder.name),
            stored_vectors(session, "institution", embedder.name),
        )
    finally:
        session.close()
    if rebuild:
        service.rebuild(projects, institutions, *vectors)
    elif background:
        # INDEX_REBUILD_GATE (tests only): a threading.Event the rebuild waits for.
        gate = app.config.get("INDEX_REBUILD_GATE")
        service.load_or_rebuild_in_background(projects, institutions, *vectors, gate=gate)
    else:
        service.load(projects, institutions, *vectors)
    warm_s = float(app.config.get("PAIR_ROWS_WARM_SECONDS") or 0)
    if background and warm_s > 0 and not app.testing:
        service.start_warming(warm_s)
    return service


def ranker_path(app: Flask) -> Path:
    """Return where the learned ranker is kept."""
    return Path(app.config.get("RANKER_PATH") or index_dir(app) / "ranker.joblib")


def _load_ranker(app: Flask) -> Any:
    from matching.ranker import load_ranker

    try:
        return load_ranker(ranker_path(app))
    except Exception:  # a stale or foreign file must not stop the site: fall back to hand-set weights
        log.warning(
            "could not load the learned ranker at %s; using hand-set weights", ranker_path(app), exc_info=True
        )
        return None


def get_matching() -> MatchingService:
    """Return the app's matching service, building it on first use.

    A request that ranks records whether the service was lexical-only at that moment (in
    ``g.ranking_degraded``), so its page shows the notice and its JSON carries the flag.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    service = app.extensions.get("matching")
    if service is None or index_sync.behind(app):
        with _build_lock:
            service = app.extensions.get("matching")
            if service is None or index_sync.behind(app):
                # The change log position first: what commits meanwhile is applied again (app.index_sync).
                start = index_sync.position(app)
                old = app.extensions.get("matching")
                service = build_matching(app, background=True)
                app.extensions["matching"] = service
                if old is not None:
                    old.stop_warming()
                index_sync.follow(app, start)
    index_sync.catch_up(app, service)
    if has_request_context() and service.degraded:
        g.ranking_degraded = service.degraded
    return service


def _rank(call: Callable[[MatchingService], list[Match]]) -> list[Match]:
    """Run a ranking; when it names a record this worker has not heard of yet (created through another
    worker a moment ago), apply the change log at once and try again."""
    service = get_matching()
    try:
        return call(service)
    except KeyError:
        if not _catch_up_now(service):
            raise
        return call(service)


def _catch_up_now(service: MatchingService) -> int:
    """Apply the change log at once (a record this worker has not heard of); return how many records."""
    return index_sync.catch_up(current_app._get_current_object(), service, force=True)  # type: ignore[attr-defined]


def _all_projects(session: Session) -> Sequence[Project]:
    """Return the projects that are ranked: every one but the archived."""
    stmt = select(Project).where(Project.archived_at.is_(None)).options(selectinload(Project.contest))
    return session.scalars(stmt).all()


# --- writes that keep the index in step ------------------------------------------------------------


def _matching_if_built() -> MatchingService | None:
    return current_app.extensions.get("matching")


def _embed_one(session: Session, kind: str, owner_id: int, text: str) -> np.ndarray:
    """Return the stored vector of one record, encoding it only when its text or model changed."""
    embedder = load_embedder(current_app.config["EMBEDDING_MODEL"])
    rec = session.scalar(
        select(EmbeddingRecord).where(
            EmbeddingRecord.owner_kind == kind, EmbeddingRecord.owner_id == owner_id
        )
    )
    if rec is not None and rec.model == embedder.name and rec.text_hash == text_hash(text):
        return np.frombuffer(rec.vector, dtype=np.float32).copy()
    return store_vectors(session, kind, [(owner_id, text)], embedder)[0]


def _check_contest(session: Session, contest_id: int) -> Contest:
    contest = session.get(Contest, contest_id)
    if contest is None:
        raise missing("contest_id", "所属赛事：赛事不存在")
    return contest


def _snapshot(row: Any, fields: Iterable[str]) -> dict[str, Any] | None:
    return None if row is None else {f: getattr(row, f) for f in fields}


def _audit_change(kind: str, row: Any, before: dict[str, Any] | None, fields: Iterable[str]) -> None:
    """Write the audit line of a create or update: which fields changed (names only, never contacts)."""
    changed = [f for f in fields if before is None or before.get(f) != getattr(row, f)]
    label = getattr(row, "name", None) or getattr(row, "title", None)
    audit(f"{kind}.{'create' if before is None else 'update'}", kind, row.id, fields=changed, name=label)


@contextmanager
def _one_transaction(session: Session) -> Iterator[None]:
    """Commit what the block did to the session; roll it all back, and re-raise, when the block fails."""
    try:
        yield
        session.commit()
    except Exception:
        session.rollback()
        raise


def _write(session: Session, kind: str, row: Any, new: Any, values: Any, text: Any) -> tuple[Any, np.ndarray]:
    """Apply validated values to a row (or a new one), audit, store its vector; one transaction.

    Args:
        kind: "project", "institution" or "need" (audit and vector owner kind).
        row: the row to update, or None to create one with `new()`.
        values: the validated pydantic model.
        text: row -> the text embedded for it.
    Returns:
        The saved row and its vector.
    """
    dumped = values.model_dump()
    before = _snapshot(row, dumped)
    row = row or new()
    for key, value in dumped.items():
        setattr(row, key, value)
    with _one_transaction(session):
        session.add(row)
        session.flush()
        _audit_change(kind, row, before, dumped)
        vec = _embed_one(session, kind, row.id, text(row))
        if kind in index_sync.RANKED:
            index_sync.record_changes(session, kind, [row.id])
    return row, vec


def _validated(model: Any, data: Any) -> Any:
    """Return data when it is already validated, else validate the mapping (raising InputError)."""
    return data if isinstance(data, model) else validate(model, dict(data))


def save_project(
    session: Session, data: ProjectIn | Mapping[str, Any], project: Project | None = None
) -> Project:
    """Create or update a project from validated values (or a mapping, validated here), re-embed, re-index.

    Callers that authorise the write validate first and pass the same validated object here, so what
    the access rule checked is what is stored. All or nothing.
    """
    values = _validated(ProjectIn, data)
    _check_contest(session, values.contest_id)
    if project is not None:  # a form or API call that does not send the intake fields keeps them
        for name in INTAKE_FIELDS:
            if name not in values.model_fields_set:
                setattr(values, name, getattr(project, name))
    project, vec = _write(session, "project", project, Project, values, project_record_text)
    service = _matching_if_built()
    if service is not None:
        session.refresh(project)
        service.upsert_project(project_profile(project), vec)
    projects_changed()
    _flag_duplicates(session, project)
    return project


#: Project fields filled by organisers' imports (app.imports), kept when an edit does not send them.
INTAKE_FIELDS = ("ref", "credit_code", "team_lead", "assets_wan", "sme_industry")


def _flag_duplicates(session: Session, project: Project) -> None:
    """Flag suspected duplicates of a created or edited project (never refuses it; the secretariat decides)."""
    from app.intake.duplicates import flag_projects

    try:
        flag_projects(session, [project.id], load_embedder(current_app.config["EMBEDDING_MODEL"]).name)
    except Exception:  # the project is saved; a failed check is logged and `flask duplicates scan` redoes it
        session.rollback()
        log.exception("duplicate check of project %s failed", project.id)


#: What a delete did: "archived" (the record has history and is kept, hidden) or "deleted" (gone).
Removal = Literal["archived", "deleted"]


def hidden(row: Any) -> bool:
    """Return True when the current user may not see the row: archived, and not the secretariat."""
    return getattr(row, "archived_at", None) is not None and not is_secretariat(current_user())


def _has_history(session: Session, *where: Any) -> bool:
    """Return True when any connection matches: a record with connections is archived, never deleted."""
    return session.scalar(select(Connection.id).where(*where).limit(1)) is not None


def _archive(row: Any) -> None:
    row.archived_at = utcnow()
    user = current_user()
    row.archived_by_id = user.id if user is not None else None


def _drop_vectors(session: Session, kind: str, ids: Sequence[int]) -> None:
    if ids:
        owned = (EmbeddingRecord.owner_kind == kind) & EmbeddingRecord.owner_id.in_(ids)
        session.execute(delete(EmbeddingRecord).where(owned))


def _remove(
    session: Session, kind: str, row: Any, label: dict[str, Any], history: Any, *, ranked: bool
) -> Removal:
    """Archive a record with history (connections matching the `history` clause) or delete one without,
    with its stored vector; audited as <kind>.archive / <kind>.delete with `label`.

    ranked: the record is in the rankings (its removal is logged for the other workers' indexes).
    """
    rid = row.id

    def archive() -> None:
        _archive(row)
        audit(f"{kind}.archive", kind, rid, **label)

    def erase() -> None:
        audit(f"{kind}.delete", kind, rid, **label)
        session.delete(row)
        _drop_vectors(session, kind, [rid])

    indexed = (kind, rid) if ranked else None
    return _archive_or_delete(session, _has_history(session, history), archive, erase, indexed)


def _archive_or_delete(
    session: Session,
    history: bool,
    archive: Callable[[], None],
    erase: Callable[[], None],
    ranked: tuple[str, int] | None = None,
) -> Removal:
    """Archive (a record with history) or erase (one without), and commit; all or nothing.

    A connection made between the check and the delete makes the database refuse the delete (the
    connection's foreign key): the record is archived instead. ranked: (kind, id) of a ranked record,
    logged for the other workers' indexes in the same transaction.
    """
    attempts: tuple[Removal, ...] = ("archived",) if history else ("deleted", "archived")
    for outcome in attempts:
        try:
            (archive if outcome == "archived" else erase)()
            if ranked is not None:
                index_sync.record_changes(session, ranked[0], [ranked[1]], index_sync.REMOVE)
            session.commit()
            return outcome
        except IntegrityError:
            session.rollback()
            if outcome == "archived":
                raise
        except Exception:
            session.rollback()
            raise
    raise AssertionError("unreachable: the last attempt archives or raises")


def delete_project(session: Session, project: Project) -> Removal:
    """Archive a project with connections, or delete one without; either way drop it from the index.

    An archived project keeps its connections, their history and its stored vector (a restore needs
    no encoding); it is hidden from lists, search and rankings. Audited as project.archive or
    project.delete.
    """
    pid = project.id
    if project.archived_at is not None:
        return "archived"
    label = {"name": project.name, "contest_id": project.contest_id}
    outcome = _remove(session, "project", project, label, Connection.project_id == pid, ranked=True)
    service = _matching_if_built()
    if service is not None:
        service.remove_project(pid)
    projects_changed()
    return outcome


def _restore(session: Session, kind: str, row: Any, text: Any = None) -> np.ndarray | None:
    """Un-archive a row (audited as <kind>.restore) and commit; return its vector when it is embedded.

    Args:
        text: row -> its embedded text, for kinds that are ranked (projects, institutions).
    """
    row.archived_at = row.archived_by_id = None
    audit(f"{kind}.restore", kind, row.id, name=getattr(row, "name", None) or getattr(row, "title", None))
    with _one_transaction(session):
        vec = _embed_one(session, kind, row.id, text(row)) if text is not None else None
        if kind in index_sync.RANKED:
            index_sync.record_changes(session, kind, [row.id])
    return vec


def _index_institution(session: Session, inst: Institution, vec: np.ndarray | None) -> None:
    """Send an institution's profile, with its portfolio of signed connections, to the built index."""
    service = _matching_if_built()
    if service is not None:
        evidence = portfolios(session, [inst.id]).get(inst.id, ())
        service.upsert_institution(institution_profile(inst, evidence), vec)


def restore_project(session: Session, project: Project) -> None:
    """Bring an archived project back into lists and rankings (audited as project.restore)."""
    if project.archived_at is None:
        return
    vec = _restore(session, "project", project, project_record_text)
    service = _matching_if_built()
    if service is not None:
        service.upsert_project(project_profile(project), vec)
    projects_changed()


def save_institution(
    session: Session, data: InstitutionIn | Mapping[str, Any], inst: Institution | None = None
) -> Institution:
    """Create or update an institution from validated values (or a mapping), then re-embed and re-index it."""
    values = _validated(InstitutionIn, data)
    inst, vec = _write(session, "institution", inst, Institution, values, institution_record_text)
    _index_institution(session, inst, vec)
    return inst


def refresh_institution(session: Session, institution_id: int) -> None:
    """Re-send an institution's profile (e.g. after its portfolio of signed connections changed)."""
    service = _matching_if_built()
    inst = session.get(Institution, institution_id)
    if service is None or inst is None or inst.archived_at is not None:  # an archived one stays out
        return
    vec = _embed_one(session, "institution", inst.id, institution_record_text(inst))
    session.commit()
    _index_institution(session, inst, vec)


def delete_institution(session: Session, inst: Institution) -> Removal:
    """Archive an institution with connections (and its needs), or delete one without (with its needs).

    History counts through the institution's own connections and those made through its needs.
    Audited as institution.archive or institution.delete.
    """
    iid = inst.id
    if inst.archived_at is not None:
        return "archived"
    name = inst.name
    need_ids = [n.id for n in inst.needs]
    history = Connection.institution_id == iid
    if need_ids:
        history = history | Connection.need_id.in_(need_ids)

    def archive() -> None:
        live = [n for n in inst.needs if n.archived_at is None]
        _archive(inst)
        for need in live:
            _archive(need)
        audit("institution.archive", "institution", iid, name=name, needs=[n.id for n in live])

    def erase() -> None:
        audit("institution.delete", "institution", iid, name=name, needs=need_ids)
        session.delete(inst)  # its needs go with it (none has a connection)
        _drop_vectors(session, "institution", [iid])
        _drop_vectors(session, "need", need_ids)

    ranked = ("institution", iid)
    outcome = _archive_or_delete(session, _has_history(session, history), archive, erase, ranked)
    service = _matching_if_built()
    if service is not None:
        service.remove_institution(iid)
    return outcome


def restore_institution(session: Session, inst: Institution) -> None:
    """Bring an archived institution back into lists and rankings (audited); its needs stay archived."""
    if inst.archived_at is None:
        return
    _index_institution(session, inst, _restore(session, "institution", inst, institution_record_text))


def save_need(session: Session, data: NeedIn | Mapping[str, Any], need: Need | None = None) -> Need:
    """Create or update a need from validated values (or a mapping, validated here), and store its vector."""
    values = _validated(NeedIn, data)
    if session.get(Institution, values.institution_id) is None:
        raise missing("institution_id", "发布机构：机构不存在")
    saved = _write(session, "need", need, Need, values, need_record_text)[0]
    projects_changed()  # a posted need is watched like a saved search: take its list as the baseline soon
    return saved


def delete_need(session: Session, need: Need) -> Removal:
    """Archive a need that connections came through, or delete one without (audited either way)."""
    if need.archived_at is not None:
        return "archived"
    label = {"title": need.title, "institution_id": need.institution_id}
    return _remove(session, "need", need, label, Connection.need_id == need.id, ranked=False)


def restore_need(session: Session, need: Need) -> None:
    """Bring an archived need back into the lists (audited as need.restore)."""
    if need.archived_at is not None:
        _restore(session, "need", need)


def index_imported(
    session: Session, kind: str, rows: Sequence[Any], batch_size: int = 64, dispatch: bool = True
) -> int:
    """Make freshly imported projects or institutions searchable at once (lexically) and start their encoding.

    The vectors are encoded in batches by a background job (app.jobs: an RQ worker, or a thread of this
    process without Redis), which adds them to the index as they arrive and then flags suspected
    duplicate projects (app.intake.duplicates). Only texts whose (model, SHA-256) changed are encoded.
    Returns the job's id; dispatch=False records the job for the caller to run in the foreground.
    """
    from app.jobs import start_job
    from models.jobs import JobKind

    service = _matching_if_built()
    if service is not None:
        for row in rows:
            if kind == "project":
                service.upsert_project(project_profile(row), None)
            else:
                service.upsert_institution(institution_profile(row), None)
    if rows:  # the other workers' indexes take the new rows too (app.index_sync)
        index_sync.record_changes(session, kind, [r.id for r in rows])
        session.commit()
    if kind == "project" and rows:
        projects_changed()  # lexically at once; again when the vectors arrive (index_encoded)
    user = current_user()
    params = {
        "only": {kind: [r.id for r in rows]},
        "batch_size": batch_size,
        "flag_duplicates": kind == "project",
    }
    return start_job(JobKind.ENCODE, params, user_id=user.id if user is not None else None, dispatch=dispatch)


def index_encoded(session: Session, kind: str, ids: Sequence[int], vectors: Sequence[np.ndarray]) -> None:
    """Send freshly encoded records to this process's index, when it is built (in-process jobs)."""
    service = _matching_if_built()
    if service is None or kind == "need":
        return
    for owner_id, vec in zip(ids, vectors, strict=True):
        if kind == "project":
            project = session.get(Project, owner_id)
            if project is not None and project.archived_at is None:
                service.upsert_project(project_profile(project), vec)
        else:
            inst = session.get(Institution, owner_id)
            if inst is not None and inst.archived_at is None:
                _index_institution(session, inst, vec)
    if kind == "project" and ids:
        projects_changed()


# --- queries: filters and ranked matches ------------------------------------------------------------


class _Filter:
    def is_empty(self) -> bool:
        """True when no filter is set."""
        return all(v is None for v in self.__dict__.values())


@dataclass(frozen=True)
class ProjectFilter(_Filter):
    """Filters on projects, as a user sets them on a list or a match page."""

    contest_id: int | None = None
    contest_kind: ContestKind | None = None
    award: Award | None = None
    group: ProjectGroup | None = None
    industry: str | None = None
    province: str | None = None
    stage: Stage | None = None
    q: str | None = None


@dataclass(frozen=True)
class InstitutionFilter(_Filter):
    """Filters on institutions (side: fund, base or platform)."""

    kind: InstitutionKind | None = None
    side: str | None = None
    industry: str | None = None
    province: str | None = None
    q: str | None = None


def text_match(q: str, *columns: Any) -> Any:
    """Return the SQL condition "one of the columns contains q", q taken as plain text.

    The one LIKE search of the service (lists, the pipeline, accounts): autoescape makes a user's % and _
    text rather than wildcards and sets an explicit escape character (PostgreSQL would otherwise read a
    backslash in q as its own escape).
    """
    return or_(*(column.contains(q, autoescape=True) for column in columns))


def project_query(f: ProjectFilter, what: Any = Project) -> Any:
    """Return a select of projects (or of `what`, e.g. Project.id) narrowed by the filter."""
    stmt = select(what).where(Project.archived_at.is_(None))
    if f.contest_id is not None:
        stmt = stmt.where(Project.contest_id == f.contest_id)
    if f.contest_kind is not None:
        stmt = stmt.where(Project.contest_id.in_(select(Contest.id).where(Contest.kind == f.contest_kind)))
    if f.award is not None:
        stmt = stmt.where(Project.award == f.award)
    if f.group is not None:
        stmt = stmt.where(Project.group == f.group)
    if f.industry:
        stmt = stmt.where(Project.industry == f.industry)
    if f.province:
        stmt = stmt.where(Project.province == f.province)
    if f.stage is not None:
        stmt = stmt.where(Project.stage == f.stage)
    if f.q:
        stmt = stmt.where(text_match(f.q, Project.name, Project.description))
    return stmt


def institution_query(f: InstitutionFilter, what: Any = Institution) -> Any:
    """Return a select of institutions (or of `what`) narrowed by the filter."""
    stmt = select(what).where(Institution.archived_at.is_(None))
    if f.kind is not None:
        stmt = stmt.where(Institution.kind == f.kind)
    if f.side:
        stmt = stmt.where(Institution.kind.in_([k for k in InstitutionKind if k.side == f.side]))
    if f.province:
        stmt = stmt.where(Institution.province == f.province)
    if f.industry:
        # JSON list membership, portable across SQLite and PostgreSQL: match the quoted label as
        # json.dumps wrote it (\u escapes, which text_match's escape character keeps literal).
        stmt = stmt.where(text_match(json.dumps(f.industry), cast(Institution.industries, Text)))
    if f.q:
        stmt = stmt.where(text_match(f.q, Institution.name, Institution.description))
    return stmt


def _allowed(
    session: Session, ids_stmt: Callable[[], Any], empty: bool, declined: Any = None
) -> frozenset[int] | None:
    """Return the candidate ids a filter allows minus the declined ones, or None when nothing restricts.

    Args:
        ids_stmt: returns the select of the ids the filter allows (built only when something restricts).
    """
    refused = frozenset(session.scalars(declined)) if declined is not None else frozenset()
    if empty and not refused:
        return None
    return frozenset(session.scalars(ids_stmt())) - refused


def _declined(institution_id: int | None = None, project_id: int | None = None) -> Any:
    """Return a select of the other side's ids in refused (已拒绝) connections of one institution or project.

    A refused pair is not recommended again until the project asks again (which moves it out of 已拒绝).
    """
    if institution_id is not None:
        return select(Connection.project_id).where(
            Connection.institution_id == institution_id, Connection.stage == ConnectionStage.REFUSED
        )
    return select(Connection.institution_id).where(
        Connection.project_id == project_id, Connection.stage == ConnectionStage.REFUSED
    )


@dataclass(frozen=True)
class RankedRow:
    """A ranked match with its row loaded, in rank order."""

    row: Any
    match: Match


def _in_rank_order(
    session: Session, model: Any, matches: Sequence[Match], profiles: bool = False
) -> list[RankedRow]:
    """Return the matches with their rows, in rank order (those removed meanwhile left out).

    Args:
        profiles: take the ranking core's profiles the matches were scored on (ProjectProfile or
            InstitutionProfile, already in memory) instead of reading the ORM rows: for answers that
            show only what a profile holds (the API's ranked lists), so nothing is read twice.
    """
    if profiles:
        service = get_matching()
        look: Callable[[int], Any] = service.project if model is Project else service.institution
        out = []
        for m in matches:
            try:
                out.append(RankedRow(look(m.id), m))
            except KeyError:  # removed since it was ranked
                continue
        return out
    rows = {r.id: r for r in session.scalars(select(model).where(model.id.in_([m.id for m in matches])))}
    return [RankedRow(rows[m.id], m) for m in matches if m.id in rows]


def ranked_project(project_id: int) -> ProjectProfile | None:
    """Return the ranking core's profile of a project it ranks, or None (unknown, archived or deleted).

    A record created or changed in another worker is applied from the change log first when this
    worker has not heard of it (app.index_sync): what the database holds, within INDEX_SYNC_SECONDS.
    """
    return _ranked_profile(lambda service: service.project(project_id))


def ranked_institution(institution_id: int) -> InstitutionProfile | None:
    """Return the ranking core's profile of an institution it ranks, or None (as ranked_project)."""
    return _ranked_profile(lambda service: service.institution(institution_id))


def _ranked_profile(look: Callable[[MatchingService], Any]) -> Any:
    service = get_matching()
    try:
        return look(service)
    except KeyError:
        if not _catch_up_now(service):
            return None
    try:
        return look(service)
    except KeyError:
        return None


def matches_for_project(
    session: Session,
    project_id: int,
    side: str,
    k: int = 10,
    f: InstitutionFilter | None = None,
    public: bool = False,
    private: bool = False,
    own: bool = False,
    member_of: int | None = None,
    profiles: bool = False,
) -> list[RankedRow]:
    """Return the top-k institutions of one side for a project, rows in rank order.

    Args:
        public: rank on the project's public fields only (for visitors who are not logged in).
        private: the viewer may see every institution's pipeline (the secretariat): signed connections
            count as evidence and refused pairs are left out. Otherwise the ranking depends on no
            pipeline at all, so it cannot reveal one.
        own: the viewer is the project itself, which knows its own refusals: those are left out too.
        member_of: the viewer's institution, whose pipeline it may see: its row shows the 匹配度 of its
            own list (with its signed connections), so the pair reads the same on both pages.
        profiles: rows are the ranking core's InstitutionProfile, not ORM rows (see _in_rank_order).
    """
    f = f or InstitutionFilter()
    refused = _declined(project_id=project_id) if private or own else None
    allowed = _allowed(session, lambda: institution_query(f, Institution.id), f.is_empty(), refused)
    filters = Filters(allowed_ids=allowed, public_only=public, evidence=private)
    matches = _rank(lambda m: m.match_project(project_id, side, k=k, filters=filters))  # type: ignore[arg-type]
    if member_of is not None and not private:
        for j, m in enumerate(matches):
            if m.id == member_of:
                degree = get_matching().match_degree(project_id, member_of, evidence=True, public=public)
                if degree is not None:
                    matches[j] = replace(m, score=degree)
    return _in_rank_order(session, Institution, matches, profiles)


def _project_filters(
    session: Session, institution_id: int, f: ProjectFilter | None, public: bool, private: bool
) -> Filters:
    """Return the filters of a project ranking for an institution (or its need): the projects f selects,
    less those the institution refused when the viewer may see its pipeline (private), whose signed
    connections then count as evidence; public ranks on the projects' public fields only."""
    f = f or ProjectFilter()
    refused = _declined(institution_id=institution_id) if private else None
    allowed = _allowed(session, lambda: project_query(f, Project.id), f.is_empty(), refused)
    return Filters(allowed_ids=allowed, public_only=public, evidence=private)


def matches_for_institution(
    session: Session,
    institution_id: int,
    k: int = 10,
    f: ProjectFilter | None = None,
    public: bool = False,
    private: bool = False,
    profiles: bool = False,
) -> list[RankedRow]:
    """Return the top-k projects for an institution, rows in rank order.

    Args:
        public: rank on the projects' public fields only (for visitors who are not logged in).
        private: the viewer may see this institution's pipeline (its members, the secretariat): its
            signed connections count as evidence and the projects it refused are left out. Otherwise
            the ranking depends on no pipeline, so it cannot reveal one.
        profiles: rows are the ranking core's ProjectProfile, not ORM rows (see _in_rank_order).
    """
    filters = _project_filters(session, institution_id, f, public, private)
    matches = _rank(lambda m: m.match_institution(institution_id, k=k, filters=filters))
    return _in_rank_order(session, Project, matches, profiles)


def matches_for_need(
    session: Session,
    need: Need,
    k: int = 10,
    f: ProjectFilter | None = None,
    public: bool = False,
    private: bool = False,
) -> list[RankedRow]:
    """Return the top-k projects for a posted need, rows in rank order (`private` as for an institution)."""
    filters = _project_filters(session, need.institution_id, f, public, private)
    vec = _embed_one(session, "need", need.id, need_record_text(need))
    session.commit()
    matches = _rank(lambda m: m.match_need(need_profile(need), vec, k=k, filters=filters))
    return _in_rank_order(session, Project, matches)


def today() -> date:
    """Return today's date (one place, so tests and reports agree)."""
    return date.today()
