"""How alike two projects are: embedding similarity plus text overlap, and the verdict (same / similar).

Pure functions on strings and floats. Text overlap uses character 3-gram shingles of the normalised text,
compared as sets: reordering sentences barely changes the set, a light edit changes a few shingles, and a
company suffix (有限公司, Co., Ltd.) is removed from names first. A translated description shares no
shingles; the multilingual embedding (e5) still puts it next to the original, so the verdict takes the
larger of the two signals. The thresholds are hyper-parameters set from bench/bench_duplicates.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

SHINGLE = 3
#: Text overlap (shared shingles over the shorter text's) at which two descriptions are the same text.
TEXT_SAME = 0.75
#: Text overlap from which two descriptions are similar (same-topic different projects stay below 0.4).
TEXT_SIMILAR = 0.45
#: Cosine at which two e5 vectors are the same text. Below it the cosine alone says little: e5 puts
#: different projects of one topic up to about 0.94, and a translation of the same text around 0.89-0.92.
EMBEDDING_SAME = 0.97
#: Cosine from which a pair that shares anchors (figures, acronyms) is similar: a translated or rewritten
#: description keeps its numbers (46%, 196 人, 2019 年, 70 吨) where it changes every word.
EMBEDDING_ANCHORED = 0.88
ANCHORS_SHARED = 2
ANCHORS_OVERLAP = 0.5

_SUFFIXES = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|股份公司|集团公司|集团|公司|工作室|"
    r"co\.?,?\s*ltd\.?|corporation|corp\.?|inc\.?|limited|ltd\.?|llc|gmbh)\s*$",
    re.IGNORECASE,
)
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[。！？；!?;.])\s*|\n+")


def clean(text: str) -> str:
    """Return text NFKC-normalised, lower case, without spaces or punctuation."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text or "").lower())


def core_name(name: str) -> str:
    """Return a project or company name without its legal suffix (有限公司, Co., Ltd. ...)."""
    text = unicodedata.normalize("NFKC", name or "").strip()
    previous = None
    while previous != text:
        previous, text = text, _SUFFIXES.sub("", text).strip(" ,.，。")
    return clean(text)


def shingles(text: str, n: int = SHINGLE) -> frozenset[str]:
    """Return the set of character n-grams of the cleaned text (the text itself when shorter)."""
    t = clean(text)
    if len(t) <= n:
        return frozenset({t}) if t else frozenset()
    return frozenset(t[i : i + n] for i in range(len(t) - n + 1))


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Return shared shingles over the smaller set's size (1.0 when one text contains the other)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


@dataclass(frozen=True)
class Verdict:
    """How alike two projects are: score in [0, 1], kind "same" / "similar" / None (not flagged)."""

    score: float
    kind: str | None
    embedding: float | None
    text: float


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(%|万|亿|million|billion)?", re.IGNORECASE)
_ACRONYM = re.compile(r"[A-Z][A-Za-z]*[A-Z]+")


def anchors(text: str) -> frozenset[str]:
    """Return what survives a translation: figures (amounts in millions of yuan) and acronyms (AGV, GMP).

    Amounts are put on one scale, so 1300万元 and "13 million yuan" are the same anchor; a bare number
    counts from two digits (a lone digit says nothing).
    """
    out: set[str] = set()
    for number, unit in _NUMBER.findall(unicodedata.normalize("NFKC", text or "")):
        value = float(number)
        unit = unit.lower()
        if unit == "%":
            out.add(f"{value:g}%")
            continue
        scale = {"万": 0.01, "亿": 100.0, "million": 1.0, "billion": 1000.0}.get(unit)
        if scale is not None:
            out.add(f"{value * scale:g}m")
        elif len(number.split(".")[0]) >= 2:
            out.add(f"{value:g}")
    out.update(_ACRONYM.findall(text or ""))
    return frozenset(out)


def judge(
    embedding: float | None,
    text: float,
    same_name: bool = False,
    shared_anchors: int = 0,
    anchor_overlap: float = 0.0,
) -> Verdict:
    """Return the verdict on a pair.

    Args:
        embedding: cosine of the two stored vectors (None when one has none yet).
        text: shingle overlap of the two texts (see overlap).
        same_name: same core name or same credit code.
        shared_anchors: figures and acronyms both texts hold; anchor_overlap: that over the smaller set.
    """
    anchored = (
        embedding is not None
        and embedding >= EMBEDDING_ANCHORED
        and shared_anchors >= ANCHORS_SHARED
        and anchor_overlap >= ANCHORS_OVERLAP
    )
    score = text
    if anchored:
        score = max(score, 0.5 + 0.5 * anchor_overlap * min(1.0, (embedding - EMBEDDING_ANCHORED) / 0.06))  # type: ignore[operator]
    if same_name:
        score = max(score, min(1.0, 0.5 + text))
    if embedding is not None and embedding >= EMBEDDING_SAME:
        score = max(score, embedding)
    score = round(min(1.0, score), 4)
    if text >= TEXT_SAME or (embedding is not None and embedding >= EMBEDDING_SAME):
        kind: str | None = "same"
    elif text >= TEXT_SIMILAR or anchored or same_name:
        kind = "similar"
    else:
        kind = None
    return Verdict(score, kind, None if embedding is None else round(float(embedding), 4), round(text, 4))


def project_text(name: str, description: str) -> str:
    """Return the text compared between projects: the core name and the description."""
    return f"{core_name(name)} {description or ''}"


def shared_passages(
    a: str, b: str, min_overlap: float = 0.5
) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Return both texts cut into sentences, each marked True when it has a counterpart in the other.

    A sentence is shared when at least min_overlap of its shingles occur in one sentence of the other
    text, whatever the order (so reordered and lightly edited sentences still show as shared).
    """
    sa, sb = _sentences(a), _sentences(b)
    ga, gb = [shingles(s) for s in sa], [shingles(s) for s in sb]

    def marks(mine: list[frozenset[str]], theirs: list[frozenset[str]]) -> list[bool]:
        return [bool(m) and any(overlap(m, t) >= min_overlap for t in theirs) for m in mine]

    return list(zip(sa, marks(ga, gb), strict=True)), list(zip(sb, marks(gb, ga), strict=True))


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text or "") if s.strip()]


def best_pairs(pairs: Iterable[tuple[int, int, Verdict]]) -> dict[tuple[int, int], Verdict]:
    """Return one verdict per unordered pair (ids ordered a < b), keeping the higher score."""
    out: dict[tuple[int, int], Verdict] = {}
    for a, b, v in pairs:
        key = (a, b) if a < b else (b, a)
        if a != b and (key not in out or v.score > out[key].score):
            out[key] = v
    return out
