"""Infer an institution's industry and stage preferences from its description text.

Used where an institution states no preferences, and checked against real portfolio counts:

    python -m evaluation.preferences [--data ../shared/data/smoothnlp_cn] [--embedder e5]

The check reads SmoothNLP's investor profiles (description + real portfolio industry and round
counts), infers preferences from the description alone and reports how often they agree with
what the investor actually did, next to a prior that always answers the most common labels.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matching.features import round_stage_index

__all__ = [
    "INDUSTRY_KEYWORDS",
    "STAGE_GROUPS",
    "infer_industries",
    "infer_stage_groups",
    "main",
    "parse_counts",
    "stage_group",
]

#: Industry label (the IT桔子 / SmoothNLP taxonomy) -> words that signal it in a description.
INDUSTRY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "企业服务": ("企业服务", "SaaS", "saas", "B2B", "云计算", "信息技术", "软件", "TMT", "IT"),
    "医疗": ("医疗", "医药", "生物", "健康", "大健康", "医院", "器械", "生命科学", "制药"),
    "金融": ("金融", "支付", "保险", "银行", "证券", "互联网金融", "财富管理", "区块链"),
    "电商消费": ("消费", "电商", "零售", "品牌", "新消费", "消费升级", "快消"),
    "文娱内容游戏": ("文化", "娱乐", "游戏", "传媒", "内容", "影视", "媒体", "文娱", "动漫"),
    "生活服务": ("生活服务", "本地生活", "O2O", "餐饮", "家政"),
    "硬件": ("硬件", "智能硬件", "芯片", "半导体", "电子", "物联网", "消费电子"),
    "智能制造": ("智能制造", "制造", "工业", "先进制造", "装备", "机器人", "自动化"),
    "高科技": ("高科技", "科技", "技术创新", "硬科技", "前沿技术"),
    "汽车交通": ("汽车", "出行", "交通", "新能源汽车", "自动驾驶"),
    "教育": ("教育", "培训", "学习", "在线教育"),
    "人工智能": ("人工智能", "AI", "机器学习", "深度学习", "计算机视觉", "语音识别"),
    "VR\\AR": ("VR", "AR", "虚拟现实", "增强现实"),
    "社区社交": ("社交", "社区"),
    "房产": ("房产", "地产", "房地产", "物业", "不动产"),
    "体育健身": ("体育", "健身", "运动"),
    "旅游": ("旅游", "酒店", "旅行"),
    "物流仓储": ("物流", "仓储", "供应链", "快递"),
    "大数据": ("大数据", "数据"),
    "工具软件与服务": ("工具", "应用软件", "移动互联网"),
    "农业": ("农业", "农村", "食品", "养殖"),
    "无人机": ("无人机",),
}

#: Stage groups the portfolio rounds and the description are compared on.
STAGE_GROUPS: tuple[str, ...] = ("early", "growth", "late")
_STAGE_WORDS: dict[str, tuple[str, ...]] = {
    "early": ("早期", "天使", "种子", "初创", "孵化", "创业早期", "起步"),
    "growth": ("成长期", "成长型", "A轮", "B轮", "中期", "扩张期", "VC"),
    "late": (
        "中后期",
        "后期",
        "Pre-IPO",
        "pre-ipo",
        "并购",
        "成熟期",
        "上市",
        "定增",
        "PE",
        "私募股权",
        "Pre-IPO",
    ),
}
_ALL_STAGES = ("各个阶段", "全阶段", "各阶段", "全生命周期", "不同阶段")
_COUNT_ITEM = re.compile(r"([^\s、,，]+?)(\d+)家")


def parse_counts(text: str | None) -> list[tuple[str, int]]:
    """Parse "企业服务118家 电商消费114家" or "A轮426家、B轮216家" into (label, count), as written."""
    return [(m.group(1), int(m.group(2))) for m in _COUNT_ITEM.finditer(text or "")]


def stage_group(round_label: str) -> str | None:
    """Return the stage group of a round label: early (seed to Pre-A), growth (A, B), late (C on)."""
    idx = round_stage_index(round_label)
    if idx is None:
        return None
    return "early" if idx <= 2 else "growth" if idx <= 3 else "late"


def _keyword_scores(text: str) -> dict[str, float]:
    """Count keyword hits per industry; longer keywords count more (they are more specific)."""
    scores: dict[str, float] = {}
    for label, words in INDUSTRY_KEYWORDS.items():
        hits = sum(text.count(w) * (1.0 + 0.1 * len(w)) for w in words)
        if hits:
            scores[label] = hits
    return scores


def infer_industries(
    text: str,
    top: int = 3,
    label_similarity: Mapping[str, float] | None = None,
    prior: Sequence[str] = (),
) -> list[str]:
    """Return the top industries a description signals, best first.

    Args:
        text: the institution's description.
        top: how many labels to return.
        label_similarity: optional cosine of the text to each label's prototype (embedding
            evidence); breaks ties and fills in when no keyword matches.
        prior: labels to fall back on, most common first, when nothing else decides.
    """
    scores = _keyword_scores(text or "")
    ranked: dict[str, float] = {label: 10.0 * s for label, s in scores.items()}
    if label_similarity:
        values = np.array(list(label_similarity.values()))
        z = (values - values.mean()) / (values.std() or 1.0)
        for label, zi in zip(label_similarity, z, strict=True):
            ranked[label] = ranked.get(label, 0.0) + float(zi)
    for rank, label in enumerate(prior):
        ranked.setdefault(label, -100.0 - rank)
    return [label for label, _ in sorted(ranked.items(), key=lambda kv: -kv[1])[:top]]


def infer_stage_groups(text: str) -> tuple[str, ...]:
    """Return the stage groups a description names (all three for "各个阶段"), or () when silent."""
    text = text or ""
    if any(w in text for w in _ALL_STAGES):
        return STAGE_GROUPS
    return tuple(g for g in STAGE_GROUPS if any(w in text for w in _STAGE_WORDS[g]))


@dataclass(frozen=True)
class Agreement:
    """How often preferences inferred from text agree with real portfolio counts."""

    n_industry: int
    top1_in_top3: float
    precision_at_3: float
    prior_top1_in_top3: float
    prior_precision_at_3: float
    n_stage: int
    stage_coverage: float
    stage_agreement: float
    prior_stage_agreement: float


def _label_similarities(
    descriptions: Sequence[str], embedder_spec: str, cache: Path
) -> list[dict[str, float]]:
    """Return per description the cosine to each industry prototype ("行业：label，keywords")."""
    from embeddings import load_embedder
    from evaluation.benchmark import encode_cached

    embedder = load_embedder(embedder_spec)
    labels = list(INDUSTRY_KEYWORDS)
    protos = embedder.encode_queries(
        [f"投资领域：{lb}，" + "、".join(INDUSTRY_KEYWORDS[lb]) for lb in labels]
    )
    docs = encode_cached(embedder, dict(enumerate(descriptions)), cache / "smoothnlp-descriptions.npz")
    matrix: NDArray[np.float32] = np.vstack([docs[i] for i in range(len(descriptions))])
    sims = matrix @ protos.T
    return [dict(zip(labels, row.tolist(), strict=True)) for row in sims]


def agreement(
    rows: Sequence[Mapping[str, str]], similarities: Sequence[Mapping[str, float]] | None = None
) -> Agreement:
    """Compare text-inferred preferences with the portfolio counts of investors with a description."""
    usable = [r for r in rows if (r.get("description") or "").strip()]
    # The prior: the most frequent portfolio industries over all investors.
    freq: Counter[str] = Counter()
    for r in rows:
        for label, n in parse_counts(r.get("portfolio_industries")):
            freq[label] += n
    prior = [label for label, _ in freq.most_common() if label in INDUSTRY_KEYWORDS]
    top1, p3, prior_top1, prior_p3 = [], [], [], []
    stage_hits, stage_prior, covered = [], [], 0
    group_freq: Counter[str] = Counter()
    for r in rows:
        for label, n in parse_counts(r.get("portfolio_rounds")):
            g = stage_group(label)
            if g:
                group_freq[g] += n
    prior_group = group_freq.most_common(1)[0][0] if group_freq else "growth"
    n_stage = 0
    for j, r in enumerate(usable):
        truth = [lb for lb, _ in sorted(parse_counts(r.get("portfolio_industries")), key=lambda t: -t[1])]
        truth = [lb for lb in truth if lb != "其他"][:3]
        if truth:
            sims = None if similarities is None else similarities[j]
            guess = infer_industries(r["description"], 3, sims, prior)
            top1.append(1.0 if guess and guess[0] in truth else 0.0)
            p3.append(len(set(guess) & set(truth)) / 3)
            prior_top1.append(1.0 if prior[0] in truth else 0.0)
            prior_p3.append(len(set(prior[:3]) & set(truth)) / 3)
        groups: Counter[str] = Counter()
        for label, n in parse_counts(r.get("portfolio_rounds")):
            g = stage_group(label)
            if g:
                groups[g] += n
        if not groups:
            continue
        n_stage += 1
        dominant = groups.most_common(1)[0][0]
        stage_prior.append(1.0 if dominant == prior_group else 0.0)
        inferred = infer_stage_groups(r["description"])
        if inferred and inferred != STAGE_GROUPS:
            covered += 1
            stage_hits.append(1.0 if dominant in inferred else 0.0)
    return Agreement(
        n_industry=len(top1),
        top1_in_top3=float(np.mean(top1)) if top1 else 0.0,
        precision_at_3=float(np.mean(p3)) if p3 else 0.0,
        prior_top1_in_top3=float(np.mean(prior_top1)) if prior_top1 else 0.0,
        prior_precision_at_3=float(np.mean(prior_p3)) if prior_p3 else 0.0,
        n_stage=n_stage,
        stage_coverage=covered / n_stage if n_stage else 0.0,
        stage_agreement=float(np.mean(stage_hits)) if stage_hits else 0.0,
        prior_stage_agreement=float(np.mean(stage_prior)) if stage_prior else 0.0,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the agreement of text-inferred preferences with SmoothNLP portfolio counts."""
    from evaluation.benchmark import DEFAULT_CACHE, DEFAULT_DATA_ROOT

    parser = argparse.ArgumentParser(
        prog="python -m evaluation.preferences",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_ROOT / "smoothnlp_cn")
    parser.add_argument("--embedder", default=None, help="also use embedding evidence (e.g. e5)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    path = args.data / "investor_profiles.csv"
    if not path.is_file():
        print(f"preference check skipped: {path} not found (evaluation data are optional)")
        return 0
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    results: dict[str, Any] = {"keywords": agreement(rows)}
    if args.embedder:
        usable = [r["description"] for r in rows if (r.get("description") or "").strip()]
        sims = _label_similarities(usable, args.embedder, args.cache)
        results[f"keywords+{args.embedder}"] = agreement(rows, sims)
    for name, a in results.items():
        print(
            f"{name}: industries n={a.n_industry} top1∈true-top3 {a.top1_in_top3:.3f} "
            f"(prior {a.prior_top1_in_top3:.3f}), precision@3 {a.precision_at_3:.3f} "
            f"(prior {a.prior_precision_at_3:.3f}); stages n={a.n_stage} coverage {a.stage_coverage:.3f} "
            f"agreement {a.stage_agreement:.3f} (prior {a.prior_stage_agreement:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
