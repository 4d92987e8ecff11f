"""The store: profiles, vector and BM25 indexes, their edits and their persistence.

:class:`MatchingStore` holds what the ranking reads (profiles, the project and institution FAISS
indexes, the candidate ANN index, the BM25 indexes, the encoded project table and the
portfolio links), keeps them in step on every edit, saves the FAISS and BM25 indexes (debounced)
and reloads or rebuilds them on start, in the background when the saved FAISS files cannot be
trusted. A saved BM25 index is memory-mapped and only the documents whose text differs from the
saved one are tokenized again (:meth:`matching.lexical.LexicalIndex.sync`).
Ranking lives in :class:`matching.service.MatchingService`, built on this store.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from embeddings import Embedder
from embeddings.stores import FaissBackend, VectorBackend, VectorStore
from matching.candidates import ANN_MIN_SIZE, AnnIndex
from matching.evidence import PortfolioMatrix
from matching.explain import clause_tokens, description_clauses
from matching.explanation import ClauseTokens
from matching.features import Evidence
from matching.lexical import LexicalIndex, Tokenizer
from matching.scoring import InstitutionTable, ProjectTable, Vocabs
from matching.types import InstitutionProfile, ProjectProfile, Side

__all__ = ["MatchingStore", "Vectors"]

logger = logging.getLogger("matching.service")

_PROJECTS = "projects"
_INSTITUTIONS = "institutions"
#: The saved BM25 indexes (files <name>.bm25 and its manifest <name>.bm25.json in the index folder;
#: not "*.manifest.json": backups copy those, the FAISS manifests, and BM25 is rebuilt from the texts).
_LEX_PROJECTS = "projects"
_LEX_INSTITUTIONS = "institutions"
_LEX_INSTITUTIONS_OWN = "institutions_own"
_CLAUSE_CACHE = 65_536  # records whose clause tokens are kept (those shown recently)
Vectors = Mapping[int, NDArray[np.float32]]
_PORTFOLIO_DOC_ITEMS = 20  # portfolio texts folded into an institution's BM25 document


class _LazyClauses(ClauseTokens):
    """Clause tokens computed when a record is first shown, then kept (the most recent records).

    Computing them for every record when it is indexed would tokenize every description at each
    start, which the saved BM25 index otherwise avoids; only the k records shown get reasons.
    """

    def __init__(self, tokenize: Callable[[str], list[str]]) -> None:
        super().__init__(tokenize)
        self._fn = tokenize
        self._kept: dict[int, tuple[str, tuple[tuple[str, ...], ...]]] = {}
        self._guard = threading.Lock()

    def put(self, record_id: int, text: str) -> None:
        """Forget what was computed from an older text (computed again when shown)."""
        self.remove(record_id)

    def remove(self, record_id: int) -> None:
        with self._guard:
            self._kept.pop(record_id, None)

    def get(self, record_id: int, text: str) -> tuple[tuple[str, ...], ...]:
        found = self._kept.get(record_id)
        if found is not None and (found[0] is text or found[0] == text):
            return found[1]
        row = tuple(
            tuple(sys.intern(t) for t in ts) for ts in clause_tokens(description_clauses(text), self._fn)
        )
        with self._guard:
            if len(self._kept) >= _CLAUSE_CACHE:
                self._kept.pop(next(iter(self._kept)), None)
            self._kept[record_id] = (text, row)
        return row

    def __len__(self) -> int:
        return len(self._kept)


def _lex_key(name: str) -> str:
    """Return the save-queue key of a BM25 index (FAISS indexes use their plain names)."""
    return f"bm25:{name}"


def _unit(vector: NDArray[np.floating]) -> NDArray[np.float32]:
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class MatchingStore:
    """Profiles and indexes behind one re-entrant lock, kept in step on every edit.

    Args:
        embedder: gives the vector dimension and the model name saved indexes are checked against.
        index_dir: where FAISS indexes persist; None keeps them in memory only.
        half_life_days: recency half-life of portfolio activity (read by the evidence).
        save_delay_s: debounce of index saves after edits; 0 saves within the edit call.
            A restart never depends on it: :meth:`load` checks saved indexes against the stored
            vectors and rebuilds on any difference.
        tokenizer: text -> tokens for BM25 and phrase matching; default ``embeddings.tokenize``.
        as_of: reference date of recency (None: the newest portfolio date).
        ann_min_size: project count from which candidate search uses an approximate copy (IVF or fp16 scan).
        vector_backend: where the dense vectors are searched (:mod:`embeddings.stores`); default the
            FAISS indexes in index_dir.
    """

    def __init__(
        self,
        embedder: Embedder,
        index_dir: Path | str | None = None,
        *,
        half_life_days: float = 365.0,
        save_delay_s: float = 2.0,
        tokenizer: Tokenizer | None = None,
        as_of: str | None = None,
        ann_min_size: int = ANN_MIN_SIZE,
        vector_backend: VectorBackend | None = None,
    ) -> None:
        self.embedder = embedder
        self.ann_min_size = ann_min_size
        self.index_dir = Path(index_dir) if index_dir is not None else None
        #: Where the dense vectors live and are searched (FAISS files in index_dir, or Milvus).
        self.vectors: VectorBackend = vector_backend or FaissBackend(self.index_dir)
        self.half_life_days = half_life_days
        self.save_delay_s = save_delay_s
        self.as_of = as_of
        self._lock = threading.RLock()
        self._tokenizer = tokenizer
        self._reset()
        self._save_timer: threading.Timer | None = None
        self._dirty: set[str] = set()
        #: Which indexes the last load() took from disk (for logs and tests).
        self.loaded_from_disk: dict[str, bool] = {}
        #: Per BM25 index: how the last load() got it ("saved", "saved+N" with N documents
        #: tokenized again, "built", or "built (why the saved one was not used)"), and the seconds.
        self.lexical_loaded: dict[str, str] = {}
        self.lexical_seconds: dict[str, float] = {}
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
        self._proj_index: VectorStore = self.vectors.empty(_PROJECTS, dim)
        self._inst_index: VectorStore = self.vectors.empty(_INSTITUTIONS, dim)
        self._ann: AnnIndex | None = None  # built lazily over _proj_index (see _ann_index)
        self._proj_lex = LexicalIndex(self._tokenizer)
        self._inst_lex = LexicalIndex(self._tokenizer)
        self._inst_lex_own = LexicalIndex(self._tokenizer)  # own texts only: rankings without evidence
        # Clause tokens of every description, for the reasons of shown pairs (no tokenizing then).
        self._proj_clauses: ClauseTokens = _LazyClauses(lambda text: self._proj_lex.tokenize(text))
        self._inst_clauses: ClauseTokens = _LazyClauses(lambda text: self._proj_lex.tokenize(text))
        self._own_vector: set[int] = set()  # institutions whose vector came from their own text
        self._portfolio: dict[int, tuple[int, ...]] = {}
        self._n_links = 0  # portfolio links over all institutions (part of the ranking state's key)
        self._backers: dict[int, set[int]] = {}
        self._side_ids: dict[Side, set[int]] = {"fund": set(), "base": set(), "platform": set()}
        self._evidence: dict[int, Evidence] = {}
        self._evidence_dirty = True
        self._vocabs = Vocabs.new()
        self._ptab = ProjectTable(self._vocabs)
        self._itab: InstitutionTable | None = None
        self._itab_plain: InstitutionTable | None = None  # the same, with empty evidence
        self._port_matrix: PortfolioMatrix | None = None

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

    # ------------------------------------------------------------------ loading
    def load(
        self,
        projects: Iterable[ProjectProfile],
        institutions: Iterable[InstitutionProfile],
        project_vectors: Vectors,
        institution_vectors: Vectors,
        *,
        rebuild: bool = False,
    ) -> None:
        """Load profiles and vectors, reusing saved FAISS indexes when they match the vectors.

        Projects or institutions without a vector stay rankable on their structured features;
        an institution without its own vector is represented by the mean of its portfolio's.
        rebuild=True (also :meth:`rebuild`) rebuilds every index, ignoring saved files, and saves.
        """
        self._load(projects, institutions, project_vectors, institution_vectors, use_disk=not rebuild)

    #: Rebuild every index from the stored vectors and texts, ignoring saved files, and save.
    rebuild = functools.partialmethod(load, rebuild=True)

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
            self._proj_lex = self._lexical(
                _LEX_PROJECTS, {p.id: self._project_doc(p) for p in self._projects.values()}, use_disk
            )
            pids = sorted(i for i in project_vectors if i in self._projects)
            insts = list(institutions)
            for inst in insts:
                self._add_institution_links(inst)
            own = {
                inst.id: np.asarray(institution_vectors[inst.id], dtype=np.float32).ravel()
                for inst in insts
                if institution_vectors.get(inst.id) is not None
            }
            self._inst_lex = self._lexical(
                _LEX_INSTITUTIONS, {i.id: self._institution_doc(i) for i in insts}, use_disk
            )
            self._inst_lex_own = self._lexical(
                _LEX_INSTITUTIONS_OWN, {i.id: self._institution_own_doc(i) for i in insts}, use_disk
            )
            self._evidence_dirty = True
            self._port_matrix = None
            if background is not None and background is not False and self._persistent():
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

    def _lexical(self, name: str, docs: Mapping[int, str], use_disk: bool) -> LexicalIndex:
        """Return the BM25 index of docs: the saved one brought in step with them (only changed
        texts tokenized), else built from them in one batch and saved (call under the lock)."""
        started = time.perf_counter()
        lex = LexicalIndex(self._tokenizer)
        folder = self.index_dir
        why = lex.open(folder, name) if folder is not None and use_disk else "not read"
        if why is None:
            written, removed = lex.sync(docs)
            how = f"saved+{written + removed}" if written or removed else "saved"
            if written or removed:
                self._schedule_save(_lex_key(name))
        else:
            lex.load_documents(docs)
            how = "built" if why in ("not read", "missing") else f"built ({why})"
            if folder is not None and lex.tokenizer_version is not None:
                lex.save(folder, name)
        self.lexical_loaded[name] = how
        self.lexical_seconds[name] = time.perf_counter() - started
        logger.info(
            "BM25 index %s: %s, %d documents, %.1f s", name, how, len(docs), self.lexical_seconds[name]
        )
        return lex

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
        if not self._persistent():
            return "no index folder"
        dim = int(self.embedder.dim)
        saved, problem, reused = self.vectors.open(
            _PROJECTS, self.embedder.name, pids, self._matrix(pids, project_vectors)
        )
        if saved is None:
            return f"{_PROJECTS}: {problem}"
        self._proj_index = saved
        self._own_vector = set(own)
        inst_vecs = self._institution_vectors(own)
        ids = sorted(inst_vecs)
        saved_inst, problem, reused_inst = self.vectors.open(
            _INSTITUTIONS, self.embedder.name, ids, self._matrix(ids, inst_vecs)
        )
        if saved_inst is None:
            self._proj_index = self.vectors.empty(_PROJECTS, dim)
            self._own_vector = set()
            return f"{_INSTITUTIONS}: {problem}"
        self._inst_index = saved_inst
        self.loaded_from_disk = {_PROJECTS: reused, _INSTITUTIONS: reused_inst}
        return None

    def _persistent(self) -> bool:
        """Return True when the vector stores outlive the process (an index folder, or Milvus)."""
        return self.index_dir is not None or not self.vectors.local

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
            proj_index = self.vectors.build(
                _PROJECTS, self.embedder.name, ids, self._matrix(ids, snapshot), persist=False
            )
            with self._lock:
                if generation != self._generation or self._pending is None or self._edited is None:
                    return
                current = self._pending[_PROJECTS]
                for pid in sorted(self._edited):
                    vec = current.get(pid)
                    if vec is None:
                        proj_index.delete([pid])
                    else:
                        proj_index.upsert([pid], vec.reshape(1, -1))
                self._proj_index = proj_index
                self._own_vector = set(self._pending[_INSTITUTIONS])
                inst_vecs = self._institution_vectors(self._pending[_INSTITUTIONS])
                inst_ids = sorted(inst_vecs)
                self._inst_index = self.vectors.build(
                    _INSTITUTIONS,
                    self.embedder.name,
                    inst_ids,
                    self._matrix(inst_ids, inst_vecs),
                    persist=False,
                )
                self._evidence_dirty = True
                self._port_matrix = None
                self.loaded_from_disk = {_PROJECTS: False, _INSTITUTIONS: False}
                self._proj_index.save()
                self._inst_index.save()
                self._set_ready(None)
                logger.info("indexes rebuilt from %d stored project vectors: dense ranking back", len(ids))
        except Exception:  # the service keeps answering lexical-only; a restart tries again
            logger.exception("background index rebuild failed; ranking stays lexical-only")

    def _index_from(self, name: str, ids: Sequence[int], vectors: Vectors, use_disk: bool) -> VectorStore:
        """Return the saved store when it holds exactly these vectors (Milvus: brought in step with
        them), else build and save one."""
        matrix = self._matrix(ids, vectors)
        if use_disk and self._persistent():
            saved, _problem, reused = self.vectors.open(name, self.embedder.name, ids, matrix)
            if saved is not None:
                self.loaded_from_disk[name] = reused
                return saved
        store = self.vectors.build(name, self.embedder.name, ids, matrix)
        self.loaded_from_disk[name] = False
        return store

    # ------------------------------------------------------------------ edits
    def upsert_project(self, profile: ProjectProfile, vector: NDArray[np.floating] | None) -> None:
        """Add or replace one project in the vector, lexical and profile stores."""
        with self._lock:
            self._projects[profile.id] = profile
            self._ptab.upsert(profile)
            self._proj_lex.upsert(profile.id, self._project_doc(profile))
            self._proj_clauses.put(profile.id, profile.text)
            self._schedule_save(_lex_key(_LEX_PROJECTS))
            if self._pending is not None:
                self._pend(_PROJECTS, profile.id, vector)
            elif vector is not None:
                vec = np.asarray(vector, dtype=np.float32).reshape(1, -1)
                self._proj_index.upsert([profile.id], vec)
                if self._ann is not None and self._ann.exact is self._proj_index:
                    self._ann.upsert([profile.id], vec)
            else:
                self._proj_index.delete([profile.id])
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
            self._proj_clauses.remove(project_id)
            self._schedule_save(_lex_key(_LEX_PROJECTS))
            if self._pending is not None:
                self._pend(_PROJECTS, project_id, None)
            self._proj_index.delete([project_id])
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
            self._schedule_save(_lex_key(_LEX_INSTITUTIONS))
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
                self._inst_index.upsert([profile.id], np.asarray(vector, dtype=np.float32).reshape(1, -1))
            else:
                self._own_vector.discard(profile.id)
                self._set_derived_vector(profile.id)
            self._inst_clauses.put(profile.id, profile.text)
            self._inst_lex.upsert(profile.id, self._institution_doc(profile))
            self._inst_lex_own.upsert(profile.id, self._institution_own_doc(profile))
            self._schedule_save(_lex_key(_LEX_INSTITUTIONS))
            self._schedule_save(_lex_key(_LEX_INSTITUTIONS_OWN))
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
            self._inst_index.delete([institution_id])
            self._inst_lex.remove(institution_id)
            self._inst_lex_own.remove(institution_id)
            self._schedule_save(_lex_key(_LEX_INSTITUTIONS))
            self._schedule_save(_lex_key(_LEX_INSTITUTIONS_OWN))
            self._inst_clauses.remove(institution_id)
            self._evidence_dirty = True
            self._port_matrix = None
            self._schedule_save(_INSTITUTIONS)

    def _add_institution_links(self, inst: InstitutionProfile) -> None:
        self._institutions[inst.id] = inst
        self._side_ids[inst.side].add(inst.id)
        port = tuple(dict.fromkeys(item.project_id for item in inst.portfolio))
        self._n_links += len(port) - len(self._portfolio.get(inst.id, ()))
        self._portfolio[inst.id] = port
        for pid in port:
            self._backers.setdefault(pid, set()).add(inst.id)

    def _drop_institution_links(self, institution_id: int) -> None:
        old = self._institutions.pop(institution_id, None)
        if old is not None:
            self._side_ids[old.side].discard(institution_id)
        dropped = self._portfolio.pop(institution_id, ())
        self._n_links -= len(dropped)
        for pid in dropped:
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
            self._inst_index.delete([institution_id])
        else:
            self._inst_index.upsert([institution_id], derived.reshape(1, -1))
        self._schedule_save(_INSTITUTIONS)

    # ------------------------------------------------------------------ persistence
    def _schedule_save(self, name: str) -> None:
        if self.index_dir is None:
            return
        lexical = name.startswith("bm25:")
        if not lexical and (not self.vectors.local or self._pending is not None):
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
            lexical = {
                _lex_key(_LEX_PROJECTS): (_LEX_PROJECTS, self._proj_lex),
                _lex_key(_LEX_INSTITUTIONS): (_LEX_INSTITUTIONS, self._inst_lex),
                _lex_key(_LEX_INSTITUTIONS_OWN): (_LEX_INSTITUTIONS_OWN, self._inst_lex_own),
            }
            for key in sorted(self._dirty):
                if key in lexical:
                    name, lex = lexical[key]
                    if lex.tokenizer_version is not None and lex.edited:
                        lex.save(self.index_dir, name)
                elif self._pending is None:  # while degraded the rebuild saves the dense indexes
                    (self._proj_index if key == _PROJECTS else self._inst_index).save()
            self._dirty.clear()

    def close(self) -> None:
        """Flush pending saves and stop the save timer."""
        self.flush()

    # ------------------------------------------------------------------ documents
    @staticmethod
    def _project_doc(p: ProjectProfile) -> str:
        return " ".join([p.name, p.text, *p.industries, p.track or ""])

    @staticmethod
    def _institution_own_doc(inst: InstitutionProfile) -> str:
        """Return the BM25 document of an institution's own profile (no portfolio)."""
        return " ".join([inst.name, inst.text, *inst.industries])

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

    # ------------------------------------------------------------------ similarity helpers
    def _project_vector(self, project_id: int) -> NDArray[np.float32] | None:
        return self._proj_index.reconstruct(project_id) if project_id in self._proj_index else None

    def _institution_vector(self, institution_id: int) -> NDArray[np.float32] | None:
        if institution_id in self._inst_index:
            return self._inst_index.reconstruct(institution_id)
        return None

    # ------------------------------------------------------------------ candidates
    def _ann_index(self) -> AnnIndex:
        """Return the candidate ANN index over the current project index, (re)built when replaced."""
        if self._ann is None or self._ann.exact is not self._proj_index:
            # Milvus searches its own collection: the local IVF copy is for FAISS only.
            min_size = self.ann_min_size if self.vectors.local else sys.maxsize
            ann = AnnIndex(self._proj_index, min_size, folder=self.index_dir)
            # Tuned on institutions' vectors too: most searches start from one (or a portfolio's).
            inst_ids = self._inst_index.ids() if len(self._proj_index) >= min_size else ()
            ann.rebuild(queries=self._inst_index.vectors_for(inst_ids) if len(inst_ids) else None)
            self._ann = ann
        return self._ann
