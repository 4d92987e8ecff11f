"""Benchmark the embeddings layer: encoder throughput, index build and search latency.

Run from the repository root: ``python bench/bench_embeddings.py`` (about 1-2 minutes on 2 cores).
Prints encoder throughput on generated Chinese project texts, FAISS build time and single-query
search latency (bare and filtered to 10% of ids) at 1k/10k/100k synthetic vectors, and, when the
shared SmoothNLP sample is next to the repository, throughput on real company descriptions.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project packages importable
    sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402

from bench._timing import percentiles, time_calls, timer  # noqa: E402
from embeddings import Embedder, VectorIndex, load_embedder, project_text, tokenize  # noqa: E402

__all__ = [
    "EncodeResult",
    "IndexResult",
    "bench_encode",
    "bench_index",
    "bench_smoothnlp",
    "make_project_texts",
    "smoothnlp_dir",
    "unit_vectors",
]

_INDUSTRIES = [
    ("医疗器械", "医学影像", "基层医院的肺结节筛查"),
    ("生物医药", "创新药", "肿瘤靶向治疗"),
    ("新材料", "碳化硅", "新能源汽车电驱功率模块"),
    ("光伏新能源", "钙钛矿", "分布式屋顶光伏"),
    ("储能", "钠离子电池", "工商业储能电站"),
    ("智能装备", "机器视觉", "汽车零部件表面缺陷检测"),
    ("农业机械", "丘陵山区小型农机", "果园植保与采收"),
    ("工业互联网", "数字孪生", "中小制造企业的设备运维"),
    ("集成电路", "芯片设计", "物联网低功耗终端"),
    ("智能家居", "语音交互", "适老化家居改造"),
    ("卫星互联网", "北斗导航", "应急通信与精准定位"),
    ("人工智能", "大模型", "企业知识库问答"),
    ("节能环保", "固废处理", "工业园区的危废资源化"),
    ("文化创意", "工业设计", "非遗文创产品"),
]
_TEAMS = ["博士领衔的研发团队", "高校教授与产业工程师联合团队", "连续创业者团队", "海归技术团队"]
_IPS = ["发明专利3项", "发明专利12项、软件著作权5项", "实用新型专利8项", "已提交PCT专利申请"]
_STAGES = ["研发样机阶段", "已完成中试", "已实现小批量销售", "年营收超过两千万元"]
_NEEDS = [["融资"], ["融资", "落地"], ["检验检测"], ["技术转移", "知识产权"], ["落地", "数字化改造"]]
_ADVANTAGES = [
    "产品在成本、效率和可靠性上较进口方案有明显优势，可替代同类进口产品。",
    "核心算法准确率超过百分之九十五，部署周期缩短一半。",
    "关键材料实现国产化，良率稳定在九成以上。",
    "整机能耗比传统方案降低三成，维护成本显著下降。",
]
_PLANS = [
    "下一步计划扩大产能、完善销售渠道，并申请专精特新企业认定。",
    "本轮融资将用于建设中试线和拓展海外市场。",
    "希望入驻产业园区，对接检验检测和知识产权服务。",
    "计划与高校共建联合实验室，推进科技成果转化。",
]
_CITIES = ["深圳", "苏州", "合肥", "成都", "杭州", "西安", "长沙", "青岛"]


def make_project_texts(n: int = 200, seed: int = 7) -> list[str]:
    """Return n varied, deterministic Chinese project texts as the service would embed them."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        industry, tech, use = rng.choice(_INDUSTRIES)
        city = rng.choice(_CITIES)
        sentences = [
            f"本项目基于{tech}技术，面向{use}场景，提供从核心部件到整体解决方案的产品。",
            f"团队位于{city}，{rng.choice(_STAGES)}，已与多家行业龙头企业开展合作。",
            rng.choice(_ADVANTAGES),
            rng.choice(_PLANS),
        ]
        description = "".join(sentences[: rng.randint(2, 4)])
        texts.append(
            project_text(
                name=f"{city}{tech}项目{i}",
                description=description,
                industry=[industry],
                track=industry,
                team=rng.choice(_TEAMS),
                ip=rng.choice(_IPS),
                needs=rng.choice(_NEEDS),
            )
        )
    return texts


def unit_vectors(n: int, dim: int, seed: int = 0) -> NDArray[np.float32]:
    """Return n random L2-normalised float32 vectors of dim components."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


@dataclass(frozen=True)
class EncodeResult:
    """Throughput of one encoding run."""

    texts: int
    seconds: float
    mean_chars: float

    @property
    def per_second(self) -> float:
        """Return texts encoded per second."""
        return self.texts / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class IndexResult:
    """Build time and single-query latencies (ms, with the sample count "n") of a flat index."""

    size: int
    build_seconds: float
    bare: dict[str, float]
    wrapped: dict[str, float]
    filtered_bare: dict[str, float]
    filtered_wrapped: dict[str, float]


def bench_encode(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int = 32,
    budget_seconds: float | None = None,
) -> EncodeResult:
    """Encode texts as documents (after a short warm-up) and return the throughput.

    With budget_seconds, stop after the batch that crosses the budget, so a busy machine cannot
    stretch the benchmark; the result counts only the texts encoded.
    """
    embedder.encode_documents(list(texts[:2]))
    done = 0
    with timer() as t:
        start = time.perf_counter()
        for lo in range(0, len(texts), batch_size):
            batch = texts[lo : lo + batch_size]
            embedder.encode_documents(batch, batch_size=batch_size)
            done += len(batch)
            if budget_seconds is not None and time.perf_counter() - start > budget_seconds:
                break
    return EncodeResult(done, t.seconds, float(np.mean([len(s) for s in texts[:done]])))


def bench_index(
    size: int,
    dim: int = 384,
    queries: int = 200,
    k: int = 10,
    allowed_fraction: float = 0.1,
    seed: int = 0,
    budget_seconds: float | None = 5.0,
) -> IndexResult:
    """Time building a VectorIndex of size synthetic vectors and single-query k-NN searches.

    ``bare`` calls FAISS directly; ``wrapped`` goes through VectorIndex.search_one (lock, checks,
    list of pairs); the filtered variants allow a random allowed_fraction of the ids, the
    wrapped one including the cost of building the selector from a Python set on every call.
    Each variant stops after budget_seconds of timed calls.
    """
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, size * 10, dtype=np.int64), size=size, replace=False)
    vectors = unit_vectors(size, dim, seed)
    query_vectors = unit_vectors(queries, dim, seed + 1)
    with timer() as t:
        index = VectorIndex.build(ids, vectors)
    raw = index._index  # bare FAISS, to separate its cost from the wrapper's
    allowed = frozenset(rng.choice(ids, size=max(1, int(size * allowed_fraction)), replace=False).tolist())
    params = faiss.SearchParameters()
    params.sel = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64, count=len(allowed)))

    def bare(i: int) -> object:
        return raw.search(query_vectors[i % queries : i % queries + 1], k)

    def wrapped(i: int) -> object:
        return index.search_one(query_vectors[i % queries], k)

    def filtered_bare(i: int) -> object:
        return raw.search(query_vectors[i % queries : i % queries + 1], k, params=params)

    def filtered_wrapped(i: int) -> object:
        return index.search_one(query_vectors[i % queries], k, allowed)

    return IndexResult(
        size=size,
        build_seconds=t.seconds,
        bare=percentiles(time_calls(bare, queries, budget_seconds=budget_seconds)),
        wrapped=percentiles(time_calls(wrapped, queries, budget_seconds=budget_seconds)),
        filtered_bare=percentiles(time_calls(filtered_bare, queries, budget_seconds=budget_seconds)),
        filtered_wrapped=percentiles(time_calls(filtered_wrapped, queries, budget_seconds=budget_seconds)),
    )


def smoothnlp_dir() -> Path:
    """Return where the shared SmoothNLP sample is expected: shared/data/smoothnlp_cn beside the repo."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "smoothnlp_cn"


def read_descriptions(limit: int = 1000) -> list[str]:
    """Return the first limit non-empty company descriptions of the SmoothNLP companies.csv."""
    path = smoothnlp_dir() / "companies.csv"
    out: list[str] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = (row.get("description") or "").strip()
            if text:
                out.append(text)
                if len(out) >= limit:
                    break
    return out


def bench_smoothnlp(
    embedder: Embedder, limit: int = 1000, budget_seconds: float | None = 45.0
) -> EncodeResult | str:
    """Return the encode throughput on real company descriptions, or why it was skipped."""
    path = smoothnlp_dir() / "companies.csv"
    if not path.is_file():
        return f"skipped: {path.name} not found in the shared data folder (shared/data/smoothnlp_cn)"
    texts = read_descriptions(limit)
    if not texts:
        return "skipped: companies.csv has no non-empty description"
    return bench_encode(embedder, texts, budget_seconds=budget_seconds)


def _fmt(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:7.3f} ms  p99 {p['p99']:7.3f} ms  (n={p['n']:.0f})"


def _load_average() -> str:
    """Describe the machine's load, since other processes skew every figure here."""
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every section and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="e5", help="embedder spec (default: e5)")
    parser.add_argument("--texts", type=int, default=200, help="generated texts to encode")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="timed queries per index size")
    parser.add_argument("--real", type=int, default=1000, help="SmoothNLP descriptions to encode")
    parser.add_argument(
        "--budget", type=float, default=45.0, help="seconds at most per generated-text section"
    )
    parser.add_argument(
        "--real-budget", type=float, default=300.0, help="seconds at most for the SmoothNLP descriptions"
    )
    parser.add_argument(
        "--faiss-threads",
        type=int,
        default=None,
        help="OpenMP threads for FAISS (default: FAISS's own choice, one per core)",
    )
    args = parser.parse_args(argv)

    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads; {_load_average()}")
    with timer() as t:
        embedder = load_embedder(args.model)
    print(f"\n== encoder {embedder.name} (dim {embedder.dim}), loaded in {t.seconds:.2f} s")

    texts = make_project_texts(args.texts)
    result = bench_encode(embedder, texts, budget_seconds=args.budget)
    print(
        f"generated project texts: {result.texts} of {len(texts)} texts, "
        f"mean {result.mean_chars:.0f} chars, "
        f"{result.seconds:.1f} s -> {result.per_second:.1f} texts/s"
    )
    tokenize(texts[0])  # load the jieba dictionary outside the timing
    with timer() as t:
        for text in texts:
            tokenize(text)
    print(f"jieba tokenize (search mode): {len(texts) / t.seconds:.0f} texts/s")

    print("\n== FAISS flat inner product, single query, k=10 (synthetic unit vectors, dim 384)")
    for size in args.sizes:
        r = bench_index(size, queries=args.queries)
        print(f"{size:>7,} ids: build {r.build_seconds * 1000:8.1f} ms")
        print(f"    bare FAISS              {_fmt(r.bare)}")
        print(f"    VectorIndex.search_one  {_fmt(r.wrapped)}")
        print(f"    10% allowed, bare       {_fmt(r.filtered_bare)}")
        print(f"    10% allowed, wrapped    {_fmt(r.filtered_wrapped)}  (selector built per call)")

    print("\n== real company descriptions (SmoothNLP sample)")
    real = bench_smoothnlp(embedder, args.real, args.real_budget)
    if isinstance(real, str):
        print(real)
    else:
        cut = f" (time budget reached after {real.texts} of {args.real})" if real.texts < args.real else ""
        print(
            f"first {real.texts} non-empty descriptions, mean {real.mean_chars:.0f} chars: "
            f"{real.seconds:.1f} s -> {real.per_second:.1f} texts/s{cut}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
