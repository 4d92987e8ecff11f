"""How alike two projects are: the rule lives in :mod:`matching.duplicates`, shared with the ranking.

Intake flags duplicate filings with it and the ranking flags a candidate that nearly copies a project an
institution already backed (a likely competitor); one rule, so both agree on what a near-copy is.
"""

from __future__ import annotations

from matching.duplicates import (
    ANCHORS_OVERLAP,
    ANCHORS_SHARED,
    EMBEDDING_ANCHORED,
    EMBEDDING_SAME,
    SHINGLE,
    TEXT_SAME,
    TEXT_SIMILAR,
    Verdict,
    anchors,
    best_pairs,
    clean,
    core_name,
    judge,
    overlap,
    project_text,
    shared_passages,
    shingles,
)

__all__ = [
    "ANCHORS_OVERLAP",
    "ANCHORS_SHARED",
    "EMBEDDING_ANCHORED",
    "EMBEDDING_SAME",
    "SHINGLE",
    "TEXT_SAME",
    "TEXT_SIMILAR",
    "Verdict",
    "anchors",
    "best_pairs",
    "clean",
    "core_name",
    "judge",
    "overlap",
    "project_text",
    "shared_passages",
    "shingles",
]
