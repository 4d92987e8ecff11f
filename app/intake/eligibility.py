"""Entry conditions of the contest plan (五、参赛条件及要求), checked per project: holds, fails or unknown.

企业组: 1. registered in China and an SME under 《中小企业划型标准规定》; 2. product on the market; 3. own IP
without dispute; 4. no bad record. 创客组: 1. law-abiding individuals or teams; 2. IP held by the core
members; 3. no enterprise project. Each check says why, from the project's own fields; what the record
cannot show (a dispute, a bad record) is "unknown" with what to verify, never assumed.

The SME thresholds are the regulation's own table (data/sme-classification.csv, see data/README.md).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

Status = Literal["holds", "fails", "unknown"]
STATUS_LABELS: dict[str, str] = {"holds": "符合", "fails": "不符合", "unknown": "待核实"}
DATA = Path(__file__).parent / "data" / "sme-classification.csv"

#: The contest's industries, each with the 划型 industry presumed when a project names none.
PRESUMED_SME_INDUSTRY: dict[str, str] = {
    "新一代信息技术": "软件和信息技术服务业",
    "人工智能": "软件和信息技术服务业",
    "物联网": "软件和信息技术服务业",
    "区块链": "软件和信息技术服务业",
    "数字创意": "软件和信息技术服务业",
    "集成电路": "工业",
    "生物医药": "工业",
    "医疗器械": "工业",
    "新材料": "工业",
    "智能装备": "工业",
    "新能源": "工业",
    "节能环保": "工业",
    "新能源汽车": "工业",
    "航空航天": "工业",
    "智能家居": "工业",
    "消费品": "工业",
    "现代农业": "农、林、牧、渔业",
    "现代服务业": "其他未列明行业",
}
#: Development stages at which a product is on the market (参赛项目已进入市场).
MARKET_STAGES = frozenset({"初创期", "成长期", "扩张期", "成熟期"})
PRE_MARKET_STAGES = frozenset({"创意阶段", "研发样机"})

_METRICS = (("employees", "从业人员", "人"), ("revenue", "营业收入", "万元"), ("assets", "资产总额", "万元"))
_SIZE_LABELS = {"medium": "中型", "small": "小型", "micro": "微型"}
CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@dataclass(frozen=True)
class Condition:
    """One entry condition of a project's group, and whether its record shows it holds."""

    condition: str
    status: Status
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"condition": self.condition, "status": self.status, "reason": self.reason}


@cache
def thresholds() -> dict[str, dict[str, dict[str, float | None]]]:
    """Return {industry: {size: {metric_min/max: value or None}}} from the regulation's table."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    with DATA.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            bounds: dict[str, float | None] = {}
            for metric, _label, _unit in _METRICS:
                suffix = "" if metric == "employees" else "_wan"
                for side in ("min", "max"):
                    cell = row[f"{metric}_{side}{suffix}"]
                    bounds[f"{metric}_{side}"] = float(cell) if cell else None
            out.setdefault(row["industry"], {})[row["size"]] = bounds
    return out


SME_INDUSTRIES: tuple[str, ...] = tuple(thresholds())


def check_character(first17: str) -> str:
    """Return the check character (the 18th) of a credit code's first 17 characters."""
    total = sum(CODE_CHARS.index(c) * w for c, w in zip(first17, _CODE_WEIGHTS, strict=True))
    return CODE_CHARS[(31 - total % 31) % 31]


def check_credit_code(value: str) -> str:
    """Return a unified social credit code (GB 32100-2015) normalised, or raise ValueError in Chinese."""
    code = value.strip().upper().replace(" ", "")
    if len(code) != 18 or any(c not in CODE_CHARS for c in code):
        raise ValueError("应为 18 位统一社会信用代码（数字和大写字母，不含 I、O、Z、S、V）")
    if check_character(code[:17]) != code[17]:
        raise ValueError("校验位不正确，请核对统一社会信用代码")
    return code


def sme_size(industry: str, figures: dict[str, float | None]) -> tuple[str | None, str]:
    """Return the size class (large, medium, small, micro, or None when unknown) and the reason.

    Args:
        industry: a 划型 industry of the table.
        figures: {"employees", "revenue", "assets"} -> the enterprise's value (persons, 万元) or None.
    """
    table = thresholds()[industry]
    ceiling = table["medium"]
    used = [(m, label, unit) for m, label, unit in _METRICS if ceiling[f"{m}_max"] is not None]
    missing = [label for m, label, _u in used if figures.get(m) is None]
    below = [
        (label, figures[m], ceiling[f"{m}_max"], unit)
        for m, label, unit in used
        if figures.get(m) is not None and figures[m] < ceiling[f"{m}_max"]  # type: ignore[operator]
    ]
    limits = "或".join(f"{label}{_num(ceiling[f'{m}_max'])}{unit}以下" for m, label, unit in used)
    if not below:
        if missing:
            return None, f"{industry}的中小企业标准为{limits}；缺少{'、'.join(missing)}，无法判断"
        return "large", f"{industry}：{_figures(used, figures)}，均达到大型企业标准（中小企业须{limits}）"
    size = "micro"
    for candidate in ("medium", "small"):
        row = table[candidate]
        needed = [(m, row[f"{m}_min"]) for m, _l, _u in _METRICS if row[f"{m}_min"] is not None]
        if any(figures.get(m) is None for m, _v in needed):
            label, value, limit, unit = below[0]
            return "sme", f"{industry}：{label}{_num(value)}{unit}，低于{_num(limit)}{unit}，属中小微企业"
        if all(figures[m] >= v for m, v in needed):  # type: ignore[operator]
            size = candidate
            break
    return size, f"{industry}：{_figures(used, figures)}，属{_SIZE_LABELS[size]}企业"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _figures(used: list[tuple[str, str, str]], figures: dict[str, float | None]) -> str:
    return "，".join(
        f"{label}{_num(figures.get(m))}{unit}" for m, label, unit in used if figures.get(m) is not None
    )


def evaluate(p: Any) -> list[Condition]:
    """Return the entry conditions of the project's group with their status and reason.

    Args:
        p: a project row or anything with its attributes (group, stage, ip, team, employees, ...).
    """
    group = _value(getattr(p, "group", None))
    if group == "创客组":
        return _maker(p)
    return _enterprise(p)


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _enterprise(p: Any) -> list[Condition]:
    out: list[Condition] = []
    code = getattr(p, "credit_code", None)
    if code:
        try:
            check_credit_code(code)
            out.append(Condition("在中国境内注册", "holds", f"统一社会信用代码 {code}（中国境内登记主体）"))
        except ValueError as exc:
            out.append(Condition("在中国境内注册", "fails", f"统一社会信用代码 {code} 无效：{exc}"))
    else:
        out.append(Condition("在中国境内注册", "unknown", "未填写统一社会信用代码"))
    out.append(_sme(p))
    stage = _value(getattr(p, "stage", None))
    if stage in MARKET_STAGES:
        out.append(Condition("参赛项目已进入市场", "holds", f"发展阶段为{stage}"))
    elif stage in PRE_MARKET_STAGES:
        out.append(Condition("参赛项目已进入市场", "fails", f"发展阶段为{stage}，产品尚未进入市场"))
    else:
        out.append(Condition("参赛项目已进入市场", "unknown", "未填写发展阶段"))
    out.append(
        _stated(
            "拥有自主知识产权且无产权纠纷",
            _text(p, "ip"),
            "知识产权：{}（产权纠纷以核查为准）",
            "未填写知识产权",
        )
    )
    out.append(Condition("无不良记录", "unknown", "须在信用中国等平台核查，本系统无记录可依"))
    return out


def _sme(p: Any) -> Condition:
    name = "符合《中小企业划型标准规定》的中小微企业"
    industry = getattr(p, "sme_industry", None)
    presumed = ""
    if not industry:
        industry = PRESUMED_SME_INDUSTRY.get(getattr(p, "industry", None) or "")
        if industry is None:
            return Condition(name, "unknown", "未填写划型行业")
        presumed = f"（按参赛行业「{p.industry}」推定为{industry}）"
    figures = {
        "employees": getattr(p, "employees", None),
        "revenue": getattr(p, "revenue_wan", None),
        "assets": getattr(p, "assets_wan", None),
    }
    size, reason = sme_size(industry, figures)
    status: Status = "unknown" if size is None else "fails" if size == "large" else "holds"
    return Condition(name, status, reason + presumed)


def _maker(p: Any) -> list[Condition]:
    team = _text(p, "team") or _text(p, "team_lead")
    out = [
        _stated("个人或团队参赛", team, "团队：{}", "未填写团队或团队负责人"),
        _stated(
            "知识产权归属团队核心成员且无纠纷",
            _text(p, "ip"),
            "知识产权：{}（归属以核查为准）",
            "未填写知识产权",
        ),
    ]
    code = getattr(p, "credit_code", None)
    if code:
        out.append(
            Condition("非企业创新项目", "fails", f"填写了统一社会信用代码 {code}：企业创新项目不得参加创客组")
        )
    else:
        out.append(Condition("非企业创新项目", "holds", "未登记为企业（无统一社会信用代码）"))
    return out


def _text(p: Any, field: str) -> str:
    """Return a text field of the project, stripped ("" when empty or absent)."""
    return (getattr(p, field, None) or "").strip()


def _stated(name: str, text: str, holds: str, missing: str) -> Condition:
    """Return a condition the project meets by stating `text` (shown clipped in the `holds` template's
    {}), and unknown (`missing`) when it states nothing; the claim itself is checked by hand."""
    if text:
        return Condition(name, "holds", holds.format(_clip(text)))
    return Condition(name, "unknown", missing)


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "…"


def summary(conditions: list[Condition]) -> Status:
    """Return fails when any condition fails, unknown when any is unknown, else holds."""
    statuses = {c.status for c in conditions}
    return "fails" if "fails" in statuses else "unknown" if "unknown" in statuses else "holds"
