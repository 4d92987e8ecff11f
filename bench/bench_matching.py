"""Benchmark MatchingService latency next to a bare FAISS search, at growing project counts.

Run from the repository root: ``python bench/bench_matching.py`` (a few minutes on 2 cores;
``--sizes 1000,10000`` for a quick run). Projects and institutions are synthetic: clustered unit
vectors (so neighbours exist) and profiles drawn from the contest's vocabularies. Reported per
size: build time, and p50/p99 milliseconds of ``match_institution`` (top 10 projects for a fund,
with reasons), ``match_project`` (top 10 funds for a project, with reasons) and a bare
``VectorIndex.search_one`` over the same project vectors.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project packages importable
    sys.path.insert(0, str(ROOT))

from bench._timing import percentiles, time_calls, timer  # noqa: E402
from embeddings import VectorIndex  # noqa: E402
from matching.service import MatchingService  # noqa: E402
from matching.types import (  # noqa: E402
    SERVICE_KINDS,
    STAGES,
    InstitutionProfile,
    PortfolioItem,
    ProjectProfile,
)

__all__ = ["Row", "bench_size", "main", "synthetic_world"]

DIM = 384
INDUSTRIES = ("新材料", "人工智能", "医疗健康", "新能源", "智能装备", "集成电路", "生物医药", "数字经济")
PROVINCES = ("江苏省", "浙江省", "广东省", "四川省", "山东省", "北京市", "上海市")
WORDS = (
    "智能",
    "检测",
    "平台",
    "系统",
    "材料",
    "电池",
    "影像",
    "诊断",
    "机器人",
    "芯片",
    "传感器",
    "农业",
    "数字化",
    "工业",
    "软件",
    "云计算",
    "储能",
    "复合",
    "光伏",
    "算法",
    "医疗器械",
    "新药",
    "视觉",
    "无人机",
)


class _FixedEmbedder:
    """Stand-in embedder: stored records arrive with vectors; the benchmark never encodes."""

    name = "bench-synthetic"
    dim = DIM

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        return np.zeros((len(texts), DIM), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        return np.zeros((len(texts), DIM), dtype=np.float32)


def _unit(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_world(
    n_projects: int, n_funds: int, portfolio_size: int, seed: int = 0
) -> tuple[
    list[ProjectProfile],
    list[InstitutionProfile],
    dict[int, NDArray[np.float32]],
    dict[int, NDArray[np.float32]],
]:
    """Return synthetic projects, funds (with portfolios) and their clustered unit vectors."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    centres = _unit(rng.normal(size=(len(INDUSTRIES), DIM)).astype(np.float32))
    cluster = rng.integers(0, len(INDUSTRIES), size=n_projects)
    pvecs = _unit(
        centres[cluster] + 0.8 * rng.normal(size=(n_projects, DIM)).astype(np.float32) / np.sqrt(DIM) * 6
    )
    projects = []
    for j in range(n_projects):
        words = "".join(pick.choice(WORDS) for _ in range(8))
        projects.append(
            ProjectProfile(
                id=j + 1,
                name=f"项目{j + 1}",
                text=f"{INDUSTRIES[cluster[j]]}{words}，面向{pick.choice(PROVINCES)}市场。",
                industries=(INDUSTRIES[cluster[j]],),
                province=pick.choice(PROVINCES),
                stage=pick.choice(STAGES),
                amount_wan=float(pick.choice((50, 300, 1000, 3000, 8000))),
                needs=("融资", pick.choice(SERVICE_KINDS)),
            )
        )
    funds, fvecs = [], {}
    for f in range(n_funds):
        c = f % len(INDUSTRIES)
        members = np.flatnonzero(cluster == c)
        chosen = rng.choice(members, size=min(portfolio_size, len(members)), replace=False)
        portfolio = tuple(
            PortfolioItem(
                int(m) + 1, f"20{18 + k % 6}-0{1 + k % 9}-01", pick.choice(("天使轮", "A轮", "B轮"))
            )
            for k, m in enumerate(chosen)
        )
        iid = 10_000_000 + f
        funds.append(
            InstitutionProfile(
                id=iid,
                name=f"基金{f}",
                kind="创业投资机构",
                text=f"专注{INDUSTRIES[c]}领域的投资，" + "".join(pick.choice(WORDS) for _ in range(6)),
                industries=(INDUSTRIES[c],),
                stages=tuple(pick.sample(STAGES, 2)),
                province=pick.choice(PROVINCES),
                ticket_min_wan=500.0,
                ticket_max_wan=5000.0,
                portfolio=portfolio,
            )
        )
        fvecs[iid] = _unit((centres[c] + 0.1 * rng.normal(size=DIM).astype(np.float32))[None, :])[0]
    return projects, funds, {p.id: pvecs[j] for j, p in enumerate(projects)}, fvecs


@dataclass(frozen=True)
class Row:
    """Latencies (ms) at one project count."""

    n_projects: int
    build_s: float
    match_institution: dict[str, float]
    match_project: dict[str, float]
    faiss: dict[str, float]


def bench_size(n_projects: int, n_funds: int, repeat: int, budget_s: float) -> Row:
    """Build a service over n_projects synthetic projects and time its ranking calls."""
    projects, funds, pvecs, fvecs = synthetic_world(n_projects, n_funds, portfolio_size=20)
    service = MatchingService(_FixedEmbedder(), index_dir=None)
    with timer() as built:
        service.load(projects, funds, pvecs, fvecs)
        service.evidence(funds[0].id)  # evidence is computed lazily: include it in the build
    fund_ids = [f.id for f in funds]
    project_ids = [p.id for p in projects]
    bare = VectorIndex.build(np.asarray(list(pvecs)), np.vstack(list(pvecs.values())))
    queries = [fvecs[i] for i in fund_ids]
    mi = time_calls(
        lambda i: service.match_institution(fund_ids[i % len(fund_ids)], 10), repeat, budget_seconds=budget_s
    )
    mp = time_calls(
        lambda i: service.match_project(project_ids[(i * 7919) % len(project_ids)], "fund", 10),
        repeat,
        budget_seconds=budget_s,
    )
    fs = time_calls(lambda i: bare.search_one(queries[i % len(queries)], 10), repeat, budget_seconds=budget_s)
    return Row(n_projects, built.seconds, percentiles(mi), percentiles(mp), percentiles(fs))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated project counts")
    parser.add_argument("--funds", type=int, default=200, help="funds ranked by match_project")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed calls per measurement")
    args = parser.parse_args(argv)
    print(
        "| projects | build s | match_institution p50 / p99 ms | match_project p50 / p99 ms "
        "| bare FAISS p50 / p99 ms |"
    )
    print("|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench_size(n, args.funds, args.repeat, args.budget)
        cells = [
            f"{d['p50']:.1f} / {d['p99']:.1f} (n={d['n']:.0f})"
            for d in (r.match_institution, r.match_project, r.faiss)
        ]
        print(f"| {n:,} | {r.build_s:.1f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
