"""Replay of the demo's own history: how rankers would have ordered the lists its users acted on.

    python -m evaluation.replay

Builds the demo in a temporary folder (its shipped vectors, its year of connections and the logged
lists they came from, all marked demo: app.feedback.demo), estimates the position bias from the logs,
and re-ranks every logged list with an action by

* the logged order (the ranker that served the lists: the demo's analyst rule plus noise),
* the hand-weighted ranker (what the product runs before anything is learned),
* the ranker ``flask ranker train`` learns from the logs, trained on the older 80 % of the lists.

Metrics are IPS-weighted NDCG@10 and Recall@10 on the newest 20 % of the acted-on lists (matching.feedback:
an action at position k counts gain / theta_k), with a paired bootstrap interval of the learned ranker
against the hand-weighted one. These are numbers on synthetic demo logs: they show the loop works end
to end, not how well the product ranks real users' choices (the shared evaluation sets say that).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

K = 10


def _bootstrap(a: list[float], b: list[float], n: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Return the mean paired difference a - b and its 95 % bootstrap interval."""
    d = np.asarray(a) - np.asarray(b)
    if not len(d):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _per_list(items: list[Any], scores: Any, props: Any) -> list[float]:
    from matching.feedback import replay_metrics

    out = []
    by: dict[str, list[int]] = {}
    for j, r in enumerate(items):
        by.setdefault(r.list_id, []).append(j)
    for rows in by.values():
        if not any(items[j].grade > 0 for j in rows):
            continue
        sub = [items[j] for j in rows]
        s = None if scores is None else np.asarray(scores)[rows]
        out.append(replay_metrics(sub, s, props, K)[f"ndcg@{K}"])
    return out


def replay_demo(folder: Path | None = None) -> dict[str, Any]:
    """Build the demo, replay its logged lists and return the metrics per ranker."""
    from app import create_app
    from app.cli import upgrade_database
    from app.extensions import db
    from app.feedback.train import item_features, known_items, load_log
    from app.services import build_matching
    from matching.feedback import estimate_propensities, replay_metrics, split_by_time, training_set
    from matching.learn import fit_rows
    from matching.ranker import HandWeightedRanker, LearnedRanker

    with tempfile.TemporaryDirectory() as tmp:
        base = folder or Path(tmp)
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{base / 'replay.db'}",
                "INDEX_DIR": str(base / "index"),
                "SECRET_KEY": "replay",
            }
        )
        upgrade_database(app)
        # `flask demo load`: the demo records with the vectors shipped for them.
        loaded = app.test_cli_runner().invoke(args=["demo", "load"])
        if loaded.exit_code != 0:
            raise RuntimeError(f"demo load failed: {loaded.output}") from loaded.exception
        with app.app_context():
            session = db.new_session(app)
            try:
                service = build_matching(app)
                items = load_log(session, demo=True)
            finally:
                session.close()
        app.extensions["db"]["engine"].dispose()
        items = known_items(service, items)
        props = estimate_propensities(items)
        X = item_features(service, items)
        row_of = {id(r): j for j, r in enumerate(items)}
        train, test = split_by_time(items, 0.2)
        X_test = X[[row_of[id(r)] for r in test]]

        def fit(**options: float) -> Any:
            """Fit on the older lists; clip=1.0: no position correction (every action weighs its gain)."""
            ts = training_set(train, props, **options)
            ranker, _ = fit_rows(
                X[[row_of[id(r)] for r in ts.items]],
                ts.labels,
                LearnedRanker(),
                min_positives=1,
                min_negatives=1,
                sample_weight=ts.weights,
                groups=ts.groups,
            )
            return ranker

        learned, naive_ranker = fit(), fit(clip=1.0)
        scores = {
            "logged order (demo-logging-v0)": None,
            "hand-weighted (product default)": HandWeightedRanker().score(X_test),
            "learned from logs, no position correction": naive_ranker.score(X_test),
            "learned from logs, IPS (flask ranker train)": learned.score(X_test),
        }
        rows = {name: replay_metrics(test, s, props, K) for name, s in scores.items()}
        hand = _per_list(test, scores["hand-weighted (product default)"], props)
        ips = _per_list(test, scores["learned from logs, IPS (flask ranker train)"], props)
        return {
            "rows": len(items),
            "lists": len({r.list_id for r in items}),
            "acted_lists": len({r.list_id for r in items if r.grade > 0}),
            "test_lists": len({r.list_id for r in test if r.grade > 0}),
            "theta": [round(float(t), 3) for t in props.theta],
            "metrics": rows,
            "ips_vs_hand_ndcg": _bootstrap(ips, hand),
        }


def format_replay(res: dict[str, Any]) -> str:
    """Return the replay as a Markdown table."""
    lines = [
        "",
        f"Replay of the demo's own history (synthetic logs, marked demo): {res['rows']} shown rows in "
        f"{res['lists']} lists, {res['acted_lists']} with an action; "
        f"held out: the newest {res['test_lists']}.",
        "Position bias (theta by position, EM on the logs): "
        + " ".join(f"{t:.2f}" for t in res["theta"][:10]),
        "",
        f"| demo replay | IPS NDCG@{K} | IPS Recall@{K} |",
        "|---|---|---|",
    ]
    for name, m in res["metrics"].items():
        lines.append(f"| {name} | {m[f'ndcg@{K}']:.3f} | {m[f'recall@{K}']:.3f} |")
    d, lo, hi = res["ips_vs_hand_ndcg"]
    lines.append(f"| learned (IPS) − hand-weighted | {d:+.3f} [{lo:+.3f}, {hi:+.3f}] | |")
    return "\n".join(lines)


def print_replay() -> None:
    """Print the demo replay (the last part of `make eval`); a failure is reported, not raised."""
    try:
        logging.disable(logging.INFO)  # building the demo logs every step at INFO; the table is the point
        try:
            res = replay_demo()
        finally:
            logging.disable(logging.NOTSET)
        print(format_replay(res), flush=True)
    except Exception as exc:  # the replay must not hide the real-data table printed before it
        logging.getLogger(__name__).warning("demo replay failed", exc_info=True)
        print(f"demo replay skipped: {exc}", flush=True)


if __name__ == "__main__":
    print_replay()
    sys.exit(0)
