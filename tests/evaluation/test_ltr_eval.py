"""The LambdaMART evaluation on a synthetic set on disk: inputs, no dev_test look-ahead, the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eval_csv import write_csvs

from evaluation import benchmark as bm
from evaluation.ltr_eval import JITTER_SD, evaluate_set, format_report, jittered, set_inputs
from matching.ltr import LTRSettings
from matching.ltr_features import FEATURE_GROUPS, day_number

TOPICS = ("机器人 视觉 导航", "语音 识别 合成", "芯片 传感器 存储", "医疗 影像 诊断")


def write_set(root: Path, seed: int = 0) -> Path:
    """Funds that follow a topic, 2012-2018; 2017+ edges go to dev_test."""
    rng = np.random.default_rng(seed)
    d = root / "synth"
    d.mkdir()
    projects, history, test = [], [], []
    for p in range(120):
        topic = int(rng.integers(0, len(TOPICS)))
        year = 2012 + p * 6 // 120
        projects.append(
            {
                "project_id": f"p_{p:03d}",
                "name": f"P{p}",
                "description": f"{TOPICS[topic]} 公司{p}",
                "category": f"类{topic}",
                "region": "",
                "founded_year": "",
                "date": "",
            }
        )
        funds = [topic * 3 + int(k) for k in rng.choice(3, size=2, replace=False)]
        for f in funds:
            row = {
                "institution_id": f"i_{f:02d}",
                "project_id": f"p_{p:03d}",
                "date": f"{year}-{1 + int(rng.integers(0, 12)):02d}-01",
                "round": str(rng.choice(["天使轮", "A轮", "B轮", ""])),
                "project_seen_in_history": "0",
            }
            (test if year >= 2017 else history).append(row)
    insts = [
        {"institution_id": f"i_{f:02d}", "name": f"F{f}", "type": "organization", "n_history_edges": "1"}
        for f in range(12)
    ]
    write_csvs(
        d,
        {
            "projects.csv": projects,
            "institutions.csv": insts,
            "edges_history.csv": history,
            "edges_dev_test.csv": test,
        },
    )
    return d


def test_inputs_read_history_only(tmp_path: Path) -> None:
    d = write_set(tmp_path)
    data = bm.load_set(d)
    log, content, pids, iids, end = set_inputs(data, None, tmp_path / "cache")
    assert log.day.size == len(data.history) and end == int(log.day.max()) + 1
    assert end <= (day_number("2017-01-01") or 0)
    assert content.tfidf.shape[0] == len(pids) == 120 and len(iids) == 12
    assert content.categories.sum() == 120  # one category per project
    assert not content.vectors.any()  # no embedder: the text groups read TF-IDF only
    assert content.stated is None  # no institution has a registered profile


def test_stated_profiles_are_read_from_the_institution_rows(tmp_path: Path) -> None:
    d = write_set(tmp_path)
    rows = (d / "institutions.csv").read_text(encoding="utf-8").splitlines()
    rows[0] += ",profile_description,profile_rounds"
    rows[1] += ',专注早期,"A轮426家、B轮216家、天使轮176家、战略融资41家"'
    rows[2] += ",,"
    (d / "institutions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = bm.load_set(d)
    _, content, _, iids, _ = set_inputs(data, None, tmp_path / "cache")
    assert content.stated is not None and "stated" in content.groups
    first = iids.index("i_00")
    # 天使 -> stage 2, A -> 3, B -> 4; a round without a stage (战略融资) is not counted
    assert content.stated.stage_counts[first].tolist() == [0.0, 0.0, 176.0, 426.0, 216.0, 0.0]
    assert not content.stated.stage_counts[[n for n in range(len(iids)) if n != first]].any()
    assert not content.stated.vectors.any()  # no embedder: no description vectors


def test_the_market_feed_adds_outside_deals_dated_within_history(tmp_path: Path, monkeypatch) -> None:
    d = write_set(tmp_path)
    feed = tmp_path / "feed"
    feed.mkdir()
    last = max(e.date for e in bm.load_set(d).history)
    rows = [
        {"company": "外部甲", "date": "2014-03-02", "round": "A轮", "investors_raw": "F1 F2 未披露机构 F1"},
        {"company": "外部甲", "date": "2014-03-02", "round": "A轮", "investors_raw": "F1"},  # the same deal
        {"company": "外部乙", "date": "2015-05-05 00:00:00", "round": "天使轮", "investors_raw": "F1x F"},
        {"company": "外部丙", "date": "2016-01-09", "round": "B轮", "investors_raw": "F3"},
        {
            "company": "P3",
            "date": "2014-01-01",
            "round": "B轮",
            "investors_raw": "F4",
        },  # a company of the set
        {"company": "外部丁", "date": "2019-01-01", "round": "B轮", "investors_raw": "F5"},  # after history
        {
            "company": "外部戊",
            "date": "0002-01-01",
            "round": "B轮",
            "investors_raw": "F6",
        },  # impossible dates
        {"company": "外部己", "date": "2015-13-45", "round": "B轮", "investors_raw": "F7"},
        {"company": "", "date": "2015-01-01", "round": "B轮", "investors_raw": "F8"},
    ]
    write_csvs(feed, {"events.csv": rows})
    monkeypatch.setitem(bm.MARKET_FEEDS, d.name, "feed/events.csv")
    data = bm.load_set(d)
    got = sorted((e.institution, e.project, e.date, e.round) for e in data.outside)
    assert got == [
        ("i_01", "outside:外部甲", "2014-03-02", "A轮"),
        ("i_02", "outside:外部甲", "2014-03-02", "A轮"),
        ("i_03", "outside:外部丙", "2016-01-09", "B轮"),
    ]
    assert all(e.date <= last for e in data.outside)
    assert bm.load_set(d, feed=False).outside == []
    log, content, pids, _iids, end = set_inputs(data, None, tmp_path / "cache")
    # the feed's companies come after the set's own, with no text or category, marked outside
    assert pids[:120] == sorted(data.projects) and pids[120:] == ["outside:外部丙", "outside:外部甲"]
    assert (
        log.outside is not None and int(log.outside.sum()) == 3 and set(log.proj[log.outside]) == {120, 121}
    )
    assert content.tfidf[120:].nnz == 0 and content.categories[120:].nnz == 0
    assert end == int(log.day[log.own].max()) + 1 == (day_number(last) or 0) + 1


def test_jitter_moves_each_vector_by_float_rounding_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    vectors = {k: rng.normal(size=384).astype(np.float32) for k in (5, 1, 9)}
    a, again, other = jittered(vectors, 0), jittered(vectors, 0), jittered(vectors, 1)
    assert set(a) == set(vectors) and all(a[k].dtype == np.float32 for k in a)
    assert all(np.array_equal(a[k], again[k]) for k in a)  # the same seed, the same noise
    assert not all(np.array_equal(a[k], other[k]) for k in a)
    moved = max(float(np.abs(a[k] - vectors[k]).max()) for k in a)
    assert 0 < moved < 10 * JITTER_SD


BENCH = bm.DEFAULT_BENCH


@pytest.mark.skipif(not (BENCH / "eval_ranking.py").is_file(), reason="the shared metric script is absent")
def test_evaluate_set_reports_table_intervals_and_ablations(tmp_path: Path) -> None:
    d = write_set(tmp_path)
    data = bm.load_set(d)
    settings = LTRSettings(negatives=8, max_queries=40, windows=3)
    res = evaluate_set(data, d, BENCH, tmp_path / "out", None, tmp_path / "cache", settings)
    assert set(res["table"]) >= {"ours", "popularity"}
    # (no institution here has a registered profile: the stated group is no input, so not ablated)
    assert set(res["ablations"]) == set(FEATURE_GROUPS) - {"stated"}
    for versus in (res["versus_best_baseline"], res["lambdamart_versus_best_baseline"]):
        for v in versus.values():
            lo, hi = v["ci95"]
            assert lo <= v["diff"] <= hi
    assert res["lambdamart"].startswith("lambdamart(")
    # each segment's choice is named (every dev_test project here is new, so cold's ranks them)
    assert set(res["segments"]) == {"cold", "warm"}
    assert all(
        seg["model"] in res["model"] and seg["validation_queries"] > 0 for seg in res["segments"].values()
    )
    # funds follow topics: the learned ranking beats popularity on this set
    assert res["table"]["ours"]["all"]["ndcg@10"] > res["table"]["popularity"]["all"]["ndcg@10"]
    text = format_report({"synth": res})
    assert "ablations" in text and "95%" in text
    # a single scorer chosen on history: the learned model gets its own row and intervals
    single = {
        **res,
        "model": "single(act_log_count)",
        "table": {"lambdamart": res["table"]["ours"], **res["table"]},
    }
    text = format_report({"synth": single})
    assert "ours (chosen)" in text and "lambdamart − " in text
