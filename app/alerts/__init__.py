"""Saved searches and alerts: matches that come to the user (notification centre and e-mail digests).

service.py   save, re-run, notify, the funnel        mail.py   digests over SMTP, one-click unsubscribe
views.py     pages and the /api/alerts routes          cli.py    flask alerts run | send-digests

Project writes (app.services) call `projects_changed()` after their commit; it wakes one background
thread per app that waits ALERTS_DEBOUNCE_SECONDS (gathering a burst of changes, e.g. an import, into
one run), re-runs the saved searches and mails the immediate digests. `flask alerts run` does the same
from cron, for changes made by commands or lost with a restarted process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)


class AlertWorker:
    """One daemon thread per app that re-runs the saved searches after project changes, batched."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def notify(self) -> None:
        """Ask for a run soon (cheap; returns at once)."""
        self._wake.set()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(float(self.app.config["ALERTS_DEBOUNCE_SECONDS"]))
            self._wake.clear()  # changes after this point wake the next run
            try:
                run_and_mail(self.app)
            except Exception:  # the thread must survive a failed run; the next change or cron retries
                log.exception("alerts: background run failed")
            self.runs += 1


def run_and_mail(app: Flask) -> tuple[Any, Any]:
    """Re-run every saved search, then mail the immediate digests; return both reports."""
    from app.alerts.mail import send_digests
    from app.alerts.service import run_searches
    from app.extensions import db
    from models.alerts import AlertFrequency

    with app.app_context():
        session = db.new_session(app)
        try:
            ran = run_searches(session)
            mailed = send_digests(app, session, AlertFrequency.IMMEDIATE) if ran.notified else None
        finally:
            session.close()
    return ran, mailed


def in_process(app: Flask) -> bool:
    """Return True when project changes trigger a background run (default: on, except in tests)."""
    value = app.config.get("ALERTS_IN_PROCESS")
    return (not app.testing) if value is None else bool(value)


def projects_changed() -> None:
    """Note that projects were added, changed or removed (call after the commit); never raises."""
    try:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if in_process(app):
            app.extensions["alerts"].notify()
    except Exception:  # alerts must never fail the write that triggered them
        log.exception("alerts: could not schedule a run")


def init_app(app: Flask) -> None:
    """Register the pages, the commands, the template helpers and the view hook.

    The API routes (app.alerts.views.api_bp) are registered by create_app with the other API blueprints.
    """
    from app.alerts import cli, views

    app.extensions["alerts"] = AlertWorker(app)
    app.register_blueprint(views.bp)
    cli.init_app(app)
    views.init_app(app)
