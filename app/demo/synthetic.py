"""Synthetic scale data for benchmarks: many projects and institutions with vectors, nothing encoded.

``flask --app app demo synthetic --projects 100000 --institutions 2000`` fills an empty database with
projects spread over every contest of the catalogue and institutions of every kind. Their texts are
short descriptions drawn from the demo generator's vocabulary (product lines, customers, technical
sentences), so BM25 has real words to match. Their vectors are clustered random unit vectors (dim 384:
one centre per industry, one per product line, plus noise) stored under the model name ``synthetic``
with the SHA-256 of each record's text, so nothing is encoded; serve them with
``MATCH_EMBEDDING_MODEL=synthetic`` (embeddings' ``synthetic`` backend gives any text written later a
hash-seeded random vector: benchmarks only, the rankings it gives mean nothing). A connection history
is walked through the real state machine (app/pipeline/demo.py), some pairs up to a signed outcome; past
a few thousand walks per side, a connection replays a walked history moved in time (``--events 1000000``
loads in minutes).

Rows go in with bulk INSERTs in chunks, never ORM objects one by one: 100,000 projects load in minutes.
The command refuses a database holding any record that is not synthetic (demo or real data).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.demo.banks import BANKS
from app.pipeline.demo import DEMO_AS_OF, _walk
from app.pipeline.states import CHINA_TZ
from embeddings import institution_text, project_text, text_hash
from embeddings.backends import SYNTHETIC_DIM, SYNTHETIC_NAME
from models import (
    Award,
    Connection,
    Contest,
    EmbeddingRecord,
    FundingRound,
    Institution,
    InstitutionKind,
    Need,
    Project,
    ProjectGroup,
    ServiceKind,
    Stage,
)
from models.base import utcnow
from models.pipeline import ConnectionEvent

TOPICS, LINES = BANKS["TOPICS"], BANKS["LINES"]
PROVINCE_CITIES, BRAND_CHARS = BANKS["PROVINCE_CITIES"], BANKS["BRAND_CHARS"]

#: Rows per INSERT statement batch.
CHUNK = 5000
#: History events per project when --events is not given (the demo has about eight).
EVENTS_PER_PROJECT = 2
#: Connections per side of the market walked through the state machine; later ones replay their histories.
TEMPLATES = 1500
#: Spread of a vector around its cluster centre (per dimension; cosine to the centre is about 0.8).
NOISE = 0.035

KIND_SUFFIX = {
    InstitutionKind.GOV_FUND: "产业投资引导基金",
    InstitutionKind.VC: "创业投资有限公司",
    InstitutionKind.BANK: "银行科技支行",
    InstitutionKind.SME_BASE: "小微企业创业创新基地",
    InstitutionKind.INDUSTRY_PARK: "产业示范园",
    InstitutionKind.COOP_ZONE: "中外中小企业合作区",
    InstitutionKind.SERVICE_PLATFORM: "中小企业公共服务平台",
}
KIND_LINE = {
    "fund": "重点投资{ind}领域处于{stage}的企业，单个项目{lo}万元至{hi}万元，关注{product}等方向。",
    "base": "园区聚焦{ind}产业，可提供标准厂房和研发办公空间约{area}平方米，已入驻{product}等项目。",
    "platform": "平台为{ind}领域中小企业提供{service}服务，曾服务{product}等企业。",
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class SyntheticRefused(RuntimeError):
    """The database holds records that are not synthetic, or lacks the contest catalogue."""


def _fill(text: str, rng: random.Random) -> str:
    """Replace the vocabulary's {n}/{c}/{p}/... placeholders with small plausible numbers."""
    return _PLACEHOLDER.sub(lambda _m: str(rng.randint(3, 60)), text)


def project_description(line: tuple[str, str, str, str, str], rng: random.Random) -> str:
    """Return a short project description for a product line (product, customer, technical sentence)."""
    _industry, _topic, product, customer, tech = line
    return f"{product}，面向{customer}。{_fill(tech, rng)}"


def product_lines() -> list[tuple[str, str, str, str, str]]:
    """Return every product line as (industry, topic, product, customer, technical sentence)."""
    out = []
    for topic, lines in LINES.items():
        industry = TOPICS[topic]["industry"] if topic in TOPICS else None
        if industry is None:
            continue
        for product, customer, _problems, techs in lines:
            out.append((industry, topic, product, customer, techs[0]))
    return out


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


class ClusterModel:
    """Clustered random unit vectors: one centre per industry, one per product line, plus noise.

    A project's vector is near its product line's centre, which sits inside its industry's; an
    institution's is near the mean of its industries' and picked lines' centres. The spread
    (``NOISE``) gives neighbourhoods like those of the demo's real e5 vectors once their common
    direction is removed: cosine of a vector to its nearest other about 0.6 and to its tenth
    nearest about 0.2 among a few hundred, next to 0.57 and 0.18 for the demo's projects
    (``bench/bench_matching.py`` uses the same model).
    """

    def __init__(self, lines: Sequence[tuple[str, ...]], nrng: np.random.Generator) -> None:
        self.industries = sorted({line[0] for line in lines})
        self.ind_index = {ind: i for i, ind in enumerate(self.industries)}
        self.ind_centres = _unit(nrng.standard_normal((len(self.industries), SYNTHETIC_DIM)))
        self.line_centres = _unit(nrng.standard_normal((len(lines), SYNTHETIC_DIM)))
        self.line_industry = np.array([self.ind_index[line[0]] for line in lines])
        self.nrng = nrng

    def projects(self, line_of: np.ndarray) -> np.ndarray:
        """Return one unit vector per project, given each project's product line (row index)."""
        centres = 0.55 * self.ind_centres[self.line_industry[line_of]] + 0.75 * self.line_centres[line_of]
        return _unit(centres + self.nrng.standard_normal(centres.shape) * NOISE)

    def institutions(
        self, industries: Sequence[Sequence[str]], picked: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """Return one unit vector per institution, given its industries and picked product lines."""
        centres = np.asarray(
            [
                0.55 * self.ind_centres[[self.ind_index[i] for i in inds]].mean(axis=0)
                + 0.6 * self.line_centres[list(lines)].mean(axis=0)
                for inds, lines in zip(industries, picked, strict=True)
            ]
        ).reshape(-1, SYNTHETIC_DIM)
        return _unit(centres + self.nrng.standard_normal(centres.shape) * NOISE)


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _insert_with_ids(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows under new consecutive ids (after the largest one) and return the ids, in order.

    Explicit ids keep the INSERT a plain executemany: RETURNING the generated ids row by row is ten times
    slower at this size. PostgreSQL's sequence is then moved past them, so later inserts do not collide.
    """
    ids = _next_ids(session, model, len(rows))
    _insert(session, model, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    _move_sequence(session, model, ids)
    return ids


def _next_ids(session: Session, model: Any, n: int) -> list[int]:
    first = (session.scalar(select(func.max(model.id))) or 0) + 1
    return list(range(first, first + n))


def _move_sequence(session: Session, model: Any, ids: Sequence[int]) -> None:
    if session.get_bind().dialect.name == "postgresql" and ids:
        table = model.__table__.name
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {ids[-1]})"))


def _insert(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (every row with every key) as one executemany per chunk.

    A Core INSERT on the table: the ORM's bulk path splits a chunk wherever rows leave different
    columns None, which here means a statement per row or two. Column types still convert the values.
    """
    stmt = insert(model.__table__)
    for chunk in _chunks(rows):
        session.execute(stmt, chunk)


def _store_vectors(
    session: Session, kind: str, ids: Sequence[int], texts: Sequence[str], vecs: np.ndarray
) -> None:
    """Insert the vectors of these records under the model name ``synthetic``, with their text hashes."""
    now = utcnow()
    rows = [
        {
            "owner_kind": kind,
            "owner_id": owner_id,
            "model": SYNTHETIC_NAME,
            "dim": SYNTHETIC_DIM,
            "text_hash": text_hash(body),
            "vector": vec.tobytes(),
            "updated_at": now,
        }
        for owner_id, body, vec in zip(ids, texts, vecs, strict=True)
    ]
    _insert(session, EmbeddingRecord, rows)


def check_empty(session: Session) -> None:
    """Raise SyntheticRefused when the database holds a record without a synthetic vector, or no contests."""
    for kind, model in (("project", Project), ("institution", Institution), ("need", Need)):
        total = session.scalar(select(func.count(model.id))) or 0
        synthetic = (
            session.scalar(
                select(func.count(EmbeddingRecord.id)).where(
                    EmbeddingRecord.owner_kind == kind, EmbeddingRecord.model == SYNTHETIC_NAME
                )
            )
            or 0
        )
        if total > synthetic:
            raise SyntheticRefused(
                f"the database already holds {total - synthetic} {kind} records that are not synthetic "
                "(demo or real data): point MATCH_DATABASE_URL at an empty database and run init-db"
            )
    if not session.scalar(select(func.count(Contest.id))):
        raise SyntheticRefused("the contest catalogue is empty: run `flask --app app init-db` first")


def load_synthetic(
    engine: Engine,
    n_projects: int,
    n_institutions: int,
    seed: int = 0,
    n_events: int | None = None,
    echo: Callable[[str], Any] = print,
) -> dict[str, int]:
    """Insert synthetic projects, institutions, their vectors and a connection history; return counts.

    Args:
        engine: the configured database, migrated and holding the contest catalogue.
        n_events: about how many history events to write (default two per project).
        echo: where progress lines go.

    Raises:
        SyntheticRefused: the database holds records that are not synthetic, or no contests.
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    session = Session(engine)
    try:
        check_empty(session)
        contests = list(session.scalars(select(Contest.id).order_by(Contest.id)))
        lines = product_lines()
        model = ClusterModel(lines, nrng)
        industries = model.industries
        by_industry: dict[str, list[int]] = {}
        for li, line in enumerate(lines):
            by_industry.setdefault(line[0], []).append(li)
        provinces = list(PROVINCE_CITIES)
        brands = list(BRAND_CHARS)
        now = utcnow()

        # --- projects ---
        line_of = nrng.integers(0, len(lines), n_projects)
        rows, texts = [], []
        for li in line_of.tolist():
            industry, _topic, product, _customer, _tech = lines[li]
            province = rng.choice(provinces)
            stage = rng.choice(list(Stage))
            needs = [n for n, p in (("融资", 0.6), ("落地", 0.3)) if rng.random() < p]
            needs += rng.sample(ServiceKind.labels(), rng.randint(0, 2))
            asks = "融资" in needs
            name = f"{rng.choice(brands)}{rng.choice(brands)}{product}"
            description = project_description(lines[li], rng)
            rows.append(
                {
                    "name": name,
                    "group": rng.choice(list(ProjectGroup)),
                    "contest_id": rng.choice(contests),
                    "award": Award.NONE if rng.random() < 0.7 else rng.choice(list(Award)),
                    "industry": industry,
                    "track": None,
                    "province": province,
                    "city": rng.choice(PROVINCE_CITIES[province]),
                    "stage": stage,
                    "amount_wan": float(rng.choice([100, 300, 500, 800, 1500, 3000])) if asks else None,
                    "funding_round": rng.choice(list(FundingRound)[:6]) if asks else None,
                    "description": description,
                    "needs": needs,
                    "contact_name": f"联系人{rng.randint(1, 9999)}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            texts.append(project_text(name, description, industry, None))
        project_ids = _insert_with_ids(session, Project, rows)
        for start in range(0, n_projects, CHUNK):  # a chunk at a time: 1M vectors would not fit twice
            part = line_of[start : start + CHUNK]
            vecs = model.projects(part)
            end = start + len(part)
            _store_vectors(session, "project", project_ids[start:end], texts[start:end], vecs)
        session.commit()
        projects = rows
        echo(f"  {n_projects} projects and their vectors")

        # --- institutions: every kind, round robin ---
        kinds = list(InstitutionKind)
        rows, texts, inst_industries, inst_lines = [], [], [], []
        for k in range(n_institutions):
            kind = kinds[k % len(kinds)]
            side = kind.side
            inds = rng.sample(industries, rng.randint(1, 3))
            province = rng.choice(provinces)
            stages = sorted(
                rng.sample([s.value for s in Stage], rng.randint(2, 4)), key=[s.value for s in Stage].index
            )
            services = rng.sample(ServiceKind.labels(), rng.randint(2, 4)) if side == "platform" else []
            picked = [rng.choice(by_industry[ind]) for ind in inds]
            lo = float(rng.choice([100, 300, 500, 1000])) if side == "fund" else None
            hi = lo * rng.choice([5, 10, 20]) if lo else None
            area = float(rng.choice([2000, 5000, 12000, 30000])) if side == "base" else None
            brand = rng.choice(brands) + rng.choice(brands)
            name = f"{rng.choice(PROVINCE_CITIES[province])}{brand}{KIND_SUFFIX[kind]}"
            description = KIND_LINE[side].format(
                ind="、".join(inds),
                stage="、".join(stages),
                lo=int(lo or 0),
                hi=int(hi or 0),
                area=int(area or 0),
                service="、".join(services),
                product="、".join(lines[li][2] for li in picked),
            )
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "province": province,
                    "city": rng.choice(PROVINCE_CITIES[province]),
                    "industries": inds,
                    "stages": stages,
                    "ticket_min_wan": lo,
                    "ticket_max_wan": hi,
                    "services": services,
                    "space_m2": area,
                    "capacity": int(area // 400) if area else None,
                    "description": description,
                    "contact_name": f"对接人{rng.randint(1, 9999)}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            texts.append(institution_text(name, kind.value, description, inds, stages, services))
            inst_industries.append(inds)
            inst_lines.append(picked)
        institution_ids = _insert_with_ids(session, Institution, rows)
        vecs = model.institutions(inst_industries, inst_lines)
        _store_vectors(session, "institution", institution_ids, texts, vecs)
        session.commit()
        echo(f"  {n_institutions} institutions of {len(kinds)} kinds and their vectors")

        counts = _history(
            session,
            rng,
            projects,
            project_ids,
            rows,
            institution_ids,
            n_events if n_events is not None else EVENTS_PER_PROJECT * n_projects,
        )
        echo(f"  {counts['connections']} connections with {counts['events']} history events")
        return {"projects": n_projects, "institutions": n_institutions, **counts}
    finally:
        session.close()


def _fits(project: dict[str, Any], inst: dict[str, Any]) -> bool:
    """Return True when the project asks for what the institution offers (the demo's first rule)."""
    side = inst["kind"].side
    if side == "fund":
        return "融资" in project["needs"]
    if side == "base":
        return "落地" in project["needs"]
    return bool(set(project["needs"]) & set(inst["services"]))


def _history(
    session: Session,
    rng: random.Random,
    projects: list[dict[str, Any]],
    project_ids: list[int],
    institutions: list[dict[str, Any]],
    institution_ids: list[int],
    n_events: int,
) -> dict[str, int]:
    """Write connections until about n_events history events; bulk-insert them.

    The first TEMPLATES connections of each side of the market are walked through the real state machine
    (ORM objects, every rule checked); every later one replays the history of a walked connection of the
    same side on its own pair, moved in time (a random start, its whole history before the as-of date).
    Walking costs about a millisecond per event, replaying a few microseconds: a million events load in
    minutes, and every history is still one the state machine wrote.
    """
    as_of = min(DEMO_AS_OF, datetime.now(UTC)).astimezone(UTC)
    local = as_of.astimezone(CHINA_TZ).date()
    first = datetime.combine(date(local.year - 1, local.month, 1), time(9), CHINA_TZ).astimezone(UTC)
    span = (as_of - first).total_seconds()
    by_industry: dict[str, list[int]] = {}
    for k, p in enumerate(projects):
        by_industry.setdefault(p["industry"], []).append(k)
    # Transient rows for the state machine (never added to the session).
    insts = [Institution(id=iid, **row) for iid, row in zip(institution_ids, institutions, strict=True)]
    columns = [a.key for a in Connection.__mapper__.column_attrs if a.key != "id"]
    ev_columns = [
        a.key for a in ConnectionEvent.__mapper__.column_attrs if a.key not in ("id", "connection_id")
    ]
    templates: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    rows: list[dict[str, Any]] = []
    histories: list[list[dict[str, Any]]] = []
    taken: set[tuple[int, int]] = set()
    events = tries = 0
    while events < n_events and tries < 20 * n_events + 100:
        tries += 1
        j = rng.randrange(len(insts))
        pool = by_industry.get(rng.choice(institutions[j]["industries"]))
        if not pool:
            continue
        k = rng.choice(pool)
        if (k, j) in taken or not _fits(projects[k], institutions[j]):
            continue
        taken.add((k, j))
        side = institutions[j]["kind"].side
        walked = templates.setdefault(side, [])
        if len(walked) < TEMPLATES:
            proj = Project(id=project_ids[k], **projects[k])
            start = first + timedelta(seconds=span * (rng.random() ** 0.7) * 0.97)
            c = _walk(rng, proj, insts[j], start, as_of)
            row = {key: getattr(c, key) for key in columns}
            row.update(updated_at=c.last_activity_at)
            history = [{key: getattr(e, key) for key in ev_columns} for e in c.events]
            walked.append((row, history))
        else:
            row, history = _replay(rng, *rng.choice(walked), first, as_of)
        row.update(project_id=project_ids[k], institution_id=institution_ids[j])
        rows.append(row)
        histories.append(history)
        events += len(history)
    ids = _insert_with_ids(session, Connection, rows)
    ev_rows = [{"connection_id": cid, **e} for cid, hist in zip(ids, histories, strict=True) for e in hist]
    ev_ids = _next_ids(session, ConnectionEvent, len(ev_rows))  # in each connection's order of events
    for ev_id, row in zip(ev_ids, ev_rows, strict=True):
        row["id"] = ev_id
    # Without a detail the column is left out (SQL NULL, as the ORM writes it), not JSON 'null'.
    _insert(session, ConnectionEvent, [r for r in ev_rows if r["detail"] is not None])
    _insert(
        session,
        ConnectionEvent,
        [{k: v for k, v in r.items() if k != "detail"} for r in ev_rows if r["detail"] is None],
    )
    _move_sequence(session, ConnectionEvent, ev_ids)
    session.commit()
    return {"connections": len(rows), "events": len(ev_rows)}


def _replay(
    rng: random.Random,
    row: dict[str, Any],
    history: list[dict[str, Any]],
    first: datetime,
    as_of: datetime,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return a walked connection's row and history moved to a random start (all of it before as_of)."""
    began, ended = history[0]["at"], history[-1]["at"]
    latest = as_of - (ended - began)
    room = max(0.0, (latest - first).total_seconds())
    shift = first + timedelta(seconds=room * (rng.random() ** 0.7)) - began
    days = timedelta(days=shift.days)
    out = {
        k: (v + shift if isinstance(v, datetime) else v + days if isinstance(v, date) else v)
        for k, v in row.items()
    }
    moved = []
    for e in history:
        e = {**e, "at": e["at"] + shift}
        outcome = (e["detail"] or {}).get("outcome")
        if outcome and outcome.get("date"):
            dated = (date.fromisoformat(outcome["date"]) + days).isoformat()
            e["detail"] = {**e["detail"], "outcome": {**outcome, "date": dated}}
        moved.append(e)
    return out, moved
