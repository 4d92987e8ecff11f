"""flask import projects FILE and flask duplicates scan: the organisers' intake from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db


def _contest_id(code: str | None) -> int | None:
    from app.imports import ContestLookup

    if not code:
        return None
    contest = ContestLookup(db.session).find(code)
    if contest is None:
        raise click.BadParameter(
            f"找不到赛事「{code}」（填写赛事编号如 7-R10，或完整赛事名称）", param_hint="--contest"
        )
    return contest.id


def init_app(app: Flask) -> None:
    """Register `flask import projects` and `flask duplicates scan`."""
    importer = AppGroup("import", help="Import projects or institutions from a CSV or xlsx file.")
    app.cli.add_command(importer)

    @importer.command("projects")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--contest", "contest_code", help="Contest code (e.g. 7-R10) or name, for rows that name none."
    )
    @click.option(
        "--dry-run", is_flag=True, help="Validate and count new/changed/unchanged rows; write nothing."
    )
    @click.option("--enqueue", is_flag=True, help="Run the import job on the RQ workers and follow it.")
    def import_projects(file: Path, contest_code: str | None, dry_run: bool, enqueue: bool) -> None:
        """Import projects: all rows or none; the same file again creates nothing.

        Runs the import job (checked, written in chunks, encoded) here with a progress bar, or on the
        workers with --enqueue. Exit status 0 when the file was imported (or, with --dry-run, would be);
        1 with the row errors (nothing imported) or when the job failed; 2 when the file cannot be read.
        """
        _import("projects", file, contest_code, dry_run, enqueue)

    @importer.command("institutions")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="Validate only; write nothing.")
    @click.option("--enqueue", is_flag=True, help="Run the import job on the RQ workers and follow it.")
    def import_institutions(file: Path, dry_run: bool, enqueue: bool) -> None:
        """Import service institutions: all rows or none."""
        _import("institutions", file, None, dry_run, enqueue)

    duplicates = AppGroup("duplicates", help="Suspected duplicate projects.")
    app.cli.add_command(duplicates)

    @duplicates.command("scan")
    @click.option("--contest", "contest_code", help="Only the projects of this contest (against all others).")
    @click.option(
        "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PAIRS.csv to write."
    )
    def duplicates_scan(contest_code: str | None, out: Path) -> None:
        """Flag suspected duplicates (dismissed pairs stay "
        "dismissed) and write project_a,project_b,score,kind,status."""
        from app.intake.duplicates import scan, write_csv
        from app.services import sync_embeddings
        from embeddings import load_embedder

        contest_id = _contest_id(contest_code)
        embedder = load_embedder(current_app.config["EMBEDDING_MODEL"])
        session = db.session
        sync_embeddings(session, embedder)  # a project without its vector would be compared by text only
        from sqlalchemy import func, select

        from models import Project

        stmt = select(func.count(Project.id)).where(Project.archived_at.is_(None))
        if contest_id is not None:
            stmt = stmt.where(Project.contest_id == contest_id)
        total = session.scalar(stmt) or 0
        with click.progressbar(length=total, label="scanning", show_pos=True, file=sys.stderr) as bar:
            added = scan(session, embedder.name, contest_id, progress=bar.update)
        written = write_csv(session, out, contest_id)
        click.echo(f"{added} new suspected pairs; {written} pairs written to {out}")


def _import(kind: Any, file: Path, contest_code: str | None, dry_run: bool, enqueue: bool = False) -> None:
    from app.imports import ImportFileError, apply_mapping, guess_mapping, import_rows, read_rows

    session = db.session
    default = _contest_id(contest_code)
    data = file.read_bytes()
    try:
        rows = read_rows(file.name, data)
    except ImportFileError as exc:
        click.echo(f"无法导入：{exc.message}", err=True)
        sys.exit(2)
    mapping = guess_mapping(kind, list(rows[0]) if rows else [])
    skipped = [h for h, c in mapping.items() if not c]
    if skipped:
        click.echo("不认识的列：" + "、".join(skipped), err=True)
    if not dry_run:
        _run_import_job(kind, file.name, data, mapping, default, enqueue)
        return
    with click.progressbar(length=len(rows), label="checking rows", show_pos=True, file=sys.stderr) as bar:
        done = [0]

        def step(n: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        try:
            report, _ = import_rows(
                session,
                kind,
                apply_mapping(rows, mapping, ignored=False),
                None,
                default_contest=default,
                dry_run=True,
                progress=step,
            )
        except ImportFileError as exc:
            session.rollback()
            click.echo(f"\n无法导入：{exc.message}", err=True)
            sys.exit(2)
    if not report.ok:
        click.echo(f"{len(report.errors)} 行有误，未导入任何数据：", err=True)
        for number, fields in report.errors:
            click.echo(f"  第 {number} 行：" + "；".join(fields.values()), err=True)
        sys.exit(1)
    for number, text in report.suspects[:50]:
        click.echo(f"  第 {number} 行：疑似重复参赛，{text}", err=True)
    click.echo(
        f"would import {report.rows} rows: {report.created} new, "
        f"{report.updated} changed, {report.unchanged} unchanged"
        f"; {len(report.warnings)} rows with entry conditions to check"
    )


def _run_import_job(
    kind: str, filename: str, data: bytes, mapping: dict[str, str], default: int | None, enqueue: bool
) -> None:
    """Record the import job (file and mapping in the database) and run it here with a progress bar, or
    on the workers (--enqueue) following its row; print its summary; exit 1 when it failed."""
    import time

    from app.intake.importjob import load_state, queue_import, row_errors
    from app.jobs import redis_url, run_job, wait_for
    from models.jobs import Job, JobStatus

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if enqueue and redis_url(app) is None:
        raise click.ClickException("--enqueue needs MATCH_REDIS_URL (and a running `flask worker`)")
    job_id = queue_import(
        app,
        kind,
        filename,
        data,
        mapping=mapping,
        refuse_unmapped=True,
        default_contest=default,
        via="cli",
        dispatch=enqueue,
    )
    where = " queued for the workers" if enqueue else ""
    click.echo(f"job {job_id}: 批量导入 {filename}{where}", err=True)
    started = time.perf_counter()
    with click.progressbar(length=0, label="importing", show_pos=True, file=sys.stderr) as bar:

        def show(done: int, total: int | None, message: str | None) -> None:
            bar.length = total or 0
            bar.update(done - bar.pos)
            if message:
                bar.label = message

        if enqueue:
            while True:
                try:
                    wait_for(app, job_id, timeout=1.0)
                    break
                except TimeoutError:
                    row = db.session.get(Job, job_id)
                    if row is not None:
                        db.session.refresh(row)
                        show(row.done, row.total, row.message)
                    db.session.rollback()
        elif run_job(app, job_id, on_progress=show) is None:
            raise click.ClickException(f"job {job_id} was taken by another run")
    session = db.new_session(app)
    try:
        job = session.get(Job, job_id)
        assert job is not None
        status, error = job.status, job.error
        state = load_state(session, job_id)
    finally:
        session.close()
    report = (state or {}).get("report") or {}
    if status is not JobStatus.DONE:
        if (state or {}).get("phase") == "refused":
            click.echo(f"{report['n_errors']} 行有误，未导入任何数据：", err=True)
            for number, text in row_errors(report):
                click.echo(f"  第 {number} 行：{text}", err=True)
            if report["n_errors"] > len(report["errors"]):
                click.echo(f"  另有 {report['n_errors'] - len(report['errors'])} 行有误未列出", err=True)
        else:
            click.echo(f"job {job_id} failed: {error}", err=True)
        sys.exit(1)
    for number, text in report["suspects"][:50]:
        click.echo(f"  第 {number} 行：疑似重复参赛，{text}", err=True)
    assert state is not None
    record = "project" if kind == "projects" else "institution"
    click.echo(
        f"imported {report['rows']} rows: {report['created']} new, "
        f"{report['updated']} changed, {report['unchanged']} unchanged"
        f"; {report['n_warnings']} rows with entry conditions to check"
    )
    click.echo(
        f"encoded {record} {state.get('encoded', 0)}; unchanged {state.get('encode_unchanged', 0)}"
        f" ({time.perf_counter() - started:.1f} s, job {job_id})"
    )
