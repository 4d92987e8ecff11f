"""The demo replay printed by `make eval`: position bias from the demo's logs, metrics per ranker."""

from __future__ import annotations

import math
from itertools import pairwise

from evaluation.replay import format_replay, replay_demo


def test_replay_of_the_demo_history_computes_its_numbers(tmp_path):
    res = replay_demo(tmp_path)
    assert res["acted_lists"] > 500 and 0 < res["test_lists"] < res["acted_lists"]
    theta = res["theta"]
    assert theta[0] == 1.0 and all(a >= b for a, b in pairwise(theta)) and theta[9] < 0.5
    for m in res["metrics"].values():
        assert 0.0 < m["ndcg@10"] <= 1.0 and 0.0 < m["recall@10"] <= 1.0
    # The logging ranker knew what the simulated users wanted: replaying its own order scores best.
    logged = res["metrics"]["logged order (demo-logging-v0)"]["ndcg@10"]
    assert logged == max(m["ndcg@10"] for m in res["metrics"].values())
    d, lo, hi = res["ips_vs_hand_ndcg"]
    assert lo <= d <= hi and not math.isnan(d)
    text = format_replay(res)
    assert "IPS NDCG@10" in text and "flask ranker train" in text


def test_make_eval_ends_with_the_replay_whichever_ranker_and_without_the_data(tmp_path, monkeypatch, capsys):
    import evaluation.replay
    from evaluation import benchmark

    monkeypatch.setattr(evaluation.replay, "print_replay", lambda: print("REPLAY TABLE"))
    for ranker in ("ltr", "service"):
        assert benchmark.main(["eval", "--data-root", str(tmp_path / "absent"), "--ranker", ranker]) == 0
        out = capsys.readouterr().out
        assert "no data at" in out and out.rstrip().endswith("REPLAY TABLE")
