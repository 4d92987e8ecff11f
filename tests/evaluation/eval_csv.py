"""Write the evaluation sets' CSV files (one header from each file's first row) for the tests."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path


def write_csvs(folder: Path, files: Mapping[str, Sequence[Mapping[str, str]]]) -> None:
    """Write each file name -> rows into folder, with the first row's keys as the header."""
    for name, rows in files.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
