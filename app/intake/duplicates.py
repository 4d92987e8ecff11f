"""Suspected duplicate projects: found from the stored vectors and the texts, decided by the secretariat.

Candidates of a project are its nearest projects by stored embedding (any contest, any edition) and the
projects with the same credit code or core name; each candidate pair is judged by app.intake.similarity.
A pair is stored once (a < b). A dismissed pair is never flagged again; a confirmed one is reported per
contest. A suspected duplicate is flagged, never refused.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.intake.similarity import (
    Verdict,
    anchors,
    best_pairs,
    core_name,
    judge,
    overlap,
    project_text,
    shingles,
)
from models import DuplicateKind, DuplicatePair, DuplicateStatus, EmbeddingRecord, Project
from models.base import utcnow

log = logging.getLogger(__name__)

#: Nearest neighbours by embedding looked at per project.
NEIGHBOURS = 8
#: Query rows per block of the similarity matrix (memory: block x projects floats).
BLOCK = 512


@dataclass
class VectorTable:
    """The stored project vectors of one model as a matrix (n, dim), rows in `ids` order."""

    ids: np.ndarray
    matrix: np.ndarray

    @classmethod
    def load(cls, session: Session, model: str, only_live: bool = True) -> VectorTable:
        stmt = select(EmbeddingRecord.owner_id, EmbeddingRecord.vector).where(
            EmbeddingRecord.owner_kind == "project", EmbeddingRecord.model == model
        )
        if only_live:
            stmt = stmt.where(
                EmbeddingRecord.owner_id.in_(select(Project.id).where(Project.archived_at.is_(None)))
            )
        ids, vecs = [], []
        for owner_id, blob in session.execute(stmt):
            ids.append(owner_id)
            vecs.append(np.frombuffer(blob, dtype=np.float32))
        if not vecs:
            return cls(np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32))
        return cls(np.asarray(ids, dtype=np.int64), np.vstack(vecs))

    def neighbours(self, query_ids: Sequence[int], k: int = NEIGHBOURS) -> Iterable[tuple[int, int, float]]:
        """Yield (query id, other id, cosine) for the k nearest other projects of each query project."""
        if len(self.ids) < 2:
            return
        row_of = {int(i): r for r, i in enumerate(self.ids)}
        rows = [row_of[i] for i in query_ids if i in row_of]
        k = min(k, len(self.ids) - 1)
        for start in range(0, len(rows), BLOCK):
            block = rows[start : start + BLOCK]
            sims = self.matrix[block] @ self.matrix.T  # (block, n)
            sims[np.arange(len(block)), block] = -1.0  # not itself
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            for i, r in enumerate(block):
                for j in top[i]:
                    yield int(self.ids[r]), int(self.ids[j]), float(sims[i, j])


def _texts(session: Session, ids: Iterable[int]) -> dict[int, Fingerprint]:
    out: dict[int, Fingerprint] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 900):
        for pid, name, description, code in session.execute(
            select(Project.id, Project.name, Project.description, Project.credit_code).where(
                Project.id.in_(wanted[start : start + 900])
            )
        ):
            out[pid] = fingerprint(name, description, code)
    return out


def find_pairs(
    session: Session, query_ids: Sequence[int], model: str, table: VectorTable | None = None
) -> dict[tuple[int, int], Verdict]:
    """Return the flagged verdicts of the query projects against every other project."""
    table = table if table is not None else VectorTable.load(session, model)
    cosines: dict[tuple[int, int], float] = {}
    for a, b, cos in table.neighbours(query_ids):
        cosines[(min(a, b), max(a, b))] = cos
    # Same credit code or same core name: candidates even without vectors.
    texts = _texts(session, query_ids)
    codes = {t[2] for t in texts.values() if t[2]}
    names = {t[0] for t in texts.values() if t[0]}
    extra: set[tuple[int, int]] = set()
    if codes:
        for other, code in session.execute(
            select(Project.id, Project.credit_code).where(
                Project.credit_code.in_(codes), Project.archived_at.is_(None)
            )
        ):
            extra |= {(min(q, other), max(q, other)) for q, t in texts.items() if t[2] == code and q != other}
    if names:
        all_names = session.execute(select(Project.id, Project.name).where(Project.archived_at.is_(None)))
        by_core: dict[str, list[int]] = {}
        for pid, name in all_names:
            core = core_name(name)
            if core in names:
                by_core.setdefault(core, []).append(pid)
        for q, t in texts.items():
            extra |= {(min(q, o), max(q, o)) for o in by_core.get(t[0], []) if o != q}
    candidates = set(cosines) | extra
    texts.update(_texts(session, {i for pair in candidates for i in pair} - set(texts)))
    return judge_candidates(candidates, cosines, texts)


#: What a project is compared by: core name, shingles of its text, credit code, anchors of its description.
Fingerprint = tuple[str, frozenset[str], str | None, frozenset[str]]


def fingerprint(name: str, description: str, credit_code: str | None = None) -> Fingerprint:
    """Return what a project is compared by (core name, shingles, credit code, figures and acronyms)."""
    return core_name(name), shingles(project_text(name, description)), credit_code, anchors(description)


def judge_candidates(
    candidates: Iterable[tuple[int, int]],
    cosines: dict[tuple[int, int], float],
    texts: dict[int, Fingerprint],
) -> dict[tuple[int, int], Verdict]:
    """Return the flagged verdicts of candidate pairs (a < b) from their cosines and fingerprints."""
    verdicts = []
    for a, b in candidates:
        if a not in texts or b not in texts:
            continue
        (name_a, sh_a, code_a, an_a), (name_b, sh_b, code_b, an_b) = texts[a], texts[b]
        same_name = (bool(name_a) and name_a == name_b) or (bool(code_a) and code_a == code_b)
        shared = len(an_a & an_b)
        v = judge(cosines.get((a, b)), overlap(sh_a, sh_b), same_name, shared, overlap(an_a, an_b))
        if v.kind is not None:
            verdicts.append((a, b, v))
    return best_pairs(verdicts)


def record_pairs(session: Session, verdicts: dict[tuple[int, int], Verdict]) -> int:
    """Store new suspected pairs (open); refresh the score of open ones; never touch decided ones.

    Returns:
        The number of pairs newly flagged.
    """
    if not verdicts:
        return 0
    stored: dict[tuple[int, int], DuplicatePair] = {}
    keys = list(verdicts)
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        a_ids = {a for a, _b in chunk}
        for pair in session.scalars(select(DuplicatePair).where(DuplicatePair.project_a_id.in_(a_ids))):
            stored[(pair.project_a_id, pair.project_b_id)] = pair
    added = 0
    for (a, b), v in verdicts.items():
        if v.kind is None:  # not flagged: nothing to record
            continue
        row = stored.get((a, b))
        if row is None:
            session.add(
                DuplicatePair(
                    project_a_id=a,
                    project_b_id=b,
                    score=v.score,
                    embedding_score=v.embedding,
                    text_score=v.text,
                    kind=DuplicateKind(v.kind),
                    status=DuplicateStatus.OPEN,
                )
            )
            added += 1
        elif row.status is DuplicateStatus.OPEN:
            row.score, row.embedding_score, row.text_score = v.score, v.embedding, v.text
            row.kind = DuplicateKind(v.kind)
    return added


def flag_projects(session: Session, project_ids: Sequence[int], model: str) -> int:
    """Find and store the suspected duplicates of these projects (on import and registration); commit."""
    if not project_ids:
        return 0
    added = record_pairs(session, find_pairs(session, project_ids, model))
    session.commit()
    return added


def scan(
    session: Session, model: str, contest_id: int | None = None, progress: Callable[[int], None] | None = None
) -> int:
    """Check every live project (or one contest's) against all others; store new pairs; commit."""
    stmt = select(Project.id).where(Project.archived_at.is_(None)).order_by(Project.id)
    if contest_id is not None:
        stmt = stmt.where(Project.contest_id == contest_id)
    ids = list(session.scalars(stmt))
    table = VectorTable.load(session, model)
    added = 0
    for start in range(0, len(ids), BLOCK):
        chunk = ids[start : start + BLOCK]
        added += record_pairs(session, find_pairs(session, chunk, model, table))
        session.commit()
        if progress is not None:
            progress(len(chunk))
    return added


def pairs_query(contest_id: int | None = None, status: DuplicateStatus | None = None) -> Any:
    """Return a select of stored pairs, optionally touching one contest and in one status."""
    stmt = select(DuplicatePair).order_by(DuplicatePair.score.desc(), DuplicatePair.id)
    if status is not None:
        stmt = stmt.where(DuplicatePair.status == status)
    if contest_id is not None:
        in_contest = select(Project.id).where(Project.contest_id == contest_id)
        stmt = stmt.where(
            or_(DuplicatePair.project_a_id.in_(in_contest), DuplicatePair.project_b_id.in_(in_contest))
        )
    return stmt


def decide(
    session: Session, pair: DuplicatePair, status: DuplicateStatus, user_id: int | None, note: str | None
) -> None:
    """Record the secretariat's decision on a pair (the caller audits and commits)."""
    pair.status = status
    pair.decided_by_id = user_id
    pair.decided_at = utcnow()
    pair.note = note or None


def write_csv(session: Session, path: Any, contest_id: int | None = None) -> int:
    """Write project_a,project_b,score,kind,status of the stored pairs to a CSV file; return the count."""
    from app.sheets import safe_value

    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["project_a", "project_b", "score", "kind", "status"])
        for pair in session.scalars(pairs_query(contest_id)):
            writer.writerow(
                [
                    pair.project_a_id,
                    pair.project_b_id,
                    f"{pair.score:.4f}",
                    safe_value(pair.kind.value),
                    safe_value(pair.status.value),
                ]
            )
            n += 1
    return n


def flags_for(session: Session, project_id: int) -> list[DuplicatePair]:
    """Return the open and confirmed pairs of one project (what its page shows)."""
    return list(
        session.scalars(
            select(DuplicatePair)
            .where(
                or_(DuplicatePair.project_a_id == project_id, DuplicatePair.project_b_id == project_id),
                DuplicatePair.status != DuplicateStatus.DISMISSED,
            )
            .order_by(DuplicatePair.score.desc())
        )
    )
