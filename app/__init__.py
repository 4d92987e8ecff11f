"""The Flask application: create_app() is the only way in (flask --app app, gunicorn "app:create_app()").

What lives where (one place for each concept):

access.py     the privacy policy and every permission: field tiers, who sees contacts, record texts,
              which match reasons a viewer reads, view decorators, the audit log
services.py   every write to a project, institution or need (vectors and indexes kept in step), the
              row <-> ranking-core translation, list filters (text_match: the one LIKE search)
schemas.py    validated input (pydantic, Chinese messages); MAX_ID, the one id bound
params.py     query-string parameters; serialize.py  records as JSON at the viewer's level
web/          pages (web/lists.py: the one paginator, sort and xlsx export of every list)
api/          the JSON API; pipeline/ connections and their history, dashboard, report
events/       matchmaking events; intake/ organisers' imports and duplicates; alerts/ saved searches
auth/, admin/ accounts, logins, tokens; the secretariat's pages.   jobs/ background jobs
demo/         loads the shipped demo data (its generator is tools/generate_demo.py)
sheets.py     every spreadsheet cell written; backup.py the backup format; index_sync.py workers' indexes
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from app.config import Config
from app.extensions import db


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure an app instance."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(Config)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("MATCH")
    if config:
        app.config.update(config)
    from embeddings.stores import parse_store_setting, require_milvus

    # A bad value, or Milvus named without its packages installed, stops the start.
    store = parse_store_setting(app.config.get("VECTOR_STORE"), app.instance_path)
    if store.kind == "milvus":
        require_milvus(store.lite)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "faiss.loader", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    db.init_app(app)

    from app import access, alerts, api, cli, errors, feedback, intake, notices, pipeline, security, web
    from app.admin import bp as admin_bp
    from app.alerts.views import api_bp as alerts_api_bp
    from app.api import answers
    from app.auth import bp as auth_bp
    from app.events.views import bp as events_bp
    from app.feedback.views import bp as feedback_api_bp
    from app.jobs import views as jobs_views
    from app.pipeline.api import bp as pipeline_api_bp

    access.init_app(app)  # first: every later hook and view knows who is asking
    security.init_app(app)  # binds the rate limiter
    errors.init_app(app)
    notices.init_app(app)
    web.init_app(app)
    pipeline.init_app(app)
    alerts.init_app(app)
    # The JSON API under /api: rate-limited per token, exempt from the form CSRF check (token calls carry
    # no cookie; cookie writes are checked in app.security), described by /api/openapi.json.
    answers.init_app(app)  # the anonymous ranked-list answers kept per ranking state (KEPT_ANSWERS_MB)
    for api_bp in (api.bp, pipeline_api_bp, alerts_api_bp, feedback_api_bp):
        security.limit_api(api_bp)
        web.csrf.exempt(api_bp)
        app.register_blueprint(api_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(events_bp)
    jobs_views.init_app(app)
    cli.init_app(app)
    intake.init_app(app)  # organisers' intake pages and `flask import` / `flask duplicates`
    feedback.init_app(app)  # impressions of ranked lists and the actions taken on them
    return app
