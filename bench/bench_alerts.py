"""Alerts: what a project write costs the request (scheduling only) and what a run of N saved searches costs.

Builds a fresh demo database in a temporary folder (or copies --from-db/--from-index), saves N searches
(the secretariat's, over the institutions' ranked projects with a rank threshold of 10), then prints:
the time of `projects_changed()` (all a request pays), the time of one full run and its time per search.

    python bench/bench_alerts.py --searches 50
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._timing import percentiles, time_calls, timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=50)
    parser.add_argument("--from-db", type=Path, default=None, help="a demo match.db to copy")
    parser.add_argument("--from-index", type=Path, default=None, help="its index folder to copy")
    args = parser.parse_args()

    from sqlalchemy import select

    from app import create_app
    from app.alerts import projects_changed
    from app.alerts.service import SearchIn, create_search, run_searches
    from app.cli import upgrade_database
    from app.extensions import db
    from app.services import build_matching
    from models import Institution
    from models.accounts import User
    from models.enums import Role

    folder = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    try:
        if args.from_db:
            shutil.copy(args.from_db, folder / "match.db")
            shutil.copytree(args.from_index, folder / "index")
        config = {
            "DATABASE_URL": f"sqlite:///{folder / 'match.db'}",
            "INDEX_DIR": str(folder / "index"),
            "ALERTS_IN_PROCESS": True,
            "ALERTS_DEBOUNCE_SECONDS": 3600.0,
            "MATCHING_EAGER": False,
        }
        app = create_app(config)
        if not args.from_db:
            from app.demo.load import load_demo
            from app.demo.vectors import restore_shipped_vectors
            from embeddings import model_name

            upgrade_database(app)
            session = db.new_session(app)
            load_demo(session)
            restore_shipped_vectors(session, model_name(app.config["EMBEDDING_MODEL"]))
            session.close()
        with app.app_context():
            app.extensions["matching"] = build_matching(app)
            s = db.session
            admin = s.scalar(select(User).where(User.role == Role.ADMIN))
            insts = list(s.scalars(select(Institution.id).where(Institution.archived_at.is_(None))))
            for i in range(args.searches):
                values = SearchIn(name=f"bench {i}", kind="institution", target_id=insts[i % len(insts)])
                create_search(s, admin, values)
            s.commit()
            with app.test_request_context():
                ms = time_calls(lambda _i: projects_changed(), repeat=1000)
            p = percentiles(ms)
            print(f"projects_changed() in a request: p50 {p['p50']:.4f} ms, p99 {p['p99']:.4f} ms")
            with timer() as t:
                report = run_searches(db.new_session(app))
            print(
                f"one run over {report.searches} saved searches: {t.seconds:.2f} s "
                f"({t.ms / max(1, report.searches):.1f} ms per search), {report.notified} notifications"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
