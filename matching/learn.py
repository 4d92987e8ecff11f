"""Train the ranker from labelled (project, institution) outcomes, with the service's own features.

The web app's ``flask ranker train`` passes the connection outcomes it recorded (accepted = 1,
declined = 0); the benchmark passes later history edges as positives and sampled non-edges as
negatives. Both go through :func:`feature_rows`, i.e. through the exact feature code that ranks,
with the pair's own link left out of the institution's evidence so an outcome cannot explain itself.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matching.features import FEATURES
from matching.ranker import HandWeightedRanker, LearnedRanker, Ranker
from matching.service import MatchingService
from matching.types import InstitutionProfile, ProjectProfile, Side

__all__ = [
    "PRODUCT_RANKER",
    "LabelledPair",
    "TrainingReport",
    "feature_rows",
    "fit_ranker",
    "fit_rows",
    "sample_negatives",
]

logger = logging.getLogger(__name__)

#: The product's learned ranker: LambdaMART (LightGBM lambdarank) over the service's feature vector,
#: each project one query group; small trees and few rounds because outcomes are few.
PRODUCT_RANKER: dict[str, Any] = {
    "model": "lambdarank",
    "learning_rate": 0.05,
    "max_iter": 100,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 20,
    "l2_regularization": 5.0,
}


@dataclass(frozen=True)
class LabelledPair:
    """One observed outcome: did this project and institution connect (1) or not (0)."""

    project: ProjectProfile
    institution: InstitutionProfile
    label: int
    date: str | None = None  # ISO date of the outcome; newer outcomes may weigh more


@dataclass(frozen=True)
class TrainingReport:
    """What a training run saw and produced."""

    n_pairs: int
    n_positive: int
    n_projects: int
    n_skipped: int
    model: str
    importances: Mapping[str, float]


def feature_rows(
    pairs: Iterable[LabelledPair], service: MatchingService
) -> tuple[NDArray[np.float64], NDArray[np.int64], list[LabelledPair], int]:
    """Return (X, y, kept pairs, skipped count) for the pairs whose profiles the service knows.

    Rows are computed per project, rescaled over the full candidate set of the institution's
    side, exactly as :meth:`MatchingService.match_project` sees them.
    """
    by_project: dict[int, list[LabelledPair]] = defaultdict(list)
    skipped = 0
    known_projects = set(service.project_ids())
    known_insts = set(service.institution_ids())
    for pair in pairs:
        if pair.project.id in known_projects and pair.institution.id in known_insts:
            by_project[pair.project.id].append(pair)
        else:
            skipped += 1
    blocks: list[NDArray[np.float64]] = []
    labels: list[int] = []
    kept: list[LabelledPair] = []
    for pid in sorted(by_project):
        group = by_project[pid]
        blocks.append(service.features_for_project(pid, [p.institution.id for p in group], leave_out=True))
        labels.extend(int(p.label) for p in group)
        kept.extend(group)
    X = np.vstack(blocks) if blocks else np.zeros((0, len(FEATURES)))
    return X, np.asarray(labels, dtype=np.int64), kept, skipped


def _recency_weights(
    pairs: Sequence[LabelledPair], half_life_days: float | None
) -> NDArray[np.float64] | None:
    """Weigh each outcome by 0.5 ** (age / half-life) relative to the newest dated outcome."""
    if half_life_days is None:
        return None
    dates = [date.fromisoformat(p.date[:10]) if p.date else None for p in pairs]
    known = [d for d in dates if d is not None]
    if not known:
        return None
    newest = max(known)
    return np.array([1.0 if d is None else 0.5 ** ((newest - d).days / half_life_days) for d in dates])


def fit_ranker(
    pairs: Iterable[LabelledPair],
    service: MatchingService,
    ranker: LearnedRanker | None = None,
    *,
    min_positives: int = 10,
    min_negatives: int = 10,
    half_life_days: float | None = None,
) -> tuple[Ranker, TrainingReport]:
    """Fit a ranker on labelled outcomes; fall back to hand-set weights when data are too few.

    Args:
        pairs: observed outcomes; pairs whose profiles the service does not hold are skipped.
        service: provides the features (the same code that ranks).
        ranker: the estimator to fit; default :data:`PRODUCT_RANKER` (LambdaMART, one query per project).
        min_positives, min_negatives: below these, return :class:`HandWeightedRanker`.
        half_life_days: weigh recent outcomes more (None = all equal).
    """
    X, y, kept, skipped = feature_rows(pairs, service)
    fitted, report = fit_rows(
        X,
        y,
        ranker if ranker is not None else LearnedRanker(**PRODUCT_RANKER),
        min_positives=min_positives,
        min_negatives=min_negatives,
        sample_weight=_recency_weights(kept, half_life_days),
        groups=np.asarray([p.project.id for p in kept], dtype=np.int64),
    )
    projects = len({p.project.id for p in kept})
    return fitted, replace(report, n_projects=projects, n_skipped=skipped)


def fit_rows(
    X: NDArray[np.float64],
    y: NDArray[np.int64],
    ranker: LearnedRanker | None = None,
    *,
    min_positives: int = 10,
    min_negatives: int = 10,
    sample_weight: NDArray[np.float64] | None = None,
    groups: NDArray[np.int64] | None = None,
) -> tuple[Ranker, TrainingReport]:
    """Fit a ranker on ready feature rows; hand-set weights when the rows are too few."""
    n_pos = int(y.sum())
    n_neg = int(len(y) - n_pos)
    if ranker is None or n_pos < min_positives or n_neg < min_negatives:
        if ranker is not None:
            logger.warning(
                "only %d positive and %d negative outcomes: keeping hand-set weights", n_pos, n_neg
            )
        fallback = HandWeightedRanker()
        return fallback, TrainingReport(len(y), n_pos, 0, 0, "hand", fallback.feature_importances())
    ranker.fit(X, y, sample_weight=sample_weight, groups=groups)
    if ranker.model in ("hgb", "lambdarank"):
        ranker.set_importances(X)
    return ranker, TrainingReport(len(y), n_pos, 0, 0, ranker.model, ranker.feature_importances())


def sample_negatives(
    positives: Mapping[int, set[int]],
    service: MatchingService,
    side: Side,
    per_project: int,
    random_state: int | None = 0,
    exclude: Mapping[int, set[int]] | None = None,
    candidates: Iterable[int] | None = None,
    weights: Mapping[int, float] | None = None,
) -> list[tuple[int, int]]:
    """Return (project id, institution id) non-edges: per project, institutions it did not connect with.

    Args:
        positives: project id -> institutions it connected with (never sampled as negatives).
        service: provides the candidate institutions of the side.
        side: the side negatives are drawn from.
        per_project: negatives drawn per project (all candidates when fewer).
        random_state: seed of the draw.
        exclude: project id -> institutions to leave out as well (e.g. earlier backers).
        candidates: draw only from these institutions of the side (default: all of the side).
        weights: institution id -> draw weight (e.g. its activity, for hard negatives: popular
            institutions the project did not choose); default uniform. Ids without weight get 0.
    """
    rng = np.random.default_rng(random_state)
    side_ids = service.institution_ids(side)
    if candidates is not None:
        keep = set(candidates)
        side_ids = [i for i in side_ids if i in keep]
    pool_ids = np.asarray(side_ids, dtype=np.int64)
    out: list[tuple[int, int]] = []
    for pid in sorted(positives):
        banned = positives[pid] | (exclude.get(pid, set()) if exclude else set())
        pool = pool_ids[~np.isin(pool_ids, list(banned))]
        p = None
        if weights is not None:
            w = np.array([max(float(weights.get(int(i), 0.0)), 0.0) for i in pool])
            pool, w = pool[w > 0], w[w > 0]
            p = w / w.sum() if w.size else None
        take = min(per_project, len(pool))
        for iid in rng.choice(pool, size=take, replace=False, p=p).tolist():
            out.append((pid, int(iid)))
    return out
