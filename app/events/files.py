"""Files for events: invite lists (项目编号 / 机构编号, or names) and the experts import.

Both read rows with app.imports.read_rows (CSV in UTF-8 or GBK, or a bounded XLSX), check every row, and
report each bad row in Chinese with its row number; nothing is stored unless every row is right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports import SheetRow, formula_like
from app.schemas import CONTROL_MESSAGE, has_control
from models import Institution, Project
from models.events import Expert, ExpertKind, ExpertRole

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ERRORS = 20
_ID = re.compile(r"\A[0-9]{1,9}\Z")
_SPLIT = re.compile(r"[\s,，;；、/]+")

INVITE_COLUMNS = ("项目编号", "项目名称", "机构编号", "机构名称")
EXPERT_COLUMNS = ("姓名", "工作单位", "领域", "类型", "角色", "容量")


class RowErrors(ValueError):
    """Bad rows of a file: Chinese messages, one per problem, each naming its row."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)[:MAX_ERRORS]
        more = len(messages) - len(self.messages)
        text = "；".join(self.messages) + (f"；另有 {more} 处错误" if more > 0 else "")
        super().__init__(text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _check_cell(row: SheetRow, column: str, value: str, errors: list[str]) -> bool:
    if has_control(value):
        errors.append(f"第 {row.number} 行「{column}」{CONTROL_MESSAGE}")
        return False
    if formula_like(value):
        errors.append(f"第 {row.number} 行「{column}」不能以 = + - @ 开头（像公式）")
        return False
    return True


def _known_columns(rows: Sequence[SheetRow], known: Sequence[str], needed: str) -> None:
    header = set().union(*(r.keys() for r in rows)) if rows else set()
    if not rows:
        raise RowErrors(["文件中没有数据行"])
    if not header & set(needed.split("|")):
        raise RowErrors([f"文件应有「{needed.replace('|', '」或「')}」列"])
    unknown = sorted(h for h in header if h and h not in known)
    if unknown:
        raise RowErrors([f"不认识的列「{unknown[0][:40]}」：可用的列为 {'、'.join(known)}"])


def invite_ids(session: Session, rows: Sequence[SheetRow]) -> tuple[list[int], list[int]]:
    """Return (project ids, institution ids) named by the rows, by 编号 or by exact 名称.

    Raises:
        RowErrors: for an unknown column, a bad number, or a name that matches no record or several.
    """
    _known_columns(rows, INVITE_COLUMNS, "项目编号|项目名称|机构编号|机构名称")
    errors: list[str] = []
    wanted: dict[str, list[tuple[SheetRow, str, str]]] = {"p": [], "i": []}
    for row in rows:
        for side, id_col, name_col in (("p", "项目编号", "项目名称"), ("i", "机构编号", "机构名称")):
            ident, name = _text(row.get(id_col)), _text(row.get(name_col))
            if ident:
                if not _ID.match(ident):
                    errors.append(f"第 {row.number} 行「{id_col}」应为正整数，而不是「{ident[:20]}」")
                else:
                    wanted[side].append((row, "id", ident))
            elif name and _check_cell(row, name_col, name, errors):
                wanted[side].append((row, "name", name[:200]))
    out: dict[str, list[int]] = {"p": [], "i": []}
    for side, model, label in (("p", Project, "项目"), ("i", Institution, "机构")):
        ids = {int(v) for _r, how, v in wanted[side] if how == "id"}
        names = {v for _r, how, v in wanted[side] if how == "name"}
        found = set(session.scalars(select(model.id).where(model.id.in_(ids)))) if ids else set()
        by_name: dict[str, list[int]] = {}
        if names:
            for rid, rname in session.execute(select(model.id, model.name).where(model.name.in_(names))):
                by_name.setdefault(rname, []).append(rid)
        for row, how, value in wanted[side]:
            if how == "id":
                if int(value) not in found:
                    errors.append(f"第 {row.number} 行：{label}编号 {value} 不存在")
                else:
                    out[side].append(int(value))
            else:
                hits = by_name.get(value, [])
                if not hits:
                    errors.append(f"第 {row.number} 行：没有名为「{value[:40]}」的{label}")
                elif len(hits) > 1:
                    errors.append(
                        f"第 {row.number} 行：名为「{value[:40]}」的{label}不止一个，请改用{label}编号"
                    )
                else:
                    out[side].append(hits[0])
    if errors:
        raise RowErrors(errors)
    return list(dict.fromkeys(out["p"])), list(dict.fromkeys(out["i"]))


def _labels(row: SheetRow, column: str, value: str, enum: Any, errors: list[str]) -> list[str]:
    parts = [p for p in _SPLIT.split(value) if p]
    bad = [p for p in parts if p not in enum.labels()]
    if bad:
        errors.append(
            f"第 {row.number} 行「{column}」：「{bad[0][:20]}」应为 {'、'.join(enum.labels())} 之一"
        )
        return []
    return [enum.from_label(p).name for p in dict.fromkeys(parts)]


def read_experts(session: Session, rows: Sequence[SheetRow]) -> list[Expert]:
    """Return new (unsaved) experts for the rows: 姓名, 工作单位, 领域, 类型, 角色, 容量.

    工作单位 that names an institution of the service binds the expert to it (for conflict checks).

    Raises:
        RowErrors: every bad row, in Chinese; then nothing is to be stored.
    """
    _known_columns(rows, EXPERT_COLUMNS, "姓名")
    errors: list[str] = []
    employers = {_text(r.get("工作单位")) for r in rows} - {""}
    inst_ids: dict[str, list[int]] = {}
    if employers:
        for iid, iname in session.execute(
            select(Institution.id, Institution.name).where(Institution.name.in_(employers))
        ):
            inst_ids.setdefault(iname, []).append(iid)
    out: list[Expert] = []
    for row in rows:
        before = len(errors)
        cells = {c: _text(row.get(c)) for c in EXPERT_COLUMNS}
        for column, value in cells.items():
            if value:
                _check_cell(row, column, value, errors)
        if len(errors) > before:
            continue
        name, employer = cells["姓名"], cells["工作单位"]
        if not name or len(name) > 80:
            errors.append(f"第 {row.number} 行「姓名」：必填，最多 80 字")
        if len(employer) > 200:
            errors.append(f"第 {row.number} 行「工作单位」：最多 200 字")
        kinds = _labels(row, "类型", cells["类型"], ExpertKind, errors)
        roles = _labels(row, "角色", cells["角色"], ExpertRole, errors)
        if not cells["角色"]:
            errors.append(f"第 {row.number} 行「角色」：必填，应为 {'、'.join(ExpertRole.labels())} 之一")
        capacity = 5
        if cells["容量"]:
            if not _ID.match(cells["容量"]) or not 1 <= int(cells["容量"]) <= 500:
                errors.append(f"第 {row.number} 行「容量」：应为 1 到 500 之间的整数")
            else:
                capacity = int(cells["容量"])
        if len(errors) > before:
            continue
        hits = inst_ids.get(employer, [])
        out.append(
            Expert(
                name=name,
                employer_institution_id=hits[0] if len(hits) == 1 else None,
                employer=None if len(hits) == 1 else (employer or None),
                fields=[f for f in _SPLIT.split(cells["领域"]) if f][:20],
                kinds=kinds,
                roles=roles,
                capacity=capacity,
            )
        )
    if errors:
        raise RowErrors(errors)
    return out
