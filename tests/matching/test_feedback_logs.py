"""Position bias from logs, debiased training rows and replay metrics (matching.feedback, pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from matching.feedback import (
    LoggedItem,
    estimate_propensities,
    replay_metrics,
    split_by_time,
    training_set,
)

T0 = datetime(2026, 1, 1)


def _log(theta, n_lists=3000, n_queries=30, n_items=40, shown=10, confounded=True, seed=0):
    """Simulate lists from a position-based click model with known examination theta."""
    rng = np.random.default_rng(seed)
    rel = rng.beta(1, 3, size=(n_queries, n_items))
    items = []
    for n in range(n_lists):
        q = n % n_queries
        cand = rng.choice(n_items, 15, replace=False)
        order = np.argsort(-(rel[q, cand] + rng.normal(0, 0.15, 15))) if confounded else rng.permutation(15)
        for k, d in enumerate(cand[order][:shown]):
            click = rng.random() < theta[k] * rel[q, d]
            items.append(
                LoggedItem(f"l{n}", T0 + timedelta(hours=n), "institution", q, int(d), q, k + 1, int(click))
            )
    return items


def test_propensities_recover_a_known_position_bias():
    theta = 1.0 / np.arange(1, 11)
    est = estimate_propensities(_log(theta, confounded=False), max_position=10)
    assert est.theta[0] == 1.0
    assert np.abs(est.theta - theta).max() < 0.08


def test_propensities_undo_more_bias_than_raw_click_rates_when_the_ranker_put_relevant_items_on_top():
    theta = 1.0 / np.arange(1, 11)
    log = _log(theta)
    auto = estimate_propensities(log, max_position=10)
    raw = auto.click_rates() / auto.click_rates()[0]
    err_raw = np.abs(raw - theta).mean()
    assert np.abs(auto.theta - theta).mean() < err_raw
    assert np.all(np.diff(auto.theta) <= 1e-12)  # non-increasing
    # Every pair recurs here at many positions: a weak relevance prior separates position from item.
    weak = estimate_propensities(log, max_position=10, prior=1.0)
    assert np.abs(weak.theta - theta).mean() < 0.4 * err_raw


def test_training_rows_weigh_actions_by_gain_over_propensity():
    theta = np.array([1.0, 0.5, 0.25, 0.2])
    items = [
        LoggedItem("a", T0, "institution", 1, 10, 1, 1, 1),
        LoggedItem("a", T0, "institution", 1, 11, 1, 2, 0),
        LoggedItem("a", T0, "institution", 1, 12, 1, 3, 5),
        LoggedItem("b", T0, "institution", 1, 13, 1, 1, 0),  # a list nobody acted on: dropped
    ]
    from matching.feedback import Propensities

    props = Propensities(theta, 1, np.ones(4, dtype=np.int64), np.ones(4, dtype=np.int64))
    ts = training_set(items, props)
    assert [r.project_id for r in ts.items] == [10, 11, 12]
    assert ts.labels.tolist() == [1, 0, 1]
    assert ts.weights.tolist() == [1.0, 1.0, 31.0 * 4.0]
    assert ts.groups.tolist() == [0, 0, 0]


def test_replay_metrics_reward_putting_the_acted_item_first():
    props = estimate_propensities([], max_position=3)
    items = [
        LoggedItem("a", T0, "institution", 1, 10, 1, 1, 0),
        LoggedItem("a", T0, "institution", 1, 11, 1, 2, 0),
        LoggedItem("a", T0, "institution", 1, 12, 1, 3, 3),
    ]
    logged = replay_metrics(items, None, props, k=1)
    best = replay_metrics(items, np.array([0.0, 0.1, 0.9]), props, k=1)
    assert logged["ndcg@1"] == 0.0 and logged["recall@1"] == 0.0
    assert best["ndcg@1"] == 1.0 and best["recall@1"] == 1.0 and best["lists"] == 1


def test_time_split_holds_out_the_newest_lists_whole():
    items = _log(1.0 / np.arange(1, 11), n_lists=50)
    train, test = split_by_time(items, 0.2)
    assert max(r.at for r in train) < min(r.at for r in test)
    assert {r.list_id for r in train}.isdisjoint({r.list_id for r in test})
    assert len(train) + len(test) == len(items)
