"""Where the dense vectors are searched: one :class:`VectorStore` interface, two implementations.

- ``faiss`` (default): :class:`FaissStore`, an adapter over :class:`embeddings.index.VectorIndex`,
  persisted as ``<name>.faiss`` + manifest files in the index folder and memory-mapped on open.
- ``milvus:<uri>``: :class:`MilvusStore`, a Milvus collection reached through ``pymilvus.MilvusClient``.
  A uri ending in ``.db`` is a milvus-lite database file (one process at a time: the web server
  starts one milvus-lite server for its workers, see ``gunicorn.conf.py``); ``http(s)://host:port``
  is a Milvus server or cluster.

A store is always opened or rebuilt from the vectors stored in the database (the source of truth):
:meth:`VectorBackend.open` returns the persisted store only when it holds exactly those vectors
(FAISS) or after bringing it in step with them (Milvus: only the rows whose vector differs are
written), and :meth:`VectorBackend.build` rebuilds it from scratch.

Every store keeps the same contract (``tests/embeddings/test_vector_store_contract.py``): vectors
are L2-normalised float32 rows keyed by int64 ids, search is exact inner product (cosine), best
first, restricted to an id set when given, with ``k`` clipped to what can be returned. A Milvus
store also keeps the vectors in process memory for the scoring pass, which reads the vectors of
every candidate (``vectors_for``); searches and writes go to Milvus.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from embeddings.index import VectorIndex, _as_ids, search_one_with

__all__ = [
    "FaissBackend",
    "FaissStore",
    "LiteServer",
    "MilvusBackend",
    "MilvusStore",
    "StoreSetting",
    "VectorBackend",
    "VectorStore",
    "collection_name",
    "make_backend",
    "parse_store_setting",
    "require_milvus",
]

logger = logging.getLogger(__name__)

#: Ids per ``id in [...]`` filter expression; larger id sets are searched in chunks and merged.
MILVUS_FILTER_CHUNK = 4096
#: Milvus answers at most this many hits per query (its topk limit); larger k go through id chunks.
MILVUS_MAX_TOPK = 16384
#: Rows per insert/upsert call.
MILVUS_WRITE_BATCH = 2000


@runtime_checkable
class VectorStore(Protocol):
    """Vectors keyed by int64 ids with exact inner-product search (the ranking's dense search)."""

    #: "faiss" or "milvus".
    kind: str

    @property
    def dim(self) -> int: ...

    def upsert(self, ids: ArrayLike | Iterable[int], vectors: ArrayLike) -> None:
        """Insert or replace the vectors of ids; vectors is (n, dim). ValueError on a wrong shape."""
        ...

    def delete(self, ids: ArrayLike | Iterable[int]) -> int:
        """Delete the vectors of ids (unknown ids ignored); return how many were deleted."""
        ...

    def search(
        self, queries: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the k best (scores, ids) per query, best first, among allowed_ids when given.

        k is clipped to the number of (allowed) vectors held; a slot that cannot be filled holds -1.
        """
        ...

    def search_one(
        self, query: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]: ...

    def vectors_for(self, ids: ArrayLike | Iterable[int]) -> NDArray[np.float32]: ...

    def reconstruct(self, id_: int) -> NDArray[np.float32]: ...

    def ids(self) -> NDArray[np.int64]:
        """Return the ids held, ascending."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, id_: object) -> bool: ...

    def contains(self, ids: Sequence[int]) -> NDArray[np.bool_]:
        """Return, for each id, whether it is held (one lock, not one per id)."""
        ...

    def save(self) -> None:
        """Make the edits so far durable (FAISS: write the files; Milvus: nothing, writes are)."""
        ...


class VectorBackend(Protocol):
    """Opens, rebuilds and creates the stores of one kind (one store per side and model)."""

    kind: str
    #: True when the backend's search is done by FAISS in this process (the IVF candidate index applies).
    local: bool

    def empty(self, name: str, dim: int) -> VectorStore:
        """Return an empty in-memory placeholder store (never persisted)."""
        ...

    def open(
        self, name: str, model: str, ids: Sequence[int], vectors: NDArray[np.float32]
    ) -> tuple[VectorStore | None, str | None, bool]:
        """Return (store, None, reused) holding exactly ids/vectors, or (None, why not, False)."""
        ...

    def build(
        self, name: str, model: str, ids: Sequence[int], vectors: NDArray[np.float32], persist: bool = True
    ) -> VectorStore:
        """Return a store rebuilt from ids/vectors (and persisted unless persist is False)."""
        ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------------------------- FAISS
class _HeldReads:
    """Reads answered by a :class:`VectorIndex` in this process (FAISS itself, or Milvus' mirror)."""

    _held: VectorIndex

    def vectors_for(self, ids: ArrayLike | Iterable[int]) -> NDArray[np.float32]:
        return self._held.vectors_for(ids)

    def reconstruct(self, id_: int) -> NDArray[np.float32]:
        return self._held.reconstruct(id_)

    def ids(self) -> NDArray[np.int64]:
        return self._held.ids()

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._held

    def contains(self, ids: Sequence[int]) -> NDArray[np.bool_]:
        return self._held.contains(ids)


class FaissStore(_HeldReads):
    """The FAISS implementation: :class:`VectorIndex` plus where it is saved."""

    kind = "faiss"

    def __init__(
        self, index: VectorIndex, directory: Path | None = None, name: str = "", model: str = ""
    ) -> None:
        self.index = self._held = index
        self._directory = directory
        self._name = name
        self._model = model

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def mapped(self) -> bool:
        return self.index.mapped

    def upsert(self, ids: ArrayLike | Iterable[int], vectors: ArrayLike) -> None:
        self.index.add(ids, vectors)

    def delete(self, ids: ArrayLike | Iterable[int]) -> int:
        return self.index.remove(ids)

    def search(
        self, queries: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        return self.index.search(queries, k, allowed_ids)

    def search_one(
        self, query: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        return self.index.search_one(query, k, allowed_ids)

    def save(self) -> None:
        if self._directory is not None:
            self.index.save(self._directory, self._name, self._model)

    def __repr__(self) -> str:
        return f"FaissStore({self._name!r}, dim={self.dim}, count={len(self)})"


def same_content(store: VectorStore, ids: Sequence[int], matrix: NDArray[np.float32]) -> bool:
    """Return True when the store holds exactly these ids with these vectors."""
    if len(store) != len(ids) or not np.array_equal(store.ids(), np.sort(np.asarray(ids, dtype=np.int64))):
        return False
    if not len(ids):
        return True
    return bool(np.array_equal(store.vectors_for(ids), matrix))


class FaissBackend:
    """FAISS indexes saved in a folder (None: in memory only)."""

    kind = "faiss"
    local = True

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    def empty(self, name: str, dim: int) -> FaissStore:
        return FaissStore(VectorIndex(dim))

    def open(
        self, name: str, model: str, ids: Sequence[int], vectors: NDArray[np.float32]
    ) -> tuple[FaissStore | None, str | None, bool]:
        if self.directory is None:
            return None, "no index folder", False
        saved, problem = VectorIndex.open(self.directory, name, model, int(vectors.shape[1]))
        if saved is None:
            return None, problem, False
        store = FaissStore(saved, self.directory, name, model)
        if not same_content(store, ids, vectors):
            return None, "vectors differ from the database", False
        return store, None, True

    def build(
        self, name: str, model: str, ids: Sequence[int], vectors: NDArray[np.float32], persist: bool = True
    ) -> FaissStore:
        index = VectorIndex(int(vectors.shape[1]))
        index.add(np.asarray(ids, dtype=np.int64), vectors)
        store = FaissStore(index, self.directory, name, model)
        if persist:
            store.save()
        return store

    def close(self) -> None:
        return None


# ---------------------------------------------------------------------------------------------- Milvus
_SLUG = re.compile(r"[^A-Za-z0-9_]+")


def collection_name(name: str, model: str) -> str:
    """Return the Milvus collection of one side (projects, institutions) and model.

    Letters, digits and '_' only (Milvus' rule), readable, and unique per model by a short hash.
    """
    slug = _SLUG.sub("_", model).strip("_")[:40] or "model"
    digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:8]
    return f"match_{_SLUG.sub('_', name)}_{slug}_{digest}"


def _row_digest(row: NDArray[np.float32]) -> str:
    return hashlib.sha256(np.ascontiguousarray(row, dtype="<f4").tobytes()).hexdigest()[:32]


class MilvusStore(_HeldReads):
    """The Milvus implementation: one collection, searched by Milvus, mirrored in memory for reads.

    Rows are (id INT64 primary key, vector FLOAT_VECTOR(dim), digest of the vector) under a FLAT
    inner-product index: exact search, the same results as the FAISS flat index. Writes go to the
    collection and the mirror; searches (with ``id in [...]`` filters) to the collection.
    """

    kind = "milvus"

    def __init__(self, client: Any, collection: str, dim: int, mirror: VectorIndex | None = None) -> None:
        self._client = client
        self.collection = collection
        self._mirror = self._held = mirror if mirror is not None else VectorIndex(dim)
        self._lock = threading.RLock()

    @property
    def dim(self) -> int:
        return self._mirror.dim

    def upsert(self, ids: ArrayLike | Iterable[int], vectors: ArrayLike) -> None:
        id_arr = _as_ids(ids)
        matrix = self._mirror._check_vectors(vectors, len(id_arr))
        if len(id_arr) == 0:
            return
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("ids must not repeat within one upsert")
        with self._lock:
            _write_rows(self._client, self.collection, id_arr, matrix, upsert=True)
            self._mirror.add(id_arr, matrix)

    def delete(self, ids: ArrayLike | Iterable[int]) -> int:
        id_arr = _as_ids(ids)
        with self._lock:
            present = [i for i in np.unique(id_arr).tolist() if i in self._mirror]
            if not present:
                return 0
            for start in range(0, len(present), MILVUS_FILTER_CHUNK):
                self._client.delete(self.collection, ids=present[start : start + MILVUS_FILTER_CHUNK])
            return self._mirror.remove(present)

    def search(
        self, queries: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        if k < 0:
            raise ValueError(f"k must be non-negative, got {k}")
        matrix = self._mirror._check_vectors(queries)
        n = matrix.shape[0]
        with self._lock:
            if allowed_ids is None:
                k_eff = min(k, len(self._mirror))
                chunks: list[NDArray[np.int64] | None] = [None]
                if k_eff > MILVUS_MAX_TOPK:  # beyond Milvus' topk: search the ids in chunks
                    chunks = _chunks(self._mirror.ids())
            else:
                present = self._mirror.present(_as_ids(allowed_ids))
                k_eff = min(k, len(present))
                chunks = _chunks(present)
            if n == 0 or k_eff == 0:
                return np.empty((n, k_eff), dtype=np.float32), np.full((n, k_eff), -1, dtype=np.int64)
            scores = np.full((n, k_eff), -np.inf, dtype=np.float32)
            found = np.full((n, k_eff), -1, dtype=np.int64)
            data = matrix.tolist()
            for chunk in chunks:
                limit = k_eff if chunk is None else min(k_eff, len(chunk))
                expr = "" if chunk is None else f"id in [{','.join(map(str, chunk.tolist()))}]"
                hits = self._client.search(
                    self.collection,
                    data=data,
                    limit=limit,
                    filter=expr,
                    output_fields=["id"],
                    search_params={"metric_type": "IP"},
                    consistency_level="Strong",
                )
                for row, row_hits in enumerate(hits):
                    got_s = np.asarray([h["distance"] for h in row_hits], dtype=np.float32)
                    got_i = np.asarray([h["id"] for h in row_hits], dtype=np.int64)
                    if len(chunks) == 1:
                        scores[row, : len(got_s)], found[row, : len(got_i)] = got_s, got_i
                        continue
                    all_s = np.concatenate([scores[row], got_s])
                    all_i = np.concatenate([found[row], got_i])
                    order = np.lexsort((all_i, -all_s))[:k_eff]
                    scores[row], found[row] = all_s[order], all_i[order]
        scores[found < 0] = 0.0
        return scores, found

    def search_one(
        self, query: ArrayLike, k: int, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        return search_one_with(self.search, query, k, allowed_ids)

    def save(self) -> None:
        return None  # every write is already in Milvus

    def remote_count(self) -> int:
        """Return the rows the collection holds (read from Milvus, for checks)."""
        res = self._client.query(
            self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(res[0]["count(*)"])

    def __repr__(self) -> str:
        return f"MilvusStore({self.collection!r}, dim={self.dim}, count={len(self)})"


def _chunks(ids: NDArray[np.int64]) -> list[NDArray[np.int64] | None]:
    return [ids[i : i + MILVUS_FILTER_CHUNK] for i in range(0, len(ids), MILVUS_FILTER_CHUNK)] or [ids]


def _write_rows(
    client: Any, collection: str, ids: NDArray[np.int64], matrix: NDArray[np.float32], upsert: bool
) -> None:
    write = client.upsert if upsert else client.insert
    for start in range(0, len(ids), MILVUS_WRITE_BATCH):
        part = slice(start, start + MILVUS_WRITE_BATCH)
        rows = [
            {"id": int(i), "vector": v.tolist(), "digest": _row_digest(v)}
            for i, v in zip(ids[part], matrix[part], strict=True)
        ]
        write(collection, rows)


class MilvusBackend:
    """Collections in one Milvus (a milvus-lite ``.db`` file or a server uri), one per side and model."""

    kind = "milvus"
    local = False

    def __init__(self, uri: str, client: Any = None) -> None:
        self.uri = uri
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """Return the pymilvus client, connecting on first use (pymilvus is imported only then)."""
        with self._lock:
            if self._client is None:
                self._client = connect_milvus(self.uri)
            return self._client

    def empty(self, name: str, dim: int) -> FaissStore:
        return FaissStore(VectorIndex(dim))  # a placeholder until open/build: nothing reaches Milvus

    def _create(self, collection: str, dim: int) -> None:
        from pymilvus import DataType

        client = self.client
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("digest", DataType.VARCHAR, max_length=32)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection(collection, schema=schema, consistency_level="Strong")
        # FLAT needs no build: do not poll for it (pymilvus' wait asks for a timestamp milvus-lite lacks).
        client.create_index(collection, index, sync=False)

    def _collection_dim(self, collection: str) -> int | None:
        """Return the vector width of a collection of this layout (id, vector, digest), else None."""
        fields = {f.get("name"): f for f in self.client.describe_collection(collection).get("fields", [])}
        if set(fields) != {"id", "vector", "digest"}:
            return None
        return int(fields["vector"].get("params", {}).get("dim", 0)) or None

    def _remote_digests(self, collection: str) -> dict[int, str]:
        """Return {id: vector digest} of every row of the collection."""
        remote: dict[int, str] = {}
        iterator = self.client.query_iterator(
            collection, batch_size=4096, filter="", output_fields=["id", "digest"]
        )
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    break
                remote.update((int(r["id"]), str(r["digest"])) for r in batch)
        finally:
            iterator.close()
        return remote

    def open(
        self, name: str, model: str, ids: Sequence[int], vectors: NDArray[np.float32]
    ) -> tuple[MilvusStore | None, str | None, bool]:
        """Bring the collection in step with ids/vectors, writing only what differs; reused = nothing did."""
        collection = collection_name(name, model)
        dim = int(vectors.shape[1])
        client = self.client
        if not client.has_collection(collection) or self._collection_dim(collection) != dim:
            return self.build(name, model, ids, vectors), None, False
        client.load_collection(collection)
        remote = self._remote_digests(collection)
        id_arr = np.asarray(ids, dtype=np.int64)
        wanted = {int(i): _row_digest(v) for i, v in zip(id_arr.tolist(), vectors, strict=True)}
        stale = sorted(set(remote) - set(wanted))
        changed = [j for j, i in enumerate(id_arr.tolist()) if remote.get(i) != wanted[i]]
        for start in range(0, len(stale), MILVUS_FILTER_CHUNK):
            client.delete(collection, ids=stale[start : start + MILVUS_FILTER_CHUNK])
        if changed:
            _write_rows(client, collection, id_arr[changed], vectors[changed], upsert=True)
        if stale or changed:
            client.flush(collection)  # seal what was written: searches of unsealed rows are far slower
            logger.info(
                "Milvus collection %s brought in step with the database: %d written, %d deleted",
                collection,
                len(changed),
                len(stale),
            )
        mirror = VectorIndex(dim)
        mirror.add(id_arr, vectors)
        return MilvusStore(client, collection, dim, mirror), None, not (stale or changed)

    def build(
        self, name: str, model: str, ids: Sequence[int], vectors: NDArray[np.float32], persist: bool = True
    ) -> MilvusStore:
        """Rewrite the collection from ids/vectors (persist is implied): every row written again, the
        others deleted, while searches go on; a missing collection or one of another layout is created."""
        collection = collection_name(name, model)
        dim = int(vectors.shape[1])
        id_arr = np.asarray(ids, dtype=np.int64)
        matrix = np.asarray(vectors, dtype=np.float32)
        mirror = VectorIndex(dim)
        mirror.add(id_arr, matrix)  # checks shapes and repeats before anything is written
        client = self.client
        if client.has_collection(collection) and self._collection_dim(collection) == dim:
            client.load_collection(collection)
            stale = sorted(set(self._remote_digests(collection)) - set(id_arr.tolist()))
            for start in range(0, len(stale), MILVUS_FILTER_CHUNK):
                client.delete(collection, ids=stale[start : start + MILVUS_FILTER_CHUNK])
            _write_rows(client, collection, id_arr, matrix, upsert=True)
        else:
            self._create(collection, dim)
            _write_rows(client, collection, id_arr, matrix, upsert=False)
            client.load_collection(collection)
        client.flush(collection)  # seal what was written: searches of unsealed rows are far slower
        logger.info("Milvus collection %s rebuilt from %d stored vectors", collection, len(id_arr))
        return MilvusStore(client, collection, dim, mirror)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _quiet_lite_fallback(record: logging.LogRecord) -> bool:
    """Drop pymilvus' notice that milvus-lite gives iterators no server timestamp (it uses its own)."""
    return "mvccTs" not in record.getMessage()


def connect_milvus(uri: str) -> Any:
    """Return a ``pymilvus.MilvusClient`` for uri, with a clear error when it cannot be reached."""
    logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_quiet_lite_fallback)
    require_milvus(lite=False)
    from pymilvus import MilvusClient

    try:
        return MilvusClient(uri=uri)
    except Exception as exc:
        hint = (
            " (a milvus-lite file is opened by one process at a time: is another process using it?)"
            if uri.endswith(".db")
            else ""
        )
        raise RuntimeError(f"cannot open the Milvus vector store at {uri}: {exc}{hint}") from exc


# --------------------------------------------------------------------------------------------- setting
@dataclass(frozen=True)
class StoreSetting:
    """A parsed ``MATCH_VECTOR_STORE``: kind "faiss", or "milvus" with its uri (a file made absolute)."""

    kind: str
    uri: str | None = None

    @property
    def lite(self) -> bool:
        """Return True for a milvus-lite database file."""
        return self.kind == "milvus" and self.uri is not None and self.uri.endswith(".db")


def parse_store_setting(value: object, instance_path: str | os.PathLike[str]) -> StoreSetting:
    """Return the vector store named by the setting, or raise ValueError saying what is accepted.

    ``faiss`` (or empty): the local FAISS indexes. ``milvus:<uri>``: a Milvus server
    (``http(s)://host:port``, ``tcp://``, ``unix:``) or a milvus-lite file ending in ``.db``; a relative
    file path is taken from the instance folder (``instance/vectors.db`` or ``vectors.db``).
    """
    accepted = "expected 'faiss' or 'milvus:<uri>' (a .db file for milvus-lite, or http://host:19530)"
    if value is None:
        return StoreSetting("faiss")
    if not isinstance(value, str):
        raise ValueError(f"MATCH_VECTOR_STORE must be a string, {accepted}; got {value!r}")
    text = value.strip()
    if text == "" or text.lower() == "faiss":
        return StoreSetting("faiss")
    kind, sep, uri = text.partition(":")
    if kind.lower() != "milvus" or not sep or not uri.strip():
        raise ValueError(f"MATCH_VECTOR_STORE={value!r} is not understood: {accepted}")
    uri = uri.strip()
    if re.match(r"^(https?|tcp)://[^/\s]+", uri) or uri.startswith("unix:"):
        return StoreSetting("milvus", uri)
    if "://" in uri:
        raise ValueError(f"MATCH_VECTOR_STORE={value!r}: unsupported scheme, {accepted}")
    if not uri.endswith(".db"):
        raise ValueError(f"MATCH_VECTOR_STORE={value!r}: a milvus-lite file must end in .db, {accepted}")
    path = Path(uri).expanduser()
    if not path.is_absolute():
        instance = Path(instance_path)
        # "instance/vectors.db" (as written from the project folder) and "vectors.db" mean the same file.
        parts = path.parts
        if parts and parts[0] == instance.name:
            path = Path(*parts[1:]) if len(parts) > 1 else path
        path = instance / path
    return StoreSetting("milvus", str(path.resolve()))


def require_milvus(lite: bool) -> None:
    """Raise RuntimeError naming the install command when the Milvus packages are missing.

    They are the project's ``milvus`` extra, not a base dependency (pyarrow and pandas come with them):
    ``make`` installs it when ``MATCH_VECTOR_STORE`` names Milvus.
    """
    import importlib.util

    needed = ["pymilvus", "milvus_lite"] if lite else ["pymilvus"]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(
            f"MATCH_VECTOR_STORE=milvus:... needs {' and '.join(missing)}, which are not installed: "
            "run `make install MATCH_VECTOR_STORE=milvus:...` or `pip install -e '.[milvus]'`"
        )


def make_backend(setting: StoreSetting, index_dir: str | os.PathLike[str] | None) -> VectorBackend:
    """Return the backend of a parsed setting (FAISS indexes in index_dir; nothing is connected yet)."""
    if setting.kind == "faiss":
        return FaissBackend(index_dir)
    assert setting.uri is not None
    if setting.lite:
        Path(setting.uri).parent.mkdir(parents=True, exist_ok=True)
    return MilvusBackend(setting.uri)


# ------------------------------------------------------------------------------- milvus-lite, shared
def _child_setup() -> None:
    """In the server process: interrupts stop it cleanly (even when started from a background shell),
    and on Linux it ends with the process that started it."""
    import contextlib
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


class LiteServer:
    """A milvus-lite server process for one ``.db`` file, reached at :attr:`uri` by any local process.

    milvus-lite lets one process open a database file. Several processes (the web server's workers)
    share one by talking to this server instead, like to a Milvus server: ``milvus:<uri>``.
    """

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        import socket
        import subprocess
        import sys
        import tempfile
        import time

        require_milvus(lite=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.path = path
        self.uri = f"http://127.0.0.1:{port}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", path]
        # Its messages go to a file, not a pipe nobody reads (a full pipe would stall the server).
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C reaches the web server, which then stops this one
            preexec_fn=_child_setup,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self._log.seek(0)
                error = self._log.read().decode("utf-8", "replace")
                last = error.strip().splitlines()[-1:] or ["no message"]
                raise RuntimeError(f"the milvus-lite server for {path} stopped: {last[0]}")
            with socket.socket() as conn:
                conn.settimeout(0.5)
                if conn.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the milvus-lite server for {path} did not start within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server: an interrupt, on which it finishes its requests and closes the database."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except Exception:
                self.process.kill()
