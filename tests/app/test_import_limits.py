"""Imports refuse formula cells and hostile files with a Chinese 4xx, bound their work, and lose nothing."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

import pytest
from openpyxl import Workbook
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from app import imports
from app.imports import MAX_CELL_CHARS, MAX_COLUMNS, MAX_SHEET_ROWS, header_labels

ROW = {
    "名称": "高原青稞精深加工", "组别": "企业组", "所属赛事": "7-R25", "获奖等级": "无", "行业": "现代农业",
    "省份": "西藏自治区", "城市": "拉萨市", "发展阶段": "成长期", "拟融资金额（万元）": "800",
    "融资轮次": "A轮",
    "简介": "以高原青稞为原料开发低升糖主食与饮品，建有两条自动化产线，产品进入区内连锁商超。",
    "需求": "融资、检验检测",
}  # fmt: skip
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _logged_in(auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin")


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _post(client, name: str, data: bytes, kind: str = "projects"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/imports/{kind}", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )


def _counts(client) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    return (
        client.get("/api/projects?per_page=1").get_json()["total"],
        client.get("/api/institutions?per_page=1").get_json()["total"],
    )


# --- hand-written xlsx packages ----------------------------------------------------------------------

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0"?><workbook {_NS} xmlns:r="{_REL}">'
        '<sheets><sheet name="项目" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _row(number: int, values: list[str]) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (
        f'<row r="{number}">'
        + "".join(_cell(f"{letters[i]}{number}", v) for i, v in enumerate(values))
        + "</row>"
    )


def _package(sheet_xml: str | bytes, encrypted_flag: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in _PARTS.items():
            z.writestr(name, body)
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    data = buf.getvalue()
    if encrypted_flag:  # zipfile cannot write encrypted parts: set the flag bit in every central header
        out = bytearray(data)
        for m in re.finditer(rb"PK\x01\x02", data):
            out[m.start() + 8] |= 0x1
        data = bytes(out)
    return data


def _sheet(rows: str, dimension: str = "") -> str:
    return f'<?xml version="1.0"?><worksheet {_NS}>{dimension}<sheetData>{rows}</sheetData></worksheet>'


# --- formula cells -----------------------------------------------------------------------------------


def test_a_formula_name_in_csv_is_refused_naming_row_and_column(client) -> None:  # type: ignore[no-untyped-def]
    before = _counts(client)
    rows = [
        ROW,
        {**ROW, "名称": "=cmd|' /C calc'!A0"},
        {**ROW, "名称": "青稞饮品", "简介": '＝HYPERLINK("x")' + "青" * 20},
    ]
    r = _post(client, "evil.csv", _csv(rows))
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert [e["row"] for e in err["rows"]] == [3, 4]
    assert err["rows"][0]["fields"]["name"].startswith("名称：不能以 = + - @ 开头")
    assert err["rows"][1]["fields"]["description"].startswith("简介：不能以 = + - @ 开头")
    assert _counts(client) == before

    uploaded = client.post(
        "/imports/",
        data={"kind": "projects", "file": (io.BytesIO(_csv(rows)), "evil.csv")},
        content_type="multipart/form-data",
    )
    page = client.get(uploaded.headers["Location"].replace("/mapping", "/preview")).get_data(as_text=True)
    assert "第 3 行" in page and "名称：不能以 = + - @ 开头" in page
    assert _counts(client) == before


def test_a_formula_text_cell_in_xlsx_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    before = _counts(client)
    r = _post(client, "evil.xlsx", _xlsx([list(ROW), [{**ROW, "名称": "@SUM(1+1)*cmd"}[k] for k in ROW]]))
    assert r.status_code == 422
    assert r.get_json()["error"]["rows"][0]["row"] == 2
    assert "不能以 = + - @ 开头" in r.get_json()["error"]["rows"][0]["fields"]["name"]
    assert _counts(client) == before


def test_a_phone_number_or_a_lone_dash_is_not_a_formula(client) -> None:  # type: ignore[no-untyped-def]
    r = _post(client, "ok.csv", _csv([{**ROW, "联系电话": "+86 138 0000 0000", "团队": "-"}]))
    assert r.status_code == 201, r.get_json()


def test_the_upload_page_documents_the_rule(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/imports/?kind=projects").get_data(as_text=True)
    assert "不能以 = + - @" in page and f"前 {MAX_COLUMNS} 列" in page and str(MAX_CELL_CHARS) in page


# --- bounded work ------------------------------------------------------------------------------------


def test_a_declared_dimension_does_not_drive_the_work(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A small sheet declaring A1:XFD3000 is read by its real rows, at most MAX_COLUMNS wide."""
    blank_rows = "".join(f'<row r="{n}">{_cell(f"A{n}", " ")}</row>' for n in range(3, 3001))
    sheet = _sheet(
        _row(1, list(ROW)) + _row(2, list(ROW.values())) + blank_rows, '<dimension ref="A1:XFD3000"/>'
    )
    data = _package(sheet)
    assert len(data) < 20_000

    seen = {"rows": 0, "cells": 0, "reset": 0}
    iter_rows, reset = ReadOnlyWorksheet.iter_rows, ReadOnlyWorksheet.reset_dimensions

    def counting_iter_rows(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        for values in iter_rows(self, *args, **kwargs):
            seen["rows"] += 1
            seen["cells"] += len(values)
            yield values

    def counting_reset(self) -> None:  # type: ignore[no-untyped-def]
        seen["reset"] += 1
        reset(self)

    monkeypatch.setattr(ReadOnlyWorksheet, "iter_rows", counting_iter_rows)
    monkeypatch.setattr(ReadOnlyWorksheet, "reset_dimensions", counting_reset)
    before = _counts(client)
    r = _post(client, "wide.xlsx", data)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["created"] == 1
    assert _counts(client) == (before[0] + 1, before[1])
    assert seen["reset"] == 1
    assert seen["rows"] == 3000
    assert seen["cells"] <= 3000 * MAX_COLUMNS  # 3000 * 16384 when padded to the declared width


def test_rows_far_below_the_data_end_the_read(client) -> None:  # type: ignore[no-untyped-def]
    before = _counts(client)
    sheet = _sheet(_row(1, list(ROW)) + f'<row r="999999999">{_cell("A999999999", "x")}</row>')
    r = _post(client, "deep.xlsx", _package(sheet))
    assert r.status_code == 422
    assert f"文件超过 {MAX_SHEET_ROWS} 行" in r.get_json()["error"]["message"]
    assert _counts(client) == before


def test_a_dense_sheet_is_refused_before_the_parser_starts(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    opened: list[object] = []
    load = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: opened.append(a) or load(*a, **k))
    r = _post(client, "dense.xlsx", _dense_sheet())
    assert r.status_code == 422 and "单元格或格式过多" in r.get_json()["error"]["message"]
    assert opened == []
    assert _post(client, "ok.xlsx", _xlsx([list(ROW), list(ROW.values())])).status_code == 201
    assert len(opened) == 1


def test_elements_are_counted_across_read_chunks() -> None:
    data = _package(_sheet(_row(1, list(ROW)) + _row(2, list(ROW.values()))))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        part = z.getinfo("xl/worksheets/sheet1.xml")
        expected = len(re.findall(rb"<[A-Za-z_]", z.read(part)))
        assert [imports._count_elements(z, part, chunk) for chunk in (1, 2, 3, 7, 1 << 20)] == [expected] * 5


def test_a_csv_field_longer_than_the_csv_module_allows_is_a_4xx(client) -> None:  # type: ignore[no-untyped-def]
    before = _counts(client)
    r = _post(client, "long.csv", _csv([{**ROW, "简介": "青" * 140_000}]))
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert "单元格内容过长" in err["message"] and err["fields"]["file"] == err["message"]
    assert _counts(client) == before


def test_a_cell_over_the_per_field_cap_is_a_row_error(client) -> None:  # type: ignore[no-untyped-def]
    r = _post(client, "long.csv", _csv([{**ROW, "团队": "青" * (MAX_CELL_CHARS + 1)}]))
    assert r.status_code == 422
    assert (
        r.get_json()["error"]["rows"][0]["fields"]["team"]
        == f"团队：内容过长（每个单元格最多 {MAX_CELL_CHARS} 个字符）"
    )


def test_a_cell_without_a_header_is_a_row_error(client) -> None:  # type: ignore[no-untyped-def]
    body = _csv([ROW]).decode("utf-8-sig").replace("融资、检验检测", "融资、检验检测,多出来的内容")
    r = _post(client, "extra.csv", body.encode("utf-8"))
    assert r.status_code == 422
    assert r.get_json()["error"]["rows"][0]["fields"]["_columns"] == f"第 {len(ROW) + 1} 列有内容但没有表头"


def test_blank_rows_are_skipped_and_row_numbers_match_the_file(client) -> None:  # type: ignore[no-untyped-def]
    body = (
        _csv([ROW]).decode("utf-8-sig")
        + ",,,,\r\n\r\n"
        + _csv([{**ROW, "组别": "大企业组"}]).decode("utf-8-sig").split("\r\n", 1)[1]
    )
    r = _post(client, "gaps.csv", body.encode("utf-8"))
    assert r.status_code == 422
    rows = r.get_json()["error"]["rows"]
    assert [e["row"] for e in rows] == [5] and "组别" in rows[0]["fields"]["group"]


# --- files that cannot be read -----------------------------------------------------------------------


def _zip_bomb() -> bytes:
    padding = " " * (imports.MAX_XLSX_PART_BYTES + 1024)
    return _package(_sheet(_row(1, list(ROW)) + padding))


def _dense_sheet() -> bytes:
    """A sheet of 1,080,000 cells (2,160,000 XML elements): tiny when zipped, long to parse."""
    row = "<c><v>1</v></c>" * 3600
    return _package(_sheet("".join(f'<row r="{n}">{row}</row>' for n in range(1, 301))))


def _not_an_xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "这不是 Excel 文件")
    return buf.getvalue()


_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">'
    + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10)
    )
    + f']><worksheet {_NS}><sheetData><row r="1">{_cell("A1", "&lol9;")}</row></sheetData></worksheet>'
)

HOSTILE: list[tuple[str, str, Any, str]] = [
    ("bad zip", "a.xlsx", lambda: b"PK\x03\x04" + b"\x00garbage" * 100, "已损坏"),
    ("not an xlsx", "a.xlsx", _not_an_xlsx, "无法读取 Excel 文件"),
    ("encrypted (OLE)", "a.xlsx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "已加密"),
    (
        "encrypted (zip flag)",
        "a.xlsx",
        lambda: _package(_sheet(_row(1, list(ROW))), encrypted_flag=True),
        "已加密",
    ),
    ("malformed sheet XML", "a.xlsx", lambda: _package("<worksheet><sheetData><row"), "无法读取 Excel 文件"),
    ("entity expansion", "a.xlsx", lambda: _package(_LAUGHS), "无法读取 Excel 文件"),
    ("zip bomb", "a.xlsx", _zip_bomb, "解压后过大"),
    ("too many cells", "a.xlsx", _dense_sheet, "单元格或格式过多"),
    ("header only", "a.xlsx", lambda: _xlsx([list(ROW)]), "没有数据行"),
    ("empty xlsx sheet", "a.xlsx", lambda: _xlsx([]), "没有数据行"),
    ("empty file", "a.csv", lambda: b"", "文件是空的"),
    ("utf-16 csv", "a.csv", lambda: "名称,组别\r\n青稞,企业组\r\n".encode("utf-16"), "不是文本文件"),
    ("unclosed quote", "a.csv", lambda: _csv([ROW]) + b'"' + "青".encode() * 140_000, "引号不成对"),
    ("blank header", "a.csv", lambda: ",,\r\n青稞,企业组,7-R25\r\n".encode(), "第 1 行应为表头"),
    ("repeated header", "a.csv", lambda: "名称,名称\r\n青稞,青稞\r\n".encode(), "出现了不止一次"),
]


@pytest.mark.parametrize(("name", "data", "expected"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("kind", ["projects", "institutions"])
def test_a_file_that_cannot_be_read_is_a_chinese_4xx_and_stores_nothing(  # type: ignore[no-untyped-def]
    client, name: str, data: Any, expected: str, kind: str
) -> None:
    body = data()
    before = _counts(client)
    r = _post(client, name, body, kind)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    err = r.get_json()["error"]
    assert err["status"] == 422 and err["code"] == "validation_error"
    assert expected in err["message"] and CJK.search(err["message"])
    assert err["fields"]["file"]
    assert _counts(client) == before

    page = client.post(
        "/imports/", data={"kind": kind, "file": (io.BytesIO(body), name)}, content_type="multipart/form-data"
    )
    assert page.status_code == 422
    assert expected in page.get_data(as_text=True)
    assert _counts(client) == before


def test_the_downloaded_csv_template_filled_in_imports(client) -> None:  # type: ignore[no-untyped-def]
    template = client.get("/imports/template.csv?kind=projects").data.decode("utf-8-sig")
    row = [ROW.get(label, "") for label in header_labels("projects")]
    buf = io.StringIO()
    csv.writer(buf).writerow(row)
    r = _post(client, "filled.csv", (template + buf.getvalue()).encode("utf-8"))
    assert r.status_code == 201, r.get_json()
