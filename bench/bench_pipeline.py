"""The pipeline at scale on SQLite and PostgreSQL: dashboard, drill-down, quarterly report, deep list pages.

Loads synthetic data (`flask demo synthetic`: 100,000 projects, 10,000 institutions, 1,000,000 connection
events by default) into a fresh SQLite file and into a fresh PostgreSQL schema (skipped, with the reason
printed, when the server cannot be reached), ANALYZEs, then times (p50 of --repeat runs):

- dashboard: the figures of the last full quarter (app.pipeline.figures: GROUP BY in the database);
- drill-down: the connection list behind "signed this quarter" (its count and first page);
- report data: the report's figures and its list of every connection active in the quarter;
- report xlsx: the whole quarterly report workbook (that data written as .xlsx; --report-repeat runs);
- deep page: page 90% deep into the projects sorted by name, by OFFSET and by keyset cursor.

Prints a table and writes bench-out/pipeline.json.

    python bench/bench_pipeline.py [--projects 100000] [--institutions 10000] [--events 1000000]
        [--repeat 3] [--report-repeat 1] [--postgres-url URL] [--no-postgres] [--no-sqlite]
        [--existing-sqlite FILE] [--existing-postgres URL]    (time a database loaded before)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("MATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def p50(fn: Callable[[], Any], repeat: int, warm: bool = True) -> float:
    """Return the median wall-clock seconds of `repeat` calls (after one warm-up call)."""
    if warm:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pg_schema_url(base: str) -> tuple[str | None, str, str]:
    """Create a fresh schema; return (URL whose connections use it or None, schema, reason if none)."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        engine = create_engine(base)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server skips PostgreSQL
        return None, schema, f"PostgreSQL skipped: cannot reach {base} ({exc.__class__.__name__})"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema, ""


def drop_schema(base: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def run(name: str, url: str, args: argparse.Namespace, tmp: Path, load: bool = True) -> dict[str, Any]:
    """Load the synthetic data into the database at `url` (unless it holds them already: load=False) and
    time the pipeline's reads there."""
    from sqlalchemy import func, select, text, tuple_

    from app import create_app
    from app.cli import upgrade_database
    from app.demo.synthetic import load_synthetic
    from app.extensions import db
    from app.pipeline.demo import DEMO_AS_OF
    from app.pipeline.figures import Period, figures
    from app.pipeline.report import quarterly_report_file
    from app.pipeline.states import china_date
    from app.pipeline.views import _drill_down
    from models import Connection, Project
    from models.pipeline import ConnectionEvent

    app = create_app(
        {
            "DATABASE_URL": url,
            "INDEX_DIR": str(tmp / f"index-{name}"),
            "EMBEDDING_MODEL": "synthetic",
            "TESTING": True,
        }
    )
    out: dict[str, Any] = {"database": name}
    with app.app_context():
        engine = db.engine
        if load:
            upgrade_database(app)
            start = time.perf_counter()
            counts = load_synthetic(
                engine, args.projects, args.institutions, seed=args.seed, n_events=args.events, echo=print
            )
            out["load_s"] = round(time.perf_counter() - start, 1)
            print(f"{name}: loaded in {out['load_s']} s", flush=True)
            out.update(counts)
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        s = db.session
        if not load:
            out["load_s"] = None
            out["events"] = s.scalar(select(func.count(ConnectionEvent.id)))
            out["connections"] = s.scalar(select(func.count(Connection.id)))
        as_of = min(DEMO_AS_OF, datetime_now())
        quarter = Period.last_full_quarter(china_date(as_of))
        out["quarter"] = quarter.quarter

        def dashboard() -> None:
            figures(s, quarter, None, 14, now=as_of).as_json()

        def drill() -> None:
            errors: dict[str, str] = {}
            stmt, _ = _drill_down(select(Connection), {"event": "signed", "quarter": quarter.quarter}, errors)
            assert not errors
            s.scalar(select(func.count()).select_from(stmt.subquery()))
            s.scalars(stmt.order_by(Connection.last_activity_at.desc(), Connection.id.desc()).limit(20)).all()

        def report_data() -> None:
            fig = figures(s, quarter, None, 14, now=as_of)
            fig.as_json()
            out["report_rows"] = len(fig.rows)

        def report() -> None:
            quarterly_report_file(s, quarter, None, "全部赛事", 14)

        per_page = 20
        deep = int(args.projects * 0.9)
        order = (Project.name, Project.id)
        live = select(Project).where(Project.archived_at.is_(None))
        cursor = s.execute(
            select(Project.name, Project.id)
            .where(Project.archived_at.is_(None))
            .order_by(*order)
            .offset(deep - 1)
            .limit(1)
        ).one()

        def offset_page() -> list[Any]:
            return s.scalars(live.order_by(*order).offset(deep).limit(per_page)).all()

        def keyset_page() -> list[Any]:
            after = tuple_(Project.name, Project.id) > tuple_(cursor.name, cursor.id)
            return s.scalars(live.where(after).order_by(*order).limit(per_page)).all()

        assert [p.id for p in offset_page()] == [p.id for p in keyset_page()]
        fig = figures(s, quarter, None, 14, now=as_of)
        out["quarter_opened"] = fig.totals.opened
        out["quarter_signed"] = fig.totals.signed
        for key, fn, repeat, warm in (
            ("dashboard_s", dashboard, args.repeat, True),
            ("drill_down_s", drill, args.repeat, True),
            ("offset_page_s", offset_page, args.repeat, True),
            ("keyset_page_s", keyset_page, args.repeat, True),
            ("report_data_s", report_data, args.repeat, False),
            ("report_xlsx_s", report, args.report_repeat, False),
        ):
            out[key] = round(p50(fn, repeat, warm), 4)
            print(f"{name}: {key} {out[key]}", flush=True)
            s.rollback()
        s.close()
        db.engine.dispose()
    return out


def datetime_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--institutions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--report-repeat", type=int, default=1, help="runs of the whole xlsx report")
    parser.add_argument("--existing-sqlite", help="time an SQLite file loaded before (no load)")
    parser.add_argument("--existing-postgres", help="time a PostgreSQL URL loaded before (no load)")
    parser.add_argument("--postgres-url", default=PG_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "pipeline.json"))
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"loading {args.projects} projects, {args.institutions} institutions, {args.events} events ...")
        if args.existing_sqlite:
            results.append(run("sqlite", f"sqlite:///{args.existing_sqlite}", args, Path(tmp), load=False))
        elif not args.no_sqlite:
            results.append(run("sqlite", f"sqlite:///{Path(tmp) / 'pipeline.db'}", args, Path(tmp)))
        if args.existing_postgres:
            results.append(run("postgresql", args.existing_postgres, args, Path(tmp), load=False))
        elif args.no_postgres:
            skipped["postgresql"] = "--no-postgres"
        else:
            url, schema, reason = pg_schema_url(args.postgres_url)
            if url is None:
                skipped["postgresql"] = reason
                print(reason)
            else:
                try:
                    results.append(run("postgresql", url, args, Path(tmp)))
                finally:
                    drop_schema(args.postgres_url, schema)

    cols = [
        ("database", "database"),
        ("load_s", "load s"),
        ("events", "events"),
        ("dashboard_s", "dashboard s"),
        ("drill_down_s", "drill-down s"),
        ("report_data_s", "report data s"),
        ("report_xlsx_s", "report xlsx s"),
        ("offset_page_s", "OFFSET page s"),
        ("keyset_page_s", "keyset page s"),
    ]
    print(" | ".join(f"{h:>13}" for _, h in cols))
    for r in results:
        print(" | ".join(f"{r.get(k)!s:>13}" for k, _ in cols))
    report = {
        "size": {"projects": args.projects, "institutions": args.institutions, "events": args.events},
        "repeat": args.repeat,
        "results": results,
        "skipped": skipped,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
