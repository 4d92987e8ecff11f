"""BM25 over jieba tokens with in-place upsert/remove and scoring restricted to allowed ids.

bm25s builds an immutable index, which would mean a full rebuild on every edited profile; this
small dict-of-postings index keeps documents editable and turns the postings of the query's terms
into numpy arrays only at query time (cached per term until a document holding it changes).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["LexicalIndex", "clean_tokens", "default_tokenizer"]

Tokenizer = Callable[[str], list[str]]
_TOKEN_CACHE_SIZE = 4096  # texts; oldest evicted first


def _is_word(token: str) -> bool:
    """Return True for tokens holding a letter, digit or CJK character (not punctuation or space)."""
    return any(ch.isalnum() for ch in token)


def clean_tokens(tokens: Iterable[str]) -> list[str]:
    """Lower-case tokens and drop whitespace and punctuation."""
    return [t.strip().lower() for t in tokens if t.strip() and _is_word(t)]


def default_tokenizer() -> Tokenizer:
    """Return embeddings.tokenize (jieba with the domain dictionary)."""
    from embeddings import tokenize

    return tokenize


class LexicalIndex:
    """An editable Okapi BM25 index of integer-keyed documents.

    Args:
        tokenizer: text -> tokens; defaults to ``embeddings.tokenize``.
        k1: term-frequency saturation.
        b: document-length normalisation.
        max_query_terms: long queries (a whole institution profile) keep only their highest-idf
            terms, which is both faster and less noisy than scoring every common word.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        max_query_terms: int = 48,
    ) -> None:
        self.tokenizer = tokenizer
        self.k1 = k1
        self.b = b
        self.max_query_terms = max_query_terms
        self._tokenize_fn: Tokenizer = tokenizer or default_tokenizer()
        self._postings: dict[str, dict[int, int]] = {}
        self._docs: dict[int, Counter[str]] = {}
        self._lengths: dict[int, int] = {}
        self._total_len = 0
        self._arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]] = {}
        self._lock = threading.RLock()
        self._token_cache: dict[str, tuple[str, ...]] = {}

    def tokenize(self, text: str) -> list[str]:
        """Return the cleaned tokens of a text (cached: profiles are tokenized again at query time)."""
        cached = self._token_cache.get(text)
        if cached is None:
            cached = tuple(clean_tokens(self._tokenize_fn(text or "")))
            with self._lock:
                if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
                    self._token_cache.pop(next(iter(self._token_cache)), None)
                self._token_cache[text] = cached
        return list(cached)

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._docs

    def ids(self) -> list[int]:
        """Return the indexed document ids."""
        return list(self._docs)

    def terms(self, doc_id: int) -> Counter[str]:
        """Return the term counts of one document (empty when absent)."""
        return Counter(self._docs.get(doc_id, {}))

    def upsert(self, doc_id: int, text: str | Sequence[str]) -> None:
        """Index a document under doc_id, replacing any previous version."""
        tokens = self.tokenize(text) if isinstance(text, str) else clean_tokens(text)
        counts = Counter(tokens)
        with self._lock:
            self._remove_locked(doc_id)
            self._docs[doc_id] = counts
            self._lengths[doc_id] = sum(counts.values())
            self._total_len += self._lengths[doc_id]
            for term, tf in counts.items():
                self._postings.setdefault(term, {})[doc_id] = tf
                self._arrays.pop(term, None)

    def remove(self, doc_id: int) -> None:
        """Drop a document; unknown ids are ignored."""
        with self._lock:
            self._remove_locked(doc_id)

    def _remove_locked(self, doc_id: int) -> None:
        old = self._docs.pop(doc_id, None)
        if old is None:
            return
        self._total_len -= self._lengths.pop(doc_id, 0)
        for term in old:
            posting = self._postings.get(term)
            if posting is not None:
                posting.pop(doc_id, None)
                if not posting:
                    del self._postings[term]
            self._arrays.pop(term, None)

    def doc_share(self, term: str) -> float:
        """Return the fraction of indexed documents that contain a term (0 when the index is empty)."""
        n = len(self._docs)
        return len(self._postings.get(term, ())) / n if n else 0.0

    def idf(self, term: str) -> float:
        """Return the BM25 idf of a term (0 for unknown terms)."""
        n = len(self._docs)
        df = len(self._postings.get(term, ()))
        if df == 0:
            return 0.0
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def _query_terms(self, query: str | Sequence[str]) -> list[str]:
        tokens = self.tokenize(query) if isinstance(query, str) else clean_tokens(query)
        terms = [t for t in dict.fromkeys(tokens) if t in self._postings]
        if len(terms) > self.max_query_terms:
            terms = sorted(terms, key=lambda t: -self.idf(t))[: self.max_query_terms]
        return terms

    def _posting_arrays(
        self, term: str
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        cached = self._arrays.get(term)
        if cached is None:
            posting = self._postings[term]
            ids = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            lens = np.array([self._lengths[i] for i in posting], dtype=np.float64)
            cached = (ids, tfs, lens)
            self._arrays[term] = cached
        return cached

    def _score_arrays(
        self, query: str | Sequence[str], allowed_ids: Collection[int] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Return (ids, scores) of the documents matching the query among allowed_ids."""
        with self._lock:
            terms = self._query_terms(query)
            if not terms or not self._docs:
                return np.empty(0, dtype=np.int64), np.empty(0)
            avgdl = max(self._total_len / len(self._docs), 1e-9)
            allowed = None
            if allowed_ids is not None:
                allowed = np.fromiter(allowed_ids, dtype=np.int64, count=len(allowed_ids))
            all_ids, all_scores = [], []
            for term in terms:
                ids, tfs, lens = self._posting_arrays(term)
                if allowed is not None:
                    keep = np.isin(ids, allowed)
                    ids, tfs, lens = ids[keep], tfs[keep], lens[keep]
                if ids.size == 0:
                    continue
                denom = tfs + self.k1 * (1.0 - self.b + self.b * lens / avgdl)
                all_ids.append(ids)
                all_scores.append(self.idf(term) * tfs * (self.k1 + 1.0) / denom)
        if not all_ids:
            return np.empty(0, dtype=np.int64), np.empty(0)
        uniq, inverse = np.unique(np.concatenate(all_ids), return_inverse=True)
        return uniq, np.bincount(inverse, weights=np.concatenate(all_scores))

    def score(
        self, query: str | Sequence[str], allowed_ids: Collection[int] | None = None
    ) -> dict[int, float]:
        """Return BM25 scores of the documents matching the query, restricted to allowed_ids.

        Documents outside allowed_ids are never scored; documents without a query term are absent.
        """
        ids, scores = self._score_arrays(query, allowed_ids)
        return dict(zip(ids.tolist(), scores.tolist(), strict=True))

    def top(
        self, query: str | Sequence[str], k: int, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """Return the k best (id, score) pairs, best first (ties by id), among allowed_ids."""
        ids, scores = self._score_arrays(query, allowed_ids)
        if k <= 0 or ids.size == 0:
            return []
        if ids.size > k:
            # Partial selection first: sorting every matching document would dominate at 100k.
            part = np.argpartition(-scores, k - 1)[:k]
            cutoff = scores[part].min()
            part = np.flatnonzero(scores >= cutoff)  # keep ties at the cut so the order is exact
            ids, scores = ids[part], scores[part]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[j]), float(scores[j])) for j in order]
