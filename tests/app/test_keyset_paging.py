"""Keyset paging of the list pages and the API: every row once, in order, forwards and backwards; the
(column, id) indexes of migration 0013_list_indexes are what the database reads (EXPLAIN)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from app.extensions import db
from app.schemas import InputError
from app.services import ProjectFilter, project_query
from app.web.lists import decode_cursor, encode_cursor, enum_rank, keyset_page, keyset_select
from models import Base, Institution, Project
from models.enums import Award

PER_PAGE = 7


def _sorts() -> dict[str, Any]:
    return {
        "name": Project.name,
        "province": Project.province,  # some projects have none: they come last, both ways
        "amount": Project.amount_wan,
        "contest": Project.contest_id,
        "award": enum_rank(Award, Project.award),
    }


def _walk(app: Any, url: str, expr: Any, desc: bool, link: str) -> tuple[list[list[int]], list[str]]:
    """Follow a list's next (or prev) links from `url`; return the ids of each page and its URL."""
    pages, urls = [], []
    while url:
        with app.test_request_context(url):
            page = keyset_page(project_query(ProjectFilter()), expr, desc, Project.id, PER_PAGE)
        pages.append([p.id for p in page["rows"]])
        urls.append(url)
        url = page[link]
    return pages, urls


@pytest.mark.parametrize("key", ["name", "province", "amount", "contest", "award"])
@pytest.mark.parametrize("desc", [False, True])
def test_keyset_pages_hold_every_row_once_in_order_both_ways(app: Any, key: str, desc: bool) -> None:
    expr = _sorts()[key]
    with app.app_context():
        tie = Project.id.desc() if desc else Project.id
        order = ((expr.desc() if desc else expr.asc()).nulls_last(), tie)
        want = [p.id for p in db.session.scalars(project_query(ProjectFilter()).order_by(*order))]
        assert len(want) > 3 * PER_PAGE
        forward, urls = _walk(app, "/projects/", expr, desc, "next_url")
        assert [i for page in forward for i in page] == want
        assert all(len(p) == PER_PAGE for p in forward[:-1])
        # from the last page back to the first by 上一页: the same pages
        backward, _urls = _walk(app, urls[-1], expr, desc, "prev_url")
        assert backward == forward[::-1]


def test_old_page_links_and_bad_cursors(app: Any) -> None:
    with app.app_context():
        with app.test_request_context("/projects/"):
            page1 = keyset_page(project_query(ProjectFilter()), Project.name, False, Project.id, PER_PAGE)
        with app.test_request_context(page1["next_url"]):
            page2 = keyset_page(project_query(ProjectFilter()), Project.name, False, Project.id, PER_PAGE)
        with app.test_request_context("/projects/?page=2"):
            old = keyset_page(project_query(ProjectFilter()), Project.name, False, Project.id, PER_PAGE)
        assert [p.id for p in old["rows"]] == [p.id for p in page2["rows"]]
        assert old["page"] == page2["page"] == 2
        for bad in ("x", "W10", encode_cursor("a", 1) + "!", "eyJhIjoxfQ"):
            with app.test_request_context(f"/projects/?after={bad}"), pytest.raises(InputError) as err:
                keyset_page(project_query(ProjectFilter()), Project.name, False, Project.id, PER_PAGE)
            assert "分页位置无效" in str(err.value.fields)
    assert decode_cursor(encode_cursor("浙江省", 12)) == ("浙江省", 12)


def test_list_pages_link_pages_by_cursor(client: Any, auth: Any) -> None:
    auth.login("admin")
    seen: list[str] = []
    url = "/projects/?sort=name"
    for _ in range(3):
        html = client.get(url).get_data(as_text=True)
        assert "共 " in html
        seen += re.findall(r'href="/projects/(\d+)"', html)
        nxt = re.search(r'href="([^"]+)" rel="next">下一页', html)
        assert nxt, html[-2000:]
        url = nxt.group(1).replace("&amp;", "&")
        assert "after=" in url and "page=" in url
    assert len(seen) == len(set(seen))  # no project on two pages
    back = client.get(url).get_data(as_text=True)
    assert 'rel="prev">上一页' in back
    bad = client.get("/projects/?after=nonsense")
    assert "分页位置无效" in bad.get_data(as_text=True)
    for path in ("/institutions/?sort=-name", "/needs/?sort=title"):
        assert client.get(path).status_code == 200


def test_api_lists_page_by_cursor(client: Any, app: Any) -> None:
    with app.app_context():
        live = select(Project.id).where(Project.archived_at.is_(None))
        want = list(db.session.scalars(live.order_by(Project.id)))
    got, after = [], None
    while True:
        query = {"per_page": 25, **({"after": after} if after else {})}
        body = client.get("/api/projects", query_string=query)
        data = body.get_json()
        got += [p["id"] for p in data["items"]]
        after = data["next"]
        if after is None:
            break
    assert got == want
    bad = client.get("/api/projects?after=abc")
    assert bad.status_code in (400, 422) and "after" in str(bad.get_json())


# --- the indexes: in the models and the migration alike, and used --------------------------------------

INDEXES = {
    "project": [
        "ix_project_name_id",
        "ix_project_province_id",
        "ix_project_industry_id",
        "ix_project_contest_id_id",
    ],
    "institution": ["ix_institution_name_id", "ix_institution_province_id"],
    "need": ["ix_need_title_id", "ix_need_deadline_id"],
    "connection": ["ix_connection_last_activity_id"],
    "connection_event": ["ix_connection_event_connection_at", "ix_connection_event_stage_at"],
}


def test_migration_and_models_declare_the_same_list_indexes(migrated_db: tuple[Engine, str]) -> None:
    engine, _url = migrated_db
    found = inspect(engine)
    for table, names in INDEXES.items():
        migrated = {i["name"]: i["column_names"] for i in found.get_indexes(table)}
        declared = {i.name: [c.name for c in i.columns] for i in Base.metadata.tables[table].indexes}
        for name in names:
            assert migrated[name] == declared[name], name


def _plan(session: Session, stmt: Any) -> str:
    sql = str(stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if session.get_bind().dialect.name == "sqlite" else "EXPLAIN "
    return "\n".join(" ".join(str(c) for c in row) for row in session.execute(text(prefix + sql)))


def _keyset_queries() -> list[tuple[str, Any]]:
    live_p = select(Project).where(Project.archived_at.is_(None))
    live_i = select(Institution).where(Institution.archived_at.is_(None))
    name, province = Project.name, Project.province
    return [
        ("ix_project_name_id", keyset_select(live_p, name, Project.id, False, ("智能", 5), True, False, 21)),
        ("ix_project_name_id", keyset_select(live_p, name, Project.id, True, ("智能", 5), True, False, 21)),
        ("ix_project_province_id", keyset_select(live_p, province, Project.id, False, None, True, False, 21)),
        (
            "ix_institution_name_id",
            keyset_select(live_i, Institution.name, Institution.id, False, ("北京", 9), True, False, 21),
        ),
    ]


def test_sqlite_keyset_pages_use_the_indexes(app: Any) -> None:
    with app.app_context():
        db.session.execute(text("ANALYZE"))
        for index, stmt in _keyset_queries():
            plan = _plan(db.session, stmt)
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan


@pytest.mark.postgres
@pytest.mark.parametrize("migrated_db", ["postgres"], indirect=True)  # SQLite's plan: the test above
def test_postgres_keyset_pages_use_the_indexes(migrated_db: tuple[Engine, str]) -> None:
    engine, url = migrated_db
    assert url.startswith("postgresql")
    from app.demo.synthetic import load_synthetic
    from models.catalog import catalogue_files, load_contests

    with Session(engine) as s:
        for path in catalogue_files():
            load_contests(s, path)
        s.commit()
    load_synthetic(engine, 20_000, 2_000, n_events=0, echo=lambda _s: None)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    with Session(engine) as s:
        for index, stmt in _keyset_queries():
            plan = _plan(s, stmt)
            assert index in plan and "Seq Scan" not in plan, plan
