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
import unicodedata
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
#: Data rows in one import (a contest's whole intake: organisers import every project that did not register).
MAX_ROWS = 20_000
#: Rows read from a file, blank ones included (a sheet may declare or hold rows far below its data).
MAX_SHEET_ROWS = 2 * MAX_ROWS
#: Columns read from a file (the widest template has 25).
MAX_COLUMNS = 64
#: Characters in one cell (the longest field takes 5,000).
MAX_CELL_CHARS = 10_000
#: An xlsx archive: parts, and uncompressed bytes of any one part (the sheet XML, the shared strings) and
#: of all parts; a 30 MB upload of real data stays far below, a zip bomb does not.
MAX_XLSX_PARTS = 200
MAX_XLSX_PART_BYTES = 128 * 1024 * 1024
MAX_XLSX_TOTAL_BYTES = 256 * 1024 * 1024
#: XML elements in one part, counted before parsing (what the parser's work grows with): a full import
#: of 20,000 rows by 25 columns holds about 1,000,000 in its sheet (1,500,000 when the text is inline).
MAX_XLSX_ELEMENTS = 2_000_000
_START_TAG = re.compile(rb"<[A-Za-z_]")
#: A phone number (+86 ...), a negative number or a lone dash (a common "none") is not a formula, even
#: though it starts with + or -.
_NOT_A_FORMULA = re.compile(r"[+＋][\d\s()（）-]+|-\d+(\.\d+)?|[-－]")

PROJECT_COLUMNS = [
    "name",
    "group",
    "contest",
    "award",
    "industry",
    "track",
    "province",
    "city",
    "stage",
    "amount_wan",
    "funding_round",
    "description",
    "team",
    "ip",
    "needs",
    "contact_name",
    "contact_phone",
    "contact_email",
    "employees",
    "revenue_wan",
    "assets_wan",
    "sme_industry",
    "ref",
    "credit_code",
    "team_lead",
]
INSTITUTION_COLUMNS = [
    "name",
    "kind",
    "province",
    "city",
    "industries",
    "stages",
    "ticket_min_wan",
    "ticket_max_wan",
    "services",
    "space_m2",
    "capacity",
    "description",
    "contact_name",
    "contact_phone",
    "contact_email",
]
_LABELS = {**FIELD_LABELS, "contest": "所属赛事"}


def columns(kind: Kind) -> list[str]:
    """Return the importable columns of a kind, in template order."""
    return PROJECT_COLUMNS if kind == "projects" else INSTITUTION_COLUMNS


def header_labels(kind: Kind) -> list[str]:
    """Return the Chinese column headers of the import template."""
    return [_LABELS.get(c, c) for c in columns(kind)]


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


# --- column mapping ----------------------------------------------------------------------------------

#: Header variants organisers use, per column (besides the template's own label). Compared after
#: normalise_header(): no spaces, brackets, units or punctuation.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("项目名称", "名称", "参赛项目名称", "项目", "项目名"),
    "group": ("组别", "参赛组别", "分组"),
    "contest": ("所属赛事", "赛事", "赛事名称", "赛事编号", "参赛赛事", "赛区"),
    "award": ("获奖等级", "获奖情况", "奖项", "获奖"),
    "industry": ("行业", "所属行业", "行业领域", "所属领域", "领域"),
    "track": ("赛道", "所属赛道"),
    "province": ("省份", "所在省份", "省", "所在地区", "地区"),
    "city": ("城市", "所在城市", "市", "地市"),
    "stage": ("发展阶段", "阶段", "项目阶段"),
    "amount_wan": ("拟融资金额", "融资金额", "拟融资额", "融资需求金额"),
    "funding_round": ("融资轮次", "轮次"),
    "description": ("简介", "项目简介", "项目介绍", "项目描述", "描述", "介绍"),
    "team": ("团队", "团队介绍", "团队情况", "核心团队"),
    "ip": ("知识产权", "知识产权情况", "专利", "专利情况"),
    "needs": ("需求", "对接需求", "项目需求"),
    "contact_name": ("联系人", "联系人姓名"),
    "contact_phone": ("联系电话", "电话", "手机", "手机号", "联系方式"),
    "contact_email": ("联系邮箱", "邮箱", "电子邮箱", "email"),
    "employees": ("从业人员", "从业人数", "员工人数", "人数", "职工人数"),
    "revenue_wan": ("营业收入", "营收", "年营业收入", "销售收入"),
    "assets_wan": ("资产总额", "总资产"),
    "sme_industry": ("划型行业", "所属行业划型", "国民经济行业"),
    "ref": ("项目编号", "编号", "报名编号", "序号编号"),
    "credit_code": ("统一社会信用代码", "信用代码", "社会信用代码", "统一代码"),
    "team_lead": ("团队负责人", "项目负责人", "负责人", "法定代表人"),
    "kind": ("机构类型", "类型"),
    "industries": ("关注行业", "投资领域", "行业"),
    "stages": ("偏好阶段", "投资阶段"),
    "ticket_min_wan": ("单笔金额下限", "最低金额"),
    "ticket_max_wan": ("单笔金额上限", "最高金额"),
    "services": ("提供服务", "服务内容", "服务"),
    "space_m2": ("可用面积", "面积"),
    "capacity": ("可入驻企业数", "可入驻数"),
}
_HEADER_NOISE = re.compile(r"[\s()（）\[\]【】:：*＊/、,，.。_-]|万元|平方米|人|（必填）|必填")


def normalise_header(text: str) -> str:
    """Return a header cell reduced to what identifies it (no spaces, brackets, units or marks)."""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", text or "")).lower()


def guess_mapping(kind: Kind, headers: Sequence[str]) -> dict[str, str]:
    """Return {header: column id, or "" when unrecognised}, each column taken by one header at most."""
    wanted = columns(kind)
    exact: dict[str, str] = {}
    for col in wanted:
        for variant in (_LABELS.get(col, col), col, *HEADER_ALIASES.get(col, ())):
            exact.setdefault(normalise_header(variant), col)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for h in headers:
        col = exact.get(normalise_header(h), "")
        if not col:  # a longer header naming one column, e.g. 企业（项目）名称
            norm = normalise_header(h)
            hits = [c for key, c in exact.items() if len(key) >= 2 and key in norm and c not in taken]
            longest = {c: max(len(k) for k, v in exact.items() if v == c and k in norm) for c in hits}
            col = max(hits, key=longest.__getitem__, default="")
        if col in taken:
            col = ""
        out[h] = col
        if col:
            taken.add(col)
    return out


def check_mapping(kind: Kind, mapping: Mapping[str, str]) -> dict[str, str]:
    """Return the mapping when every target is a column of the kind, taken once; raise ImportFileError."""
    seen: dict[str, str] = {}
    for header, col in mapping.items():
        if not col:
            continue
        if col not in columns(kind):
            raise ImportFileError(f"列「{header[:40]}」对应的字段不存在")
        if col in seen:
            raise ImportFileError(
                f"「{seen[col][:40]}」和「{header[:40]}」都对应了「{_LABELS.get(col, col)}」，"
                "每个字段只能对应一列"
            )
        seen[col] = header
    return dict(mapping)


def apply_mapping(
    rows: Iterable[SheetRow], mapping: Mapping[str, str], ignored: bool = True
) -> Iterator[SheetRow]:
    """Yield rows keyed by column id; headers mapped to "" are dropped (or kept to be refused)."""
    for row in rows:
        out: dict[str, Any] = {}
        for header, value in row.items():
            col = mapping.get(header, "")
            if col:
                out[col] = value
            elif not ignored:
                out[header] = value
        yield SheetRow(row.number, out, row.orphans)


# --- validation of one row ---------------------------------------------------------------------------


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
        if isinstance(value, float) and value.is_integer() and col in ("employees", "capacity", "ref"):
            value = int(value)
        if col in ("ref", "credit_code", "contact_phone") and isinstance(value, int | float):
            value = str(value)  # an Excel number cell holding a project number or a phone number
        out[col] = "" if value is None else value
    if errors:
        raise InputError(errors)
    return out


# --- contests: codes and names, with straight or curly quotes -------------------------------------------

_QUOTES = str.maketrans({c: '"' for c in "“”„‟＂「」『』〝〞"} | {c: "'" for c in "‘’‚‛＇"})


def contest_key(text: str) -> str:
    """Return a contest code or name as looked up: NFKC, quotes straightened, no spaces, upper case."""
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES)
    return re.sub(r"\s+", "", text).upper()


class ContestLookup:
    """Find a contest by code (7-R10), full name (any quotes) or "code name", as organisers type it."""

    def __init__(self, session: Session) -> None:
        self.by_key: dict[str, Contest] = {}
        for c in session.scalars(select(Contest)):
            self.by_key[contest_key(c.code)] = c
            self.by_key[contest_key(c.name)] = c

    def find(self, text: str) -> Contest | None:
        key = contest_key(text)
        if key in self.by_key:
            return self.by_key[key]
        head = re.split(r"[\s|｜/]", unicodedata.normalize("NFKC", text or "").strip(), maxsplit=1)[0]
        return self.by_key.get(contest_key(head))


def contest_label(c: Contest) -> str:
    """Return how a contest is named on pages and in files: its code, then its name (Contest.label)."""
    return c.label


# --- the import ----------------------------------------------------------------------------------------

Outcome = Literal["new", "changed", "unchanged"]


@dataclass
class ImportReport:
    kind: Kind
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_example: int = 0
    errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    #: (row number, [(condition, status, reason)]) for rows whose entry conditions fail or are unknown.
    warnings: list[tuple[int, list[Any]]] = field(default_factory=list)
    #: (row number, message) for rows that look like a project already entered in another contest.
    suspects: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def counts(self) -> dict[str, int]:
        return {"new": self.created, "changed": self.updated, "unchanged": self.unchanged}


def project_key(contest_id: int, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return the stable key of a project: its project number, else its credit code, else name + lead.

    All within its contest: the same company entered in two contests is two entries (and a suspected
    duplicate for the secretariat), never one silently merged record.
    """
    if values.get("ref"):
        return (contest_id, "ref", str(values["ref"]).strip())
    if values.get("credit_code"):
        return (contest_id, "code", values["credit_code"])
    lead = values.get("team_lead") or values.get("contact_name") or ""
    return (contest_id, "name", values.get("name") or "", lead)


def existing_projects(session: Session, contest_ids: set[int]) -> dict[tuple[Any, ...], Project]:
    """Return {stable key: stored project} for the projects of these contests (every key each answers to)."""
    out: dict[tuple[Any, ...], Project] = {}
    if not contest_ids:
        return out
    for p in session.scalars(select(Project).where(Project.contest_id.in_(contest_ids))):
        remember_project(out, p)
    return out


def remember_project(existing: dict[tuple[Any, ...], Project], p: Project) -> None:
    """Add a project under every key a row may find it by (see project_key and _fallback_match)."""
    values = {c: getattr(p, c) for c in ("ref", "credit_code", "team_lead", "contact_name", "name")}
    existing.setdefault(project_key(p.contest_id, values), p)
    if p.ref:  # a row that now gives only a credit code or a name still finds the project
        existing.setdefault(project_key(p.contest_id, {**values, "ref": None}), p)
    if p.credit_code:
        existing.setdefault(project_key(p.contest_id, {**values, "ref": None, "credit_code": None}), p)


def _fallback_match(
    existing: Mapping[tuple[Any, ...], Project], contest_id: int, given: Mapping[str, Any]
) -> Project | None:
    """Return the stored project a row names by a weaker key, when that project lacks the stronger one.

    A file that now carries project numbers (or credit codes) still finds the projects imported before
    without them; a stored project with a different number is another project.
    """
    weaker = []
    if given.get("ref"):
        weaker.append({**given, "ref": None})
    if given.get("ref") or given.get("credit_code"):
        weaker.append({**given, "ref": None, "credit_code": None})
    for values in weaker:
        found = existing.get(project_key(contest_id, values))
        if found is None:
            continue
        if given.get("ref") and found.ref:
            continue
        if given.get("credit_code") and found.credit_code and found.credit_code != given["credit_code"]:
            continue
        return found
    return None


#: The template's example row, skipped when an organiser leaves it in the file.
EXAMPLE_PROJECT: dict[str, Any] = {
    "name": "示例：高原青稞精深加工",
    "group": "企业组",
    "contest": "7-R25",
    "award": "无",
    "industry": "现代农业",
    "track": "",
    "province": "西藏自治区",
    "city": "拉萨市",
    "stage": "成长期",
    "amount_wan": 800,
    "funding_round": "A轮",
    "description": "以高原青稞为原料开发低升糖主食与饮品，建有两条自动化产线，产品进入区内连锁商超。",
    "team": "创始人从事食品工程十余年，团队 12 人",
    "ip": "发明专利 2 项",
    "needs": "融资、检验检测",
    "contact_name": "张三",
    "contact_phone": "13800000000",
    "contact_email": "contact@example.cn",
    "employees": 35,
    "revenue_wan": 1200,
    "assets_wan": 900,
    "sme_industry": "工业",
    "ref": "示例-001",
    "credit_code": "91540100MA6T000019",
    "team_lead": "张三",
}


def _is_example(data: Mapping[str, Any]) -> bool:
    return str(data.get("name", "")).strip() == EXAMPLE_PROJECT["name"]


#: One valid row: its number in the file, the validated record (ProjectIn / InstitutionIn) and, for a
#: project, the fields the file gives (an update writes only these).
Parsed = tuple[int, Any, dict[str, Any]]


def import_rows(
    session: Session,
    kind: Kind,
    rows: Iterable[dict[str, Any]],
    allowed_contests: set[int] | None = None,
    before_commit: Callable[[ImportReport], None] | None = None,
    default_contest: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[ImportReport, list[Any]]:
    """Validate every row, then add new rows and update changed ones in one transaction (or nothing).

    A project row that matches a stored project by its stable key (project_key) updates it, and only in
    the columns the file has; an identical row changes nothing. Institutions are always added. (The
    pages and `flask import` run the same steps as a background job in chunks: app.intake.importjob.)

    Args:
        allowed_contests: the contests the importer may write to (None: all).
        before_commit: called with the report once every row is valid, inside the transaction (e.g. to
            add the audit line, so that rows and their audit line are stored together or not at all).
        default_contest: the contest of rows that name none (an organiser's own contest).
        dry_run: validate and count new/changed/unchanged rows, write nothing (the preview).
        progress: called with the number of rows read so far, every 500 rows.
    Returns:
        The report and the rows to (re-)encode: the new ones and those whose fields changed.
    """
    report, parsed = parse_rows(session, kind, rows, allowed_contests, default_contest, progress, dry_run)
    if kind == "institutions":
        records = [Institution(**values.model_dump()) for _n, values, _g in parsed]
        report.created = len(records)
        return _finish(session, report, records, [], before_commit)
    todo = plan_projects(session, report, parsed)
    if dry_run:
        session.rollback()
        return report, []
    new: list[Project] = []
    changed: list[Project] = []
    for _number, values, given, project in todo:
        if project is None:
            new.append(Project(**values.model_dump()))
            continue
        for k, v in given.items():
            if getattr(project, k) != v:
                setattr(project, k, v)
        changed.append(project)
    return _finish(session, report, new, changed, before_commit)


def parse_rows(
    session: Session,
    kind: Kind,
    rows: Iterable[dict[str, Any]],
    allowed_contests: set[int] | None = None,
    default_contest: int | None = None,
    progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
) -> tuple[ImportReport, list[Parsed]]:
    """Validate every row (as the forms do); return the report with the row errors, and the valid rows.

    Raises:
        ImportFileError: more than MAX_ROWS rows, or none.
    """
    report = ImportReport(kind, dry_run=dry_run)
    parsed: list[Parsed] = []
    contests = ContestLookup(session) if kind == "projects" else None
    for position, raw in enumerate(rows, start=2):  # row 1 is the header
        number = getattr(raw, "number", position)
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise ImportFileError(f"一次最多导入 {MAX_ROWS} 行")
        if progress is not None and report.rows % 500 == 0:
            progress(report.rows)
        try:
            data = _normalise(kind, raw)
            if kind == "projects":
                assert contests is not None
                if _is_example(data):
                    report.skipped_example += 1
                    report.rows -= 1
                    continue
                text = str(data.pop("contest", "") or "").strip()
                contest = contests.find(text) if text else None
                if text and contest is None:
                    raise InputError(
                        {
                            "contest": f"所属赛事：找不到赛事「{text[:40]}」"
                            "（填写赛事编号如 7-R10，或完整赛事名称）"
                        }
                    )
                contest_id = contest.id if contest is not None else default_contest
                if contest_id is None:
                    raise InputError({"contest": "所属赛事：必填（填写赛事编号如 7-R10，或完整赛事名称）"})
                data["contest_id"] = contest_id
                if allowed_contests is not None and contest_id not in allowed_contests:
                    raise InputError({"contest": "所属赛事：只能导入本单位负责赛事的项目"})
                values = validate(ProjectIn, data)
                given = set(data) | {"contest_id"}
                parsed.append((number, values, {k: v for k, v in values.model_dump().items() if k in given}))
            else:
                parsed.append((number, validate(InstitutionIn, data), {}))
        except InputError as exc:
            report.errors.append((number, exc.fields))
    if report.rows == 0:
        raise ImportFileError("文件中没有数据行")
    if progress is not None:
        progress(report.rows)
    return report, parsed


def plan_projects(
    session: Session, report: ImportReport, parsed: Sequence[Parsed]
) -> list[tuple[int, Any, dict[str, Any], Project | None]]:
    """Match valid project rows to stored projects by their stable keys; count them into the report.

    Adds a row error for two rows with one key, the entry-condition warnings and the rows that look
    entered in another contest. Changes nothing stored.

    Returns:
        The rows to write, in file order, as (row number, values, given fields, stored project or None
        for a new one); rows identical to their stored project are left out (counted unchanged).
    """
    from app.intake.eligibility import evaluate

    existing = existing_projects(session, {v.contest_id for _n, v, _g in parsed})
    seen: dict[tuple[Any, ...], int] = {}
    todo: list[tuple[int, Any, dict[str, Any], Project | None]] = []
    for number, values, given in parsed:
        key = project_key(values.contest_id, given)
        if key in seen:
            what = {"ref": "项目编号", "code": "统一社会信用代码", "name": "名称和团队负责人"}[key[1]]
            message = f"与第 {seen[key]} 行是同一项目（{what}相同），请合并或删除一行"
            report.errors.append((number, {"_key": message}))
            continue
        seen[key] = number
        conditions = [c for c in evaluate(values) if c.status != "holds"]
        if conditions:
            report.warnings.append((number, conditions))
        project = existing.get(key) or _fallback_match(existing, values.contest_id, given)
        if project is None:
            report.created += 1
            todo.append((number, values, given, None))
        elif any(getattr(project, k) != v for k, v in given.items()):
            report.updated += 1
            todo.append((number, values, given, project))
        else:
            report.unchanged += 1
    report.errors.sort(key=lambda e: e[0])
    _cross_contest_suspects(session, report, list(parsed))
    return todo


def write_project(
    session: Session, existing: dict[tuple[Any, ...], Project], values: Any, given: Mapping[str, Any]
) -> tuple[Project, Outcome]:
    """Add or update the project of one valid row, found again by its stable key (so writing a row twice
    creates nothing twice); return it and what happened. The caller commits."""
    project = existing.get(project_key(values.contest_id, given)) or _fallback_match(
        existing, values.contest_id, given
    )
    if project is None:
        project = Project(**values.model_dump())
        session.add(project)
        remember_project(existing, project)
        return project, "new"
    diff = {k: v for k, v in given.items() if getattr(project, k) != v}
    for k, v in diff.items():
        setattr(project, k, v)
    return project, ("changed" if diff else "unchanged")


def _finish(
    session: Session,
    report: ImportReport,
    new: list[Any],
    changed: list[Any],
    before_commit: Callable[[ImportReport], None] | None,
) -> tuple[ImportReport, list[Any]]:
    if report.errors or report.dry_run:
        session.rollback()
        return report, []
    session.add_all(new)
    if before_commit is not None:
        before_commit(report)
    session.commit()
    return report, new + changed


def _cross_contest_suspects(
    session: Session, report: ImportReport, parsed: list[tuple[int, Any, dict[str, Any]]]
) -> None:
    """Note rows whose credit code or name is already entered in another contest (the plan forbids it)."""
    codes = {v.credit_code for _n, v, _g in parsed if v.credit_code}
    names = {v.name for _n, v, _g in parsed}
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for chunk in _chunks(sorted(codes), 500):
        for pid, contest_id, code in session.execute(
            select(Project.id, Project.contest_id, Project.credit_code).where(Project.credit_code.in_(chunk))
        ):
            found.setdefault(("code", str(code)), []).append((contest_id, f"项目 {pid}"))
    for chunk in _chunks(sorted(names), 500):
        for pid, contest_id, name in session.execute(
            select(Project.id, Project.contest_id, Project.name).where(Project.name.in_(chunk))
        ):
            found.setdefault(("name", name), []).append((contest_id, f"项目 {pid}"))
    codes_of = dict(session.execute(select(Contest.id, Contest.code)).all())
    for number, values, _g in parsed:
        hits = found.get(("code", values.credit_code), []) if values.credit_code else []
        hits = hits + found.get(("name", values.name), [])
        others = sorted({f"{codes_of.get(c, c)}（{what}）" for c, what in hits if c != values.contest_id})
        if others:
            report.suspects.append((number, "已在其他赛事参赛：" + "、".join(others[:5])))


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), n):
        yield items[start : start + n]


# --- templates -------------------------------------------------------------------------------------------


def template_csv(kind: Kind) -> bytes:
    """Return an empty CSV template with Chinese headers (UTF-8 with BOM so Excel opens it)."""
    return csv_bytes([header_labels(kind)])


def allowed_values(kind: Kind, contests: Sequence[Contest] = ()) -> dict[str, list[str]]:
    """Return the allowed values of the columns that take a fixed list (the template's drop-downs)."""
    from app.intake.eligibility import SME_INDUSTRIES
    from models.enums import INDUSTRIES, PROVINCES, Award, FundingRound, InstitutionKind, ProjectGroup, Stage

    if kind == "institutions":
        return {"kind": InstitutionKind.labels(), "province": list(PROVINCES)}
    out = {
        "group": ProjectGroup.labels(),
        "award": Award.labels(),
        "industry": list(INDUSTRIES),
        "province": list(PROVINCES),
        "stage": Stage.labels(),
        "funding_round": FundingRound.labels(),
        "sme_industry": list(SME_INDUSTRIES),
    }
    if contests:
        out["contest"] = [c.code for c in contests]
    return out


def template_xlsx(kind: Kind, contests: Sequence[Contest] = ()) -> bytes:
    """Return an Excel template: Chinese headers, an example row, drop-down lists of allowed values.

    The lists live on a hidden sheet (a list typed into the rule itself may hold only 255 characters);
    a 赛事 sheet names each contest beside its code.
    """
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "项目" if kind == "projects" else "机构"
    cols = columns(kind)
    append_row(ws, header_labels(kind))
    if kind == "projects":
        example = dict(EXAMPLE_PROJECT)
        if contests:
            example["contest"] = contests[0].code
        append_row(ws, [example.get(c, "") for c in cols])
    lists = wb.create_sheet("取值")
    last = MAX_ROWS + 1
    for i, (col, values) in enumerate(allowed_values(kind, contests).items(), start=1):
        letter = get_column_letter(i)
        append_cell = lists.cell(row=1, column=i, value=_LABELS.get(col, col))
        append_cell.data_type = "s"
        for r, v in enumerate(values, start=2):
            lists.cell(row=r, column=i, value=v).data_type = "s"
        target = get_column_letter(cols.index(col) + 1)
        dv = DataValidation(
            type="list",
            formula1=f"{quote_sheetname(lists.title)}!${letter}$2:${letter}${len(values) + 1}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="取值不在可选范围内",
            error=f"{_LABELS.get(col, col)}请从下拉列表中选择",
        )
        dv.add(f"{target}2:{target}{last}")
        ws.add_data_validation(dv)
    lists.sheet_state = "hidden"
    if contests:
        named = wb.create_sheet("赛事")
        append_row(named, ["赛事编号", "赛事名称", "赛事类型"])
        for c in contests:
            append_row(named, [c.code, c.name, c.kind.value])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
