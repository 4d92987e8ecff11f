"""The same contract for every vector store: FAISS (in a tmp folder) and Milvus (milvus-lite in a tmp file).

milvus-lite speaks the Milvus client API (pymilvus.MilvusClient), so the Milvus store runs here unchanged
against what a Milvus server would answer. One milvus-lite server is shared by the whole module; each
test works in its own collection (a model name of its own). Where milvus-lite cannot start, the Milvus
cases are skipped with the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from embeddings import stores
from embeddings.stores import (
    FaissBackend,
    MilvusBackend,
    VectorBackend,
    VectorStore,
    collection_name,
    parse_store_setting,
)

DIM = 16
Builder = Callable[..., VectorStore]
_models = itertools.count()


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> NDArray[np.float32]:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def _exact(
    ids: NDArray[np.int64], vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int
) -> NDArray[np.int64]:
    """Return the top-k ids per query by brute force (ties broken by id)."""
    sims = queries @ vectors.T
    order = np.lexsort((np.broadcast_to(ids, sims.shape), -sims), axis=1)[:, :k]
    return ids[order]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one milvus-lite database for the module (skip with the reason when it cannot start)."""
    uri = str(tmp_path_factory.mktemp("milvus") / "vectors.db")
    backend = MilvusBackend(uri)
    try:
        backend.client.list_collections()
    except Exception as exc:
        pytest.skip(f"milvus-lite cannot start here: {exc}")
    yield uri
    backend.close()


@pytest.fixture(params=["faiss", "milvus"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorBackend]:
    if kind == "faiss":
        yield FaissBackend(tmp_path / "index")
        return
    uri = request.getfixturevalue("milvus_uri")
    made = MilvusBackend(uri)
    yield made
    made.close()


@pytest.fixture()
def model() -> str:
    """A model name of the test's own: its own Milvus collections."""
    return f"contract-model-{next(_models)}"


@pytest.fixture()
def build(backend: VectorBackend, model: str) -> Callable[..., VectorStore]:
    def make(ids: Any = (), vectors: Any = None, name: str = "projects") -> VectorStore:
        matrix = np.empty((0, DIM), dtype=np.float32) if vectors is None else np.asarray(vectors, np.float32)
        return backend.build(name, model, list(ids), matrix)

    return make


def test_upsert_then_read_back(build: Builder, rng: np.random.Generator) -> None:
    store = build()
    vecs = _unit(rng, 3)
    store.upsert([7, 3, 11], vecs)
    assert len(store) == 3 and 3 in store and 4 not in store and "3" not in store
    assert store.ids().tolist() == [3, 7, 11]
    np.testing.assert_array_equal(store.vectors_for([11, 7]), vecs[[2, 0]])
    np.testing.assert_array_equal(store.reconstruct(3), vecs[1])
    scores, found = store.search(vecs[1:2], 1)
    assert found.tolist() == [[3]] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(KeyError):
        store.vectors_for([3, 4])


def test_upsert_overwrites(build: Builder, rng: np.random.Generator) -> None:
    old, new = _unit(rng, 2)
    store = build([1, 2], _unit(rng, 2))
    store.upsert([1], old.reshape(1, -1))
    store.upsert([1], new.reshape(1, -1))
    assert len(store) == 2
    np.testing.assert_array_equal(store.reconstruct(1), new)
    assert store.search_one(new, 1)[0][0] == 1
    assert store.search_one(new, 1)[0][1] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="repeat"):
        store.upsert([5, 5], _unit(rng, 2))


def test_delete(build: Builder, rng: np.random.Generator) -> None:
    vecs = _unit(rng, 5)
    store = build(range(1, 6), vecs)
    assert store.delete([2, 4, 99]) == 2
    assert store.delete([2]) == 0
    assert len(store) == 3 and 2 not in store and store.ids().tolist() == [1, 3, 5]
    _s, found = store.search(vecs, 5)
    assert found.shape == (5, 3) and not ({2, 4} & set(found.ravel().tolist()))


def test_search_is_exact_and_filtered_by_id_set(build: Builder, rng: np.random.Generator) -> None:
    ids = np.arange(100, 400, dtype=np.int64)
    vecs = _unit(rng, len(ids))
    store = build(ids, vecs)
    queries = _unit(rng, 4)
    scores, found = store.search(queries, 10)
    np.testing.assert_array_equal(found, _exact(ids, vecs, queries, 10))
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vecs.T, found - 100, axis=1), atol=1e-5)

    allowed = set(rng.choice(ids, size=40, replace=False).tolist())
    _s, found = store.search(queries, 10, allowed | {5, 6})  # unknown ids are ignored
    keep = np.asarray(sorted(allowed))
    np.testing.assert_array_equal(found, _exact(keep, vecs[keep - 100], queries, 10))
    # k beyond the allowed set: clipped to what it holds
    _s, found = store.search(queries, 50, frozenset(keep[:3].tolist()))
    assert found.shape == (4, 3) and set(found.ravel().tolist()) == set(keep[:3].tolist())
    assert store.search(queries, 10, set())[1].shape == (4, 0)


def test_filter_larger_than_one_expression(build: Builder, rng: np.random.Generator) -> None:
    """An id set larger than one Milvus filter expression is searched in chunks and merged exactly."""
    n = 2 * stores.MILVUS_FILTER_CHUNK + 500
    ids = np.arange(1, n + 1, dtype=np.int64)
    vecs = _unit(rng, n)
    store = build(ids, vecs)
    allowed = ids[ids % 7 != 0]
    assert len(allowed) > stores.MILVUS_FILTER_CHUNK
    queries = _unit(rng, 3)
    _s, found = store.search(queries, 25, set(allowed.tolist()))
    np.testing.assert_array_equal(found, _exact(allowed, vecs[allowed - 1], queries, 25))


def test_empty_store_and_k_beyond_size(build: Builder, rng: np.random.Generator) -> None:
    store = build()
    scores, found = store.search(_unit(rng, 2), 10)
    assert scores.shape == (2, 0) and found.shape == (2, 0) and len(store) == 0
    assert store.ids().tolist() == [] and store.delete([1]) == 0
    vecs = _unit(rng, 3)
    store.upsert([1, 2, 3], vecs)
    _s, found = store.search(vecs, 10)
    assert found.shape == (3, 3) and found[:, 0].tolist() == [1, 2, 3]
    assert store.search(vecs[:0], 5)[1].shape == (0, 3)
    with pytest.raises(ValueError):
        store.search(vecs, -1)


def test_dimension_mismatch_is_refused(build: Builder, rng: np.random.Generator) -> None:
    store = build([1], _unit(rng, 1))
    with pytest.raises(ValueError, match="shape"):
        store.upsert([2], _unit(rng, 1, DIM + 1))
    with pytest.raises(ValueError, match="shape"):
        store.search(_unit(rng, 1, DIM - 1), 1)
    with pytest.raises(ValueError):
        store.upsert([2, 3], _unit(rng, 1))  # two ids, one vector
    assert store.ids().tolist() == [1]  # nothing stored changed


def test_persists_and_reopens(
    kind: str, backend: VectorBackend, model: str, rng: np.random.Generator, request: pytest.FixtureRequest
) -> None:
    ids = [4, 8, 15, 16, 23, 42]
    vecs = _unit(rng, len(ids))
    store = backend.build("projects", model, ids, vecs)
    extra = _unit(rng, 1)
    store.upsert([99], extra)  # an edit after the build
    store.save()
    queries = _unit(rng, 3)
    before = store.search(queries, 4)
    backend.close()
    # A new process would start from the database's vectors (the edit included) and reopen.
    again: VectorBackend
    if isinstance(backend, FaissBackend):
        again = FaissBackend(backend.directory)
    else:
        again = MilvusBackend(request.getfixturevalue("milvus_uri"))
    try:
        reopened, problem, reused = again.open("projects", model, [*ids, 99], np.vstack([vecs, extra]))
        assert reopened is not None and problem is None and reused
        assert reopened.kind == kind
        np.testing.assert_array_equal(reopened.search(queries, 4)[1], before[1])
        np.testing.assert_allclose(reopened.search(queries, 4)[0], before[0], atol=1e-6)
        if kind == "milvus":
            assert reopened.remote_count() == len(ids) + 1  # the rows really are in the collection
    finally:
        again.close()


def test_open_follows_the_database(backend: VectorBackend, model: str, rng: np.random.Generator) -> None:
    """Opened against other vectors than it holds, a store is never used as is: it ends up holding exactly
    the database's vectors (FAISS: refused, then rebuilt; Milvus: only the differing rows rewritten)."""
    vecs = _unit(rng, 4)
    backend.build("institutions", model, [1, 2, 3, 4], vecs)
    changed = vecs.copy()
    changed[1] = _unit(rng, 1)[0]
    db_ids, db_vecs = [2, 3, 4, 5], np.vstack([changed[1:], _unit(rng, 1)])  # 1 gone, 2 changed, 5 new
    store, problem, reused = backend.open("institutions", model, db_ids, db_vecs)
    if store is None:
        assert problem and not reused
        store = backend.build("institutions", model, db_ids, db_vecs)
    assert not reused
    assert store.ids().tolist() == db_ids
    np.testing.assert_array_equal(store.vectors_for(db_ids), db_vecs)
    _s, found = store.search(db_vecs, 1)
    assert found[:, 0].tolist() == db_ids
    if isinstance(store, stores.MilvusStore):
        assert store.remote_count() == 4
    # A rebuild from the database replaces whatever was there.
    rebuilt = backend.build("institutions", model, [7], db_vecs[:1])
    assert rebuilt.ids().tolist() == [7] and rebuilt.search(db_vecs[:1], 5)[1].tolist() == [[7]]
    # ... even when the width changed (another layout: the collection is created anew)
    wider = _unit(rng, 2, DIM + 4)
    rebuilt = backend.build("institutions", model, [8, 9], wider)
    assert rebuilt.dim == DIM + 4 and rebuilt.search(wider, 1)[1].tolist() == [[8], [9]]


def test_same_top10_on_both_stores(milvus_uri: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(384)
    n, dim = 2000, 384
    ids = rng.choice(10**6, size=n, replace=False).astype(np.int64)
    vecs = _unit(rng, n, dim)
    queries = _unit(rng, 20, dim)
    faiss_store = FaissBackend(tmp_path).build("projects", "top10", list(ids), vecs)
    milvus = MilvusBackend(milvus_uri)
    try:
        milvus_store = milvus.build("projects", "top10", list(ids), vecs)
        f_scores, f_ids = faiss_store.search(queries, 10)
        m_scores, m_ids = milvus_store.search(queries, 10)
        np.testing.assert_array_equal(m_ids, f_ids)
        np.testing.assert_allclose(m_scores, f_scores, atol=1e-5)
        allowed = set(ids[::3].tolist())
        np.testing.assert_array_equal(
            milvus_store.search(queries, 10, allowed)[1], faiss_store.search(queries, 10, allowed)[1]
        )
    finally:
        milvus.close()


def test_setting_is_parsed_and_checked(tmp_path: Path) -> None:
    assert parse_store_setting(None, tmp_path).kind == "faiss"
    assert parse_store_setting(" FAISS ", tmp_path).kind == "faiss"
    lite = parse_store_setting("milvus:instance/vectors.db", tmp_path / "instance")
    assert lite.lite and lite.uri == str((tmp_path / "instance" / "vectors.db").resolve())
    assert parse_store_setting("milvus:vectors.db", tmp_path / "instance") == lite
    server = parse_store_setting("milvus:http://10.0.0.5:19530", tmp_path)
    assert server.kind == "milvus" and server.uri == "http://10.0.0.5:19530" and not server.lite
    for bad in ("milvus", "milvus:", "milvus:ftp://x", "milvus:vectors.sqlite", "elastic:x", 3):
        with pytest.raises(ValueError, match="MATCH_VECTOR_STORE"):
            parse_store_setting(bad, tmp_path)
    name = collection_name("projects", "e5:intfloat/multilingual-e5-small")
    assert name.startswith("match_projects_e5_") and name.replace("_", "").isalnum()
    assert name != collection_name("projects", "e5:intfloat/multilingual-e5-base")
