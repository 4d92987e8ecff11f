"""One place that makes a value safe for a spreadsheet cell, for every xlsx and CSV the service writes.

A text that begins with a formula prefix (= + - @, a tab or carriage return, or their fullwidth forms, which
some spreadsheet programs also accept) is prefixed with a single quote, as OWASP recommends against
CSV/formula injection; xlsx text cells are written with the string type, never as formulas or error codes.
Control characters an xlsx file cannot hold are removed, so a legacy row never makes a report fail.
Numbers, dates and empty cells pass through unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet.worksheet import Worksheet

#: First characters that make a spreadsheet program read a cell as a formula (fullwidth forms included).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
#: Blanks a spreadsheet program may skip before it looks for a formula prefix.
_LEADING_BLANKS = " \u3000\n"
#: The longest text an Excel cell holds.
MAX_CELL_CHARS = 32_767
_PLAIN = (bool, int, float, Decimal, date, datetime, time, timedelta)


def starts_like_formula(text: str) -> bool:
    """Return True if a spreadsheet program could read the text as a formula."""
    return text.startswith(FORMULA_PREFIXES) or text.lstrip(_LEADING_BLANKS).startswith(FORMULA_PREFIXES)


def safe_text(text: str) -> str:
    """Return the text as a spreadsheet should store it: control characters removed, a formula quoted."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if starts_like_formula(text):
        text = "'" + text
    return text[:MAX_CELL_CHARS]


def safe_value(value: Any) -> Any:
    """Return a cell value: numbers, dates and None unchanged, anything else as safe text."""
    if value is None or isinstance(value, _PLAIN):
        return value
    return safe_text(value if isinstance(value, str) else str(value))


def append_row(ws: Worksheet, values: Sequence[Any]) -> None:
    """Append a row of values to a worksheet, every text cell stored as a string (never a formula)."""
    ws.append([safe_value(v) for v in values])
    row = ws._current_row  # the row just appended (ws.max_row scans every cell: quadratic on big sheets)
    for column, value in enumerate(values, start=1):
        if value is not None and not isinstance(value, _PLAIN):
            ws.cell(row=row, column=column).data_type = "s"


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """Return rows as CSV in UTF-8 with a BOM (so Excel opens it), every text cell quoted and made safe."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else safe_value(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
