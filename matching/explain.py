"""Readable Chinese reasons computed from a pair's real feature values and contributions.

Each reason quotes the values behind it (the industries, stages, amounts, places, services that
matched or clashed) and the signed contribution in score points, so two pairs with different
features never read the same. Semantic closeness is shown by quoting the closest clauses of the
two texts, found by IDF-weighted token overlap (no model call at query time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from matching.features import Evidence, project_stage_index
from matching.types import (
    KIND_SIDE,
    NEED_FINANCING,
    NEED_LANDING,
    SERVICE_KINDS,
    STAGES,
    InstitutionProfile,
    ProjectProfile,
    Reason,
)

__all__ = [
    "FIELD_LABELS",
    "GENERIC_TERMS",
    "PairContext",
    "clause_tokens",
    "closest_phrases",
    "description_clauses",
    "description_part",
    "distinctive_terms",
    "pair_reasons",
    "reason_tone",
    "search_reasons",
    "split_clauses",
]

_CLAUSE_SPLIT = re.compile(r"[，。；、,;!！?？\n\r\t：:（）()【】\[\]《》“”\"|/]+|(?<=[a-z])\.\s")
_MAX_QUOTE = 36
_SIDE_NOUN = {"fund": "机构", "base": "基地", "platform": "平台"}
_CASE_VERB = {"fund": "已投", "base": "已落地", "platform": "已服务"}
_SIDE_OFFER = {"fund": NEED_FINANCING, "base": NEED_LANDING, "platform": "专业服务"}

#: Labels of the fields block that :mod:`embeddings.text` appends after the description
#: ("项目：…；行业：A、B"). Those lines repeat structured fields that other reasons already quote;
#: split at "：" they would yield label-only clauses such as 「项目」↔「行业」.
FIELD_LABELS: frozenset[str] = frozenset(
    "项目 行业 赛道 团队 知识产权 需求 机构 类型 阶段 服务".split()  # noqa: SIM905
)
_FIELD_LINE = re.compile(r"^\s*(?:" + "|".join(sorted(FIELD_LABELS, key=len, reverse=True)) + r")\s*[：:]")

#: Words too common in business descriptions to show as evidence of a match: places, deal words,
#: company boilerplate and fillers. They still count in BM25; they are only never quoted.
GENERIC_TERMS: frozenset[str] = frozenset(
    """
    北京 上海 深圳 广州 杭州 南京 苏州 成都 武汉 西安 天津 重庆 中国 全国 国内 国外 全球 国际 海外
    完成 投资 融资 万元 亿元 千万 数千万 数百万 人民币 美元 元 轮 天使轮 估值 领投 跟投 获得 获 资金
    这一 依赖 问题 产业 行业 领域 市场 公司 企业 集团 有限公司 项目 产品 服务 平台 技术 科技
    发展 创新 团队 客户 用户 解决方案 方案 提供 致力于 致力 专注 专注于 基于 实现 应用 管理 研发
    合作 机构 专业 核心 领先 成立 多个 多家 以上 成为 拥有 打造 帮助 推动 支持 业务 模式 需求
    阶段 资本 基金 创投 创业 初创 早期 中期 后期 成长 成长期 主要 能力 优势 国家 全面 相关 一家
    一站式 高效 优质 知名 新型 领先者 行业领先 重点 关注 覆盖 覆盖面 包括 通过 以及 进行
    愿意 寻找 找到 希望 保持 现阶段 计划 接下来 已经 正在 需要 一起 我们 他们 自己 方面 这个 那个
    可以 能够 目前 现在 开始 继续 进一步 期待 欢迎 陪伴 陪 走过 一直 还有 以后 之后 之前 已 经过
    一张 一批 一套 一种 一个 一位 几位 几个 几家 几年 两家 两个 两年 三家 多年 数年 之初 当时 当年
    company companies startup platform service services solution solutions technology business
    market customers users provide provides help helps new based
    """.split()  # noqa: SIM905 - a word list reads better than quoted items
)
#: Least IDF-weighted cosine at which two clauses count as saying the same thing; below it the
#: semantic reason is given without a quote rather than with an unconvincing pair.
PHRASE_FLOOR = 0.15
#: Least BM25 idf of a token that counts toward clause similarity: log(1 + 1.7) ~ 1, a token in
#: more than about 37% of the documents is boilerplate (the same sentence in every profile).
MIN_TERM_IDF = 1.0
#: Shortest clause worth quoting, in characters (shorter ones are labels or fragments).
MIN_CLAUSE_CHARS = 6


def description_part(text: str) -> str:
    """Return a composed profile text without its labelled fields block (the description only)."""
    lines = (text or "").splitlines()
    return "\n".join(line for line in lines if not _FIELD_LINE.match(line))


def split_clauses(text: str, min_chars: int = 2) -> list[str]:
    """Split a text into clauses at Chinese and Western punctuation, dropping tiny fragments."""
    parts = (p.strip(" .") for p in _CLAUSE_SPLIT.split(text or ""))
    return [p for p in parts if len(p) >= min_chars]


def distinctive_terms(
    terms: Sequence[str], doc_share: Callable[[str], float], max_share: float = 0.2
) -> tuple[str, ...]:
    """Return the terms worth quoting: no generic business word, in at most max_share of documents.

    Args:
        terms: candidate shared terms, best first (the order is kept).
        doc_share: fraction of the corpus's documents containing a term (0..1).
        max_share: largest document share a quoted term may have.
    """
    kept = [t for t in terms if _quotable(t) and doc_share(t) <= max_share]
    # "机器" says nothing "机器人" does not: keep the longer of nested terms.
    return tuple(t for t in kept if not any(t != o and t in o for o in kept))


def _quotable(token: str) -> bool:
    return token.lower() not in GENERIC_TERMS and token not in FIELD_LABELS and len(token) >= 2


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", text.lower())
    return {compact[i : i + 2] for i in range(len(compact) - 1)}


def description_clauses(text: str, max_clauses: int = 40) -> list[str]:
    """Return the clauses of a profile's description that phrase matching compares (at most max_clauses)."""
    return split_clauses(description_part(text), MIN_CLAUSE_CHARS)[:max_clauses]


def clause_tokens(clauses: Sequence[str], tokenize: Callable[[str], list[str]]) -> list[tuple[str, ...]]:
    """Return the distinct quotable tokens of each clause in text order (what phrase matching weighs)."""
    return [tuple(dict.fromkeys(t for t in tokenize(c) if _quotable(t))) for c in clauses]


def closest_phrases(
    text_a: str,
    text_b: str,
    tokenize: Callable[[str], list[str]],
    idf: Callable[[str], float],
    max_clauses: int = 40,
    floor: float = PHRASE_FLOOR,
    min_idf: float = MIN_TERM_IDF,
    tokens_a: Sequence[Sequence[str]] | None = None,
    tokens_b: Sequence[Sequence[str]] | None = None,
) -> tuple[str, str, tuple[str, ...]] | None:
    """Return the most similar description clause pair of two texts and the terms they share.

    tokens_a/tokens_b: the texts' :func:`clause_tokens` when already known (computed once per
    record when it is indexed), so a shown pair costs no tokenizing.

    Only the descriptions are compared (the labelled fields block is dropped), clauses shorter than
    MIN_CLAUSE_CHARS or made of generic words only are skipped, and generic words (listed, or with
    an idf below ``min_idf``, i.e. in more than about a third of the documents) weigh nothing.
    Clause pairs are scored by IDF-weighted token overlap normalised by both clauses' weight (a
    cosine over binary IDF-weighted token sets). Returns None when no pair reaches ``floor``.
    """
    clauses_a = description_clauses(text_a, max_clauses)
    clauses_b = description_clauses(text_b, max_clauses)
    if not clauses_a or not clauses_b:
        return None
    # Sets built in token order, as from the tokenizer: ties below are broken the same way.
    if tokens_a is None:
        tokens_a = clause_tokens(clauses_a, tokenize)
    if tokens_b is None:
        tokens_b = clause_tokens(clauses_b, tokenize)
    toks_a = [set(ts) for ts in tokens_a]
    toks_b = [set(ts) for ts in tokens_b]
    weight: dict[str, float] = {}

    def w(tokens: set[str]) -> float:
        total = 0.0
        for t in tokens:
            if t not in weight:
                value = idf(t)
                weight[t] = value if value >= min_idf else 0.0
            total += weight[t]
        return total

    best: tuple[float, int, int, tuple[str, ...]] = (0.0, -1, -1, ())
    norms_b = [w(tb) for tb in toks_b]
    for i, ta in enumerate(toks_a):
        na = w(ta)
        if na <= 0:
            continue
        for j, tb in enumerate(toks_b):
            shared = ta & tb
            if not shared or norms_b[j] <= 0:
                continue
            s = w(shared) / math.sqrt(na * norms_b[j])
            shared = {t for t in shared if weight[t] > 0}
            if s > best[0]:
                best = (s, i, j, tuple(sorted(shared, key=lambda t: -weight.get(t, 0.0))))
    if best[1] < 0:
        # Segmentation can split one term differently in two texts: fall back on character bigrams,
        # still only between clauses that carry a meaningful token.
        grams_b = [_bigrams(c) if norms_b[j] > 0 else set() for j, c in enumerate(clauses_b)]
        for i, ca in enumerate(clauses_a):
            ga = _bigrams(ca) if w(toks_a[i]) > 0 else set()
            for j, gb in enumerate(grams_b):
                if ga and gb:
                    s = len(ga & gb) / math.sqrt(len(ga) * len(gb))
                    if s > best[0]:
                        best = (s, i, j, ())
    if best[1] < 0 or best[0] < floor:
        return None
    return clauses_a[best[1]], clauses_b[best[2]], best[3]


def _quote(text: str) -> str:
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…"


def _list(items: Sequence[str], n: int = 4) -> str:
    shown = [i for i in items if i][:n]
    return "、".join(shown) + ("等" if len(items) > n else "")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _wan(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:g}"


@dataclass(frozen=True)
class PairContext:
    """Everything a pair's reasons may quote, beyond the two profiles.

    ``features`` are the raw feature values and ``contributions`` their signed share of the
    displayed score, in score points; the other fields are evidence found while scoring.
    """

    project: ProjectProfile
    institution: InstitutionProfile
    evidence: Evidence
    features: Mapping[str, float]
    contributions: Mapping[str, float]
    phrases: tuple[str, str, tuple[str, ...]] | None = None
    closest_case: ProjectProfile | None = None
    case_phrases: tuple[str, str, tuple[str, ...]] | None = None
    coinvest_partners: tuple[str, ...] = ()
    shared_terms: tuple[str, ...] = ()
    dense_raw: float | None = None


def _stage_name(project: ProjectProfile) -> str | None:
    idx = project_stage_index(project)
    return STAGES[idx] if idx is not None else None


def _reason_text(name: str, value: float, ctx: PairContext) -> str | None:
    """Return the Chinese sentence for one feature of one pair, or None when it has nothing to say."""
    p, inst, ev = ctx.project, ctx.institution, ctx.evidence
    side = KIND_SIDE.get(inst.kind, "fund")
    noun = _SIDE_NOUN[side]
    verb = _CASE_VERB[side]
    if name == "dense":
        head = (
            f"语义相近：项目与{noun}简介的相似度高于其余候选 {value:.1f} 个标准差"
            if value >= 0
            else f"语义偏远：项目与{noun}简介的相似度低于其余候选 {-value:.1f} 个标准差"
        )
        if ctx.phrases and value >= 0:
            a, b, _ = ctx.phrases
            head += f"；最接近的表述：项目「{_quote(a)}」↔ {noun}「{_quote(b)}」"
        return head
    if name == "dense_port_max":
        if ev.n_portfolio == 0:
            return None
        case = ctx.closest_case
        if value >= 0 and case is not None:
            text = f"相近案例：与该{noun}{verb}的「{case.name}」最相近"
            if ctx.case_phrases:
                a, b, _ = ctx.case_phrases
                text += f"（项目「{_quote(a)}」↔ 案例「{_quote(b)}」）"
            return text
        return f"案例偏远：与该{noun}{verb}的 {ev.n_portfolio} 个项目都不太相近"
    if name == "dense_port_mean":
        if ev.n_portfolio == 0:
            return None
        word, level = ("整体相近", "较高") if value >= 0 else ("整体偏远", "较低")
        return f"案例{word}：与该{noun}{verb}全部 {ev.n_portfolio} 个项目的平均相似度{level}"
    if name == "bm25":
        if value <= 0:
            return None
        terms = ctx.shared_terms
        if terms:
            return "关键词重合：" + "".join(f"「{t}」" for t in terms[:5])
        return f"关键词重合：BM25 相对得分 {value:.2f}"
    if name == "industry":
        if value == 0:
            return None
        primary = p.industries[0] if p.industries else ""
        if value >= 1:
            return f"行业契合：项目所属「{primary}」在该{noun}关注领域内"
        if value > 0:
            hit = [i for i in p.industries[1:] if i in inst.industries]
            return f"行业相关：项目涉及的「{_list(hit)}」在该{noun}关注领域内"
        return f"行业不符：项目所属「{primary}」不在该{noun}关注的{_list(inst.industries)}之内"
    if name == "industry_portfolio":
        share = ev.industry_share or {}
        hit = [i for i in p.industries if share.get(i)]
        if not hit:
            if ev.n_portfolio == 0 or not p.industries:
                return None
            return f"案例行业不同：该{noun}{verb}的 {ev.n_portfolio} 个项目中没有「{p.industries[0]}」"
        best = max(hit, key=lambda i: share.get(i, 0.0))
        return f"行业偏好（据案例推断）：该{noun}{verb}项目中 {_pct(share[best])} 属于「{best}」"
    if name == "industry_count":
        share = ev.industry_share or {}
        hit = [i for i in p.industries if share.get(i)]
        if not hit or value <= 0:
            return None
        n = round(math.expm1(value))
        return f"同行业案例：该{noun}{verb}过 {n} 个「{_list(hit, 2)}」项目"
    if name == "stage_count":
        stage = _stage_name(p)
        if stage is None or value <= 0:
            return None
        return f"同阶段案例：该{noun}有 {round(math.expm1(value))} 笔{verb}处于{stage}前后"
    if name == "stage_round":
        stage = _stage_name(p)
        idx = STAGES.index(stage) if stage in STAGES else None
        n = ev.round_counts[idx] if idx is not None else 0
        if n == 0 or value <= 0:
            return None
        return f"同轮次案例：该{noun}有 {n} 笔{verb}的轮次处于{stage}"
    if name == "stage":
        stage = _stage_name(p)
        if value == 0 or stage is None:
            return None
        prefs = _list([s for s in STAGES if s in inst.stages])
        if value >= 1:
            return f"阶段匹配：项目处于{stage}，{noun}偏好{prefs}"
        if value > 0:
            return f"阶段相近：项目处于{stage}，{noun}偏好{prefs}"
        return f"阶段偏离：项目处于{stage}，{noun}偏好{prefs}"
    if name == "stage_portfolio":
        stage = _stage_name(p)
        if stage is None or ev.n_with_stage == 0:
            return None
        if value <= 0:
            top = _list(ev.top_stages())
            return f"轮次不同：该{noun}{verb}项目多处于{top or '其他阶段'}，项目处于{stage}"
        return f"轮次偏好（据案例推断）：该{noun} {_pct(value)} 的{verb}轮次处于{stage}前后"
    if name == "amount":
        amt = p.amount_wan
        lo, hi = inst.ticket_min_wan, inst.ticket_max_wan
        if not amt or value == 0:
            return None
        if value > 0:
            if lo and hi:
                return f"金额匹配：拟融资 {_wan(amt)} 万元，在{noun}单笔 {_wan(lo)}–{_wan(hi)} 万元区间内"
            bound = f"起投 {_wan(lo)} 万元以上" if lo else f"单笔 {_wan(hi or 0)} 万元以内"
            return f"金额匹配：拟融资 {_wan(amt)} 万元，符合{noun}{bound}"
        if lo and amt < lo:
            return f"金额偏低：拟融资 {_wan(amt)} 万元，低于{noun}起投 {_wan(lo)} 万元"
        return f"金额偏高：拟融资 {_wan(amt)} 万元，高于{noun}单笔上限 {_wan(hi or 0)} 万元"
    if name in ("region", "region_base"):
        if value <= 0:
            return None
        place = p.city if value > 1 else p.province
        return f"地域：项目与{noun}同在{place}"
    if name == "region_portfolio":
        if value <= 0 or not p.province:
            return None
        return f"地域偏好（据案例推断）：该{noun} {_pct(value)} 的{verb}项目在{p.province}"
    if name == "services":
        wanted = [n for n in p.needs if n in SERVICE_KINDS]
        if not wanted or side == "fund":
            return None
        have = [n for n in wanted if n in inst.services]
        lack = [n for n in wanted if n not in inst.services]
        if not have:
            return f"服务缺口：项目需要{_list(wanted)}，该{noun}均不提供"
        if not lack:
            return f"服务匹配：项目需要{_list(wanted)}，该{noun}均可提供"
        return f"服务部分匹配：可提供{_list(have)}，不提供{_list(lack)}"
    if name == "need_side":
        if value == 0:
            return None
        if value > 0:
            return f"需求对口：项目需要{_SIDE_OFFER[side]}，正是该{noun}所能提供"
        return f"需求不对口：项目需要的是{_list(list(p.needs))}，而非{_SIDE_OFFER[side]}"
    if name == "activity":
        if ev.n_portfolio == 0:
            return f"活跃度：该{noun}尚无{verb}案例"
        return f"活跃度：该{noun}已有 {ev.n_portfolio} 个{verb}案例"
    if name == "recency":
        if ev.last_date is None:
            return None
        return f"最近动态：最近一次{verb}在 {ev.last_date[:7]}，近期加权案例数 {ev.recency:.1f}"
    if name == "coinvest":
        if value <= 0:
            return None
        partners = _list(list(ctx.coinvest_partners), 3)
        who = f"「{partners}」" if partners else ""
        return f"共同投资：与项目现有投资方{who}有 {math.expm1(value):.0f} 次共同投资"
    if name == "award":
        if value <= 0 or not p.award:
            return None
        return f"获奖：项目获{p.award}"
    if name == "group":
        if value <= 0 or not p.group:
            return None
        return f"组别：该{noun} {_pct(value)} 的{verb}项目与本项目同属{p.group}"
    return None


#: Heads of reasons that state a fit, and of reasons that state a mismatch. A reason is shown only
#: when its contribution has the sign its wording implies: a learned model can weigh a fact that
#: sounds good below the average candidate (collinear features share credit), and "行业偏好 … (-12.8)"
#: would read as a contradiction. Neutral heads (活跃度, 最近动态, 服务部分匹配) go with either sign.
_FIT_HEADS = frozenset(
    [
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
        "地域偏好",
        "服务匹配",
        "需求对口",
        "共同投资",
        "获奖",
        "组别",
    ]
)
_MISFIT_HEADS = frozenset(
    [
        "语义偏远",
        "案例偏远",
        "案例整体偏远",
        "案例行业不同",
        "行业不符",
        "阶段偏离",
        "轮次不同",
        "金额偏低",
        "金额偏高",
        "服务缺口",
        "需求不对口",
    ]
)


def reason_tone(text: str) -> int:
    """Return +1 when a reason's wording states a fit, -1 a mismatch, 0 a neutral fact."""
    head = re.split(r"[：（]", text, maxsplit=1)[0]
    return 1 if head in _FIT_HEADS else -1 if head in _MISFIT_HEADS else 0


def pair_reasons(ctx: PairContext, max_reasons: int = 6, min_points: float = 0.05) -> tuple[Reason, ...]:
    """Return the pair's reasons, largest absolute contribution first, each with its points.

    A reason whose wording contradicts the sign of its contribution is left out, so the list keeps
    the strongest fits and the real mismatches.
    """
    found: list[Reason] = []
    contributions = dict(ctx.contributions)
    # A base's extra weight on location is the same fact as the location match: show it once.
    if "region_base" in contributions and "region" in contributions:
        contributions["region"] += contributions.pop("region_base")
    # The activity-in-time features describe one fact (when the institution last acted): one reason.
    if "recency" in contributions:
        for name in ("recency_fast", "recency_slow", "idle"):
            contributions["recency"] += contributions.pop(name, 0.0)
    for name, points in contributions.items():
        if abs(points) < min_points:
            continue
        text = _reason_text(name, float(ctx.features.get(name, 0.0)), ctx)
        if text is None or reason_tone(text) * points < 0:
            continue
        found.append(Reason(text=f"{text} ({points:+.1f})", contribution=float(points), feature=name))
    found.sort(key=lambda r: -abs(r.contribution))
    return tuple(found[:max_reasons])


def search_reasons(
    dense_z: float,
    dense_points: float,
    shared_terms: Sequence[str],
    lexical_points: float,
    phrases: tuple[str, str, tuple[str, ...]] | None,
) -> tuple[Reason, ...]:
    """Return the reasons of one free-text search hit."""
    reasons = []
    word = "高于" if dense_z >= 0 else "低于"
    text = f"语义相近：与查询的相似度{word}其余结果 {abs(dense_z):.1f} 个标准差"
    if phrases is not None:
        text += f"；最接近的表述：「{_quote(phrases[1])}」"
    reasons.append(Reason(f"{text} ({dense_points:+.1f})", float(dense_points), "dense"))
    if shared_terms:
        terms = "".join(f"「{t}」" for t in shared_terms[:5])
        reasons.append(Reason(f"关键词：命中{terms} ({lexical_points:+.1f})", float(lexical_points), "bm25"))
    reasons.sort(key=lambda r: -abs(r.contribution))
    return tuple(reasons)
