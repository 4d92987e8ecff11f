"""The contest catalogue shipped as data files (models/data/contests_<edition>.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.core import Contest
from models.enums import ContestKind

DATA_DIR = Path(__file__).parent / "data"


def catalogue_files() -> list[Path]:
    """Return the shipped catalogue files, oldest edition first."""
    return sorted(DATA_DIR.glob("contests_*.csv"))


def load_contests(session: Session, path: Path) -> tuple[int, int]:
    """Insert or update the contests of one catalogue file by code; return (added, updated)."""
    added = updated = 0
    existing = {c.code: c for c in session.scalars(select(Contest))}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            contest = existing.get(row["code"])
            if contest is None:
                contest = Contest(code=row["code"])
                session.add(contest)
                added += 1
            else:
                updated += 1
            contest.edition = int(row["edition"])
            contest.kind = ContestKind.from_label(row["kind"])
            contest.name = row["name"]
            contest.place = row.get("place") or None
            contest.province = row.get("province") or None
            contest.track = row.get("track") or None
            contest.organisers = row.get("organisers") or None
            contest.website = row.get("website") or None
    session.commit()
    return added, updated
