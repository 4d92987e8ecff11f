"""Index files a crash or an operator damaged are never trusted: open() says why, save() is all or nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

import embeddings.index as index_module
from embeddings import VectorIndex

DIM = 8
MODEL = "e5:multilingual-e5-small"


@pytest.fixture
def saved(tmp_path: Path) -> VectorIndex:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(np.arange(100, 120), vectors)
    index.save(tmp_path, "projects", MODEL)
    return index


def _manifest(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "projects.manifest.json").read_text("utf-8"))


def test_open_returns_the_index_and_no_reason_when_intact(saved: VectorIndex, tmp_path: Path) -> None:
    index, reason = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert reason is None and index is not None
    np.testing.assert_array_equal(index.ids(), saved.ids())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("delete_index", "missing"),
        ("delete_manifest", "missing"),
        ("truncate", "checksum differs"),
        ("bad_manifest", "unreadable"),
        ("other_model", "model differs"),
        ("other_dim", "dim differs"),
        ("other_format", "format differs"),
        ("ids_lie", "unusable"),
    ],
)
def test_open_says_why_a_saved_index_is_not_trusted(
    saved: VectorIndex, tmp_path: Path, damage: str, reason: str
) -> None:
    index_file, manifest_file = VectorIndex.paths(tmp_path, "projects")
    manifest = _manifest(tmp_path)
    if damage == "delete_index":
        index_file.unlink()
    elif damage == "delete_manifest":
        manifest_file.unlink()
    elif damage == "truncate":
        index_file.write_bytes(index_file.read_bytes()[:-7])
    elif damage == "bad_manifest":
        manifest_file.write_text('{"model": ', "utf-8")
    else:
        if damage == "other_model":
            manifest["model"] = "st:another-model"
        elif damage == "other_dim":
            manifest["dim"] = DIM * 2
        elif damage == "other_format":
            manifest["format"] = 99
        elif damage == "ids_lie":
            manifest["ids_sha256"] = "0" * 64
        manifest_file.write_text(json.dumps(manifest), "utf-8")
    index, why = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert index is None and why is not None and why.startswith(reason)
    assert VectorIndex.load(tmp_path, "projects", MODEL, DIM) is None


def test_a_crash_between_the_two_writes_is_detected(
    saved: VectorIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index file is replaced first: a crash before the manifest leaves a mismatch, not a wrong index."""
    real = index_module.write_atomically

    def crash_on_manifest(path: Path, chunks: Iterable[bytes]) -> str:
        if path.name.endswith(".manifest.json"):
            raise OSError("power cut")
        return real(path, chunks)

    saved.remove([100, 101])
    monkeypatch.setattr(index_module, "write_atomically", crash_on_manifest)
    with pytest.raises(OSError):
        saved.save(tmp_path, "projects", MODEL)
    monkeypatch.undo()
    index, why = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert index is None and why == "checksum differs"


def test_a_crash_while_writing_keeps_the_previous_pair_and_leaves_no_temporary_file(
    saved: VectorIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail_replace(_src: object, _dst: object) -> None:
        raise OSError("disk full")

    saved.remove([100])
    monkeypatch.setattr(index_module.os, "replace", fail_replace)
    with pytest.raises(OSError):
        saved.save(tmp_path, "projects", MODEL)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "old files intact, no .tmp left"
    index, why = VectorIndex.open(tmp_path, "projects", MODEL, DIM)
    assert why is None and index is not None and 100 in index
