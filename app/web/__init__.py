"""Web pages (zh-CN): one blueprint per user area.

home.py the front page; projects.py, institutions.py, needs.py the lists, detail pages (with ranked
matches) and forms; imports.py the organisers' import pages; forms.py form helpers; lists.py what every
list page shares: the one paginator (`paginate`, also behind the API lists), ?sort=, the xlsx export.
What a viewer may see on any of them is decided in app/access.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect

from models.enums import (
    INDUSTRIES,
    PROJECT_NEEDS,
    PROVINCES,
    SIDE_LABELS,
    Award,
    ContestKind,
    FundingRound,
    InstitutionKind,
    ProjectGroup,
    ServiceKind,
    Stage,
)

csrf = CSRFProtect()

#: What each competitor policy does, as the institution's form and page explain it.
_POLICY_HINTS = {"avoid": "排在其他推荐之后", "welcome": "照常排序，仅作提示"}


def init_app(app: Flask) -> None:
    """Register the page blueprints, CSRF protection and template helpers."""
    from app.schemas import COMPETITOR_POLICIES
    from app.web import home, imports, institutions, needs, projects

    csrf.init_app(app)
    for module in (home, projects, institutions, needs, imports):
        app.register_blueprint(module.bp)

    # Globals rather than a context processor: macros imported without context (the filter forms) see them.
    app.jinja_env.globals.update(
        {
            "INDUSTRIES": INDUSTRIES,
            "PROVINCES": PROVINCES,
            "PROJECT_NEEDS": PROJECT_NEEDS,
            "SIDE_LABELS": SIDE_LABELS,
            "AWARDS": Award.labels(),
            "GROUPS": ProjectGroup.labels(),
            "STAGES": Stage.labels(),
            "ROUNDS": FundingRound.labels(),
            "INSTITUTION_KINDS": InstitutionKind.labels(),
            "CONTEST_KINDS": ContestKind.labels(),
            "SERVICE_KINDS": ServiceKind.labels(),
            "COMPETITOR_POLICY_OPTIONS": [
                (v, f"{label}（{_POLICY_HINTS[v]}）") for v, label in COMPETITOR_POLICIES.items()
            ],
            "COMPETITOR_POLICIES": COMPETITOR_POLICIES,
        }
    )

    @app.template_global()
    def url_with(**changes: Any) -> str:
        """Return the current URL with some query parameters changed (None removes one)."""
        from urllib.parse import urlencode

        args = {k: v for k, v in request.args.items()}
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = str(value)
        return request.path + ("?" + urlencode(args) if args else "")

    @app.template_filter("choices")
    def _choices(rows: Iterable[Any], label: str) -> list[tuple[Any, Any]]:
        """Return the (id, label attribute) pairs of records: the options of a `select` or `checks`."""
        return [(r.id, getattr(r, label)) for r in rows]

    @app.template_filter("wan")
    def _wan(value: float | None) -> str:
        if value is None:
            return "—"
        if value >= 10000:
            return f"{value / 10000:g} 亿元"
        return f"{value:g} 万元"
