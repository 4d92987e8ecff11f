"""The candidate stage: the IVF index above its size threshold finds what the exact search finds."""

from __future__ import annotations

import gc

import numpy as np

from embeddings import VectorIndex
from matching.candidates import AnnIndex


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(0, 20, size=n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall(exact: VectorIndex, ann: AnnIndex, queries: np.ndarray) -> float:
    _s, want = exact.search(queries, 50)
    _s, got = ann.search(queries, 50)
    return float(
        np.mean([len(set(w) & set(g)) / 50 for w, g in zip(want.tolist(), got.tolist(), strict=True)])
    )


def _edits_reach(exact: VectorIndex, ann: AnnIndex, target: np.ndarray) -> None:
    """A moved vector is found at its new place in the copy, a removed one never."""
    exact.add([5], target.reshape(1, -1))
    ann.upsert([5], target.reshape(1, -1))
    _s, found = ann.search(target.reshape(1, -1), 1)
    assert found[0, 0] == 5
    ann.remove([5])
    _s, found = ann.search(target.reshape(1, -1), 50)
    assert 5 not in found[0].tolist()


def test_flat_below_threshold_ivf_above_with_high_recall_and_edits() -> None:
    vecs = _clustered(4000)
    ids = np.arange(1, 4001, dtype=np.int64)
    exact = VectorIndex.build(ids, vecs)
    small = AnnIndex(exact, min_size=10_000)
    small.rebuild()
    assert small.kind == "flat"
    ann = AnnIndex(exact, min_size=1000)
    ann.rebuild()
    assert ann.kind == "ivf"
    assert _recall(exact, ann, vecs[:50] + 0.01) >= 0.95
    _edits_reach(exact, ann, _clustered(1, seed=7)[0])
    del ann
    gc.collect()  # the index and its quantizer are freed once (no double free)


def test_vectors_without_structure_get_the_half_precision_scan_with_measured_recall() -> None:
    # Isotropic random vectors: IVF would probe most lists for recall@50, so the copy is the fp16 scan.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 64))
    vecs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(1, 3001, dtype=np.int64)
    exact = VectorIndex.build(ids, vecs)
    ann = AnnIndex(exact, min_size=1000)
    ann.rebuild()
    assert ann.kind == "flat-fp16"
    assert ann.nprobe is None
    assert ann.measured_recall is not None and ann.measured_recall >= 0.98
    assert _recall(exact, ann, vecs[100:140]) >= 0.98
    _edits_reach(exact, ann, vecs[7] * -1.0)  # edits reach the scan too


def test_the_copy_is_saved_once_and_mapped_by_the_next_process(tmp_path) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3000, 64))
    vecs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(1, 3001, dtype=np.int64)
    exact = VectorIndex.build(ids, vecs)
    first = AnnIndex(exact, min_size=1000, folder=tmp_path)
    first.rebuild()
    assert first.kind == "flat-fp16" and not first.mapped
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2 and saved[0].startswith("ann-") and saved[0].endswith(".faiss")
    # Another worker over the same vectors maps the saved copy: same kind, recall and answers.
    second = AnnIndex(exact, min_size=1000, folder=tmp_path)
    second.rebuild()
    assert second.mapped and second.kind == "flat-fp16"
    assert second.measured_recall == first.measured_recall
    queries = vecs[:20]
    assert np.array_equal(first.search(queries, 50)[1], second.search(queries, 50)[1])
    # Its first edit makes a private copy; the saved file is left as it was.
    target = -vecs[3]
    exact.add([4], target.reshape(1, -1))
    second.upsert([4], target.reshape(1, -1))
    assert not second.mapped
    assert second.search(target.reshape(1, -1), 1)[1][0, 0] == 4
    # Changed vectors: a new copy is built and the older file dropped.
    third = AnnIndex(exact, min_size=1000, folder=tmp_path)
    third.rebuild()
    assert not third.mapped and sorted(p.name for p in tmp_path.iterdir()) != saved
    assert len(list(tmp_path.iterdir())) == 2
    # A damaged saved copy is never used: it is built again.
    faiss_file = next(tmp_path.glob("ann-*.faiss"))
    faiss_file.write_bytes(faiss_file.read_bytes()[:-16] + b"\0" * 16)
    fourth = AnnIndex(exact, min_size=1000, folder=tmp_path)
    fourth.rebuild()
    assert not fourth.mapped and fourth.kind == "flat-fp16"
