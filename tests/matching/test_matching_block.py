"""score_block: a whole block of pairs in one call, with the numbers of the one-query path."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import Embedder
from matching.features import FEATURES
from matching.ranker import LearnedRanker
from matching.service import MatchingService
from matching.types import Filters, Side


def _learned(seed: int = 0) -> LearnedRanker:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, len(FEATURES)))
    y = (X[:, 0] + 0.5 * X[:, 4] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    return LearnedRanker("logistic").fit(X, y)


def _assert_block_matches_one_query(
    svc: MatchingService, side: Side, inst_ids: list[int], public: bool = False
) -> int:
    pids = sorted(svc.project_ids())
    block = svc.score_block(pids, inst_ids, public=public)
    assert block.shape == (len(pids), len(inst_ids))
    col = {i: j for j, i in enumerate(inst_ids)}
    compared = 0
    for a, pid in enumerate(pids):
        filters = Filters(allowed_ids=frozenset(inst_ids), public_only=public)
        shown = svc.match_project(pid, side, k=len(inst_ids), filters=filters, explain=False)
        for m in shown:
            # Lists show the 匹配度 to one decimal (within 0.1 and 99.9); the block keeps it unrounded.
            shown_here = min(99.9, max(0.1, round(float(block[a, col[m.id]]), 1)))
            assert shown_here == pytest.approx(m.score, abs=0.1001), (pid, m.id)
            compared += 1
        known = {i for i in inst_ids if pid in {it.project_id for it in svc.institution(i).portfolio}}
        for i in known:
            assert np.isnan(block[a, col[i]])  # never proposed by the one-query path either
        ok = block[a][~np.isnan(block[a])]
        if ok.size:  # a percentile: the best pair is not pinned to 100
            assert ok.min() > 0.0 and ok.max() < 100.0
    return compared


@pytest.mark.parametrize("ranker", ["hand", "learned"])
@pytest.mark.parametrize("side", ["fund", "base", "platform"])
def test_score_block_equals_match_project(
    embedder: Embedder, vectors, projects, institutions, tokenizer, ranker: str, side: Side
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer, ranker=_learned() if ranker == "learned" else None)
    svc.load(projects, institutions, *vectors)
    assert _assert_block_matches_one_query(svc, side, svc.institution_ids(side)) > 0


def test_score_block_pooled_subset_and_public(
    embedder: Embedder, vectors, projects, institutions, tokenizer
) -> None:
    # A pool of one per channel: the one-query path ranks fewer rows, but scores over every candidate;
    # a subset of the funds gets the numbers the full side gives (a pair's 匹配度 is the pair's own).
    svc = MatchingService(embedder, tokenizer=tokenizer, pool_size=1)
    svc.load(projects, institutions, *vectors)
    funds = svc.institution_ids("fund")
    assert _assert_block_matches_one_query(svc, "fund", funds) > 0
    assert _assert_block_matches_one_query(svc, "fund", funds[:2]) > 0
    assert _assert_block_matches_one_query(svc, "fund", funds, public=True) > 0


def test_score_block_follows_edits_and_rejects_unknown_ids(
    embedder: Embedder, vectors, projects, institutions, tokenizer
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    p = projects[0]
    svc.upsert_project(p, embedder.encode_documents(["碳纤维复合材料 轻量化"])[0])
    assert _assert_block_matches_one_query(svc, "fund", svc.institution_ids("fund")) > 0
    with pytest.raises(KeyError):
        svc.score_block([987654], svc.institution_ids("fund"))
    with pytest.raises(KeyError):
        svc.score_block([p.id], [987654])
    assert svc.score_block([], svc.institution_ids("fund")).shape == (0, len(svc.institution_ids("fund")))


def test_features_for_project_leave_out_uses_trimmed_evidence(
    embedder: Embedder, vectors, projects, institutions, tokenizer
) -> None:
    from matching.evidence import evidence_without
    from matching.features import SIMILARITY_FEATURES, pair_features

    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    pairs = [(i.id, it.project_id) for i in institutions for it in i.portfolio]
    assert pairs
    inst_id, pid = pairs[0]
    inst = svc.institution(inst_id)
    others = [i for i in svc.institution_ids(inst.side) if i != inst_id][:2]
    X = svc.features_for_project(pid, [inst_id, *others], leave_out=True)
    trimmed = evidence_without(inst, pid, {p.id: p for p in projects}, svc._as_of_used, svc.half_life_days)
    want = pair_features(svc.project(pid), inst, trimmed)
    for j, name in enumerate(FEATURES):
        if name not in SIMILARITY_FEATURES:
            assert X[0, j] == pytest.approx(want[name]), name
    for row, other in enumerate(others, start=1):  # everyone else keeps their whole evidence
        full = pair_features(svc.project(pid), svc.institution(other), svc.evidence(other))
        for j, name in enumerate(FEATURES):
            if name not in SIMILARITY_FEATURES:
                assert X[row, j] == pytest.approx(full[name]), name
