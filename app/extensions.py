"""Unbound extension objects, bound to an app by init_app."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session

from models.db import make_engine, make_session_factory


class Database:
    """A small SQLAlchemy glue: one engine per app, one session per request (scoped)."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("DATABASE_URL") or ("sqlite:///" + os.path.join(app.instance_path, "match.db"))
        app.config["DATABASE_URL"] = url
        if url.startswith("sqlite"):
            os.makedirs(app.instance_path, exist_ok=True)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        app.extensions["db"] = {"engine": engine, "session": scoped_session(factory), "factory": factory}

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            app.extensions["db"]["session"].remove()

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db"]["engine"]

    @property
    def session(self) -> Session:
        return current_app.extensions["db"]["session"]()

    def new_session(self, app: Flask | None = None) -> Session:
        """Return a fresh session outside the request scope (background work, commands)."""
        target: Any = app or current_app
        return target.extensions["db"]["factory"]()


db = Database()

#: Sessions for pages; app.access binds it and adds API tokens on top.
login_manager = LoginManager()

#: Rate limits (login attempts, API calls); in memory unless MATCH_RATELIMIT_STORAGE_URI names a Redis.
limiter = Limiter(key_func=get_remote_address)
