"""HTTP: the ranking API under gunicorn next to a bare Flask + FAISS HNSW endpoint: same workers, same wrk.

    python bench/bench_http.py --projects 10000 [--institutions M] [--workers W] [--threads 4]
        [--connections 16] [--wrk-threads 2] [--duration 20] [--wrk-timeout 30] [--rounds 1] [--bare PATH]
        [--data DIR] [--targets institution:500,institution:1,project-fund:500]

1. Builds a synthetic database of N projects and M institutions (default N / 50, at least 100) once, in
   DIR (default bench-out/http-data/<N>), with `flask demo synthetic` (MATCH_EMBEDDING_MODEL=synthetic),
   which also writes the index files; later runs reuse it.
2. Serves it with `gunicorn -c gunicorn.conf.py` (WORKERS workers, default one per core, THREADS request
   threads each, no access log), the API rate limit raised through MATCH_API_RATE_LIMIT.
3. Serves the bare endpoint (bare_http.py of the shared bench folder, by default ../shared/bench next to
   the repository; BARE_N=N clustered vectors, HNSW32, ef 128) with the same gunicorn worker settings.
4. Warms both (5 s of wrk per target, then waits until the service's workers are idle: each computes the
   row statistics of the lists it was asked for, then every institution's list, in the background), then
   runs the same wrk command against each, alternating `--rounds` times: the service
   on each of `--targets` (anonymous), the bare app on `/hnsw?k=10`. A target is KIND:IDS, a Lua script
   rotating over IDS ids (1: one URL asked again and again): `institution` is
   `/api/institutions/<id>/matches?k=10`, `project-fund` is `/api/projects/<id>/matches?kind=fund&k=10`.
   The default, `institution:500`, is the issue's figure. The service keeps ranked lists and their
   anonymous JSON answers until the next change, and once the records hold still each worker ranks every
   institution's list of the kinds asked for (MATCH_PAIR_ROWS_WARM_SECONDS), so after the warm-up an
   institution target measures kept answers, as funds browsing an event see them; a project target over
   more ids than were asked during the warm-up (`project-fund:20000`) keeps ranking. Prints req/s, p50
   and p99 latency, non-2xx responses and the ratio of each target's throughput to the bare one's in the
   same round (the figure that is stable on a busy machine), and merges the figures into
   bench-out/http.json under the project count.

Targets (issue 9): throughput >= 0.5x the bare HNSW endpoint with the same workers; p99 <= 30 ms with
16 connections at 100k projects. Needs wrk: `apt-get install wrk` (Debian/Ubuntu, as root) or
`brew install wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-out"
BIN = Path(sys.executable).parent
RATE_LIMIT = "1000000 per minute"

#: A target's ids and path: institution ids for "institution", project ids for "project-fund".
TARGETS = {
    "institution": ("institution", "/api/institutions/{}/matches?k=10"),
    "project-fund": ("project", "/api/projects/{}/matches?kind=fund&k=10"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(data: Path, **extra: str) -> dict[str, str]:
    """Return the environment of the app on the benchmark database (synthetic vectors, no encoder)."""
    return {
        **os.environ,
        "MATCH_DATABASE_URL": f"sqlite:///{data / 'match.db'}",
        "MATCH_INDEX_DIR": str(data / "index"),
        "MATCH_EMBEDDING_MODEL": "synthetic",
        "MATCH_API_RATE_LIMIT": RATE_LIMIT,
        "MATCH_SECRET_KEY": secrets.token_hex(16),
        **extra,
    }


def build_data(data: Path, n_projects: int, n_institutions: int) -> None:
    """Create the synthetic database and its index files once (a marker file says it is complete)."""
    done = data / "complete.json"
    want = {"projects": n_projects, "institutions": n_institutions}
    if done.exists() and json.loads(done.read_text()) == want:
        print(f"reusing {data}")
        return
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    env = service_env(data)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    start = time.perf_counter()
    subprocess.run([*flask, "init-db"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [*flask, "demo", "synthetic", "--projects", str(n_projects), "--institutions", str(n_institutions)],
        cwd=REPO,
        env=env,
        check=True,
    )
    done.write_text(json.dumps(want))
    print(f"synthetic database built in {time.perf_counter() - start:.0f} s")


def record_ids(data: Path, table: str, n: int, seed: int = 7) -> list[int]:
    """Return n ids of live rows of `table` (institution or project), drawn once with a fixed seed."""
    if table not in ("institution", "project"):
        raise ValueError(table)
    with sqlite3.connect(data / "match.db") as conn:
        ids = [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE archived_at IS NULL ORDER BY id")]
    random.Random(seed).shuffle(ids)
    return sorted(ids[:n])


def parse_targets(value: str) -> list[tuple[str, str, int]]:
    """Return (name, kind, ids) for each KIND:IDS of a comma-separated list, e.g. "institution:500"."""
    out = []
    for part in value.split(","):
        kind, _, count = part.strip().partition(":")
        if kind not in TARGETS or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"a target is KIND:IDS with KIND in {sorted(TARGETS)}: {part!r}")
        out.append((f"{kind}:{count}", kind, int(count)))
    return out


class Server:
    """A gunicorn started in its own process group, stopped with it."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.name = name
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _workers(self) -> list[str]:
        """Return the pids of the workers (children of the gunicorn master); none once it has gone."""
        try:
            return Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []

    def rss_mb(self) -> list[float]:
        """Return the resident memory of each worker, in MB."""
        out: list[float] = []
        for pid in self._workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"VmRSS:\s+(\d+) kB", status)
            if m:
                out.append(round(int(m.group(1)) / 1024, 1))
        return out

    def cpu_seconds(self) -> float:
        """Return the CPU seconds the workers have used so far."""
        total = 0.0
        for pid in self._workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def wait_settled(self, quiet_share: float = 0.05, step_s: float = 3.0, timeout_s: float = 1800) -> float:
        """Wait until the workers use under quiet_share of a core over two steps in a row; return the wait.

        After the warm-up each worker computes, in the background, the row statistics of the lists it
        was asked for (MATCH_PAIR_ROWS_WARM_SECONDS); measuring before that ends would time it too.
        """
        start = time.monotonic()
        quiet, last = 0, self.cpu_seconds()
        while quiet < 2 and time.monotonic() - start < timeout_s:
            time.sleep(step_s)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - last < quiet_share * step_s else 0
            last = now
        return time.monotonic() - start

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def _get(url: str, timeout: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def is_prompt(elapsed_s: float, recent_s: list[float]) -> bool:
    """Return True for an answer as quick as a built worker's: under 1 s, or under 4x the median of the
    last answers (a worker still building its service holds a request for the whole build; on a busy
    shared machine a built one may still take over a second)."""
    limit = max(1.0, 4 * statistics.median(recent_s)) if recent_s else 1.0
    return elapsed_s < limit


def wait_ready(server: Server, urls: list[str], timeout_s: float = 1800) -> None:
    """Wait until 40 requests in a row, each on a new connection (so on any worker), answer 200 promptly.

    A worker still building its matching service, or ranking lexical-only while its index is rebuilt,
    does not count as ready.
    """
    deadline = time.monotonic() + timeout_s
    good = 0
    i = 0
    recent: list[float] = []
    while good < 40:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.proc.returncode}: see its log")
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.name} not ready after {timeout_s:.0f} s")
        url = urls[i % len(urls)]
        i += 1
        t0 = time.perf_counter()
        try:
            status, body = _get(url, timeout=600)
        except (OSError, ValueError):
            status, body = 0, None
        elapsed = time.perf_counter() - t0
        prompt = is_prompt(elapsed, recent)
        if status == 200:
            recent = [*recent[-19:], elapsed]
        if status == 200 and prompt and not (isinstance(body, dict) and body.get("degraded")):
            good += 1
        else:
            good = 0
            time.sleep(0.5 if status != 200 else 0)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(f"not a wrk duration: {value}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Return req/s, p50/p99 (ms), requests, non-2xx and socket errors from wrk --latency output."""
    pct = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if not (rps and total and "50" in pct and "99" in pct):
        raise ValueError("unexpected wrk output:\n" + output)
    return {
        "req_per_s": round(float(rps.group(1)), 1),
        "p50_ms": round(_ms(pct["50"]), 2),
        "p99_ms": round(_ms(pct["99"]), 2),
        "requests": int(total.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def rotate_script(paths: list[str], folder: Path) -> Path:
    """Write a wrk Lua script that sends the paths in turn (each wrk thread runs its own copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "rotate.lua"
    listed = ", ".join(json.dumps(p) for p in paths)
    script.write_text(
        f"local paths = {{{listed}}}\n"
        "local i = math.random(#paths)\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def _script_note(paths: list[str]) -> str:
    if len(paths) == 1:
        return f"-s rotate.lua (GET {paths[0]} only)"
    return f"-s rotate.lua (GET {paths[0]} ... over {len(paths)} ids)"


def run_wrk(base: list[str], url: str, script: Path | None) -> tuple[dict[str, Any], str]:
    cmd = [*base, *(["-s", str(script)] if script else []), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out), " ".join(cmd)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("req_per_s", "p50_ms", "p99_ms")
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    out["non_2xx"] = sum(r["non_2xx"] for r in runs)
    out["socket_errors"] = sum(r["socket_errors"] for r in runs)
    out["rounds"] = [{k: r[k] for k in keys} for r in runs]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--projects", type=int, default=10_000)
    ap.add_argument("--institutions", type=int, default=None, help="default: projects / 50, at least 100")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS") or os.cpu_count() or 1))
    ap.add_argument("--threads", type=int, default=4, help="request threads per worker (both servers)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    ap.add_argument("--wrk-timeout", type=int, default=30, help="seconds before wrk gives up on an answer")
    ap.add_argument("--rounds", type=int, default=1, help="alternating wrk runs per server (medians kept)")
    ap.add_argument("--bare", type=Path, default=REPO.parent / "shared" / "bench" / "bare_http.py")
    ap.add_argument("--data", type=Path, default=None, help="default: bench-out/http-data/<projects>")
    ap.add_argument("--out", type=Path, default=OUT / "http.json")
    ap.add_argument(
        "--targets",
        type=parse_targets,
        default=parse_targets("institution:500"),
        help="comma-separated KIND:IDS (institution, project-fund); IDS 1 is one URL asked again",
    )
    args = ap.parse_args(argv)
    # Stopped (Ctrl-C, or a TERM from a job runner): stop both servers on the way out (the finally below).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install wrk (Debian/Ubuntu, as root) or brew install wrk")
        return 2
    if not args.bare.is_file():
        print(f"bare endpoint not found at {args.bare}: pass --bare PATH/TO/bare_http.py", file=sys.stderr)
        return 2
    n, m = args.projects, args.institutions or max(100, args.projects // 50)
    data = args.data or OUT / "http-data" / str(n)
    build_data(data, n, m)
    targets = {
        name: [TARGETS[kind][1].format(i) for i in record_ids(data, TARGETS[kind][0], count)]
        for name, kind, count in args.targets
    }
    paths = next(iter(targets.values()))

    gunicorn = str(BIN / "gunicorn")
    settings = {"WORKERS": str(args.workers), "THREADS": str(args.threads), "TIMEOUT": "900"}
    service_port, bare_port = free_port(), free_port()
    logs = OUT / "http-logs"
    logs.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    try:
        t0 = time.perf_counter()
        service = Server(
            "service",
            [gunicorn, "-c", "gunicorn.conf.py"],
            REPO,
            service_env(data, PORT=str(service_port), HOST="127.0.0.1", ACCESS_LOG="", **settings),
            logs / "service.log",
        )
        servers.append(service)
        service_base = f"http://127.0.0.1:{service_port}"
        wait_ready(service, [service_base + p for p in paths])
        service_start = time.perf_counter() - t0
        print(f"service ready in {service_start:.0f} s ({args.workers} workers x {args.threads} threads)")
        t0 = time.perf_counter()
        bare_cmd = [
            gunicorn, "-w", str(args.workers), "-k", "gthread", "--threads", str(args.threads),
            "--timeout", "900", "-b", f"127.0.0.1:{bare_port}", "bare_http:app",
        ]  # fmt: skip
        bare = Server("bare", bare_cmd, args.bare.parent, {**os.environ, "BARE_N": str(n)}, logs / "bare.log")
        servers.append(bare)
        bare_url = f"http://127.0.0.1:{bare_port}/hnsw?k=10"
        wait_ready(bare, [bare_url])
        print(f"bare endpoint ready in {time.perf_counter() - t0:.0f} s")

        # wrk drops an answer slower than its timeout (2 s by default) from the latencies and counts it as a
        # socket error: a longer one keeps a slow service's p99 honest.
        base = [
            wrk, f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.duration}s",
            f"--timeout={args.wrk_timeout}s", "--latency",
        ]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            scripts = {
                name: rotate_script(p, Path(tmp) / str(n)) for n, (name, p) in enumerate(targets.items())
            }
            warm = [wrk, f"-t{args.wrk_threads}", f"-c{args.connections}", "-d5s"]
            for script in scripts.values():
                subprocess.run([*warm, "-s", str(script), service_base], capture_output=True, check=True)
            subprocess.run([*warm, bare_url], capture_output=True, check=True)
            print(f"service workers settled after the warm-up in {service.wait_settled():.0f} s")
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in [*targets, "bare_hnsw"]}
            ratios: dict[str, list[float]] = {name: [] for name in targets}
            commands = {}
            for _ in range(args.rounds):
                for name, script in scripts.items():
                    r, commands[name] = run_wrk(base, service_base, script)
                    runs[name].append(r)
                    commands[name] = commands[name].replace(f"-s {script}", _script_note(targets[name]))
                    # the bare run right after each service run: a ratio from one stretch of the machine
                    b, commands["bare_hnsw"] = run_wrk(base, bare_url, None)
                    runs["bare_hnsw"].append(b)
                    ratios[name].append(r["req_per_s"] / max(b["req_per_s"], 1e-9))
            rss = {"service": service.rss_mb(), "bare_hnsw": bare.rss_mb()}
    finally:
        for s in servers:
            s.stop()

    figures = {name: _median(r) for name, r in runs.items()}
    ratio = {name: round(statistics.median(r), 3) for name, r in ratios.items()}
    result = {
        "projects": n,
        "institutions": m,
        "workers": args.workers,
        "threads": args.threads,
        "wrk": " ".join(base[1:]),
        "commands": commands,
        "figures": figures,
        "throughput_ratio": ratio,
        "rss_mb_per_worker": rss,
        "service_ready_s": round(service_start, 1),
        "targets": {"throughput_ratio_min": 0.5, "p99_ms_max_at_100k": 30},
    }
    print(f"\nwrk: {result['wrk']} (same for every run)")
    for name, cmd in commands.items():
        print(f"  {name}: {cmd}")
    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}{'sock err':>10}{'ratio':>8}")
    for name, f in figures.items():
        print(
            f"{name[:24]:24}{f['req_per_s']:>10.1f}{f['p50_ms']:>10.2f}{f['p99_ms']:>10.2f}{f['non_2xx']:>10}"
            f"{f['socket_errors']:>10}{ratio.get(name, 1.0):>8.3f}"
        )
    print("ratio: the target's req/s over the bare run right after it (median of rounds; target >= 0.5)")
    print("p99 target: <= 30 ms at 100k projects, 16 connections")
    print(f"worker RSS (MB): service {rss['service']}, bare {rss['bare_hnsw']}")
    if any(f["non_2xx"] for f in figures.values()):
        print("WARNING: non-2xx responses: the figures include errors (see bench-out/http-logs)")
    if any(f["socket_errors"] for f in figures.values()):
        print("WARNING: socket errors (timeouts): those requests are missing from the latencies")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous[str(n)] = result
    args.out.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
