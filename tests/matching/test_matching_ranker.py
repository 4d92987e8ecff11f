"""Rankers: the estimator contract, additive contributions and joblib round trips."""

from __future__ import annotations

import numpy as np
import pytest

from matching.features import FEATURES
from matching.ranker import HandWeightedRanker, LearnedRanker, Ranker, load_ranker


def data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    logit = 2.0 * X[:, FEATURES.index("dense")] + 1.0 * X[:, FEATURES.index("industry")] - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_hand_weights_are_additive() -> None:
    X, _ = data(10)
    r = HandWeightedRanker({"dense": 2.0})
    assert np.allclose(r.contributions(X).sum(axis=1), r.score(X))
    with pytest.raises(ValueError, match="unknown feature"):
        HandWeightedRanker({"nope": 1.0}).score(X)


@pytest.mark.parametrize("model", ["logistic", "pairwise", "hgb", "lambdarank"])
def test_learned_ranker_contract(model: str, tmp_path) -> None:
    X, y = data()
    ranker = LearnedRanker(model=model, random_state=0)
    groups = np.arange(len(y)) // 20  # 20 candidates per query
    assert ranker.fit(X, y, groups=groups) is ranker
    assert hasattr(ranker, "estimator_") and ranker.n_positive_ == int(y.sum())
    scores = ranker.score(X)
    # The informative feature drives the score.
    assert np.corrcoef(scores, X[:, FEATURES.index("dense")])[0, 1] > 0.5
    contrib = ranker.contributions(X[:5])
    assert contrib.shape == (5, len(FEATURES))
    if model in ("logistic", "pairwise", "lambdarank"):
        # Exact (coefficients, TreeSHAP): contributions differ from the score by one constant.
        diff = scores[:5] - contrib.sum(axis=1)
        assert np.allclose(diff, diff[0])
    top = max(ranker.set_importances(X).feature_importances().items(), key=lambda kv: kv[1])[0]
    assert top == "dense"
    path = tmp_path / "ranker.joblib"
    ranker.save(path)
    again = Ranker.load(path)
    assert np.allclose(again.score(X), scores)
    assert isinstance(load_ranker(tmp_path / "missing.joblib"), HandWeightedRanker)


def test_fit_needs_both_labels() -> None:
    X, _ = data(20)
    with pytest.raises(ValueError, match="both labels"):
        LearnedRanker().fit(X, np.zeros(20))
    with pytest.raises(RuntimeError, match="not fitted"):
        LearnedRanker().score(X)


def test_pairwise_needs_groups() -> None:
    X, y = data(40)
    with pytest.raises(ValueError, match="groups"):
        LearnedRanker(model="pairwise").fit(X, y)
    with pytest.raises(ValueError, match="groups"):
        LearnedRanker(model="lambdarank").fit(X, y)


def test_lambdarank_is_repeatable_and_groups_may_arrive_unsorted() -> None:
    X, y = data()
    groups = np.arange(len(y)) % 20  # rows of a query interleaved
    a = LearnedRanker(model="lambdarank", random_state=0).fit(X, y, groups=groups)
    b = LearnedRanker(model="lambdarank", random_state=0).fit(X, y, groups=groups)
    assert np.array_equal(a.score(X), b.score(X))
    assert np.corrcoef(a.score(X), X[:, FEATURES.index("dense")])[0, 1] > 0.5


def test_activity_prior_lifts_active_institutions_and_stays_additive() -> None:
    X, y = data()
    plain = LearnedRanker(model="logistic").fit(X, y)
    prior = LearnedRanker(model="logistic", prior_weight=2.0).fit(X, y)
    j = FEATURES.index("recency_slow")
    busy, quiet = X[:1].copy(), X[:1].copy()
    busy[0, j], quiet[0, j] = 2.0, 0.0
    lift = (prior.score(busy) - prior.score(quiet)) - (plain.score(busy) - plain.score(quiet))
    assert lift[0] == pytest.approx(2.0 * 2.0 * prior.score_scale)
    # Contributions still explain score differences exactly.
    diff = prior.score(X[:2]) - prior.score(X[2:4])
    assert np.allclose(prior.contributions(X[:2]).sum(1) - prior.contributions(X[2:4]).sum(1), diff)
    assert prior.feature_importances()["recency_slow"] > plain.feature_importances()["recency_slow"]
