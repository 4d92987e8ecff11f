"""The ranked-list API answers from the ranking core's profiles: it reads no project or institution row, and
shows what the rows hold."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from app.extensions import db
from models import Institution, Project


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL statements the app's engine runs meanwhile."""
    seen: list[str] = []
    engine = app.extensions["db"]["engine"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _reads_records(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM project" in s or "FROM institution" in s]


def _first(app: Flask, model: Any) -> int:
    with app.app_context():
        ident = db.session.scalar(select(model.id).where(model.archived_at.is_(None)).order_by(model.id))
        assert ident is not None
        return int(ident)


def test_anonymous_ranked_lists_read_no_rows(app: Flask, client: Any) -> None:
    iid, pid = _first(app, Institution), _first(app, Project)
    inst_url, proj_url = (
        f"/api/institutions/{iid}/matches?k=10",
        f"/api/projects/{pid}/matches?kind=fund&k=10",
    )
    assert client.get(inst_url).status_code == 200  # builds the matching service
    with statements(app) as seen:
        for url in (inst_url, proj_url):
            r = client.get(url)
            assert r.status_code == 200 and len(r.json["items"]) == 10, r.json
    assert _reads_records(seen) == []
    with statements(app) as seen:  # a filter still reads the ids it allows
        assert client.get(inst_url + "&province=浙江省").status_code == 200
    assert _reads_records(seen)


@pytest.mark.parametrize("login", [None, "admin"])
def test_ranked_items_show_what_the_rows_hold(app: Flask, client: Any, auth: Any, login: str | None) -> None:
    if login:
        auth.login(login)
    iid, pid = _first(app, Institution), _first(app, Project)
    projects = client.get(f"/api/institutions/{iid}/matches?k=20").json["items"]
    institutions = client.get(f"/api/projects/{pid}/matches?kind=base&k=20").json["items"]
    assert len(projects) == 20 and len(institutions) == 20
    with app.app_context():
        for item in projects:
            p = db.session.get(Project, item["id"])
            assert (item["name"], item["province"], item["industry"], item["kind"]) == (
                p.name,
                p.province,
                p.industry or None,
                None,
            )
        for item in institutions:
            i = db.session.get(Institution, item["id"])
            assert (item["name"], item["province"], item["industry"], item["kind"]) == (
                i.name,
                i.province,
                None,
                i.kind.value,
            )


def test_missing_and_archived_records_answer_404(app: Flask, client: Any, auth: Any) -> None:
    assert client.get("/api/institutions/999999/matches").status_code == 404
    assert client.get("/api/projects/999999/matches").status_code == 404
    auth.login("admin")
    iid = _first(app, Institution)
    assert client.get(f"/api/institutions/{iid}/matches").status_code == 200
    assert client.delete(f"/api/institutions/{iid}").status_code in (200, 204)
    r = client.get(f"/api/institutions/{iid}/matches")
    assert r.status_code == 404 and r.json["error"]
