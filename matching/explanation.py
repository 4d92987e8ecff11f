"""The explanation stage: what the reasons of one shown pair are built from.

Only the k pairs shown get this (reasons are the slow part of a ranking: phrase matching over
the descriptions); the scoring pass never calls it. The texts of the reasons live in
:mod:`matching.explain`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping

from embeddings.tokenize import content_word, words
from matching.explain import (
    MIN_POINTS,
    PairContext,
    clause_tokens,
    closest_phrases,
    description_clauses,
    distinctive_terms,
    expand_terms,
    is_keyword,
)
from matching.features import Evidence
from matching.lexical import LexicalIndex
from matching.types import InstitutionProfile, ProjectProfile

__all__ = ["ClauseTokens", "pair_context", "phrases"]


_PHRASE_CACHE_SIZE = 8192
_phrase_cache: dict[tuple[int, int, str, str], tuple[str, str, tuple[str, ...]] | None] = {}
_Clauses = tuple[tuple[str, ...], ...]


class ClauseTokens:
    """Per record: the quotable tokens of its description's clauses, computed once when it is indexed.

    Phrase matching (the semantic reason of a shown pair) weighs clause tokens; tokenizing the
    descriptions of the k records shown at query time would cost more than the ranking itself.
    Entries are kept with the text they were computed from and ignored when it differs.
    """

    def __init__(self, tokenize: Callable[[str], list[str]]) -> None:
        self._tokenize = tokenize
        self._rows: dict[int, tuple[str, _Clauses]] = {}
        self._lock = threading.Lock()

    def put(self, record_id: int, text: str) -> None:
        """Compute and keep the clause tokens of a record's text."""
        toks = clause_tokens(description_clauses(text), self._tokenize)
        row = tuple(tuple(sys.intern(t) for t in ts) for ts in toks)
        with self._lock:
            self._rows[record_id] = (text, row)

    def remove(self, record_id: int) -> None:
        """Forget a record (unknown ids are ignored)."""
        with self._lock:
            self._rows.pop(record_id, None)

    def get(self, record_id: int, text: str) -> _Clauses | None:
        """Return the record's clause tokens when they were computed from text, else None."""
        found = self._rows.get(record_id)
        if found is None or (found[0] is not text and found[0] != text):
            return None
        return found[1]

    def __len__(self) -> int:
        return len(self._rows)


def phrases(
    text_a: str,
    text_b: str,
    lexical: LexicalIndex,
    tokens_a: _Clauses | None = None,
    tokens_b: _Clauses | None = None,
) -> tuple[str, str, tuple[str, ...]] | None:
    """Return the closest clause pair of two texts and their shared terms (idf of the lexical index).

    tokens_a/tokens_b: the texts' clause tokens when known (:class:`ClauseTokens`). Results are
    remembered per index and edit generation (a shown pair is often shown again).
    """
    key = (lexical.serial, lexical.generation, text_a, text_b)
    if key in _phrase_cache:
        return _phrase_cache[key]
    found = closest_phrases(
        text_a, text_b, lexical.tokenize, lexical.idf, tokens_a=tokens_a, tokens_b=tokens_b
    )
    if len(_phrase_cache) >= _PHRASE_CACHE_SIZE:
        _phrase_cache.pop(next(iter(_phrase_cache)), None)
    _phrase_cache[key] = found
    return found


def _may_show(feats: Mapping[str, float], contrib: Mapping[str, float], name: str) -> bool:
    """Return whether a similarity's reason may be shown with a quote: positive and large enough."""
    return feats.get(name, 0.0) >= 0 and abs(contrib.get(name, 0.0)) >= MIN_POINTS


def pair_context(
    proj: ProjectProfile,
    inst: InstitutionProfile,
    ev: Evidence,
    feats: Mapping[str, float],
    contrib: Mapping[str, float],
    *,
    closest_case: ProjectProfile | None,
    dense_raw: float | None,
    project_doc: str,
    project_lex: LexicalIndex,
    institution_lex: LexicalIndex,
    coinvest_partners: Callable[[], tuple[str, ...]],
    project_clauses: ClauseTokens | None = None,
    institution_clauses: ClauseTokens | None = None,
    competitor: str | None = None,
    institution_doc: str | None = None,
) -> PairContext:
    """Return what the reasons of one (project, institution) pair are written from.

    Args:
        closest_case: the institution's portfolio project nearest to the project, if any.
        project_doc: the project's BM25 document (its shared terms with the institution are quoted).
        coinvest_partners: called only when the pair has a co-investment signal.
        project_clauses, institution_clauses: the records' clause tokens computed when indexed.
        competitor: name of the backed project the project nearly copies (see matching.competitors).
        institution_doc: the institution's BM25 document; shared keywords are grown to the longest
            run both documents hold (「全屋智能中控屏」 rather than 「全屋」「控屏」).

    Shared keywords must be distinctive for both texts: rare among the institutions' documents and
    among the projects' (at most 20% of either), and quotable (:func:`matching.explain.is_quotable`).
    """
    own = project_clauses.get(proj.id, proj.text) if project_clauses is not None else None
    theirs = institution_clauses.get(inst.id, inst.text) if institution_clauses is not None else None
    case = None
    if closest_case is not None and project_clauses is not None:
        case = project_clauses.get(closest_case.id, closest_case.text)
    shared: tuple[str, ...] = ()
    if feats.get("bm25", 0.0) > 0:
        inst_terms = institution_lex.terms(inst.id)
        toks = project_lex.doc_tokens(proj.id, project_doc)
        if toks is None:
            toks = tuple(dict.fromkeys(project_lex.tokenize(project_doc)))
        common = sorted((t for t in toks if t in inst_terms), key=lambda t: -institution_lex.idf(t))
        keywords = [
            t for t in common if is_keyword(t, words, content_word)
        ]  # before the share: the cheaper test
        shared = distinctive_terms(
            keywords, lambda t: max(institution_lex.doc_share(t), project_lex.doc_share(t))
        )[:5]
        if institution_doc:
            shared = expand_terms(shared, project_doc, institution_doc, words, names=content_word)
    # Phrase matching is the slow part: only for the reasons that can quote it (a positive, shown
    # text or nearest-case similarity; see matching.explain._reason_text).
    quote_text = _may_show(feats, contrib, "dense") and bool(inst.text)
    quote_case = (
        closest_case is not None and competitor is None and _may_show(feats, contrib, "dense_port_max")
    )
    return PairContext(
        project=proj,
        institution=inst,
        evidence=ev,
        features=feats,
        contributions=contrib,
        phrases=phrases(proj.text, inst.text, project_lex, own, theirs) if quote_text else None,
        closest_case=closest_case,
        case_phrases=(
            phrases(proj.text, closest_case.text, project_lex, own, case)
            if quote_case and closest_case is not None
            else None
        ),
        coinvest_partners=coinvest_partners() if feats.get("coinvest", 0.0) > 0 else (),
        shared_terms=shared,
        dense_raw=dense_raw,
        competitor=competitor,
    )
