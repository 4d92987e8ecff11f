"""The shortcuts of the query path give the same answers as the long way."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from embeddings import VectorIndex, tokenize
from embeddings.tokenize import _get_tokenizer, _keep
from matching.candidates import AnnIndex, recall_at
from matching.explain import clause_tokens, closest_phrases, description_clauses
from matching.features import FEATURES
from matching.lexical import LexicalIndex
from matching.ranker import HandWeightedRanker, LearnedRanker
from matching.scoring import linear_form, linear_scores

TEXTS = [
    "专注新材料与先进制造的早期投资，关注电池材料、储能系统（含光伏）。",
    "AI+工业视觉检测平台：为3C电子、汽车零部件提供缺陷检测；已服务20家客户。",
    "面向中小企业的数字化SaaS, cloud-native; ＡＢＣ全角字母　全角空格\n第二行：医疗器械注册",
    "创客中国 专精特新 小微企业创业创新基地 — 年营收5000万元/人, 团队10人!",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("for_search", [True, False])
def test_tokenize_by_pieces_equals_jieba_on_the_whole_text(text: str, for_search: bool) -> None:
    tok = _get_tokenizer()
    norm = unicodedata.normalize("NFKC", text)
    words = tok.lcut_for_search(norm) if for_search else tok.lcut(norm)
    whole = [w.strip().lower() for w in words if w.strip() and _keep(w.strip().lower())]
    assert tokenize(text, for_search=for_search) == whole


def test_doc_tokens_are_the_indexed_tokens_of_that_text_only() -> None:
    lex = LexicalIndex()
    lex.upsert(1, TEXTS[0])
    assert lex.doc_tokens(1, TEXTS[0]) == tuple(dict.fromkeys(lex.tokenize(TEXTS[0])))
    assert lex.doc_tokens(1, TEXTS[1]) is None and lex.doc_tokens(2, TEXTS[0]) is None
    assert lex.as_query(1, TEXTS[1]) == TEXTS[1]
    lex.upsert(2, TEXTS[1])
    assert lex.score(lex.as_query(1, TEXTS[0])) == lex.score(TEXTS[0])


def test_phrases_from_stored_clause_tokens_equal_the_tokenized_ones() -> None:
    lex = LexicalIndex()
    for i, t in enumerate(TEXTS):
        lex.upsert(i, t)
    for a in TEXTS:
        for b in TEXTS:
            ta = clause_tokens(description_clauses(a), lex.tokenize)
            tb = clause_tokens(description_clauses(b), lex.tokenize)
            assert closest_phrases(a, b, lex.tokenize, lex.idf, tokens_a=ta, tokens_b=tb) == closest_phrases(
                a, b, lex.tokenize, lex.idf
            )


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    v = centres[rng.integers(0, 40, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ann_reaches_its_measured_recall_target_or_searches_exactly() -> None:
    both = _clustered(6100, 32, 0)
    vecs, queries = both[:6000], both[6000:]  # held-out queries from the same distribution
    exact = VectorIndex.build(np.arange(6000), vecs)
    ann = AnnIndex(exact, min_size=1000, target_recall=0.98)
    ann.rebuild()
    assert ann.kind == "ivf" and ann.measured_recall is not None and ann.measured_recall >= 0.98
    assert recall_at(exact.search(queries, 50)[1], ann.search(queries, 50)[1]) >= 0.95
    # Vectors without neighbourhood structure: the tuned probe count would scan most lists, so the
    # copy is the half-precision scan, with its own recall measured against the target.
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((6000, 128)).astype(np.float32)
    scan = AnnIndex(VectorIndex.build(np.arange(6000), noise), min_size=1000, target_recall=0.999)
    scan.rebuild()
    assert scan.kind == "flat-fp16" and scan.nprobe is None
    assert scan.measured_recall is not None and scan.measured_recall >= 0.999
    # A target no copy can be shown to reach: the exact index is searched.
    exact_only = AnnIndex(VectorIndex.build(np.arange(6000), noise), min_size=1000, target_recall=1.01)
    exact_only.rebuild()
    assert exact_only.kind == "flat" and exact_only.measured_recall is None


def test_linear_form_scores_like_the_ranker() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, len(FEATURES)))
    y = (X[:, 0] + rng.standard_normal(300) > 0).astype(int)
    for ranker in (HandWeightedRanker(), LearnedRanker("logistic").fit(X, y)):
        form = linear_form(ranker)
        assert form is not None
        major = np.ascontiguousarray(X.T)  # block_features' feature-major layout
        assert np.allclose(linear_scores(major.T, form), ranker.score(X), atol=1e-9)
    assert linear_form(LearnedRanker("hgb").fit(X, y)) is None


def test_coinvest_counts_from_kept_partner_counts_equal_the_direct_count() -> None:
    from collections import Counter

    from matching.evidence import add_coinvest_counts, coinvest_counts, partner_counts

    rng = np.random.default_rng(5)
    portfolio = {
        inst: tuple(int(p) for p in rng.choice(40, size=int(rng.integers(0, 9)), replace=False))
        for inst in range(100, 130)
    }
    backers: dict[int, set[int]] = {}
    for inst, port in portfolio.items():
        for pid in port:
            backers.setdefault(pid, set()).add(inst)
    kept: dict[int, Counter[int]] = {}

    def partners(inst: int) -> Counter[int]:
        return kept.setdefault(inst, partner_counts(inst, backers, portfolio))

    for pid in range(45):
        direct = coinvest_counts(pid, backers, portfolio)
        row = np.zeros(200)
        add_coinvest_counts(row, pid, backers, partners, lambda i: i - 100 if i >= 100 else None)
        assert {i + 100: int(n) for i, n in enumerate(row) if n} == dict(direct)
        assert all(n > 0 for n in direct.values())
    assert all(kept[i] == partner_counts(i, backers, portfolio) for i in kept)  # never changed
