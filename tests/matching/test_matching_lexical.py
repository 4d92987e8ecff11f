"""The BM25 index: scores follow edits and never leave the allowed ids."""

from __future__ import annotations

from matching.lexical import LexicalIndex, Tokenizer


def make(tokenizer: Tokenizer) -> LexicalIndex:
    idx = LexicalIndex(tokenizer)
    idx.upsert(1, "医学影像 人工智能 诊断")
    idx.upsert(2, "碳纤维 复合材料")
    idx.upsert(3, "人工智能 工业视觉 检测")
    return idx


def test_best_match_first(tokenizer: Tokenizer) -> None:
    top = make(tokenizer).top("医学影像诊断", 3)
    assert top[0][0] == 1
    assert all(doc != 2 for doc, _ in top)  # shares no token


def test_allowed_ids_restrict_scoring(tokenizer: Tokenizer) -> None:
    idx = make(tokenizer)
    scores = idx.score("人工智能", allowed_ids={3})
    assert set(scores) == {3}
    assert idx.score("人工智能", allowed_ids=set()) == {}


def test_upsert_replaces_and_remove_forgets(tokenizer: Tokenizer) -> None:
    idx = make(tokenizer)
    idx.upsert(2, "医学影像 诊断 设备")
    assert 2 in idx.score("医学影像")
    assert "碳纤" not in idx.terms(2)
    idx.remove(1)
    assert 1 not in idx.score("医学影像") and len(idx) == 2
    idx.remove(42)  # unknown ids are ignored
    assert idx.idf("碳纤") == 0.0  # its only document changed


def test_idf_prefers_rare_terms(tokenizer: Tokenizer) -> None:
    idx = make(tokenizer)
    assert idx.idf("碳纤") > idx.idf("人工")


def test_long_queries_keep_high_idf_terms(tokenizer: Tokenizer) -> None:
    idx = LexicalIndex(tokenizer, max_query_terms=2)
    idx.upsert(1, "共同 共同 罕见词")
    idx.upsert(2, "共同 其他")
    idx.upsert(3, "共同 其它")
    assert idx.top("共同 其他 罕见词", 1)[0][0] in (1, 2)
    assert 3 not in idx.score("共同 其他 罕见词")  # only the two rarest query terms were used


def test_restricted_scores_equal_after_an_unrestricted_query() -> None:
    """A restricted score right after the same unrestricted one reuses its sums: same numbers."""
    lex = LexicalIndex(lambda t: t.split())
    docs = {i: " ".join(["a"] * (i % 3 + 1) + ["b"] * (i % 2) + [f"w{i % 5}"]) for i in range(1, 40)}
    for i, text in docs.items():
        lex.upsert(i, text)
    allowed = [3, 4, 5, 11, 30, 99]
    fresh = lex.score("a b w3", allowed)
    lex.top("a b w3", 5)
    assert lex.score("a b w3", allowed) == fresh
    lex.upsert(4, "w3 w3 w3")  # an edit drops the remembered sums
    again = lex.score("a b w3", allowed)
    lex.top("a b w3", 5)
    assert lex.score("a b w3", allowed) == again != fresh


def test_phrases_are_remembered_until_the_index_changes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import matching.explanation as explanation

    calls: list[str] = []

    def fake(a, b, tokenize, idf, **_):  # type: ignore[no-untyped-def]
        calls.append(a)
        return (a, b, ())

    monkeypatch.setattr(explanation, "closest_phrases", fake)
    lex = LexicalIndex(lambda t: t.split())
    lex.upsert(1, "alpha beta")
    assert explanation.phrases("x y", "y z", lex) == ("x y", "y z", ())
    assert explanation.phrases("x y", "y z", lex) == ("x y", "y z", ())
    assert len(calls) == 1
    lex.upsert(2, "gamma")  # the idf moved: computed again
    explanation.phrases("x y", "y z", lex)
    assert len(calls) == 2
    other = LexicalIndex(lambda t: t.split())  # another index never reads this one's entries
    other.upsert(1, "alpha beta")
    explanation.phrases("x y", "y z", other)
    assert len(calls) == 3
