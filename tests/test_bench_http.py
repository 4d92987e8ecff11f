"""bench/bench_http.py reads wrk's report, parses its targets and writes the Lua script that rotates over ids."""

from __future__ import annotations

import argparse
import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_http", REPO / "bench" / "bench_http.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRK = """Running 20s test @ http://127.0.0.1:5099/hnsw?k=10
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.21ms    4.02ms  61.30ms   80.12%
    Req/Sec   790.12     80.55     1.01k    70.00%
  Latency Distribution
     50%  850.00us
     75%   12.01ms
     90%   15.33ms
     99%    1.02s
  31507 requests in 20.01s, 9.82MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   1574.58
Transfer/sec:    502.51KB
"""


def test_wrk_report_is_read_in_milliseconds(bench: Any) -> None:
    assert bench.parse_wrk(WRK) == {
        "req_per_s": 1574.6,
        "p50_ms": 0.85,
        "p99_ms": 1020.0,
        "requests": 31507,
        "non_2xx": 4,
        "socket_errors": 5,
    }


def test_an_unexpected_report_is_an_error(bench: Any) -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        bench.parse_wrk("unable to connect to 127.0.0.1:5099 Connection refused")


def test_the_lua_script_rotates_over_every_path(bench: Any, tmp_path: Path) -> None:
    paths = ["/api/institutions/3/matches?k=10", "/api/institutions/8/matches?k=10"]
    script = bench.rotate_script(paths, tmp_path).read_text()
    assert '"/api/institutions/3/matches?k=10", "/api/institutions/8/matches?k=10"' in script
    assert "i = i % #paths + 1" in script and 'wrk.format("GET", paths[i])' in script


def test_a_worker_still_building_is_not_prompt(bench: Any) -> None:
    assert bench.is_prompt(0.5, [])
    assert not bench.is_prompt(1.5, [])
    steady = [1.2, 1.8, 0.9, 2.5]  # a built worker on a busy machine
    assert bench.is_prompt(2.6, steady)
    assert not bench.is_prompt(159.0, steady)  # a request held for a whole build


def test_targets_name_a_kind_and_how_many_ids_it_rotates_over(bench: Any) -> None:
    assert bench.parse_targets("institution:500, institution:1,project-fund:20000") == [
        ("institution:500", "institution", 500),
        ("institution:1", "institution", 1),
        ("project-fund:20000", "project-fund", 20000),
    ]
    assert bench.TARGETS["project-fund"][1].format(7) == "/api/projects/7/matches?kind=fund&k=10"
    for bad in ("institution", "institution:0", "need:5", "project-fund:x"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_targets(bad)


def test_record_ids_draws_live_rows_once(bench: Any, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "match.db") as conn:
        conn.execute("CREATE TABLE institution (id INTEGER PRIMARY KEY, archived_at TEXT)")
        conn.executemany("INSERT INTO institution VALUES (?, ?)", [(i, None) for i in range(1, 11)])
        conn.execute("UPDATE institution SET archived_at = 'x' WHERE id = 4")
    ids = bench.record_ids(tmp_path, "institution", 5)
    assert len(ids) == 5 and ids == sorted(ids) and 4 not in ids
    assert ids == bench.record_ids(tmp_path, "institution", 5)
    assert bench.record_ids(tmp_path, "institution", 50) == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    with pytest.raises(ValueError):
        bench.record_ids(tmp_path, "user", 5)
