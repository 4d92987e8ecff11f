"""The benchmark adapter: CSV rows -> profiles, time splits, vector cache (synthetic files only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from eval_csv import write_csvs

from evaluation import benchmark as bm
from matching.features import FEATURES
from matching.types import STAGES


def write_set(root: Path) -> Path:
    d = root / "tiny"
    d.mkdir()
    rows = {
        "projects.csv": [
            {
                "project_id": "p_a",
                "name": "A",
                "description": "人工智能 视觉",
                "category": "硬件, 机器人",
                "region": "上海-闵行区",
                "founded_year": "2015",
                "date": "2015-01-01",
            },
            {
                "project_id": "p_b",
                "name": "B",
                "description": "",
                "category": "",
                "region": "San Francisco / California / USA",
                "founded_year": "",
                "date": "",
            },
        ],
        "institutions.csv": [
            {
                "institution_id": "i_x",
                "name": "X资本",
                "type": "organization",
                "n_history_edges": "1",
                "profile_description": "专注人工智能",
                "profile_industries": "硬件10家 企业服务3家",
                "profile_rounds": "A轮8家、天使轮2家",
            },
            {
                "institution_id": "i_y",
                "name": "Y",
                "type": "unknown",
                "n_history_edges": "1",
                "profile_description": "",
                "profile_industries": "",
                "profile_rounds": "",
            },
        ],
        "edges_history.csv": [
            {"institution_id": "i_x", "project_id": "p_a", "date": "2015-06-01", "round": "天使轮"},
            {"institution_id": "i_y", "project_id": "p_b", "date": "2016-06-01", "round": ""},
        ],
    }
    write_csvs(d, rows)
    return d


def test_load_set_and_profiles(tmp_path: Path) -> None:
    data = bm.load_set(write_set(tmp_path))
    assert len(data.history) == 2 and data.inst_str[data.inst_int["i_x"]] == "i_x"
    projects = {p.name: p for p in bm.project_profiles(data, data.history)}
    a = projects["A"]
    assert a.industries == ("硬件", "机器人") and (a.province, a.city) == ("上海", "闵行区")
    assert a.stage == STAGES[3]  # raised an angel round: raising A (成长期) next
    assert (projects["B"].province, projects["B"].city) == ("California", "San Francisco")
    insts = {
        i.name: i for i in bm.institution_profiles(data, data.history, {p.id: p for p in projects.values()})
    }
    x = insts["X资本"]
    assert x.industries == ("硬件", "企业服务") and x.stages == (STAGES[3],)
    assert [it.round for it in x.portfolio] == ["天使轮"]


def test_young_companies_count_as_startups() -> None:
    assert bm._young_stage("2015", "2016-12-01") == STAGES[2]
    assert bm._young_stage("2010", "2016-12-01") is None
    assert bm._young_stage(None, "2016-12-01") is None


def test_rolling_windows_never_look_ahead() -> None:
    edges = [bm.Edge("i", f"p{k}", f"20{10 + k}-01-01", "") for k in range(10)]
    windows = bm._windows(edges, 0.4, 4)
    assert windows
    for early, late in windows:
        assert max(e.date for e in early) < min(e.date for e in late)
    head, tail = bm._split(edges, 0.2)
    assert len(tail) == 2 and max(e.date for e in head) < min(e.date for e in tail)


def test_counts_parse() -> None:
    assert bm._counted("企业服务118家 电商消费114家") == [("企业服务", 118), ("电商消费", 114)]
    assert bm._counted("A轮426家、B轮216家") == [("A轮", 426), ("B轮", 216)]


def test_encode_cached_encodes_each_text_once(tmp_path: Path, embedder) -> None:
    calls: list[int] = []

    class Counting:
        name, dim = embedder.name, embedder.dim

        def encode_documents(self, texts, batch_size=32):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return embedder.encode_documents(texts)

    cache = tmp_path / "c.npz"
    first = bm.encode_cached(Counting(), {1: "甲", 2: "乙"}, cache)  # type: ignore[arg-type]
    again = bm.encode_cached(Counting(), {1: "甲", 2: "乙", 3: "丙"}, cache)  # type: ignore[arg-type]
    assert calls == [2, 1]
    assert np.allclose(first[1], again[1])


def test_blend_reads_only_its_features() -> None:
    ranker = bm.blend_ranker({"activity": 1.0, "stage_round": 1.0, "coinvest": 0.5})
    X = np.full((2, len(FEATURES)), 5.0)
    X[:, FEATURES.index("activity")] = [1.0, 2.0]
    X[:, FEATURES.index("stage_round")] = [2.0, 0.0]
    X[:, FEATURES.index("coinvest")] = [0.0, 1.0]
    # Every other feature is 5 for both rows and weighs nothing: only the blend decides.
    assert np.allclose(ranker.score(X), [3.0, 2.5])
    used = {f for f, w in ranker.feature_importances().items() if w}
    assert used == {"activity", "stage_round", "coinvest"}


def test_blend_grid_anchors_on_the_stage_aware_popularity() -> None:
    assert all(w["activity"] == 1.0 and w["stage_round"] == 1.0 for w in bm.BLEND_GRID)
    assert len({tuple(sorted(w.items())) for w in bm.BLEND_GRID}) == len(bm.BLEND_GRID)
