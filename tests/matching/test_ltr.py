"""LTR features and LambdaMART training: shapes, no look-ahead, determinism, a tiny learnable set."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from matching.ltr import (
    DEFAULT_GRID,
    SEGMENTS,
    SIMPLE_SCORERS,
    STAGE_PRIOR_FEATURE,
    LambdaMART,
    LTRSettings,
    _chosen,
    fit_final,
    ndcg10,
    query_segments,
    rank_queries,
    select_model,
    training_set,
    validation_slices,
    window_bounds,
    window_targets,
)
from matching.ltr_features import (
    FEATURE_GROUPS,
    LTR_FEATURES,
    InvestmentLog,
    ProjectContent,
    StatedProfiles,
    day_number,
    group_columns,
    next_stage,
    pair_block,
    snapshot,
)

N_INST, N_PROJ, DIM, N_TOPIC = 24, 160, 8, 4


def synthetic(seed: int = 0) -> tuple[InvestmentLog, ProjectContent]:
    """Funds with a topic each invest in projects of their topic (plus noise) over 6 years."""
    rng = np.random.default_rng(seed)
    topic_of_proj = rng.integers(0, N_TOPIC, N_PROJ)
    topic_of_inst = np.arange(N_INST) % N_TOPIC
    centres = rng.normal(size=(N_TOPIC, DIM))
    vectors = centres[topic_of_proj] + 0.6 * rng.normal(size=(N_PROJ, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    vectors[::17] = 0.0  # a few projects without text
    start = day_number("2015-01-01") or 0
    proj_day = start + np.sort(rng.integers(0, 6 * 365, N_PROJ))
    inst, proj, day, stage = [], [], [], []
    for p in range(N_PROJ):
        same = np.flatnonzero(topic_of_inst == topic_of_proj[p])
        picks = rng.choice(same, size=2, replace=False).tolist()
        if rng.random() < 0.3:
            picks.append(int(rng.integers(0, N_INST)))
        for i in dict.fromkeys(picks):
            inst.append(i)
            proj.append(p)
            day.append(int(proj_day[p] + rng.integers(0, 60)))
            stage.append(int(rng.integers(-1, 6)))
    tfidf = sp.csr_matrix(np.eye(N_TOPIC)[topic_of_proj] + 0.1)
    tfidf = sp.csr_matrix(tfidf.multiply(1.0 / np.sqrt(tfidf.multiply(tfidf).sum(axis=1))))
    cats = sp.csr_matrix(np.eye(N_TOPIC)[topic_of_proj])
    log = InvestmentLog.build(N_INST, N_PROJ, inst, proj, day, stage)
    return log, ProjectContent(vectors, tfidf, cats)


@pytest.fixture(scope="module")
def data() -> tuple[InvestmentLog, ProjectContent]:
    return synthetic()


def _subset(log: InvestmentLog, keep: np.ndarray) -> InvestmentLog:
    return InvestmentLog(
        log.n_institutions, log.n_projects, log.inst[keep], log.proj[keep], log.day[keep], log.stage[keep]
    )


def test_feature_groups_cover_every_column_once() -> None:
    names = [f for g in FEATURE_GROUPS.values() for f in g]
    assert tuple(names) == LTR_FEATURES and len(set(names)) == len(names)
    assert set(FEATURE_GROUPS) == {
        "activity",
        "portfolio_sim",
        "fund_profile",
        "transition",
        "graph",
        "stated",
    }
    cols = group_columns(drop="graph")
    assert len(cols) == len(LTR_FEATURES) - len(FEATURE_GROUPS["graph"])
    with pytest.raises(ValueError):
        group_columns(drop="nope")


def test_block_shape_and_earlier_backers(data) -> None:
    log, content = data
    t = int(np.median(log.day))
    snap = snapshot(log, content, t)
    queries = [0, 5, 120, 150]
    insts = np.arange(N_INST)
    X, linked = pair_block(snap, content, queries, insts)
    assert X.shape == (4, N_INST, len(LTR_FEATURES)) and X.dtype == np.float32
    before = log.day < t
    for r, q in enumerate(queries):
        expect = set(log.inst[before & (log.proj == q)].tolist())
        assert set(np.flatnonzero(linked[r]).tolist()) == expect
    # a query without text has no text similarity; activity does not depend on the query
    j = LTR_FEATURES.index("act_log_count")
    assert np.allclose(X[0, :, j], X[2, :, j])
    no_text = [r for r, q in enumerate(queries) if not content.vectors[q].any()]
    for r in no_text:
        assert np.isnan(X[r, :, LTR_FEATURES.index("sim_max")]).all()


def test_stated_profiles_fill_their_group_and_only_where_an_institution_says_something(data) -> None:
    log, content = data
    t = int(np.median(log.day))
    queries, insts = [1, 2, 3], np.arange(N_INST)
    # without stated profiles the group is not a model input and its columns are NaN
    assert "stated" not in content.groups
    stated_cols = set(group_columns(["stated"]).tolist())
    assert not stated_cols & set(content.columns().tolist())
    X, _ = pair_block(snapshot(log, content, t), content, queries, insts)
    assert np.isnan(X[:, :, sorted(stated_cols)]).all()
    # institution 0 states 30 A-round and 10 B-round deals and a description; 1 only a description
    counts = np.zeros((N_INST, 6))
    counts[0, 3], counts[0, 4] = 30.0, 10.0
    vectors = np.zeros((N_INST, DIM), dtype=np.float32)
    vectors[0] = content.vectors[1]
    vectors[1] = content.vectors[2]
    with_stated = replace(content, stated=StatedProfiles(counts, vectors))
    assert "stated" in with_stated.groups and stated_cols <= set(with_stated.columns().tolist())
    snap = snapshot(log, with_stated, t)
    X, _ = pair_block(snap, with_stated, queries, insts)
    deals = X[:, :, LTR_FEATURES.index("st_deals")]
    assert np.allclose(deals[:, 0], np.log1p(40.0)) and np.isnan(deals[:, 1:]).all()
    expected = X[:, :, LTR_FEATURES.index("st_expected_round")]
    assert (expected[:, 0] > 0).all() and np.isnan(expected[:, 1:]).all()
    # the description reads closest to the project it was written from (z-scored within the query)
    text = X[:, :, LTR_FEATURES.index("st_text")]
    assert np.isnan(text[:, 2:]).all()
    assert text[0, 0] > text[0, 1] and text[1, 1] > text[1, 0]
    # the other groups do not change
    plain, _ = pair_block(snapshot(log, content, t), content, queries, insts)
    others = [j for j in range(len(LTR_FEATURES)) if j not in stated_cols]
    assert np.array_equal(np.nan_to_num(plain[:, :, others], nan=-1), np.nan_to_num(X[:, :, others], nan=-1))


def test_portfolio_similarities_match_a_direct_computation(data) -> None:
    log, content = data
    t = int(np.quantile(log.day, 0.7))
    snap = snapshot(log, content, t)
    q = 150
    X, _ = pair_block(snap, content, [q], np.arange(N_INST))
    before = log.day < t
    for i in range(N_INST):
        port = sorted(set(log.proj[before & (log.inst == i)].tolist()) - {q})
        port = [p for p in port if content.vectors[p].any()]
        sims = np.sort(content.vectors[port] @ content.vectors[q])[::-1]
        got = {f: X[0, i, LTR_FEATURES.index(f)] for f in ("sim_max",)}
        if not port:
            assert np.isnan(got["sim_max"])
            continue
        assert got["sim_max"] == pytest.approx(sims[0], abs=1e-5)
    # top-3 mean is between the mean and the max before standardising: check raw ordering holds per fund
    raw_top3 = []
    for i in range(N_INST):
        port = [p for p in set(log.proj[before & (log.inst == i)].tolist()) if content.vectors[p].any()]
        s = np.sort(content.vectors[port] @ content.vectors[q])[::-1]
        raw_top3.append(s[:3].mean() if len(s) else np.nan)
    raw_top3 = np.asarray(raw_top3)
    z = X[0, :, LTR_FEATURES.index("sim_top3")]
    ok = ~np.isnan(raw_top3)
    # z-scores keep the order of the raw top-3 means
    assert np.array_equal(np.argsort(raw_top3[ok], kind="stable"), np.argsort(z[ok], kind="stable"))


def test_features_ignore_future_events(data) -> None:
    """Removing or reshuffling every event dated on/after t leaves the features at t unchanged."""
    log, content = data
    t = int(np.quantile(log.day, 0.6))
    queries = list(range(0, N_PROJ, 7))
    insts = np.arange(N_INST)
    X0, L0 = pair_block(snapshot(log, content, t), content, queries, insts)
    past = log.day < t
    X1, L1 = pair_block(snapshot(_subset(log, past), content, t), content, queries, insts)
    rng = np.random.default_rng(3)
    fut = np.flatnonzero(~past)
    shuffled = InvestmentLog(
        log.n_institutions,
        log.n_projects,
        np.r_[log.inst[past], rng.permutation(log.inst[fut])],
        np.r_[log.proj[past], rng.permutation(log.proj[fut])],
        np.r_[log.day[past], rng.integers(t, t + 900, fut.size)],
        np.r_[log.stage[past], rng.permutation(log.stage[fut])],
    )
    X2, L2 = pair_block(snapshot(shuffled, content, t), content, queries, insts)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(X0, X2)
    assert np.array_equal(L0, L1) and np.array_equal(L0, L2)
    # ... while an earlier event does change them (the test can fail)
    extra = InvestmentLog.build(
        N_INST,
        N_PROJ,
        [*log.inst[past], 3],
        [*log.proj[past], queries[1]],
        [*log.day[past], t - 1],
        [*log.stage[past], 2],
    )
    X3, _ = pair_block(snapshot(extra, content, t), content, queries, insts)
    assert not np.array_equal(np.nan_to_num(X0), np.nan_to_num(X3))


def test_windows_and_targets_never_look_ahead(data) -> None:
    log, _content = data
    end = int(np.quantile(log.day, 0.9))
    bounds = window_bounds(log.day, end, 0.5, 4)
    assert bounds and bounds[-1][1] == end
    assert all(a < b for a, b in bounds) and all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(bounds))
    for a, b in bounds:
        targets = window_targets(log, a, b)
        for p, insts in targets.items():
            for i in insts:
                when = log.day[(log.inst == i) & (log.proj == p)]
                assert when.min() >= a and (when < b).any()
                assert (log.day[log.inst == i] < a).any()  # active before the window


def _with_outside(
    log: InvestmentLog, content: ProjectContent, inst: int, day: int, stage: int, n: int
) -> tuple[InvestmentLog, ProjectContent]:
    """Add n events of one institution with n companies outside the set (no text, no category)."""
    extra = np.arange(log.n_projects, log.n_projects + n)
    grown = InvestmentLog.build(
        log.n_institutions,
        log.n_projects + n,
        [*log.inst.tolist(), *[inst] * n],
        [*log.proj.tolist(), *extra.tolist()],
        [*log.day.tolist(), *[day] * n],
        [*log.stage.tolist(), *[stage] * n],
        [False] * log.day.size + [True] * n,
    )
    pad = sp.csr_matrix((n, content.tfidf.shape[1]))
    return grown, ProjectContent(
        np.vstack([content.vectors, np.zeros((n, content.vectors.shape[1]), np.float32)]),
        sp.vstack([content.tfidf, pad]).tocsr(),
        sp.vstack([content.categories, sp.csr_matrix((n, content.categories.shape[1]))]).tocsr(),
    )


def test_outside_events_count_toward_an_institution_but_are_never_targets_or_windows(data) -> None:
    log, content = data
    end = int(log.day.max()) + 1
    day = int(np.quantile(log.day, 0.95))  # inside the newest training windows
    grown, padded = _with_outside(log, content, inst=3, day=day, stage=4, n=5)
    assert (
        grown.outside is not None and int(grown.outside.sum()) == 5 and int(grown.own.sum()) == log.day.size
    )
    # the institution's state after the day reads the five deals: count, stages, recent activity
    before, after = snapshot(log, content, end), snapshot(grown, padded, end)
    assert after.count[3] == before.count[3] + 5
    assert after.stage_counts[3, 4] == before.stage_counts[3, 4] + 5
    assert after.recent_fast[3] > before.recent_fast[3]
    assert np.array_equal(np.delete(after.count, 3), np.delete(before.count, 3))
    # ... and only after it (the leakage rule holds for outside events too)
    assert np.array_equal(snapshot(grown, padded, day).stage_counts, snapshot(log, content, day).stage_counts)
    # the outside companies are never a query or a target, and the windows stay where they were
    settings = LTRSettings(negatives=8, max_queries=30, windows=3)
    assert (
        training_set(grown, padded, end, settings).windows
        == training_set(log, content, end, settings).windows
    )
    for a, b in window_bounds(log.day, end, 0.5, 4):
        assert window_targets(grown, a, b) == window_targets(log, a, b)
    # with no outside event the log says so
    assert InvestmentLog.build(2, 2, [0], [1], [5], None, [False]).outside is None


def test_training_rows_are_grouped_and_deterministic(data) -> None:
    log, content = data
    end = int(log.day.max()) + 1
    settings = LTRSettings(negatives=8, max_queries=30, windows=3)
    a = training_set(log, content, end, settings)
    b = training_set(log, content, end, settings)
    assert a.group.sum() == len(a.y) == a.X.shape[0] and a.n_queries > 0
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    starts = np.r_[0, np.cumsum(a.group)[:-1]]
    for s, n in zip(starts, a.group, strict=True):
        y = a.y[s : s + n]
        assert y[0] == 1 and (y == 0).any() and n <= y.sum() + 8  # positives first, then its negatives


def test_lambdamart_learns_topics_and_is_repeatable(data) -> None:
    log, content = data
    end = int(np.quantile(log.day, 0.85))
    settings = LTRSettings(negatives=10, max_queries=60, windows=3)
    params = {"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1}
    models, train = fit_final(log, content, end, params, 40, settings, (None, "portfolio_sim"))
    again, _ = fit_final(log, content, end, params, 40, settings, (None,), train)
    relevant = window_targets(log, end, int(log.day.max()) + 1)
    queries = sorted(relevant)
    scorers = {"full": models[None], "again": again[None], "no_sim": models["portfolio_sim"]}
    ranked = rank_queries(log, content, end, queries, scorers, top_n=10)
    assert ranked["full"] == ranked["again"]  # seeded, one thread: the same lists
    # Topic-following funds: the learned ranking beats a random order by far.
    rng = np.random.default_rng(0)
    snap = snapshot(log, content, end)
    active = np.flatnonzero(snap.active)
    random_lists = {q: rng.permutation(active)[:10].tolist() for q in queries}
    assert ndcg10(ranked["full"], relevant) > 2 * ndcg10(random_lists, relevant)
    # (the stated group is no input here: this content has no stated profiles)
    assert models["portfolio_sim"].feature_names == tuple(
        f for f in LTR_FEATURES if f not in FEATURE_GROUPS["portfolio_sim"] + FEATURE_GROUPS["stated"]
    )
    X, _ = pair_block(snap, content, queries[:2], active)
    flat = X.reshape(-1, X.shape[2])
    contrib = models[None].contributions(flat)
    assert contrib.shape == (flat.shape[0], len(content.columns()))
    # TreeSHAP contributions plus the bias reproduce the raw score.
    raw = models[None].score(flat)
    # (the default settings fit a bag: its bias is the mean of its models' biases)
    bias = np.mean(
        [
            m.booster_.predict(flat[:, models[None].columns], num_iteration=40, pred_contrib=True)[:, -1]
            for m in models[None].models_
        ],
        axis=0,
    )
    np.testing.assert_allclose(contrib.sum(axis=1) + bias, raw, atol=1e-6)


def test_a_bag_averages_differently_seeded_models(data) -> None:
    log, content = data
    end = int(np.quantile(log.day, 0.85))
    train = training_set(log, content, end, LTRSettings(negatives=10, max_queries=60, windows=3))
    params = {"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1, "prior": 1.0}
    cols = group_columns()
    bag = LambdaMART(params, cols, n_estimators=20, bags=3).fit(train.X, train.y, train.group)
    again = LambdaMART(params, cols, n_estimators=20, bags=3).fit(train.X, train.y, train.group)
    singles = [
        LambdaMART(params, cols, n_estimators=20, seed=s).fit(train.X, train.y, train.group) for s in range(3)
    ]
    X = train.X[:200]
    members = np.array([m.score(X) for m in singles])
    assert len(bag.models_) == 3 and not np.allclose(members[0], members[1])  # the seeds differ
    np.testing.assert_allclose(bag.score(X), members.mean(axis=0), atol=1e-9)
    np.testing.assert_array_equal(bag.score(X), again.score(X))  # and the bag is repeatable
    assert "bags=3" in bag.label() and set(bag.importances()) == set(bag.feature_names)
    with pytest.raises(ValueError, match="bags"):
        LambdaMART(params, cols, bags=0)


def test_only_small_training_sets_are_bagged(data) -> None:
    settings = LTRSettings(bags=3, bag_below_rows=100)
    assert settings.bags_for(99) == 3 and settings.bags_for(100) == 1
    log, content = data
    end = int(np.quantile(log.day, 0.85))
    params = {"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1}
    small = LTRSettings(negatives=6, max_queries=20, windows=2)
    models, train = fit_final(log, content, end, params, 10, small)
    assert train.X.shape[0] < small.bag_below_rows and len(models[None].models_) == small.bags
    big, _ = fit_final(log, content, end, params, 10, LTRSettings(bag_below_rows=1), train=train)
    assert len(big[None].models_) == 1 and "bags" not in big[None].label()


def test_selection_uses_only_history_before_end(data) -> None:
    log, content = data
    end = int(np.quantile(log.day, 0.8))
    settings = LTRSettings(negatives=8, max_queries=40, windows=2)
    grid = ({"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1},)
    sel = select_model(log, content, end, settings, grid, iterations=(10, 20))
    # Events after end can be anything: the choice must not move.
    keep = log.day < end
    sel2 = select_model(_subset(log, keep), content, end, settings, grid, iterations=(10, 20))
    assert sel.validation == sel2.validation and sel.kind == sel2.kind
    assert sel.cut < end and len(sel.validation) == len(SIMPLE_SCORERS) + 2
    # the best LambdaMART is named even when a single scorer wins
    assert sel.best_lambdamart is not None and sel.best_lambdamart[1] in (10, 20)
    if sel.kind == "lambdamart":
        assert sel.best_lambdamart == (sel.params, sel.iterations)


def test_a_prior_that_is_constant_on_the_training_rows_is_skipped(data) -> None:
    """Without round labels the stage-aware prior is one value: the prior-0 point already ranks so."""
    assert any(g.get("prior_feature") == STAGE_PRIOR_FEATURE for g in DEFAULT_GRID)
    assert STAGE_PRIOR_FEATURE in SIMPLE_SCORERS
    log, content = data
    end = int(np.quantile(log.day, 0.8))
    settings = LTRSettings(negatives=8, max_queries=40, windows=2)
    base = {"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1}
    grid = ({**base, "prior": 0.0}, {**base, "prior": 1.0, "prior_feature": STAGE_PRIOR_FEATURE})
    labelled = select_model(log, content, end, settings, grid, iterations=(10,))
    assert any(STAGE_PRIOR_FEATURE in name for name in labelled.validation)
    unlabelled = replace(log, stage=np.full_like(log.stage, -1))
    sel = select_model(unlabelled, content, end, settings, grid, iterations=(10,))
    assert not any(STAGE_PRIOR_FEATURE in name for name in sel.validation if name.startswith("lambdamart"))
    assert len(sel.validation) == len(SIMPLE_SCORERS) + 1


def test_validation_slices_are_consecutive_and_added_only_while_few_queries(data) -> None:
    log, content = data
    end = int(np.quantile(log.day, 0.8))
    slices = validation_slices(log.day, end, 0.1, 3)
    assert len(slices) == 3 and slices[0][1] == end
    assert all(a < b for a, b in slices)
    assert all(older[1] == newer[0] for newer, older in itertools.pairwise(slices))  # newest first
    grid = ({"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1},)
    base = LTRSettings(negatives=8, max_queries=40, windows=2, validation_fraction=0.1)
    one = select_model(log, content, end, replace(base, max_validation_slices=1), grid, iterations=(10,))
    enough = select_model(log, content, end, replace(base, min_validation_queries=1), grid, iterations=(10,))
    more = select_model(
        log, content, end, replace(base, min_validation_queries=10**6), grid, iterations=(10,)
    )
    assert one.n_validation_queries == enough.n_validation_queries  # the newest slice sufficed
    assert one.validation == enough.validation and one.cut == more.cut == slices[0][0]
    assert more.n_validation_queries > one.n_validation_queries  # older slices were added


def test_query_segments_split_new_projects_from_those_with_earlier_investors() -> None:
    day0 = day_number("2016-01-01") or 0
    log = InvestmentLog.build(2, 4, [0, 1, 0], [0, 1, 1], [day0, day0 + 50, day0 + 100])
    assert query_segments(log, [0, 1, 2, 3], day0 + 10) == ["warm", "cold", "cold", "cold"]
    assert query_segments(log, [1, 0], day0 + 51) == ["warm", "warm"]  # one event before the day suffices


def test_each_segment_is_chosen_on_its_own_validation_queries(data) -> None:
    """A segment's scores are means over its own queries (they add up to the overall ones); a segment
    with too few queries takes the overall choice."""
    log, content = data
    end = int(np.quantile(log.day, 0.8))
    grid = ({"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1},)
    # Warm queries: projects that already had an investor when the slice began (a second round).
    later = log.day.copy()
    second = np.zeros(log.n_projects, dtype=bool)
    for j in np.argsort(log.day, kind="stable"):
        p = int(log.proj[j])
        if second[p]:
            later[j] += 400  # the project's later investors come a year on: warm by then
        second[p] = True
    log = replace(log, day=later)
    base = LTRSettings(negatives=8, max_queries=60, windows=2, validation_fraction=0.3, min_segment_queries=5)
    sel = select_model(log, content, end, base, grid, iterations=(10,))
    assert set(sel.segments) == set(SEGMENTS)
    cold, warm = sel.segments["cold"], sel.segments["warm"]
    assert cold.n_validation_queries + warm.n_validation_queries == sel.n_validation_queries
    for name, score in sel.validation.items():
        parts = (
            cold.n_validation_queries * cold.validation[name]
            + warm.n_validation_queries * warm.validation[name]
        )
        assert parts / sel.n_validation_queries == pytest.approx(score)
    for seg in (cold, warm):
        best = max(seg.validation, key=lambda n: (round(seg.validation[n], 12), n.startswith("single")))
        simple = max((n for n in seg.validation if n.startswith("single")), key=seg.validation.get)
        # the best, or the best single scorer when a learned model leads by less than a standard
        # error, or the overall choice when the segment's own leads it by less than that
        assert seg.label() in (best, simple, sel.name)
        if seg.name != sel.name:
            diff = np.array([seg.validation[seg.name], seg.validation[sel.name]])
            assert diff[0] > diff[1]
    few = select_model(log, content, end, replace(base, min_segment_queries=10**6), grid, iterations=(10,))
    assert few.segments == {} and few.for_segment("warm") is few and few.for_segment("cold") is few


def test_a_segment_keeps_the_overall_choice_unless_its_own_leads_by_a_standard_error() -> None:
    keys = [(0, q) for q in range(40)]
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.3, len(keys))
    fitted = {"lambdamart(a)": ({"num_leaves": 4}, 10)}
    per_query = {
        "single(x)": dict.fromkeys(keys, 0.30),
        "single(y)": {k: 0.30 + 0.02 + e for k, e in zip(keys, noise, strict=True)},  # lead within noise
        "lambdamart(a)": dict.fromkeys(keys, 0.10),
    }
    assert _chosen(per_query, fitted, keys, 0).name == "single(y)"  # alone, the better mean wins
    assert _chosen(per_query, fitted, keys, 0, keep="single(x)").name == "single(x)"
    per_query["single(y)"] = {k: 0.45 + 0.01 * e for k, e in zip(keys, noise, strict=True)}  # a clear lead
    assert _chosen(per_query, fitted, keys, 0, keep="single(x)").name == "single(y)"


def test_expected_round_counts_follow_the_market_next_round_rates() -> None:
    """Two companies went 1 -> 3 and one went 1 -> 4: a company at stage 1 raises 3 twice as often."""
    day0 = day_number("2016-01-01") or 0
    # institution 0 backs stage-3 rounds, 1 backs stage-4 rounds, 2 backs stage-1 rounds
    inst = [2, 0, 2, 0, 2, 1, 0, 1, 2]
    proj = [0, 0, 1, 1, 2, 2, 5, 6, 3]
    day = [day0, day0 + 100, day0, day0 + 100, day0, day0 + 100, day0 + 10, day0 + 10, day0 + 200]
    stage = [1, 3, 1, 3, 1, 4, 3, 4, 1]
    log = InvestmentLog.build(3, 8, inst, proj, day, stage)
    content = ProjectContent(np.zeros((8, 2), np.float32), sp.csr_matrix((8, 1)), sp.csr_matrix((8, 1)))
    snap = snapshot(log, content, day0 + 300)
    k = snap.n_stages
    smooth = 0.5
    expect = (np.array([0, 0, 0, 2, 1, 0]) + smooth) / (3 + k * smooth)
    np.testing.assert_allclose(snap.stage_next[1], expect)
    X, _ = pair_block(snap, content, [3, 7], np.arange(3))
    got = X[:, :, LTR_FEATURES.index("tr_expected_round")]
    counts = snap.stage_counts  # per institution: deals per stage
    np.testing.assert_allclose(got[0], np.log1p(counts @ expect), rtol=1e-5)  # project 3 is at stage 1
    assert got[0, 0] > got[0, 1] > got[0, 2]  # stage-3 backer first, then stage 4, then stage 1
    # a project without a round and no founding year uses the "older, no round" state's rates
    np.testing.assert_allclose(got[1], np.log1p(counts @ snap.stage_next[k + 1]), rtol=1e-5)


def test_next_stage_uses_rounds_then_founding_year(data) -> None:
    log, content = data
    t = int(np.quantile(log.day, 0.5))
    year = int(str(np.datetime64(t, "D"))[:4])
    founded = np.full(N_PROJ, -1, dtype=np.int64)
    founded[:] = year - 10
    founded[1] = year - 1  # young
    with_years = ProjectContent(content.vectors, content.tfidf, content.categories, founded)
    snap = snapshot(log, with_years, t)
    unseen = [p for p in range(N_PROJ) if not (log.day[log.proj == p] < t).any()][:3]
    nxt = next_stage(snap, with_years, np.asarray([1, *unseen]))
    assert nxt[0] == (2 if snap.last_stage[1] < 0 else min(snap.last_stage[1] + 1, 5))
    assert all(n == -1 for n in nxt[1:])  # old companies without a visible round: unknown
    X, _ = pair_block(snap, with_years, [1], np.arange(N_INST))
    lift = X[0, :, LTR_FEATURES.index("tr_stage_lift")]
    assert np.isfinite(lift).all() and (lift >= 0).all()


def test_extra_group_is_appended_named_and_ablatable(data) -> None:
    log, content = data
    calls: list[int] = []

    def extra(as_of: int, queries: np.ndarray, insts: np.ndarray) -> np.ndarray:
        calls.append(as_of)
        # a past-only signal: how often the institution backed anything before the day
        seen = np.bincount(log.inst[log.day < as_of], minlength=N_INST)[insts].astype(np.float32)
        return np.broadcast_to(seen[None, :, None], (len(queries), len(insts), 1)).copy()

    plus = ProjectContent(content.vectors, content.tfidf, content.categories, extra=extra, extra_names=("x",))
    filled = len(group_columns(plus.groups))
    assert plus.feature_names[-1] == "x" and len(plus.columns()) == filled + 1
    assert len(plus.columns("service")) == filled
    t = int(np.quantile(log.day, 0.7))
    X, _ = pair_block(snapshot(log, plus, t), plus, [1, 2], np.arange(N_INST))
    assert X.shape[2] == len(LTR_FEATURES) + 1 and calls == [t]
    end = int(np.quantile(log.day, 0.85))
    settings = LTRSettings(negatives=6, max_queries=20, windows=2)
    params = {"num_leaves": 4, "min_child_samples": 5, "learning_rate": 0.1}
    models, train = fit_final(log, plus, end, params, 10, settings, (None, "service"))
    assert train.X.shape[1] == len(LTR_FEATURES) + 1
    assert "x" in models[None].feature_names and "x" not in models["service"].feature_names


def test_reference_baseline_scores_are_features(data) -> None:
    """The popularity and co-investment baselines' own scores are columns (stacking), dated at t.

    act_log_count orders institutions exactly as the popularity baseline (distinct earlier projects)
    and g_coinvest is log1p of the co-investment baseline's count: projects co-backed with each of the
    query's earlier backers, both from the events before t only.
    """
    log, content = data
    t = int(np.quantile(log.day, 0.7))
    insts = np.arange(N_INST)
    past = log.day < t
    backed: dict[int, set[int]] = {}
    for i, p in zip(log.inst[past].tolist(), log.proj[past].tolist(), strict=True):
        backed.setdefault(i, set()).add(p)
    warm = sorted({int(p) for p in log.proj[past]})[-12:]
    X, linked = pair_block(snapshot(log, content, t), content, warm, insts)
    count = np.array([len(backed.get(i, ())) for i in range(N_INST)], dtype=np.float64)
    np.testing.assert_allclose(X[0, :, LTR_FEATURES.index("act_log_count")], np.log1p(count), rtol=1e-6)
    for r, q in enumerate(warm):
        earlier = [i for i in range(N_INST) if q in backed.get(i, ())]
        assert earlier and all(linked[r, earlier])
        direct = [
            sum(len(backed.get(x, set()) & backed.get(y, set())) for x in earlier if x != y)
            for y in range(N_INST)
        ]
        np.testing.assert_allclose(
            X[r, :, LTR_FEATURES.index("g_coinvest")], np.log1p(direct), rtol=1e-6, atol=1e-6
        )


def test_a_learned_model_must_lead_the_best_single_scorer_by_more_than_a_standard_error() -> None:
    """On noisy validation queries the single scorer is kept; a consistent lead picks the model."""
    learned = "lambdamart(leaves=4,min_child=5,prior=0,iter=10)"
    fitted = {learned: ({"num_leaves": 4, "min_child_samples": 5}, 10)}
    keys = [(0, q) for q in range(40)]
    rng = np.random.default_rng(0)
    simple = {k: float(v) for k, v in zip(keys, rng.uniform(0.0, 0.5, len(keys)), strict=True)}
    # a lead of 0.01 on average, but it moves by ±0.3 from query to query: within the noise
    noisy = {k: v + 0.01 + (0.3 if n % 2 else -0.3) for n, (k, v) in enumerate(simple.items())}
    sel = _chosen({"single(sim_top3)": simple, learned: noisy}, fitted, keys, 0)
    assert sel.validation[learned] > sel.validation["single(sim_top3)"]
    assert sel.kind == "single" and sel.feature == "sim_top3"
    assert sel.best_lambdamart == (fitted[learned][0], 10)  # still named for the report
    # the same mean lead on every query is well beyond its (zero) standard error
    steady = {k: v + 0.01 for k, v in simple.items()}
    sel = _chosen({"single(sim_top3)": simple, learned: steady}, fitted, keys, 0)
    assert sel.kind == "lambdamart" and sel.iterations == 10
