"""Explanations as a user reads them: real phrases, distinctive words, wording that follows the sign."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from embeddings.tokenize import content_word, words
from matching.explain import (
    FIELD_LABELS,
    GENERIC_TERMS,
    PairContext,
    closest_phrases,
    distinctive_terms,
    expand_terms,
    is_keyword,
    pair_reasons,
)
from matching.features import FEATURES, Evidence
from matching.service import MatchingService
from matching.types import InstitutionProfile, PortfolioItem, ProjectProfile

# Wording that states a fit: it must never carry a negative contribution.
FIT_WORDING = (
    "语义相近",
    "相近案例",
    "案例整体相近",
    "关键词重合",
    "行业契合",
    "行业相关",
    "行业偏好",
    "同行业案例",
    "同阶段案例",
    "阶段匹配",
    "阶段相近",
    "轮次偏好",
    "金额匹配",
    "地域",
    "服务匹配",
    "需求对口",
    "共同投资",
    "获奖",
    "组别",
)
MISFIT_WORDING = (
    "语义偏远",
    "案例偏远",
    "行业不符",
    "案例行业不同",
    "阶段偏离",
    "轮次不同",
    "金额偏",
    "服务缺口",
)


def _quoted(text: str) -> list[str]:
    return re.findall(r"「([^」]*)」", text)


def _flat_idf(_: str) -> float:
    return 1.0


def test_phrases_ignore_the_labelled_fields_block(tokenizer) -> None:  # type: ignore[no-untyped-def]
    a = "基于深度学习的医学影像辅助诊断系统，服务基层医院\n项目：智影医疗；行业：医疗健康、人工智能"
    b = "专注医疗健康与人工智能医学影像的早中期投资\n机构：苏医创投；类型：创业投资机构；行业：医疗健康"
    found = closest_phrases(a, b, tokenizer, _flat_idf)
    assert found is not None
    left, right, _ = found
    assert left == "基于深度学习的医学影像辅助诊断系统"
    assert right == "专注医疗健康与人工智能医学影像的早中期投资"
    # Texts that share only their field labels give no quote at all.
    only_fields = closest_phrases(
        "项目：甲；行业：医疗健康", "基地：乙；行业：医疗健康", tokenizer, _flat_idf
    )
    assert only_fields is None


def test_weak_phrase_pairs_are_not_quoted(tokenizer) -> None:  # type: ignore[no-untyped-def]
    a = "固态电池储能电芯与电池管理系统，面向电网侧储能"
    b = "农业机械与智能农机产业园区，提供厂房与检测"
    assert closest_phrases(a, b, tokenizer, _flat_idf) is None


def test_words_shared_only_in_company_names_do_not_pair_clauses(tokenizer) -> None:  # type: ignore[no-untyped-def]
    a = "西安岚昶空间信息有限公司创办于2012年。主营应急卫星便携站"
    b = "北京朔槿空间信息有限公司研发了海事卫星宽带通信终端"
    # 「空间信息」 is in both names only: the founding-year clause does not pair with the product clause.
    found = closest_phrases(a, b, tokenizer, _flat_idf)
    assert found is None or found[0] != "西安岚昶空间信息有限公司创办于2012年", found
    # Words outside the names still pair clauses.
    same = closest_phrases("西安岚昶有限公司研发卫星便携站", "关注卫星便携站与卫星通信", tokenizer, _flat_idf)
    assert same is not None and same[0] == "西安岚昶有限公司研发卫星便携站", same


def test_generic_words_are_not_quoted() -> None:
    terms = ["北京", "完成", "投资", "融资", "万元", "这一", "依赖", "问题", "产业", "碳纤维", "医学影像"]
    shares = {"医学影像": 0.5}
    assert distinctive_terms(terms, lambda t: shares.get(t, 0.01)) == ("碳纤维",)


@pytest.mark.parametrize(
    ("run", "quoted"),
    [
        ("协作机器人关节模组", True),
        ("全屋智能中控屏", True),
        ("mems压力传感芯片", True),
        ("通过大赛认识更多", False),  # 通过, 更多: words of a sentence, not of a business
        ("读研期间参与的一", False),  # 的, 一: joining characters
        ("如果进展顺利", False),
        ("约三成", False),  # an approximate share
        ("南通市", False),  # a place: the region has its own reason
        ("海淀区", False),
        ("州市", False),  # cut out of 温州市 / 杭州市: a piece of two places
        ("智慧城市", True),  # ends like a place, but its stem is two words (智慧 + 城)
        ("丘陵山区", True),
        ("无人超市", True),
        ("第一批", False),
        ("保留", False),
        ("投向", False),  # 「资金将投向…」 in a project, 「重点投向…」 in every fund: a deal word
        ("上下游", False),  # 「带动上下游配套」: what a park says of every chain
        ("价格", False),  # 「服务价格公开透明」 and 「锂资源价格」 share a word, not a business
    ],
)
def test_a_keyword_is_made_of_content_words_only(run: str, quoted: bool) -> None:
    assert is_keyword(run, words) is quoted


@pytest.mark.parametrize(
    ("run", "quoted"),
    [
        ("儿童护眼台灯", True),
        ("冷链", True),
        ("巡检", True),
        ("大功率液冷超充桩", True),  # 桩 alone reads as a measure word; 超充桩 is the trade's noun
        ("供应商手里", False),  # ends in a place word
        ("看到", False),  # everyday verbs and adverbs name nothing
        ("经常", False),
        ("徐州", False),  # a place
    ],
)
def test_a_keyword_ends_in_a_word_that_names_something(run: str, quoted: bool) -> None:
    assert is_keyword(run, words, content_word) is quoted


def test_a_shared_piece_of_other_words_is_not_quoted() -> None:
    # 「业软件」 is in both texts, but as a piece of 工业软件 and of 企业 + 软件: not quoted
    assert expand_terms(["软件"], "我们做工业软件", "只投企业软件", words, names=content_word) == ()
    assert expand_terms(["软件"], "我们做工业软件", "关注工业软件", words, names=content_word) == (
        "工业软件",
    )
    assert expand_terms(["哈尔"], "位于哈尔滨", "关注哈尔滨的企业", words) == ("哈尔滨",)
    assert expand_terms(["州市"], "位于温州市", "来自杭州市", words) == ()


def test_a_grown_run_that_is_no_keyword_is_trimmed_to_whole_words_around_the_term() -> None:
    # both texts put 「做」 before the product, so 「掌上」 grows to 「做掌上彩超」, which starts with a
    # function word: the product's own name is quoted, not its two halves
    park = "目前园内有做可降解冠脉支架的企业，也有做掌上彩超的团队，欢迎上下游一起入驻。"
    project = "去年和几位同事一起辞职，开始做掌上彩超。内置的AI辅助功能可以提示标准切面。"
    assert expand_terms(["掌上", "彩超"], park, project, words, names=content_word) == ("掌上彩超",)
    park = "也有做一次性电子输尿管镜的团队"
    project = "从2011年起就开始做一次性电子输尿管镜，11年来没有换过赛道。"
    assert expand_terms(["电子", "输尿管"], park, project, words, names=content_word) == (
        "一次性电子输尿管镜",
    )


def test_shared_terms_grow_to_a_keyword_but_a_shared_passage_is_not_quoted() -> None:
    project = "我们做协作机器人关节模组的研发。这个想法最早出现在读研期间参与的一个课题。"
    fund = "投资了协作机器人关节模组企业。团队说这个想法最早出现在读研期间参与的一个课题。"
    # 「关节」 grows to the product both texts name; 「读研」 lies in a copied sentence: nothing is quoted
    # from it, not even overlapping pieces of it (「这个想法最早出现」「个想法最早出现在」).
    assert expand_terms(["关节", "读研", "课题"], project, fund, words) == ("协作机器人关节模组",)
    assert expand_terms(["中控"], "全屋智能中控屏", "关注全屋智能中控屏和门锁", words) == ("全屋智能中控屏",)


@pytest.fixture()
def boilerplate_service(embedder, projects, institutions) -> MatchingService:  # type: ignore[no-untyped-def]
    """The test world with composed texts (labelled fields block) and business boilerplate added."""
    filler = "北京完成数千万元投资融资，这一产业问题依赖"
    projects = [
        replace(
            p,
            text=f"{filler}，{p.text}\n项目：{p.name}；行业：{'、'.join(p.industries)}；需求：{'、'.join(p.needs)}",
        )
        for p in projects
    ]
    insts = [
        replace(
            i, text=f"{i.text}，{filler}\n机构：{i.name}；类型：{i.kind}；行业：{'、'.join(i.industries)}"
        )
        for i in institutions
    ]
    pv = embedder.encode_documents([p.text for p in projects])
    iv = embedder.encode_documents([i.text for i in insts])
    svc = MatchingService(embedder, index_dir=None)  # the real jieba tokenizer
    svc.load(
        projects,
        insts,
        {p.id: pv[j] for j, p in enumerate(projects)},
        {i.id: iv[j] for j, i in enumerate(insts)},
    )
    return svc


def test_served_reasons_quote_neither_labels_nor_generic_words(
    boilerplate_service: MatchingService, projects: list[ProjectProfile]
) -> None:
    generic_parts = {"北京", "完成", "投资", "融资", "万元", "这一", "产业", "问题", "依赖"}
    seen = 0
    for pid in (p.id for p in projects):
        for side in ("fund", "base", "platform"):
            for m in boilerplate_service.match_project(pid, side, 5):
                for r in m.reasons:
                    for q in _quoted(r.text):
                        seen += 1
                        assert q not in FIELD_LABELS, r.text
                        assert not q.startswith(tuple(f"{label}：" for label in FIELD_LABELS)), r.text
                        if r.feature == "bm25":
                            assert q.lower() not in GENERIC_TERMS and q not in generic_parts, r.text
                    # Quoted clauses are real description clauses, never the shared boilerplate.
                    for q in re.findall(r"(?:项目|机构|基地|平台|案例)「([^」]*)」", r.text):
                        assert len(q) >= 6 and "北京完成" not in q, r.text
    assert seen > 0


def _context(contributions: dict[str, float], features: dict[str, float]) -> PairContext:
    project = ProjectProfile(
        9,
        "基因检测",
        "肿瘤早筛基因检测试剂盒研发",
        ("生物医药",),
        province="北京市",
        city="北京市",
        stage="成长期",
        amount_wan=2000,
        award="一等奖",
        group="企业组",
        needs=("融资",),
    )
    inst = InstitutionProfile(
        99,
        "生命资本",
        "创业投资机构",
        "专注生物医药早期投资",
        industries=("生物医药",),
        stages=("成长期",),
        province="北京市",
        city="北京市",
        ticket_min_wan=1000,
        ticket_max_wan=5000,
        portfolio=(PortfolioItem(1, "2016-01-01", "A轮", ("生物医药",), "financing"),),
    )
    ev = Evidence(
        n_portfolio=3,
        n_with_stage=3,
        industry_share={"生物医药": 1.0},
        province_share={"北京市": 1.0},
        recency=1.2,
        last_date="2016-01-01",
    )
    return PairContext(project, inst, ev, features, contributions)


def test_negative_contribution_never_reads_as_a_fit() -> None:
    # Values that make every reason talk about a fit, paired with contributions of both signs.
    fit_values = {
        "dense": 1.5,
        "dense_port_max": 1.0,
        "dense_port_mean": 1.0,
        "bm25": 0.8,
        "industry": 1.0,
        "industry_portfolio": 1.0,
        "industry_count": 1.1,
        "stage": 1.0,
        "stage_portfolio": 0.7,
        "stage_count": 1.1,
        "amount": 1.0,
        "region": 1.5,
        "region_base": 1.5,
        "region_portfolio": 1.0,
        "services": 1.0,
        "need_side": 1.0,
        "activity": 1.4,
        "recency": 0.8,
        "coinvest": 0.7,
        "award": 1.0,
        "group": 1.0,
    }
    rng = np.random.default_rng(0)
    for _ in range(30):
        signs = rng.choice([-1.0, 1.0], size=len(FEATURES))
        contrib = {f: float(s * rng.uniform(1, 15)) for f, s in zip(FEATURES, signs, strict=True)}
        reasons = pair_reasons(_context(contrib, fit_values), max_reasons=len(FEATURES))
        assert reasons, "the positive contributions still explain the match"
        for r in reasons:
            if r.contribution < 0:
                assert not r.text.startswith(FIT_WORDING), r.text
            if r.contribution > 0:
                assert not r.text.startswith(MISFIT_WORDING), r.text
    # The reported case: an inferred industry preference weighed down by the model is not shown.
    reasons = pair_reasons(_context({"industry_portfolio": -12.8, "dense": 5.0}, fit_values))
    assert [r.feature for r in reasons] == ["dense"]
