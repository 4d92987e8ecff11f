"""Compose the text embedded for a project, an institution or a need, from plain field values.

The description comes first and keeps most of the length budget; short labelled fields follow
("行业：…；阶段：…"). Empty fields are skipped and whitespace is collapsed, so the same values
always give the same text (and the same :func:`embeddings.base.text_hash`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "FIELD_MAX_CHARS",
    "MAX_CHARS",
    "institution_text",
    "need_text",
    "project_text",
    "truncate",
]

#: Total characters per composed text. multilingual-e5-small reads 512 tokens; Chinese company
#: descriptions run at about 0.66 tokens per character (99th percentile 1.07), so 600 characters
#: stay within one window for nearly every record.
MAX_CHARS = 600
#: Characters kept of any one labelled field (team, IP, ...): none may crowd out the description.
FIELD_MAX_CHARS = 120
#: Characters the fields block may take in all; the description gets the rest.
FIELDS_MAX_CHARS = 240

_WHITESPACE = re.compile(r"\s+")
_SENTENCE_END = "。！？；!?;…\n"
_LIST_SEPARATOR = "、"
_FIELD_SEPARATOR = "；"

Values = str | Iterable[str] | None


def _clean(text: str | None) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    if not text:
        return ""
    return _WHITESPACE.sub(" ", text).strip()


def truncate(text: str, max_chars: int) -> str:
    """Return text cut to at most max_chars, at a sentence end when one falls in the last third."""
    if max_chars <= 0:
        return ""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    cut = max(head.rfind(mark) for mark in _SENTENCE_END)
    if cut >= max_chars * 2 // 3:
        return head[: cut + 1].rstrip()
    return head.rstrip()


def _join_values(values: Values) -> str:
    """Join one value or a list of values with "、", dropping blanks and repeats, keeping order."""
    if values is None:
        return ""
    items = [values] if isinstance(values, str) else list(values)
    seen: dict[str, None] = {}
    for item in items:
        cleaned = _clean(item)
        if cleaned:
            seen.setdefault(cleaned, None)
    return _LIST_SEPARATOR.join(seen)


def _compose(description: str | None, fields: list[tuple[str, Values]]) -> str:
    """Put the description first, then the non-empty labelled fields, within MAX_CHARS."""
    parts = []
    for label, values in fields:
        value = truncate(_join_values(values), FIELD_MAX_CHARS)
        if value:
            parts.append(f"{label}：{value}")
    fields_text = truncate(_FIELD_SEPARATOR.join(parts), FIELDS_MAX_CHARS)
    body = _clean(description)
    budget = MAX_CHARS - len(fields_text) - (1 if fields_text and body else 0)
    body = truncate(body, budget)
    return "\n".join(part for part in (body, fields_text) if part)


def project_text(
    name: str | None,
    description: str | None,
    industry: Values = None,
    track: str | None = None,
    team: str | None = None,
    ip: str | None = None,
    needs: Values = None,
) -> str:
    """Return the text embedded for a contest project.

    Args:
        name: project name.
        description: what the project does; placed first and given most of the budget.
        industry: one industry label or several, primary first.
        track: contest track (赛道).
        team: team summary.
        ip: intellectual property summary (patents, software copyrights).
        needs: what the project seeks (融资, 落地, service kinds).
    """
    return _compose(
        description,
        [
            ("项目", name),
            ("行业", industry),
            ("赛道", track),
            ("团队", team),
            ("知识产权", ip),
            ("需求", needs),
        ],
    )


def institution_text(
    name: str | None,
    kind: str | None,
    description: str | None,
    industries: Values = None,
    stages: Values = None,
    services: Values = None,
) -> str:
    """Return the text embedded for an institution (fund, base or public service platform)."""
    return _offer_text([("机构", name), ("类型", kind)], description, industries, stages, services)


def need_text(
    title: str | None,
    description: str | None,
    industries: Values = None,
    stages: Values = None,
    services: Values = None,
) -> str:
    """Return the text embedded for a need (对接需求) posted by an institution."""
    return _offer_text([("需求", title)], description, industries, stages, services)


def _offer_text(
    heading: list[tuple[str, Values]],
    description: str | None,
    industries: Values,
    stages: Values,
    services: Values,
) -> str:
    """Return the text of what an institution, or one of its needs, looks for: the heading fields, then
    the industries, stages and services it takes."""
    return _compose(description, [*heading, ("行业", industries), ("阶段", stages), ("服务", services)])
