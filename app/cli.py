"""flask commands next to what they manage: database, demo data, embeddings, indexes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db
from models.enums import SIDES

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    """Return an Alembic config for the app's database (no alembic.ini needed)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(app: Flask) -> None:
    """Apply every migration to the app's database and load the shipped contest catalogue."""
    from models.catalog import catalogue_files, load_contests

    with app.extensions["db"]["engine"].begin() as conn:
        cfg = alembic_config(app.config["DATABASE_URL"])
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    session = db.new_session(app)
    try:
        for path in catalogue_files():
            load_contests(session, path)
    finally:
        session.close()


def init_app(app: Flask) -> None:
    """Register the commands."""

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database schema and load the contest catalogue."""
        upgrade_database(current_app)
        click.echo(f"database ready: {_safe_url(current_app.config['DATABASE_URL'])}")

    demo = AppGroup("demo", help="Demo data.")
    app.cli.add_command(demo)

    @demo.command("load")
    @click.option("--force", is_flag=True, help="Load even when projects already exist.")
    def demo_load(force: bool) -> None:
        """Load the shipped demo projects, institutions and needs (once), with their shipped vectors."""
        from app.demo.load import load_demo
        from app.demo.vectors import restore_shipped_vectors
        from embeddings import model_name

        session = db.new_session(current_app)
        try:
            counts = load_demo(session, force=force)
            # Vectors made by the configured model from the same texts: `flask embed` encodes the rest.
            counts["shipped vectors"] = restore_shipped_vectors(
                session, model_name(current_app.config["EMBEDDING_MODEL"])
            )
        finally:
            session.close()
        click.echo("demo: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    @demo.command("vectors")
    @click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz file to write.")
    def demo_vectors(out: str) -> None:
        """Write the demo records' vectors (encoding what changed first) for shipping with the demo."""
        from app.demo.vectors import write_shipped_vectors

        embedder = _sync_with_progress(64)
        session = db.new_session(current_app)
        try:
            written, missing = write_shipped_vectors(session, embedder.name, Path(out))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            session.close()
        click.echo(f"{written} vectors by {embedder.name} written to {out}")
        if missing:
            click.echo(f"note: {missing} demo records are not in this database: run `flask demo load` first")

    @demo.command("synthetic")
    @click.option("--projects", "n_projects", required=True, type=click.IntRange(1), help="Projects.")
    @click.option("--institutions", "n_institutions", required=True, type=click.IntRange(1))
    @click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same data).")
    @click.option(
        "--events",
        "n_events",
        default=None,
        type=click.IntRange(0),
        help="About how many connection history events to write [default: two per project].",
    )
    def demo_synthetic(n_projects: int, n_institutions: int, seed: int, n_events: int | None) -> None:
        """Fill an empty database with synthetic scale data for benchmarks (EMBEDDING_MODEL=synthetic)."""
        from app.demo.synthetic import SyntheticRefused, load_synthetic
        from app.services import build_matching

        if current_app.config["EMBEDDING_MODEL"] != "synthetic":
            # Any other model would re-encode every synthetic record when the service starts.
            raise click.ClickException(
                "set MATCH_EMBEDDING_MODEL=synthetic: the data is served with its own vectors"
            )
        start = time.perf_counter()
        try:
            counts = load_synthetic(
                db.engine, n_projects, n_institutions, seed=seed, n_events=n_events, echo=click.echo
            )
        except SyntheticRefused as exc:
            raise click.ClickException(str(exc)) from None
        loaded = time.perf_counter() - start
        click.echo("synthetic: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({loaded:.1f} s)")
        build_matching(current_app, rebuild=True)
        click.echo(f"indexes built in {time.perf_counter() - start - loaded:.1f} s")

    @app.cli.command("embed")
    @click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 4096))
    @click.option("--dry-run", is_flag=True, help="Only count the records whose text or model changed.")
    @click.option("--enqueue", is_flag=True, help="Run it on the workers (MATCH_REDIS_URL) and follow it.")
    def embed(batch_size: int, dry_run: bool, enqueue: bool) -> None:
        """Encode every record whose text or model changed (as a job), then (re)build the indexes."""
        from app.services import build_matching, embedding_plan
        from embeddings import model_name
        from models.jobs import JobKind

        if dry_run:
            session = db.new_session(current_app)
            try:
                plans = embedding_plan(session, model_name(current_app.config["EMBEDDING_MODEL"]))
            finally:
                session.close()
            click.echo(", ".join(f"{kind} {len(todo)}" for kind, *_, todo in plans))
            click.echo(f"to encode: {sum(len(todo) for *_, todo in plans)}")
            return
        _job_with_progress(JobKind.ENCODE, {"batch_size": batch_size}, enqueue)
        if not enqueue:
            build_matching(current_app)
            click.echo("indexes in step with the database")

    @app.cli.command("worker")
    @click.option("--queue", "queues", multiple=True, help="Queues to listen on [default: MATCH_JOB_QUEUE].")
    @click.option("--name", default=None, help="The worker's name in Redis [default: host and pid].")
    @click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
    def worker(queues: tuple[str, ...], name: str | None, burst: bool) -> None:
        """Run background jobs from the Redis queue (MATCH_REDIS_URL); run as many as needed, on any host."""
        import threading

        from rq import SimpleWorker

        from app.jobs import redis_url, requeue_abandoned, rq_queue, watch_abandoned

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if redis_url(app) is None:
            raise click.ClickException(
                "MATCH_REDIS_URL is not set: jobs run inside the process that starts them, no worker needed"
            )
        listen = [rq_queue(app, q) for q in (queues or (app.config["JOB_QUEUE"],))]
        # SimpleWorker runs jobs in this process: the model stays loaded between jobs, and a kill -9 of
        # the worker stops its job too. Its abandoned jobs are found by their heartbeat in the database.
        requeued = requeue_abandoned(app)
        if requeued:
            click.echo(f"queued again after a dead worker: jobs {', '.join(map(str, requeued))}")
        stop = threading.Event()
        watch_abandoned(app, stop)
        try:
            SimpleWorker(listen, connection=listen[0].connection, name=name).work(burst=burst)
        finally:
            stop.set()

    ranker = AppGroup("ranker", help="The learned ranker.")
    app.cli.add_command(ranker)

    @ranker.command("train")
    @click.option(
        "--source",
        type=click.Choice(["feedback", "outcomes"]),
        default="feedback",
        show_default=True,
        help="feedback: the logged ranked lists and what users did with them (position-debiased); "
        "outcomes: accepted/signed versus refused connections.",
    )
    @click.option(
        "--model",
        type=click.Choice(["logistic", "pairwise", "hgb", "lambdarank"]),
        default="logistic",
        show_default=True,
        help="feedback: the learner fitted to the position-weighted rows (outcomes always use lambdarank).",
    )
    @click.option(
        "--negatives", default=3, show_default=True, help="outcomes: unconnected institutions per project."
    )
    @click.option(
        "--half-life-days", default=365.0, show_default=True, help="outcomes: newer outcomes weigh more."
    )
    @click.option("--days", default=730.0, show_default=True, help="feedback: lists of the last N days.")
    def ranker_train(source: str, model: str, negatives: int, half_life_days: float, days: float) -> None:
        """Retrain the ranking model from the feedback log (default) or from connection outcomes."""
        if source == "feedback":
            from app.feedback.report import echo_report
            from app.feedback.train import TooLittleFeedback, train_from_feedback

            try:
                echo_report(train_from_feedback(current_app, model=model, days=days))
            except TooLittleFeedback as exc:
                raise click.ClickException(str(exc)) from None
            return
        report, path = train_ranker(current_app, negatives, half_life_days)
        click.echo(
            f"trained {report.model} ranker on {report.n_pairs} pairs ({report.n_positive} positive, "
            f"{report.n_projects} projects, {report.n_skipped} skipped); saved to {path.name}"
        )
        for name, value in sorted(report.importances.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {name:<24} {value:.3f}")

    register_backup(app)

    index = AppGroup("index", help="FAISS indexes.")
    app.cli.add_command(index)

    @index.command("rebuild")
    @click.option("--enqueue", is_flag=True, help="Run it on a worker (MATCH_REDIS_URL) and follow it.")
    def index_rebuild(enqueue: bool) -> None:
        """Rebuild the FAISS indexes from the stored vectors, as a job (unchanged texts: not re-encoded)."""
        from models.jobs import JobKind

        start = time.perf_counter()
        run = _job_with_progress(JobKind.INDEX_REBUILD, {}, enqueue)
        if run is not None:
            service = run.outcome
            click.echo(
                f"indexes rebuilt in {time.perf_counter() - start:.2f} s: "
                f"{len(service.project_ids())} projects, {len(service.institution_ids())} institutions"
            )

    from app.events.cli import init_app as init_event_commands

    init_event_commands(app)  # flask event solve


def _job_with_progress(kind: Any, params: dict[str, Any], enqueue: bool, job_id: int | None = None) -> Any:
    """Run a job here (or on the workers with enqueue) with a progress bar; return the run (None if enqueued).

    The job is recorded like any other, so the secretariat's pages show it too. job_id: a job already
    recorded (not dispatched) by the caller, run instead of a new one.
    """
    from app.jobs import redis_url, run_job, start_job, wait_for
    from models.jobs import JobStatus

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if enqueue and redis_url(app) is None:
        raise click.ClickException("--enqueue needs MATCH_REDIS_URL (and a running `flask worker`)")
    if job_id is None:
        job_id = start_job(kind, params, app=app, dispatch=enqueue)
    click.echo(f"job {job_id}: {kind.value}" + (" queued for the workers" if enqueue else ""))
    started = time.perf_counter()
    with click.progressbar(length=0, label=kind.value, show_pos=True) as bar:

        def show(done: int, total: int | None, _message: str | None) -> None:
            bar.length = total or 0
            bar.update(done - bar.pos)

        status: JobStatus | None
        if enqueue:
            job = None
            while job is None:
                try:
                    job = wait_for(app, job_id, timeout=1.0)
                except TimeoutError:
                    session = db.new_session(app)
                    try:
                        from models.jobs import Job

                        row = session.get(Job, job_id)
                        if row is not None:
                            show(row.done, row.total, row.message)
                    finally:
                        session.close()
            run, status, error = None, job.status, job.error
        else:
            run = run_job(app, job_id, on_progress=show)
            if run is None:
                raise click.ClickException(f"job {job_id} was taken by another run")
            status, error = run.status, None
            if status is JobStatus.FAILED:
                error = _job_error(job_id)
    if status is JobStatus.FAILED:
        raise click.ClickException(f"job {job_id} failed: {error}")
    took = time.perf_counter() - started
    report = getattr(run, "outcome", None)
    if report is not None and hasattr(report, "encoded"):
        click.echo(
            "encoded "
            + ", ".join(f"{k} {n}" for k, n in report.encoded.items())
            + f"; unchanged {sum(report.unchanged.values())}; removed {sum(report.removed.values())}"
            + f" ({took:.1f} s)"
        )
    elif enqueue:
        click.echo(f"job {job_id} done ({took:.1f} s)")
    return run


def _job_error(job_id: int) -> str | None:
    from models.jobs import Job

    session = db.new_session(current_app)
    try:
        job = session.get(Job, job_id)
        return job.error if job is not None else None
    finally:
        session.close()


def _sync_with_progress(batch_size: int) -> Any:
    """Encode every record whose text or model changed, in batches, with a progress bar; return the model."""
    from app.services import sync_embeddings
    from embeddings import load_embedder

    embedder = load_embedder(current_app.config["EMBEDDING_MODEL"])
    session = db.new_session(current_app)
    start = time.perf_counter()
    try:
        with click.progressbar(length=0, label=f"encoding with {embedder.name}", show_pos=True) as bar:

            def begin(total: int) -> None:
                bar.length = total

            report = sync_embeddings(
                session, embedder, batch_size, progress=lambda _k, n: bar.update(n), on_start=begin
            )
    finally:
        session.close()
    took = time.perf_counter() - start
    click.echo(
        "encoded "
        + ", ".join(f"{k} {n}" for k, n in report.encoded.items())
        + f"; unchanged {sum(report.unchanged.values())}; removed {sum(report.removed.values())}"
        + f" ({took:.1f} s)"
    )
    return embedder


def register_backup(app: Flask) -> None:
    """Register `flask backup create|restore`."""
    backup = AppGroup("backup", help="Back up and restore the whole state (database and index manifests).")
    app.cli.add_command(backup)

    @backup.command("create")
    @click.option("--out", required=True, type=click.Path(dir_okay=False), help="The backup file to write.")
    def backup_create(out: str) -> None:
        """Write every table (audit log and vectors included) and the index manifests to one file."""
        from app.backup import BackupError, create_backup
        from app.services import index_dir

        try:
            summary = create_backup(db.engine, out, index_dir(current_app))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"backup written to {out}: revision {summary.revision}, {summary.total_rows} rows in "
            f"{len(summary.rows)} tables, {len(summary.index_manifests)} index manifests"
        )

    @backup.command("restore")
    @click.argument("file", type=click.Path(dir_okay=False))
    def backup_restore(file: str) -> None:
        """Restore a backup into an empty, migrated database (one transaction), then rebuild the indexes."""
        from app.backup import BackupError, index_summary, restore_backup
        from app.services import build_matching, index_dir

        try:
            summary = restore_backup(db.engine, file)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"restored {summary.total_rows} rows in {len(summary.rows)} tables (revision {summary.revision})"
        )
        build_matching(current_app, rebuild=True)
        folder = index_dir(current_app)
        rebuilt = {p.name: json.loads(p.read_text("utf-8")) for p in folder.glob("*.manifest.json")}
        saved = index_summary(summary.index_manifests)
        now = index_summary({name: rebuilt.get(name, {}) for name in saved})
        differ = sorted(name for name in saved if saved[name] != now[name])
        if differ:
            click.echo("note: rebuilt indexes differ from the backup's manifests: " + ", ".join(differ))
        click.echo("indexes rebuilt from the restored vectors")


def train_ranker(app: Flask, negatives: int = 3, half_life_days: float = 365.0) -> Any:
    """Retrain the ranker from the service's own connection outcomes; save it and put it to work."""
    from app.pipeline.labels import outcome_labels
    from app.services import build_matching, ranker_path
    from matching.learn import LabelledPair, fit_ranker, sample_negatives

    service = build_matching(app)
    session = db.new_session(app)
    try:
        labels = outcome_labels(session)
    finally:
        session.close()
    known_p, known_i = set(service.project_ids()), set(service.institution_ids())
    pairs = [
        LabelledPair(service.project(p), service.institution(i), label, day.isoformat())
        for p, i, label, day in labels
        if p in known_p and i in known_i
    ]
    # Institutions of the same side a project never connected with are weak negatives; refusals are
    # the strong ones. Drawn per side, from projects with at least one positive answer.
    answered: dict[int, set[int]] = {}
    for pair in pairs:
        answered.setdefault(pair.project.id, set()).add(pair.institution.id)
    for side in SIDES:
        positives = {
            pid: {i for i in insts if service.institution(i).side == side} for pid, insts in answered.items()
        }
        positives = {pid: ids for pid, ids in positives.items() if ids}
        for pid, iid in sample_negatives(
            positives, service, side, negatives, random_state=0, exclude=answered
        ):
            pairs.append(LabelledPair(service.project(pid), service.institution(iid), 0, None))
    ranker, report = fit_ranker(pairs, service, half_life_days=half_life_days)
    path = ranker_path(app)
    ranker.save(path)
    if "matching" in app.extensions:
        app.extensions["matching"].set_ranker(ranker)
    return report, path


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
