"""The vectorised feature block equals the per-pair definition (pair_features) on every pair."""

from __future__ import annotations

import random

import numpy as np
import pytest

from matching.features import FEATURES, SIMILARITY_FEATURES, build_evidence, pair_features
from matching.normalize import bm25_scaled, rescale_0_100, zscore_known, zscore_rows
from matching.scoring import InstitutionTable, ProjectTable, Vocabs, block_features
from matching.types import (
    AWARDS,
    KIND_SIDE,
    SERVICE_KINDS,
    STAGES,
    InstitutionProfile,
    PortfolioItem,
    ProjectProfile,
    public_view,
)

INDUSTRIES = ("新材料", "人工智能", "医疗健康", "新能源", "集成电路")
PROVINCES = ("江苏省", "浙江省", "广东省")
CITIES = ("南京市", "苏州市", "杭州市", "广州市")
ROUNDS = ("天使轮", "A轮", "B轮", "Pre-A", None, "种子轮", "IPO")


def _maybe(rng: random.Random, value: object, p: float = 0.7) -> object:
    return value if rng.random() < p else None


def _world(seed: int) -> tuple[list[ProjectProfile], list[InstitutionProfile]]:
    rng = random.Random(seed)
    projects = []
    for pid in range(1, 61):
        inds = tuple(rng.sample(INDUSTRIES, rng.randint(0, 3)))
        needs = tuple(rng.sample(("融资", "落地", *SERVICE_KINDS[:4]), rng.randint(0, 3)))
        projects.append(
            ProjectProfile(
                pid,
                f"p{pid}",
                "text",
                inds,
                province=_maybe(rng, rng.choice(PROVINCES)),  # type: ignore[arg-type]
                city=_maybe(rng, rng.choice(CITIES), 0.5),  # type: ignore[arg-type]
                stage=_maybe(rng, rng.choice(STAGES), 0.6),  # type: ignore[arg-type]
                amount_wan=rng.choice([None, 0, 50, 300, 2000, 9000]),
                round=rng.choice(ROUNDS),
                award=rng.choice([*AWARDS, None]),
                group=rng.choice(["企业组", "创客组", None]),
                needs=needs,
            )
        )
    insts = []
    for iid in range(1, 31):
        items = tuple(
            PortfolioItem(
                rng.randint(1, 60),
                date=_maybe(rng, f"20{rng.randint(15, 24)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"),  # type: ignore[arg-type]
                round=rng.choice(ROUNDS),
                industries=tuple(rng.sample(INDUSTRIES, rng.randint(0, 2))),
            )
            for _ in range(rng.randint(0, 8))
        )
        insts.append(
            InstitutionProfile(
                iid,
                f"i{iid}",
                rng.choice(list(KIND_SIDE)),
                "text",
                industries=tuple(rng.sample(INDUSTRIES, rng.randint(0, 2))),
                stages=tuple(rng.sample(STAGES, rng.randint(0, 2))),
                province=_maybe(rng, rng.choice(PROVINCES)),  # type: ignore[arg-type]
                city=_maybe(rng, rng.choice(CITIES), 0.5),  # type: ignore[arg-type]
                ticket_min_wan=rng.choice([None, 0, 100, 500]),
                ticket_max_wan=rng.choice([None, 1000, 5000]),
                services=tuple(rng.sample(SERVICE_KINDS, rng.randint(0, 3))),
                portfolio=items,
            )
        )
    return projects, insts


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("public", [False, True])
def test_block_features_equal_pair_features(seed: int, public: bool) -> None:
    projects, insts = _world(seed)
    by_id = {p.id: p for p in projects}
    evs = [build_evidence(i, by_id, "2025-01-01") for i in insts]
    vocabs = Vocabs.new()
    ptab = ProjectTable(vocabs, capacity=4)  # small: rows and industry width must grow
    for p in projects:
        ptab.upsert(p)
    itab = InstitutionTable(vocabs, insts, evs)
    rng = np.random.default_rng(seed)
    sims = {name: rng.normal(size=(len(projects), len(insts))) for name in SIMILARITY_FEATURES}
    X = block_features(
        ptab, ptab.rows(p.id for p in projects), itab, itab.rows(i.id for i in insts), sims, public=public
    )
    assert X.shape == (len(projects) * len(insts), len(FEATURES))
    for a, p in enumerate(projects):
        for b, (inst, ev) in enumerate(zip(insts, evs, strict=True)):
            want = pair_features(
                public_view(p) if public else p,
                inst,
                ev,
                {name: float(sims[name][a, b]) for name in SIMILARITY_FEATURES},
            )
            got = X[a * len(insts) + b]
            np.testing.assert_allclose(
                got, [want[f] for f in FEATURES], rtol=1e-12, atol=1e-12, err_msg=f"{p} {inst}"
            )


def test_project_rows_follow_edits() -> None:
    projects, insts = _world(3)
    vocabs = Vocabs.new()
    ptab = ProjectTable(vocabs)
    for p in projects:
        ptab.upsert(p)
    ptab.remove(5)
    new = ProjectProfile(99, "new", "t", ("全新行业",), stage="成长期", amount_wan=100)
    ptab.upsert(new)
    assert ptab.row_of[99] == 4  # the freed row is reused
    by_id = {p.id: p for p in projects}
    itab = InstitutionTable(vocabs, insts, [build_evidence(i, by_id) for i in insts])
    X = block_features(ptab, ptab.rows([99]), itab, itab.rows([insts[0].id]))
    want = pair_features(new, insts[0], build_evidence(insts[0], by_id))
    np.testing.assert_allclose(X[0], [want[f] for f in FEATURES], atol=1e-12)


def test_normalisations() -> None:
    raw = np.array([[1.0, np.nan, 3.0, 5.0], [2.0, 2.0, 2.0, 9.0]])
    mask = np.array([[True, True, True, True], [True, True, True, False]])
    out = zscore_rows(raw, mask)
    np.testing.assert_allclose(out[0], zscore_known(raw[0]))
    np.testing.assert_allclose(out[1], [0, 0, 0, 0])
    assert bm25_scaled(np.array([0.0, 2.0, 4.0])).tolist() == [0.0, 0.5, 1.0]
    assert bm25_scaled(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    assert rescale_0_100(np.array([1.0, 3.0]), 1.0, 3.0).tolist() == [0.0, 100.0]
    assert rescale_0_100(np.array([2.0]), 2.0, 2.0).tolist() == [100.0]
