"""Rankings with Filters(evidence=False) depend on no institution's signed connections (its pipeline).

The reference is a service loaded with every portfolio emptied: the same ranking, scores and reasons must
come out, so nothing derived from a portfolio (similarity, inferred preferences, activity, co-investment,
the BM25 document, a known pair left out) can show through a ranking given to someone outside it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from matching.service import MatchingService
from matching.types import Filters, NeedProfile
from tests.matching.conftest import INSTITUTIONS, PROJECTS, simple_tokenize

OFF = Filters(evidence=False)


@pytest.fixture()
def blind(embedder, vectors) -> MatchingService:
    """The same world with every portfolio emptied."""
    svc = MatchingService(embedder, tokenizer=simple_tokenize)
    svc.load(PROJECTS, [replace(i, portfolio=()) for i in INSTITUTIONS], vectors[0], vectors[1])
    return svc


def _same(a, b) -> None:
    assert [(m.id, m.score) for m in a] == [(m.id, m.score) for m in b]
    assert [[r.text for r in m.reasons] for m in a] == [[r.text for r in m.reasons] for m in b]


def test_the_world_has_evidence_to_hide(service: MatchingService) -> None:
    assert any(i.portfolio for i in INSTITUTIONS)
    assert 101 not in {m.id for m in service.match_project(5, "fund", 10)}  # a known pair is left out


@pytest.mark.parametrize("side", ["fund", "base", "platform"])
def test_institutions_for_a_project_ignore_every_portfolio(service, blind, side) -> None:
    for p in PROJECTS:
        _same(service.match_project(p.id, side, 10, OFF), blind.match_project(p.id, side, 10))
        public = Filters(public_only=True, evidence=False)
        _same(
            service.match_project(p.id, side, 10, public),
            blind.match_project(p.id, side, 10, Filters(public_only=True)),
        )


def test_projects_for_an_institution_or_need_ignore_every_portfolio(service, blind, embedder) -> None:
    assert 101 in {m.id for m in service.match_project(5, "fund", 10, OFF)}
    for inst in INSTITUTIONS:
        _same(service.match_institution(inst.id, 10, OFF), blind.match_institution(inst.id, 10))
    need = NeedProfile(1, INSTITUTIONS[0].id, "寻找医疗影像方向的早期项目", ("医疗健康",))
    vec = embedder.encode_documents([need.text])[0]
    _same(service.match_need(need, vec, 10, OFF), blind.match_need(need, vec, 10))


def test_signing_moves_nothing_without_evidence(service, vectors) -> None:
    inst = next(i for i in INSTITUTIONS if i.side == "fund" and i.portfolio)
    new = next(p for p in PROJECTS if p.id not in {it.project_id for it in inst.portfolio})
    before = {p.id: service.match_project(p.id, "fund", 10, OFF) for p in PROJECTS}
    with_evidence = service.match_project(new.id, "fund", 10)
    signed = replace(inst.portfolio[0], project_id=new.id)
    service.upsert_institution(replace(inst, portfolio=(*inst.portfolio, signed)), vectors[1][inst.id])
    assert service.match_project(new.id, "fund", 10) != with_evidence  # the signature is evidence...
    for p in PROJECTS:
        _same(service.match_project(p.id, "fund", 10, OFF), before[p.id])  # ...for nobody outside
