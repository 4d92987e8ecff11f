"""Compare the two vector stores (embeddings.stores): FAISS flat in process and Milvus (milvus-lite here).

Run from the repository root: ``python bench/bench_vector_stores.py [--n 100000] [--uri milvus:...]``.
Prints, for each store, the time to build it from n random unit vectors of dim 384 and the single-query
top-10 search latency (p50/p95), unfiltered and restricted to an id set of 1,000 ids. Without --uri the
Milvus store is a milvus-lite file in a temporary folder, searched in this process over gRPC; a Milvus
server is measured with ``--uri http://host:19530``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project packages importable
    sys.path.insert(0, str(ROOT))

from bench._timing import percentiles, time_calls, timer  # noqa: E402
from embeddings.index import set_search_threads  # noqa: E402
from embeddings.stores import FaissBackend, MilvusBackend, VectorBackend  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors in each store")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50, help="timed single-query searches per case")
    parser.add_argument("--uri", default=None, help="a Milvus server uri (default: a milvus-lite file)")
    args = parser.parse_args(argv)
    set_search_threads(1)  # as in the web server
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, args.n + 1, dtype=np.int64)
    queries = vectors[rng.choice(args.n, size=args.queries, replace=False)] + 0.01
    allowed = set(rng.choice(ids, size=min(1000, args.n), replace=False).tolist())
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, VectorBackend]] = [
            ("faiss flat", FaissBackend(None)),
            ("milvus " + ("server" if args.uri else "lite"), MilvusBackend(args.uri or f"{tmp}/v.db")),
        ]
        print(f"{args.n} vectors x {args.dim}, top-10, {args.queries} single-query searches per case")
        for label, backend in backends:
            with timer() as built:
                store = backend.build("bench", "bench", list(ids), vectors)
            plain = time_calls(
                lambda i, s=store: s.search(queries[i % len(queries)][None, :], 10), args.queries
            )
            filtered = time_calls(
                lambda i, s=store: s.search(queries[i % len(queries)][None, :], 10, allowed), args.queries
            )
            p, f = percentiles(plain, (50, 95)), percentiles(filtered, (50, 95))
            print(
                f"  {label:<12} build {built.seconds:6.1f} s"
                f"   search p50 {p['p50']:7.2f} ms p95 {p['p95']:7.2f} ms"
                f"   1k-id filter p50 {f['p50']:7.2f} ms p95 {f['p95']:7.2f} ms"
            )
            backend.close()


if __name__ == "__main__":
    main()
