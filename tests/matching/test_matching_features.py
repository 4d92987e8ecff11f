"""Feature functions: each number a ranker or a reason reads is right on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matching.features import (
    FEATURES,
    Evidence,
    amount_fit,
    award_level,
    build_evidence,
    feature_matrix,
    industry_fit,
    need_side_fit,
    pair_features,
    region_fit,
    round_stage_index,
    service_fit,
    stage_fit,
    stage_round_lift,
)
from matching.types import STAGES, InstitutionProfile, PortfolioItem, ProjectProfile


def test_industry_fit_primary_secondary_and_clash() -> None:
    assert industry_fit(("新材料", "新能源"), ("新材料",)) == 1.0
    assert industry_fit(("新材料", "新能源"), ("新能源",)) == 0.5
    assert industry_fit(("新材料",), ("医疗健康",)) == -1.0
    assert industry_fit(("新材料",), ()) == 0.0  # nothing declared: no evidence either way


def test_stage_fit_decreases_with_distance() -> None:
    growth = STAGES.index("成长期")
    values = [stage_fit(growth, (s,)) for s in ("成长期", "扩张期", "成熟期")]
    assert values == sorted(values, reverse=True)
    assert values[0] == 1.0 and values[-1] < 0
    assert stage_fit(None, ("成长期",)) == 0.0


def test_amount_fit_inside_below_above() -> None:
    assert amount_fit(2000, 1000, 5000) == 1.0
    below, far_below = amount_fit(500, 1000, 5000), amount_fit(30, 1000, 5000)
    assert 0 > below > far_below >= -1.0
    assert amount_fit(20000, 1000, 5000) < 0
    assert amount_fit(None, 1000, 5000) == 0.0
    assert amount_fit(100, None, None) == 0.0


def test_region_city_beats_province() -> None:
    assert (
        region_fit("江苏省", "南京市", "江苏省", "南京市")
        > region_fit("江苏省", "南京市", "江苏省", "苏州市")
        > 0
    )
    assert region_fit("江苏省", None, "浙江省", None) == 0.0


def test_service_and_need_side() -> None:
    assert service_fit(("融资", "检验检测", "知识产权"), ("检验检测",)) == 0.5
    assert service_fit(("融资",), ("检验检测",)) == 0.0
    assert need_side_fit(("融资",), "fund") == 1.0
    assert need_side_fit(("落地",), "fund") == -1.0
    assert need_side_fit(("落地",), "base") == 1.0
    assert need_side_fit(("工业设计",), "platform") == 1.0
    assert need_side_fit((), "fund") == 0.0


def test_award_level_orders_awards() -> None:
    levels = [award_level(a) for a in ("一等奖", "二等奖", "三等奖", "优胜奖", "50强", "500强", "无")]
    assert levels == sorted(levels, reverse=True)
    assert levels[0] == 1.0 and levels[-1] == 0.0


@pytest.mark.parametrize(
    ("label", "stage"),
    [
        ("天使轮", "初创期"),
        ("Pre-A轮", "初创期"),
        ("A轮", "成长期"),
        ("A+轮", "成长期"),
        ("B轮", "扩张期"),
        ("种子轮", "研发样机"),
        ("新三板", "成熟期"),
        ("战略投资", None),
        (None, None),
    ],
)
def test_round_stage_mapping(label: str | None, stage: str | None) -> None:
    idx = round_stage_index(label)
    assert (STAGES[idx] if idx is not None else None) == stage


def test_evidence_infers_preferences_from_portfolio(projects: list[ProjectProfile]) -> None:
    projects = {p.id: p for p in projects}
    inst = InstitutionProfile(
        9,
        "测试基金",
        "创业投资机构",
        "",
        portfolio=(
            PortfolioItem(1, "2024-01-01", "A轮"),
            PortfolioItem(5, "2023-01-01", "天使轮"),
            PortfolioItem(6, "2020-01-01", "B轮"),
        ),
    )
    ev = build_evidence(inst, projects, half_life_days=365)
    assert ev.n_portfolio == 3
    assert ev.industry_share is not None and ev.industry_share["医疗健康"] == pytest.approx(2 / 3)
    assert ev.province_share is not None and ev.province_share["江苏省"] == pytest.approx(2 / 3)
    assert ev.top_industries(1) == ("医疗健康",)
    assert sum(ev.stage_share) == pytest.approx(1.0)
    # The newest item counts 1, one a year older 0.5, one four years older ~0.06.
    assert ev.recency == pytest.approx(1 + 0.5 ** (365 / 365) + 0.5 ** (1461 / 365), rel=1e-3)
    assert ev.last_date == "2024-01-01"


def test_pair_features_reflect_profiles(
    projects: list[ProjectProfile], institutions: list[InstitutionProfile]
) -> None:
    p, inst = projects[0], institutions[0]  # medical AI project, medical fund in Nanjing
    f = pair_features(p, inst, build_evidence(inst, {q.id: q for q in projects}), {"dense": 1.2})
    assert set(f) == set(FEATURES)
    assert f["industry"] == 1.0 and f["stage"] == 1.0 and f["amount"] == 1.0
    assert f["region"] == 1.5 and f["region_base"] == 0.0  # a fund, not a base
    assert f["need_side"] == 1.0 and f["services"] == 0.0  # funds offer no services
    assert f["dense"] == 1.2 and f["activity"] == pytest.approx(math.log(2))
    assert f["award"] == 1.0
    platform = institutions[5]
    g = pair_features(p, platform, build_evidence(platform, {}))
    assert g["services"] == 1.0 and g["amount"] == 0.0


def test_feature_matrix_shape(projects: list[ProjectProfile], institutions: list[InstitutionProfile]) -> None:
    empty = build_evidence(institutions[1], {})
    X = feature_matrix([(projects[0], institutions[1], empty, {}), (projects[1], institutions[1], empty, {})])
    assert X.shape == (2, len(FEATURES))
    assert np.isfinite(X).all()
    assert feature_matrix([]).shape == (0, len(FEATURES))


def test_unknown_values_are_neutral(institutions: list[InstitutionProfile]) -> None:
    bare = ProjectProfile(99, "空白", "")
    f = pair_features(bare, institutions[0], build_evidence(institutions[0], {}))
    for name in ("industry", "stage", "amount", "region", "services", "need_side", "award", "group"):
        assert f[name] == 0.0, name


def test_stage_round_lift_prefers_who_joins_the_next_round() -> None:
    # Two equally active funds; only one has joined A rounds, the round a post-angel project raises.
    a_round = round_stage_index("A轮")
    a_fund = Evidence(n_items=4, round_counts=tuple(3 if i == a_round else 0 for i in range(len(STAGES))))
    other = Evidence(n_items=4)
    assert stage_round_lift(a_round, a_fund) == pytest.approx(math.log1p(3 / (0.1 * 4)))
    assert stage_round_lift(a_round, other) == 0.0
    # Unknown stage or no deals: no lift, so the feature never stands in for popularity.
    assert stage_round_lift(None, a_fund) == 0.0
    assert stage_round_lift(a_round, Evidence()) == 0.0


def test_evidence_counts_only_labelled_rounds(projects: list[ProjectProfile]) -> None:
    inst = InstitutionProfile(
        9,
        "测试基金",
        "创业投资机构",
        "",
        portfolio=(PortfolioItem(1, "2024-01-01", "A轮"), PortfolioItem(5, "2023-01-01", None)),
    )
    ev = build_evidence(inst, {p.id: p for p in projects})
    assert sum(ev.round_counts) == 1 and ev.round_counts[round_stage_index("A轮") or 0] == 1
