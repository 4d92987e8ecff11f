"""The quarterly report (赛事专报) as an Excel workbook, built from the same Figures as the dashboard.

Every row goes through app.sheets.append_row: names and notes entered by users are stored as text, never as
formulas, and a control character left in an old row cannot make the report fail.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from app.pipeline.figures import DIMENSIONS, Figures
from app.pipeline.states import CHINA_TZ
from app.sheets import append_row

TITLE = "“创客中国”赛后对接服务 赛事专报"
SHEETS = ("汇总", "分赛事", "分维度", "月度趋势", "对接清单", "成功案例", "赛事备案")
#: Columns of a breakdown table: key in Tally.as_json() -> heading.
TALLY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("opened", "新建对接"),
    ("signed", "签约"),
    ("financing_wan", "融资金额（万元）"),
    ("financed", "融资项目数"),
    ("landed", "落地项目数"),
    ("landed_area_m2", "落地面积（㎡）"),
    ("services", "服务交付数"),
)
#: The headline figures: (label, value getter on Figures.as_json()["totals"]).
HEADLINE: tuple[tuple[str, str], ...] = (
    ("新建对接", "opened"),
    ("签约", "signed"),
    ("融资金额（万元）", "financing_wan"),
    ("融资项目数", "financed"),
    ("落地项目数", "landed"),
    ("落地面积（㎡）", "landed_area_m2"),
    ("服务交付数", "services"),
    ("被拒绝", "refused"),
    ("终止", "terminated"),
    ("待跟进（期末）", "follow_up"),
)
CONNECTION_COLUMNS = (
    ("id", "编号"),
    ("project", "项目"),
    ("contest", "赛事"),
    ("institution", "机构"),
    ("institution_kind", "机构类型"),
    ("initiated_by", "发起方"),
    ("opened", "建立日期"),
    ("moves", "本期阶段变化"),
    ("stage", "期末阶段"),
    ("last_activity", "最近活动"),
    ("follow_up", "待跟进"),
)
CASE_COLUMNS = (
    ("signed", "签约日期"),
    ("project", "项目"),
    ("contest", "赛事"),
    ("award", "获奖等级"),
    ("region", "地区"),
    ("industry", "行业"),
    ("institution", "机构"),
    ("institution_kind", "机构类型"),
    ("kind", "成果类型"),
    ("summary", "成果"),
    ("amount_wan", "融资金额（万元）"),
    ("round", "轮次"),
    ("area_m2", "落地面积（㎡）"),
    ("service_kind", "服务类型"),
)
BOLD = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="FDECEF")


def headline(fig: Figures) -> list[tuple[str, Any]]:
    """Return the report's headline figures as (label, value), in order (shared with the HTML page)."""
    totals = fig.as_json()["totals"]
    return [(label, totals[key]) for label, key in HEADLINE]


def quarterly_workbook(
    fig: Figures,
    scope_label: str = "全部赛事",
    shortlists: bool = True,
    filings: Sequence[Mapping[str, Any]] = (),
) -> Workbook:
    """Return the report workbook: summary, per contest, per dimension, trend, connections, success cases.

    Args:
        fig: the period's figures.
        scope_label: which contests the figures cover, as the reader should see it.
        shortlists: list connections never requested (institutions' private shortlists); secretariat only.
        filings: each filed contest's 备案表 plan (app.intake.filings.filed_plans), for follow-up.
    """
    data = fig.as_json()
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEETS[0]
    append_row(ws, [f"{TITLE}（{fig.period.label}）"])
    ws["A1"].font = Font(bold=True, size=14)
    append_row(ws, ["统计区间", f"{data['period']['from']} 至 {data['period']['to']}"])
    append_row(ws, ["统计范围", scope_label])
    append_row(ws, ["数据截至", fig.as_of.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M（北京时间）")])
    append_row(ws, [])
    append_row(ws, ["指标", "数值"])
    _style_head(ws, ws.max_row)
    for label, value in headline(fig):
        append_row(ws, [label, value])
    append_row(ws, [])
    append_row(ws, ["对接漏斗（本期新建对接到达各阶段）", "数量"])
    _style_head(ws, ws.max_row)
    for step in data["funnel"]:
        append_row(
            ws,
            [step["label"] + ("（仅投融资机构）" if step["stage"] == "DUE_DILIGENCE" else ""), step["count"]],
        )
    append_row(ws, [])
    append_row(ws, ["本期进入各阶段次数", "次数"])
    _style_head(ws, ws.max_row)
    for label, count in data["entered"].items():
        append_row(ws, [label, count])
    _widths(ws, [34, 22])

    _breakdown_sheet(wb.create_sheet(SHEETS[1]), "赛事", data["breakdowns"]["contest"], total=data["totals"])

    ws = wb.create_sheet(SHEETS[2])
    for dim, heading in DIMENSIONS.items():
        if dim == "contest":
            continue
        _table(ws, heading, data["breakdowns"][dim])
        append_row(ws, [])
    _widths(ws, [26] + [16] * len(TALLY_COLUMNS))

    ws = wb.create_sheet(SHEETS[3])
    append_row(ws, ["月份", *[h for _, h in TALLY_COLUMNS]])
    _style_head(ws, 1)
    for m in data["months"]:
        append_row(ws, [m["month"], *[m[k] for k, _ in TALLY_COLUMNS]])
    _widths(ws, [12] + [16] * len(TALLY_COLUMNS))

    ws = wb.create_sheet(SHEETS[4])
    rows = [r for r in fig.rows if shortlists or r["requested"]]
    _rows(ws, CONNECTION_COLUMNS, [{**r, "follow_up": "是" if r["follow_up"] else ""} for r in rows])
    _widths(ws, [8, 30, 22, 30, 20, 10, 12, 40, 12, 12, 8])

    ws = wb.create_sheet(SHEETS[5])
    _rows(ws, CASE_COLUMNS, data["success_cases"])
    _widths(ws, [12, 30, 22, 10, 14, 14, 30, 20, 10, 34, 16, 10, 14, 12])

    ws = wb.create_sheet(SHEETS[6])  # each filed 备案表 plan: its 项目跟踪及对接服务计划 is what to follow up
    _rows(ws, FILING_COLUMNS, list(filings))
    _widths(ws, [10, 40, 12, 26, 16, 40, 80, 12])
    return wb


FILING_COLUMNS = [
    ("code", "赛事编号"),
    ("name", "赛事名称"),
    ("kind", "赛事类型"),
    ("dates", "赛事时间"),
    ("venue", "决赛地点"),
    ("organisers", "组织机构"),
    ("plan", "赛事方案（含项目跟踪及对接服务计划）"),
    ("filed_on", "填表日期"),
]


def workbook_bytes(wb: Workbook) -> bytes:
    """Return the workbook as .xlsx bytes."""
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _breakdown_sheet(ws: Worksheet, heading: str, rows: list[dict[str, Any]], total: dict[str, Any]) -> None:
    _table(ws, heading, rows)
    append_row(ws, ["合计", *[total[k] for k, _ in TALLY_COLUMNS]])
    for cell in ws[ws.max_row]:
        cell.font = BOLD
    _widths(ws, [30] + [16] * len(TALLY_COLUMNS))
    ws.freeze_panes = "B2"


def _table(ws: Worksheet, heading: str, rows: list[dict[str, Any]]) -> None:
    append_row(ws, [heading, *[h for _, h in TALLY_COLUMNS]])
    _style_head(ws, ws.max_row)
    for r in rows:
        append_row(ws, [r["key"], *[r[k] for k, _ in TALLY_COLUMNS]])


def _rows(ws: Worksheet, columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]) -> None:
    append_row(ws, [h for _, h in columns])
    _style_head(ws, 1)
    for r in rows:
        append_row(ws, [r.get(k) for k, _ in columns])
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"


def _style_head(ws: Worksheet, row: int) -> None:
    for cell in ws[row]:
        cell.font = BOLD
        cell.fill = HEAD_FILL
        cell.alignment = Alignment(vertical="center")


def _widths(ws: Worksheet, widths: Sequence[int]) -> None:
    for n, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(n)].width = w


def quarterly_report_file(
    session: Any, period: Any, scope: set[int] | None, scope_label: str, days: int
) -> tuple[str, bytes]:
    """Return the period's report workbook as (file name, bytes): the body of the report job."""
    from app.pipeline.figures import figures

    fig = figures(session, period, scope, days)
    body = workbook_bytes(quarterly_workbook(fig, scope_label, shortlists=scope is None))
    name = f"赛事专报-{period.quarter or period.start.isoformat() + '_' + period.last_day.isoformat()}.xlsx"
    return name, body
