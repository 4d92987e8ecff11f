"""Which candidate projects nearly copy a project an institution already backed: likely competitors.

A fund that signed a company rarely wants its near-copy: to the fund it is a competitor of its
portfolio, not a plus. The rule is intake's duplicate rule (:mod:`matching.duplicates`: character
3-gram overlap of the core name and description, the same core name, or e5 vectors that are the same
text), applied between the candidate and the backed project closest to it by vector. Whether the
institution then avoids or welcomes such candidates is its own setting (``competitor_policy``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from matching.duplicates import anchors, core_name, judge, overlap, project_text, shingles
from matching.explain import description_part
from matching.types import ProjectProfile

__all__ = ["AVOID", "COPY_COSINE_FLOOR", "POLICIES", "WELCOME", "NearCopies", "avoids"]

AVOID = "avoid"
WELCOME = "welcome"
#: The institution's choice about candidates that compete with what it backed (default: avoid).
POLICIES: tuple[str, ...] = (AVOID, WELCOME)

#: Cosine below which two projects are not compared by text (e5 puts near-copies above 0.9 and
#: unrelated projects of one field around 0.8): the vector check keeps the text check to a few pairs.
COPY_COSINE_FLOOR = 0.85


def avoids(policy: str | None) -> bool:
    """Return whether an institution's policy ranks competitors down (anything but "welcome")."""
    return policy != WELCOME


@dataclass(frozen=True)
class _Shape:
    text: str
    name: str
    core: str
    grams: frozenset[str]
    anchors: frozenset[str]


class NearCopies:
    """Decides near-copies between projects, keeping each project's shingles until its text changes."""

    def __init__(self, max_rows: int = 50_000) -> None:
        self._rows: dict[int, _Shape] = {}
        self._max = max_rows
        self._lock = threading.Lock()

    def _shape(self, p: ProjectProfile) -> _Shape:
        found = self._rows.get(p.id)
        if found is not None and found.name == p.name and (found.text is p.text or found.text == p.text):
            return found
        description = description_part(p.text)
        grams = shingles(project_text(p.name, description))
        shape = _Shape(p.text, p.name, core_name(p.name), grams, anchors(description))
        with self._lock:
            if len(self._rows) >= self._max:
                self._rows.pop(next(iter(self._rows)), None)
            self._rows[p.id] = shape
        return shape

    def is_copy(self, a: ProjectProfile, b: ProjectProfile, cosine: float | None = None) -> bool:
        """Return whether a and b are the same or a similar project by intake's duplicate rule."""
        if a.id == b.id:
            return False
        if cosine is not None and cosine == cosine and cosine < COPY_COSINE_FLOOR:
            return False
        sa, sb = self._shape(a), self._shape(b)
        shared = sa.anchors & sb.anchors
        small = min(len(sa.anchors), len(sb.anchors))
        verdict = judge(
            None if cosine is None or cosine != cosine else float(cosine),
            overlap(sa.grams, sb.grams),
            same_name=bool(sa.core) and sa.core == sb.core,
            shared_anchors=len(shared),
            anchor_overlap=len(shared) / small if small else 0.0,
        )
        return verdict.kind is not None

    def first_copy(
        self, project: ProjectProfile, cases: Iterable[tuple[ProjectProfile, float | None]]
    ) -> ProjectProfile | None:
        """Return the first backed project (case, cosine to project) the project nearly copies, or None."""
        for case, cosine in cases:
            if self.is_copy(project, case, cosine):
                return case
        return None
