"""BM25 over jieba tokens: a saved, memory-mapped base of documents plus in-place edits.

A bulk load (:meth:`LexicalIndex.load_documents`) tokenizes the distinct texts once, in one batch,
and builds numpy arrays: a forward (document -> terms) and an inverted (term -> documents) sparse
matrix, the document lengths, ids and the SHA-256 of each document's text. :meth:`LexicalIndex.save`
writes them as one file plus a checksummed manifest (keyed by the tokenizer's version);
:meth:`LexicalIndex.open` maps that file read-only, so worker processes share one copy in the page
cache, and :meth:`LexicalIndex.sync` re-tokenizes only the documents whose text differs from the
saved one. Edits never touch the arrays: an edited or removed base document is masked out, and
edited documents live in small dict-of-postings that are merged in at query time (and into the
base on the next save). The postings of a query's terms become numpy arrays at query time
(cached per term until a document holding it changes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import mmap
import os
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.index import write_atomically

__all__ = ["LEXICAL_FORMAT", "LexicalIndex", "clean_tokens", "default_tokenizer", "text_digest"]

logger = logging.getLogger(__name__)

Tokenizer = Callable[[str], list[str]]
_SERIALS = itertools.count()
_WEIGHT_CACHE_TERMS = 20_000  # terms whose BM25 weight arrays are kept between queries
_ARRAY_CACHE_TERMS = 20_000  # terms whose merged posting arrays are kept between queries
_TOKEN_CACHE_SIZE = 32_768  # texts; oldest evicted first (clauses of shown records recur)
#: Version of the saved file layout; another version is rebuilt.
LEXICAL_FORMAT = 1
#: A sync re-tokenizes changed documents one by one up to this share of the index, else rebuilds.
_SYNC_REBUILD_SHARE = 0.3
_ALIGN = 64
_EMPTY_DIGEST = b""
_BULK_CHUNK = 50_000  # texts tokenized per batch by load_documents


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


def text_digest(text: str) -> bytes:
    """Return the SHA-256 of a document's text (what a saved document is checked against)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


# ----------------------------------------------------------------------------------------- the base
_ARRAYS: tuple[tuple[str, str], ...] = (
    ("ids", "<i8"),  # document ids, ascending (row r holds ids[r])
    ("digests", "|u1"),  # (n, 32) SHA-256 of each document's text
    ("lengths", "<i4"),  # tokens per document
    ("d_ptr", "<i8"),  # forward CSR: row r's terms are d_terms[d_ptr[r]:d_ptr[r + 1]]
    ("d_terms", "<i4"),  # term ids in first-occurrence order
    ("d_tfs", "<i4"),
    ("t_ptr", "<i8"),  # inverted CSR: term t's rows are p_rows[t_ptr[t]:t_ptr[t + 1]], ascending
    ("p_rows", "<i4"),
    ("p_tfs", "<i4"),
)


@dataclass(frozen=True)
class _Base:
    """The immutable arrays of a bulk-loaded or opened set of documents (possibly memory-mapped)."""

    ids: NDArray[np.int64]
    digests: NDArray[np.uint8]
    lengths: NDArray[np.int32]
    d_ptr: NDArray[np.int64]
    d_terms: NDArray[np.int32]
    d_tfs: NDArray[np.int32]
    t_ptr: NDArray[np.int64]
    p_rows: NDArray[np.int32]
    p_tfs: NDArray[np.int32]
    terms: list[str]
    vocab: dict[str, int]
    mapped: bool = False

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> _Base:
        none = np.empty(0, np.int64)
        return cls.build(none, np.empty((0, 32), np.uint8), none, np.empty(0, np.int32), none, [])

    @classmethod
    def build(
        cls,
        ids: NDArray[np.int64],
        digests: NDArray[np.uint8],
        sizes: NDArray[np.int64],
        d_terms: NDArray[np.int32],
        d_tfs: NDArray[Any],
        terms: list[str],
    ) -> _Base:
        """Return the arrays of documents in any id order: document j holds sizes[j] consecutive
        (term id, count) entries of d_terms/d_tfs, in first-occurrence order."""
        order = np.argsort(ids, kind="stable")
        starts = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(sizes, out=starts[1:])
        new_sizes = np.asarray(sizes, dtype=np.int64)[order]
        d_ptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(new_sizes, out=d_ptr[1:])
        # Each document's run of entries, moved to its row in id order.
        gather = np.repeat(starts[:-1][order] - d_ptr[:-1], new_sizes) + np.arange(int(d_ptr[-1]))
        return cls.from_forward(
            np.ascontiguousarray(ids[order], dtype=np.int64),
            np.ascontiguousarray(digests[order], dtype=np.uint8).reshape(-1, 32),
            d_ptr,
            np.asarray(d_terms, dtype=np.int32)[gather],
            np.asarray(d_tfs, dtype=np.int32)[gather],
            terms,
        )

    @classmethod
    def from_forward(
        cls,
        ids: NDArray[np.int64],
        digests: NDArray[np.uint8],
        d_ptr: NDArray[np.int64],
        d_terms: NDArray[np.int32],
        d_tfs: NDArray[np.int32],
        terms: list[str],
    ) -> _Base:
        """Return the arrays from the forward matrix (rows by ascending id), dropping unused terms."""
        n_terms = len(terms)
        df = np.bincount(d_terms, minlength=n_terms) if n_terms else np.zeros(0, np.int64)
        used = np.flatnonzero(df > 0)
        if len(used) < n_terms:  # terms of no document any more (edited away): renumber the rest
            remap = np.full(n_terms, -1, dtype=np.int32)
            remap[used] = np.arange(len(used), dtype=np.int32)
            d_terms = remap[d_terms]
            terms = [terms[t] for t in used.tolist()]
            df = df[used]
        sizes = np.diff(d_ptr)
        rows = np.repeat(np.arange(len(ids), dtype=np.int32), sizes)
        lengths = np.add.reduceat(d_tfs, d_ptr[:-1][sizes > 0]) if len(d_tfs) else np.zeros(0, np.int64)
        full_lengths = np.zeros(len(ids), dtype=np.int32)
        full_lengths[sizes > 0] = lengths
        order = np.argsort(d_terms, kind="stable")  # by term, rows ascending within a term
        t_ptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(df, out=t_ptr[1:])
        return cls(
            ids=ids,
            digests=digests,
            lengths=full_lengths,
            d_ptr=d_ptr,
            d_terms=np.ascontiguousarray(d_terms, dtype=np.int32),
            d_tfs=np.ascontiguousarray(d_tfs, dtype=np.int32),
            t_ptr=t_ptr,
            p_rows=np.ascontiguousarray(rows[order], dtype=np.int32),
            p_tfs=np.ascontiguousarray(d_tfs[order], dtype=np.int32),
            terms=terms,
            vocab={t: j for j, t in enumerate(terms)},
        )

    def row(self, doc_id: int) -> int:
        """Return the row of doc_id, or -1."""
        n = self.n
        if n == 0:
            return -1
        r = int(np.searchsorted(self.ids, doc_id))
        return r if r < n and int(self.ids[r]) == doc_id else -1

    def counts(self, row: int) -> dict[str, int]:
        """Return the term counts of one row, in first-occurrence order."""
        a, b = int(self.d_ptr[row]), int(self.d_ptr[row + 1])
        terms = self.terms
        return {
            terms[t]: tf for t, tf in zip(self.d_terms[a:b].tolist(), self.d_tfs[a:b].tolist(), strict=True)
        }


# ------------------------------------------------------------------------------------- persistence
def lexical_paths(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Return the (data file, manifest file) of the BM25 index name in directory."""
    base = Path(directory)
    return base / f"{name}.bm25", base / f"{name}.bm25.json"


class LexicalIndex:
    """An editable Okapi BM25 index of integer-keyed documents.

    Args:
        tokenizer: text -> tokens; defaults to ``embeddings.tokenize``.
        k1: term-frequency saturation.
        b: document-length normalisation.
        max_query_terms: long queries (a whole institution profile) keep only their highest-idf
            terms, which is both faster and less noisy than scoring every common word.
        tokenizer_version: what a saved index is keyed on besides the texts (default: the version
            of ``embeddings.tokenize``; a custom tokenizer without one is never saved or opened).
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        max_query_terms: int = 48,
        tokenizer_version: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.k1 = k1
        self.b = b
        self.max_query_terms = max_query_terms
        self._tokenize_fn: Tokenizer = tokenizer or default_tokenizer()
        if tokenizer_version is None and tokenizer is None:
            from embeddings.tokenize import tokenizer_version as version

            tokenizer_version = version()
        self.tokenizer_version = tokenizer_version
        self._lock = threading.RLock()
        self._token_cache: dict[str, tuple[str, ...]] = {}
        #: Counts edits: anything derived from the idf (cached phrases) is stale once it moves.
        self.generation = 0
        #: Unique per index in this process (an id() can be reused after collection).
        self.serial = next(_SERIALS)
        self._set_base(_Base.empty())

    def _set_base(self, base: _Base) -> None:
        """Make base the whole content: no edits on top of it (call under the lock or in __init__)."""
        self._base = base
        self._dead: NDArray[np.bool_] | None = None  # base rows edited or removed since
        self._n_dead = 0
        self._dead_df: Counter[int] = Counter()  # base term id -> dead rows holding it
        # Documents added or edited since the base: dict-of-postings, rows after the base's.
        self._postings: dict[str, dict[int, int]] = {}
        self._docs: dict[int, Counter[str]] = {}
        self._lengths: dict[int, int] = {}
        self._digests: dict[int, bytes] = {}  # SHA-256 of the text each edited document came from
        self._row: dict[int, int] = {}
        self._free_rows: list[int] = []
        self._n_rows = base.n
        self._row_ids = np.full(max(64, base.n + 64), -1, dtype=np.int64)
        self._row_ids[: base.n] = base.ids
        self._total_len = int(base.lengths.sum(dtype=np.int64))
        self._arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]] = {}
        self._idf_cache: dict[str, float] = {}  # cleared on every edit (the idf depends on n)
        self._df_cache: dict[str, int] = {}  # document frequencies asked for, cleared on every edit
        # Per-term BM25 weights with the mean length they were computed at; cleared on every edit.
        self._weights: dict[str, tuple[float, NDArray[np.int64], NDArray[np.float64]]] = {}
        # The last unrestricted query's matching rows (ascending) and their sums.
        self._last: tuple[object, NDArray[np.int64], NDArray[np.float64]] | None = None
        self._edited = False  # anything not in the saved file (see save)
        self.generation += 1

    # -------------------------------------------------------------------------------- tokens
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

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Return the cleaned tokens of many texts, each distinct text (and jieba piece) cut once."""
        distinct = list(dict.fromkeys(texts))
        if self.tokenizer is None:
            from embeddings.tokenize import tokenize_many

            raw = tokenize_many(distinct)
        else:
            raw = [self._tokenize_fn(t or "") for t in distinct]
        by_text = {t: clean_tokens(toks) for t, toks in zip(distinct, raw, strict=True)}
        return [by_text[t] for t in texts]

    # -------------------------------------------------------------------------------- reads
    def _n_docs(self) -> int:
        return self._base.n - self._n_dead + len(self._docs)

    def __len__(self) -> int:
        return self._n_docs()

    def _base_row(self, doc_id: object) -> int:
        """Return the live base row of doc_id, or -1 (call under the lock)."""
        if isinstance(doc_id, bool) or not isinstance(doc_id, (int, np.integer)):
            return -1
        r = self._base.row(int(doc_id))
        if r >= 0 and self._dead is not None and self._dead[r]:
            return -1
        return r

    def __contains__(self, doc_id: object) -> bool:
        with self._lock:
            return doc_id in self._docs or self._base_row(doc_id) >= 0

    def ids(self) -> list[int]:
        """Return the indexed document ids."""
        with self._lock:
            base = self._base.ids
            if self._dead is not None:
                base = base[~self._dead]
            return [*base.tolist(), *self._docs]

    def _counts(self, doc_id: int) -> Mapping[str, int] | None:
        """Return a document's term counts in first-occurrence order, or None (call under the lock)."""
        counts = self._docs.get(doc_id)
        if counts is not None:
            return counts
        r = self._base_row(doc_id)
        return self._base.counts(r) if r >= 0 else None

    def _digest_of(self, doc_id: int) -> bytes | None:
        if doc_id in self._docs:
            return self._digests.get(doc_id)
        r = self._base_row(doc_id)
        return self._base.digests[r].tobytes() if r >= 0 else None

    def terms(self, doc_id: int) -> Counter[str]:
        """Return the term counts of one document (empty when absent)."""
        with self._lock:
            return Counter(self._counts(doc_id) or {})

    def doc_tokens(self, doc_id: int, text: str) -> tuple[str, ...] | None:
        """Return the distinct tokens of a document in first-occurrence order, when indexed from text.

        The same as ``dict.fromkeys(self.tokenize(text))`` without tokenizing again (a record's own
        document is a ranking query and a reason's source); None when doc_id holds another text.
        """
        with self._lock:
            digest = self._digest_of(doc_id)
            if not digest or digest != text_digest(text):
                return None
            counts = self._counts(doc_id)
            return None if counts is None else tuple(counts)

    def as_query(self, doc_id: int, text: str) -> str | tuple[str, ...]:
        """Return a document's text as a query: its stored tokens when indexed from it, else the text."""
        tokens = self.doc_tokens(doc_id, text)
        return text if tokens is None else tokens

    # -------------------------------------------------------------------------------- edits
    def upsert(self, doc_id: int, text: str | Sequence[str]) -> None:
        """Index a document under doc_id, replacing any previous version."""
        tokens = self.tokenize(text) if isinstance(text, str) else clean_tokens(text)
        self._upsert_tokens(doc_id, tokens, text_digest(text) if isinstance(text, str) else _EMPTY_DIGEST)

    def _upsert_tokens(self, doc_id: int, tokens: Sequence[str], digest: bytes) -> None:
        counts = Counter(tokens)
        with self._lock:
            self._remove_locked(doc_id)
            self._changed()
            self._digests[doc_id] = digest
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

    def _changed(self) -> None:
        """Forget what an edit invalidates (call under the lock)."""
        self._idf_cache.clear()
        self._df_cache.clear()
        self._weights.clear()
        self.generation += 1
        self._last = None
        self._edited = True

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
            self._kill_base_row(doc_id)
            return
        self._changed()
        row = self._row.pop(doc_id)
        self._row_ids[row] = -1
        self._free_rows.append(row)
        self._total_len -= self._lengths.pop(doc_id, 0)
        self._digests.pop(doc_id, None)
        for term in old:
            posting = self._postings.get(term)
            if posting is not None:
                posting.pop(doc_id, None)
                if not posting:
                    del self._postings[term]
            self._arrays.pop(term, None)

    def _kill_base_row(self, doc_id: int) -> None:
        """Mask a base document out (it was edited or removed); unknown ids are ignored."""
        r = self._base_row(doc_id)
        if r < 0:
            return
        self._changed()
        base = self._base
        if self._dead is None:
            self._dead = np.zeros(base.n, dtype=bool)
        self._dead[r] = True
        self._n_dead += 1
        self._row_ids[r] = -1
        self._total_len -= int(base.lengths[r])
        a, b = int(base.d_ptr[r]), int(base.d_ptr[r + 1])
        for t in base.d_terms[a:b].tolist():
            self._dead_df[t] += 1
            self._arrays.pop(base.terms[t], None)

    # -------------------------------------------------------------------------------- bulk
    def load_documents(self, docs: Mapping[int, str] | Iterable[tuple[int, str]]) -> None:
        """Replace the whole content with docs (id -> text), tokenizing each distinct text once."""
        items = list(docs.items() if isinstance(docs, Mapping) else docs)
        ids = np.fromiter((int(i) for i, _ in items), dtype=np.int64, count=len(items))
        if len(np.unique(ids)) != len(ids):
            raise ValueError("document ids must not repeat")
        texts = [t for _, t in items]
        del items
        digests = np.frombuffer(b"".join(text_digest(t) for t in texts), dtype=np.uint8).reshape(-1, 32)
        vocab: dict[str, int] = {}
        sizes = array("q")
        d_terms = array("i")
        d_tfs = array("i")
        for start in range(0, len(texts), _BULK_CHUNK):  # in chunks: a million token lists at once is GBs
            for tokens in self.tokenize_many(texts[start : start + _BULK_CHUNK]):
                doc: dict[int, int] = {}
                for tok in tokens:
                    t = vocab.setdefault(tok, len(vocab))
                    doc[t] = doc.get(t, 0) + 1
                sizes.append(len(doc))
                d_terms.extend(doc)
                d_tfs.extend(doc.values())
        base = _Base.build(
            ids,
            digests,
            np.frombuffer(sizes, dtype=np.int64),
            np.frombuffer(d_terms, dtype=np.int32),
            np.frombuffer(d_tfs, dtype=np.int32),
            list(vocab),
        )
        with self._lock:
            self._set_base(base)

    def sync(self, docs: Mapping[int, str]) -> tuple[int, int]:
        """Bring the index in step with docs (id -> text): re-tokenize the documents whose text
        differs from the indexed one, add the new, remove the others; return (written, removed).

        Rebuilds everything instead when most documents differ.
        """
        with self._lock:
            wanted = np.fromiter(docs.keys(), dtype=np.int64, count=len(docs))
            texts = list(docs.values())
            digests = [text_digest(t) for t in texts]
            same = np.zeros(len(wanted), dtype=bool)
            base = self._base
            if base.n and len(wanted):
                # Vectorised over the base: a document is kept when its id and text digest match.
                pos = np.minimum(np.searchsorted(base.ids, wanted), base.n - 1)
                same = base.ids[pos] == wanted
                if self._dead is not None:
                    same &= ~self._dead[pos]
                wanted_digests = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, 32)
                same[same] = (base.digests[pos[same]] == wanted_digests[same]).all(axis=1)
            changed = [
                j
                for j in np.flatnonzero(~same).tolist()
                if self._digests.get(int(wanted[j])) != digests[j] or int(wanted[j]) not in self._docs
            ]
            live = base.ids if self._dead is None else base.ids[~self._dead]
            gone = live[~np.isin(live, wanted)].tolist()
            wanted_set = set(wanted.tolist())
            gone += [i for i in self._docs if i not in wanted_set]
            if len(changed) + len(gone) > _SYNC_REBUILD_SHARE * max(len(docs), 1) and len(docs) > 100:
                self.load_documents(docs)
                self._edited = True
                return len(docs), len(gone)
            for i in gone:
                self._remove_locked(i)
            token_lists = self.tokenize_many([texts[j] for j in changed])
            for j, tokens in zip(changed, token_lists, strict=True):
                self._upsert_tokens(int(wanted[j]), tokens, digests[j])
            return len(changed), len(gone)

    # -------------------------------------------------------------------------------- persistence
    @property
    def mapped(self) -> bool:
        """Return True while the base arrays are read from the memory-mapped saved file."""
        return self._base.mapped

    @property
    def edited(self) -> bool:
        """Return True when the index holds edits its saved file (if any) does not."""
        return self._edited

    def _merged_base(self) -> _Base:
        """Return the base with the edits folded in (call under the lock)."""
        base = self._base
        if not self._docs and not self._n_dead:
            return base
        live = np.ones(base.n, dtype=bool) if self._dead is None else ~self._dead
        sizes = np.diff(base.d_ptr)
        keep_entries = np.repeat(live, sizes)
        terms = list(base.terms)
        vocab = dict(base.vocab)
        extra_ids = list(self._docs)
        extra_terms: list[int] = []
        extra_tfs: list[int] = []
        extra_sizes: list[int] = []
        for doc_id in extra_ids:
            counts = self._docs[doc_id]
            for term, tf in counts.items():
                t = vocab.get(term)
                if t is None:
                    t = vocab[term] = len(terms)
                    terms.append(term)
                extra_terms.append(t)
                extra_tfs.append(tf)
            extra_sizes.append(len(counts))
        ids = np.concatenate([base.ids[live], np.asarray(extra_ids, dtype=np.int64)])
        digests = np.concatenate(
            [
                base.digests[live],
                np.frombuffer(
                    b"".join(self._digests.get(i, b"") or bytes(32) for i in extra_ids), dtype=np.uint8
                ).reshape(-1, 32),
            ]
        )
        return _Base.build(
            ids,
            digests,
            np.concatenate([sizes[live], np.asarray(extra_sizes, dtype=np.int64)]),
            np.concatenate([base.d_terms[keep_entries], np.asarray(extra_terms, dtype=np.int32)]),
            np.concatenate([base.d_tfs[keep_entries], np.asarray(extra_tfs, dtype=np.int32)]),
            terms,
        )

    def save(self, directory: str | os.PathLike[str], name: str) -> Path:
        """Write <name>.bm25 and its manifest atomically (edits folded in); return the data file.

        The data file is replaced first and the manifest second: a crash in between leaves a
        checksum mismatch, which :meth:`open` reports (rebuild), never a wrong index.
        """
        if self.tokenizer_version is None:
            raise ValueError("an index with a custom tokenizer and no tokenizer_version cannot be saved")
        data_path, manifest_path = lexical_paths(directory, name)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            base = self._merged_base()
            edited_since = self.generation
        vocab_bytes = json.dumps(base.terms, ensure_ascii=False).encode("utf-8")
        layout: dict[str, Any] = {}
        chunks: list[bytes] = []
        offset = 0
        for key, dtype in _ARRAYS:
            arr = np.ascontiguousarray(getattr(base, key), dtype=dtype)
            raw = arr.tobytes()
            layout[key] = {"offset": offset, "shape": list(arr.shape), "dtype": dtype}
            pad = (-len(raw)) % _ALIGN
            chunks += [raw, b"\0" * pad]
            offset += len(raw) + pad
        layout["vocab"] = {"offset": offset, "size": len(vocab_bytes)}
        chunks.append(vocab_bytes)
        sha = write_atomically(data_path, chunks)
        manifest = {
            "format": LEXICAL_FORMAT,
            "tokenizer": self.tokenizer_version,
            "count": base.n,
            "terms": len(base.terms),
            "postings": int(base.d_terms.shape[0]),
            "sha256": sha,
            "ids_sha256": hashlib.sha256(np.ascontiguousarray(base.ids, dtype="<i8").tobytes()).hexdigest(),
            "layout": layout,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_atomically(manifest_path, [json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")])
        with self._lock:
            if self.generation == edited_since:
                # Nothing changed while writing: serve from the file (shared between processes).
                opened = _open_base(data_path, manifest)
                if opened is not None:
                    self._swap_base(opened)
        return data_path

    def _swap_base(self, base: _Base) -> None:
        """Replace the content by an equal base (the saved form of it): queries give the same numbers."""
        generation = self.generation
        self._set_base(base)
        self.generation = generation  # the same documents: cached phrases stay valid

    def open(self, directory: str | os.PathLike[str], name: str) -> str | None:
        """Replace the content with the saved index name; return None, or why it cannot be trusted.

        The reason is a short English phrase ("missing", "tokenizer differs", "checksum differs",
        ...). Never raises on a bad file; the content is then left as it was.
        """
        data_path, manifest_path = lexical_paths(directory, name)
        if self.tokenizer_version is None:
            return "custom tokenizer"
        if not data_path.is_file() or not manifest_path.is_file():
            return "missing"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("manifest is not a JSON object")
            with data_path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except (OSError, ValueError) as exc:
            logger.warning("cannot read saved BM25 index %r: %s", name, exc)
            return "unreadable manifest or index file"
        if manifest.get("format") != LEXICAL_FORMAT:
            return "format differs"
        if manifest.get("tokenizer") != self.tokenizer_version:
            logger.info("saved BM25 index %r was tokenized by %r: rebuild", name, manifest.get("tokenizer"))
            return "tokenizer differs"
        if digest != manifest.get("sha256"):
            logger.warning("saved BM25 index %r does not match its manifest checksum: rebuild", name)
            return "checksum differs"
        base = _open_base(data_path, manifest)
        if base is None:
            return "unusable"
        with self._lock:
            self._set_base(base)
            self._edited = False
        return None

    # -------------------------------------------------------------------------------- statistics
    def _df(self, term: str) -> int:
        """Return how many documents hold term (call under the lock; remembered until the next edit)."""
        df = self._df_cache.get(term)
        if df is not None:
            return df
        df = len(self._postings.get(term, ()))
        t = self._base.vocab.get(term)
        if t is not None:
            df += int(self._base.t_ptr[t + 1] - self._base.t_ptr[t]) - self._dead_df.get(t, 0)
        if len(self._df_cache) < 1_000_000:
            self._df_cache[term] = df
        return df

    def doc_share(self, term: str) -> float:
        """Return the fraction of indexed documents that contain a term (0 when the index is empty)."""
        with self._lock:
            n = self._n_docs()
            return self._df(term) / n if n else 0.0

    def idf(self, term: str) -> float:
        """Return the BM25 idf of a term (0 for unknown terms)."""
        cached = self._idf_cache.get(term)
        if cached is not None:
            return cached
        with self._lock:
            n = self._n_docs()
            df = self._df(term)
        value = 0.0 if df == 0 else math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        if len(self._idf_cache) < 1_000_000:
            self._idf_cache[term] = value
        return value

    def _query_terms(self, query: str | Sequence[str]) -> list[str]:
        tokens = self.tokenize(query) if isinstance(query, str) else clean_tokens(query)
        terms = [t for t in dict.fromkeys(tokens) if self._df(t) > 0]
        if len(terms) > self.max_query_terms:
            terms = sorted(terms, key=lambda t: -self.idf(t))[: self.max_query_terms]
        return terms

    def query_terms(self, query: str | Sequence[str]) -> list[str]:
        """Return the indexed terms a query is scored on (its highest-idf ones when it is long)."""
        with self._lock:
            return self._query_terms(query)

    def without_common_terms(self, query: str | Sequence[str], max_share: float) -> list[str]:
        """Return the query's terms (see :meth:`query_terms`) but those in more than max_share of the
        documents (all of them when every one is that common).

        A term most documents hold barely separates them, while its postings are the longest to sum:
        in a million projects one such term costs more than all the rare ones of a query together.
        """
        with self._lock:
            terms = self._query_terms(query)
            limit = max_share * self._n_docs()
            kept = [t for t in terms if self._df(t) <= limit]
            return kept or terms

    def doc_query_terms(self, doc_id: int, other: LexicalIndex) -> list[str]:
        """Return the terms of another index's query made of this index's document doc_id.

        The same as ``other.query_terms(text)`` for the text the document was indexed from (its
        tokens are already clean and in first-occurrence order), without tokenizing it again.
        """
        with self._lock:
            tokens = list(self._counts(doc_id) or ())
        with other._lock:
            terms = [t for t in tokens if other._df(t) > 0]
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
            n = self._n_docs()
            avgdl = max(self._total_len / n, 1e-9) if n else 1.0
            cols: dict[str, int] = {}
            idf: dict[str, float] = {}
            rows: list[int] = []
            idx: list[int] = []
            vals: list[float] = []
            for r, doc in enumerate(doc_ids):
                counts = self._counts(doc)
                if not counts:
                    continue
                norm = self.k1 * (1.0 - self.b + self.b * sum(counts.values()) / avgdl)
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

    # -------------------------------------------------------------------------------- scoring
    def _rows_of(self, doc_ids: Collection[int]) -> NDArray[np.int64]:
        """Return the rows of the indexed documents among doc_ids (call under the lock)."""
        if isinstance(doc_ids, np.ndarray):
            wanted = doc_ids.astype(np.int64, copy=False).ravel()
        else:
            wanted = np.fromiter((int(i) for i in doc_ids), dtype=np.int64, count=len(doc_ids))
        base = self._base
        found = np.empty(0, dtype=np.int64)
        missing = wanted
        if base.n and wanted.size:
            pos = np.minimum(np.searchsorted(base.ids, wanted), base.n - 1)
            hit = base.ids[pos] == wanted
            if self._dead is not None:
                hit &= ~self._dead[pos]
            found = pos[hit].astype(np.int64)
            missing = wanted[~hit]
        if self._row and missing.size:
            row = self._row
            extra = [row[i] for i in missing.tolist() if i in row]
            if extra:
                found = np.concatenate([found, np.asarray(extra, dtype=np.int64)])
        return found

    def _posting_arrays(
        self, term: str
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        cached = self._arrays.get(term)
        if cached is not None:
            return cached
        base = self._base
        parts: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = []
        t = base.vocab.get(term)
        if t is not None:
            a, b = int(base.t_ptr[t]), int(base.t_ptr[t + 1])
            rows = base.p_rows[a:b]
            tfs = base.p_tfs[a:b]
            if self._dead is not None and self._dead_df.get(t):
                keep = ~self._dead[rows]
                rows, tfs = rows[keep], tfs[keep]
            parts.append((rows, tfs, base.lengths[rows]))
        posting = self._postings.get(term)
        if posting:
            row = self._row
            parts.append(
                (
                    np.fromiter((row[i] for i in posting), dtype=np.int64, count=len(posting)),
                    np.fromiter(posting.values(), dtype=np.float64, count=len(posting)),
                    np.array([self._lengths[i] for i in posting], dtype=np.float64),
                )
            )
        if not parts:
            empty = np.empty(0)
            cached = (np.empty(0, dtype=np.int64), empty, empty)
        else:
            cached = (
                np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
                np.concatenate([p[1] for p in parts]).astype(np.float64, copy=False),
                np.concatenate([p[2] for p in parts]).astype(np.float64, copy=False),
            )
        if len(self._arrays) >= _ARRAY_CACHE_TERMS:
            self._arrays.pop(next(iter(self._arrays)), None)
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
                rows = self._rows_of(allowed_ids)
                hit_rows, last_sums = last[1], last[2]
                at = np.minimum(np.searchsorted(hit_rows, rows), max(0, hit_rows.size - 1))
                found = (hit_rows[at] == rows) if hit_rows.size else np.zeros(rows.size, dtype=bool)
                return self._row_ids[rows[found]].copy(), last_sums[at[found]]
            terms = self._query_terms(query)
            n = self._n_docs()
            if not terms or not n:
                return np.empty(0, dtype=np.int64), np.empty(0)
            avgdl = max(self._total_len / n, 1e-9)
            allowed = None
            if allowed_ids is not None:
                allowed = np.zeros(self._n_rows, dtype=bool)
                allowed[self._rows_of(allowed_ids)] = True
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
            rows_cat, scores_cat = np.concatenate(all_rows), np.concatenate(all_scores)
            if rows_cat.size * 8 < self._n_rows:
                # Few postings: sum over the rows they hold, not over every row of the index.
                uniq, inverse = np.unique(rows_cat, return_inverse=True)
                sums = np.asarray(np.bincount(inverse, weights=scores_cat, minlength=uniq.size), np.float64)
            else:
                uniq = np.arange(self._n_rows)
                sums = np.asarray(
                    np.bincount(rows_cat, weights=scores_cat, minlength=self._n_rows), np.float64
                )
            keep = sums > 0
            hit: NDArray[np.int64] = uniq[keep].astype(np.int64, copy=False)
            sums = sums[keep].astype(np.float64, copy=False)
            if allowed is None:
                self._last = (key, hit, sums)
            return self._row_ids[hit].copy(), sums

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


def _open_base(data_path: Path, manifest: Mapping[str, Any]) -> _Base | None:
    """Return the arrays of a saved index (checksum already checked) memory-mapped, or None."""
    try:
        layout = manifest["layout"]
        with data_path.open("rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        size = len(mapped)
        arrays: dict[str, NDArray[Any]] = {}
        for key, dtype in _ARRAYS:
            spec = layout[key]
            if spec["dtype"] != dtype:
                raise ValueError(f"{key} has dtype {spec['dtype']}")
            shape = tuple(int(x) for x in spec["shape"])
            count = int(np.prod(shape)) if shape else 0
            if count == 0:
                arrays[key] = np.zeros(shape, dtype=dtype)
                continue
            offset = int(spec["offset"])
            if offset + count * np.dtype(dtype).itemsize > size:
                raise ValueError(f"{key} runs past the end of the file")
            # Views of one read-only mapping: every process opening the file shares its pages.
            arrays[key] = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(shape)
        spec = layout["vocab"]
        start = int(spec["offset"])
        terms = json.loads(mapped[start : start + int(spec["size"])].decode("utf-8"))
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise ValueError("vocabulary is not a list of strings")
        n = arrays["ids"].shape[0]
        if (
            n != manifest.get("count")
            or arrays["digests"].shape != (n, 32)
            or arrays["lengths"].shape != (n,)
        ):
            raise ValueError("document count differs from the manifest")
        if arrays["d_ptr"].shape != (n + 1,) or arrays["t_ptr"].shape != (len(terms) + 1,):
            raise ValueError("pointer arrays do not fit the documents and terms")
        nnz = arrays["d_terms"].shape[0]
        for key in ("d_tfs", "p_rows", "p_tfs"):
            if arrays[key].shape != (nnz,):
                raise ValueError(f"{key} has another length than d_terms")
        if (n and int(arrays["d_ptr"][-1]) != nnz) or (terms and int(arrays["t_ptr"][-1]) != nnz):
            raise ValueError("pointer arrays do not end at the posting count")
        if n > 1 and not bool(np.all(np.diff(arrays["ids"]) > 0)):
            raise ValueError("ids are not strictly ascending")
        ids_sha = hashlib.sha256(np.ascontiguousarray(arrays["ids"], dtype="<i8").tobytes()).hexdigest()
        if ids_sha != manifest.get("ids_sha256"):
            raise ValueError("ids differ from the manifest")
    except (KeyError, TypeError, ValueError, OSError) as exc:
        logger.warning("saved BM25 index %s is unusable (%s): rebuild", data_path.name, exc)
        return None
    return _Base(
        ids=arrays["ids"],
        digests=arrays["digests"],
        lengths=arrays["lengths"],
        d_ptr=arrays["d_ptr"],
        d_terms=arrays["d_terms"],
        d_tfs=arrays["d_tfs"],
        t_ptr=arrays["t_ptr"],
        p_rows=arrays["p_rows"],
        p_tfs=arrays["p_tfs"],
        terms=terms,
        vocab={t: j for j, t in enumerate(terms)},
        mapped=True,
    )
