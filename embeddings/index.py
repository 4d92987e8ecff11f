"""A FAISS inner-product index keyed by database ids, with filtered search and checked persistence.

Vectors are expected L2-normalised, so inner product is cosine similarity. The index file goes
with a manifest (model, dim, count, checksums); :meth:`VectorIndex.load` returns None whenever
the pair cannot be trusted, and the caller rebuilds from the vectors stored in the database. A
loaded index is memory-mapped: worker processes opening the same file share one copy of the
vectors in the page cache; the first edit in a process makes it a private copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["MANIFEST_FORMAT", "VectorIndex", "read_mapped", "write_atomically"]

logger = logging.getLogger(__name__)

#: Version of the manifest layout; a different version is treated like a mismatched model.
MANIFEST_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _as_ids(ids: ArrayLike | Iterable[int]) -> NDArray[np.int64]:
    """Return ids as a contiguous 1-D int64 array."""
    if isinstance(ids, (set, frozenset)):
        # Allowed-id filters arrive as sets of Python ints: fromiter avoids a temporary list.
        try:
            return np.fromiter(ids, dtype=np.int64, count=len(ids))
        except (TypeError, ValueError, OverflowError):
            ids = list(ids)
    elif not hasattr(ids, "__len__"):
        ids = list(ids)  # type: ignore[arg-type]
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D sequence of integers, got {arr.dtype} of shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _ids_checksum(ids: NDArray[np.int64]) -> str:
    """Return the SHA-256 of the sorted ids as little-endian int64 (insertion order ignored)."""
    return hashlib.sha256(np.sort(ids).astype("<i8").tobytes()).hexdigest()


def write_atomically(path: Path, chunks: Iterable[bytes | memoryview]) -> str:
    """Write chunks to a temporary file beside path, flush it to disk, rename it over path (the directory
    entry flushed too); return the SHA-256 of what was written. The one way index files are saved."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry to disk, so a rename survives a power cut (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class VectorIndex:
    """Exact inner-product search over float32 vectors keyed by int64 ids (thread-safe)."""

    def __init__(self, dim: int) -> None:
        """Create an empty index for vectors of dim components."""
        if dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim}")
        self._dim = int(dim)
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))
        self._id_set: set[int] = set()
        self._sorted_ids: NDArray[np.int64] | None = None  # cache for filtering; None = stale
        self._mapped = False  # vectors read from a memory-mapped file (see open)
        self._lock = threading.RLock()

    @property
    def dim(self) -> int:
        """Return the number of components of each vector."""
        return self._dim

    @classmethod
    def build(cls, ids: ArrayLike | Iterable[int], vectors: ArrayLike, dim: int | None = None) -> VectorIndex:
        """Return a new index holding vectors under ids; dim defaults to the vectors' width."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if dim is None:
            if matrix.ndim != 2:
                raise ValueError("vectors must be a 2-D array (n, dim) when dim is not given")
            dim = int(matrix.shape[1])
        index = cls(dim)
        index.add(ids, matrix)
        return index

    def _check_vectors(self, vectors: ArrayLike, n: int | None = None) -> NDArray[np.float32]:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.size == 0 and n == 0:
            return np.empty((0, self._dim), dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self._dim:
            raise ValueError(f"vectors must have shape (n, {self._dim}), got {matrix.shape}")
        if n is not None and matrix.shape[0] != n:
            raise ValueError(f"got {n} ids but {matrix.shape[0]} vectors")
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinite values")
        return matrix

    def add(self, ids: ArrayLike | Iterable[int], vectors: ArrayLike) -> None:
        """Insert or replace the vectors of ids; vectors is (n, dim), one row per id."""
        id_arr = _as_ids(ids)
        matrix = self._check_vectors(vectors, len(id_arr))
        if len(id_arr) == 0:
            return
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("ids must not repeat within one add")
        with self._lock:
            self._own()
            existing = [i for i in id_arr.tolist() if i in self._id_set]
            if existing:
                self._remove_present(np.asarray(existing, dtype=np.int64))
            self._index.add_with_ids(matrix, id_arr)
            self._id_set.update(id_arr.tolist())
            self._sorted_ids = None

    def _remove_present(self, id_arr: NDArray[np.int64]) -> int:
        self._own()
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(id_arr)))
        self._id_set.difference_update(id_arr.tolist())
        self._sorted_ids = None
        return removed

    def remove(self, ids: ArrayLike | Iterable[int]) -> int:
        """Delete the vectors of ids (unknown ids are ignored); return how many were deleted."""
        id_arr = _as_ids(ids)
        with self._lock:
            present = np.asarray([i for i in id_arr.tolist() if i in self._id_set], dtype=np.int64)
            if len(present) == 0:
                return 0
            return self._remove_present(np.unique(present))

    def search(
        self,
        queries: ArrayLike,
        k: int,
        allowed_ids: Collection[int] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the k best (scores, ids) per query, best first, among allowed_ids when given.

        The filter is applied inside the scan (a FAISS ID selector), so disallowed vectors are
        never scored and never take a place in the top k.

        Args:
            queries: (n, dim) float32, L2-normalised.
            k: results wanted per query; clipped to the number of (allowed) vectors present.
            allowed_ids: the only ids that may be returned; None means all.

        Returns:
            scores (n, k') float32 cosine similarities and ids (n, k') int64, k' = the clipped k;
            a slot FAISS could not fill holds id -1.
        """
        if k < 0:
            raise ValueError(f"k must be non-negative, got {k}")
        matrix = self._check_vectors(queries)
        n = matrix.shape[0]
        with self._lock:
            params: faiss.SearchParameters | None = None
            if allowed_ids is None:
                k_eff = min(k, len(self._id_set))
            else:
                # A set or range has no repeats: skip the sort that de-duplication costs.
                distinct = isinstance(allowed_ids, (set, frozenset, range))
                present = self._present(_as_ids(allowed_ids), distinct)
                k_eff = min(k, len(present))
                if k_eff > 0:
                    # IndexIDMap2.search translates the selector from external ids to internal
                    # rows itself (faiss >= 1.7.3): a plain IDSelectorBatch of database ids works.
                    params = faiss.SearchParameters()
                    params.sel = faiss.IDSelectorBatch(present)  # params keeps the reference
            if n == 0 or k_eff == 0:
                return (
                    np.empty((n, k_eff), dtype=np.float32),
                    np.full((n, k_eff), -1, dtype=np.int64),
                )
            scores, found = self._index.search(matrix, k_eff, params=params)
        return np.asarray(scores, dtype=np.float32), np.asarray(found, dtype=np.int64)

    def search_one(
        self, query: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """Return up to k (id, score) pairs for one (dim,) query, best first."""
        return search_one_with(self.search, query, k, allowed_ids)

    def _known_ids(self) -> NDArray[np.int64]:
        """Return the held ids ascending, cached until the next mutation (call under the lock)."""
        if self._sorted_ids is None:
            self._sorted_ids = np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))
        return self._sorted_ids

    def _present(self, wanted: NDArray[np.int64], distinct: bool = False) -> NDArray[np.int64]:
        """Return the ids of wanted that the index holds, each once (call under the lock)."""
        known = self._known_ids()
        if not distinct:
            wanted = np.unique(wanted)
        if len(known) == 0 or len(wanted) == 0:
            return np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
        return np.asarray(wanted[known[pos] == wanted], dtype=np.int64)

    def present(self, ids: ArrayLike | Iterable[int]) -> NDArray[np.int64]:
        """Return the ids among ids that the index holds, ascending, each once."""
        with self._lock:
            return self._present(_as_ids(ids))

    def reconstruct(self, id_: int) -> NDArray[np.float32]:
        """Return the stored (dim,) vector of one id.

        Raises:
            KeyError: the id is not in the index.
        """
        with self._lock:
            if int(id_) not in self._id_set:
                raise KeyError(id_)
            return np.asarray(self._index.reconstruct(int(id_)), dtype=np.float32)

    def vectors_for(self, ids: ArrayLike | Iterable[int]) -> NDArray[np.float32]:
        """Return the stored vectors of ids as (n, dim), in the order given.

        Raises:
            KeyError: an id is not in the index.
        """
        id_arr = _as_ids(ids)
        if len(id_arr) == 0:
            return np.empty((0, self._dim), dtype=np.float32)
        with self._lock:
            missing = [i for i in id_arr.tolist() if i not in self._id_set]
            if missing:
                raise KeyError(missing[0] if len(missing) == 1 else tuple(missing))
            return np.asarray(self._index.reconstruct_batch(id_arr), dtype=np.float32)

    def ids(self) -> NDArray[np.int64]:
        """Return the ids held, ascending."""
        with self._lock:
            return self._known_ids().copy()

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    def __contains__(self, id_: object) -> bool:
        if isinstance(id_, bool) or not isinstance(id_, (int, np.integer)):
            return False
        with self._lock:
            return int(id_) in self._id_set

    def contains(self, ids: Sequence[int]) -> NDArray[np.bool_]:
        """Return, for each id (ints), whether it is held (one lock, not one per id)."""
        with self._lock:
            held = self._id_set
            return np.fromiter((i in held for i in ids), dtype=bool, count=len(ids))

    def __repr__(self) -> str:
        return f"VectorIndex(dim={self._dim}, count={len(self)})"

    @staticmethod
    def paths(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
        """Return the (index file, manifest file) paths for name in directory."""
        if not _NAME.match(name):
            raise ValueError(f"index name must be letters, digits, '_', '.' or '-', got {name!r}")
        base = Path(directory)
        return base / f"{name}.faiss", base / f"{name}.manifest.json"

    def save(self, directory: str | os.PathLike[str], name: str, model: str) -> Path:
        """Write <name>.faiss and <name>.manifest.json atomically; return the index file path.

        The index file is replaced first and the manifest second: a crash in between leaves a
        checksum mismatch, which :meth:`load` reports as None (rebuild), never a wrong index.
        """
        index_path, manifest_path = self.paths(directory, name)
        index_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = faiss.serialize_index(self._index).tobytes()
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            count = int(self._index.ntotal)
        manifest = {
            "format": MANIFEST_FORMAT,
            "model": model,
            "dim": self._dim,
            "count": count,
            "index_sha256": hashlib.sha256(data).hexdigest(),
            "ids_sha256": _ids_checksum(ids),
            "faiss_version": faiss.__version__,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_atomically(index_path, [data])
        write_atomically(manifest_path, [json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")])
        return index_path

    @classmethod
    def load(cls, directory: str | os.PathLike[str], name: str, model: str, dim: int) -> VectorIndex | None:
        """Return the saved index, or None when it is missing, for another model or dim, or damaged.

        Never raises on a bad file: it logs why and returns None so the caller rebuilds.
        """
        return cls.open(directory, name, model, dim)[0]

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], name: str, model: str, dim: int
    ) -> tuple[VectorIndex | None, str | None]:
        """Return (the saved index, None), or (None, why it cannot be trusted).

        The reason is a short English phrase for logs ("missing", "model differs", "checksum
        differs", ...). Never raises on a bad file.
        """
        index_path, manifest_path = cls.paths(directory, name)
        if not index_path.is_file() or not manifest_path.is_file():
            logger.info("no saved index %r in %s", name, directory)
            return None, "missing"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("manifest is not a JSON object")
            with index_path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()  # streamed, nothing kept
        except (OSError, ValueError) as exc:
            logger.warning("cannot read saved index %r: %s", name, exc)
            return None, "unreadable manifest or index file"
        expected = {"format": MANIFEST_FORMAT, "model": model, "dim": dim}
        for key, value in expected.items():
            if manifest.get(key) != value:
                logger.info(
                    "saved index %r has %s=%r, expected %r: rebuild",
                    name,
                    key,
                    manifest.get(key),
                    value,
                )
                return None, f"{key} differs"
        if digest != manifest.get("index_sha256"):
            logger.warning("saved index %r does not match its manifest checksum: rebuild", name)
            return None, "checksum differs"
        try:
            raw = read_mapped(index_path)
            if not isinstance(raw, faiss.IndexIDMap2) or raw.d != dim:
                raise ValueError(f"unexpected index type {type(raw).__name__} or dim {raw.d}")
            ids = faiss.vector_to_array(raw.id_map).astype(np.int64)
            if int(raw.ntotal) != manifest.get("count") or len(ids) != raw.ntotal:
                raise ValueError("vector count differs from the manifest")
            if _ids_checksum(ids) != manifest.get("ids_sha256"):
                raise ValueError("ids differ from the manifest")
            if len(np.unique(ids)) != len(ids):
                raise ValueError("ids repeat")
        except (RuntimeError, ValueError) as exc:
            logger.warning("saved index %r is unusable (%s): rebuild", name, exc)
            return None, f"unusable: {exc}"
        index = cls(dim)
        index._index = raw
        index._mapped = True
        index._id_set = set(ids.tolist())
        index._sorted_ids = None
        return index, None

    @property
    def mapped(self) -> bool:
        """Return True while the vectors are read from the memory-mapped saved file (shared, not copied)."""
        return self._mapped

    def _own(self) -> None:
        """Copy a memory-mapped index into this process's memory before its first edit (under the lock).

        A mapped index is read-only (FAISS aborts on a resize of a mapped buffer): edits work on
        a private copy, and the next save writes it for every process to map again.
        """
        if self._mapped:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._mapped = False


def search_one_with(
    search: Callable[
        [NDArray[np.float32], int, Collection[int] | None], tuple[NDArray[Any], NDArray[np.int64]]
    ],
    query: ArrayLike,
    k: int,
    allowed_ids: Collection[int] | None,
) -> list[tuple[int, float]]:
    """Return up to k (id, score) pairs of one (dim,) query through a batch search, best first."""
    vector = np.asarray(query, dtype=np.float32).reshape(1, -1)
    scores, found = search(vector, k, allowed_ids)
    return [(int(i), float(s)) for i, s in zip(found[0], scores[0], strict=True) if i != -1]


def read_mapped(path: Path) -> Any:
    """Return the index saved at path with its vectors memory-mapped (shared by every process).

    Falls back to reading it into memory where the installed FAISS cannot map this index type.
    """
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    except (RuntimeError, AttributeError):
        return faiss.read_index(str(path))


def set_search_threads(n: int) -> None:
    """Set FAISS' OpenMP thread count for this process (1 suits a multi-threaded web server)."""
    faiss.omp_set_num_threads(int(n))
