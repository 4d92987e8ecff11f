"""Reasons a person trusts: plain words, distinctive keywords, competitors flagged, one 匹配度 per pair."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from embeddings import Embedder
from matching.competitors import NearCopies, product_name
from matching.explain import GENERIC_TERMS, JARGON, is_quotable
from matching.normalize import ScoreScale
from matching.service import MatchingService
from matching.types import Filters, ProjectProfile
from tests.matching.conftest import simple_tokenize

FILLERS = ("提出", "为此", "第二", "数量", "缺口", "针对", "运行", "同比", "项目", "公司", "技术")


def _outside_quotes(text: str) -> str:
    return re.sub(r"「[^」]*」", "", text)


def test_stop_list_and_numbers_are_never_quotable() -> None:
    for word in FILLERS:
        assert word in GENERIC_TERMS and not is_quotable(word)
    for token in ("1300", "2019年", "50%", "1300万元", "三家", "第十二", "十余个", "x"):
        assert not is_quotable(token), token
    for token in ("物联网", "墒情", "中控屏", "LoRa", "碳纤维"):
        assert is_quotable(token), token


def test_score_scale_is_monotone_and_never_100() -> None:
    reference = np.random.default_rng(3).normal(size=500)
    scale = ScoreScale(reference)
    raw = np.linspace(-8, 8, 200)
    degree = scale.degree(raw)
    assert np.all(np.diff(degree) > 0)  # the order of raw scores is the order of 匹配度
    assert degree.min() > 0.0 and degree.max() < 100.0
    assert scale.degree(np.median(reference)) == pytest.approx(50.0, abs=1.0)
    assert scale.shown(1e9) == 99.9 and scale.shown(-1e9) == 0.1
    assert np.isnan(scale.degree(np.nan))


def _copy_of(project: ProjectProfile, new_id: int, name: str) -> ProjectProfile:
    return replace(project, id=new_id, name=name, text=project.text + "已进入三家医院试用。")


def _with_copy(embedder: Embedder, vectors, projects, institutions, policy: str) -> MatchingService:
    """Institution 101 backed project 5 (康复机器人); project 77 is a near-copy of it."""
    insts = [replace(i, competitor_policy=policy) if i.id == 101 else i for i in institutions]
    copy = _copy_of(next(p for p in projects if p.id == 5), 77, "上肢康复训练机器人项目")
    pv = dict(vectors[0])
    pv[77] = embedder.encode_documents([copy.text])[0]
    svc = MatchingService(embedder, tokenizer=simple_tokenize)
    svc.load([*projects, copy], insts, pv, vectors[1])
    return svc


def test_near_copy_of_a_backed_project_is_flagged_and_ranked_below_under_avoid(
    embedder: Embedder, vectors, projects, institutions
) -> None:
    svc = _with_copy(embedder, vectors, projects, institutions, "avoid")
    welcome = _with_copy(embedder, vectors, projects, institutions, "welcome")
    avoid_list = svc.match_institution(101, 10)
    welcome_list = welcome.match_institution(101, 10)
    flagged = [m for m in avoid_list if m.competitor_of]
    assert [m.id for m in flagged] == [77] and flagged[0].competitor_of == "康复机器人"
    first = flagged[0].reasons[0]
    assert first.feature == "competitor" and first.text == "可能与已投企业「康复机器人」构成竞争"
    assert first.contribution < 0
    # Avoid: below every candidate that does not compete, whatever its score.
    assert avoid_list[-1].id == 77
    # Welcome: the same candidates in score order, the copy still flagged (and not as a minus).
    assert {m.id for m in welcome_list} == {m.id for m in avoid_list}
    scores = [m.score for m in welcome_list]
    assert scores == sorted(scores, reverse=True)
    copy = next(m for m in welcome_list if m.id == 77)
    assert copy.competitor_of == "康复机器人" and copy.reasons[0].contribution == 0.0
    assert [m.id for m in welcome_list].index(77) < len(welcome_list) - 1  # it ranks above the last
    # The copy's praise never quotes the copied sentences side by side.
    for r in copy.reasons:
        assert not re.search(r"「([^」]{6,})」.*「\1」", r.text), r.text
    # The project's own list: the fund that avoids competitors comes after the others.
    funds = svc.match_project(77, "fund", 10)
    assert funds[-1].id == 101 and funds[-1].competitor_of == "康复机器人"
    # Without the institutions' signed connections nothing is flagged (that would reveal them).
    hidden = svc.match_institution(101, 10, Filters(evidence=False))
    assert all(m.competitor_of is None for m in hidden)
    assert all(r.feature != "competitor" for m in hidden for r in m.reasons)


def test_one_pair_one_score_on_every_list(service: MatchingService) -> None:
    for inst_id in (101, 102, 103):
        for m in service.match_institution(inst_id, 10):
            side = service.institution(inst_id).side
            on_project_page = {x.id: x.score for x in service.match_project(m.id, side, 10)}
            filtered = service.match_project(m.id, side, 10, Filters(allowed_ids=frozenset({inst_id})))
            assert on_project_page[inst_id] == m.score == filtered[0].score
            assert service.match_degree(m.id, inst_id) == m.score
    for side in ("fund", "base", "platform"):
        scores = [m.score for m in service.match_project(1, side, 10)]
        assert scores == sorted(scores, reverse=True) and scores[0] < 100.0


def test_reasons_are_plain_and_keywords_distinctive(service: MatchingService) -> None:
    texts = []
    for inst_id in (101, 102, 103, 201, 202, 301, 302):
        texts += [r.text for m in service.match_institution(inst_id, 10) for r in m.reasons]
    for pid in service.project_ids():
        for side in ("fund", "base", "platform"):
            texts += [r.text for m in service.match_project(pid, side, 10) for r in m.reasons]
    assert texts
    for text in texts:
        plain = _outside_quotes(text)
        assert not any(word in plain for word in JARGON), text
        assert not re.search(r"\([+-]\d", text), text  # no score points in the sentence
        if text.startswith("共同关键词"):
            for term in re.findall(r"「([^」]*)」", text):
                assert is_quotable(term) and not term.isdigit(), text


def test_product_names_and_copies() -> None:
    assert product_name("“砺隽”全屋智能中控屏") == "全屋智能中控屏"
    assert product_name("全屋智能中控屏产业化项目") == "全屋智能中控屏"
    assert product_name("LoRa土壤墒情监测站研发及产业化") == "lora土壤墒情监测站"
    copies = NearCopies()
    a = ProjectProfile(1, "芃峻全屋智能中控屏", "主要从事全屋智能中控屏的研发、生产和销售。")
    b = ProjectProfile(2, "全屋智能中控屏项目", "用户装了一堆App却用不起来，我们推出全屋智能中控屏。")
    c = ProjectProfile(3, "智能燃气表", "NB-IoT智能燃气表，远程抄表。")
    assert copies.is_copy(a, b, cosine=0.93)  # the same product, told differently
    assert not copies.is_copy(a, b, cosine=0.80)  # far apart by meaning: not compared
    assert not copies.is_copy(a, c, cosine=0.91)
    assert not copies.is_copy(a, a, cosine=1.0)  # a project does not compete with itself


def test_scores_follow_edits(service: MatchingService, embedder: Embedder) -> None:
    def pair() -> tuple[float, float]:
        m = next(m for m in service.match_institution(101, 10) if m.id == 1)
        return m.features["stage"], m.score

    stage_before, _ = pair()
    p = service.project(1)
    # A field outside the texts: the stage the fund prefers no longer fits.
    service.upsert_project(replace(p, stage="创意阶段"), embedder.encode_documents([p.text])[0])
    stage_after, score_after = pair()
    assert stage_after < stage_before  # the pair was scored again, not read from before the edit
    assert service.match_degree(1, 101) == score_after
    assert next(m.score for m in service.match_project(1, "fund", 10) if m.id == 101) == score_after
