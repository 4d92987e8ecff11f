"""`flask report quarterly`: the quarterly report (赛事专报) as an Excel file."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db


def init_app(app: Flask) -> None:
    """Register the `report` command group."""
    report = AppGroup("report", help="Reports of the follow-up pipeline.")
    app.cli.add_command(report)

    @report.command("quarterly")
    @click.option(
        "--quarter", default=None, help="The quarter, e.g. 2026Q3 (default: the last full quarter)."
    )
    @click.option(
        "--contest", "contests", type=int, multiple=True, help="Only these contest ids (repeatable)."
    )
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        required=True,
        help="Where to write the .xlsx workbook.",
    )
    def quarterly(quarter: str | None, contests: tuple[int, ...], out: Path) -> None:
        """Write the quarterly report (赛事专报): summary, per contest, connections, success cases."""
        from app.pipeline.figures import Period, figures, parse_quarter
        from app.pipeline.report import headline, quarterly_workbook
        from app.schemas import InputError
        from app.services import today

        try:
            period = parse_quarter(quarter) if quarter else Period.last_full_quarter(today())
        except InputError as exc:
            raise click.BadParameter("; ".join(exc.fields.values()), param_hint="--quarter") from None
        session = db.new_session(current_app)
        try:
            fig = figures(session, period, set(contests) or None, int(current_app.config["FOLLOW_UP_DAYS"]))
            from app.intake.filings import filed_plans

            wb = quarterly_workbook(
                fig,
                "指定赛事 " + ", ".join(map(str, contests)) if contests else "全部赛事",
                filings=filed_plans(session, set(contests) or None),
            )
        finally:
            session.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        wb.save(out)
        click.echo(f"{period.label} ({period.start} .. {period.last_day}) -> {out}")
        click.echo("  " + "; ".join(f"{label} {value:g}" for label, value in headline(fig)))
