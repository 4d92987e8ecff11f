"""``flask ranker train``: learn the ranker from the feedback log, position-debiased.

1. Read every logged row (impression) with the deepest action linked to it: signed 5 > accepted 4 >
   requested 3 > shortlisted 2 > opened 1 > shown only 0 (:func:`load_log`).
2. Estimate the examination probability by position from the logs themselves (matching.feedback:
   position-based model fitted by EM).
3. Build the debiased training rows (acted-on rows weigh gain / theta of their position, shown-only rows
   are the negatives) on the service's own feature code (``features_for_project``, with the pair's own
   link left out, as matching.learn does), fit the learned ranker with them as sample weights.
4. Measure the ranker in use and the new one on the newest 20 % of the logged lists (trained on the
   older ones only), IPS-weighted NDCG@10 / Recall@10; then fit on everything, save where the service
   loads its ranker from and put it to work.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from flask import Flask
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.extensions import db
from matching.features import FEATURES
from matching.feedback import (
    LoggedItem,
    Propensities,
    TrainingSet,
    estimate_propensities,
    replay_metrics,
    split_by_time,
    training_set,
)
from matching.learn import fit_rows
from matching.ranker import LearnedRanker, Ranker
from matching.service import MatchingService
from models.base import utcnow
from models.feedback import FeedbackAction, Impression

#: Below these the logs cannot teach anything: the command refuses.
MIN_ACTED_LISTS = 30
MIN_POSITIVES = 30


class TooLittleFeedback(RuntimeError):
    """The logs hold too few actions to learn from."""


def load_log(session: Session, demo: bool | None = None, since: datetime | None = None) -> list[LoggedItem]:
    """Return every logged row with the grade of the deepest action linked to it, oldest list first.

    Args:
        demo: True for the demo's generated rows only, False for real ones only, None for all.
        since: only rows shown at or after this time.
    """
    grades: dict[int, int] = {}
    for imp_id, action in session.execute(
        select(FeedbackAction.impression_id, FeedbackAction.action).where(
            FeedbackAction.impression_id.is_not(None)
        )
    ):
        if imp_id is not None:
            grades[imp_id] = max(grades.get(imp_id, 0), action.grade)
    stmt = select(
        Impression.id,
        Impression.list_id,
        Impression.at,
        Impression.query_kind,
        Impression.query_id,
        Impression.project_id,
        Impression.institution_id,
        Impression.position,
    ).order_by(Impression.at, Impression.list_id, Impression.position)
    if demo is not None:
        stmt = stmt.where(Impression.demo.is_(demo))
    if since is not None:
        stmt = stmt.where(Impression.at >= since)
    return [
        LoggedItem(
            r.list_id,
            r.at,
            r.query_kind,
            r.query_id,
            r.project_id,
            r.institution_id,
            r.position,
            grades.get(r.id, 0),
        )
        for r in session.execute(stmt)
    ]


def count_actions(session: Session) -> int:
    """Return how many logged actions are linked to a shown row."""
    return int(
        session.scalar(select(func.count(FeedbackAction.id)).where(FeedbackAction.impression_id.is_not(None)))
        or 0
    )


def known_items(service: MatchingService, items: Sequence[LoggedItem]) -> list[LoggedItem]:
    """Return the rows whose project and institution the service still ranks (not archived or deleted)."""
    projects, institutions = set(service.project_ids()), set(service.institution_ids())
    return [r for r in items if r.project_id in projects and r.institution_id in institutions]


def item_features(service: MatchingService, items: Sequence[LoggedItem]) -> NDArray[np.float64]:
    """Return one feature row per logged row (the service's feature code, the pair's own link left out)."""
    X = np.zeros((len(items), len(FEATURES)))
    by_project: dict[int, list[int]] = defaultdict(list)
    for j, r in enumerate(items):
        by_project[r.project_id].append(j)
    for pid, rows in by_project.items():
        insts = sorted({items[j].institution_id for j in rows})
        block = service.features_for_project(pid, insts, leave_out=True)
        at = {iid: n for n, iid in enumerate(insts)}
        for j in rows:
            X[j] = block[at[items[j].institution_id]]
    return X


@dataclass
class FeedbackReport:
    """What ``flask ranker train`` learned from the logs."""

    rows: int
    lists: int
    acted_lists: int
    n_pairs: int
    n_positive: int
    grades: dict[int, int]
    propensities: Propensities
    held_out_lists: int
    before: dict[str, float]
    after: dict[str, float]
    logged: dict[str, float]
    model: str
    version: str
    importances: dict[str, float] = field(default_factory=dict)
    path: Path | None = None


def _fit(X: NDArray[np.float64], ts: TrainingSet, model: str) -> Ranker:
    ranker, _ = fit_rows(
        X,
        ts.labels,
        LearnedRanker(model=model),  # type: ignore[arg-type]
        min_positives=1,
        min_negatives=1,
        sample_weight=ts.weights,
        groups=ts.groups,
    )
    return ranker


def learn(
    service: MatchingService,
    items: Sequence[LoggedItem],
    *,
    model: str = "logistic",
    holdout: float = 0.2,
    clip: float = 10.0,
    min_acted_lists: int = MIN_ACTED_LISTS,
    min_positives: int = MIN_POSITIVES,
) -> tuple[Ranker, FeedbackReport]:
    """Return the ranker learned from logged rows, and what it learned (raises TooLittleFeedback)."""
    items = known_items(service, items)
    lists = {r.list_id for r in items}
    acted = {r.list_id for r in items if r.grade > 0}
    positives = sum(1 for r in items if r.grade > 0)
    if len(acted) < min_acted_lists or positives < min_positives:
        raise TooLittleFeedback(
            f"too little feedback to learn from: {len(acted)} lists with an action and {positives} acted-on "
            f"rows logged (at least {min_acted_lists} and {min_positives} needed). Rankings shown to "
            "signed-in users and what they do with them are logged as the site is used; until then "
            "`flask ranker train --source outcomes` learns from connection outcomes."
        )
    props = estimate_propensities(items, clip_position(items))
    X = item_features(service, items)
    row_of = {id(r): j for j, r in enumerate(items)}
    train_items, test_items = split_by_time(items, holdout)
    ts_train = training_set(train_items, props, clip)
    before = after = logged = {}
    if test_items and ts_train.n_positive and ts_train.n_positive < len(ts_train.labels):
        X_train = X[[row_of[id(r)] for r in ts_train.items]]
        X_test = X[[row_of[id(r)] for r in test_items]]
        held = _fit(X_train, ts_train, model)
        before = replay_metrics(test_items, service.ranker.score(X_test), props)
        after = replay_metrics(test_items, held.score(X_test), props)
        logged = replay_metrics(test_items, None, props)
    ts = training_set(items, props, clip)
    ranker = _fit(X[[row_of[id(r)] for r in ts.items]], ts, model)
    version = f"feedback-{model}-{utcnow():%Y%m%dT%H%M%S}-{len(ts.labels)}"
    ranker.version_ = version  # type: ignore[attr-defined]
    report = FeedbackReport(
        rows=len(items),
        lists=len(lists),
        acted_lists=len(acted),
        n_pairs=len(ts.labels),
        n_positive=ts.n_positive,
        grades=dict(sorted(Counter(r.grade for r in ts.items).items())),
        propensities=props,
        held_out_lists=len({r.list_id for r in test_items if r.grade > 0}),
        before=before,
        after=after,
        logged=logged,
        model=model,
        version=version,
        importances=ranker.feature_importances(),
    )
    return ranker, report


def clip_position(items: Sequence[LoggedItem], cap: int = 20) -> int:
    """Return the number of position buckets of the bias model: the longest list, at most `cap`."""
    return max(1, min(cap, max((r.position for r in items), default=1)))


def train_from_feedback(
    app: Flask, model: str = "logistic", holdout: float = 0.2, days: float | None = 730.0
) -> FeedbackReport:
    """Learn the ranker from the app's feedback log, save it where the service loads it and use it now.

    Args:
        days: learn from the lists shown in this many days before the newest one (None: all).
    """
    from app.services import build_matching, ranker_path

    session = db.new_session(app)
    try:
        newest = session.scalar(select(func.max(Impression.at)))
        since = newest - timedelta(days=days) if newest is not None and days is not None else None
        items = load_log(session, since=since)
    finally:
        session.close()
    acted = sum(1 for r in items if r.grade > 0)
    if acted < MIN_POSITIVES:  # refuse before building anything
        raise TooLittleFeedback(
            f"too little feedback to learn from: {acted} acted-on rows logged in "
            f"{len({r.list_id for r in items})} lists (at least {MIN_POSITIVES} needed). Rankings shown to "
            "signed-in users and what they do with them are logged as the site is used; until then "
            "`flask ranker train --source outcomes` learns from connection outcomes."
        )
    service = app.extensions.get("matching") or build_matching(app)
    ranker, report = learn(service, items, model=model, holdout=holdout)
    path = ranker_path(app)
    ranker.save(path)
    report.path = path
    if "matching" in app.extensions:
        app.extensions["matching"].set_ranker(ranker)
    return report
