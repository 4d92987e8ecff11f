"""Site start: seconds from `gunicorn` start to the first ranking answered, and the workers' memory.

    python bench/bench_start.py --projects 100000 [--institutions M] [--workers 2] [--data DIR]
        [--code DIR] [--label NAME]

Uses (or builds once) the synthetic database of bench/bench_http.py (bench-out/http-data/<N>), serves
it with `gunicorn -c gunicorn.conf.py` from --code (default this repository; another checkout measures
an older version against the same data) and asks an institution's ranking until one answers (the
first worker has loaded the profiles, vectors and indexes), then keeps asking on new connections
until every worker answers at once (``all_workers_s``). Prints, per worker, RSS, PSS (the worker's
share of pages it shares) and its shared file-backed pages (the memory-mapped FAISS and BM25 files
count once for all workers), and merges the figures into bench-out/start.json under the label.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_http import (  # noqa: E402
    OUT,
    Server,
    _get,
    build_data,
    free_port,
    institution_ids,
    service_env,
)


def memory(pid: int) -> dict[str, float]:
    """Return Rss, Pss and the shared file-backed pages of a process from smaps_rollup, in MiB."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for key in ("Rss", "Pss", "Shared_Clean", "Private_Clean", "Private_Dirty", "Pss_File"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[key.lower()] = round(int(m.group(1)) / 1024, 1)
    return out


def all_answer(server: Server, urls: list[str], timeout_s: float, rounds: int = 3) -> None:
    """Wait until `rounds` rounds in a row of 8 simultaneous requests (new connections, so on every
    worker) all answer with a ranking within 10 s (a worker still loading takes longer)."""
    from concurrent.futures import ThreadPoolExecutor

    deadline = time.monotonic() + timeout_s
    good = 0

    def ask(url: str) -> bool:
        t0 = time.perf_counter()
        try:
            status, body = _get(url, timeout=timeout_s)
        except (OSError, ValueError):
            return False
        fast = time.perf_counter() - t0 < 10.0
        return status == 200 and fast and isinstance(body, dict) and not body.get("degraded")

    with ThreadPoolExecutor(8) as pool:
        i = 0
        while good < rounds:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the workers did not all answer in time")
            batch = [urls[(i + j) % len(urls)] for j in range(8)]
            i += 8
            good = good + 1 if all(pool.map(ask, batch)) else 0


def workers(server: Server) -> list[int]:
    try:
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    except OSError:
        return []
    return [int(p) for p in children]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--institutions", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--code", type=Path, default=ROOT, help="repository whose code is served")
    parser.add_argument("--label", default="current")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    n_inst = args.institutions or max(100, args.projects // 50)
    data = args.data or OUT / "http-data" / str(args.projects)
    build_data(data, args.projects, n_inst)
    port = free_port()
    env = service_env(data, WORKERS=str(args.workers), THREADS="4", PORT=str(port), ACCESS_LOG="")
    env["PYTHONPATH"] = str(args.code)
    ids = institution_ids(data, 64)
    urls = [f"http://127.0.0.1:{port}/api/institutions/{i}/matches?k=10" for i in ids]
    log = OUT / f"start-{args.label}.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    started = time.perf_counter()
    server = Server("site", [str(gunicorn), "-c", "gunicorn.conf.py"], args.code, env, log)
    try:
        first = None
        while first is None:
            if server.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {server.proc.returncode}: see {log}")
            if time.perf_counter() - started > args.timeout:
                raise SystemExit("no ranking answered in time")
            try:
                status, body = _get(urls[0], timeout=args.timeout)
            except OSError:
                status, body = 0, None
            if status == 200 and isinstance(body, dict) and body.get("items"):
                first = time.perf_counter() - started
                degraded = body.get("degraded")
            else:
                time.sleep(0.5)
        print(
            f"first ranking answered after {first:.1f} s" + (f" ({degraded})" if degraded else ""), flush=True
        )
        all_answer(server, urls, args.timeout)
        every = time.perf_counter() - started
        print(f"every worker answering at once after {every:.1f} s", flush=True)
        mem = {str(pid): memory(pid) for pid in workers(server)}
        for pid, m in mem.items():
            print(f"worker {pid}: " + ", ".join(f"{k} {v:,.0f} MiB" for k, v in m.items()))
    finally:
        server.stop()
    out = OUT / "start.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    report[args.label] = {
        "projects": args.projects,
        "institutions": n_inst,
        "workers": args.workers,
        "first_ranking_s": round(first, 1),
        "all_workers_s": round(every, 1),
        "worker_memory_mib": list(mem.values()),
    }
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
