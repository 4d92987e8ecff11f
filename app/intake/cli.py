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
    def import_projects(file: Path, contest_code: str | None, dry_run: bool) -> None:
        """Import projects: all rows or none; the same file again creates nothing.

        Exit status 0 when the file was imported (or, with --dry-run, would be); 1 with the row errors.
        """
        _import("projects", file, contest_code, dry_run)

    @importer.command("institutions")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="Validate only; write nothing.")
    def import_institutions(file: Path, dry_run: bool) -> None:
        """Import service institutions: all rows or none."""
        _import("institutions", file, None, dry_run)

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


def _import(kind: Any, file: Path, contest_code: str | None, dry_run: bool) -> None:
    from app.imports import ImportFileError, apply_mapping, guess_mapping, import_rows, read_rows
    from app.intake.indexing import index_rows

    session = db.session
    default = _contest_id(contest_code)
    try:
        rows = read_rows(file.name, file.read_bytes())
    except ImportFileError as exc:
        click.echo(f"无法导入：{exc.message}", err=True)
        sys.exit(2)
    mapping = guess_mapping(kind, list(rows[0]) if rows else [])
    skipped = [h for h, c in mapping.items() if not c]
    if skipped:
        click.echo("不认识的列：" + "、".join(skipped), err=True)
    with click.progressbar(length=len(rows), label="checking rows", show_pos=True, file=sys.stderr) as bar:
        done = [0]

        def step(n: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        try:
            report, saved = import_rows(
                session,
                kind,
                apply_mapping(rows, mapping, ignored=False),
                None,
                before_commit=_audit(kind, file.name),
                default_contest=default,
                dry_run=dry_run,
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
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{verb} {report.rows} rows: {report.created} new, "
        f"{report.updated} changed, {report.unchanged} unchanged"
        f"; {len(report.warnings)} rows with entry conditions to check"
    )
    if saved:
        from app.cli import _job_with_progress
        from app.jobs import redis_url
        from models.jobs import JobKind

        # The rows are committed: encode what changed (and flag duplicates) as a recorded job, here with a
        # progress bar, or on the workers when a queue runs.
        enqueue = redis_url(current_app) is not None
        job_id = index_rows(session, kind.rstrip("s"), saved, dispatch=enqueue)
        _job_with_progress(JobKind.ENCODE, {}, enqueue, job_id=job_id)


def _audit(kind: str, filename: str) -> Any:
    from app.access import audit

    def write(report: Any) -> None:
        audit(
            f"import.{kind}",
            kind.rstrip("s"),
            None,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            file=filename[:200],
            via="cli",
        )

    return write
