"""Which candidate projects nearly copy a project an institution already backed: likely competitors.

A fund that signed a company rarely wants its near-copy: to the fund it is a competitor of its
portfolio, not a plus. Two projects compete when intake's duplicate rule (:mod:`matching.duplicates`:
character 3-gram overlap of core name and description, the same core name, or e5 vectors that are
the same text; not its shared-figures check for translations) finds them the same or similar; or
when they make the same product: close by vector (cosine at least :data:`PRODUCT_COSINE`) and the
same product name once brand, company and project words are dropped (「芃峻全屋智能中控屏」 and
「全屋智能中控屏产业化项目」 both make 全屋智能中控屏: a run of at least MIN_PRODUCT_CHARS characters in
common, covering PRODUCT_NAME_SHARE of the shorter name). A sentence in common is no evidence on its own: the
contest's descriptions share boilerplate sentences across unrelated projects. The rule is applied
between a candidate and the backed project closest to it by vector. Whether the institution then
avoids or welcomes such candidates is its own setting (``competitor_policy``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from matching.duplicates import core_name, judge, overlap, project_text, shingles
from matching.explain import description_part
from matching.types import ProjectProfile

__all__ = [
    "AVOID",
    "COPY_COSINE_FLOOR",
    "POLICIES",
    "WELCOME",
    "NearCopies",
    "avoids",
    "product_name",
    "same_product",
]

AVOID = "avoid"
WELCOME = "welcome"
#: The institution's choice about candidates that compete with what it backed (default: avoid).
POLICIES: tuple[str, ...] = (AVOID, WELCOME)

#: Cosine below which two projects are not compared by text (e5 puts near-copies above 0.9 and
#: unrelated projects of one field around 0.8): the vector check keeps the text check to a few pairs.
COPY_COSINE_FLOOR = 0.85
#: Cosine from which two projects with the same product name or a shared sentence make the same product.
PRODUCT_COSINE = 0.90
#: Share of the shorter product name that the longest run both names hold must cover: 「禾昶全屋智能中控屏」
#: and 「芃峻全屋智能中控屏」 share 「全屋智能中控屏」 (7 of 9 characters).
PRODUCT_NAME_SHARE = 0.6
#: Shortest shared run (characters) that names a product: shorter ones (「机器人」) name a field.
MIN_PRODUCT_CHARS = 5

#: Words around a product name in a project title: 「…研发及产业化项目」, 「“芃禾”…」.
_TITLE_WORDS = re.compile(
    r"(研发及产业化|产业化|的研发与推广|研发与推广|推广|的研发|研发|原型开发|设计与验证|创新方案|方案|项目|建设|示范|应用|平台|基地)$"
)
_QUOTED_BRAND = re.compile(r"[“\"「『][^”\"」』]{1,8}[”\"」』]")


def same_product(a: str, b: str) -> bool:
    """Return whether two product names (see product_name) name the same product."""
    if len(a) < MIN_PRODUCT_CHARS or len(b) < MIN_PRODUCT_CHARS:
        return False
    run = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size
    return run >= MIN_PRODUCT_CHARS and run >= PRODUCT_NAME_SHARE * min(len(a), len(b))


def avoids(policy: str | None) -> bool:
    """Return whether an institution's policy ranks competitors down (anything but "welcome")."""
    return policy != WELCOME


def product_name(name: str) -> str:
    """Return a project title without quoted brand, legal suffix and project words (研发及产业化, 项目)."""
    text = _QUOTED_BRAND.sub("", name or "")
    previous = None
    while previous != text:
        previous, text = text, _TITLE_WORDS.sub("", core_name(text))
    return text


@dataclass(frozen=True)
class _Shape:
    text: str
    name: str
    core: str
    grams: frozenset[str]
    product: str


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
        shape = _Shape(p.text, p.name, core_name(p.name), grams, product_name(p.name))
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
        # Shared figures (intake's check for a translated filing) are left out: the contest's texts
        # repeat years and amounts across unrelated projects.
        verdict = judge(
            None if cosine is None or cosine != cosine else float(cosine),
            overlap(sa.grams, sb.grams),
            same_name=bool(sa.core) and sa.core == sb.core,
        )
        if verdict.kind is not None:
            return True
        if cosine is None or cosine != cosine or cosine < PRODUCT_COSINE:
            return False
        return same_product(sa.product, sb.product)

    def first_copy(
        self, project: ProjectProfile, cases: Iterable[tuple[ProjectProfile, float | None]]
    ) -> ProjectProfile | None:
        """Return the first backed project (case, cosine to project) the project nearly copies, or None."""
        for case, cosine in cases:
            if self.is_copy(project, case, cosine):
                return case
        return None
