"""Pair scores from per-project row statistics: the same 匹配度 on every page, warm or cold."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from embeddings import Embedder
from matching.normalize import ScoreScale
from matching.service import MatchingService
from matching.types import Filters


def _lists(svc: MatchingService) -> list[tuple[int, list[tuple[int, float]]]]:
    return [
        (f, [(m.id, m.score) for m in svc.match_institution(f, 20, explain=False)])
        for f in svc.institution_ids("fund")
    ]


def test_institution_list_scores_equal_the_project_page(
    embedder: Embedder, vectors, projects, institutions, tokenizer
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    compared = 0
    for fund, items in _lists(svc):
        for pid, score in items:
            on_project = {m.id: m.score for m in svc.match_project(pid, "fund", 100, explain=False)}
            assert on_project[fund] == score == svc.match_degree(pid, fund)
            compared += 1
    assert compared > 0


def test_warm_rows_change_no_number(embedder: Embedder, vectors, projects, institutions, tokenizer) -> None:
    cold = MatchingService(embedder, tokenizer=tokenizer)
    cold.load(projects, institutions, *vectors)
    warm = MatchingService(embedder, tokenizer=tokenizer)
    warm.load(projects, institutions, *vectors)
    assert warm.warm_pair_rows("fund") == len(projects)
    assert warm.warm_pair_rows("fund") == 0  # kept until the next edit
    assert _lists(warm) == _lists(cold)
    pids = warm.project_ids()
    np.testing.assert_allclose(
        warm.score_block(pids, warm.institution_ids("fund")),
        cold.score_block(pids, cold.institution_ids("fund")),
        atol=1e-3,  # float32 features in bulk (see score_block)
    )
    p = projects[0]
    warm.upsert_project(p, embedder.encode_documents(["碳纤维复合材料 轻量化"])[0])
    assert warm.warm_pair_rows("fund") == len(projects)  # an edit drops every row's statistics


def test_the_warmer_computes_the_rows_of_the_lists_asked_for_once_the_records_hold_still(
    embedder: Embedder, vectors, projects, institutions, tokenizer
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    fund = svc.institution_ids("fund")[0]
    before = svc.match_institution(fund, 5, explain=False)  # asks for the funds' rows (evidence on)
    thread = svc.start_warming(0.05)
    try:
        deadline = time.monotonic() + 30
        while svc.warmed_rows("fund") < len(projects) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.warm_pair_rows("fund") == 0  # the warmer computed every row
        assert svc.warmed_rows("base") == 0  # no base list was asked for: left alone
        assert svc.match_institution(fund, 5, explain=False) == before
    finally:
        svc.stop_warming()
        thread.join(5)
    assert not thread.is_alive()


def test_the_warmer_ranks_every_institutions_list_of_the_kinds_asked_for(
    embedder: Embedder, vectors, projects, institutions, tokenizer, monkeypatch
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    ids = sorted(i.id for i in institutions)
    public = Filters(public_only=True, evidence=False)
    for iid in ids[:3]:
        svc.match_institution(iid, 7, public)  # asks for this kind
    svc.match_institution(ids[0], 30)  # k above WARM_LIST_MAX_K: never warmed
    svc.match_institution(ids[0], 5, Filters(allowed_ids=frozenset(p.id for p in projects[:20])))  # filtered
    assert list(svc._asked_lists) == [(7, public, True)]
    svc.upsert_project(replace(projects[0], name=projects[0].name + "（更名）"), None)  # a new state
    expected = {iid: svc._match_institution(iid, 7, public, True) for iid in ids}  # what a first view shows
    ranked: list[int] = []
    real = svc._match_institution
    monkeypatch.setattr(svc, "_match_institution", lambda i, *a: ranked.append(i) or real(i, *a))
    thread = svc.start_warming(0.05)
    try:
        deadline = time.monotonic() + 60
        while len(ranked) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop_warming()
        thread.join(5)
    assert sorted(ranked) == ids  # each institution's list once
    for iid in ids:  # kept: asked for now, nothing is ranked, and it is the list a first view shows
        assert svc.match_institution(iid, 7, public) == expected[iid]
    assert len(ranked) == len(ids)
    assert svc.warm_lists(7, public) == 0  # all kept already
    svc.upsert_project(replace(projects[1], name=projects[1].name + "（更名）"), None)
    assert svc.warm_lists(7, public) == len(ids)


def test_shown_degree_ignores_last_bit_noise() -> None:
    scale = ScoreScale(np.arange(8.0))  # mid-rank percentiles 6.25, 18.75, ...: on rounding boundaries
    exact = scale.shown(1.0)
    assert scale.shown(1.0 + 1e-13) == exact == scale.shown(1.0 - 1e-13)
    assert list(scale.shown_many(np.array([1.0, 1.0 + 1e-13]))) == [exact, exact]


def test_a_list_asked_again_is_kept_until_an_edit(
    embedder: Embedder, vectors, projects, institutions, tokenizer, monkeypatch
) -> None:
    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    fund = svc.institution_ids("fund")[0]
    pid = projects[0].id
    calls: list[str] = []
    ranked_inst, ranked_proj = svc._match_institution, svc._match_project
    monkeypatch.setattr(svc, "_match_institution", lambda *a: calls.append("i") or ranked_inst(*a))
    monkeypatch.setattr(svc, "_match_project", lambda *a: calls.append("p") or ranked_proj(*a))
    first = svc.match_institution(fund, 10)
    assert svc.match_institution(fund, 10) == first and calls == ["i"]
    assert svc.match_project(pid, "fund", 10) == svc.match_project(pid, "fund", 10) and calls == ["i", "p"]
    first.pop()  # the caller's own copy
    assert len(svc.match_institution(fund, 10)) == len(first) + 1
    svc.match_institution(fund, 5)  # other arguments: another list
    assert calls == ["i", "p", "i"]
    svc.upsert_project(projects[1], embedder.encode_documents(["碳纤维复合材料 轻量化"])[0])
    svc.match_institution(fund, 10)  # an edit is a new state: ranked again
    assert calls == ["i", "p", "i", "i"]


def test_kept_lists_outlast_the_pair_rows_other_rankings_add(
    embedder: Embedder, vectors, projects, institutions, tokenizer, monkeypatch
) -> None:
    import matching.service as service_module

    monkeypatch.setattr(service_module, "_PAIR_CACHE_SIZE", 8)  # pair rows overflow at once
    svc = MatchingService(embedder, tokenizer=tokenizer)
    svc.load(projects, institutions, *vectors)
    funds = svc.institution_ids("fund")
    first = svc.match_institution(funds[0], 10)
    for fund in funds[1:]:
        svc.match_institution(fund, 10)
    calls = []
    monkeypatch.setattr(svc, "_match_institution", lambda *a, **kw: calls.append(a) or [])
    assert svc.match_institution(funds[0], 10) == first  # still kept: not ranked again
    assert calls == []
    svc.upsert_project(projects[0], vectors[0][projects[0].id])  # an edit: a new state, nothing kept
    svc.match_institution(funds[0], 10)
    assert len(calls) == 1
