"""Lists people work with: one paginator, one sort parameter, one xlsx export for every list page.

A list page declares its columns (`Column`: heading, the value of a row, and how to sort by it), parses
`?sort=` and the page here, and answers `?format=xlsx` with the same rows (the filters applied, no paging)
through `export()`: every cell goes through app.sheets, and the export is audited like the report's.
Only the columns the page shows the viewer are exported, so an export never holds a hidden field.

Lists read from a query page by a keyset cursor (`keyset_page`): the next page is the rows after the last
one shown in (sort value, id) order (`?after=`), the previous page the rows before the first one
(`?before=`), so page 5,000 costs what page 1 costs, through the (column, id) indexes of migration
0013_list_indexes. `?page=N` alone (old links) still reads page N by OFFSET.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request, send_file
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.sql.elements import UnaryExpression

from app.access import audit
from app.extensions import db
from app.params import int_param
from app.schemas import InputError
from app.sheets import append_row, safe_text

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The most rows one export holds (the whole of any list the demo or a contest has, with room to spare).
MAX_EXPORT_ROWS = 20_000


@dataclass(frozen=True)
class Column:
    """One column of a list: its key (in ?sort=), heading, cell value, and sort key (None: not sortable).

    `sort` is a SQL expression for lists read from a query, or a function of the row for lists in memory.
    """

    key: str
    label: str
    value: Callable[[Any], Any]
    sort: Any = None
    numeric: bool = False


def wants_export() -> bool:
    """True when the list is asked for as a spreadsheet (?format=xlsx)."""
    return request.args.get("format") == "xlsx"


def sort_param(columns: Sequence[Column], default: str) -> tuple[str, bool]:
    """Return (column key, descending) from ?sort=key or ?sort=-key; raise InputError naming the choices."""
    raw = (request.args.get("sort") or default).strip()
    desc = raw.startswith("-")
    key = raw.lstrip("-")
    sortable = [c.key for c in columns if c.sort is not None]
    if key not in sortable:
        raise InputError({"sort": f"排序：应为以下之一：{'、'.join(sortable)}"})
    return key, desc


def sorted_rows(rows: Iterable[Any], columns: Sequence[Column], key: str, desc: bool) -> list[Any]:
    """Return in-memory rows sorted by a column; empty values always last, ties keep their order."""
    column = next(c for c in columns if c.key == key)
    rows = list(rows)
    present = [r for r in rows if column.sort(r) is not None]
    missing = [r for r in rows if column.sort(r) is None]
    return sorted(present, key=column.sort, reverse=desc) + missing


def order_by(columns: Sequence[Column], key: str, desc: bool, *tie: Any) -> tuple[Any, ...]:
    """Return the ORDER BY of a query for a column (empty values last), then the tie-breakers."""
    expr = next(c for c in columns if c.key == key).sort
    return ((expr.desc() if desc else expr.asc()).nulls_last(), *tie)


# --- keyset paging ------------------------------------------------------------------------------------


def encode_cursor(value: Any, ident: int) -> str:
    """Return the URL-safe cursor of a row: its sort value and id."""
    if hasattr(value, "isoformat"):
        value = {"d": value.isoformat()}
    raw = json.dumps([value, ident], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, field: str = "after") -> tuple[Any, int]:
    """Return (sort value, id) of a cursor, or raise InputError (a cursor is only ever one we wrote)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, ident = json.loads(raw)
        if isinstance(value, dict):
            from datetime import date

            value = date.fromisoformat(value["d"])
        if not isinstance(ident, int) or isinstance(value, list | dict):
            raise ValueError(token)
    except (ValueError, TypeError, KeyError):
        raise InputError({field: "分页位置无效，请从第一页重新浏览"}) from None
    return value, ident


def keyset_select(
    stmt: Any,
    expr: Any,
    tie: Any,
    desc: bool,
    cursor: tuple[Any, int] | None,
    forward: bool,
    nulls: bool,
    limit: int,
) -> Any:
    """The select of one part of the order (rows with a sort value, or the tail without one), after
    (forward) or before the cursor, nearest first, with the sort value as the last column. The part with
    values reads the (column, id) index in its order: `WHERE (col, id) > (:v, :id) ORDER BY col, id`."""
    down = desc == forward  # walk descending: a descending sort read forward, an ascending one backward
    if nulls:
        stmt = stmt.where(expr.is_(None))
        if cursor is not None:
            stmt = stmt.where(tie < cursor[1] if down else tie > cursor[1])
        order: tuple[Any, ...] = (tie.desc() if down else tie.asc(),)
    else:
        stmt = stmt.where(expr.is_not(None))
        if cursor is not None:
            key = tuple_(expr, tie)
            mark = tuple_(literal(cursor[0], expr.type), literal(cursor[1], tie.type))
            stmt = stmt.where(key < mark if down else key > mark)
        order = (expr.desc(), tie.desc()) if down else (expr.asc(), tie.asc())
    return stmt.add_columns(expr).order_by(*order).limit(limit)


def keyset_page(stmt: Any, expr: Any, desc: bool, tie: Any, per_page: int | None = None) -> dict[str, Any]:
    """Return one page of a select by keyset cursor (?after= / ?before=), sorted by expr (empty values
    last), then by tie (the id), with the facts the pager shows: the previous and next pages' URLs, the
    total, and the page number carried in those links (?page=)."""
    per_page = per_page or int(current_app.config["PAGE_SIZE"])
    args = request.args
    after, before = (args.get("after") or "").strip(), (args.get("before") or "").strip()
    if after and before:
        raise InputError({"after": "分页位置无效，请从第一页重新浏览"})
    page = _page_number()
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0

    def segment(cursor: tuple[Any, int] | None, forward: bool, nulls: bool, limit: int) -> list[Any]:
        """Read one part of the order (keyset_select); nothing when no row is wanted."""
        if limit <= 0:
            return []
        select_ = keyset_select(stmt, expr, tie, desc, cursor, forward, nulls, limit)
        return list(db.session.execute(select_).all())

    if not (after or before):
        cursor, forward = None, True
    else:
        cursor, forward = decode_cursor(before or after, "before" if before else "after"), not before
    if cursor is None and page > 1:  # an old ?page=N link: read that page by OFFSET
        order = ((expr.desc() if desc else expr.asc()).nulls_last(), tie.desc() if desc else tie.asc())
        q = stmt.add_columns(expr).order_by(*order).offset((page - 1) * per_page).limit(per_page)
        rows = list(db.session.execute(q).all())
        has_prev, has_next = True, page * per_page < total
    else:
        want = per_page + 1
        valued = cursor is None or cursor[0] is not None
        if forward:  # the valued rows (after the cursor), then the tail without a value
            got = segment(cursor, True, False, want) if valued else []
            got += segment(None if valued else cursor, True, True, want - len(got))
        else:  # the tail before the cursor (if it is in the tail), then the valued rows, backwards
            got = [] if valued else segment(cursor, False, True, want)
            got += segment(cursor if valued else None, False, False, want - len(got))
        more = len(got) > per_page
        rows = got[:per_page]
        if forward:
            has_prev, has_next = cursor is not None, more
        else:
            rows.reverse()
            has_prev, has_next = more, True
            page = page if more else 1
    facts = _facts([r for r, _v in rows], page, total, per_page)
    facts["prev_url"] = facts["next_url"] = None
    if rows and has_prev:
        facts["prev_url"] = _url(before=encode_cursor(rows[0][1], rows[0][0].id), page=max(1, page - 1))
    if rows and has_next:
        facts["next_url"] = _url(after=encode_cursor(rows[-1][1], rows[-1][0].id), page=page + 1)
    return facts


def _url(**changes: Any) -> str:
    from urllib.parse import urlencode

    args = {k: v for k, v in request.args.items() if k not in ("after", "before", "page")}
    args.update({k: str(v) for k, v in changes.items() if v is not None})
    return request.path + ("?" + urlencode(args) if args else "")


def _page_number() -> int:
    return int_param(request.args, "page", 1, 1, 1_000_000, "页码")


def _facts(rows: Sequence[Any], page: int, total: int, per_page: int) -> dict[str, Any]:
    return {"rows": rows, "page": page, "pages": max(1, (total + per_page - 1) // per_page), "total": total}


def paginate(stmt: Any, order: Iterable[Any], per_page: int | None = None) -> dict[str, Any]:
    """Return one page of a select (?page=) as rows plus paging facts (page, pages, total)."""
    per_page = per_page or int(current_app.config["PAGE_SIZE"])
    page = _page_number()
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(stmt.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    return _facts(rows, page, total, per_page)


def page_of(rows: Sequence[Any], per_page: int | None = None) -> dict[str, Any]:
    """Return one page (?page=) of rows already in memory (a ranked list), with the same facts."""
    per_page = per_page or int(current_app.config["PAGE_SIZE"])
    page = _page_number()
    return _facts(rows[(page - 1) * per_page : page * per_page], page, len(rows), per_page)


def all_rows(stmt: Any, order: Iterable[Any]) -> list[Any]:
    """Return every row of a select for an export (at most MAX_EXPORT_ROWS)."""
    return list(db.session.scalars(stmt.order_by(*order).limit(MAX_EXPORT_ROWS)))


def export(
    name: str,
    columns: Sequence[Column],
    rows: Iterable[Any],
    what: str,
    filters: Mapping[str, Any] | None = None,
) -> Response:
    """Answer with the rows as an .xlsx file: a heading row, one row per record, the filters noted.

    Args:
        name: the file and sheet name (Chinese is fine).
        columns: the columns the viewer sees on the page (and only those).
        rows: the records, already filtered and sorted.
        what: the audit's object kind ("projects", "connections", ...).
        filters: the filters applied, written under the table and into the audit line.
    """
    from app.access import current_user, unauthenticated

    if current_user() is None:
        return unauthenticated()  # exports are for accounts (audited)
    wb = Workbook()
    ws = wb.active
    ws.title = safe_text(name)[:31]
    append_row(ws, [c.label for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    count = 0
    for row in rows:
        append_row(ws, [_cell(c.value(row)) for c in columns])
        count += 1
    shown = {k: v for k, v in (filters or {}).items() if v not in (None, "", False)}
    if shown:
        append_row(ws, [])
        append_row(ws, ["筛选条件", "；".join(f"{k}={v}" for k, v in shown.items())])
    buf = io.BytesIO()
    wb.save(buf)
    body = buf.getvalue()
    audit("export", what, None, format="xlsx", rows=count, bytes=len(body), filters=shown)
    db.session.commit()
    return send_xlsx(body, f"{name}.xlsx")


def send_xlsx(body: bytes, name: str) -> Response:
    """Answer with a workbook as a download named `name`, which no browser or proxy cache keeps."""
    response = send_file(io.BytesIO(body), mimetype=XLSX, as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def query_list(
    stmt: Any,
    columns: Sequence[Column],
    default_sort: str,
    tie: Any,
    name: str,
    what: str,
    errors: dict[str, str],
) -> tuple[Response | None, dict[str, Any], tuple[str, bool]]:
    """One list page read from a query: ?sort= (a bad one is reported in errors and the default used),
    ?format=xlsx (the export, when the request has no errors), else one page (?page=).

    Returns (the export response or None, the page, the sort applied).
    """
    try:
        sort = sort_param(columns, default_sort)
    except InputError as exc:
        errors.update(exc.fields)
        sort = (default_sort.lstrip("-"), default_sort.startswith("-"))
    tie = tie.element if isinstance(tie, UnaryExpression) else tie  # the id column, read either way
    order = order_by(columns, *sort, tie.desc() if sort[1] else tie)  # the keyset pages' order
    if wants_export() and not errors:
        return export(name, columns, all_rows(stmt, order), what, query_filters()), {}, sort
    try:
        expr = next(c for c in columns if c.key == sort[0]).sort
        page = keyset_page(stmt, expr, sort[1], tie)
    except InputError as exc:
        errors.update(exc.fields)
        page = {"rows": [], "page": 1, "pages": 1, "total": 0}
    return None, page, sort


def _cell(value: Any) -> Any:
    if hasattr(value, "value") and not isinstance(value, int | float | str):
        return value.value  # a LabelEnum: its Chinese label
    return value


def query_filters(keys: Iterable[str] = ()) -> dict[str, str]:
    """Return the query parameters of the request that are filters (not paging, sorting or the format)."""
    skip = {"page", "format", "after", "before"}
    keys = set(keys)
    return {
        k: v[:100] for k, v in request.args.items() if k not in skip and (not keys or k in keys) and v.strip()
    }


# --- the columns of project lists (the showcase, and the ranked projects of an institution or a need) ----


def enum_rank(enum_cls: Any, column: Any = None) -> Any:
    """Return a sort key putting an enum in its declared order: a SQL CASE, or a function of a member."""
    order = {member: i for i, member in enumerate(enum_cls)}
    if column is not None:
        from sqlalchemy import case

        return case(*[(column == member, i) for member, i in order.items()])
    return lambda member: None if member is None else order[member]


def project_columns(member: bool, ranked: bool = False) -> list[Column]:
    """Return the columns of a project list: the showcase fields, plus stage and funding for a logged-in
    viewer; a ranked list adds the rank and the score and sorts in memory (its rows are RankedRow)."""
    from app.pipeline.figures import short_contest
    from models import Project
    from models.enums import Award, FundingRound, ProjectGroup, Stage

    def col(
        key: str, label: str, get: Callable[[Any], Any], sql: Any, mem: Any = None, numeric: bool = False
    ):
        if ranked:
            return Column(key, label, lambda r: get(r.row), (lambda r: (mem or get)(r.row)), numeric)
        return Column(key, label, get, sql, numeric)

    award, stage, rnd = enum_rank(Award), enum_rank(Stage), enum_rank(FundingRound)
    out = []
    if ranked:
        out.append(Column("rank", "排名", lambda r: r.rank, lambda r: r.rank, True))
    out += [
        col("name", "项目", lambda p: p.name, Project.name),
        col("contest", "赛事", lambda p: short_contest(p.contest.name), Project.contest_id),
        col(
            "group",
            "组别",
            lambda p: p.group,
            enum_rank(ProjectGroup, Project.group),
            lambda p: enum_rank(ProjectGroup)(p.group),
        ),
        col("award", "获奖", lambda p: p.award, enum_rank(Award, Project.award), lambda p: award(p.award)),
        col("industry", "行业", lambda p: p.industry, Project.industry),
        col("province", "地区", lambda p: p.province, Project.province),
    ]
    if member:
        out += [
            col(
                "stage", "阶段", lambda p: p.stage, enum_rank(Stage, Project.stage), lambda p: stage(p.stage)
            ),
            col("amount", "拟融资（万元）", lambda p: p.amount_wan, Project.amount_wan, numeric=True),
            col(
                "round",
                "轮次",
                lambda p: p.funding_round,
                enum_rank(FundingRound, Project.funding_round),
                lambda p: rnd(p.funding_round),
            ),
        ]
    if ranked:
        out.append(
            Column("score", "匹配度", lambda r: round(r.match.score, 1), lambda r: r.match.score, True)
        )
    return out


@dataclass(frozen=True)
class Ranked:
    """A ranked row with its place in the ranking (kept when the list is sorted by another column)."""

    rank: int
    row: Any
    match: Any


def ranked_rows(ranked: Sequence[Any]) -> list[Ranked]:
    """Number a ranked list (services.RankedRow) 1, 2, 3... before it is sorted or paged."""
    return [Ranked(i, r.row, r.match) for i, r in enumerate(ranked, start=1)]


def ranked_list(ranked: Sequence[Any], member: bool, name: str, what: str) -> tuple[Any, dict[str, Any]]:
    """Sort, page or export a ranked project list; return (an export response or None, template values).

    Args:
        ranked: the ranked rows, best first (already redacted for the viewer).
        member: the viewer is logged in (stage and funding columns).
        name: the export's file name.
        what: the audit's object kind.
    """
    columns = project_columns(member, ranked=True)
    errors: dict[str, str] = {}
    try:
        sort = sort_param(columns, "rank")
    except InputError as exc:
        errors, sort = exc.fields, ("rank", False)
    rows = sorted_rows(ranked_rows(ranked), columns, *sort)
    if wants_export() and not errors:
        return export(name, columns, rows, what, query_filters()), {}
    try:
        page = page_of(rows)
    except InputError as exc:
        errors.update(exc.fields)
        page = _facts(
            rows[: int(current_app.config["PAGE_SIZE"])], 1, len(rows), int(current_app.config["PAGE_SIZE"])
        )
    return None, {"columns": columns, "sort": sort, "page": page, "list_errors": errors}
