"""The feedback log: impressions of the ranked lists signed-in users see, and what they do with them.

log.py      the lists a request served (pages and API: one bulk insert after the view), the opened
            action of a ``?from=<list>&pos=<n>`` link, and the pipeline's actions linked back to the
            impression that showed the pair
train.py    ``flask ranker train``: position-debiased training from the logs (matching.feedback)
demo.py     plausible logs for the demo's own connection history (marked demo)
views.py    aggregate figures for the secretariat only

Only ids are stored (no names, texts or contacts); anonymous visitors and bots are never logged; a
failed write is logged and never breaks or blocks the page.
"""

from __future__ import annotations

from flask import Flask

from app.feedback.log import (
    flush_pending,
    log_listing,
    log_shown,
    record_opened,
    record_pipeline_actions,
    shown_link,
)

__all__ = ["init_app", "log_listing", "log_shown", "record_opened", "record_pipeline_actions", "shown_link"]


def init_app(app: Flask) -> None:
    """Record opened detail links and offer the link helper to templates (create_app adds the figures' API)."""
    app.config.setdefault("FEEDBACK_LOG", True)
    app.before_request(record_opened)
    app.after_request(flush_pending)
    app.add_template_global(shown_link, "shown_link")
