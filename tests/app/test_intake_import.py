"""Organisers' intake: mapped imports in the browser and the CLI, encodings, re-imports, the xlsx template."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from app.imports import EXAMPLE_PROJECT, guess_mapping, header_labels
from app.jobs import wait_all
from models import Contest, EmbeddingRecord, Project
from models.accounts import User

#: A row as an organiser's own sheet has it: variant headers, no contest column for an organiser.
ROW = {
    "项目名称": "高原青稞精深加工",
    "参赛组别": "企业组",
    "所属行业": "现代农业",
    "省": "西藏自治区",
    "发展阶段": "成长期",
    "拟融资金额（万元）": "800",
    "项目简介": "以高原青稞为原料开发低升糖主食与饮品，建有两条自动化产线，产品进入区内连锁商超。",
    "项目编号": "XZ-001",
    "从业人员（人）": "35",
    "营业收入（万元）": "1200",
    "知识产权": "发明专利 2 项",
}


def _csv(rows: list[dict[str, str]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def _xlsx(rows: list[dict[str, str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    for row in rows:
        ws.append(list(row.values()))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _upload(client, data: bytes, name: str, kind: str = "projects"):  # type: ignore[no-untyped-def]
    r = client.post(
        "/imports/", data={"kind": kind, "file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return r.headers["Location"].split("/")[-2]


def _browser_import(client, data: bytes, name: str, contest: str = ""):  # type: ignore[no-untyped-def]
    """Upload, accept the guessed mapping, preview, commit, wait for the job; return (preview, job page)."""
    token = _upload(client, data, name)
    page = client.get(f"/imports/{token}/mapping").get_data(as_text=True)
    selected = re.findall(r'<select name="(col\d+)"[^>]*>.*?<option value="([^"]*)" selected', page, re.S)
    form = {field: value for field, value in selected}
    form["contest"] = contest
    r = client.post(f"/imports/{token}/mapping", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)[:800]
    preview = client.get(f"/imports/{token}/preview")
    queued = client.post(f"/imports/{token}/commit")
    assert queued.status_code == 302 and "/imports/jobs/" in queued.headers["Location"]
    wait_all(client.application)  # the import job (a thread here, without Redis): rows, then encoding
    done = client.get(queued.headers["Location"])  # the job's page, once it has finished
    return preview, done


def _organiser_contest(session) -> Contest:  # type: ignore[no-untyped-def]
    user = session.scalar(select(User).where(User.username == "organiser"))
    assert len(user.contests) == 1
    return user.contests[0]


def _count(session, contest_id: int) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count(Project.id)).where(Project.contest_id == contest_id)) or 0


def test_headers_are_guessed_from_chinese_variants() -> None:
    mapping = guess_mapping("projects", [*ROW, "颜色", "赛事名称", "统一社会信用代码", "负责人"])
    assert mapping["项目名称"] == "name" and mapping["所属行业"] == "industry" and mapping["省"] == "province"
    assert mapping["拟融资金额（万元）"] == "amount_wan" and mapping["项目编号"] == "ref"
    assert mapping["赛事名称"] == "contest" and mapping["统一社会信用代码"] == "credit_code"
    assert mapping["负责人"] == "team_lead" and mapping["颜色"] == ""


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_an_organiser_imports_a_csv_in_any_chinese_encoding_into_its_own_contest(
    client, auth, session, encoding
):
    auth.login("organiser")
    contest = _organiser_contest(session)
    before = _count(session, contest.id)
    rows = [ROW, {**ROW, "项目名称": "青稞酵素饮品", "项目编号": "XZ-002"}]
    preview, done = _browser_import(client, _csv(rows, encoding), "organiser.csv")
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200, text[:2000]
    assert re.search(r"新增 <strong>2</strong> 条", text)
    assert done.status_code == 200 and "新增 2 条" in done.get_data(as_text=True)
    assert _count(session, contest.id) == before + 2
    stored = session.scalar(select(Project).where(Project.ref == "XZ-002"))
    assert stored.name == "青稞酵素饮品" and stored.contest_id == contest.id and stored.employees == 35


def test_the_same_file_again_creates_nothing_and_a_changed_row_updates(client, auth, session, monkeypatch):
    auth.login("organiser")
    contest = _organiser_contest(session)
    rows = [ROW, {**ROW, "项目名称": "青稞酵素饮品", "项目编号": "XZ-002"}]
    _browser_import(client, _xlsx(rows), "first.xlsx")
    after_first = _count(session, contest.id)

    import app.services as services

    encoded: list[str] = []
    store = services.store_vectors
    monkeypatch.setattr(
        services,
        "store_vectors",
        lambda s, k, items, e: encoded.extend(t for _i, t in items) or store(s, k, items, e),
    )
    preview, _done = _browser_import(client, _xlsx(rows), "again.xlsx")
    assert re.search(
        r"新增 <strong>0</strong> 条.*更新 <strong>0</strong> 条.*未变化 <strong>2</strong> 条",
        preview.get_data(as_text=True),
        re.S,
    )
    assert _count(session, contest.id) == after_first and encoded == []

    # a changed head count (no text change) updates the project without encoding; a new text re-encodes
    changed = [
        {**ROW, "从业人员（人）": "40"},
        {**rows[1], "项目简介": rows[1]["项目简介"] + "新增一条冷链配送线。"},
    ]
    preview, _done = _browser_import(client, _xlsx(changed), "changed.xlsx")
    assert re.search(r"更新 <strong>2</strong> 条", preview.get_data(as_text=True))
    assert _count(session, contest.id) == after_first
    assert session.scalar(select(Project).where(Project.ref == "XZ-001")).employees == 40
    assert len(encoded) == 1 and "冷链配送线" in encoded[0]


def test_without_a_project_number_the_key_is_name_contest_and_team_lead(client, auth, session):
    auth.login("admin")
    row = {k: v for k, v in ROW.items() if k != "项目编号"} | {"所属赛事": "7-R25", "团队负责人": "卓玛"}
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv([row])), "a.csv")})
    assert r.status_code == 201 and r.get_json()["created"] == 1
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv([row])), "a.csv")})
    assert r.status_code == 201 and r.get_json()["created"] == 0 and r.get_json()["unchanged"] == 1
    other_lead = {**row, "团队负责人": "扎西"}
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv([other_lead])), "a.csv")})
    assert r.get_json()["created"] == 1


def test_adding_project_numbers_later_updates_the_projects_imported_without(client, auth):
    auth.login("admin")
    rows = [{k: v for k, v in ROW.items() if k != "项目编号"} | {"所属赛事": "7-R25", "联系人": "卓玛"}]
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv(rows)), "a.csv")})
    assert r.get_json()["created"] == 1
    numbered = [{**rows[0], "项目编号": "XZ-100"}]
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv(numbered)), "a.csv")})
    assert r.status_code == 201 and r.get_json()["created"] == 0 and r.get_json()["updated"] == 1
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv(numbered)), "a.csv")})
    assert r.get_json()["unchanged"] == 1
    # another number on the same name is another project
    other = [{**rows[0], "项目编号": "XZ-101"}]
    assert (
        client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv(other)), "a.csv")}).get_json()[
            "created"
        ]
        == 1
    )


def test_two_rows_with_one_key_are_a_row_error(client, auth):
    auth.login("admin")
    rows = [{**ROW, "所属赛事": "7-R25"}, {**ROW, "所属赛事": "7-R25", "项目名称": "别的名字"}]
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv(rows)), "a.csv")})
    assert r.status_code == 422
    assert "与第 2 行是同一项目" in r.get_json()["error"]["rows"][0]["fields"]["_key"]


@pytest.mark.parametrize(
    "contest",
    [
        "7-R25",
        "7-r25",
        "第七届“创客中国”西藏自治区中小企业创新创业大赛",
        '第七届"创客中国"西藏自治区中小企业创新创业大赛',
        "7-R25 第七届“创客中国”西藏自治区中小企业创新创业大赛",
    ],
)
def test_contest_codes_and_names_are_accepted_with_straight_or_curly_quotes(client, auth, contest):
    auth.login("admin")
    r = client.post(
        "/api/imports/projects", data={"file": (io.BytesIO(_csv([{**ROW, "所属赛事": contest}])), "a.csv")}
    )
    assert r.status_code == 201, r.get_json()


def test_the_upload_page_shows_contest_codes_and_hides_institutions_from_an_organiser(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    page = client.get("/imports/").get_data(as_text=True)
    assert f"<code>{contest.code}</code>" in page and contest.name in page
    assert "kind=institutions" not in page
    assert client.get("/imports/?kind=institutions").status_code == 403
    r = client.post(
        "/imports/",
        data={"kind": "institutions", "file": (io.BytesIO(_csv([ROW])), "a.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 403
    auth.logout()
    auth.login("admin")
    assert "kind=institutions" in client.get("/imports/").get_data(as_text=True)


def test_an_organiser_cannot_import_into_another_contest(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    other = session.scalar(select(Contest).where(Contest.id != contest.id, Contest.code == "7-R01"))
    preview, done = _browser_import(client, _csv([{**ROW, "赛事": other.code}]), "x.csv")
    assert preview.status_code == 422 and "只能导入本单位负责赛事的项目" in preview.get_data(as_text=True)
    assert done.status_code == 422


def test_another_account_cannot_open_a_pending_upload(client, auth, app):
    auth.login("organiser")
    token = _upload(client, _csv([ROW]), "mine.csv")
    auth.logout()
    auth.login("admin")
    assert client.get(f"/imports/{token}/mapping").status_code == 404
    assert client.post(f"/imports/{token}/commit").status_code == 404
    assert client.get("/imports/..%2F..%2Fx/preview").status_code == 404


def test_a_mapping_that_takes_one_field_twice_is_refused(client, auth):
    auth.login("organiser")
    token = _upload(client, _csv([ROW]), "a.csv")
    r = client.post(f"/imports/{token}/mapping", data={"col0": "name", "col1": "name"})
    assert r.status_code == 422 and "每个字段只能对应一列" in r.get_data(as_text=True)


def test_the_xlsx_template_has_an_example_row_and_drop_downs_and_imports_as_filled(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    r = client.get("/imports/template.xlsx?kind=projects")
    wb = load_workbook(io.BytesIO(r.data))
    ws = wb["项目"]
    headers = [c.value for c in ws[1]]
    assert headers == header_labels("projects")
    example = dict(zip(headers, [c.value for c in ws[2]], strict=True))
    assert example["名称"] == EXAMPLE_PROJECT["name"] and example["所属赛事"] == contest.code
    rules = {
        str(dv.sqref).split(":")[0].rstrip("0123456789"): dv for dv in ws.data_validations.dataValidation
    }
    group_col = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[headers.index("组别")]
    assert rules[group_col].type == "list" and "取值" in rules[group_col].formula1
    lists = wb["取值"]
    assert lists.sheet_state == "hidden"
    values = {
        lists.cell(1, c).value: [lists.cell(r, c).value for r in range(2, lists.max_row + 1)]
        for c in range(1, lists.max_column + 1)
    }
    assert (
        "企业组" in values["组别"] and "工业" in values["划型行业"] and values["所属赛事"][0] == contest.code
    )
    # the organiser adds a row under the example and imports the file as it is
    ws.append(
        [
            {
                "名称": "牦牛乳冻干粉",
                "简介": "牦牛乳低温冻干成粉，保留活性蛋白，已在区内药店和电商销售。",
                "项目编号": "XZ-9",
            }.get(h, example[h])
            for h in headers
        ]
    )
    buf = io.BytesIO()
    wb.save(buf)
    before = _count(session, contest.id)
    preview, done = _browser_import(client, buf.getvalue(), "template.xlsx")
    assert "已跳过模板示例行" in preview.get_data(as_text=True)
    assert done.status_code == 200
    assert _count(session, contest.id) == before + 1


def test_preview_warns_about_entry_conditions_per_row(client, auth):
    auth.login("organiser")
    big = {
        **ROW,
        "项目编号": "XZ-3",
        "所属行业": "新材料",
        "从业人员（人）": "5000",
        "营业收入（万元）": "900000",
    }
    token = _upload(client, _csv([ROW, big]), "a.csv")
    client.post(
        f"/imports/{token}/mapping",
        data={f"col{i}": c for i, c in enumerate(guess_mapping("projects", list(ROW)).values())},
    )
    page = client.get(f"/imports/{token}/preview").get_data(as_text=True)
    assert "参赛条件提示" in page and "第 3 行" in page and "达到大型企业标准" in page


# --- the command line ------------------------------------------------------------------------------------


def test_cli_imports_with_progress_then_reimports_nothing(runner, session, tmp_path):
    path = tmp_path / "batch.csv"
    path.write_bytes(_csv([ROW, {**ROW, "项目名称": "青稞酵素饮品", "项目编号": "XZ-002"}], "gbk"))
    contest = session.scalar(select(Contest).where(Contest.code == "7-R25"))
    before = _count(session, contest.id)
    r = runner.invoke(args=["import", "projects", str(path), "--contest", "7-R25", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "would import 2 rows: 2 new" in r.output and _count(session, contest.id) == before
    r = runner.invoke(
        args=["import", "projects", str(path), "--contest", "第七届“创客中国”西藏自治区中小企业创新创业大赛"]
    )
    assert r.exit_code == 0, r.output
    assert "2 new, 0 changed, 0 unchanged" in r.output and "encoded project 2; unchanged 0" in r.output
    assert _count(session, contest.id) == before + 2
    r = runner.invoke(args=["import", "projects", str(path), "--contest", "7-R25"])
    assert r.exit_code == 0 and "0 new, 0 changed, 2 unchanged" in r.output
    assert _count(session, contest.id) == before + 2


def test_cli_prints_row_errors_and_exits_non_zero(runner, session, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(_csv([ROW, {**ROW, "项目编号": "XZ-2", "参赛组别": "大企业组"}]))
    r = runner.invoke(args=["import", "projects", str(path), "--contest", "7-R25"])
    assert r.exit_code == 1
    assert "第 3 行" in r.output and "组别：应为以下之一" in r.output
    r = runner.invoke(args=["import", "projects", str(path)])
    assert r.exit_code == 1 and "所属赛事：必填" in r.output
    r = runner.invoke(args=["import", "projects", str(path), "--contest", "7-R99"])
    assert r.exit_code == 2 and "找不到赛事" in r.output


def test_stored_vectors_exist_for_imported_rows(runner, session, tmp_path):
    path = tmp_path / "batch.csv"
    path.write_bytes(_csv([{**ROW, "项目编号": "V-1"}]))
    assert runner.invoke(args=["import", "projects", str(path), "--contest", "7-R25"]).exit_code == 0
    pid = session.scalar(select(Project.id).where(Project.ref == "V-1"))
    assert (
        session.scalar(
            select(EmbeddingRecord).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id == pid
            )
        )
        is not None
    )
