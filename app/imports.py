"""Bulk import of projects and institutions from CSV or Excel files, by contest organisers.

Every row goes through the same validation as the forms. Nothing is written unless every row is
valid: the organiser gets a list of row errors in Chinese instead, and the database stays as it was.

The work is bounded by the file's real content, never by what it declares: an xlsx archive is checked
(parts, encryption, uncompressed sizes, XML elements) before it is parsed, its declared dimensions are
ignored, and only the first MAX_COLUMNS columns of the first MAX_SHEET_ROWS rows are read. A cell whose
text begins like a spreadsheet formula (= + - @) is refused: contest data never starts so, and such a cell
is an attack on whoever opens an export.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.schemas import FIELD_LABELS, InputError, InstitutionIn, ProjectIn, validate
from app.sheets import append_row, csv_bytes, starts_like_formula
from models import Contest, Institution, Project

log = logging.getLogger(__name__)

Kind = Literal["projects", "institutions"]
#: Data rows in one import.
MAX_ROWS = 5000
#: Rows read from a file, blank ones included (a sheet may declare or hold rows far below its data).
MAX_SHEET_ROWS = 2 * MAX_ROWS
#: Columns read from a file (the widest template has 20).
MAX_COLUMNS = 64
#: Characters in one cell (the longest field takes 5,000).
MAX_CELL_CHARS = 10_000
#: An xlsx archive: parts, and uncompressed bytes of any one part (the sheet XML, the shared strings) and
#: of all parts; a 5 MB upload of real data stays far below, a zip bomb does not.
MAX_XLSX_PARTS = 200
MAX_XLSX_PART_BYTES = 32 * 1024 * 1024
MAX_XLSX_TOTAL_BYTES = 64 * 1024 * 1024
#: XML elements in one part, counted before parsing (what the parser's work grows with): a full import
#: of 5,000 rows by 20 columns holds about 200,000 in its sheet (300,000 when the text is inline).
MAX_XLSX_ELEMENTS = 600_000
_START_TAG = re.compile(rb"<[A-Za-z_]")
#: A phone number (+86 ...), a negative number or a lone dash (a common "none") is not a formula, even
#: though it starts with + or -.
_NOT_A_FORMULA = re.compile(r"[+＋][\d\s()（）-]+|-\d+(\.\d+)?|[-－]")

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
    """The file itself cannot be read (type, encoding, headers, size)."""

    def __init__(self, message: str) -> None:
        super().__init__({"file": message}, message)


class SheetRow(dict[str, Any]):
    """One data row of an import file, keyed by header cell, with its row number as a spreadsheet shows it.

    Attributes:
        number: the row number in the file (the header is row 1).
        orphans: column numbers holding a value under an empty header cell.
    """

    def __init__(self, number: int, values: Mapping[str, Any], orphans: Sequence[int] = ()) -> None:
        super().__init__(values)
        self.number = number
        self.orphans = list(orphans)


def read_rows(filename: str, data: bytes) -> list[SheetRow]:
    """Return the data rows of a CSV (UTF-8 or GBK) or XLSX file, keyed by the header cells.

    Raises:
        ImportFileError: in Chinese, when the file cannot be read or is larger than an import may be.
    """
    name = filename.lower()
    records: Generator[Sequence[Any], None, None]
    if name.endswith(".csv"):
        records = _csv_records(data)
    elif name.endswith(".xlsx"):
        records = _xlsx_records(data)
    else:
        raise ImportFileError("只支持 .csv 或 .xlsx 文件")
    with closing(records):  # a refused file closes its workbook now, not when collected
        return list(_table_rows(records))


def _table_rows(records: Iterable[Sequence[Any]]) -> Iterator[SheetRow]:
    """Turn records (the header first) into rows; skip blank rows; bound the rows and columns read."""
    header: list[str] | None = None
    data_rows = 0
    for number, values in enumerate(records, start=1):
        if number > MAX_SHEET_ROWS:
            raise ImportFileError(
                f"文件超过 {MAX_SHEET_ROWS} 行（含空行），请删除多余的行；一次最多导入 {MAX_ROWS} 行"
            )
        if header is None:
            header = [str(h).strip() if h is not None else "" for h in values]
            if len(header) > MAX_COLUMNS and any(header[MAX_COLUMNS:]):
                raise ImportFileError(f"表头超过 {MAX_COLUMNS} 列，请使用导入模板")
            header = header[:MAX_COLUMNS]
            if not any(header):
                raise ImportFileError("第 1 行应为表头（列名），请使用导入模板")
            seen: set[str] = set()
            for h in header:
                if h and h in seen:
                    raise ImportFileError(f"表头「{h[:40]}」出现了不止一次")
                seen.add(h)
            continue
        if all(_blank(v) for v in values):
            continue
        data_rows += 1
        if data_rows > MAX_ROWS:
            raise ImportFileError(f"一次最多导入 {MAX_ROWS} 行")
        row: dict[str, Any] = {}
        orphans: list[int] = []
        for column, value in enumerate(values[:MAX_COLUMNS], start=1):
            key = header[column - 1] if column <= len(header) else ""
            if key:
                row[key] = value
            elif not _blank(value):
                orphans.append(column)
        if any(not _blank(v) for v in values[MAX_COLUMNS:]):
            orphans.append(MAX_COLUMNS + 1)
        yield SheetRow(number, row, orphans)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _csv_records(data: bytes) -> Generator[list[str], None, None]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportFileError("无法识别文件编码，请另存为 UTF-8 编码的 CSV")
    if "\x00" in text:
        raise ImportFileError("CSV 文件中有空字符（NUL），不是文本文件")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        yield from reader
    except csv.Error as exc:
        # The module refuses a field over csv.field_size_limit() (131,072 characters); an unclosed quote
        # makes the rest of the file one field and ends here too.
        log.info("csv import: %s at line %d", exc, reader.line_num)
        raise ImportFileError(
            f"CSV 文件第 {reader.line_num} 行附近无法读取：单元格内容过长"
            f"（每个单元格最多 {MAX_CELL_CHARS} 个字符）或引号不成对"
        ) from None


def _xlsx_records(data: bytes) -> Generator[Sequence[Any], None, None]:
    from openpyxl import load_workbook

    _check_xlsx_archive(data)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a malformed file; none is the user's fault
        log.info("xlsx import: cannot open the workbook: %r", exc)
        raise ImportFileError("无法读取 Excel 文件，请确认是 .xlsx 格式且未加密") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None or not hasattr(ws, "reset_dimensions"):
            raise ImportFileError("Excel 文件的第一个工作表不是数据表")
        # The <dimension> element is the file's claim, not its content: openpyxl would pad every row to
        # the declared width (XFD = 16,384 columns). Read real rows only, at most MAX_COLUMNS wide.
        ws.reset_dimensions()
        yield from ws.iter_rows(max_col=MAX_COLUMNS, values_only=True)
    except ImportFileError:
        raise
    except Exception as exc:  # a malformed sheet XML fails while it is read, not when it is opened
        log.info("xlsx import: cannot read the sheet: %r", exc)
        raise ImportFileError(
            "无法读取 Excel 文件的内容，文件可能已损坏，请另存为新的 .xlsx 文件后重试"
        ) from None
    finally:
        wb.close()


def _check_xlsx_archive(data: bytes) -> None:
    """Refuse an xlsx archive that is not a zip, is encrypted, or unpacks to more than an import may.

    Sizes come first (declared, and Python's zipfile never yields more bytes than a part declares: it
    fails on the checksum then); then the XML elements of each part are counted on the raw bytes, a
    cheap scan, so the parser never starts on a sheet of millions of cells.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
            if len(parts) > MAX_XLSX_PARTS:
                raise ImportFileError("Excel 文件的结构异常（内部文件过多），请另存为新的 .xlsx 文件后重试")
            if any(p.flag_bits & 0x1 for p in parts):
                raise ImportFileError("Excel 文件已加密，请取消密码后另存为 .xlsx 文件再导入")
            if any(p.file_size > MAX_XLSX_PART_BYTES for p in parts) or (
                sum(p.file_size for p in parts) > MAX_XLSX_TOTAL_BYTES
            ):
                raise ImportFileError(
                    f"Excel 文件解压后过大（单个内部文件最多 {MAX_XLSX_PART_BYTES // (1024 * 1024)} MB，"
                    f"合计最多 {MAX_XLSX_TOTAL_BYTES // (1024 * 1024)} MB），"
                    "请删除多余的内容或拆分成多个文件后导入"
                )
            for part in parts:
                if _count_elements(archive, part) > MAX_XLSX_ELEMENTS:
                    raise ImportFileError(
                        f"Excel 文件中的单元格或格式过多，一次最多导入 {MAX_ROWS} 行，"
                        "请删除多余的内容或拆分成多个文件后导入"
                    )
    except ImportFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, zlib.error):
        raise ImportFileError("无法读取 Excel 文件：文件已损坏或不是 .xlsx 格式") from None


def _count_elements(archive: zipfile.ZipFile, part: zipfile.ZipInfo, chunk: int = 1024 * 1024) -> int:
    """Return the number of XML start tags in a part of the archive, reading it in chunks."""
    count, carry = 0, b""
    with archive.open(part) as stream:
        while block := stream.read(chunk):
            block = carry + block
            count += len(_START_TAG.findall(block))
            # a "<" at the end may start a tag in the next block; anything else was counted or is no tag
            carry = block[-1:] if block.endswith(b"<") else b""
            if count > MAX_XLSX_ELEMENTS:
                break
    return count


def formula_like(value: Any) -> bool:
    """Return True if an imported cell is text a spreadsheet program would run as a formula."""
    if not isinstance(value, str) or not starts_like_formula(value):
        return False
    return not _NOT_A_FORMULA.fullmatch(value.strip())


def _normalise(kind: Kind, raw: Mapping[str, Any]) -> dict[str, Any]:
    by_label = {label: col for col, label in zip(columns(kind), header_labels(kind), strict=True)}
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for column in getattr(raw, "orphans", ()):
        where = f"第 {column} 列" if column <= MAX_COLUMNS else f"第 {MAX_COLUMNS} 列之后"
        errors.setdefault("_columns", f"{where}有内容但没有表头")
    for key, value in raw.items():
        key = (key or "").strip()
        col = by_label.get(key, key)
        if col not in columns(kind):
            errors[key] = f"不认识的列「{key[:40]}」"
            continue
        label = _LABELS.get(col, col)
        if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
            errors[col] = f"{label}：内容过长（每个单元格最多 {MAX_CELL_CHARS} 个字符）"
            continue
        if formula_like(value):
            errors[col] = f"{label}：不能以 = + - @ 开头（电子表格会当作公式执行），请删除开头的符号"
            continue
        if isinstance(value, float) and value.is_integer() and col in ("employees", "capacity"):
            value = int(value)
        out[col] = "" if value is None else value
    if errors:
        raise InputError(errors)
    return out


def _contest_lookup(session: Session) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for c in session.scalars(select(Contest)):
        lookup[c.code] = lookup[c.name] = lookup[str(c.id)] = c.id
    return lookup


def import_rows(
    session: Session,
    kind: Kind,
    rows: Iterable[dict[str, Any]],
    allowed_contests: set[int] | None = None,
    before_commit: Callable[[ImportReport], None] | None = None,
) -> tuple[ImportReport, list[Any]]:
    """Validate every row, then add them all in one transaction (or none); return the report and rows.

    Args:
        before_commit: called with the report once every row is valid, inside the transaction (e.g. to
            add the audit line, so that rows and their audit line are stored together or not at all).
    """
    report = ImportReport(kind)
    records: list[Any] = []
    contests = _contest_lookup(session) if kind == "projects" else {}
    for position, raw in enumerate(rows, start=2):  # row 1 is the header
        number = getattr(raw, "number", position)
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
    report.created = len(records)
    if before_commit is not None:
        before_commit(report)
    session.commit()
    return report, records


def template_csv(kind: Kind) -> bytes:
    """Return an empty CSV template with Chinese headers (UTF-8 with BOM so Excel opens it)."""
    return csv_bytes([header_labels(kind)])


def template_xlsx(kind: Kind) -> bytes:
    """Return an Excel template with Chinese headers."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "项目" if kind == "projects" else "机构"
    append_row(ws, header_labels(kind))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
