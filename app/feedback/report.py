"""Printing what ``flask ranker train`` learned from the feedback log."""

from __future__ import annotations

import click

from app.feedback.train import FeedbackReport

GRADE_NAMES = {0: "shown only", 1: "opened", 2: "shortlisted", 3: "requested", 4: "accepted", 5: "signed"}


def _metrics(m: dict[str, float]) -> str:
    return f"NDCG@10 {m['ndcg@10']:.3f}  Recall@10 {m['recall@10']:.3f}" if m else "–"


def echo_report(r: FeedbackReport) -> None:
    """Echo the training summary: data, position weights, held-out replay before/after, importances."""
    click.echo(
        f"trained {r.model} ranker on {r.n_pairs} pairs ({r.n_positive} positive) from {r.rows} logged rows "
        f"in {r.lists} lists ({r.acted_lists} with an action); version {r.version}"
        + (f"; saved to {r.path.name}" if r.path else "")
    )
    click.echo("  labels: " + ", ".join(f"{GRADE_NAMES[g]} {n}" for g, n in r.grades.items()))
    p = r.propensities
    shown = [k for k in range(len(p.theta)) if p.shown[k]]
    click.echo(
        f"  position bias (examination model fitted by EM, relevance prior {p.prior:g}; "
        "weight = 1/theta, clipped at 10):"
    )
    click.echo("    position   " + " ".join(f"{k + 1:>5}" for k in shown))
    click.echo("    theta      " + " ".join(f"{p.theta[k]:5.2f}" for k in shown))
    rates = p.click_rates()
    top = rates[0] if rates[0] > 0 else 1.0
    click.echo("    raw rate   " + " ".join(f"{rates[k] / top:5.2f}" for k in shown))
    if r.before:
        click.echo(
            f"  held-out replay (newest {r.held_out_lists} acted-on lists, IPS-weighted; "
            "trained on the older lists):"
        )
        click.echo(f"    logged order     {_metrics(r.logged)}")
        click.echo(f"    ranker in use    {_metrics(r.before)}")
        click.echo(f"    learned          {_metrics(r.after)}")
    click.echo("  feature importances:")
    for name, value in sorted(r.importances.items(), key=lambda kv: -kv[1])[:12]:
        click.echo(f"    {name:<24} {value:.3f}")
