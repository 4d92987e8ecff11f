"""The saved BM25 index: memory-mapped on open, checked against its manifest, synced by text digest."""

from __future__ import annotations

import json
import mmap
import random
from pathlib import Path

import numpy as np
import pytest

from matching.lexical import LexicalIndex, lexical_paths

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


class CountingTokenizer:
    """Whitespace tokens; counts the texts it was given (what was tokenized again)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str) -> list[str]:
        self.seen.append(text)
        return text.split()


def _docs(n: int, seed: int = 0) -> dict[int, str]:
    rng = random.Random(seed)
    return {i * 3 + 1: " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))) for i in range(n)}


def _index(docs: dict[int, str], tokenizer: CountingTokenizer | None = None) -> LexicalIndex:
    lex = LexicalIndex(tokenizer or CountingTokenizer(), tokenizer_version="test-1")
    lex.load_documents(docs)
    return lex


def _same_scores(a: LexicalIndex, b: LexicalIndex, queries: list[str]) -> None:
    for q in queries:
        sa, sb = a.score(q), b.score(q)
        assert list(sa) == list(sb), q
        assert list(sa.values()) == pytest.approx(list(sb.values()), rel=1e-12), q
        ta, tb = a.top(q, 5), b.top(q, 5)
        assert [i for i, _ in ta] == [i for i, _ in tb], q
        assert [s for _, s in ta] == pytest.approx([s for _, s in tb], rel=1e-12), q


QUERIES = ["alpha", "beta gamma", "theta iota kappa mu", "unknown", "eta eta zeta"]


def test_a_bulk_load_scores_like_one_upsert_per_document() -> None:
    docs = _docs(300)
    one_by_one = LexicalIndex(str.split)
    for i, text in docs.items():
        one_by_one.upsert(i, text)
    bulk = _index(docs)
    _same_scores(bulk, one_by_one, QUERIES)
    assert sorted(bulk.ids()) == sorted(docs)
    assert bulk.terms(4) == one_by_one.terms(4)
    assert bulk.doc_tokens(4, docs[4]) == one_by_one.doc_tokens(4, docs[4])
    assert bulk.doc_tokens(4, docs[4] + " x") is None


def test_each_distinct_text_is_tokenized_once_in_a_bulk_load() -> None:
    tok = CountingTokenizer()
    _index({1: "a b", 2: "a b", 3: "c", 4: "a b"}, tok)
    assert sorted(tok.seen) == ["a b", "c"]


def test_open_maps_the_saved_file_and_answers_like_the_original(tmp_path: Path) -> None:
    docs = _docs(200)
    original = _index(docs)
    original.save(tmp_path, "projects")
    opened = LexicalIndex(CountingTokenizer(), tokenizer_version="test-1")
    assert opened.open(tmp_path, "projects") is None
    assert opened.mapped and not opened.edited
    # Read-only views of one shared mapping, not copies.
    assert not opened._base.p_rows.flags.writeable
    for arr in (opened._base.p_rows, opened._base.d_terms, opened._base.digests):
        owner = arr
        while isinstance(owner, np.ndarray):
            owner = owner.base
        if isinstance(owner, memoryview):
            owner = owner.obj
        assert isinstance(owner, mmap.mmap)
    _same_scores(opened, original, QUERIES)
    assert opened.doc_share("alpha") == original.doc_share("alpha")
    assert opened.doc_query_terms(4, original) == original.doc_query_terms(4, original)


def test_edits_on_an_opened_index_give_the_scores_of_a_fresh_build(tmp_path: Path) -> None:
    docs = _docs(200)
    _index(docs).save(tmp_path, "projects")
    lex = LexicalIndex(CountingTokenizer(), tokenizer_version="test-1")
    assert lex.open(tmp_path, "projects") is None
    before = (tmp_path / "projects.bm25").read_bytes()
    rng = random.Random(5)
    final = dict(docs)
    for step in range(120):
        doc_id = rng.choice([*final, 1000 + step])
        if rng.random() < 0.3 and doc_id in final:
            lex.remove(doc_id)
            del final[doc_id]
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
            lex.upsert(doc_id, text)
            final[doc_id] = text
    assert lex.edited and (tmp_path / "projects.bm25").read_bytes() == before  # the file is untouched
    fresh = _index(final)
    assert sorted(lex.ids()) == sorted(final) and len(lex) == len(final)
    _same_scores(lex, fresh, QUERIES)
    allowed = set(list(final)[::3])
    for q in QUERIES:
        assert lex.score(q, allowed) == pytest.approx(fresh.score(q, allowed), rel=1e-12)
    # Saved with the edits folded in, then opened again: still the same.
    lex.save(tmp_path, "projects")
    assert lex.mapped and not lex.edited
    again = LexicalIndex(CountingTokenizer(), tokenizer_version="test-1")
    assert again.open(tmp_path, "projects") is None
    _same_scores(again, fresh, QUERIES)
    _same_scores(lex, fresh, QUERIES)


def test_sync_tokenizes_only_changed_and_new_texts_and_drops_the_rest(tmp_path: Path) -> None:
    docs = _docs(400)
    _index(docs).save(tmp_path, "projects")
    tok = CountingTokenizer()
    lex = LexicalIndex(tok, tokenizer_version="test-1")
    assert lex.open(tmp_path, "projects") is None
    wanted = dict(docs)
    wanted[4] = "changed text alpha"
    wanted[9999] = "brand new"
    del wanted[7]
    assert lex.sync(wanted) == (2, 1)
    assert sorted(tok.seen) == ["brand new", "changed text alpha"]
    _same_scores(lex, _index(wanted), [*QUERIES, "changed", "brand"])
    assert lex.sync(wanted) == (0, 0)  # nothing left to do


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("delete", "missing"),
        ("delete_manifest", "missing"),
        ("truncate", "checksum differs"),
        ("flip", "checksum differs"),
        ("corrupt_manifest", "unreadable manifest or index file"),
        ("other_tokenizer", "tokenizer differs"),
        ("other_format", "format differs"),
        ("bad_layout", "unusable"),
    ],
)
def test_a_damaged_or_foreign_file_is_refused(tmp_path: Path, how: str, why: str) -> None:
    docs = _docs(100)
    _index(docs).save(tmp_path, "projects")
    data, manifest = lexical_paths(tmp_path, "projects")
    body = json.loads(manifest.read_text("utf-8"))
    if how == "delete":
        data.unlink()
    elif how == "delete_manifest":
        manifest.unlink()
    elif how == "truncate":
        data.write_bytes(data.read_bytes()[:-50])
    elif how == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif how == "corrupt_manifest":
        manifest.write_text('{"format": 1, "tokenizer": ', encoding="utf-8")
    elif how == "other_tokenizer":
        body["tokenizer"] = "jieba-0.0-v0"
        manifest.write_text(json.dumps(body), encoding="utf-8")
    elif how == "other_format":
        body["format"] = 99
        manifest.write_text(json.dumps(body), encoding="utf-8")
    elif how == "bad_layout":  # the checksum holds but the layout lies about the arrays
        body["layout"]["p_rows"]["shape"] = [10**9]
        manifest.write_text(json.dumps(body), encoding="utf-8")
    lex = LexicalIndex(CountingTokenizer(), tokenizer_version="test-1")
    lex.upsert(1, "kept")
    assert lex.open(tmp_path, "projects") == why
    assert lex.ids() == [1]  # left as it was


def test_a_custom_tokenizer_without_a_version_is_never_saved(tmp_path: Path) -> None:
    lex = LexicalIndex(str.split)
    lex.load_documents({1: "a"})
    with pytest.raises(ValueError):
        lex.save(tmp_path, "projects")
    assert lex.open(tmp_path, "projects") == "custom tokenizer"


def test_the_default_tokenizer_has_a_version_and_batches_like_one_text_at_a_time() -> None:
    from embeddings.tokenize import tokenize, tokenize_many, tokenizer_version

    assert tokenizer_version().startswith("jieba-")
    texts = ["创客中国，专精特新企业", "人工智能 医学影像", "", "创客中国，专精特新企业"]
    assert tokenize_many(texts) == [tokenize(t) for t in texts]
    assert LexicalIndex().tokenizer_version == tokenizer_version()


def test_empty_index_saves_and_opens(tmp_path: Path) -> None:
    empty = _index({})
    empty.save(tmp_path, "empty")
    lex = LexicalIndex(CountingTokenizer(), tokenizer_version="test-1")
    assert lex.open(tmp_path, "empty") is None
    assert len(lex) == 0 and lex.score("alpha") == {} and lex.top("alpha", 3) == []
    lex.upsert(5, "alpha")
    assert lex.top("alpha", 3)[0][0] == 5


def test_ids_given_twice_are_refused() -> None:
    lex = LexicalIndex(str.split)
    with pytest.raises(ValueError):
        lex.load_documents([(1, "a"), (1, "b")])
    assert np.array_equal(np.asarray(lex.ids()), np.empty(0))
