"""Benchmark MatchingService latency next to the bare candidate search, at growing project counts.

Run from the repository root: ``python bench/bench_matching.py`` (a few minutes on 2 cores;
``--sizes 1000,10000`` for a quick run). Projects and institutions are synthetic: clustered unit
vectors (so neighbours exist) and profiles drawn from the contest's vocabularies. Reported per
size: build time (with the funds' pair-row statistics, ``MatchingService.warm_pair_rows``, unless
``--no-warm``), the candidate index in use (exact flat; IVF with the nprobe tuned at build to
reach recall@50 >= 0.98; or flat-fp16, the half-precision scan used where IVF would probe most
lists), p50/p99 milliseconds of ``match_institution`` (top 10 projects for a fund, with reasons), ``match_project`` (top 10 funds for a project, with reasons) and the bare
search of the same candidate index (one query, top 10, same run), each with its mean CPU
milliseconds per call; candidate recall@50 of that index against the exact flat search; ``score_block``
throughput (pairs/s) with the hand-set and learned rankers; the process RSS after the load and
its peak while the size ran. Everything is also written to ``bench-out/matching.json``. On a shared
machine the figures are noisy. One million projects: ``--sizes 1000000`` (vectors are drawn in
chunks; the build tokenizes every text and takes about ten times the 100k build).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project packages importable
    sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from app.demo.synthetic import ClusterModel, product_lines, project_description  # noqa: E402
from bench._timing import percentiles, time_calls, timer  # noqa: E402
from embeddings import set_search_threads  # noqa: E402
from matching.candidates import recall_at  # noqa: E402
from matching.features import FEATURES  # noqa: E402
from matching.ranker import LearnedRanker  # noqa: E402
from matching.service import MatchingService  # noqa: E402
from matching.types import (  # noqa: E402
    SERVICE_KINDS,
    STAGES,
    InstitutionProfile,
    PortfolioItem,
    ProjectProfile,
)

__all__ = ["Row", "bench_size", "bulk_rate", "candidate_recall", "main", "synthetic_world"]

DIM = 384
_CHUNK = 100_000  # vectors drawn at a time
PROVINCES = ("江苏省", "浙江省", "广东省", "四川省", "山东省", "北京市", "上海市")


class _FixedEmbedder:
    """Stand-in embedder: stored records arrive with vectors; the benchmark never encodes."""

    name = "bench-synthetic"
    dim = DIM

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        return np.zeros((len(texts), DIM), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        return np.zeros((len(texts), DIM), dtype=np.float32)


def synthetic_world(
    n_projects: int, n_funds: int, portfolio_size: int, seed: int = 0
) -> tuple[
    list[ProjectProfile],
    list[InstitutionProfile],
    dict[int, NDArray[np.float32]],
    dict[int, NDArray[np.float32]],
]:
    """Return synthetic projects, funds (with portfolios) and their vectors.

    Texts and vectors come from the app's synthetic data (``app/demo/synthetic.py``): each project
    is one product line's description, its vector drawn around that line's centre inside its
    industry's (:class:`ClusterModel`); a fund backs one industry, two of its lines and a portfolio
    drawn from that industry.
    """
    nrng = np.random.default_rng(seed)
    pick = random.Random(seed)
    lines = product_lines()
    model = ClusterModel(lines, nrng)
    line_of = nrng.integers(0, len(lines), size=n_projects)
    # In chunks: one float64 draw of 1M x 384 would hold 3 GiB at once.
    pvecs = np.empty((n_projects, DIM), dtype=np.float32)
    for start in range(0, n_projects, _CHUNK):
        part = line_of[start : start + _CHUNK]
        pvecs[start : start + len(part)] = model.projects(part)
    projects = []
    for j, li in enumerate(line_of.tolist()):
        industry = lines[li][0]
        projects.append(
            ProjectProfile(
                id=j + 1,
                name=f"项目{j + 1}",
                text=project_description(lines[li], pick),
                industries=(industry,),
                province=pick.choice(PROVINCES),
                stage=pick.choice(STAGES),
                amount_wan=float(pick.choice((50, 300, 1000, 3000, 8000))),
                needs=("融资", pick.choice(SERVICE_KINDS)),
            )
        )
    project_industry = model.line_industry[line_of]
    lines_of_industry: dict[int, list[int]] = {}
    for li, ind in enumerate(model.line_industry.tolist()):
        lines_of_industry.setdefault(ind, []).append(li)
    funds, fvecs = [], {}
    for f in range(n_funds):
        c = f % len(model.industries)
        industry = model.industries[c]
        picked = pick.sample(lines_of_industry[c], min(2, len(lines_of_industry[c])))
        members = np.flatnonzero(project_industry == c)
        chosen = nrng.choice(members, size=min(portfolio_size, len(members)), replace=False)
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
                text=f"专注{industry}领域的投资，关注"
                + "、".join(lines[li][2] for li in picked)
                + "等方向。",
                industries=(industry,),
                stages=tuple(pick.sample(STAGES, 2)),
                province=pick.choice(PROVINCES),
                ticket_min_wan=500.0,
                ticket_max_wan=5000.0,
                portfolio=portfolio,
            )
        )
        fvecs[iid] = model.institutions([[industry]], [picked])[0]
    return projects, funds, {p.id: pvecs[j] for j, p in enumerate(projects)}, fvecs


@dataclass(frozen=True)
class Row:
    """Latencies (ms) and throughput at one project count."""

    n_projects: int
    build_s: float
    ann: str
    match_institution: dict[str, float]
    match_project: dict[str, float]
    bare_search: dict[str, float]
    candidate_recall_at_50: float
    bulk_pairs_per_s: dict[str, float]
    rss_load_mb: float
    rss_peak_mb: float
    nprobe: int | None = None
    match_institution_kept: dict[str, float] | None = None  # the same lists asked again (kept per state)


def _status_mb(field: str) -> float:
    """Return a memory field of /proc/self/status in MiB (VmRSS now, VmHWM the peak; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _learned_ranker(kind: str) -> LearnedRanker:
    """Return a learned ranker fitted on synthetic rows (its speed, not its quality, is measured)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, len(FEATURES)))
    y = (X[:, 0] + X[:, 17] + rng.normal(size=4000) > 0).astype(int)
    return LearnedRanker(kind).fit(X, y)  # type: ignore[arg-type]


def bulk_rate(service: MatchingService, project_ids: Sequence[int], fund_ids: Sequence[int]) -> float:
    """Return pairs per second of one score_block call over projects x funds."""
    with timer() as took:
        block = service.score_block(project_ids, fund_ids)
    return block.size / max(took.seconds, 1e-9)


def candidate_recall(service: MatchingService, queries: NDArray[np.float32], k: int = 50) -> float:
    """Return the mean share of the exact top-k (flat search) the candidate ANN search finds."""
    ann = service._ann_index()
    _s, exact = ann.exact.search(queries, k)
    _s, approx = ann.search(queries, k)
    return recall_at(exact, approx)


def _first_view(service: MatchingService, fn: Callable[[int], object]) -> Callable[[int], object]:
    """Return fn run after forgetting the ranked lists and candidate pools the service keeps per state."""

    def cold(i: int) -> object:
        cache = service.__dict__.get("_pair_scores_cache", {})
        for group in ("list", "pool"):
            cache.pop(("kept", group), None)
        return fn(i)

    return cold


def _cpu_timed(fn: Callable[[int], object], repeat: int, budget_s: float) -> dict[str, float]:
    """Return the latency percentiles of fn (see time_calls) with its mean CPU milliseconds per call."""
    calls = [0]

    def counted(i: int) -> object:
        calls[0] += 1
        return fn(i)

    start = time.process_time()
    out = percentiles(time_calls(counted, repeat, budget_seconds=budget_s))
    out["cpu_ms"] = 1000.0 * (time.process_time() - start) / max(1, calls[0])
    return out


def bench_size(
    n_projects: int,
    n_funds: int,
    repeat: int,
    budget_s: float,
    bulk_projects: int,
    learned: Sequence[str],
    warm: bool = True,
) -> Row:
    """Build a service over n_projects synthetic projects and time its ranking calls."""
    _reset_peak()
    projects, funds, pvecs, fvecs = synthetic_world(n_projects, n_funds, portfolio_size=20)
    service = MatchingService(_FixedEmbedder(), index_dir=None)
    with timer() as built:
        service.load(projects, funds, pvecs, fvecs)
        service.evidence(funds[0].id)  # evidence is computed lazily: include it in the build
        if warm:
            service.warm_pair_rows("fund")  # the funds' pair rows, else computed on first use
    del projects
    rss_load = _status_mb("VmRSS")
    fund_ids = [f.id for f in funds]
    project_ids = list(pvecs)
    ann = service._ann_index()
    queries = [fvecs[i] for i in fund_ids]

    # Each timed list is a first view: the lists and candidate pools the service keeps per state are
    # forgotten before every call (a list asked again is a cache hit, timed apart as *_kept).
    def fund_list(i: int) -> object:
        return service.match_institution(fund_ids[i % len(fund_ids)], 10)

    def project_list(i: int) -> object:
        return service.match_project(project_ids[(i * 7919) % len(project_ids)], "fund", 10)

    mi = _cpu_timed(_first_view(service, fund_list), repeat, budget_s)
    mp = _cpu_timed(_first_view(service, project_list), repeat, budget_s)
    few = fund_ids[:8]
    for f in few:  # ranked once: what is timed next is the same lists asked again
        service.match_institution(f, 10)
    kept = _cpu_timed(lambda i: service.match_institution(few[i % len(few)], 10), repeat, budget_s)
    # The bare search: the same candidate index, one query, top 10, no ranking.
    bs = _cpu_timed(lambda i: ann.search(queries[i % len(queries)].reshape(1, -1), 10), repeat, budget_s)
    rng = np.random.default_rng(1)
    sample = rng.choice(len(project_ids), size=min(100, len(project_ids)), replace=False)
    qmat = np.vstack([*queries[:100], *(pvecs[project_ids[j]] for j in sample)]).astype(np.float32)
    recall = candidate_recall(service, qmat)
    block_ids = project_ids[: min(bulk_projects, len(project_ids))]
    bulk = {"hand": bulk_rate(service, block_ids, fund_ids)}
    for kind in learned:
        service.set_ranker(_learned_ranker(kind))
        bulk[kind] = bulk_rate(service, block_ids, fund_ids)
    service.set_ranker(None)
    return Row(
        n_projects,
        built.seconds,
        ann.kind,
        mi,
        mp,
        bs,
        recall,
        bulk,
        rss_load,
        _status_mb("VmHWM"),
        ann.nprobe,
        kept,
    )


def _ms(d: dict[str, float]) -> dict[str, float]:
    return {
        "p50_ms": round(d["p50"], 3),
        "p99_ms": round(d["p99"], 3),
        "cpu_ms": round(d.get("cpu_ms", float("nan")), 3),
        "n": int(d["n"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table and write bench-out/matching.json."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated project counts")
    parser.add_argument("--funds", type=int, default=200, help="funds ranked by match_project")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed calls per measurement")
    parser.add_argument("--bulk-projects", type=int, default=20_000, help="projects in the score_block run")
    parser.add_argument("--learned", default="logistic,hgb", help="learned rankers timed in score_block")
    parser.add_argument(
        "--no-warm", action="store_true", help="leave the funds' pair rows to be computed on first use"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "matching.json")
    args = parser.parse_args(argv)
    # One search and one BLAS thread per process, as the web app runs (app/services.py): threads
    # that spin against each other on 2 shared cores cost more than they bring.
    set_search_threads(1)
    threadpool_limits(limits=1)
    learned = [k for k in args.learned.split(",") if k]
    print(
        "| projects | build s | candidates | match_institution p50 / p99 ms | match_project p50 / p99 ms "
        "| bare search p50 / p99 ms | recall@50 | score_block pairs/s | RSS after load / peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    report: dict[str, object] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench_size(n, args.funds, args.repeat, args.budget, args.bulk_projects, learned, not args.no_warm)
        cells = [
            f"{d['p50']:.2f} / {d['p99']:.2f} (cpu {d['cpu_ms']:.2f}, n={d['n']:.0f})"
            for d in (r.match_institution, r.match_project, r.bare_search)
        ]
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in r.bulk_pairs_per_s.items())
        ann = r.ann if r.nprobe is None else f"{r.ann} (nprobe {r.nprobe})"
        print(
            f"| {n:,} | {r.build_s:.1f} | {ann} | "
            + " | ".join(cells)
            + f" | {r.candidate_recall_at_50:.3f} | {rates} | {r.rss_load_mb:,.0f} / {r.rss_peak_mb:,.0f} |",
            flush=True,
        )
        if r.match_institution_kept:
            d = r.match_institution_kept
            print(
                f"  match_institution asked again (kept list): {d['p50']:.3f} / {d['p99']:.3f} ms", flush=True
            )
        report[str(n)] = {
            "match_institution": _ms(r.match_institution),
            "match_project": _ms(r.match_project),
            "bare_search": _ms(r.bare_search),
            "match_institution_kept": _ms(r.match_institution_kept) if r.match_institution_kept else None,
            "candidate_recall_at_50": round(r.candidate_recall_at_50, 4),
            "candidates": r.ann,
            "nprobe": r.nprobe,
            "build_s": round(r.build_s, 1),
            "rss_load_mb": round(r.rss_load_mb, 1),
            "rss_peak_mb": round(r.rss_peak_mb, 1),
            "bulk_pairs_per_s": {k: round(v) for k, v in r.bulk_pairs_per_s.items()},
        }
        report["bulk_pairs_per_s"] = {k: round(v) for k, v in r.bulk_pairs_per_s.items()}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
