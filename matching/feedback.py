"""Learning from the service's own logs: position bias, debiased training rows and replay metrics.

Pure functions over logged rows (no database): the web app reads its impression and action tables
into :class:`LoggedItem` values (app.feedback.train), the evaluation replays the demo's logs with
them (evaluation.replay).

Labels are graded by the deepest thing done with a shown pair: signed 5 > accepted 4 > requested 3 >
shortlisted 2 > opened 1 > shown only 0. A user does something only with an item they looked at, and
items lower in a list are looked at less often, so raw actions under-credit low positions.

Position bias model (the position-based examination model): an action happens when the item at
position k is examined, with probability theta_k, and relevant, with probability gamma of the
(query, item) pair: P(action) = theta_k * gamma. :func:`estimate_propensities` fits theta by
expectation-maximisation on the logs themselves (Wang et al., WSDM 2018, "Position bias estimation for
unbiased learning to rank in personal search"): the same pair shown at different positions over time
separates how much is position from how much is the item. Each pair's relevance is pulled towards the
mean by a prior whose strength is chosen by the held-out likelihood of every fifth list (sparse logs,
where a pair is seen at few positions, need a strong one). theta is scaled so that theta_1 = 1 and kept
non-increasing.

Debiasing (inverse propensity weighting, Joachims et al., WSDM 2017): every acted-on row weighs
gain(grade) / theta_k, with gain = 2**grade - 1 and 1/theta_k clipped; shown-only rows are the
negatives at weight 1. A pointwise or pairwise learner takes these as sample weights; a LambdaMART
learner can take the grades and the list ids as its groups. The replay metrics weigh the same way, so
an action at a rarely examined position counts as much as the many it stands for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GRADES",
    "LoggedItem",
    "Propensities",
    "TrainingSet",
    "estimate_propensities",
    "gain",
    "lists_of",
    "replay_metrics",
    "split_by_time",
    "training_set",
]

#: Action name -> graded label (0 = shown only).
GRADES: dict[str, int] = {"opened": 1, "shortlisted": 2, "requested": 3, "accepted": 4, "signed": 5}


def gain(grade: int | NDArray[np.int64]) -> NDArray[np.float64]:
    """Return the DCG gain of graded labels: 2**grade - 1 (0 for shown only)."""
    return np.power(2.0, np.asarray(grade, dtype=np.float64)) - 1.0


@dataclass(frozen=True)
class LoggedItem:
    """One shown row of one logged list, with the deepest action taken on it."""

    list_id: str
    at: datetime
    query_kind: str  # "project", "institution" or "need"
    query_id: int
    project_id: int
    institution_id: int
    position: int  # 1-based place on the screen
    grade: int = 0

    @property
    def query(self) -> tuple[str, int]:
        return (self.query_kind, self.query_id)

    @property
    def item(self) -> int:
        """Return the id of the shown item (the side that is not the query)."""
        return self.institution_id if self.query_kind == "project" else self.project_id


@dataclass(frozen=True)
class Propensities:
    """Examination probability by position (theta_1 = 1); positions past the last share its value."""

    theta: NDArray[np.float64]  # theta[k - 1] for position k
    iterations: int
    shown: NDArray[np.int64]  # rows logged per position
    acted: NDArray[np.int64]  # rows with an action per position
    prior: float = 0.0  # strength of the relevance prior the fit used

    def at(self, positions: Sequence[int] | NDArray[np.int64]) -> NDArray[np.float64]:
        """Return theta for 1-based positions."""
        idx = np.clip(np.asarray(positions, dtype=np.int64), 1, len(self.theta)) - 1
        return self.theta[idx]

    def weights(
        self, positions: Sequence[int] | NDArray[np.int64], clip: float = 10.0
    ) -> NDArray[np.float64]:
        """Return the inverse propensity 1/theta per position, clipped at `clip` (variance control)."""
        return np.minimum(1.0 / np.maximum(self.at(positions), 1e-9), clip)

    def click_rates(self) -> NDArray[np.float64]:
        """Return the raw action rate by position (what theta corrects for relevance)."""
        return self.acted / np.maximum(self.shown, 1)


@dataclass(frozen=True)
class _Actions:
    """Logged rows as arrays: position bucket (0-based, K buckets), acted (1.0) or not, pair id, list id."""

    pos: NDArray[np.int64]
    click: NDArray[np.float64]
    pair: NDArray[np.int64]
    lists: NDArray[np.int64]
    K: int

    def subset(self, rows: NDArray[np.bool_]) -> _Actions:
        """Return the rows where rows is True."""
        return _Actions(self.pos[rows], self.click[rows], self.pair[rows], self.lists[rows], self.K)


def _em(
    log: _Actions, prior: float, iterations: int, tol: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, int]:
    """Run EM of the position-based model; return (theta, gamma per pair, mean relevance, rounds)."""
    pos, click, pair, K = log.pos, log.click, log.pair, log.K
    n_pairs = int(pair.max()) + 1 if len(pair) else 0
    shown = np.bincount(pos, minlength=K)
    theta = 1.0 / (np.arange(K) + 1.0)
    mean_rel = max(float(click.mean()), 1e-3)
    gamma = np.full(n_pairs, min(mean_rel * 2, 0.9))
    pair_n = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    done = 0
    for step in range(1, iterations + 1):
        done = step
        t, g = theta[pos], gamma[pair]
        denom = np.maximum(1.0 - t * g, 1e-12)
        exam_not_rel = t * (1.0 - g) / denom  # P(E=1, R=0 | no action)
        rel_not_exam = (1.0 - t) * g / denom  # P(E=0, R=1 | no action)
        e_exam = click + (1.0 - click) * exam_not_rel
        e_rel = click + (1.0 - click) * rel_not_exam
        new_theta = np.bincount(pos, weights=e_exam, minlength=K) / np.maximum(shown, 1)
        new_theta = np.clip(np.where(shown > 0, new_theta, theta), 1e-6, 1.0)
        mean_rel = float(e_rel.mean())
        gamma = (np.bincount(pair, weights=e_rel, minlength=n_pairs) + prior * mean_rel) / (pair_n + prior)
        gamma = np.clip(gamma, 1e-6, 1 - 1e-6)
        moved = float(np.abs(new_theta - theta).max())
        theta = new_theta
        if moved < tol:
            break
    return np.asarray(theta, dtype=np.float64), np.asarray(gamma, dtype=np.float64), mean_rel, done


#: Candidate strengths of the relevance prior; "auto" picks one by held-out likelihood.
PRIORS = (1.0, 3.0, 10.0, 30.0, 100.0)


def _held_out_prior(log: _Actions, iterations: int, tol: float) -> float:
    """Return the prior whose model best predicts the actions of every fifth list (fitted on the rest)."""
    test = log.lists % 5 == 0
    if test.all() or not test.any():
        return PRIORS[1]
    fit, held = log.subset(~test), log.subset(test)
    best, best_ll = PRIORS[1], -np.inf
    for prior in PRIORS:
        theta, gamma, mean_rel, _ = _em(fit, prior, iterations, tol)
        seen = held.pair < len(gamma)
        g = np.full(len(held.pair), mean_rel)
        known = np.zeros(len(g), dtype=bool)
        known[seen] = np.isin(held.pair[seen], np.unique(fit.pair))
        g[known] = gamma[held.pair[known]]
        p = np.clip(theta[held.pos] * g, 1e-6, 1 - 1e-6)
        ll = float(np.mean(held.click * np.log(p) + (1 - held.click) * np.log(1 - p)))
        if ll > best_ll:
            best, best_ll = prior, ll
    return best


def estimate_propensities(
    items: Iterable[LoggedItem],
    max_position: int = 20,
    iterations: int = 200,
    prior: float | str = "auto",
    tol: float = 1e-6,
) -> Propensities:
    """Fit the position-based examination model by EM; return theta by position (theta_1 = 1).

    Args:
        items: logged rows; an action of any grade counts as a click.
        max_position: positions past this share one bucket.
        iterations: EM rounds at most.
        prior: strength of the pull of each pair's relevance towards the mean (pseudo-counts), which
            keeps pairs seen once from absorbing all of their position's effect; "auto" picks it from
            :data:`PRIORS` by the likelihood of every fifth list's actions under a model fitted on the
            others (logs where pairs recur at many positions afford a weak prior, sparse logs need a
            strong one).
        tol: stop when theta moves less than this.
    """
    rows = list(items)
    K = max_position
    if not rows:
        return Propensities(np.ones(K), 0, np.zeros(K, dtype=np.int64), np.zeros(K, dtype=np.int64))
    pos = np.clip(np.array([r.position for r in rows], dtype=np.int64), 1, K) - 1
    click = np.array([r.grade > 0 for r in rows], dtype=np.float64)
    keys: dict[Hashable, int] = {}
    pair = np.array([keys.setdefault((r.query, r.item), len(keys)) for r in rows], dtype=np.int64)
    list_ids: dict[str, int] = {}
    lists = np.array([list_ids.setdefault(r.list_id, len(list_ids)) for r in rows], dtype=np.int64)
    shown = np.bincount(pos, minlength=K)
    acted = np.bincount(pos, weights=click, minlength=K).astype(np.int64)
    log = _Actions(pos, click, pair, lists, K)
    strength = _held_out_prior(log, iterations, tol) if prior == "auto" else float(prior)
    theta, _gamma, _mean, done = _em(log, strength, iterations, tol)
    theta = theta / theta[0] if theta[0] > 0 else theta
    # Examination cannot rise further down a list: keep theta non-increasing (pool adjacent violators).
    theta = _non_increasing(np.minimum(theta, 1.0), shown)
    return Propensities(theta, done, shown.astype(np.int64), acted, strength)


def _non_increasing(values: NDArray[np.float64], weights: NDArray[np.int64]) -> NDArray[np.float64]:
    """Return the weighted least-squares non-increasing fit of values (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for v, w in zip(values.tolist(), np.maximum(weights, 1).tolist(), strict=True):
        blocks.append([v, float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for v, _w, c in blocks:
        out.extend([v] * int(c))
    return np.asarray(out)


@dataclass(frozen=True)
class TrainingSet:
    """Debiased training rows: one per logged row, aligned with `items`."""

    items: list[LoggedItem]
    grades: NDArray[np.int64]
    labels: NDArray[np.int64]  # 1 when acted on (any grade)
    weights: NDArray[np.float64]  # gain / theta for acted rows, 1 for shown only
    groups: NDArray[np.int64]  # one id per list (for pairwise or listwise learners)

    @property
    def n_positive(self) -> int:
        return int(self.labels.sum())


def training_set(items: Sequence[LoggedItem], propensities: Propensities, clip: float = 10.0) -> TrainingSet:
    """Return the inverse-propensity-weighted training rows of logged lists.

    Lists with no action at all are dropped (they say nothing about which item was better, and an
    unexamined list is mostly what they are).
    """
    acted_lists = {r.list_id for r in items if r.grade > 0}
    kept = [r for r in items if r.list_id in acted_lists]
    grades = np.array([r.grade for r in kept], dtype=np.int64)
    positions = np.array([r.position for r in kept], dtype=np.int64)
    labels = (grades > 0).astype(np.int64)
    ips = propensities.weights(positions, clip) if kept else np.zeros(0)
    weights = np.where(labels == 1, gain(grades) * ips, 1.0)
    group_ids: dict[str, int] = {}
    groups = np.array([group_ids.setdefault(r.list_id, len(group_ids)) for r in kept], dtype=np.int64)
    return TrainingSet(kept, grades, labels, weights, groups)


def lists_of(items: Iterable[LoggedItem]) -> dict[str, list[LoggedItem]]:
    """Group rows by list, each list in its logged order."""
    out: dict[str, list[LoggedItem]] = defaultdict(list)
    for r in items:
        out[r.list_id].append(r)
    return {k: sorted(v, key=lambda r: r.position) for k, v in out.items()}


def split_by_time(
    items: Sequence[LoggedItem], holdout: float = 0.2
) -> tuple[list[LoggedItem], list[LoggedItem]]:
    """Split whole lists by time: the newest `holdout` share of the acted-on lists (and every list shown
    after the first of them) is held out."""
    lists = lists_of(items)
    acted = sorted((v[0].at, k) for k, v in lists.items() if any(r.grade > 0 for r in v))
    if len(acted) < 2:
        return list(items), []
    if holdout <= 0:
        return list(items), []
    cut = acted[min(len(acted) - 1, max(1, round(len(acted) * (1 - holdout))))][0]
    train = [r for v in lists.values() if v[0].at < cut for r in v]
    test = [r for v in lists.values() if v[0].at >= cut for r in v]
    return train, test


def replay_metrics(
    items: Sequence[LoggedItem],
    scores: Mapping[int, float] | NDArray[np.float64] | None,
    propensities: Propensities,
    k: int = 10,
    clip: float = 10.0,
) -> dict[str, float]:
    """Re-rank each logged list by `scores` and measure it against the logged actions.

    Args:
        items: logged rows (lists without an action do not count).
        scores: one score per row, aligned with `items` (higher first); None keeps the logged order.
        propensities: the position bias estimated from the logs.
        k: cut-off.

    Returns:
        {"ndcg@k", "recall@k", "lists", "acted"}: IPS-weighted NDCG (gain / theta of the logged
        position, discounted by the new rank) and IPS-weighted recall (share of the weighted actions
        the new top k keeps), averaged over lists with an action; ties keep the logged order.
    """
    values = None if scores is None else np.asarray(scores, dtype=np.float64)
    by_list: dict[str, list[int]] = defaultdict(list)
    for j, r in enumerate(items):
        by_list[r.list_id].append(j)
    ndcgs, recalls, acted = [], [], 0
    for rows in by_list.values():
        grades = np.array([items[j].grade for j in rows])
        if not (grades > 0).any():
            continue
        positions = np.array([items[j].position for j in rows])
        w = gain(grades) * propensities.weights(positions, clip)
        if values is None:
            order = np.argsort(positions, kind="stable")
        else:
            s = values[rows]
            order = np.lexsort((positions, -s))
        discount = 1.0 / np.log2(np.arange(2, len(rows) + 2))
        dcg = float((w[order][:k] * discount[:k]).sum())
        ideal = float((np.sort(w)[::-1][:k] * discount[:k]).sum())
        ndcgs.append(dcg / ideal if ideal > 0 else 0.0)
        clicked = propensities.weights(positions, clip) * (grades > 0)
        recalls.append(float((clicked[order][:k]).sum() / clicked.sum()))
        acted += int((grades > 0).sum())
    return {
        f"ndcg@{k}": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        f"recall@{k}": float(np.mean(recalls)) if recalls else float("nan"),
        "lists": float(len(ndcgs)),
        "acted": float(acted),
    }
