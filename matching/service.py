"""The matching service: indexes, evidence and ranking behind one thread-safe object.

The web app builds one :class:`MatchingService` from stored profiles and vectors, keeps it in
``app.extensions["matching"]`` and calls it for every ranked list. Ranking is two-stage: a
candidate pool (every candidate when the set is small; otherwise the union of dense, BM25,
portfolio-neighbour, co-investment and activity retrieval, always restricted to the allowed ids
before scoring), then the shared feature vector and the ranker over that pool.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings import Embedder, VectorIndex
from matching.candidates import ANN_MIN_SIZE, AnnIndex, institution_pool, project_pool, restrict
from matching.evidence import (
    PortfolioMatrix,
    all_evidence,
    coinvest_counts,
    coinvest_partners,
    evidence_without,
    partner_counts,
    portfolio_matrix,
    portfolio_sims,
)
from matching.explain import PairContext, pair_reasons, search_reasons
from matching.explanation import pair_context, phrases
from matching.features import FEATURES, Evidence
from matching.lexical import LexicalIndex, Tokenizer
from matching.normalize import bm25_scaled, rescale_0_100, zscore_known, zscore_rows
from matching.ranker import HandWeightedRanker, Ranker
from matching.scoring import InstitutionTable, ProjectTable, Vocabs, block_features
from matching.types import (
    Filters,
    InstitutionProfile,
    Match,
    NeedProfile,
    ProjectProfile,
    Side,
    public_view,
)

__all__ = ["MatchingService"]

logger = logging.getLogger(__name__)

_PROJECTS = "projects"
_INSTITUTIONS = "institutions"
Vectors = Mapping[int, NDArray[np.float32]]
_PORTFOLIO_DOC_ITEMS = 20  # portfolio texts folded into an institution's BM25 document


def _unit(vector: NDArray[np.floating]) -> NDArray[np.float32]:
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class MatchingService:
    """Rank institutions for projects, projects for institutions and needs, and search both.

    Args:
        embedder: encodes free-text queries (stored records arrive with their vectors).
        index_dir: where FAISS indexes persist; None keeps them in memory only.
        ranker: a fitted ranker; None uses :class:`HandWeightedRanker`.
        pool_size: candidate sets up to this size are scored whole; larger ones are pooled.
        half_life_days: recency half-life of portfolio activity.
        exclude_known: leave out pairs already linked by a portfolio item (nothing to recommend).
        save_delay_s: debounce of index saves after edits; 0 saves within the edit call.
            A restart never depends on it: :meth:`load` checks saved indexes against the stored
            vectors and rebuilds on any difference.
        tokenizer: text -> tokens for BM25 and phrase matching; default ``embeddings.tokenize``.
        max_reasons: reasons kept per match.
        search_weights: (dense, lexical) weights of free-text search fusion.
    """

    def __init__(
        self,
        embedder: Embedder,
        index_dir: Path | str | None = None,
        ranker: Ranker | None = None,
        *,
        pool_size: int = 300,
        half_life_days: float = 365.0,
        exclude_known: bool = True,
        save_delay_s: float = 2.0,
        tokenizer: Tokenizer | None = None,
        max_reasons: int = 6,
        search_weights: tuple[float, float] = (1.0, 1.5),
        as_of: str | None = None,
        ann_min_size: int = ANN_MIN_SIZE,
    ) -> None:
        self.embedder = embedder
        self.ann_min_size = ann_min_size
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.ranker: Ranker = ranker if ranker is not None else HandWeightedRanker()
        self.pool_size = pool_size
        self.half_life_days = half_life_days
        self.exclude_known = exclude_known
        self.save_delay_s = save_delay_s
        self.max_reasons = max_reasons
        self.search_weights = search_weights
        self.as_of = as_of
        self._lock = threading.RLock()
        self._tokenizer = tokenizer
        self._reset()
        self._save_timer: threading.Timer | None = None
        self._dirty: set[str] = set()
        #: Which indexes the last load() took from disk (for logs and tests).
        self.loaded_from_disk: dict[str, bool] = {}
        #: None, or "lexical_only" while the dense indexes are rebuilt in the background; then
        #: rankings use BM25 and structured features only.
        self.degraded: str | None = None
        #: Why the saved indexes were not used (for logs), while degraded.
        self.degraded_reason: str | None = None
        self._generation = 0
        self._ready = threading.Event()
        self._ready.set()
        self._rebuild_thread: threading.Thread | None = None
        # While degraded: the vectors the rebuild works from, kept current by edits, and which
        # project ids were edited after the rebuild took its snapshot.
        self._pending: dict[str, dict[int, NDArray[np.float32]]] | None = None
        self._edited: set[int] | None = None

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        dim = int(self.embedder.dim)
        self._projects: dict[int, ProjectProfile] = {}
        self._institutions: dict[int, InstitutionProfile] = {}
        self._proj_index = VectorIndex(dim)
        self._inst_index = VectorIndex(dim)
        self._ann: AnnIndex | None = None  # built lazily over _proj_index (see _ann_index)
        self._proj_lex = LexicalIndex(self._tokenizer)
        self._inst_lex = LexicalIndex(self._tokenizer)
        self._own_vector: set[int] = set()  # institutions whose vector came from their own text
        self._portfolio: dict[int, tuple[int, ...]] = {}
        self._backers: dict[int, set[int]] = {}
        self._side_ids: dict[Side, set[int]] = {"fund": set(), "base": set(), "platform": set()}
        self._evidence: dict[int, Evidence] = {}
        self._evidence_dirty = True
        self._vocabs = Vocabs.new()
        self._ptab = ProjectTable(self._vocabs)
        self._itab: InstitutionTable | None = None
        self._port_matrix: PortfolioMatrix | None = None

    @property
    def ranker_name(self) -> str:
        """Return the class name of the ranker in use."""
        return type(self.ranker).__name__

    def set_ranker(self, ranker: Ranker | None) -> None:
        """Swap the ranker (None restores the hand-set fallback)."""
        with self._lock:
            self.ranker = ranker if ranker is not None else HandWeightedRanker()

    def project(self, project_id: int) -> ProjectProfile:
        """Return a loaded project profile (KeyError when unknown)."""
        return self._projects[project_id]

    def institution(self, institution_id: int) -> InstitutionProfile:
        """Return a loaded institution profile (KeyError when unknown)."""
        return self._institutions[institution_id]

    def project_ids(self) -> list[int]:
        """Return the loaded project ids."""
        with self._lock:
            return list(self._projects)

    def institution_ids(self, side: Side | None = None) -> list[int]:
        """Return the loaded institution ids, of one side when given."""
        with self._lock:
            if side is None:
                return list(self._institutions)
            return sorted(self._side_ids[side])

    def evidence(self, institution_id: int) -> Evidence:
        """Return what the institution's portfolio says about it."""
        with self._lock:
            self._refresh_evidence()
            return self._evidence.get(institution_id, Evidence())

    # ------------------------------------------------------------------ loading
    def load(
        self,
        projects: Iterable[ProjectProfile],
        institutions: Iterable[InstitutionProfile],
        project_vectors: Vectors,
        institution_vectors: Vectors,
    ) -> None:
        """Load profiles and vectors, reusing saved FAISS indexes when they match the vectors.

        Projects or institutions without a vector stay rankable on their structured features;
        an institution without its own vector is represented by the mean of its portfolio's.
        """
        self._load(projects, institutions, project_vectors, institution_vectors, use_disk=True)

    def load_or_rebuild_in_background(
        self,
        projects: Iterable[ProjectProfile],
        institutions: Iterable[InstitutionProfile],
        project_vectors: Vectors,
        institution_vectors: Vectors,
        *,
        gate: threading.Event | None = None,
    ) -> None:
        """Load like :meth:`load`, but rebuild untrusted indexes in a background thread.

        When a saved index is missing, damaged or for another model, the service answers at once
        with lexical-only rankings (:attr:`degraded` is ``"lexical_only"``) while a thread builds
        the indexes from the given stored vectors (no re-encoding), saves them and swaps them in.
        Edits made meanwhile are applied to the rebuilt indexes before the swap.

        Args:
            gate: the rebuild waits for this event first (tests use it to hold the degraded state).
        """
        self._load(
            projects,
            institutions,
            project_vectors,
            institution_vectors,
            use_disk=True,
            background=gate if gate is not None else True,
        )

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait for a background rebuild to finish; return True when the dense indexes are in use."""
        return self._ready.wait(timeout)

    def rebuild(
        self,
        projects: Iterable[ProjectProfile],
        institutions: Iterable[InstitutionProfile],
        project_vectors: Vectors,
        institution_vectors: Vectors,
    ) -> None:
        """Rebuild every index from the stored vectors, ignoring saved files, and save."""
        self._load(projects, institutions, project_vectors, institution_vectors, use_disk=False)

    def _load(
        self,
        projects: Iterable[ProjectProfile],
        institutions: Iterable[InstitutionProfile],
        project_vectors: Vectors,
        institution_vectors: Vectors,
        use_disk: bool,
        background: threading.Event | bool | None = None,
    ) -> None:
        """Load profiles and vectors; background (True or a gate event) defers untrusted rebuilds."""
        with self._lock:
            self._cancel_timer()
            self._generation += 1
            self._reset()
            self._set_ready(None)
            for p in projects:
                self._projects[p.id] = p
                self._ptab.upsert(p)
                self._proj_lex.upsert(p.id, self._project_doc(p))
            pids = sorted(i for i in project_vectors if i in self._projects)
            insts = list(institutions)
            for inst in insts:
                self._add_institution_links(inst)
            own = {
                inst.id: np.asarray(institution_vectors[inst.id], dtype=np.float32).ravel()
                for inst in insts
                if institution_vectors.get(inst.id) is not None
            }
            for inst in insts:
                self._inst_lex.upsert(inst.id, self._institution_doc(inst))
            self._evidence_dirty = True
            self._port_matrix = None
            if background is not None and background is not False and self.index_dir is not None:
                problem = self._adopt_saved(pids, project_vectors, own)
                if problem is None:
                    return
                self._start_rebuild(problem, {i: project_vectors[i] for i in pids}, own, background)
                return
            self._proj_index = self._index_from(_PROJECTS, pids, project_vectors, use_disk)
            self._own_vector = set(own)
            inst_vecs = self._institution_vectors(own)
            self._inst_index = self._index_from(_INSTITUTIONS, sorted(inst_vecs), inst_vecs, use_disk)
            self._ann_index()

    def _institution_vectors(self, own: Mapping[int, NDArray[np.float32]]) -> dict[int, NDArray[np.float32]]:
        """Return each institution's vector: its own, else its portfolio's mean (needs the project index)."""
        out: dict[int, NDArray[np.float32]] = {}
        for inst_id in self._institutions:
            vec = own.get(inst_id)
            if vec is not None:
                out[inst_id] = np.asarray(vec, dtype=np.float32).ravel()
            else:
                derived = self._derived_vector(inst_id)
                if derived is not None:
                    out[inst_id] = derived
        return out

    def _adopt_saved(
        self, pids: Sequence[int], project_vectors: Vectors, own: Mapping[int, NDArray[np.float32]]
    ) -> str | None:
        """Use the saved indexes when both hold exactly the stored vectors; else return why not."""
        if self.index_dir is None:
            return "no index folder"
        dim = int(self.embedder.dim)
        saved, problem = VectorIndex.open(self.index_dir, _PROJECTS, self.embedder.name, dim)
        if saved is None:
            return f"{_PROJECTS}: {problem}"
        if not self._same_content(saved, pids, self._matrix(pids, project_vectors)):
            return f"{_PROJECTS}: vectors differ from the database"
        self._proj_index = saved
        self._own_vector = set(own)
        inst_vecs = self._institution_vectors(own)
        ids = sorted(inst_vecs)
        saved_inst, problem = VectorIndex.open(self.index_dir, _INSTITUTIONS, self.embedder.name, dim)
        if saved_inst is None:
            problem = f"{_INSTITUTIONS}: {problem}"
        elif not self._same_content(saved_inst, ids, self._matrix(ids, inst_vecs)):
            problem = f"{_INSTITUTIONS}: vectors differ from the database"
        if problem is not None:
            self._proj_index = VectorIndex(dim)
            self._own_vector = set()
            return problem
        self._inst_index = saved_inst
        self.loaded_from_disk = {_PROJECTS: True, _INSTITUTIONS: True}
        return None

    def _matrix(self, ids: Sequence[int], vectors: Vectors) -> NDArray[np.float32]:
        if not ids:
            return np.empty((0, int(self.embedder.dim)), dtype=np.float32)
        return np.vstack([np.asarray(vectors[i], dtype=np.float32).reshape(1, -1) for i in ids])

    # ------------------------------------------------------------------ background rebuild
    def _set_ready(self, reason: str | None) -> None:
        """Enter (reason given) or leave the lexical-only state (call under the lock)."""
        self.degraded = "lexical_only" if reason is not None else None
        self.degraded_reason = reason
        if reason is None:
            self._pending = None
            self._edited = None
            self._ready.set()
        else:
            self._ready.clear()

    def _start_rebuild(
        self,
        reason: str,
        project_vectors: Mapping[int, NDArray[np.floating]],
        own: Mapping[int, NDArray[np.float32]],
        gate: threading.Event | bool,
    ) -> None:
        """Serve lexical-only and start the thread that rebuilds the dense indexes (under the lock)."""
        logger.warning("saved indexes not usable (%s): lexical-only ranking while they are rebuilt", reason)
        self._set_ready(reason)
        self._pending = {
            _PROJECTS: {i: np.asarray(v, dtype=np.float32).ravel() for i, v in project_vectors.items()},
            _INSTITUTIONS: dict(own),
        }
        self._edited = None
        self._own_vector = set(own)
        thread = threading.Thread(
            target=self._rebuild_worker,
            args=(self._generation, gate if isinstance(gate, threading.Event) else None),
            name="index-rebuild",
            daemon=True,
        )
        self._rebuild_thread = thread
        thread.start()

    def _rebuild_worker(self, generation: int, gate: threading.Event | None) -> None:
        """Build the project index outside the lock, then apply later edits and swap under it."""
        try:
            if gate is not None:
                gate.wait()
            with self._lock:
                if generation != self._generation or self._pending is None:
                    return
                snapshot = dict(self._pending[_PROJECTS])
                self._edited = set()
            ids = sorted(snapshot)
            dim = int(self.embedder.dim)
            proj_index = VectorIndex(dim)
            proj_index.add(np.asarray(ids, dtype=np.int64), self._matrix(ids, snapshot))
            with self._lock:
                if generation != self._generation or self._pending is None or self._edited is None:
                    return
                current = self._pending[_PROJECTS]
                for pid in sorted(self._edited):
                    vec = current.get(pid)
                    if vec is None:
                        proj_index.remove([pid])
                    else:
                        proj_index.add([pid], vec.reshape(1, -1))
                self._proj_index = proj_index
                self._own_vector = set(self._pending[_INSTITUTIONS])
                inst_vecs = self._institution_vectors(self._pending[_INSTITUTIONS])
                inst_ids = sorted(inst_vecs)
                self._inst_index = VectorIndex(dim)
                self._inst_index.add(np.asarray(inst_ids, dtype=np.int64), self._matrix(inst_ids, inst_vecs))
                self._evidence_dirty = True
                self._port_matrix = None
                self.loaded_from_disk = {_PROJECTS: False, _INSTITUTIONS: False}
                if self.index_dir is not None:
                    self._proj_index.save(self.index_dir, _PROJECTS, self.embedder.name)
                    self._inst_index.save(self.index_dir, _INSTITUTIONS, self.embedder.name)
                self._set_ready(None)
                logger.info("indexes rebuilt from %d stored project vectors: dense ranking back", len(ids))
        except Exception:  # the service keeps answering lexical-only; a restart tries again
            logger.exception("background index rebuild failed; ranking stays lexical-only")

    def _index_from(self, name: str, ids: Sequence[int], vectors: Vectors, use_disk: bool) -> VectorIndex:
        """Return the saved index when it holds exactly these vectors, else build and save one."""
        dim = int(self.embedder.dim)
        matrix = (
            np.vstack([np.asarray(vectors[i], dtype=np.float32).reshape(1, -1) for i in ids])
            if ids
            else np.empty((0, dim), dtype=np.float32)
        )
        if use_disk and self.index_dir is not None:
            saved = VectorIndex.load(self.index_dir, name, self.embedder.name, dim)
            if saved is not None and self._same_content(saved, ids, matrix):
                self.loaded_from_disk[name] = True
                return saved
        index = VectorIndex(dim)
        index.add(np.asarray(ids, dtype=np.int64), matrix)
        self.loaded_from_disk[name] = False
        if self.index_dir is not None:
            index.save(self.index_dir, name, self.embedder.name)
        return index

    @staticmethod
    def _same_content(index: VectorIndex, ids: Sequence[int], matrix: NDArray[np.float32]) -> bool:
        """Return True when the index holds exactly these ids with these vectors."""
        if len(index) != len(ids) or not np.array_equal(index.ids(), np.sort(np.asarray(ids))):
            return False
        if not ids:
            return True
        return bool(np.array_equal(index.vectors_for(ids), matrix))

    # ------------------------------------------------------------------ edits
    def upsert_project(self, profile: ProjectProfile, vector: NDArray[np.floating] | None) -> None:
        """Add or replace one project in the vector, lexical and profile stores."""
        with self._lock:
            self._projects[profile.id] = profile
            self._ptab.upsert(profile)
            self._proj_lex.upsert(profile.id, self._project_doc(profile))
            if self._pending is not None:
                self._pend(_PROJECTS, profile.id, vector)
            elif vector is not None:
                vec = np.asarray(vector, dtype=np.float32).reshape(1, -1)
                self._proj_index.add([profile.id], vec)
                if self._ann is not None and self._ann.exact is self._proj_index:
                    self._ann.upsert([profile.id], vec)
            else:
                self._proj_index.remove([profile.id])
                if self._ann is not None:
                    self._ann.remove([profile.id])
            self._project_changed(profile.id)
            self._schedule_save(_PROJECTS)

    def remove_project(self, project_id: int) -> None:
        """Remove one project everywhere; unknown ids are ignored."""
        with self._lock:
            self._projects.pop(project_id, None)
            self._ptab.remove(project_id)
            self._proj_lex.remove(project_id)
            if self._pending is not None:
                self._pend(_PROJECTS, project_id, None)
            self._proj_index.remove([project_id])
            if self._ann is not None:
                self._ann.remove([project_id])
            self._project_changed(project_id)
            self._schedule_save(_PROJECTS)

    def _pend(self, name: str, owner_id: int, vector: NDArray[np.floating] | None) -> None:
        """Record an edit for the background rebuild (call under the lock, while degraded)."""
        assert self._pending is not None
        if vector is None:
            self._pending[name].pop(owner_id, None)
        else:
            self._pending[name][owner_id] = np.asarray(vector, dtype=np.float32).ravel()
        if name == _PROJECTS and self._edited is not None:
            self._edited.add(owner_id)

    def _project_changed(self, project_id: int) -> None:
        """Refresh what depends on a project: its backers' evidence, documents and derived vectors."""
        backers = self._backers.get(project_id, set())
        if not backers:
            return
        self._evidence_dirty = True
        self._port_matrix = None
        for inst_id in backers:
            inst = self._institutions.get(inst_id)
            if inst is None:
                continue
            self._inst_lex.upsert(inst_id, self._institution_doc(inst))
            if inst_id not in self._own_vector:
                self._set_derived_vector(inst_id)

    def upsert_institution(self, profile: InstitutionProfile, vector: NDArray[np.floating] | None) -> None:
        """Add or replace one institution (profile, portfolio links, vector, BM25 document)."""
        with self._lock:
            self._drop_institution_links(profile.id)
            self._add_institution_links(profile)
            if self._pending is not None:
                self._pend(_INSTITUTIONS, profile.id, vector)
            elif vector is not None:
                self._own_vector.add(profile.id)
                self._inst_index.add([profile.id], np.asarray(vector, dtype=np.float32).reshape(1, -1))
            else:
                self._own_vector.discard(profile.id)
                self._set_derived_vector(profile.id)
            self._inst_lex.upsert(profile.id, self._institution_doc(profile))
            self._evidence_dirty = True
            self._port_matrix = None
            self._schedule_save(_INSTITUTIONS)

    def remove_institution(self, institution_id: int) -> None:
        """Remove one institution everywhere; unknown ids are ignored."""
        with self._lock:
            self._drop_institution_links(institution_id)
            self._own_vector.discard(institution_id)
            if self._pending is not None:
                self._pend(_INSTITUTIONS, institution_id, None)
            self._inst_index.remove([institution_id])
            self._inst_lex.remove(institution_id)
            self._evidence_dirty = True
            self._port_matrix = None
            self._schedule_save(_INSTITUTIONS)

    def _add_institution_links(self, inst: InstitutionProfile) -> None:
        self._institutions[inst.id] = inst
        self._side_ids[inst.side].add(inst.id)
        port = tuple(dict.fromkeys(item.project_id for item in inst.portfolio))
        self._portfolio[inst.id] = port
        for pid in port:
            self._backers.setdefault(pid, set()).add(inst.id)

    def _drop_institution_links(self, institution_id: int) -> None:
        old = self._institutions.pop(institution_id, None)
        if old is not None:
            self._side_ids[old.side].discard(institution_id)
        for pid in self._portfolio.pop(institution_id, ()):
            backers = self._backers.get(pid)
            if backers is not None:
                backers.discard(institution_id)
                if not backers:
                    del self._backers[pid]
        self._evidence.pop(institution_id, None)

    def _derived_vector(self, institution_id: int) -> NDArray[np.float32] | None:
        """Return the normalised mean vector of the institution's portfolio, if any has a vector."""
        pids = [p for p in self._portfolio.get(institution_id, ()) if p in self._proj_index]
        if not pids:
            return None
        return _unit(self._proj_index.vectors_for(pids).mean(axis=0))

    def _set_derived_vector(self, institution_id: int) -> None:
        if self._pending is not None:
            return  # the rebuild derives it from the rebuilt project index
        derived = self._derived_vector(institution_id)
        if derived is None:
            self._inst_index.remove([institution_id])
        else:
            self._inst_index.add([institution_id], derived.reshape(1, -1))
        self._schedule_save(_INSTITUTIONS)

    # ------------------------------------------------------------------ persistence
    def _schedule_save(self, name: str) -> None:
        if self.index_dir is None or self._pending is not None:
            return  # while degraded the live indexes are placeholders: the rebuild saves
        self._dirty.add(name)
        if self.save_delay_s <= 0:
            self.flush()
            return
        if self._save_timer is None:
            timer = threading.Timer(self.save_delay_s, self.flush)
            timer.daemon = True
            self._save_timer = timer
            timer.start()

    def _cancel_timer(self) -> None:
        if self._save_timer is not None:
            self._save_timer.cancel()
            self._save_timer = None

    def flush(self) -> None:
        """Write the indexes edited since the last save."""
        with self._lock:
            self._cancel_timer()
            if self.index_dir is None:
                self._dirty.clear()
                return
            if self._pending is not None:
                self._dirty.clear()
                return
            for name in sorted(self._dirty):
                index = self._proj_index if name == _PROJECTS else self._inst_index
                index.save(self.index_dir, name, self.embedder.name)
            self._dirty.clear()

    def close(self) -> None:
        """Flush pending saves and stop the save timer."""
        self.flush()

    # ------------------------------------------------------------------ documents
    @staticmethod
    def _project_doc(p: ProjectProfile) -> str:
        return " ".join([p.name, p.text, *p.industries, p.track or ""])

    def _institution_doc(self, inst: InstitutionProfile) -> str:
        """Return the BM25 document of an institution: its own text plus recent portfolio texts."""
        parts = [inst.name, inst.text, *inst.industries]
        items = sorted(inst.portfolio, key=lambda it: it.date or "", reverse=True)
        for item in items[:_PORTFOLIO_DOC_ITEMS]:
            proj = self._projects.get(item.project_id)
            if proj is not None:
                parts.append(proj.text)
            parts.extend(item.industries)
        return " ".join(parts)

    # ------------------------------------------------------------------ evidence
    def _refresh_evidence(self) -> None:
        if not self._evidence_dirty:
            return
        self._evidence, self._as_of_used = all_evidence(
            self._institutions, self._projects, self.as_of, self.half_life_days
        )
        insts = list(self._institutions.values())
        self._itab = InstitutionTable(self._vocabs, insts, [self._evidence[i.id] for i in insts])
        self._evidence_dirty = False

    def _evidence_for(self, institution_id: int, leave_out: int | None) -> Evidence:
        """Return an institution's evidence, recomputed without one project when it is in the portfolio."""
        ev = self._evidence.get(institution_id, Evidence())
        if leave_out is None or leave_out not in self._portfolio.get(institution_id, ()):
            return ev
        inst = self._institutions[institution_id]
        return evidence_without(inst, leave_out, self._projects, self._as_of_used, self.half_life_days)

    def _portfolio_matrix(self) -> PortfolioMatrix:
        if self._port_matrix is None:
            self._port_matrix = portfolio_matrix(self._portfolio, self._proj_index, int(self.embedder.dim))
        return self._port_matrix

    # ------------------------------------------------------------------ similarity helpers
    def _project_vector(self, project_id: int) -> NDArray[np.float32] | None:
        return self._proj_index.reconstruct(project_id) if project_id in self._proj_index else None

    def _institution_vector(self, institution_id: int) -> NDArray[np.float32] | None:
        if institution_id in self._inst_index:
            return self._inst_index.reconstruct(institution_id)
        return None

    def _dense_to_institutions(
        self, q: NDArray[np.float32] | None, inst_ids: Sequence[int]
    ) -> NDArray[np.float64]:
        """Return raw cosines of q to each institution's vector (NaN where either is missing).

        A FAISS search restricted to inst_ids by its ID selector: only candidates are scored.
        """
        out = np.full(len(inst_ids), np.nan)
        if q is None or not inst_ids:
            return out
        found = self._inst_index.search_one(q, len(inst_ids), allowed_ids=inst_ids)
        where = {i: j for j, i in enumerate(inst_ids)}
        for inst_id, score in found:
            out[where[inst_id]] = score
        return out

    def _portfolio_sims(
        self, q: NDArray[np.float32] | None, inst_ids: Sequence[int], leave_out: int | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """Return (max, mean, argmax project id) cosine of q to each institution's portfolio."""
        return portfolio_sims(self._portfolio_matrix(), q, inst_ids, leave_out)

    def _coinvest_for_project(self, project_id: int, inst_ids: Sequence[int]) -> NDArray[np.float64]:
        """Return log(1 + projects each institution co-backed with the project's current backers)."""
        out = np.zeros(len(inst_ids))
        counts = self._coinvest_counts(project_id)
        if counts:
            col = {i: j for j, i in enumerate(inst_ids)}
            for inst, n in counts.items():
                j = col.get(inst)
                if j is not None:
                    out[j] = n
        return np.log1p(out)

    def _coinvest_counts(self, project_id: int) -> Counter[int]:
        return coinvest_counts(project_id, self._backers, self._portfolio)

    def _coinvest_partners(self, project_id: int, institution_id: int) -> tuple[str, ...]:
        return coinvest_partners(
            project_id, institution_id, self._backers, self._portfolio, lambda i: self._institutions[i].name
        )

    def _partner_counts(self, institution_id: int) -> Counter[int]:
        return partner_counts(institution_id, self._backers, self._portfolio)

    # ------------------------------------------------------------------ candidates
    def _ann_index(self) -> AnnIndex:
        """Return the candidate ANN index over the current project index, (re)built when replaced."""
        if self._ann is None or self._ann.exact is not self._proj_index:
            ann = AnnIndex(self._proj_index, self.ann_min_size)
            ann.rebuild()
            self._ann = ann
        return self._ann

    # ------------------------------------------------------------------ ranking core
    @staticmethod
    def _rescaled(raw: NDArray[np.float64]) -> NDArray[np.float64]:
        """Z-score the known values over the candidates; unknown (NaN) become the mean (0)."""
        return zscore_known(raw)

    def _institution_table(self) -> InstitutionTable:
        """Return the encoded institutions of the current evidence (call under the lock)."""
        self._refresh_evidence()
        assert self._itab is not None
        return self._itab

    def _institution_sims(
        self, project_id: int, inst_ids: Sequence[int], leave_out: bool
    ) -> tuple[dict[str, NDArray[np.float64]], dict[str, Any]]:
        """Return per-query rescaled similarities of a project to institutions, and raw evidence."""
        proj = self._projects[project_id]
        q = self._project_vector(project_id)
        dense = self._dense_to_institutions(q, inst_ids)
        pmax, pmean, parg = self._portfolio_sims(q, inst_ids, project_id if leave_out else None)
        bm = self._inst_lex.score(self._project_doc(proj), inst_ids)
        bm_raw = np.array([bm.get(i, 0.0) for i in inst_ids])
        sims = {
            "dense": zscore_known(dense),
            "dense_port_max": zscore_known(pmax),
            "dense_port_mean": zscore_known(pmean),
            "bm25": bm25_scaled(bm_raw),
            "coinvest": self._coinvest_for_project(project_id, inst_ids),
        }
        return sims, {"dense_raw": dense, "closest": parg}

    def _institution_features(
        self,
        project_id: int,
        inst_ids: Sequence[int],
        rows: Sequence[int] | None = None,
        leave_out: bool = False,
        computed: tuple[dict[str, NDArray[np.float64]], dict[str, Any]] | None = None,
        public: bool = False,
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Return feature rows of one project against inst_ids[rows], rescaled over all inst_ids.

        One vectorised pass (:func:`matching.scoring.block_features`); with leave_out, the
        project's own backers are scored on their evidence without it.
        """
        itab = self._institution_table()
        sims, info = computed or self._institution_sims(project_id, inst_ids, leave_out)
        sel = np.arange(len(inst_ids)) if rows is None else np.asarray(rows, dtype=np.int64)
        sel_ids = [inst_ids[r] for r in sel.tolist()]
        if leave_out:
            own = [i for i in self._backers.get(project_id, ()) if i in itab.row_of]
            if own:
                insts = [self._institutions[i] for i in own]
                itab = itab.with_rows(insts, [self._evidence_for(i, project_id) for i in own])
        picked = {k: v[sel][None, :] for k, v in sims.items()}
        X = block_features(
            self._ptab, self._ptab.rows([project_id]), itab, itab.rows(sel_ids), picked, public=public
        )
        info = {
            "dense_raw": info["dense_raw"][sel],
            "closest": info["closest"][sel],
            "sims": sims,
        }
        return X, info

    def _finish(
        self,
        ids: Sequence[int],
        X: NDArray[np.float64],
        k: int,
        explain: Any,
        raw: NDArray[np.float64] | None = None,
        span: tuple[float, float] | None = None,
    ) -> list[Match]:
        """Rank pool rows by the ranker, scale scores to 0-100 and attach reasons to the top k.

        raw: the ranker's scores of X when already computed; span: the (lowest, highest) raw score
        of the query's candidates for the 0-100 scale (default: over these rows).
        """
        if len(ids) == 0 or k <= 0:
            return []
        if raw is None:
            raw = self.ranker.score(X)
        order = np.lexsort((np.asarray(ids), -raw))[:k]
        lo, hi = span if span is not None else (float(raw.min()), float(raw.max()))
        width = hi - lo
        points = 100.0 / width if width > 1e-12 else 0.0
        scores = rescale_0_100(raw[order], lo, hi)
        contrib = self.ranker.contributions(X[order]) * points if explain is not None else None
        out = []
        for rank, row in enumerate(order):
            feats = {name: float(X[row, j]) for j, name in enumerate(FEATURES)}
            reasons: tuple[Any, ...] = ()
            if contrib is not None:
                c = {name: float(contrib[rank, j]) for j, name in enumerate(FEATURES)}
                reasons = explain(int(row), feats, c)
            out.append(
                Match(id=int(ids[row]), score=round(float(scores[rank]), 2), reasons=reasons, features=feats)
            )
        return out

    def _phrases(self, text_a: str, text_b: str) -> tuple[str, str, tuple[str, ...]] | None:
        return phrases(text_a, text_b, self._proj_lex)

    def _pair_context(
        self,
        proj: ProjectProfile,
        inst: InstitutionProfile,
        ev: Evidence,
        feats: Mapping[str, float],
        contrib: Mapping[str, float],
        closest_case: int,
        dense_raw: float | None,
    ) -> PairContext:
        """Return the explanation context of one shown pair (see matching.explanation)."""
        return pair_context(
            proj,
            inst,
            ev,
            feats,
            contrib,
            closest_case=self._projects.get(closest_case) if closest_case >= 0 else None,
            dense_raw=dense_raw,
            project_doc=self._project_doc(proj),
            project_lex=self._proj_lex,
            institution_lex=self._inst_lex,
            coinvest_partners=lambda: self._coinvest_partners(proj.id, inst.id),
        )

    # ------------------------------------------------------------------ public ranking
    def match_project(
        self,
        project_id: int,
        side: Side,
        k: int = 10,
        filters: Filters | None = None,
        *,
        explain: bool = True,
    ) -> list[Match]:
        """Return the top-k institutions of one side (fund, base or platform) for a project."""
        with self._lock:
            if project_id not in self._projects:
                raise KeyError(f"unknown project {project_id}")
            cands = restrict(self._side_ids[side], filters)
            if self.exclude_known:
                cands -= self._backers.get(project_id, set())
            if not cands:
                return []
            self._refresh_evidence()
            ids = sorted(cands)
            computed = self._institution_sims(project_id, ids, leave_out=False)
            activity = np.array([len(self._portfolio.get(i, ())) for i in ids], dtype=np.float64)
            rows = institution_pool(ids, computed[0], activity, self.pool_size)
            pool = [ids[r] for r in rows]
            public = filters is not None and filters.public_only
            # Every candidate is scored (one vectorised pass): the 0-100 scale spans them all, so
            # a pair gets the same number here as in score_block; only the pool is ranked.
            X_all, info = self._institution_features(project_id, ids, computed=computed, public=public)
            raw_all = self.ranker.score(X_all)
            span = (float(raw_all.min()), float(raw_all.max()))
            X, raw = X_all[rows], raw_all[rows]
            proj = public_view(self._projects[project_id]) if public else self._projects[project_id]

            def reasons(row: int, feats: dict[str, float], contrib: dict[str, float]) -> tuple[Any, ...]:
                inst_id = pool[row]
                ctx = self._pair_context(
                    proj,
                    self._institutions[inst_id],
                    self._evidence.get(inst_id, Evidence()),
                    feats,
                    contrib,
                    int(info["closest"][rows[row]]),
                    float(info["dense_raw"][rows[row]]),
                )
                return pair_reasons(ctx, self.max_reasons)

            return self._finish(pool, X, k, reasons if explain else None, raw=raw, span=span)

    def rank_institutions(self, project_id: int, side: Side, k: int = 100) -> list[int]:
        """Return the ids of the top-k institutions for a project, without reasons (for evaluation)."""
        return [m.id for m in self.match_project(project_id, side, k, explain=False)]

    def features_for_project(
        self, project_id: int, institution_ids: Sequence[int], *, leave_out: bool = True
    ) -> NDArray[np.float64]:
        """Return feature rows of one project against given institutions, as ranking would see them.

        Similarities are rescaled over every institution of the same sides (the full candidate
        set); with leave_out, an existing link between the pair is ignored, so a recorded outcome
        cannot explain itself (used to train on past outcomes).
        """
        with self._lock:
            sides = {self._institutions[i].side for i in institution_ids}
            universe = sorted(set().union(*(self._side_ids[s] for s in sides))) if sides else []
            row = {i: j for j, i in enumerate(universe)}
            X, _ = self._institution_features(
                project_id, universe, [row[i] for i in institution_ids], leave_out=leave_out
            )
            return X

    def score_block(
        self,
        project_ids: Sequence[int],
        institution_ids: Sequence[int],
        *,
        public: bool = False,
        chunk_pairs: int = 65_536,
    ) -> NDArray[np.float64]:
        """Return the display scores (0-100) of every project x institution pair as one matrix.

        The result has shape ``(len(project_ids), len(institution_ids))`` in the order given. Row
        ``a`` is project ``project_ids[a]`` ranked against ``institution_ids`` as one query, with
        the same numbers as the one-query path: similarities are z-scored (BM25 scaled) over the
        row's candidates and 0-100 spans the row's lowest and highest raw ranker score, exactly as
        ``match_project(pid, side, filters=Filters(allowed_ids=frozenset(institution_ids)))``
        scores them when the institutions are all of that side (pass one side's institutions, or
        any filtered subset of them). A pair the project's portfolio links already is NaN when
        ``exclude_known`` is set (the one-query path never proposes it either).

        Work is done in chunks of about ``chunk_pairs`` pairs: vector products for the dense
        and portfolio similarities, one sparse product for BM25, one
        :func:`matching.scoring.block_features` pass and one ranker call per chunk.

        Raises:
            KeyError: an unknown project or institution id.
        """
        with self._lock:
            pids = [int(p) for p in project_ids]
            iids = [int(i) for i in institution_ids]
            for pid in pids:
                if pid not in self._projects:
                    raise KeyError(f"unknown project {pid}")
            itab = self._institution_table()
            irows = itab.rows(iids)
            n_i = len(iids)
            out = np.full((len(pids), n_i), np.nan)
            if not pids or not n_i:
                return out
            col_of = {i: j for j, i in enumerate(iids)}
            # Institution side, once per block: vectors, portfolio rows, BM25 term weights.
            has_iv = np.array([i in self._inst_index for i in iids], dtype=bool)
            iv = self._inst_index.vectors_for([i for i in iids if i in self._inst_index])
            pm = self._portfolio_matrix()
            bounds = np.array([pm.segments.get(i, (0, 0)) for i in iids], dtype=np.int64).reshape(-1, 2)
            lengths = bounds[:, 1] - bounds[:, 0]
            has_port = lengths > 0
            port_cols = (
                np.concatenate([np.arange(a, b) for a, b in bounds[has_port]])
                if has_port.any()
                else np.empty(0, dtype=np.int64)
            )
            port_vecs = pm.matrix[port_cols]
            port_starts = np.concatenate(([0], np.cumsum(lengths[has_port])[:-1])).astype(np.int64)
            terms, weights = self._inst_lex.weight_matrix(iids)
            weights_t = weights.T.tocsr()
            chunk = max(1, chunk_pairs // n_i)
            for start in range(0, len(pids), chunk):
                part = pids[start : start + chunk]
                out[start : start + len(part)] = self._score_chunk(
                    part,
                    iids,
                    irows,
                    itab,
                    col_of,
                    has_iv,
                    iv,
                    has_port,
                    port_vecs,
                    port_starts,
                    lengths[has_port],
                    terms,
                    weights_t,
                    public,
                )
            return out

    def _score_chunk(
        self,
        pids: Sequence[int],
        iids: Sequence[int],
        irows: NDArray[np.int64],
        itab: InstitutionTable,
        col_of: Mapping[int, int],
        has_iv: NDArray[np.bool_],
        iv: NDArray[np.float32],
        has_port: NDArray[np.bool_],
        port_vecs: NDArray[np.float32],
        port_starts: NDArray[np.int64],
        port_lengths: NDArray[np.int64],
        terms: Mapping[str, int],
        weights_t: Any,
        public: bool,
    ) -> NDArray[np.float64]:
        """Return the 0-100 scores of some projects against the block's institutions (see score_block)."""
        from scipy.sparse import csr_matrix

        n_p, n_i = len(pids), len(iids)
        # Candidates per row: every column but the project's own backers (exclude_known).
        mask = np.ones((n_p, n_i), dtype=bool)
        coinvest = np.zeros((n_p, n_i))
        q_rows: list[int] = []
        q_cols: list[int] = []
        for a, pid in enumerate(pids):
            backers = self._backers.get(pid, ())
            if self.exclude_known:
                for b in backers:
                    j = col_of.get(b)
                    if j is not None:
                        mask[a, j] = False
            if backers:
                for inst_id, count in self._coinvest_counts(pid).items():
                    j = col_of.get(inst_id)
                    if j is not None:
                        coinvest[a, j] = np.log1p(count)
            tokens = list(self._proj_lex.terms(pid))
            for term in self._inst_lex.query_terms(tokens):
                j = terms.get(term)
                if j is not None:
                    q_rows.append(a)
                    q_cols.append(j)
        queries = csr_matrix(
            (np.ones(len(q_rows)), (q_rows, q_cols)), shape=(n_p, weights_t.shape[0]), dtype=np.float64
        )
        bm = np.asarray((queries @ weights_t).todense()) if len(terms) else np.zeros((n_p, n_i))
        bm = np.where(mask, bm, 0.0)
        # Dense and portfolio similarities: one product each over the projects holding a vector.
        has_pv = np.array([p in self._proj_index for p in pids], dtype=bool)
        dense = np.full((n_p, n_i), np.nan)
        pmax = np.full((n_p, n_i), np.nan)
        pmean = np.full((n_p, n_i), np.nan)
        if has_pv.any():
            pv = self._proj_index.vectors_for([p for p, h in zip(pids, has_pv, strict=True) if h])
            if has_iv.any():
                dense[np.ix_(has_pv, has_iv)] = pv @ iv.T
            if port_vecs.shape[0]:
                sims = (pv @ port_vecs.T).astype(np.float64)
                seg_max = np.maximum.reduceat(sims, port_starts, axis=1)
                seg_mean = np.add.reduceat(sims, port_starts, axis=1) / port_lengths[None, :]
                pmax[np.ix_(has_pv, has_port)] = seg_max
                pmean[np.ix_(has_pv, has_port)] = seg_mean
        sims_z = {
            "dense": zscore_rows(dense, mask),
            "dense_port_max": zscore_rows(pmax, mask),
            "dense_port_mean": zscore_rows(pmean, mask),
            "bm25": bm25_scaled(bm, axis=1),
            "coinvest": np.where(mask, coinvest, 0.0),
        }
        X = block_features(self._ptab, self._ptab.rows(pids), itab, irows, sims_z, public=public)
        raw = self.ranker.score(X).reshape(n_p, n_i)
        lo = np.where(mask, raw, np.inf).min(axis=1, keepdims=True)
        hi = np.where(mask, raw, -np.inf).max(axis=1, keepdims=True)
        return np.where(mask, rescale_0_100(raw, lo, hi), np.nan)

    def _projects_for(
        self,
        inst: InstitutionProfile,
        query_vectors: NDArray[np.float32] | None,
        lexical_doc: str,
        text_for_phrases: str,
        k: int,
        filters: Filters | None,
        explain: bool,
    ) -> list[Match]:
        """Rank projects for an institution-like query (the institution itself or one of its needs)."""
        self._refresh_evidence()
        known = set(self._portfolio.get(inst.id, ())) if self.exclude_known else set()
        cands: set[int] | None = None  # None: every project but the known links (no set of all ids)
        if filters is not None and filters.allowed_ids is not None:
            cands = restrict(self._projects, filters) - known
        pool = project_pool(
            self._ann_index(),
            self._proj_lex,
            query_vectors,
            lexical_doc,
            cands,
            self._projects.keys(),
            known,
            self.pool_size,
        )
        if not pool:
            return []
        q = query_vectors[0] if query_vectors is not None and query_vectors.shape[0] else None
        dense = np.full(len(pool), np.nan)
        has_vec = [j for j, p in enumerate(pool) if p in self._proj_index]
        pmax, pmean = np.full(len(pool), np.nan), np.full(len(pool), np.nan)
        parg = np.full(len(pool), -1, dtype=np.int64)
        if has_vec:
            P = self._proj_index.vectors_for([pool[j] for j in has_vec])
            if q is not None:
                dense[has_vec] = P @ q
            port = [p for p in self._portfolio.get(inst.id, ()) if p in self._proj_index]
            if port:
                S = P @ self._proj_index.vectors_for(port).T
                best = S.argmax(axis=1)
                pmax[has_vec] = S.max(axis=1)
                pmean[has_vec] = S.mean(axis=1)
                parg[has_vec] = np.asarray(port, dtype=np.int64)[best]
        bm = self._proj_lex.score(lexical_doc, pool)
        bm_raw = np.array([bm.get(i, 0.0) for i in pool])
        partners = self._partner_counts(inst.id)
        co = np.log1p(
            np.array([sum(partners.get(b, 0) for b in self._backers.get(p, ())) for p in pool], dtype=float)
        )
        sims = {
            "dense": zscore_known(dense)[:, None],
            "dense_port_max": zscore_known(pmax)[:, None],
            "dense_port_mean": zscore_known(pmean)[:, None],
            "bm25": bm25_scaled(bm_raw)[:, None],
            "coinvest": co[:, None],
        }
        ev = self._evidence.get(inst.id, Evidence())
        public = filters is not None and filters.public_only
        one = InstitutionTable(self._vocabs, [inst], [ev])
        X = block_features(
            self._ptab, self._ptab.rows(pool), one, np.zeros(1, dtype=np.int64), sims, public=public
        )
        phrase_inst = replace(inst, text=text_for_phrases)

        def reasons(row: int, feats: dict[str, float], contrib: dict[str, float]) -> tuple[Any, ...]:
            proj = self._projects[pool[row]]
            ctx = self._pair_context(
                public_view(proj) if public else proj,
                phrase_inst,
                ev,
                feats,
                contrib,
                int(parg[row]),
                float(dense[row]),
            )
            return pair_reasons(ctx, self.max_reasons)

        return self._finish(pool, X, k, reasons if explain else None)

    def match_institution(
        self, institution_id: int, k: int = 10, filters: Filters | None = None, *, explain: bool = True
    ) -> list[Match]:
        """Return the top-k projects for a fund, base or platform."""
        with self._lock:
            inst = self._institutions.get(institution_id)
            if inst is None:
                raise KeyError(f"unknown institution {institution_id}")
            queries = []
            v = self._institution_vector(institution_id)
            if v is not None:
                queries.append(v)
            # The latest portfolio projects retrieve neighbours the institution's mean would miss.
            recent = sorted(inst.portfolio, key=lambda it: it.date or "", reverse=True)
            for item in recent[:4]:
                pv = self._project_vector(item.project_id)
                if pv is not None:
                    queries.append(pv)
            qm = np.vstack(queries).astype(np.float32) if queries else None
            return self._projects_for(inst, qm, self._institution_doc(inst), inst.text, k, filters, explain)

    def match_need(
        self,
        need: NeedProfile,
        vector: NDArray[np.floating] | None,
        k: int = 10,
        filters: Filters | None = None,
        *,
        explain: bool = True,
    ) -> list[Match]:
        """Return the top-k projects for a need posted by an institution."""
        with self._lock:
            owner = self._institutions.get(need.institution_id)
            if owner is None:
                raise KeyError(f"unknown institution {need.institution_id}")
            # The need narrows the owner's declared preferences; its portfolio evidence still counts.
            pseudo = replace(
                owner,
                text=need.text,
                industries=need.industries or owner.industries,
                stages=need.stages or owner.stages,
                services=need.services or owner.services,
            )
            qm = None if vector is None else np.asarray(vector, dtype=np.float32).reshape(1, -1)
            doc = " ".join([need.text, *pseudo.industries, *pseudo.services])
            return self._projects_for(pseudo, qm, doc, need.text, k, filters, explain)

    # ------------------------------------------------------------------ free-text search
    def _search(
        self,
        query: str,
        k: int,
        cands: set[int],
        index: VectorIndex,
        lex: LexicalIndex,
        text_of: Mapping[int, str],
    ) -> list[Match]:
        if not cands or not query.strip() or k <= 0:
            return []
        q = self.embedder.encode_queries([query])[0]
        n = max(self.pool_size, k)
        pool = {i for i, _ in index.search_one(q, n, allowed_ids=cands)}
        bm = lex.score(query, cands)
        pool.update(i for i, _ in sorted(bm.items(), key=lambda kv: -kv[1])[:n])
        ids = sorted(pool)
        if not ids:
            return []
        dense = np.full(len(ids), np.nan)
        has = [j for j, i in enumerate(ids) if i in index]
        if has:
            dense[has] = index.vectors_for([ids[j] for j in has]) @ q
        dz = zscore_known(dense)
        lexical = bm25_scaled(np.array([bm.get(i, 0.0) for i in ids]))
        w_dense, w_lex = self.search_weights
        raw = w_dense * dz + w_lex * lexical
        order = np.lexsort((np.asarray(ids), -raw))[:k]
        lo, hi = float(raw.min()), float(raw.max())
        span = hi - lo
        points = 100.0 / span if span > 1e-12 else 0.0
        q_terms = dict.fromkeys(lex.tokenize(query))
        out = []
        for row in order:
            rid = ids[row]
            shared = [t for t in q_terms if t in lex.terms(rid)]
            text = text_of.get(rid, "")
            phrases = self._phrases(query, text) if text else None
            reasons = search_reasons(
                float(dz[row]), w_dense * dz[row] * points, shared, w_lex * lexical[row] * points, phrases
            )
            score = float(rescale_0_100(raw[row], lo, hi))
            out.append(
                Match(
                    id=int(rid),
                    score=round(float(score), 2),
                    reasons=reasons,
                    features={"dense": float(dz[row]), "bm25": float(lexical[row])},
                )
            )
        return out

    def search_projects(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Match]:
        """Return projects for a free-text query (dense query vector and BM25, fused)."""
        with self._lock:
            cands = restrict(self._projects, filters)
            texts = {i: self._projects[i].text for i in cands}
            return self._search(query, k, cands, self._proj_index, self._proj_lex, texts)

    def search_institutions(
        self,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        side: Side | None = None,
    ) -> list[Match]:
        """Return institutions (of one side when given) for a free-text query."""
        with self._lock:
            pool = self._side_ids[side] if side is not None else self._institutions.keys()
            cands = restrict(pool, filters)
            texts = {i: self._institutions[i].text for i in cands}
            return self._search(query, k, cands, self._inst_index, self._inst_lex, texts)
