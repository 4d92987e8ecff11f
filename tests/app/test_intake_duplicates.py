"""Duplicate and similar projects: the verdict, flags on import and registration, review, the scan command."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from app.intake.similarity import anchors, core_name, judge, overlap, shared_passages, shingles
from app.jobs import wait_all
from models import DuplicatePair, DuplicateStatus, Project

TEXT = (
    "精密减速器是机器人的关节，国产产品在寿命和精度保持性上与进口仍有差距。关键零件的热处理和磨削工艺都在自己车间完成，"
    "批次一致性有保证。已为35家整机厂供货，去年销售收入1300万元。"
)


def _reordered(text: str) -> str:
    parts = [s + "。" for s in text.split("。") if s]
    return "".join(reversed(parts))


def test_reordered_sentences_and_a_changed_company_suffix_stay_the_same_text() -> None:
    assert overlap(shingles(TEXT), shingles(_reordered(TEXT))) > 0.9
    assert (
        core_name("焦作精传机械有限公司")
        == core_name("焦作精传机械股份有限公司")
        == core_name("焦作精传机械 Co., Ltd.")
    )
    assert judge(None, overlap(shingles(TEXT), shingles(_reordered(TEXT)))).kind == "same"


def test_a_translation_keeps_its_figures_and_a_same_topic_project_does_not() -> None:
    english = (
        "Precision reducers are robot joints. We supply 35 machine makers; "
        "sales last year were 13 million yuan."
    )
    a, b = anchors(TEXT), anchors(english)
    assert {"35", "13m"} <= a & b
    assert judge(0.9, 0.0, shared_anchors=len(a & b), anchor_overlap=overlap(a, b)).kind == "similar"
    assert judge(0.93, 0.1).kind is None  # a close topic alone is not a duplicate


def test_shared_passages_are_marked_whatever_their_order() -> None:
    left, right = shared_passages(TEXT, _reordered(TEXT) + "另有新增一句完全不同的话。")
    assert all(shared for _text, shared in left)
    assert right[-1] == ("另有新增一句完全不同的话。", False)


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _copy_row(p: Project, contest: str, **changes: str) -> dict[str, str]:
    return {
        "名称": p.name,
        "组别": p.group.value,
        "所属赛事": contest,
        "行业": p.industry,
        "简介": _reordered(p.description),
        **changes,
    }


def test_an_imported_copy_is_flagged_not_refused_and_a_dismissed_pair_stays_dismissed(
    app, client, auth, runner
) -> None:
    from app.extensions import db

    with app.app_context():
        original = db.session.scalar(
            select(Project).where(Project.contest_id != 30).order_by(Project.id).limit(1)
        )
        pid, name = original.id, original.name
        row = _copy_row(original, "7-R30", 名称=original.name + "（股份有限公司）")
    auth.login("admin")
    r = client.post("/api/imports/projects", data={"file": (io.BytesIO(_csv([row])), "copy.csv")})
    assert r.status_code == 201, r.get_json()
    wait_all(app)  # suspected duplicates are flagged by the encoding job, once the vectors are in
    with app.app_context():
        copy_id = db.session.scalar(select(Project.id).where(Project.name == row["名称"]))
        pair = db.session.scalar(
            select(DuplicatePair).where(
                DuplicatePair.project_a_id == min(pid, copy_id),
                DuplicatePair.project_b_id == max(pid, copy_id),
            )
        )
        assert pair is not None and pair.status is DuplicateStatus.OPEN and pair.kind.value == "same"
        pair_id = pair.id

    page = client.get(f"/intake/duplicates/{pair_id}").get_data(as_text=True)
    assert name in page and "<mark>" in page
    assert pair_id and "对比审核" in client.get("/intake/duplicates").get_data(as_text=True)
    assert 'id="duplicate-flags"' in client.get(f"/projects/{copy_id}").get_data(as_text=True)

    r = client.post(f"/intake/duplicates/{pair_id}", data={"action": "dismiss", "note": "同一企业的不同产品"})
    assert r.status_code == 302
    out = app.instance_path + "/pairs.csv"
    result = runner.invoke(args=["duplicates", "scan", "--out", out])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"project_a", "project_b", "score", "kind", "status"}
    mine = [r for r in rows if {int(r["project_a"]), int(r["project_b"])} == {pid, copy_id}]
    assert len(mine) == 1 and mine[0]["status"] == "dismissed"  # never flagged again
    with app.app_context():
        assert (
            db.session.scalar(select(DuplicatePair).where(DuplicatePair.id == pair_id)).status
            is DuplicateStatus.DISMISSED
        )

    r = client.post(f"/intake/duplicates/{pair_id}", data={"action": "confirm"})
    page = client.get("/intake/duplicates?status=confirmed").get_data(as_text=True)
    assert "取消参赛资格" in page and "7-R30" in page


def test_a_registered_project_is_flagged_too(app, client, auth) -> None:
    from app.extensions import db

    with app.app_context():
        original = db.session.scalar(select(Project).order_by(Project.id.desc()).limit(1))
        body = {
            "name": original.name + "项目",
            "group": original.group.value,
            "contest_id": 2,
            "industry": original.industry,
            "description": _reordered(original.description),
        }
        pid = original.id
    auth.login("admin")
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.get_json()
    new_id = r.get_json()["id"]
    with app.app_context():
        assert (
            db.session.scalar(
                select(DuplicatePair).where(
                    DuplicatePair.project_a_id == min(pid, new_id),
                    DuplicatePair.project_b_id == max(pid, new_id),
                )
            )
            is not None
        )


def test_only_the_secretariat_reviews_duplicates(client, auth) -> None:
    auth.login("organiser")
    assert client.get("/intake/duplicates").status_code == 403
    assert client.post("/intake/duplicates/1", data={"action": "dismiss"}).status_code == 403
    auth.logout()
    auth.login("admin")
    assert client.post("/intake/duplicates/999999", data={"action": "dismiss"}).status_code == 404
