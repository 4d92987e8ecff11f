"""``flask event solve --input EVENT.json --out PLAN.json``: the plan contract on the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.events.contract import EventInputError, EventSpec, parse_event, solve_event
from app.extensions import db

MAX_INPUT_BYTES = 20 * 1024 * 1024


def _check_ids_exist(spec: EventSpec) -> None:
    """Refuse ids that are not in the database, naming the first one."""
    from models import Institution, Project

    session = db.new_session(current_app)
    try:
        for model, ids, field in (
            (Project, spec.projects, "projects"),
            (Institution, spec.institutions, "institutions"),
        ):
            found: set[int] = set()
            chunk = list(ids)
            for start in range(0, len(chunk), 500):
                part = chunk[start : start + 500]
                found.update(session.scalars(select(model.id).where(model.id.in_(part))))
            for k, i in enumerate(ids):
                if i not in found:
                    raise EventInputError(f"{field}[{k}]", f"no {field[:-1]} with id {i}")
    finally:
        session.close()


def load_event(path: Path) -> EventSpec:
    """Read, decode and validate an EVENT.json file (ids checked against the database)."""
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise EventInputError("(file)", f"larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise EventInputError("(file)", "not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise EventInputError("(file)", f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    spec = parse_event(data)
    _check_ids_exist(spec)
    return spec


def _no_constant(name: str) -> None:
    raise EventInputError("(file)", f"{name} is not a JSON number")


def init_app(app: Flask) -> None:
    """Register the ``event`` command group."""
    event = AppGroup("event", help="Matchmaking events: plans and timetables.")
    app.cli.add_command(event)

    @event.command("solve")
    @click.option(
        "--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
    )
    @click.option(
        "--out", "out_path", required=True, type=click.Path(dir_okay=False, writable=True, path_type=Path)
    )
    def solve(input_path: Path, out_path: Path) -> None:
        """Plan an event: EVENT.json in, PLAN.json out (meetings, objective, scores, status, blocking).

        Exits 2 with the field named when EVENT.json is invalid; an infeasible event still writes
        PLAN.json (status "infeasible", its blockers) and exits 0.
        """
        from app.events.scores import pair_scores
        from app.services import get_matching

        try:
            spec = load_event(input_path)
        except EventInputError as exc:
            click.echo(f"invalid event file: {exc.field}: {exc.message}", err=True)
            raise SystemExit(2) from None
        start = time.perf_counter()
        service = get_matching()
        plan = solve_event(spec, lambda p, i: pair_scores(service, p, i))
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_text(json.dumps(plan, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(out_path)
        took = time.perf_counter() - start
        if plan["status"] == "optimal":
            click.echo(
                f"optimal: {len(plan['meetings'])} meetings, objective {plan['objective']}, "
                f"{len(plan['scores'])} scored pairs ({took:.1f} s) -> {out_path}"
            )
        else:
            click.echo(f"infeasible ({took:.1f} s) -> {out_path}")
            for b in plan["blocking"]:
                click.echo(f"  {b['constraint']}: {b['message_zh']} / {b['message_en']}")
