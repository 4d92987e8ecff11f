"""Saved vector indexes are opened memory-mapped (shared between worker processes) and stay editable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings import VectorIndex

DIM = 16
MODEL = "test-model"


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_open_maps_the_saved_vectors_and_answers_like_the_original(tmp_path: Path) -> None:
    vecs = _vectors(200)
    ids = np.arange(200, dtype=np.int64) * 7 + 3
    original = VectorIndex.build(ids, vecs)
    original.save(tmp_path, "projects", MODEL)
    opened, why = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert why is None and opened is not None
    assert opened.mapped and not original.mapped
    q = vecs[:5]
    assert np.array_equal(opened.search(q, 10)[1], original.search(q, 10)[1])
    assert np.array_equal(opened.vectors_for(ids[:3]), vecs[:3])


def test_a_mapped_index_is_copied_on_its_first_edit_and_the_file_is_untouched(tmp_path: Path) -> None:
    vecs = _vectors(50)
    ids = np.arange(50, dtype=np.int64)
    VectorIndex.build(ids, vecs).save(tmp_path, "projects", MODEL)
    before = (tmp_path / "projects.faiss").read_bytes()
    opened, _ = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert opened is not None
    extra = _vectors(1, seed=5)
    opened.add([1000], extra)
    assert not opened.mapped
    assert opened.remove([0, 1]) == 2
    assert len(opened) == 49 and 1000 in opened and 0 not in opened
    assert opened.search_one(extra[0], 1)[0][0] == 1000
    assert (tmp_path / "projects.faiss").read_bytes() == before  # other processes still map it
    again, why = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert why is None and again is not None and len(again) == 50


def test_a_truncated_file_is_refused_before_it_is_mapped(tmp_path: Path) -> None:
    VectorIndex.build(np.arange(30), _vectors(30)).save(tmp_path, "projects", MODEL)
    path = tmp_path / "projects.faiss"
    path.write_bytes(path.read_bytes()[:-100])
    index, why = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert index is None and why == "checksum differs"
