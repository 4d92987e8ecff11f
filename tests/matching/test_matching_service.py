"""MatchingService: ranking, filters, reasons, edits and persistence as the web app sees them."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import Embedder
from matching.features import FEATURES
from matching.lexical import Tokenizer
from matching.ranker import HandWeightedRanker
from matching.service import MatchingService
from matching.types import Filters, InstitutionProfile, NeedProfile, PortfolioItem, ProjectProfile


class SpyRanker(HandWeightedRanker):
    """Record every feature matrix the service scores."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def score(self, X):  # type: ignore[no-untyped-def]
        self.seen.append(len(X))
        return super().score(X)


def test_sides_are_respected(service: MatchingService) -> None:
    assert {m.id for m in service.match_project(1, "fund", 10)} == {101, 102, 103}
    assert {m.id for m in service.match_project(1, "base", 10)} == {201, 202}
    assert {m.id for m in service.match_project(1, "platform", 10)} == {301, 302}


def test_scores_are_0_100_and_monotone(service: MatchingService) -> None:
    for side in ("fund", "base", "platform"):
        matches = service.match_project(1, side, 10)
        scores = [m.score for m in matches]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 < s < 100.0 for s in scores)  # a percentile: the best is not pinned to 100
    projects = service.match_institution(102, 10)
    assert [m.score for m in projects] == sorted((m.score for m in projects), reverse=True)


def test_obvious_matches_rank_first(service: MatchingService) -> None:
    assert service.match_project(1, "fund", 1)[0].id == 101  # medical AI -> medical fund
    assert service.match_project(2, "fund", 1)[0].id == 102  # carbon fibre -> materials fund
    assert service.match_project(3, "base", 1)[0].id == 202  # farm machinery -> Chengdu farm park
    assert service.match_project(1, "platform", 1)[0].id == 301  # needs testing + IP
    assert service.match_institution(102, 1)[0].id == 2


def test_filters_apply_before_scoring(
    embedder: Embedder,
    vectors,
    projects: list[ProjectProfile],
    institutions: list[InstitutionProfile],
    tokenizer: Tokenizer,
) -> None:
    spy = SpyRanker()
    svc = MatchingService(embedder, ranker=spy, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    matches = svc.match_project(1, "fund", 10, Filters(allowed_ids=frozenset({102, 201})))
    assert [m.id for m in matches] == [102]  # 201 is a base: the side intersects the filter
    # The pair is scored against the whole side (its 匹配度 is the pair's own, not the filtered list's).
    assert matches[0].score == next(m.score for m in svc.match_project(1, "fund", 10) if m.id == 102)
    spy.seen.clear()
    matches = svc.match_institution(101, 10, Filters(allowed_ids=frozenset({2, 3})))
    assert {m.id for m in matches} == {2, 3} and spy.seen[0] == 2  # retrieval saw the allowed ones only
    assert svc.match_project(1, "fund", 10, Filters(allowed_ids=frozenset())) == []


def test_pooled_retrieval_respects_filters(
    embedder: Embedder,
    vectors,
    monkeypatch,
    projects: list[ProjectProfile],
    institutions: list[InstitutionProfile],
    tokenizer: Tokenizer,
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer, pool_size=1)
    svc.load(projects, institutions, *vectors)
    seen: list[object] = []
    original = svc._proj_index.search

    def spy(queries, k, allowed_ids=None):  # type: ignore[no-untyped-def]
        seen.append(allowed_ids)
        return original(queries, k, allowed_ids)

    monkeypatch.setattr(svc._proj_index, "search", spy)
    allowed = frozenset({1, 4, 6})
    matches = svc.match_institution(102, 10, Filters(allowed_ids=allowed))
    assert matches and {m.id for m in matches} <= allowed
    assert seen and all(set(a) <= allowed for a in seen)  # FAISS got the filter, not a post-filter


def test_known_links_are_not_recommended(service: MatchingService) -> None:
    # Project 5 is already in 101's portfolio.
    assert 101 not in {m.id for m in service.match_project(5, "fund", 10)}
    assert 5 not in {m.id for m in service.match_institution(101, 10)}


def test_reasons_reflect_features(service: MatchingService) -> None:
    best = service.match_project(1, "fund", 3)[0]
    texts = " ".join(r.text for r in best.reasons)
    assert "行业一致" in texts and "医疗健康" in texts
    assert "金额合适：拟融资 2,000 万元，在该机构单笔 1,000–5,000 万元范围内" in texts
    assert "项目「基于深度学习的医学影像辅助诊断系统」" in texts  # description clauses quoted
    for r in best.reasons:
        assert r.feature in FEATURES
        assert "(" not in r.text  # plain sentences: no score points in the text
    low = next(m for m in service.match_institution(102, 10) if m.id == 2)
    amount = next(r for r in low.reasons if r.feature == "amount")
    assert amount.contribution < 0
    assert "金额偏低：拟融资 30 万元，低于该机构起投 500 万元" in amount.text
    # Reasons are sorted by absolute contribution.
    sizes = [abs(r.contribution) for r in best.reasons]
    assert sizes == sorted(sizes, reverse=True)


def test_different_pairs_get_different_reasons(service: MatchingService) -> None:
    a, b, c = service.match_project(1, "fund", 3)
    assert {r.text for r in a.reasons} != {r.text for r in b.reasons}
    assert a.features != b.features
    svc_texts = {tuple(r.text for r in m.reasons) for m in (a, b, c)}
    assert len(svc_texts) == 3


def test_platform_and_base_reasons(service: MatchingService) -> None:
    platform = service.match_project(1, "platform", 1)[0]
    assert any("服务对口：项目需要检验检测、知识产权，该平台均可提供" in r.text for r in platform.reasons)
    base = service.match_project(3, "base", 1)[0]
    assert any(r.feature == "region" and "成都市" in r.text for r in base.reasons)


def test_upsert_and_remove_keep_results_in_step(service: MatchingService, embedder: Embedder) -> None:
    text = "固态电池储能电芯与电池管理系统的早期投资。"
    new = InstitutionProfile(
        104, "储能天使", "创业投资机构", text, industries=("新能源",), stages=("成长期",)
    )
    service.upsert_institution(new, embedder.encode_documents([text])[0])
    assert service.match_project(6, "fund", 1)[0].id == 104
    service.remove_institution(104)
    assert 104 not in {m.id for m in service.match_project(6, "fund", 10)}

    proj = ProjectProfile(
        7,
        "碳纤维无人机",
        "碳纤维复合材料无人机机身。",
        ("新材料",),
        stage="扩张期",
        amount_wan=1000,
        needs=("融资",),
    )
    service.upsert_project(proj, embedder.encode_documents([proj.text])[0])
    assert 7 in {m.id for m in service.match_institution(102, 3)}
    service.remove_project(7)
    assert 7 not in {m.id for m in service.match_institution(102, 10)}


def test_portfolio_edits_update_evidence(
    service: MatchingService, vectors, institutions: list[InstitutionProfile]
) -> None:
    inst = institutions[1]  # the materials fund, empty portfolio
    assert service.evidence(102).n_portfolio == 0
    backed = InstitutionProfile(**{**inst.__dict__, "portfolio": (PortfolioItem(4, "2024-01-01", "A轮"),)})
    service.upsert_institution(backed, vectors[1][102])
    assert service.evidence(102).n_portfolio == 1
    assert 4 not in {m.id for m in service.match_institution(102, 10)}  # now a known link
    assert 102 not in {m.id for m in service.match_project(4, "fund", 10)}


def test_persistence_round_trip(
    embedder: Embedder,
    vectors,
    tmp_path,
    projects: list[ProjectProfile],
    institutions: list[InstitutionProfile],
    tokenizer: Tokenizer,
) -> None:
    pv, iv = dict(vectors[0]), dict(vectors[1])
    first = MatchingService(embedder, index_dir=tmp_path, save_delay_s=0, tokenizer=tokenizer)
    first.load(projects, institutions, pv, iv)
    assert first.loaded_from_disk == {"projects": False, "institutions": False}
    proj = ProjectProfile(8, "智能温室", "智能温室大棚环境控制系统。", ("智能装备",))
    pv[8] = embedder.encode_documents([proj.text])[0]
    first.upsert_project(proj, pv[8])
    expected = [m.id for m in first.match_institution(202, 5)]

    again = MatchingService(embedder, index_dir=tmp_path, tokenizer=tokenizer)
    again.load([*projects, proj], institutions, pv, iv)
    assert again.loaded_from_disk == {"projects": True, "institutions": True}
    assert [m.id for m in again.match_institution(202, 5)] == expected

    # A stored vector that changed since the save means the saved index is not trusted.
    pv[1] = embedder.encode_documents(["完全不同的文本"])[0]
    third = MatchingService(embedder, index_dir=tmp_path, tokenizer=tokenizer)
    third.load([*projects, proj], institutions, pv, iv)
    assert third.loaded_from_disk["projects"] is False
    assert np.allclose(third._proj_index.reconstruct(1), pv[1])


def test_debounced_save_flushes(
    embedder: Embedder,
    vectors,
    tmp_path,
    projects: list[ProjectProfile],
    institutions: list[InstitutionProfile],
    tokenizer: Tokenizer,
) -> None:
    svc = MatchingService(embedder, index_dir=tmp_path, save_delay_s=60, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    svc.remove_project(3)
    svc.close()  # flushes the pending save instead of waiting for the timer
    pv = {k: v for k, v in vectors[0].items() if k != 3}
    again = MatchingService(embedder, index_dir=tmp_path, tokenizer=tokenizer)
    again.load([p for p in projects if p.id != 3], institutions, pv, vectors[1])
    assert again.loaded_from_disk["projects"] is True


def test_match_need(service: MatchingService, embedder: Embedder) -> None:
    need = NeedProfile(1, 201, "寻找医疗器械与康复设备项目入驻孵化。", industries=("医疗健康",))
    matches = service.match_need(need, embedder.encode_queries([need.text])[0], 3)
    assert matches and matches[0].id in {1, 5}
    assert any(r.feature == "industry" for r in matches[0].reasons)


def test_unknown_ids_raise(service: MatchingService) -> None:
    with pytest.raises(KeyError):
        service.match_project(999, "fund")
    with pytest.raises(KeyError):
        service.match_institution(999)


def test_institution_without_vector_uses_portfolio(
    embedder: Embedder,
    vectors,
    projects: list[ProjectProfile],
    institutions: list[InstitutionProfile],
    tokenizer: Tokenizer,
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer)
    iv = {k: v for k, v in vectors[1].items() if k != 103}  # 103 has no text vector of its own
    svc.load(projects, institutions, vectors[0], iv)
    assert 103 in svc._inst_index
    assert {m.id for m in svc.match_project(1, "fund", 10)} == {101, 102, 103}


def test_pooled_institution_ranking_matches_full(
    embedder: Embedder, vectors, projects, institutions, tokenizer
) -> None:
    full = MatchingService(embedder, tokenizer=tokenizer)
    full.load(projects, institutions, *vectors)
    pooled = MatchingService(embedder, tokenizer=tokenizer, pool_size=1)
    pooled.load(projects, institutions, *vectors)
    # With a pool of one per channel the best institution is still found, and filters still hold.
    assert pooled.match_project(1, "fund", 1)[0].id == full.match_project(1, "fund", 1)[0].id
    only = pooled.match_project(1, "fund", 5, Filters(allowed_ids=frozenset({102, 103})))
    assert {m.id for m in only} <= {102, 103}


@pytest.mark.parametrize("evidence", [False, True])
def test_a_rows_statistics_do_not_depend_on_the_batch_that_computed_them(
    service: MatchingService, evidence: bool
) -> None:
    # A project's row statistics scale every pair of its row: computed alone (its first view) or in a
    # batch with others (the 匹配度 reference, a warm pass), they must agree far below any shown digit,
    # or the same pair shows 29.6 on one page and 29.7 on another.
    pids = sorted(service._projects)
    with service._lock:
        cache = service._pair_cache()
        blk = service._side_block("fund", evidence, cache)
        alone = [service._row_stats([p], blk, {})[0] for p in pids]
        together = service._row_stats(pids, blk, {})
    np.testing.assert_allclose(np.array(alone), together, rtol=0, atol=1e-12)
