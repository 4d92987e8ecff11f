"""Plausible feedback logs for the demo's own connection history (every row marked ``demo``).

The demo's connections (app.pipeline.demo) were made by people working ranked lists. This writes the
lists they would have seen and what they did with them, deterministically (fixed seed):

* the logging ranker is the analyst's rule of app.pipeline.demo (``_fit``: industry, stage, ticket,
  region, services) plus noise, recorded as model ``demo-logging-v0``;
* each connection comes from one list seen minutes before its first event: an institution's list of
  projects (the institution shortlisted or requested) or a project's list of institutions of one side
  (the project asked); its pipeline events become shortlisted / requested / accepted / signed actions
  linked to that list, preceded by an opened action;
* every institution also browses its list now and then without connecting to anyone;
* people look at the top of a list more than its bottom: an item at position k is examined with
  probability :data:`EXAMINATION` [k-1] (1/k^0.9), and opened when examined and relevant, so the logs
  carry the position bias that ``flask ranker train`` has to undo. The connected item's position is
  drawn the same way (a list is kept with probability theta of the item's place).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from app.feedback.log import action_of
from app.pipeline.demo import SEED as HISTORY_SEED
from app.pipeline.demo import _fit
from models import Connection, Institution, Project
from models.feedback import ActionKind, FeedbackAction, Impression
from models.pipeline import Party

SEED = HISTORY_SEED + 5
MODEL = "demo-logging-v0"
#: Items per list: an institution's page of projects, a project's list of one side.
INSTITUTION_PAGE, PROJECT_PAGE = 20, 10
#: The simulated examination probability by position (the bias the trainer estimates and undoes).
EXAMINATION = [1.0 / (k**0.9) for k in range(1, INSTITUTION_PAGE + 1)]
#: Lists an institution browses in the year without connecting (min, max).
BROWSES = (4, 10)
NOISE = 0.8


def _relevance(fit: float) -> float:
    """Return the chance a user opens an examined item of this fit (the analyst's rule)."""
    return min(0.55, max(0.02, fit / 6.0))


def _ranked(noise: np.random.Generator, scored: dict[int, float], size: int) -> list[int]:
    """Return the ids of one list of the logging ranker: fit plus noise, best first (ties by id)."""
    ids = np.fromiter(scored, dtype=np.int64, count=len(scored))
    fit = np.fromiter(scored.values(), dtype=np.float64, count=len(scored))
    noisy = fit + noise.normal(0.0, NOISE, len(ids))
    return ids[np.lexsort((ids, -noisy))[:size]].tolist()


def _place(
    rng: random.Random, noise: np.random.Generator, scored: dict[int, float], size: int, item: int
) -> list[int]:
    """Return a list showing `item`, its place drawn as the position-based model would have it."""
    for _ in range(30):
        shown = _ranked(noise, scored, size)
        if item in shown and rng.random() < EXAMINATION[shown.index(item)]:
            return shown
    shown = [i for i in _ranked(noise, scored, size) if i != item][: size - 1]
    weights = EXAMINATION[: len(shown) + 1]
    k = rng.choices(range(len(weights)), weights=weights)[0]
    return [*shown[:k], item, *shown[k:]]


def load_demo_feedback(session: Session, seed: int = SEED) -> dict[str, int]:
    """Write the demo's impressions and actions (once: skipped when any impression exists)."""
    if session.scalar(select(func.count(Impression.id))):
        return {}
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    projects = {p.id: p for p in session.scalars(select(Project).order_by(Project.id))}
    institutions = {i.id: i for i in session.scalars(select(Institution).order_by(Institution.id))}
    conns = list(
        session.scalars(select(Connection).order_by(Connection.id).options(selectinload(Connection.events)))
    )
    if not conns:
        return {}
    fits: dict[int, dict[int, float]] = {
        iid: {pid: f for pid, p in projects.items() if (f := _fit(p, inst)) > 0}
        for iid, inst in institutions.items()
    }
    by_side: dict[str, list[int]] = defaultdict(list)
    for iid, inst in institutions.items():
        by_side[inst.kind.side].append(iid)
    start = min(c.events[0].at for c in conns if c.events)
    end = max(ev.at for c in conns for ev in c.events)
    impressions: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    n_lists = 0

    def write_list(
        query_kind: str, query_id: int, side: str | None, shown: list[int], at: datetime
    ) -> dict[int, int]:
        nonlocal n_lists
        n_lists += 1
        list_id = f"{rng.getrandbits(64):016x}"
        ids: dict[int, int] = {}
        for pos, item in enumerate(shown, start=1):
            pid, iid = (query_id, item) if query_kind == "project" else (item, query_id)
            impressions.append(
                {
                    "list_id": list_id,
                    "at": at,
                    "viewer_user_id": None,
                    "viewer_institution_id": iid if query_kind == "institution" else None,
                    "viewer_project_id": pid if query_kind == "project" else None,
                    "query_kind": query_kind,
                    "query_id": query_id,
                    "side": side,
                    "project_id": pid,
                    "institution_id": iid,
                    "position": pos,
                    "rank": pos,
                    "score": None,
                    "model": MODEL,
                    "surface": "page",
                    "demo": True,
                }
            )
            ids[item] = len(impressions) - 1  # the row's index until the inserted rows are read back
        # Examined and relevant items get opened (the connected one is opened by write_actions).
        for pos, item in enumerate(shown, start=1):
            pid, iid = (query_id, item) if query_kind == "project" else (item, query_id)
            if rng.random() < EXAMINATION[pos - 1] * _relevance(fits[iid].get(pid, 0.0)):
                act(
                    ActionKind.OPENED,
                    pid,
                    iid,
                    at + timedelta(minutes=rng.randint(1, 20)),
                    ids[item],
                    list_id,
                    pos,
                )
        return ids

    def act(kind: ActionKind, pid: int, iid: int, at: datetime, imp: int, list_id: str, pos: int) -> None:
        actions.append(
            {
                "at": at,
                "action": kind,
                "project_id": pid,
                "institution_id": iid,
                "user_id": None,
                "impression_id": imp,
                "list_id": list_id,
                "position": pos,
                "demo": True,
            }
        )

    for c in conns:
        if not c.events or c.institution_id not in institutions or c.project_id not in projects:
            continue
        inst = institutions[c.institution_id]
        first = c.events[0]
        at = first.at - timedelta(minutes=rng.randint(5, 120))
        if first.actor_kind is Party.PROJECT:
            scored = {i: fits[i].get(c.project_id, 0.0) for i in by_side[inst.kind.side]}
            scored = {i: f for i, f in scored.items() if f > 0 or i == c.institution_id}
            shown = _place(rng, noise, scored, PROJECT_PAGE, c.institution_id)
            query, qid, item, side = "project", c.project_id, c.institution_id, inst.kind.side
        else:
            scored = dict(fits[c.institution_id])
            scored.setdefault(c.project_id, 0.0)
            shown = _place(rng, noise, scored, INSTITUTION_PAGE, c.project_id)
            query, qid, item, side = "institution", c.institution_id, c.project_id, None
        before = len(actions)
        ids = write_list(query, qid, side, shown, at)
        # The connected item: opened (unless the list's own clicks already opened it), then its events.
        pos = shown.index(item) + 1
        list_id = impressions[-1]["list_id"]
        if not any(a["impression_id"] == ids[item] for a in actions[before:]):
            act(
                ActionKind.OPENED,
                c.project_id,
                c.institution_id,
                at + timedelta(minutes=2),
                ids[item],
                list_id,
                pos,
            )
        for ev in c.events:
            kind = action_of(ev.action, ev.to_stage)
            if kind is not None:
                act(kind, c.project_id, c.institution_id, ev.at, ids[item], list_id, pos)
    span = (end - start).total_seconds()
    for iid in institutions:
        if not fits[iid]:
            continue
        for _ in range(rng.randint(*BROWSES)):
            at = start + timedelta(seconds=span * rng.random())
            write_list("institution", iid, None, _ranked(noise, fits[iid], INSTITUTION_PAGE), at)
    # Plain executemany (no RETURNING: several times faster), then the ids read back by (list, position).
    session.execute(insert(Impression), impressions)
    stored = {
        (r.list_id, r.position): r.id
        for r in session.execute(
            select(Impression.id, Impression.list_id, Impression.position).where(Impression.demo.is_(True))
        )
    }
    for a in actions:
        row = impressions[a["impression_id"]]
        a["impression_id"] = stored[(row["list_id"], row["position"])]
    if actions:
        session.execute(insert(FeedbackAction), actions)
    session.commit()
    return {"demo lists": n_lists, "demo impressions": len(impressions), "demo actions": len(actions)}
