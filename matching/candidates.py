"""The candidate stage: which ids the scoring pass sees for one query.

Structured filters are applied first (allowed ids, known links), then retrieval channels pick a
pool when the candidate set is large: dense ANN search, BM25 top-k, portfolio neighbours,
co-investment and activity. Small sets are scored whole. The dense search over projects uses
:class:`AnnIndex`: exact flat search below ``ANN_MIN_SIZE`` vectors; above it an inverted-file (IVF)
index, or a half-precision flat scan where IVF would have to probe most of its lists. Both have
their recall@50 against the exact search measured when built (and by ``bench/bench_matching.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from embeddings.index import read_mapped, write_atomically
from embeddings.stores import VectorStore
from matching.lexical import LexicalIndex
from matching.types import Filters

__all__ = ["ANN_MIN_SIZE", "AnnIndex", "institution_pool", "project_pool", "recall_at", "restrict"]

#: Below this many vectors the exact flat search is used (fast enough, and exact).
ANN_MIN_SIZE = 50_000
#: Candidate recall@50 against the exact search the IVF index is tuned to reach (see AnnIndex).
ANN_TARGET_RECALL = 0.98
#: Stored vectors used as queries when the number of probed lists is tuned.
ANN_CALIBRATION_QUERIES = 256
#: The IVF probe count is tuned to this much above the target on the calibration queries, so that
#: queries it was not tuned on (institutions' vectors, new texts) still reach the target.
ANN_TUNE_MARGIN = 0.01
logger = logging.getLogger(__name__)

#: Probing more than this share of the lists costs about as much as a full scan: scan instead.
ANN_MAX_PROBE_SHARE = 0.5


def restrict(ids: Iterable[int], filters: Filters | None) -> set[int]:
    """Return ids narrowed to the filter's allowed ids (a new set)."""
    cands = set(ids)
    if filters is not None and filters.allowed_ids is not None:
        cands &= set(filters.allowed_ids)
    return cands


class AnnIndex:
    """An approximate copy of a FAISS :class:`~embeddings.stores.VectorStore` for unfiltered top-k searches.

    Below ``min_size`` vectors it holds nothing and searches fall through to the exact index.
    Above, it is an IVF-flat inner-product index (``nlist`` = sqrt(n)) trained on a sample of the
    vectors. The number of lists probed is not assumed but measured when it is built: the smallest
    ``nprobe`` whose recall@50 against the exact search reaches ``target_recall`` (plus
    ``ANN_TUNE_MARGIN``) on stored vectors used as queries. When that takes more than ``ANN_MAX_PROBE_SHARE`` of the lists (vectors
    without neighbourhood structure) a full scan is as fast: the copy is then a flat scan over
    half-precision (fp16) codes, which reads half the memory of the float32 index, with its
    recall@50 measured the same way (the exact index is used when even that misses the target).
    Edits are applied to the copy like to the exact index.

    With a ``folder`` the copy is saved there as ``ann-<key>.faiss`` (and ``ann-<key>.json``: kind,
    nprobe, recall, checksum), the key being the SHA-256 of the ids and vectors it was built from
    and of the build settings. A process building over the same vectors (another worker, a restart)
    memory-maps that file instead of building and tuning again, so the workers share one copy; the
    first edit in a process makes it a private copy, as with the exact index.
    """

    def __init__(
        self,
        exact: VectorStore,
        min_size: int = ANN_MIN_SIZE,
        target_recall: float = ANN_TARGET_RECALL,
        folder: Path | None = None,
    ) -> None:
        self.exact = exact
        self.min_size = min_size
        self.target_recall = target_recall
        self.folder = folder
        self._mapped = False
        self._copy: faiss.Index | None = None  # the IVF index or the fp16 scan (None: exact search)
        self._kind = "flat"
        self._params: faiss.SearchParametersIVF | None = None
        #: The recall@50 measured for the copy in use when built (None: exact search in use).
        self.measured_recall: float | None = None
        self._lock = threading.RLock()

    @property
    def kind(self) -> str:
        """Return "ivf", "flat-fp16" (the half-precision scan) or "flat" (the exact index)."""
        return self._kind

    @property
    def nprobe(self) -> int | None:
        """Return the inverted lists probed per query (None when no IVF index is in use)."""
        return None if self._params is None else int(self._params.nprobe)

    @property
    def mapped(self) -> bool:
        """Return True while the copy is read from its memory-mapped saved file (shared, not copied)."""
        return self._mapped

    def rebuild(self, seed: int = 0, queries: NDArray[np.float32] | None = None) -> None:
        """(Re)build from the exact index: an approximate copy when it holds at least min_size vectors.

        queries: vectors the index will be searched with besides stored ones (e.g. the institutions'),
        up to ANN_CALIBRATION_QUERIES of them, added to the queries its recall is tuned and measured on.
        """
        with self._lock:
            ids = self.exact.ids()
            self._copy, self._kind, self._params, self.measured_recall = None, "flat", None, None
            self._mapped = False
            if len(ids) < self.min_size:
                return
            ids = np.sort(ids)
            vectors = self.exact.vectors_for(ids)
            key = None
            if self.folder is not None:
                settings = (
                    seed,
                    self.target_recall,
                    ANN_TUNE_MARGIN,
                    ANN_CALIBRATION_QUERIES,
                    ANN_MAX_PROBE_SHARE,
                )
                digest = hashlib.sha256(repr(settings).encode())
                digest.update(ids.astype("<i8").tobytes())
                digest.update(np.ascontiguousarray(vectors, dtype="<f4").data)  # no bytes copy
                key = digest.hexdigest()[:32]
                if self._open_saved(key):
                    return
            self._build(ids, vectors, seed, queries)
            if key is not None:
                self._save(key)

    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.folder is not None
        return self.folder / f"ann-{key}.faiss", self.folder / f"ann-{key}.json"

    def _open_saved(self, key: str) -> bool:
        """Map the copy saved for key when its checksum holds; return whether it is in use."""
        index_path, info_path = self._paths(key)
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if not isinstance(info, dict) or info.get("kind") not in ("flat", "ivf", "flat-fp16"):
                return False
            if info["kind"] == "flat":
                return True  # measured: no copy reaches the target; the exact index is searched
            with index_path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if digest != info.get("sha256"):
                return False
            copy = read_mapped(index_path)
        except (OSError, ValueError, RuntimeError):
            return False
        if info["kind"] == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = int(info["nprobe"])
            self._params = params
        self._copy, self._kind, self.measured_recall = copy, str(info["kind"]), float(info["recall"])
        self._mapped = True
        return True

    def _save(self, key: str) -> None:
        """Save the copy for other processes (and drop copies saved for older vectors); best effort."""
        assert self.folder is not None
        index_path, info_path = self._paths(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for old in self.folder.glob("ann-*"):
                if old.stem != f"ann-{key}":
                    with contextlib.suppress(OSError):
                        old.unlink()  # a process mapping it keeps its pages until it lets go
            if self._copy is None:
                sha = ""
            else:
                sha = write_atomically(index_path, [faiss.serialize_index(self._copy).data])
            info = {"kind": self._kind, "nprobe": self.nprobe, "recall": self.measured_recall, "sha256": sha}
            write_atomically(info_path, [json.dumps(info).encode("utf-8")])
        except OSError as exc:
            logger.warning("cannot save the candidate index copy in %s: %s", self.folder, exc)

    def _own(self) -> None:
        """Copy a mapped copy into this process's memory before its first edit (under the lock)."""
        if self._mapped and self._copy is not None:
            self._copy = faiss.deserialize_index(faiss.serialize_index(self._copy))
            self._mapped = False

    def _build(
        self,
        ids: NDArray[np.int64],
        vectors: NDArray[np.float32],
        seed: int,
        extra: NDArray[np.float32] | None,
    ) -> None:
        """Build the IVF index or, failing its recall at a small probe share, the fp16 scan."""
        dim = vectors.shape[1]
        nlist = max(16, int(math.sqrt(len(ids))))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(len(ids), size=min(len(ids), 40 * nlist), replace=False)]
        ivf.train(np.ascontiguousarray(sample))
        ivf.add_with_ids(vectors, ids.astype(np.int64))
        queries = vectors[rng.choice(len(ids), size=min(len(ids), ANN_CALIBRATION_QUERIES), replace=False)]
        if extra is not None and len(extra):
            extra = np.asarray(extra, dtype=np.float32).reshape(-1, dim)
            pick = rng.choice(len(extra), size=min(len(extra), ANN_CALIBRATION_QUERIES), replace=False)
            queries = np.ascontiguousarray(np.vstack((queries, extra[np.sort(pick)])))
        _s, truth = self.exact.search(queries, 50)
        nprobe, recall = _tune_nprobe(ivf, truth, queries, min(1.0, self.target_recall + ANN_TUNE_MARGIN))
        if nprobe <= ANN_MAX_PROBE_SHARE * nlist:
            self._quantizer = quantizer  # the IVF index borrows it
            params = faiss.SearchParametersIVF()
            params.nprobe = nprobe
            self._copy, self._kind, self._params, self.measured_recall = ivf, "ivf", params, recall
            return
        del ivf
        scan = faiss.IndexIDMap(
            faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        )
        scan.add_with_ids(vectors, ids.astype(np.int64))
        _d, found = scan.search(queries, 50)
        recall = recall_at(truth, found)
        if recall >= self.target_recall:
            self._copy, self._kind, self.measured_recall = scan, "flat-fp16", recall

    def upsert(self, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        with self._lock:
            if self._copy is None:
                return
            self._own()
            arr = np.asarray(ids, dtype=np.int64)
            self._copy.remove_ids(faiss.IDSelectorBatch(arr))
            self._copy.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), arr)

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock:
            if self._copy is not None:
                self._own()
                self._copy.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the top-k (scores, ids) per query over every vector (-1 where not filled)."""
        with self._lock:
            if self._copy is None:
                return self.exact.search(queries, k)
            q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self._copy.d))
            k_eff = min(k, int(self._copy.ntotal))
            if k_eff <= 0:
                return np.empty((q.shape[0], 0), dtype=np.float32), np.empty((q.shape[0], 0), dtype=np.int64)
            if self._params is not None:
                scores, found = self._copy.search(q, k_eff, params=self._params)
            else:
                scores, found = self._copy.search(q, k_eff)
            return np.asarray(scores, dtype=np.float32), np.asarray(found, dtype=np.int64)


def recall_at(exact: NDArray[np.int64], approx: NDArray[np.int64]) -> float:
    """Return the mean share of each row of exact ids that the same row of approx holds."""
    k = exact.shape[1]
    if k == 0:
        return 1.0
    hits = [
        len(set(e[e >= 0].tolist()) & set(a.tolist())) / max(1, int((e >= 0).sum()))
        for e, a in zip(exact, approx, strict=True)
    ]
    return float(np.mean(hits))


def _tune_nprobe(
    ivf: faiss.IndexIVFFlat, truth: NDArray[np.int64], queries: NDArray[np.float32], target: float
) -> tuple[int, float]:
    """Return the smallest nprobe whose recall (against truth, the exact top k) reaches target, and it."""
    k = truth.shape[1]
    params = faiss.SearchParametersIVF()

    def recall(nprobe: int) -> float:
        params.nprobe = nprobe
        _d, found = ivf.search(queries, k, params=params)
        return recall_at(truth, found)

    nlist = int(ivf.nlist)
    lo, hi = 0, 8  # invariant: recall(lo) < target (or lo == 0); find the first hi reaching it
    best = recall(min(hi, nlist))
    while best < target and hi < nlist:
        lo, hi = hi, min(nlist, 2 * hi)
        best = recall(hi)
    while hi - lo > max(1, hi // 16):  # refine to about 6 % of the probe count
        mid = (lo + hi) // 2
        r = recall(mid)
        if r >= target:
            hi, best = mid, r
        else:
            lo = mid
    return min(hi, nlist), best


def institution_pool(
    inst_ids: Sequence[int],
    sims: Mapping[str, NDArray[np.float64]],
    activity: NDArray[np.float64],
    pool_size: int,
) -> list[int]:
    """Return the rows of inst_ids to rank: all, or the union of the retrieval channels.

    Channels: dense text similarity, nearest portfolio project (evidence beyond the mean), BM25,
    co-investment with the project's backers, and activity (popular institutions).
    """
    n = len(inst_ids)
    if n <= pool_size:
        return list(range(n))
    rows: set[int] = set()
    for key, take in (("dense", pool_size), ("dense_port_max", pool_size), ("bm25", pool_size // 2)):
        rows.update(np.argsort(-sims[key], kind="stable")[:take].tolist())
    rows.update(np.flatnonzero(sims["coinvest"] > 0).tolist())
    rows.update(np.argsort(-activity, kind="stable")[: pool_size // 2].tolist())
    return sorted(rows)


def project_pool(
    ann: AnnIndex,
    lexical: LexicalIndex,
    queries: NDArray[np.float32] | None,
    lexical_doc: str | Sequence[str],
    cands: Collection[int] | None,
    all_ids: Collection[int],
    known: Collection[int],
    pool_size: int,
) -> list[int]:
    """Return the projects to score for an institution-like query.

    Args:
        cands: the allowed projects after filters, or None for every project but ``known``.
        all_ids: every project id (read only when cands is None and the set is small).
        known: the query's own portfolio links, never returned.

    All candidates when few (exact). Otherwise dense and BM25 retrieval: with a filter the
    allowed ids go into the exact index's selector and the BM25 scorer; without one, the ANN
    index is searched for k + |known| and the known links are dropped.
    """
    n_cands = len(cands) if cands is not None else len(all_ids) - sum(1 for i in set(known) if i in all_ids)
    if n_cands <= pool_size:
        return sorted(cands) if cands is not None else sorted(set(all_ids) - set(known))
    n = pool_size
    extra = 0 if cands is not None else len(known)
    pool: set[int] = set()
    if queries is not None and queries.shape[0] > 0:
        # The institution's own vector retrieves most; each portfolio vector adds its nearest. One
        # search for all of them, each row cut to its own k.
        per = max(10, n // (2 * max(1, queries.shape[0] - 1)))
        ks = [max(1, n // 2) + extra] + [per + extra] * (queries.shape[0] - 1)
        if cands is not None:
            _s, found = ann.exact.search(queries, max(ks), allowed_ids=cands)
        else:
            _s, found = ann.search(queries, max(ks))
        for row, k_row in zip(found, ks, strict=True):
            pool.update(int(i) for i in row[:k_row] if i >= 0)
    pool.update(i for i, _ in lexical.top(lexical_doc, max(1, n // 4) + extra, cands))
    return sorted(pool - set(known))
