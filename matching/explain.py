"""Readable Chinese reasons computed from a pair's real feature values and contributions.

Each reason states in plain words the facts behind it (the industries, stages, amounts, places,
services that matched or clashed), so two pairs with different features never read the same. No
reason names a statistic or an algorithm: closeness of two texts reads 业务方向相近, and a quote or a
keyword is shown only when it is distinctive for both texts (rare in the corpus and not on the
stop-list of function words, numbers and boilerplate in ``data/quote_stopwords.txt``). The signed
contribution stays on :class:`~matching.types.Reason` (the list orders by it) and is not written into
the text. A near-copy of what the institution already backed reads 可能与已投企业「X」构成竞争.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import matching.types as mt
from matching.features import Evidence, project_stage_index

__all__ = [
    "FIELD_LABELS",
    "GENERIC_TERMS",
    "JARGON",
    "KEYWORD_MAX_CHARS",
    "MIN_POINTS",
    "PairContext",
    "clause_tokens",
    "closest_phrases",
    "competitor_text",
    "description_clauses",
    "description_part",
    "distinctive_terms",
    "expand_terms",
    "is_keyword",
    "is_quotable",
    "pair_reasons",
    "reason_tone",
    "split_clauses",
]

_CLAUSE_SPLIT = re.compile(r"[，。；、,;!！?？\n\r\t：:（）()【】\[\]《》“”\"|/]+|(?<=[a-z])\.\s")
_MAX_QUOTE = 36
#: Keywords quoted at most per reason.
_MAX_TERMS = 3
_SIDE_NOUN = {"fund": "机构", "base": "基地", "platform": "平台"}
_CASE_VERB = {"fund": "已投", "base": "已落地", "platform": "已服务"}
_SIDE_OFFER = {"fund": mt.NEED_FINANCING, "base": mt.NEED_LANDING, "platform": "专业服务"}
_CASE_NOUN = {"fund": "投资", "base": "落地", "platform": "服务"}
_COMPETITOR_OF = {"fund": "已投企业", "base": "已落地企业", "platform": "已服务企业"}

#: Labels of the fields block that :mod:`embeddings.text` appends after the description
#: ("项目：…；行业：A、B"). Those lines repeat structured fields that other reasons already quote;
#: split at "：" they would yield label-only clauses such as 「项目」↔「行业」.
FIELD_LABELS: frozenset[str] = frozenset(
    "项目 行业 赛道 团队 知识产权 需求 机构 类型 阶段 服务".split()  # noqa: SIM905
)
_FIELD_LINE = re.compile(r"^\s*(?:" + "|".join(sorted(FIELD_LABELS, key=len, reverse=True)) + r")\s*[：:]")

#: Words too common in business descriptions to show as evidence of a match: places, deal words,
#: company boilerplate and fillers, plus the stop-list file ``data/quote_stopwords.txt`` (function
#: words, numbers and ordinals, report boilerplate). They still count in ranking; they are only never
#: quoted, and weigh nothing when the clauses of two texts are compared.
_BUILT_IN = frozenset(
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


def _stop_list() -> frozenset[str]:
    text = resources.files("matching").joinpath("data/quote_stopwords.txt").read_text(encoding="utf-8")
    words = (w for line in text.splitlines() for w in line.split("#", 1)[0].split())
    return frozenset(unicodedata.normalize("NFKC", w).lower() for w in words)


GENERIC_TERMS: frozenset[str] = _BUILT_IN | _stop_list()

#: Statistics and algorithm words no reason may contain (a test reads every reason of the demo).
JARGON: tuple[str, ...] = tuple(
    "标准差 BM25 bm25 z-score z值 z分 向量 余弦 相对得分 相似度 cosine IDF 归一 分位 权重 特征 加权".split()  # noqa: SIM905
)

#: Numbers, ordinals and counted amounts: 1300, 第二, 三家, 1300万元, 50%, 2019年, 十余个.
_NUMERIC = re.compile(
    r"^(?:第?[\d０-９.,%％]*[零〇一二两三四五六七八九十百千万亿几数多余]*[\d.,%％]*"
    r"(?:万元|亿元|万|亿|元|年|月|日|天|个|家|款|项|台|套|次|倍|人|位|名|件|吨|亩|平米|平方米|km|kg|m|%)?)$",
    re.IGNORECASE,
)
_HAS_WORD = re.compile(r"[a-zA-Z\u4e00-\u9fff]")


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
    kept = [t for t in terms if _is_word(t) and doc_share(t) <= max_share]
    # "机器" says nothing "机器人" does not: keep the longer of nested terms.
    return tuple(t for t in kept if not any(len(o) > len(t) and t in o for o in kept))


#: The shape of a place name (「南通市」, 「海淀区」, 「州市」 cut out of 「温州市」): the region has its own
#: reason; as a keyword a place says nothing. A term of this shape whose stem is several words is no
#: place (「智慧城市」 is 智慧城 + 市, 「无人超市」 无人超 + 市): :func:`is_place` reads the stem.
_PLACE = re.compile(r"^[\u4e00-\u9fff]{1,4}[省市县区]$")


@functools.lru_cache(maxsize=65_536)
def _quotable_word(t: str) -> bool:
    """Return whether a normalised token is two characters or more, a word (not a number, ordinal or
    amount), and on no stop-list (remembered per token: the same words recur in every list)."""
    if len(t) < 2 or t in GENERIC_TERMS or t in FIELD_LABELS or not _HAS_WORD.search(t):
        return False
    return not _NUMERIC.match(t)


def _normalised(token: str) -> str:
    return unicodedata.normalize("NFKC", token or "").strip().lower()


def _is_word(term: str) -> bool:
    """Return :func:`_quotable_word` of a term as written (place names are for the caller to judge)."""
    return _quotable_word(_normalised(term))


@functools.lru_cache(maxsize=65_536)
def is_quotable(token: str) -> bool:
    """Return whether one token may be quoted as evidence: a word that is no number, ordinal, amount,
    stop-listed word or place-shaped word (a token is one word: its shape is enough)."""
    t = _normalised(token)
    return _quotable_word(t) and not (len(t) >= 3 and _PLACE.match(t))


def is_place(term: str, words: Callable[[str], Sequence[str]]) -> bool:
    """Return whether a term is a place name: one word (the stem) and 省, 市, 县 or 区 (「苏州市」,
    「海淀区」, 「州市」), not a stem of several words (「智慧城市」, 「无人超市」). A bare name without
    the suffix (「南通」) is the dictionary's call: :func:`embeddings.tokenize.content_word`."""
    t = _normalised(term)
    return bool(_PLACE.match(t)) and len(words(t[:-1])) <= 1


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", text.lower())
    return {compact[i : i + 2] for i in range(len(compact) - 1)}


def description_clauses(text: str, max_clauses: int = 40) -> list[str]:
    """Return the clauses of a profile's description that phrase matching compares (at most max_clauses)."""
    return split_clauses(description_part(text), MIN_CLAUSE_CHARS)[:max_clauses]


#: A registered company name (place, brand, trade, legal form): two clauses that share words only in
#: their companies' names (「西安…空间信息有限公司创办于2012年」, 「北京…空间信息有限公司研发了…」) do not
#: say the same thing, so the name's words do not count when clauses are compared.
_COMPANY_NAME = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]{2,16}?(?:股份有限公司|有限责任公司|有限公司)")


def clause_tokens(clauses: Sequence[str], tokenize: Callable[[str], list[str]]) -> list[tuple[str, ...]]:
    """Return the distinct quotable tokens of each clause in text order (what phrase matching weighs),
    leaving out the words of company names."""
    return [
        tuple(dict.fromkeys(t for t in tokenize(_COMPANY_NAME.sub("，", c)) if is_quotable(t)))
        for c in clauses
    ]


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

    project: mt.ProjectProfile
    institution: mt.InstitutionProfile
    evidence: Evidence
    features: Mapping[str, float]
    contributions: Mapping[str, float]
    phrases: tuple[str, str, tuple[str, ...]] | None = None
    closest_case: mt.ProjectProfile | None = None
    case_phrases: tuple[str, str, tuple[str, ...]] | None = None
    coinvest_partners: tuple[str, ...] = ()
    shared_terms: tuple[str, ...] = ()
    dense_raw: float | None = None
    #: Name of the backed project this one nearly copies (a likely competitor), if any.
    competitor: str | None = None


def _stage_name(project: mt.ProjectProfile) -> str | None:
    idx = project_stage_index(project)
    return mt.STAGES[idx] if idx is not None else None


def _same_words(a: str, b: str) -> bool:
    """Return whether two clauses say nearly the same words (a copied sentence is no evidence of fit)."""
    ga, gb = _bigrams(a), _bigrams(b)
    return bool(ga and gb) and len(ga & gb) / min(len(ga), len(gb)) >= 0.6


#: Least total length (characters) of the distinctive words two quoted clauses share: one two-character
#: word in common (「装修」, 「燃气」) does not make two clauses say the same thing.
MIN_SHARED_CHARS = 3


def _quoted_pair(found: tuple[str, str, tuple[str, ...]] | None) -> tuple[str, str] | None:
    """Return the two clauses worth quoting side by side: they share distinctive words and differ."""
    if found is None:
        return None
    a, b, shared = found
    if sum(len(t) for t in shared if is_quotable(t)) < MIN_SHARED_CHARS or _same_words(a, b):
        return None
    return a, b


_WORD_CHAR = re.compile(r"[0-9a-z\u4e00-\u9fff]")


@functools.lru_cache(maxsize=4096)
def _folded(text: str) -> str:
    """Return NFKC-normalised lower-case text (remembered: a shown record's document recurs)."""
    return unicodedata.normalize("NFKC", text).lower()


#: Longest shared run quoted as a keyword. Two texts that share a longer run share a passage (a copied or
#: templated sentence: 「这个想法最早出现在读研期间…」), which says nothing about fit: none of it is quoted.
KEYWORD_MAX_CHARS = 10
#: Approximate shares and counts (「约三成」, 「近两倍」): numbers in words, never keywords.
_APPROX = re.compile(r"^[约近超逾达共]?[零〇一二两三四五六七八九十百千万几数半多]+[成倍]$")


@functools.lru_cache(maxsize=65_536)
def is_keyword(
    term: str, words: Callable[[str], Sequence[str]], names: Callable[[str], bool] | None = None
) -> bool:
    """Return whether a shared run may be quoted as a keyword: quotable, no approximate number or place,
    made of content words only (none on the stop-list, whose function words include the joining
    characters such as 的 or 和: 「b轮」 is 「b」「轮」, a deal word), and ending in a word that names
    something (「儿童护眼台灯」, not 「供应商手里」 or 「看到」).

    Args:
        words: the run's words as it reads, stopwords kept (``embeddings.tokenize.words``).
        names: whether a word names something (``embeddings.tokenize.content_word``); None skips
            that test.
    """
    t = _normalised(term)
    if not _quotable_word(t) or _APPROX.match(t) or is_place(t, words):
        return False
    found = [w for w in words(term) if w]
    if not found or any(w in GENERIC_TERMS for w in found):
        return False
    return names is None or names(found[-1])


def expand_terms(
    terms: Sequence[str],
    text_a: str,
    text_b: str,
    words: Callable[[str], Sequence[str]],
    max_chars: int = KEYWORD_MAX_CHARS,
    names: Callable[[str], bool] | None = None,
) -> tuple[str, ...]:
    """Return the shared terms grown to the longest run both texts hold, as keywords (``words`` and
    ``names`` as :func:`is_keyword` reads them).

    A segmenter cuts 「全屋智能中控屏」 into 「全屋」「智能」「中控」「屏」; quoted alone the pieces read as
    noise. Each term grows left and right while both texts still contain the run. A run longer than
    max_chars is a shared passage, not a keyword, and is dropped with its term; so is a run that is
    not a keyword (:func:`is_keyword`: 「通过大赛认识更多」), unless a shorter stretch of its whole words
    around the term is one (「做掌上彩超」 → 「掌上彩超」). Terms inside a longer one are dropped and
    the order is kept.
    """
    a, b = _folded(text_a or ""), _folded(text_b or "")
    out: list[str] = []
    for term in terms:
        best = term
        start = a.find(term)
        while start >= 0 and len(best) <= max_chars:
            lo, hi = start, start + len(term)
            grown = True
            while grown and hi - lo <= max_chars:
                grown = False
                if lo > 0 and _WORD_CHAR.match(a[lo - 1]) and a[lo - 1 : hi] in b:
                    lo, grown = lo - 1, True
                if hi - lo <= max_chars and hi < len(a) and _WORD_CHAR.match(a[hi]) and a[lo : hi + 1] in b:
                    hi, grown = hi + 1, True
            if hi - lo > len(best):
                best = a[lo:hi]
            start = a.find(term, start + 1)
        if len(best) > max_chars:
            continue  # a shared passage: nothing of it is quoted
        # the grown run, else its longest stretch of whole words around the term that is a keyword
        # (「做掌上彩超」 grew over the verb both texts put before the product), else the term
        for found in dict.fromkeys((best, *_word_runs(best, term, words), term)):
            if (
                found not in out
                and is_keyword(found, words, names)
                and _reads_as_words(found, a, words)
                and _reads_as_words(found, b, words)
            ):
                out.append(found)
                break
    return tuple(t for t in out if not any(t != o and t in o for o in out))


def _word_runs(run: str, term: str, words: Callable[[str], Sequence[str]]) -> list[str]:
    """Return the stretches of the run's own words that hold the term, longest first (the run left
    out): 「做掌上彩超」 around 「掌上」 gives 「掌上彩超」, 「做掌上」 and 「掌上」."""
    cut = words(run)
    if "".join(cut) != run:
        return []
    edges = [0, *itertools.accumulate(len(w) for w in cut)]
    spans = [
        (lo, hi) for lo in edges for hi in edges if hi > lo and (hi - lo) < len(run) and term in run[lo:hi]
    ]
    return [run[lo:hi] for lo, hi in sorted(spans, key=lambda span: (span[0] - span[1], span[0]))]


def _reads_as_words(run: str, text: str, words: Callable[[str], Sequence[str]]) -> bool:
    """Return whether the run stands in the (folded) text as whole words somewhere: it starts and ends
    where the text's own words do. 「业软件」 inside 「工业软件」, 「族自治」 inside 「回族自治区」 or
    「哈尔」 inside 「哈尔滨」 are pieces of other words, not terms the text uses."""
    start = text.find(run)
    while start >= 0:
        lo, hi = start, start + len(run)
        while lo > 0 and _WORD_CHAR.match(text[lo - 1]):
            lo -= 1
        while hi < len(text) and _WORD_CHAR.match(text[hi]):
            hi += 1
        stretch = text[lo:hi]
        cut = words(stretch)
        edges = {0, *itertools.accumulate(len(w) for w in cut)}
        # (a cut that does not spell the stretch back, e.g. around a symbol, cannot say: accepted)
        if "".join(cut) != stretch or (start - lo in edges and start + len(run) - lo in edges):
            return True
        start = text.find(run, start + 1)
    return False


def _month(date: str) -> str:
    year, _, rest = date.partition("-")
    month = rest[:2].lstrip("0")
    return f"{year} 年 {month} 月" if month else f"{year} 年"


def _reason_text(name: str, value: float, ctx: PairContext) -> str | None:
    """Return the Chinese sentence for one feature of one pair, or None when it has nothing to say."""
    p, inst, ev = ctx.project, ctx.institution, ctx.evidence
    side = mt.KIND_SIDE.get(inst.kind, "fund")
    noun = _SIDE_NOUN[side]
    verb = _CASE_VERB[side]
    if name == "dense":
        if value < 0:
            return f"业务方向较远：项目介绍与该{noun}关注的方向差别较大"
        head = f"业务方向相近：项目介绍与该{noun}关注的方向接近"
        quoted = _quoted_pair(ctx.phrases)
        if quoted:
            head += f"（项目「{_quote(quoted[0])}」；{noun}「{_quote(quoted[1])}」）"
        return head
    if name == "dense_port_max":
        if ev.n_portfolio == 0:
            return None
        case = ctx.closest_case
        if value >= 0 and case is not None:
            if ctx.competitor is not None:
                return None  # the competition flag says more about the same case
            text = f"与已投项目相近：与该{noun}{verb}的「{case.name}」业务相近"
            quoted = _quoted_pair(ctx.case_phrases)
            if quoted:
                text += f"（本项目「{_quote(quoted[0])}」；已投项目「{_quote(quoted[1])}」）"
            return text
        return f"与已投项目不同：与该{noun}{verb}的 {ev.n_portfolio} 个项目业务都不太相近"
    if name == "dense_port_mean":
        if ev.n_portfolio == 0:
            return None
        if value >= 0:
            return f"已投组合整体相近：与该{noun}{verb}的 {ev.n_portfolio} 个项目总体方向一致"
        return f"已投组合整体较远：与该{noun}{verb}的 {ev.n_portfolio} 个项目总体方向不同"
    if name == "bm25":
        terms = [t for t in ctx.shared_terms if _is_word(t)]  # keywords: is_keyword judged the rest
        if value <= 0 or not terms:
            return None
        return "共同关键词：" + "".join(f"「{t}」" for t in terms[:_MAX_TERMS])
    if name == "industry":
        if value == 0:
            return None
        primary = p.industries[0] if p.industries else ""
        if value >= 1:
            return f"行业一致：项目所属「{primary}」正是该{noun}关注的领域"
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
            return f"已投行业不同：该{noun}{verb}的 {ev.n_portfolio} 个项目中没有「{p.industries[0]}」"
        best = max(hit, key=lambda i: share.get(i, 0.0))
        return f"常投行业：该{noun}{verb}的项目中 {_pct(share[best])} 属于「{best}」"
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
        return f"同阶段案例：该{noun}有 {round(math.expm1(value))} 个{verb}项目处于{stage}前后"
    if name == "stage_round":
        stage = _stage_name(p)
        idx = mt.STAGES.index(stage) if stage in mt.STAGES else None
        n = ev.round_counts[idx] if idx is not None else 0
        if n == 0 or value <= 0:
            return None
        return f"同轮次案例：该{noun}有 {n} 个{verb}项目的轮次处于{stage}"
    if name == "stage":
        stage = _stage_name(p)
        if value == 0 or stage is None:
            return None
        prefs = _list([s for s in mt.STAGES if s in inst.stages])
        if value >= 1:
            return f"阶段契合：项目处于{stage}，该{noun}偏好{prefs}"
        if value > 0:
            return f"阶段相近：项目处于{stage}，该{noun}偏好{prefs}"
        return f"阶段不符：项目处于{stage}，该{noun}偏好{prefs}"
    if name == "stage_portfolio":
        stage = _stage_name(p)
        if stage is None or ev.n_with_stage == 0:
            return None
        if value <= 0:
            top = _list(ev.top_stages())
            return f"常投阶段不同：该{noun}{verb}的项目多处于{top or '其他阶段'}，本项目处于{stage}"
        return f"常投阶段：该{noun} {_pct(value)} 的{verb}项目处于{stage}前后"
    if name == "amount":
        amt = p.amount_wan
        lo, hi = inst.ticket_min_wan, inst.ticket_max_wan
        if not amt or value == 0:
            return None
        if value > 0:
            if lo and hi:
                return f"金额合适：拟融资 {_wan(amt)} 万元，在该{noun}单笔 {_wan(lo)}–{_wan(hi)} 万元范围内"
            bound = f"起投 {_wan(lo)} 万元以上" if lo else f"单笔 {_wan(hi or 0)} 万元以内"
            return f"金额合适：拟融资 {_wan(amt)} 万元，符合该{noun}{bound}"
        if lo and amt < lo:
            return f"金额偏低：拟融资 {_wan(amt)} 万元，低于该{noun}起投 {_wan(lo)} 万元"
        return f"金额偏高：拟融资 {_wan(amt)} 万元，高于该{noun}单笔上限 {_wan(hi or 0)} 万元"
    if name in ("region", "region_base"):
        if value <= 0:
            return None
        place = p.city if value > 1 else p.province
        return f"所在地区：项目与该{noun}同在{place}"
    if name == "region_portfolio":
        if value <= 0 or not p.province:
            return None
        return f"常投地区：该{noun} {_pct(value)} 的{verb}项目在{p.province}"
    if name == "services":
        wanted = [n for n in p.needs if n in mt.SERVICE_KINDS]
        if not wanted or side == "fund":
            return None
        have = [n for n in wanted if n in inst.services]
        lack = [n for n in wanted if n not in inst.services]
        if not have:
            return f"服务不对口：项目需要{_list(wanted)}，该{noun}均不提供"
        if not lack:
            return f"服务对口：项目需要{_list(wanted)}，该{noun}均可提供"
        return f"服务部分对口：可提供{_list(have)}，不提供{_list(lack)}"
    if name == "need_side":
        if value == 0:
            return None
        if value > 0:
            return f"需求对口：项目需要{_SIDE_OFFER[side]}，正是该{noun}所能提供"
        return f"需求不对口：项目需要的是{_list(list(p.needs))}，而非{_SIDE_OFFER[side]}"
    if name == "activity":
        if ev.n_portfolio == 0:
            return f"活跃程度：该{noun}尚无{verb}项目"
        return f"活跃程度：该{noun}已有 {ev.n_portfolio} 个{verb}项目"
    if name == "recency":
        if ev.last_date is None:
            return None
        return f"最近动态：该{noun}最近一次{_CASE_NOUN[side]}在 {_month(ev.last_date)}"
    if name == "coinvest":
        if value <= 0:
            return None
        partners = _list(list(ctx.coinvest_partners), 3)
        who = f"「{partners}」" if partners else ""
        return f"共同投资：该{noun}与项目现有投资方{who}合作投资过 {math.expm1(value):.0f} 次"
    if name == "award":
        if value <= 0 or not p.award:
            return None
        return f"获奖：项目获{p.award}"
    if name == "group":
        if value <= 0 or not p.group:
            return None
        return f"组别：该{noun} {_pct(value)} 的{verb}项目与本项目同属{p.group}"
    return None


def competitor_text(ctx: PairContext) -> str | None:
    """Return the competition flag of a pair: the project nearly copies one the institution backed."""
    if ctx.competitor is None:
        return None
    side = mt.KIND_SIDE.get(ctx.institution.kind, "fund")
    return f"可能与{_COMPETITOR_OF[side]}「{ctx.competitor}」构成竞争"


#: Heads of reasons that state a fit, and of reasons that state a mismatch. A reason is shown only
#: when its contribution has the sign its wording implies: a learned model can weigh a fact that
#: sounds good below the average candidate (collinear features share credit), and "常投行业 …" shown
#: as a minus would read as a contradiction. Neutral heads (活跃程度, 最近动态, 服务部分对口) go with
#: either sign.
_FIT_HEADS = frozenset(
    """
    业务方向相近 与已投项目相近 已投组合整体相近 共同关键词 行业一致 行业相关 常投行业 同行业案例 同阶段案例 同轮次案例 阶段契合 阶段相近 常投阶段
    金额合适 所在地区 常投地区 服务对口 需求对口 共同投资 获奖 组别
    """.split()  # noqa: SIM905 - a word list reads better than quoted items
)
_MISFIT_HEADS = frozenset(
    """
    业务方向较远 与已投项目不同 已投组合整体较远 已投行业不同 行业不符 阶段不符 常投阶段不同 金额偏低 金额偏高 服务不对口 需求不对口
    """.split()  # noqa: SIM905 - a word list reads better than quoted items
)


def reason_tone(text: str) -> int:
    """Return +1 when a reason's wording states a fit, -1 a mismatch, 0 a neutral fact."""
    head = re.split(r"[：（]", text, maxsplit=1)[0]
    return 1 if head in _FIT_HEADS else -1 if head in _MISFIT_HEADS else 0


#: Contribution given to the competition flag under the "avoid" policy (it orders the reasons only:
#: the list itself is reordered by the service).
COMPETITOR_POINTS = -100.0


#: Least absolute contribution (score points) of a reason that is shown.
MIN_POINTS = 0.05


def pair_reasons(
    ctx: PairContext, max_reasons: int = 6, min_points: float = MIN_POINTS
) -> tuple[mt.Reason, ...]:
    """Return the pair's reasons, largest absolute contribution first.

    A reason whose wording contradicts the sign of its contribution is left out, so the list keeps
    the strongest fits and the real mismatches. The competition flag, when the project nearly
    copies one the institution backed, always comes first (negative when the institution avoids
    competitors, neutral when it welcomes them). Texts are written in that order until the list is
    full (the rest would be cut).
    """
    found: list[mt.Reason] = []
    contributions = dict(ctx.contributions)
    # A base's extra weight on location is the same fact as the location match: show it once.
    if "region_base" in contributions and "region" in contributions:
        contributions["region"] += contributions.pop("region_base")
    # The activity-in-time features describe one fact (when the institution last acted): one reason.
    if "recency" in contributions:
        for name in ("recency_fast", "recency_slow", "idle"):
            contributions["recency"] += contributions.pop(name, 0.0)
    ordered = sorted(
        ((name, points) for name, points in contributions.items() if abs(points) >= min_points),
        key=lambda item: -abs(item[1]),
    )
    for name, points in ordered:
        if len(found) >= max_reasons:
            break
        text = _reason_text(name, float(ctx.features.get(name, 0.0)), ctx)
        if text is None or reason_tone(text) * points < 0:
            continue
        found.append(mt.Reason(text=text, contribution=float(points), feature=name))
    flag = competitor_text(ctx)
    if flag is not None:
        avoid = getattr(ctx.institution, "competitor_policy", "avoid") != "welcome"
        first = mt.Reason(text=flag, contribution=COMPETITOR_POINTS if avoid else 0.0, feature="competitor")
        return (first, *found[: max_reasons - 1])
    return tuple(found[:max_reasons])
