"""Bulk import: CSV and Excel, Chinese headers, all rows or none, new rows ranked at once."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook

from app.imports import header_labels

ROW = {
    "名称": "高原青稞精深加工",
    "组别": "企业组",
    "所属赛事": "7-R25",
    "获奖等级": "无",
    "行业": "现代农业",
    "省份": "西藏自治区",
    "城市": "拉萨市",
    "发展阶段": "成长期",
    "拟融资金额（万元）": "800",
    "融资轮次": "A轮",
    "简介": "以高原青稞为原料开发低升糖主食与饮品，建有两条自动化产线，产品进入区内连锁商超。",
    "需求": "融资、检验检测",
}


@pytest.fixture(autouse=True)
def _logged_in(auth):
    """These tests act as the secretariat, who may do everything; access rules have their own tests."""
    auth.login("admin")


def _csv(rows: list[dict[str, str]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def _post(client, name: str, data: bytes, kind: str = "projects"):
    return client.post(
        f"/api/imports/{kind}", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )


def test_csv_import_adds_rows_and_ranks_them(client):
    before = client.get("/api/projects?per_page=1").get_json()["total"]
    rows = [ROW, {**ROW, "名称": "青稞酵素饮品", "组别": "创客组", "发展阶段": "研发样机"}]
    r = _post(client, "batch.csv", _csv(rows))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["created"] == 2
    assert client.get("/api/projects?per_page=1").get_json()["total"] == before + 2
    found = client.get("/api/projects?q=青稞酵素").get_json()["items"]
    assert len(found) == 1
    m = client.get(f"/api/projects/{found[0]['id']}/matches?kind=fund&k=3").get_json()
    assert len(m["items"]) == 3


def test_gbk_csv_and_xlsx_are_read(client):
    assert _post(client, "gbk.csv", _csv([ROW], "gb18030")).status_code == 201
    wb = Workbook()
    ws = wb.active
    ws.append(list(ROW))
    ws.append([{**ROW, "名称": "牦牛乳冻干粉"}[k] for k in ROW])
    buf = io.BytesIO()
    wb.save(buf)
    r = _post(client, "batch.xlsx", buf.getvalue())
    assert r.status_code == 201, r.get_json()


def test_one_bad_row_imports_nothing_and_names_the_row(client):
    before = client.get("/api/projects?per_page=1").get_json()["total"]
    rows = [ROW, {**ROW, "名称": "坏行", "所属赛事": "不存在的赛事", "拟融资金额（万元）": "-1"}]
    r = _post(client, "bad.csv", _csv(rows))
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["rows"][0]["row"] == 3
    assert "找不到赛事" in err["rows"][0]["fields"]["contest"]
    assert client.get("/api/projects?per_page=1").get_json()["total"] == before


def test_wrong_file_type_and_unknown_column(client):
    r = _post(client, "plan.pdf", b"%PDF-1.4")
    assert r.status_code == 422 and "只接受" in r.get_json()["error"]["message"]
    r = _post(client, "x.csv", _csv([{**ROW, "颜色": "红"}]))
    assert r.status_code == 422 and "不认识的列" in str(r.get_json())


def test_templates_have_chinese_headers(client):
    r = client.get("/imports/template.xlsx?kind=institutions")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data)).active
    assert [c.value for c in ws[1]] == header_labels("institutions")
    r = client.get("/imports/template.csv?kind=projects")
    assert next(csv.reader(io.StringIO(r.data.decode("utf-8-sig")))) == header_labels("projects")


def test_import_page_lists_row_errors_in_chinese(client):
    r = client.post(
        "/imports/",
        data={"kind": "projects", "file": (io.BytesIO(_csv([{**ROW, "组别": "大企业组"}])), "a.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302 and "/mapping" in r.headers["Location"]
    token = r.headers["Location"].split("/")[-2]
    r = client.get(f"/imports/{token}/preview")
    assert r.status_code == 422
    assert "第 2 行" in r.get_data(as_text=True) and "组别：应为以下之一" in r.get_data(as_text=True)
