"""Bulk import of projects and institutions from CSV or Excel files, by contest organisers.

Every row goes through the same validation as the forms. Nothing is written unless every row is
valid: the organiser gets a list of row errors in Chinese instead, and the database stays as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.schemas import FIELD_LABELS, InputError, InstitutionIn, ProjectIn, validate
from models import Contest, Institution, Project

Kind = Literal["projects", "institutions"]
MAX_ROWS = 5000

PROJECT_COLUMNS = [
    "name", "group", "contest", "award", "industry", "track", "province", "city", "stage", "amount_wan",
    "funding_round", "description", "team", "ip", "needs", "contact_name", "contact_phone", "contact_email",
    "employees", "revenue_wan",
]
INSTITUTION_COLUMNS = [
    "name", "kind", "province", "city", "industries", "stages", "ticket_min_wan", "ticket_max_wan", "services",
    "space_m2", "capacity", "description", "contact_name", "contact_phone", "contact_email",
]
_LABELS = {**FIELD_LABELS, "contest": "所属赛事"}


def columns(kind: Kind) -> list[str]:
    """Return the importable columns of a kind, in template order."""
    return PROJECT_COLUMNS if kind == "projects" else INSTITUTION_COLUMNS


def header_labels(kind: Kind) -> list[str]:
    """Return the Chinese column headers of the import template."""
    return [_LABELS.get(c, c) for c in columns(kind)]


@dataclass
class ImportReport:
    kind: Kind
    rows: int = 0
    created: int = 0
    errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFileError(InputError):
    """The file itself cannot be read (type, encoding, headers)."""

    def __init__(self, message: str) -> None:
        super().__init__({"file": message}, message)


def read_rows(filename: str, data: bytes) -> list[dict[str, Any]]:
    """Return the rows of a CSV (UTF-8 or GBK) or XLSX file as dicts keyed by the header cells."""
    name = filename.lower()
    if name.endswith(".csv"):
        return list(_csv_rows(data))
    if name.endswith(".xlsx"):
        return list(_xlsx_rows(data))
    raise ImportFileError("只支持 .csv 或 .xlsx 文件")


def _csv_rows(data: bytes) -> Iterator[dict[str, Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportFileError("无法识别文件编码，请另存为 UTF-8 编码的 CSV")
    yield from csv.DictReader(io.StringIO(text))


def _xlsx_rows(data: bytes) -> Iterator[dict[str, Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise ImportFileError("无法读取 Excel 文件，请确认是 .xlsx 格式且未加密") from None
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        return
    keys = [str(h).strip() if h is not None else "" for h in header]
    for values in rows:
        if values is None or all(v is None or str(v).strip() == "" for v in values):
            continue
        yield {k: v for k, v in zip(keys, values, strict=False) if k}
    wb.close()


def _normalise(kind: Kind, raw: dict[str, Any]) -> dict[str, Any]:
    by_label = {label: col for col, label in zip(columns(kind), header_labels(kind), strict=True)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key = (key or "").strip()
        col = by_label.get(key, key)
        if col not in columns(kind):
            raise InputError({key: f"不认识的列「{key}」"})
        if isinstance(value, float) and value.is_integer() and col in ("employees", "capacity"):
            value = int(value)
        out[col] = "" if value is None else value
    return out


def _contest_lookup(session: Session) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for c in session.scalars(select(Contest)):
        lookup[c.code] = lookup[c.name] = lookup[str(c.id)] = c.id
    return lookup


def import_rows(
    session: Session, kind: Kind, rows: Iterable[dict[str, Any]], allowed_contests: set[int] | None = None
) -> tuple[ImportReport, list[Any]]:
    """Validate every row, then add them all in one transaction (or none); return the report and rows."""
    report = ImportReport(kind)
    records: list[Any] = []
    contests = _contest_lookup(session) if kind == "projects" else {}
    for number, raw in enumerate(rows, start=2):  # row 1 is the header
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise ImportFileError(f"一次最多导入 {MAX_ROWS} 行")
        try:
            data = _normalise(kind, raw)
            if kind == "projects":
                contest = str(data.pop("contest", "") or "").strip()
                if contest not in contests:
                    raise InputError({"contest": f"所属赛事：找不到赛事「{contest[:40]}」（填写赛事编号或完整名称）"})
                data["contest_id"] = contests[contest]
                if allowed_contests is not None and data["contest_id"] not in allowed_contests:
                    raise InputError({"contest": "所属赛事：只能导入本单位负责赛事的项目"})
                records.append(Project(**validate(ProjectIn, data).model_dump()))
            else:
                records.append(Institution(**validate(InstitutionIn, data).model_dump()))
        except InputError as exc:
            report.errors.append((number, exc.fields))
    if report.rows == 0:
        raise ImportFileError("文件中没有数据行")
    if report.errors:
        return report, []
    session.add_all(records)
    session.commit()
    report.created = len(records)
    return report, records


def template_csv(kind: Kind) -> bytes:
    """Return an empty CSV template with Chinese headers (UTF-8 with BOM so Excel opens it)."""
    buf = io.StringIO()
    csv.writer(buf).writerow(header_labels(kind))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def template_xlsx(kind: Kind) -> bytes:
    """Return an Excel template with Chinese headers."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "项目" if kind == "projects" else "机构"
    ws.append(header_labels(kind))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
