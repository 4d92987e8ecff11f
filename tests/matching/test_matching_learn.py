"""Training from outcomes: the same features as ranking, no self-explanation, sane fallbacks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from matching.features import FEATURES
from matching.learn import LabelledPair, feature_rows, fit_ranker, sample_negatives
from matching.ranker import HandWeightedRanker, LearnedRanker
from matching.service import MatchingService
from matching.types import InstitutionProfile, PortfolioItem, ProjectProfile


def test_too_few_outcomes_keep_hand_weights(service: MatchingService) -> None:
    pairs = [LabelledPair(service.project(1), service.institution(101), 1, "2024-01-01")]
    ranker, report = fit_ranker(pairs, service)
    assert isinstance(ranker, HandWeightedRanker)
    assert report.model == "hand" and report.n_positive == 1


def test_fit_from_outcomes_learns_industry_fit(service: MatchingService) -> None:
    funds = service.institution_ids("fund")
    pairs = []
    for pid in service.project_ids():
        proj = service.project(pid)
        for iid in funds:
            inst = service.institution(iid)
            label = int(bool(set(proj.industries) & set(inst.industries)))
            pairs.extend([LabelledPair(proj, inst, label, f"2024-0{1 + pid % 9}-01")] * 3)
    ranker, report = fit_ranker(
        pairs, service, LearnedRanker(C=10.0), min_positives=3, min_negatives=3, half_life_days=365
    )
    assert isinstance(ranker, LearnedRanker) and report.n_positive > 0
    coef = dict(zip(FEATURES, ranker.estimator_.coef_.ravel(), strict=True))
    assert coef["industry"] > 0
    service.set_ranker(ranker)
    assert service.match_project(2, "fund", 1)[0].id == 102  # the learned ranker now ranks


def test_unknown_profiles_are_skipped(service: MatchingService) -> None:
    ghost = ProjectProfile(999, "未知", "")
    X, _y, kept, skipped = feature_rows([LabelledPair(ghost, service.institution(101), 1)], service)
    assert X.shape == (0, len(FEATURES)) and skipped == 1 and not kept


def test_an_outcome_does_not_explain_itself(service: MatchingService, vectors) -> None:
    # Project 5 is in fund 101's portfolio: its features must be computed as if it were not.
    X = service.features_for_project(5, [101], leave_out=True)
    inst = service.institution(101)
    trimmed = replace(inst, portfolio=())
    service.upsert_institution(trimmed, vectors[1][101])
    Y = service.features_for_project(5, [101], leave_out=True)
    j = FEATURES.index("activity")
    assert X[0, j] == Y[0, j] == 0.0  # the only portfolio item was the pair itself
    assert np.allclose(X[0, FEATURES.index("industry_portfolio")], Y[0, FEATURES.index("industry_portfolio")])


def test_sample_negatives_never_draws_positives(service: MatchingService) -> None:
    drawn = sample_negatives({1: {101}, 2: {102}}, service, "fund", 5, random_state=0, exclude={1: {103}})
    assert (1, 101) not in drawn and (2, 102) not in drawn and (1, 103) not in drawn
    assert {i for _, i in drawn} <= set(service.institution_ids("fund"))
    assert sample_negatives({1: {101}}, service, "fund", 5, 0) == sample_negatives(
        {1: {101}}, service, "fund", 5, 0
    )


def test_sample_negatives_respects_candidates(service: MatchingService) -> None:
    drawn = sample_negatives({1: set()}, service, "fund", 5, candidates={103})
    assert drawn == [(1, 103)]


def test_portfolio_outcomes_use_portfolio_dates() -> None:
    item = PortfolioItem(1, "2020-01-01")
    inst = InstitutionProfile(1, "x", "创业投资机构", "", portfolio=(item,))
    assert inst.portfolio[0].date == "2020-01-01"


def test_product_ranker_is_lambdamart_and_ranks_in_the_service(service: MatchingService, tmp_path) -> None:
    funds = service.institution_ids("fund")
    pairs = []
    for pid in service.project_ids():
        proj = service.project(pid)
        for iid in funds:
            inst = service.institution(iid)
            label = int(bool(set(proj.industries) & set(inst.industries)))
            pairs.extend([LabelledPair(proj, inst, label, f"2024-0{1 + pid % 9}-01")] * 3)
    ranker, report = fit_ranker(pairs, service, min_positives=3, min_negatives=3)
    assert isinstance(ranker, LearnedRanker) and ranker.model == "lambdarank" and report.model == "lambdarank"
    assert report.importances["industry"] > 0
    service.set_ranker(ranker)
    top = service.match_project(2, "fund", 3)
    assert top and all(m.reasons is not None for m in top)
    path = tmp_path / "ranker.joblib"
    ranker.save(path)
    from matching.ranker import load_ranker

    again = load_ranker(path)
    service.set_ranker(again)
    assert [m.id for m in service.match_project(2, "fund", 3)] == [m.id for m in top]
    service.set_ranker(None)
