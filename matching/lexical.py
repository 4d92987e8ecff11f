"""BM25 over jieba tokens with in-place upsert/remove and scoring restricted to allowed ids.

bm25s builds an immutable index, which would mean a full rebuild on every edited profile; this
small dict-of-postings index keeps documents editable and turns the postings of the query's terms
into numpy arrays only at query time (cached per term until a document holding it changes).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["LexicalIndex", "clean_tokens", "default_tokenizer"]

Tokenizer = Callable[[str], list[str]]
_SERIALS = itertools.count()
_WEIGHT_CACHE_TERMS = 20_000  # terms whose BM25 weight arrays are kept between queries
_TOKEN_CACHE_SIZE = 32_768  # texts; oldest evicted first (clauses of shown records recur)


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
        self._hashes: dict[int, int] = {}  # hash of the text each document was indexed from
        self._total_len = 0
        self._arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]] = {}
        # Dense rows of the documents: scores accumulate in one array indexed by row (no sort).
        self._row: dict[int, int] = {}
        self._row_ids = np.full(64, -1, dtype=np.int64)
        self._free_rows: list[int] = []
        self._n_rows = 0
        self._lock = threading.RLock()
        self._token_cache: dict[str, tuple[str, ...]] = {}
        self._idf_cache: dict[str, float] = {}  # cleared on every edit (the idf depends on n)
        # Per-term BM25 weights with the mean length they were computed at; cleared on every edit.
        self._weights: dict[str, tuple[float, NDArray[np.int64], NDArray[np.float64]]] = {}
        self._last: tuple[object, NDArray[np.float64]] | None = None  # last unrestricted query's sums
        #: Counts edits: anything derived from the idf (cached phrases) is stale once it moves.
        self.generation = 0
        #: Unique per index in this process (an id() can be reused after collection).
        self.serial = next(_SERIALS)

    def tokenize(self, text: str, *, cache: bool = True) -> list[str]:
        """Return the cleaned tokens of a text (cached: profiles are tokenized again at query time).

        cache=False leaves the cache as it is (bulk work such as indexing every record at load).
        """
        cached = self._token_cache.get(text)
        if cached is None:
            cached = tuple(clean_tokens(self._tokenize_fn(text or "")))
            if not cache:
                return list(cached)
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

    def doc_tokens(self, doc_id: int, text: str) -> tuple[str, ...] | None:
        """Return the distinct tokens of a document in first-occurrence order, when indexed from text.

        The same as ``dict.fromkeys(self.tokenize(text))`` without tokenizing again (a record's own
        document is a ranking query and a reason's source); None when doc_id holds another text.
        """
        with self._lock:
            counts = self._docs.get(doc_id)
            if counts is None or self._hashes.get(doc_id) != hash(text):
                return None
            return tuple(counts)

    def as_query(self, doc_id: int, text: str) -> str | tuple[str, ...]:
        """Return a document's text as a query: its stored tokens when indexed from it, else the text."""
        tokens = self.doc_tokens(doc_id, text)
        return text if tokens is None else tokens

    def upsert(self, doc_id: int, text: str | Sequence[str]) -> None:
        """Index a document under doc_id, replacing any previous version."""
        tokens = self.tokenize(text) if isinstance(text, str) else clean_tokens(text)
        counts = Counter(tokens)
        with self._lock:
            self._remove_locked(doc_id)
            if isinstance(text, str):
                self._hashes[doc_id] = hash(text)
            self._idf_cache.clear()
            self._weights.clear()
            self.generation += 1
            self._last = None
            self._assign_row(doc_id)
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

    def _assign_row(self, doc_id: int) -> None:
        row = self._free_rows.pop() if self._free_rows else self._n_rows
        if row == self._n_rows:
            self._n_rows += 1
            if row >= self._row_ids.shape[0]:
                grown = np.full(2 * self._row_ids.shape[0], -1, dtype=np.int64)
                grown[: self._row_ids.shape[0]] = self._row_ids
                self._row_ids = grown
        self._row[doc_id] = row
        self._row_ids[row] = doc_id

    def _remove_locked(self, doc_id: int) -> None:
        old = self._docs.pop(doc_id, None)
        if old is None:
            return
        self._idf_cache.clear()
        self._weights.clear()
        self.generation += 1
        self._last = None
        row = self._row.pop(doc_id)
        self._row_ids[row] = -1
        self._free_rows.append(row)
        self._total_len -= self._lengths.pop(doc_id, 0)
        self._hashes.pop(doc_id, None)
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
        cached = self._idf_cache.get(term)
        if cached is not None:
            return cached
        n = len(self._docs)
        df = len(self._postings.get(term, ()))
        value = 0.0 if df == 0 else math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        if len(self._idf_cache) < 1_000_000:
            self._idf_cache[term] = value
        return value

    def _query_terms(self, query: str | Sequence[str]) -> list[str]:
        tokens = self.tokenize(query) if isinstance(query, str) else clean_tokens(query)
        terms = [t for t in dict.fromkeys(tokens) if t in self._postings]
        if len(terms) > self.max_query_terms:
            terms = sorted(terms, key=lambda t: -self.idf(t))[: self.max_query_terms]
        return terms

    def query_terms(self, query: str | Sequence[str]) -> list[str]:
        """Return the indexed terms a query is scored on (its highest-idf ones when it is long)."""
        with self._lock:
            return self._query_terms(query)

    def doc_query_terms(self, doc_id: int, other: LexicalIndex) -> list[str]:
        """Return the terms of another index's query made of this index's document doc_id.

        The same as ``other.query_terms(text)`` for the text the document was indexed from (its
        tokens are already clean and in first-occurrence order), without tokenizing it again.
        """
        with self._lock:
            tokens = list(self._docs.get(doc_id, ()))
        with other._lock:
            terms = [t for t in tokens if t in other._postings]
            if len(terms) > other.max_query_terms:
                terms = sorted(terms, key=lambda t: -other.idf(t))[: other.max_query_terms]
            return terms

    def weight_matrix(self, doc_ids: Sequence[int]) -> tuple[dict[str, int], Any]:
        """Return (term -> column, sparse (len(doc_ids), n_terms) BM25 weights) of the given documents.

        A query's BM25 score of document row r is the sum of row r over the query's terms
        (:meth:`query_terms`), the same number :meth:`score` gives: scoring many queries against
        the same documents is then one sparse matrix product.
        """
        from scipy.sparse import csr_matrix

        with self._lock:
            avgdl = max(self._total_len / len(self._docs), 1e-9) if self._docs else 1.0
            cols: dict[str, int] = {}
            idf: dict[str, float] = {}
            rows: list[int] = []
            idx: list[int] = []
            vals: list[float] = []
            for r, doc in enumerate(doc_ids):
                counts = self._docs.get(doc)
                if not counts:
                    continue
                norm = self.k1 * (1.0 - self.b + self.b * self._lengths[doc] / avgdl)
                for term, tf in counts.items():
                    j = cols.setdefault(term, len(cols))
                    w = idf.get(term)
                    if w is None:
                        w = idf[term] = self.idf(term)
                    rows.append(r)
                    idx.append(j)
                    vals.append(w * tf * (self.k1 + 1.0) / (tf + norm))
        matrix = csr_matrix((vals, (rows, idx)), shape=(len(doc_ids), len(cols)), dtype=np.float64)
        return cols, matrix

    def _posting_arrays(
        self, term: str
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        cached = self._arrays.get(term)
        if cached is None:
            posting = self._postings[term]
            row = self._row
            ids = np.fromiter((row[i] for i in posting), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            lens = np.array([self._lengths[i] for i in posting], dtype=np.float64)
            cached = (ids, tfs, lens)
            self._arrays[term] = cached
        return cached

    def _term_weights(self, term: str, avgdl: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Return (rows, BM25 weights) of a term's documents, cached until an edit changes them."""
        cached = self._weights.get(term)
        if cached is not None and cached[0] == avgdl:
            return cached[1], cached[2]
        rows, tfs, lens = self._posting_arrays(term)
        denom = tfs + self.k1 * (1.0 - self.b + self.b * lens / avgdl)
        weights = self.idf(term) * tfs * (self.k1 + 1.0) / denom
        if len(self._weights) >= _WEIGHT_CACHE_TERMS:
            self._weights.pop(next(iter(self._weights)), None)
        self._weights[term] = (avgdl, rows, weights)
        return rows, weights

    def _score_arrays(
        self, query: str | Sequence[str], allowed_ids: Collection[int] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Return (ids, scores) of the documents matching the query among allowed_ids."""
        key = query if isinstance(query, str) else tuple(query)
        with self._lock:
            last = self._last
            if allowed_ids is not None and last is not None and last[0] == key:
                # The same query scored over every document a moment ago (the candidate stage):
                # read the allowed documents' sums from it (the same numbers, in the same order).
                rows = np.fromiter((self._row[i] for i in allowed_ids if i in self._row), dtype=np.int64)
                rows = rows[last[1][rows] > 0]
                return self._row_ids[rows].copy(), last[1][rows]
            terms = self._query_terms(query)
            if not terms or not self._docs:
                return np.empty(0, dtype=np.int64), np.empty(0)
            avgdl = max(self._total_len / len(self._docs), 1e-9)
            allowed = None
            if allowed_ids is not None:
                allowed = np.zeros(self._n_rows, dtype=bool)
                row = self._row
                allowed[[row[i] for i in allowed_ids if i in row]] = True
            all_rows, all_scores = [], []
            for term in terms:
                rows, weights = self._term_weights(term, avgdl)  # rows, not ids (see _assign_row)
                if allowed is not None:
                    keep = allowed[rows]
                    rows, weights = rows[keep], weights[keep]
                if rows.size == 0:
                    continue
                all_rows.append(rows)
                all_scores.append(weights)
            if not all_rows:
                return np.empty(0, dtype=np.int64), np.empty(0)
            acc: NDArray[np.float64] = np.bincount(
                np.concatenate(all_rows), weights=np.concatenate(all_scores), minlength=self._n_rows
            ).astype(np.float64, copy=False)
            if allowed is None:
                self._last = (key, acc)
            hit = np.flatnonzero(acc > 0)
            return self._row_ids[hit].copy(), acc[hit]

    def score(
        self, query: str | Sequence[str], allowed_ids: Collection[int] | None = None
    ) -> dict[int, float]:
        """Return BM25 scores of the documents matching the query, restricted to allowed_ids.

        Documents outside allowed_ids are never scored; documents without a query term are absent.
        """
        ids, scores = self._score_arrays(query, allowed_ids)
        order = np.argsort(ids, kind="stable")  # ascending ids, as callers iterate in order
        return dict(zip(ids[order].tolist(), scores[order].tolist(), strict=True))

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
