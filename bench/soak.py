"""Soak: mixed traffic at a steady rate against a gunicorn server this script starts and stops itself.

    python bench/soak.py                       # 30 minutes at 5 requests/s (SOAK_MINUTES, SOAK_RATE)
    python bench/soak.py --seconds 20 --rate 4 # a short run (the test does this)

The server runs on 127.0.0.1 only, on a temporary copy of the demo database and indexes
(instance/match.db and instance/index after `make setup`, or --from-db/--from-index; a fresh demo is
built when neither exists), or on --database-url (which it then writes to). The loop is open: a
request is started every 1/rate seconds whatever the answers, by a bounded pool of threads, and the
run stops by itself at the deadline. Traffic kinds and their shares of the requests:

    browse  pages, anonymous and logged in (front page, lists, details, connections, dashboard)
    rank    ranked matches through the API (projects, institutions, needs) with an API token
    write   needs created and edited through the API with a token
    move    connections moved one stage forward through the API (or re-marked when at the end)
    import  a one-row CSV import of an institution through the API

It prints the server's RSS (the master and its workers, from /proc) every --rss-every seconds, and
at the end the requests per kind with p50/p99/max latency, the errors by status, and the RSS trend.
It exits 1 on any 5xx, connection failure or server exit, else 0. Rate limits are off in the soak
server (they would measure the limiter, not the service); --keep-limits keeps them.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only: the soak never sends traffic anywhere else

#: Shares of the traffic by kind (they need not add up to anything).
MIX = {"browse": 50, "rank": 25, "write": 13, "move": 10, "import": 2}

#: Demo accounts the soak logs in with (their documented passwords, see the README).
ADMIN = ("admin", "demo-admin-2026")
FUND = ("fund", "demo-fund-2026")


# --- a tiny HTTP client (stdlib only, one connection per request: loopback is cheap) -------------------


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Client:
    """One caller: its cookies (a browser) or its token (a script)."""

    port: int
    token: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        hdrs = {"User-Agent": "match-soak/1", **(headers or {})}
        with self.lock:
            if self.cookies:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token and path.startswith("/api/"):
            hdrs["Authorization"] = f"Bearer {self.token}"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            for raw in resp.headers.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie()
                jar.load(raw)
                with self.lock:
                    for name, morsel in jar.items():
                        if morsel.value:
                            self.cookies[name] = morsel.value
                        else:
                            self.cookies.pop(name, None)
            return Answer(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def form(self, path: str, data: dict[str, str]) -> Answer:
        body = urlencode(data).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def send_json(self, method: str, path: str, data: Any) -> Answer:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return self.request(method, path, body, {"Content-Type": "application/json"})

    def upload(self, path: str, filename: str, content: bytes, mime: str) -> Answer:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {mime}\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(port: int, username: str, password: str) -> Client:
    """Return a browser-like client logged in as the account (CSRF token read from the form)."""
    client = Client(port)
    page = client.get("/login")
    m = _CSRF.search(page.text())
    data = {"username": username, "password": password, **({"csrf_token": m.group(1)} if m else {})}
    answer = client.form("/login", data)
    if answer.status != 302:
        raise RuntimeError(f"login as {username} failed: {answer.status}")
    return client


def issue_token(browser: Client, name: str) -> str:
    """Create an API token on the account page, as a person would; return it."""
    page = browser.get("/account")
    m = _CSRF.search(page.text())
    answer = browser.form(
        "/account/tokens", {"token_name": name, **({"csrf_token": m.group(1)} if m else {})}
    )
    found = re.search(r'id="new-token">([^<]+)<', answer.text())
    if not found:
        raise RuntimeError(f"could not create an API token: {answer.status}")
    return found.group(1)


# --- the server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], env=env, cwd=REPO, check=True)


def prepare_database(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> str:
    """Return the database URL the server will use, copying (or building) the demo database first."""
    if args.database_url:
        return str(args.database_url)
    db_file, index_dir = workdir / "match.db", workdir / "index"
    source = Path(args.from_db) if args.from_db else REPO / "instance" / "match.db"
    source_index = Path(args.from_index) if args.from_index else source.parent / "index"
    env["MATCH_INDEX_DIR"] = str(index_dir)
    url = f"sqlite:///{db_file}"
    if source.exists():
        with sqlite3.connect(source) as src, sqlite3.connect(db_file) as dst:
            src.backup(dst)  # consistent even in WAL mode, unlike a file copy
        if source_index.is_dir():
            shutil.copytree(source_index, index_dir)
        print(f"database: a copy of {source}", flush=True)
        _flask({**env, "MATCH_DATABASE_URL": url}, "init-db")  # bring an older copy's schema up to date
    else:
        print("database: building a fresh demo (init-db, demo load, embed) ...", flush=True)
        build_env = {**env, "MATCH_DATABASE_URL": url}
        _flask(build_env, "init-db")
        _flask(build_env, "demo", "load")
        _flask(build_env, "embed")
    return url


def start_server(args: argparse.Namespace, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start gunicorn on 127.0.0.1 and wait until the front page answers."""
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--timeout",
        "120",
        "--bind",
        f"{HOST}:{args.port}",
        "app:create_app()",
    ]
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    probe = Client(args.port)
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} while starting; see {log_path}")
        try:
            if probe.get("/").status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"the server did not answer within {args.start_timeout} s; see {log_path}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn gracefully (SIGTERM), forcefully after 30 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(x) for x in task.read_text().split()]
        except OSError:
            continue
    return kids


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def server_rss_mib(pid: int) -> tuple[float, int]:
    """Return the resident memory of the server and all its descendants (MiB), and how many processes."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return sum(_rss_kib(p) for p in pids) / 1024, len(pids)


# --- the traffic ----------------------------------------------------------------------------------------


@dataclass
class World:
    """What the traffic picks from: ids seen in the demo, and the callers."""

    anon: Client
    admin: Client
    fund: Client
    admin_api: Client
    fund_api: Client
    projects: list[int]
    institutions: list[int]
    needs: list[int]
    connections: list[int]
    fund_institution: int | None
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    made_needs: list[int] = field(default_factory=list)

    def pick(self, items: list[int]) -> int:
        with self.lock:
            return self.rng.choice(items)


def _ids(client: Client, path: str, pages: int = 3) -> list[int]:
    out: list[int] = []
    for page in range(1, pages + 1):
        answer = client.get(f"{path}{'&' if '?' in path else '?'}per_page=100&page={page}")
        if answer.status != 200:
            break
        items = answer.json().get("items", [])
        out += [int(i["id"]) for i in items]
        if len(items) < 100:
            break
    return out


def build_world(port: int, seed: int) -> World:
    admin = login(port, *ADMIN)
    fund = login(port, *FUND)
    admin_api = Client(port, token=issue_token(admin, "soak-admin"))
    fund_api = Client(port, token=issue_token(fund, "soak-fund"))
    fund_inst = None
    m = re.search(r'href="/institutions/(\d+)"', fund.get("/account").text())
    if m:
        fund_inst = int(m.group(1))
    world = World(
        anon=Client(port),
        admin=admin,
        fund=fund,
        admin_api=admin_api,
        fund_api=fund_api,
        projects=_ids(admin_api, "/api/projects"),
        institutions=_ids(admin_api, "/api/institutions"),
        needs=_ids(admin_api, "/api/needs"),
        connections=_ids(admin_api, "/api/connections"),
        fund_institution=fund_inst,
        rng=random.Random(seed),
    )
    if not (world.projects and world.institutions):
        raise RuntimeError("the soak database has no projects or institutions")
    return world


QUERIES = ["人工智能", "新能源", "医疗器械", "智能制造", "天使轮", "芯片", "生物医药", "新材料"]


def do_browse(w: World) -> Answer:
    who = w.rng.choice([w.anon, w.anon, w.fund, w.admin])
    choices = [
        "/",
        f"/projects/?q={quote(w.rng.choice(QUERIES))}",
        f"/projects/{w.pick(w.projects)}",
        "/institutions/",
        f"/institutions/{w.pick(w.institutions)}",
        f"/projects/?page={w.rng.randint(1, 5)}",
    ]
    if who is not w.anon:
        choices += ["/needs/", "/account"]
        if w.needs:
            choices.append(f"/needs/{w.pick(w.needs)}")
    if who is w.admin:
        choices += [
            "/connections/",
            "/dashboard",
            f"/connections/{w.pick(w.connections)}" if w.connections else "/",
        ]
    return who.get(w.rng.choice(choices))


def do_rank(w: World) -> Answer:
    k = w.rng.choice([5, 10, 20])
    roll = w.rng.random()
    if roll < 0.4:
        return w.fund_api.get(f"/api/projects/{w.pick(w.projects)}/matches?k={k}")
    if roll < 0.7:
        return w.fund_api.get(f"/api/institutions/{w.pick(w.institutions)}/matches?k={k}")
    if roll < 0.85 and w.needs:
        return w.fund_api.get(f"/api/needs/{w.pick(w.needs)}/matches?k={k}")
    return w.anon.get(f"/api/projects?q={quote(w.rng.choice(QUERIES))}")


def do_write(w: World) -> Answer:
    with w.lock:
        mine = list(w.made_needs)
    if mine and w.rng.random() < 0.5:
        ident = w.rng.choice(mine)
        topic = w.rng.choice(QUERIES)
        text = f"压测更新：寻找{topic}方向的早期项目，提供投资与对接服务（{secrets.token_hex(3)}）。"
        return w.admin_api.send_json("PATCH", f"/api/needs/{ident}", {"description": text})
    inst = w.fund_institution or w.pick(w.institutions)
    body = {
        "institution_id": inst,
        "title": f"压测需求 {secrets.token_hex(3)}",
        "description": f"长时间运行测试写入的对接需求：关注{w.rng.choice(QUERIES)}领域的创新项目。",
    }
    answer = w.admin_api.send_json("POST", "/api/needs", body)
    if answer.status == 201:
        with w.lock:
            w.made_needs.append(int(answer.json()["id"]))
            w.needs.append(int(answer.json()["id"]))
    return answer


#: Stages a move never goes to on its own: signing needs an outcome, the others close the connection.
FINAL = {"已签约", "终止", "已拒绝"}


def do_move(w: World) -> Answer:
    if not w.connections:
        return w.admin_api.get("/api/connections")
    ident = w.pick(w.connections)
    current = w.admin_api.get(f"/api/connections/{ident}")
    if current.status != 200:
        return current
    forward = [s for s in current.json().get("next_stages", []) if s not in FINAL]
    if forward:
        body = {"to_stage": forward[0], "note": "压测推进"}
        return w.admin_api.send_json("POST", f"/api/connections/{ident}/move", body)
    body = {"shortlisted": w.rng.random() < 0.5, "note": "压测标记"}
    return w.admin_api.send_json("POST", f"/api/connections/{ident}/shortlist", body)


_IMPORT_HEADER: list[str] = []


def do_import(w: World) -> Answer:
    if not _IMPORT_HEADER:
        template = w.admin.get("/imports/template.csv?kind=institutions")
        _IMPORT_HEADER[:] = next(csv.reader(io.StringIO(template.text().lstrip("\ufeff"))))
    row = {label: "" for label in _IMPORT_HEADER}
    name_col, kind_col, desc_col = _IMPORT_HEADER[0], _IMPORT_HEADER[1], _IMPORT_HEADER[11]
    row[name_col] = f"压测导入机构{secrets.token_hex(4)}"
    row[kind_col] = "创业投资机构"
    row[desc_col] = "长时间运行测试导入的服务机构，关注早期科技创新项目。"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(_IMPORT_HEADER)
    writer.writerow([row[c] for c in _IMPORT_HEADER])
    return w.admin_api.upload(
        "/api/imports/institutions", "soak.csv", buf.getvalue().encode("utf-8"), "text/csv"
    )


KINDS: dict[str, Callable[[World], Answer]] = {
    "browse": do_browse,
    "rank": do_rank,
    "write": do_write,
    "move": do_move,
    "import": do_import,
}


def warm_up(w: World) -> None:
    """Send one request of each kind, untimed: the first ranking loads the model, the first import
    the encoder; a soak measures the steady state, and the start-up is not part of it."""
    started = time.perf_counter()
    for kind, action in KINDS.items():
        answer = action(w)
        if answer.status >= 500:
            raise RuntimeError(f"warm-up {kind} answered {answer.status}")
    print(f"warmed up in {time.perf_counter() - started:.1f} s", flush=True)


# --- the run --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    late: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, status: str) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def one(w: World, tally: Tally, kind: str) -> None:
    started = time.perf_counter()
    try:
        status = str(KINDS[kind](w).status)
    except (OSError, http.client.HTTPException) as exc:
        status = f"conn:{type(exc).__name__}"
    except Exception as exc:  # a bug in the soak itself must not stop the run, but it is counted
        status = f"soak:{type(exc).__name__}"
    tally.add(kind, time.perf_counter() - started, status)


def drive(args: argparse.Namespace, w: World, proc: subprocess.Popen[bytes]) -> tuple[Tally, list[Any]]:
    """Send requests at the rate until the deadline; sample the server's RSS; return the tallies."""
    tally = Tally()
    rss: list[Any] = []
    kinds, weights = list(MIX), list(MIX.values())
    interval = 1.0 / args.rate
    start = time.monotonic()
    deadline = start + args.duration
    next_rss = start
    n = 0
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        pending: list[Any] = []
        while True:
            now = time.monotonic()
            if now >= deadline or proc.poll() is not None:
                break
            if now >= next_rss:
                mib, procs = server_rss_mib(proc.pid)
                rss.append((round(now - start), round(mib, 1), procs))
                done = sum(len(v) for v in tally.latencies.values())
                print(
                    f"  t={now - start:6.0f}s  rss={mib:7.1f} MiB ({procs} processes)  requests={done}",
                    flush=True,
                )
                next_rss += args.rss_every
            pending = [f for f in pending if not f.done()]
            if len(pending) >= args.concurrency:
                tally.late += 1  # every worker busy: the request starts late (the rate is not kept)
            kind = w.rng.choices(kinds, weights)[0]
            pending.append(pool.submit(one, w, tally, kind))
            n += 1
            time.sleep(max(0.0, start + n * interval - time.monotonic()))
    mib, procs = server_rss_mib(proc.pid)
    rss.append((round(time.monotonic() - start), round(mib, 1), procs))
    return tally, rss


def summary(args: argparse.Namespace, tally: Tally, rss: list[Any], server_alive: bool) -> dict[str, Any]:
    kinds = {}
    for kind in MIX:
        lat = tally.latencies.get(kind, [])
        kinds[kind] = {
            "requests": len(lat),
            "p50_ms": round(percentile(lat, 0.50) * 1000, 1),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 1),
            "max_ms": round(max(lat, default=0.0) * 1000, 1),
            "statuses": dict(sorted(tally.statuses.get(kind, Counter()).items())),
        }
    statuses: Counter[str] = Counter()
    for counts in tally.statuses.values():
        statuses.update(counts)
    server_errors = sum(v for k, v in statuses.items() if k.startswith("5"))
    failures = sum(v for k, v in statuses.items() if not k[:1].isdigit())
    return {
        "seconds": args.duration,
        "rate": args.rate,
        "requests": sum(statuses.values()),
        "late_starts": tally.late,
        "statuses": dict(sorted(statuses.items())),
        "server_errors": server_errors,
        "failures": failures,
        "server_alive": server_alive,
        "kinds": kinds,
        "rss_mib": rss,
    }


def print_summary(s: dict[str, Any]) -> None:
    print(
        f"\nsoak: {s['seconds']:.0f} s at {s['rate']} requests/s, {s['requests']} requests, "
        f"{s['late_starts']} late starts, server {'alive' if s['server_alive'] else 'DIED'}"
    )
    print(f"{'kind':8} {'requests':>9} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}  statuses")
    for kind, k in s["kinds"].items():
        codes = ", ".join(f"{code}: {n}" for code, n in k["statuses"].items())
        print(
            f"{kind:8} {k['requests']:9d} {k['p50_ms']:9.1f} {k['p99_ms']:9.1f} {k['max_ms']:9.1f}  {codes}"
        )
    errors = {k: v for k, v in s["statuses"].items() if not k.startswith(("2", "3"))}
    print(
        f"errors by status: {errors or 'none'}  (5xx: {s['server_errors']}, connection/soak failures: "
        f"{s['failures']})"
    )
    trend = "  ".join(f"{t}s:{m} MiB" for t, m, _p in s["rss_mib"])
    print(f"server RSS over time: {trend}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    p.add_argument("--seconds", type=float, default=None, help="run length in seconds (overrides --minutes)")
    p.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 5)), help="requests/s")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight at most")
    p.add_argument("--workers", type=int, default=int(os.environ.get("SOAK_WORKERS", 1)))
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--rss-every", type=float, default=60.0, help="seconds between RSS samples")
    p.add_argument("--from-db", help="SQLite demo database to copy (default: instance/match.db)")
    p.add_argument("--from-index", help="index folder to copy (default: beside the database)")
    p.add_argument("--database-url", help="run against this database instead of a copy (it is written to)")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--keep-limits", action="store_true", help="keep the rate limits on")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--json", help="also write the summary to this file")
    args = p.parse_args(argv)
    args.duration = args.seconds if args.seconds is not None else args.minutes * 60
    if not 0 < args.duration <= 24 * 3600 or not 0 < args.rate <= 500:
        p.error("the run must last between 0 and 24 hours at between 0 and 500 requests/s")
    args.rss_every = min(args.rss_every, max(1.0, args.duration / 4))
    args.port = args.port or free_port()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="match-soak-"))
    env = {
        **os.environ,
        "MATCH_SECRET_KEY": secrets.token_hex(32),
        "MATCH_SESSION_COOKIE_SECURE": "false",  # plain http on loopback
        "HF_HUB_OFFLINE": "1",
    }
    if not args.keep_limits:
        env["MATCH_RATELIMIT_ENABLED"] = "false"
    proc = None
    try:
        env["MATCH_DATABASE_URL"] = prepare_database(args, workdir, env)
        print(
            f"starting gunicorn on {HOST}:{args.port} ({args.workers} worker(s) × {args.threads} threads)",
            flush=True,
        )
        proc = start_server(args, env, workdir / "server.log")
        world = build_world(args.port, args.seed)
        warm_up(world)
        print(f"driving {args.duration:.0f} s at {args.rate} requests/s; mix {MIX}", flush=True)
        tally, rss = drive(args, world, proc)
        alive = proc.poll() is None
        result = summary(args, tally, rss, alive)
        print_summary(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        if result["server_errors"] or result["failures"] or not alive:
            log = (workdir / "server.log").read_text("utf-8", "replace")
            print("\nlast lines of the server log:\n" + "\n".join(log.splitlines()[-40:]))
            return 1
        return 0
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
