"""The one LIKE search (app.services.text_match): a user's % and _ are text, never wildcards."""

from __future__ import annotations

from sqlalchemy import select

from app.services import ProjectFilter, project_query, text_match
from models import Project
from models.accounts import User


def test_wildcards_are_text(session) -> None:
    assert session.scalars(select(User).where(text_match("adm", User.username))).first().username == "admin"
    for q in ("%", "_", "ad%n", "a_min", "\\"):
        assert (
            session.scalars(select(User).where(text_match(q, User.username, User.display_name))).all() == []
        )
    name = session.scalars(select(Project.name)).first()
    for q in (f"{name[0]}%{name[-1]}", f"{name[0]}_{name[2:]}"):  # as wildcards they would match `name`
        assert name not in [p.name for p in session.scalars(project_query(ProjectFilter(q=q)))]


def test_a_literal_percent_is_found(session) -> None:
    p = session.scalars(select(Project)).first()
    p.name = "增长率 100%_达成"
    session.commit()
    assert [r.id for r in session.scalars(project_query(ProjectFilter(q="100%_")))] == [p.id]


def test_account_search_page_escapes(client, auth) -> None:
    auth.login("admin")
    everyone = client.get("/admin/users")
    nobody = client.get("/admin/users?q=%25")
    assert everyone.status_code == nobody.status_code == 200
    assert "<td>fund</td>" in everyone.get_data(as_text=True)
    assert "<td>fund</td>" not in nobody.get_data(as_text=True)
