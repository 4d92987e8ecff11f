"""One aggregation feeds the dashboard, the report and the API: the numbers agree; the workbook holds them."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.extensions import db
from app.pipeline.figures import DIMENSIONS, Period, figures, parse_quarter, period_from_args
from app.pipeline.report import SHEETS
from app.schemas import InputError
from models import Connection
from models.pipeline import ConnectionEvent

TOTAL_KEYS = ("opened", "signed", "financing_wan", "financed", "landed", "landed_area_m2", "services")


def _sheet_rows(ws) -> list[list]:  # type: ignore[no-untyped-def]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _summary(ws) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {r[0]: r[1] for r in _sheet_rows(ws) if r and r[0] is not None and len(r) > 1}


def test_report_workbook_equals_dashboard_for_the_same_quarter(world, as_user) -> None:
    sec = as_user("sec")
    dash = sec.get("/api/dashboard?quarter=2026Q3").json
    page = sec.get("/dashboard?quarter=2026Q3").get_data(as_text=True)
    r = sec.get("/reports/quarterly.xlsx?quarter=2026Q3")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in r.headers["Content-Disposition"] and ".xlsx" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == list(SHEETS)
    assert {"汇总", "分赛事", "对接清单", "成功案例"} <= set(wb.sheetnames)

    totals = dash["totals"]
    assert totals["signed"] > 0 and totals["financing_wan"] > 0, "the demo quarter must have outcomes"
    summary = _summary(wb["汇总"])
    assert summary["签约"] == totals["signed"]
    assert summary["融资金额（万元）"] == pytest.approx(totals["financing_wan"])
    assert summary["落地项目数"] == totals["landed"]
    assert summary["服务交付数"] == totals["services"]
    assert summary["新建对接"] == totals["opened"]
    assert summary["待跟进（期末）"] == totals["follow_up"]
    # the dashboard page shows the same headline figures
    assert (
        f'data-kpi="融资金额（万元）">{totals["financing_wan"]:,.0f}' in page
        or f"{totals['financing_wan']:,.1f}" in page
    )

    # per contest: the rows add up to the total row, which is the dashboard total
    rows = _sheet_rows(wb["分赛事"])
    head, body, total = rows[0], rows[1:-1], rows[-1]
    assert total[0] == "合计"
    for n, key in enumerate(TOTAL_KEYS, start=1):
        assert sum(r[n] for r in body) == pytest.approx(total[n]), head[n]
        assert total[n] == pytest.approx(totals[key]), head[n]

    # success cases: one row per signature of the quarter, amounts summing to the financing total
    cases = _sheet_rows(wb["成功案例"])
    assert len(cases) - 1 == totals["signed"] == len(dash["success_cases"])
    amount_col = cases[0].index("融资金额（万元）")
    assert sum(r[amount_col] or 0 for r in cases[1:]) == pytest.approx(totals["financing_wan"])
    assert all(r[1] and r[6] for r in cases[1:]), "every case names its project and institution"
    # the connection list has every connection active in the quarter
    assert len(_sheet_rows(wb["对接清单"])) - 1 >= totals["opened"]


def test_cli_report_matches_the_api(world, as_user, runner, tmp_path) -> None:
    out = tmp_path / "q3.xlsx"
    result = runner.invoke(args=["report", "quarterly", "--quarter", "2026Q3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2026年第3季度" in result.output
    summary = _summary(load_workbook(out)["汇总"])
    totals = as_user("sec").get("/api/dashboard?quarter=2026Q3").json["totals"]
    assert summary["融资金额（万元）"] == pytest.approx(totals["financing_wan"])
    assert summary["签约"] == totals["signed"]
    bad = runner.invoke(args=["report", "quarterly", "--quarter", "Q9", "--out", str(out)])
    assert bad.exit_code != 0 and "2026Q3" in bad.output


def test_every_breakdown_adds_up_to_the_totals(app) -> None:
    with app.app_context():
        fig = figures(db.session, parse_quarter("2026Q3")).as_json()
    for dim in DIMENSIONS:
        for key in TOTAL_KEYS:
            assert sum(r[key] for r in fig["breakdowns"][dim]) == pytest.approx(fig["totals"][key]), (
                dim,
                key,
            )
    funnel = [s["count"] for s in fig["funnel"]]
    assert funnel[0] == fig["totals"]["opened"]
    assert funnel[0] >= funnel[1] >= funnel[2] >= funnel[3] >= funnel[4]
    months = {m["month"]: m for m in fig["months"]}
    assert len(months) == 12 and list(months)[-1] == "2026-09"
    quarter_months = [months[m] for m in ("2026-07", "2026-08", "2026-09")]
    assert sum(m["signed"] for m in quarter_months) == fig["totals"]["signed"]
    assert sum(m["financing_wan"] for m in quarter_months) == pytest.approx(fig["totals"]["financing_wan"])


def test_the_demo_history_covers_four_quarters_with_outcomes_and_attrition(app) -> None:
    with app.app_context():
        s = db.session
        for q in ("2025Q4", "2026Q1", "2026Q2", "2026Q3"):
            fig = figures(s, parse_quarter(q)).as_json()
            t = fig["totals"]
            assert t["opened"] > 20 and t["signed"] > 0 and t["terminated"] > 0, q
            assert fig["funnel"][0]["count"] > fig["funnel"][-1]["count"], q
        year = figures(
            s, Period(parse_quarter("2025Q4").start, parse_quarter("2026Q3").end, "year")
        ).as_json()["totals"]
        assert year["financed"] > 10 and year["landed"] > 5 and year["services"] > 5 and year["refused"] > 5
        now = datetime.now(UTC)
        assert s.scalar(select(func.max(ConnectionEvent.at))) < now
        # events are in order within each connection, and the connection's last activity is its last event
        for c in s.scalars(select(Connection)).all()[:200]:
            times = [e.at for e in c.events]
            assert times == sorted(times) and c.last_activity_at == times[-1]
            if c.stage.name == "TERMINATED":
                assert c.closed_reason
            if c.stage.name == "SIGNED":
                assert c.outcome_kind is not None and c.outcome_date is not None
        assert figures(s, parse_quarter("2026Q4")).follow_up > 0, "some connections are waiting (待跟进)"


def test_figures_are_stable_for_a_past_quarter(app) -> None:
    with app.app_context():
        a = figures(db.session, parse_quarter("2026Q2")).as_json()
        b = figures(db.session, parse_quarter("2026Q2")).as_json()
    a.pop("as_of"), b.pop("as_of")
    assert a == b


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ("2026-07-01", "2026-10-01")),
        ({"quarter": "2026Q1"}, ("2026-01-01", "2026-04-01")),
        ({"quarter": "2025-q4"}, ("2025-10-01", "2026-01-01")),
        ({"from": "2026-02-01", "to": "2026-02-28"}, ("2026-02-01", "2026-03-01")),
        # every well-formed combination names a period (the label says which): a lone date runs to the
        # end of its quarter, a quarter wins over dates, dates in either order, a span keeps 3 years
        ({"from": "2026-01-01"}, ("2026-01-01", "2026-04-01")),
        ({"quarter": "2026Q1", "from": "2026-01-01"}, ("2026-01-01", "2026-04-01")),
        ({"from": "2026-03-01", "to": "2026-01-01"}, ("2026-01-01", "2026-03-02")),
        ({"from": "2020-01-01", "to": "2026-01-01"}, ("2022-12-30", "2026-01-02")),
    ],
)
def test_periods_from_the_query_string(args, expected) -> None:
    from datetime import date

    p = period_from_args(args, date(2026, 11, 26))
    assert (p.start.isoformat(), p.end.isoformat()) == expected


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"quarter": "2026Q5"}, "quarter"),
        ({"from": "x", "to": "2026-01-01"}, "from"),
        ({"from": "2026-01-01", "to": "2026-02-30"}, "to"),
    ],
)
def test_bad_periods_name_the_field(args, field) -> None:
    from datetime import date

    with pytest.raises(InputError) as err:
        period_from_args(args, date(2026, 11, 26))
    assert field in err.value.fields


def test_outcome_labels_are_answers_only(app) -> None:
    from app.pipeline.labels import outcome_labels

    with app.app_context():
        labels = outcome_labels(db.session)
        refused = db.session.scalar(select(func.count(Connection.id)).where(Connection.stage == "REFUSED"))
    assert labels and {lab for _, _, lab, _ in labels} == {0, 1}
    assert sum(1 for *_, lab, _d in labels if lab == 0) >= refused
    assert [d for *_, d in labels] == sorted(d for *_, d in labels)
    assert len({(p, i) for p, i, _, _ in labels}) == len(labels)


def test_an_organisers_report_leaves_out_institutions_private_shortlists(app, world, as_user) -> None:
    from models import Institution, Project

    as_user("fund").post(
        "/api/connections",
        json={"project_id": world.project_id, "institution_id": world.fund_id, "action": "shortlist"},
    )
    with app.app_context():
        pair = (
            db.session.get(Project, world.project_id).name,
            db.session.get(Institution, world.fund_id).name,
        )

    def pairs(who: str) -> set[tuple[str, str]]:
        r = as_user(who).get("/reports/quarterly.xlsx?quarter=2026Q4")
        assert r.status_code == 200
        rows = _sheet_rows(load_workbook(io.BytesIO(r.data))["对接清单"])
        return {(row[1], row[3]) for row in rows[1:]}

    assert pair in pairs("sec")
    assert pair not in pairs("org")
