"""The explanation stage: what the reasons of one shown pair are built from.

Only the k pairs shown get this (reasons are the slow part of a ranking: phrase matching over
the descriptions); the scoring pass never calls it. The texts of the reasons live in
:mod:`matching.explain`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from matching.explain import PairContext, closest_phrases, distinctive_terms
from matching.features import Evidence
from matching.lexical import LexicalIndex
from matching.types import InstitutionProfile, ProjectProfile

__all__ = ["pair_context", "phrases"]


_PHRASE_CACHE_SIZE = 8192
_phrase_cache: dict[tuple[int, int, str, str], tuple[str, str, tuple[str, ...]] | None] = {}


def phrases(text_a: str, text_b: str, lexical: LexicalIndex) -> tuple[str, str, tuple[str, ...]] | None:
    """Return the closest clause pair of two texts and their shared terms (idf of the lexical index).

    Results are remembered per index and edit generation (a shown pair is often shown again).
    """
    key = (lexical.serial, lexical.generation, text_a, text_b)
    if key in _phrase_cache:
        return _phrase_cache[key]
    found = closest_phrases(text_a, text_b, lexical.tokenize, lexical.idf)
    if len(_phrase_cache) >= _PHRASE_CACHE_SIZE:
        _phrase_cache.pop(next(iter(_phrase_cache)), None)
    _phrase_cache[key] = found
    return found


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
) -> PairContext:
    """Return what the reasons of one (project, institution) pair are written from.

    Args:
        closest_case: the institution's portfolio project nearest to the project, if any.
        project_doc: the project's BM25 document (its shared terms with the institution are quoted).
        coinvest_partners: called only when the pair has a co-investment signal.
    """
    shared: tuple[str, ...] = ()
    if feats.get("bm25", 0.0) > 0:
        inst_terms = institution_lex.terms(inst.id)
        toks = dict.fromkeys(project_lex.tokenize(project_doc))
        common = sorted((t for t in toks if t in inst_terms), key=lambda t: -institution_lex.idf(t))
        shared = distinctive_terms(common, institution_lex.doc_share)[:5]
    return PairContext(
        project=proj,
        institution=inst,
        evidence=ev,
        features=feats,
        contributions=contrib,
        phrases=phrases(proj.text, inst.text, project_lex) if inst.text else None,
        closest_case=closest_case,
        case_phrases=phrases(proj.text, closest_case.text, project_lex) if closest_case is not None else None,
        coinvest_partners=coinvest_partners() if feats.get("coinvest", 0.0) > 0 else (),
        shared_terms=shared,
        dense_raw=dense_raw,
    )
