"""The embedder contract shared by every backend, and the text hash stored next to each vector."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Embedder", "l2_normalize", "text_hash"]


@runtime_checkable
class Embedder(Protocol):
    """Turn texts into L2-normalised float32 vectors of shape (n, dim).

    ``name`` identifies the model (e.g. ``"e5:multilingual-e5-small"``); together with
    :func:`text_hash` it decides whether a stored vector is still valid.
    """

    name: str
    dim: int

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Encode stored records (projects, institutions, needs) as an (n, dim) array."""
        ...

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Encode search queries as an (n, dim) array."""
        ...


def text_hash(text: str) -> str:
    """Return the SHA-256 hex digest of the UTF-8 encoded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def l2_normalize(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    """Return the rows of a 2-D array scaled to unit length, as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (n, dim), got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    # A zero row stays zero rather than turning into NaNs.
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)
