"""Generate the fictional demo data set: contest projects, service institutions and their needs.

Every company, person, fund, base and platform here is invented. The only real facts used are the
contest catalogue (models/data/contests_7th.csv), province and city names, and the SME size ceilings of
《中小企业划型标准规定》. Output is deterministic (fixed seed) and written to app/demo/data/.

Usage:
    python -m tools.generate_demo            # write the three JSON files, then check them
    python -m tools.generate_demo --check    # only check the files already written
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.demo.banks import BANKS
from app.imports import PROJECT_COLUMNS
from models import enums

SEED = 20221027

ROOT = Path(__file__).resolve().parents[1]
CONTESTS_CSV = ROOT / "models" / "data" / "contests_7th.csv"
OUT_DIR = ROOT / "app" / "demo" / "data"


# The contest's vocabularies come from models.enums (their one source); the text banks (sentences,
# names, places, quotas) from app/demo/data/banks.json, which `flask demo synthetic` reads too.
INDUSTRIES = list(enums.INDUSTRIES)
STAGES = enums.Stage.labels()
ROUNDS = enums.FundingRound.labels()
AWARDS = enums.Award.labels()
GROUPS = enums.ProjectGroup.labels()
SERVICES = enums.ServiceKind.labels()
NEEDS = list(enums.PROJECT_NEEDS)
KINDS = enums.InstitutionKind.labels()
FUND_KINDS = {k.value for k in enums.InstitutionKind if k.side == "fund"}
BASE_KINDS = {k.value for k in enums.InstitutionKind if k.side == "base"}
#: The fields of a demo project, in file order: the import's project columns up to revenue_wan, with
#: funding_round spelled "round" (app/demo/load.py reads it back as funding_round).
PROJECT_KEYS = [
    "round" if c == "funding_round" else c
    for c in PROJECT_COLUMNS[: PROJECT_COLUMNS.index("revenue_wan") + 1]
]

AWARD_QUOTA = BANKS["AWARD_QUOTA"]
KIND_MIN = BANKS["KIND_MIN"]
PROVINCE_CITIES = BANKS["PROVINCE_CITIES"]
SEPARATE_CITIES = set(BANKS["SEPARATE_CITIES"])
BINGTUAN_CITIES = BANKS["BINGTUAN_CITIES"]
CONTEST_CITY = BANKS["CONTEST_CITY"]
PROVINCE_LEAN = BANKS["PROVINCE_LEAN"]
OVERSEAS_COUNTRIES = BANKS["OVERSEAS_COUNTRIES"]
BRAND_CHARS = BANKS["BRAND_CHARS"]
SURNAMES = BANKS["SURNAMES"]
GIVEN_CHARS = BANKS["GIVEN_CHARS"]
TOPICS = BANKS["TOPICS"]
#: Product lines per topic: (product, typical customer scene, pain points, technology sentences). Pain
#: and technology sentences belong to one product so that a description never mixes products.
Line = tuple[str, str, list[str], list[str]]
LINES: dict[str, list[Line]] = BANKS["LINES"]
OPEN_ENT = BANKS["OPEN_ENT"]
BRIDGE_ENT = BANKS["BRIDGE_ENT"]
TRAC_FIRST = BANKS["TRAC_FIRST"]
REVENUE = BANKS["REVENUE"]
GROWTH = BANKS["GROWTH"]
STAFF = BANKS["STAFF"]
GENERIC_TECH = BANKS["GENERIC_TECH"]
ASK_FIN = BANKS["ASK_FIN"]
ASK_LOAN = BANKS["ASK_LOAN"]
ASK_SERVICE = BANKS["ASK_SERVICE"]
ASK_LAND = BANKS["ASK_LAND"]
OPEN_MAKER = BANKS["OPEN_MAKER"]
BRIDGE_MAKER = BANKS["BRIDGE_MAKER"]
MAKER_PROGRESS = BANKS["MAKER_PROGRESS"]
MAKER_PROGRESS_SOFT = BANKS["MAKER_PROGRESS_SOFT"]
MAKER_PLAN = BANKS["MAKER_PLAN"]
OPEN_OVERSEAS = BANKS["OPEN_OVERSEAS"]
TAIL_OVERSEAS = BANKS["TAIL_OVERSEAS"]
TEAM_ENT = BANKS["TEAM_ENT"]
TEAM_MAKER = BANKS["TEAM_MAKER"]
SCHOOLS = BANKS["SCHOOLS"]
MAKER_SCHOOLS = BANKS["MAKER_SCHOOLS"]
DEGREES = BANKS["DEGREES"]
MAKER_DEGREES = BANKS["MAKER_DEGREES"]
MAKER_USES = BANKS["MAKER_USES"]
MAKER_USES_SOFT = BANKS["MAKER_USES_SOFT"]
SOFT_WORDS = BANKS["SOFT_WORDS"]
REGIONS = BANKS["REGIONS"]
IP_ITEM = BANKS["IP_ITEM"]
IP_MAKER = BANKS["IP_MAKER"]
ENT_SIZE = BANKS["ENT_SIZE"]
STAGE_ROUNDS = BANKS["STAGE_ROUNDS"]
FOUNDED = BANKS["FOUNDED"]
TITLES = BANKS["TITLES"]
REGIONAL_COUNT = BANKS["REGIONAL_COUNT"]
REGIONAL_DEFAULT = BANKS["REGIONAL_DEFAULT"]
OTHER_COUNT = BANKS["OTHER_COUNT"]
TRACK_TOPIC = BANKS["TRACK_TOPIC"]
PROJECT_FRAMES = BANKS["PROJECT_FRAMES"]
MAKER_FRAMES = BANKS["MAKER_FRAMES"]
INSTITUTION_COUNT = BANKS["INSTITUTION_COUNT"]
GOV_NAMES = BANKS["GOV_NAMES"]
GOV_WHO = BANKS["GOV_WHO"]
GOV_WHAT = BANKS["GOV_WHAT"]
GOV_LIKE = BANKS["GOV_LIKE"]
GOV_COND = BANKS["GOV_COND"]
VC_NAMES = BANKS["VC_NAMES"]
VC_PROFILES = BANKS["VC_PROFILES"]
VC_WHO = BANKS["VC_WHO"]
VC_WHAT = BANKS["VC_WHAT"]
VC_LIKE = BANKS["VC_LIKE"]
VC_EARLY_COND = BANKS["VC_EARLY_COND"]
VC_COND = BANKS["VC_COND"]
BANK_NAMES = BANKS["BANK_NAMES"]
BANK_WHO = BANKS["BANK_WHO"]
BANK_WHAT = BANKS["BANK_WHAT"]
BANK_COND = BANKS["BANK_COND"]
BASE_NAMES = BANKS["BASE_NAMES"]
COUNTRY_PAIRS = BANKS["COUNTRY_PAIRS"]
BASE_WHO = BANKS["BASE_WHO"]
BASE_WHAT = BANKS["BASE_WHAT"]
BASE_LIKE = BANKS["BASE_LIKE"]
BASE_COND = BANKS["BASE_COND"]
PLATFORMS = BANKS["PLATFORMS"]
PLATFORM_PLAN = BANKS["PLATFORM_PLAN"]
PLATFORM_COND = BANKS["PLATFORM_COND"]
INDWORD = BANKS["INDWORD"]
CLUSTERS = BANKS["CLUSTERS"]
NEED_TEXT = BANKS["NEED_TEXT"]
SIDE = BANKS["SIDE"]


#: SME ceilings of 《中小企业划型标准规定》 (工信部联企业〔2011〕300号) by the sector each demo
#: industry falls under: (sector, employees ceiling, revenue ceiling in 万元). A firm is an SME when it
#: is below at least one ceiling; the demo keeps every firm below both. Industries not named in
#: _NON_INDUSTRIAL are 工业.
_NON_INDUSTRIAL: dict[str, tuple[str, int, float]] = {
    **{i: ("软件和信息技术服务业", 300, 10000) for i in ("新一代信息技术", "人工智能", "区块链", "数字创意")},
    "现代农业": ("农、林、牧、渔业", 10**9, 20000),
    "现代服务业": ("其他未列明行业", 300, float("inf")),
}
SME_SECTOR: dict[str, tuple[str, int, float]] = {
    i: _NON_INDUSTRIAL.get(i, ("工业", 1000, 40000)) for i in INDUSTRIES
}


# ---------------------------------------------------------------------------------------------
# Names: invented brands and people. Each character carries its pinyin for e-mail addresses.
# ---------------------------------------------------------------------------------------------


class Namer:
    """Hand out unique fictional brands, people, phone numbers and e-mail addresses."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.brands: set[str] = set()
        self.people: set[str] = set()
        self.phones: set[str] = set()
        self.emails: set[str] = set()

    def brand(self) -> tuple[str, str]:
        """Return a new two-character brand and its pinyin."""
        chars = list(BRAND_CHARS)
        while True:
            a, b = self.rng.sample(chars, 2)
            if a + b not in self.brands and BRAND_CHARS[a] != BRAND_CHARS[b]:
                self.brands.add(a + b)
                return a + b, BRAND_CHARS[a] + BRAND_CHARS[b]

    def person(self) -> tuple[str, str, str]:
        """Return (name, phone, email) of a new fictional contact."""
        while True:
            sur = self.rng.choice(list(SURNAMES))
            given = "".join(self.rng.sample(list(GIVEN_CHARS), self.rng.choice([1, 2, 2, 2])))
            if sur + given not in self.people:
                self.people.add(sur + given)
                break
        while True:
            phone = f"1380000{self.rng.randint(0, 9999):04d}"
            if phone not in self.phones:
                self.phones.add(phone)
                break
        local = "".join(GIVEN_CHARS[c] for c in given) + "." + SURNAMES[sur]
        email, n = f"{local}@example.cn", 1
        while email in self.emails:
            n += 1
            email = f"{local}{n}@example.cn"
        self.emails.add(email)
        return sur + given, phone, email


def _is_soft(topic: dict[str, Any]) -> bool:
    """Whether a topic's projects are software or services rather than made goods."""
    return SME_SECTOR[topic["industry"]][0] != "工业" and topic["industry"] != "现代农业"


def _round_amount(x: float) -> int:
    """Round a sum in 万元 to a figure people would write (10, 50 or 100 steps)."""
    step = 10 if x < 300 else 50 if x < 2000 else 100
    return int(max(step, round(x / step) * step))


def _fill(rng: random.Random, template: str, ctx: dict[str, Any]) -> str:
    """Fill a template; numbers it asks for are drawn fresh so that repeated phrases differ."""
    nums = {
        "n": rng.randint(3, 20),
        "m": rng.randint(50, 900),
        "p": rng.randint(15, 60),
        "k": rng.randint(2, 9),
        "c": rng.randint(8, 120),
        "j": rng.randint(1, 3),
        "gm": rng.randint(25, 55),
    }
    return template.format_map({**nums, **ctx})


def _sme_cap(industry: str, emp: int, rev: float) -> tuple[int, float]:
    """Keep a firm below both SME ceilings of its sector, with some margin."""
    _, emp_max, rev_max = SME_SECTOR[industry]
    emp = min(emp, int(emp_max * 0.93)) if emp_max < 10**9 else emp
    rev = min(rev, rev_max * 0.9) if rev_max != float("inf") else rev
    return emp, rev


# ---------------------------------------------------------------------------------------------
# Projects
# ---------------------------------------------------------------------------------------------


def load_contests(path: Path = CONTESTS_CSV) -> list[dict[str, str]]:
    """Return the contest rows of the catalogue CSV."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _contest_location(rng: random.Random, contest: dict[str, str]) -> tuple[str, str, str]:
    """Return (province, city, lean key) where a project of this contest is based."""
    kind, place = contest["kind"], contest["place"]
    if kind == "区域赛":
        if place == "新疆生产建设兵团":
            return "新疆维吾尔自治区", rng.choice(BINGTUAN_CITIES), "兵团"
        if place in SEPARATE_CITIES:
            return contest["province"], place, place
        cities = [c for c in PROVINCE_CITIES[place] if c not in SEPARATE_CITIES]
        return place, rng.choice(cities), place
    if kind in ("专题赛", "赛道赛") and rng.random() < 0.5:
        prov, city = CONTEST_CITY[place]
        return prov, city, prov
    if kind == "境外区域赛":
        prov = rng.choice(["上海市", "江苏省", "浙江省", "广东省", "北京市", "四川省", "湖北省", "福建省"])
    else:
        prov = rng.choice(list(PROVINCE_CITIES))
    return prov, rng.choice(PROVINCE_CITIES[prov]), prov


def _pick_topic(rng: random.Random, contest: dict[str, str], lean_key: str, used: Counter[str]) -> str:
    """Pick a project's topic: the contest's track, the province's lean, or a balancing draw."""
    if contest["track"]:
        return TRACK_TOPIC[contest["track"]]
    lean = PROVINCE_LEAN.get(lean_key) or PROVINCE_LEAN.get(contest["province"])
    if lean and rng.random() < 0.5:
        return rng.choice(lean)
    # Best of three by industry count, so that every industry gets enough projects to match on.
    return min(rng.sample(list(TOPICS), 3), key=lambda t: used[TOPICS[t]["industry"]])


def _pick_needs(rng: random.Random, topic: dict[str, Any], group: str, stage: str) -> list[str]:
    needs: set[str] = set()
    if rng.random() < (0.85 if group == "企业组" else 0.7):
        needs.add("融资")
    if rng.random() < (0.55 if group == "创客组" or stage in ("扩张期", "研发样机") else 0.3):
        needs.add("落地")
    for svc in rng.sample(topic["services"], rng.randint(0, min(2, len(topic["services"])))):
        needs.add(svc)
    if rng.random() < 0.25:
        needs.add(rng.choice(SERVICES))
    if not needs:
        needs.add(rng.choice(topic["services"]))
    return [n for n in NEEDS if n in needs]


def _ip_text(rng: random.Random, topic: dict[str, Any], group: str, stage: str) -> str:
    if group == "创客组":
        bank = IP_MAKER if "软件著作权" in topic["ip"] else [t for t in IP_MAKER if "软件著作权" not in t]
        return _fill(rng, rng.choice(bank), {})
    scale = {"初创期": 1, "成长期": 2, "扩张期": 3, "成熟期": 4}[stage]
    parts = []
    for kind in topic["ip"]:
        hi = {"发明专利": 3, "实用新型专利": 6, "软件著作权": 8, "外观设计专利": 4}.get(kind, 2) * scale
        parts.append(IP_ITEM[kind].format(x=rng.randint(1, max(2, hi))))
    style = rng.randrange(4)
    pending = rng.randint(1, 6)
    if style == 0:
        return "已获授权" + "、".join(parts) + f"；另有{pending}项发明专利申请处于实审阶段。"
    if style == 1:
        return "知识产权：" + "，".join(parts) + "。核心技术均为自主研发，无权属纠纷。"
    if style == 2:
        return "拥有" + "、".join(parts) + f"，参与制定团体标准{rng.randint(1, 3)}项。"
    return "、".join(parts) + f"；近两年新提交专利申请{pending}项。"


def _describe(
    rng: random.Random,
    p: dict[str, Any],
    ctx: dict[str, Any],
    topic: dict[str, Any],
    line: Line,
    overseas: bool,
) -> str:
    """Compose one project description from the banks, in one of several structures."""
    _, _, pains, techs = line

    def f(bank: Sequence[str] | str) -> str:
        return _fill(rng, bank if isinstance(bank, str) else rng.choice(bank), ctx)

    tech = rng.sample(techs, len(techs))
    progress = (MAKER_PROGRESS_SOFT if _is_soft(topic) else MAKER_PROGRESS).get(p["stage"], [])
    tech2 = [(f(tech[-1]), True)] if len(tech) > 1 else []
    ask: list[tuple[str, bool]] = []
    if "融资" in p["needs"]:
        ask.append((f(ASK_LOAN if p["round"] == "银行贷款" else ASK_FIN), False))
    if "落地" in p["needs"] and p["group"] == "企业组":
        ask.append((f(ASK_LAND), True))
    svc = [n for n in p["needs"] if n in SERVICES]
    if svc and (not ask or rng.random() < 0.4):
        ask.append((_fill(rng, rng.choice(ASK_SERVICE), {**ctx, "svc": "、".join(svc[:2])}), not ask))

    slots: list[tuple[str, bool]]  # (sentence, may be dropped to fit the length)
    if overseas:
        slots = [
            (f(OPEN_OVERSEAS), False),
            (f(pains), True),
            (f(tech[0]), False),
            *tech2,
            (f(topic["market"] if p["group"] == "企业组" else progress), True),
            (f(TAIL_OVERSEAS), False),
        ]
    elif p["group"] == "创客组":
        shape = rng.randrange(4)
        if shape == 0:
            slots = [
                (f(pains), False),
                (f(BRIDGE_MAKER), False),
                (f(tech[0]), False),
                (f(progress), True),
                (f(MAKER_PLAN), True),
            ]
        elif shape == 1:
            slots = [
                (f(OPEN_MAKER), False),
                (f(tech[0]), False),
                *tech2,
                (f(progress), False),
            ]
        elif shape == 2:
            slots = [
                (f(OPEN_MAKER), False),
                (f(pains), True),
                (f(BRIDGE_MAKER), False),
                (f(progress), True),
                (f(MAKER_PLAN), True),
            ]
        else:
            slots = [(f(pains), False), (f(tech[0]), False), (f(MAKER_PLAN), False)]
        slots += ask[:1] if rng.random() < 0.5 else []
    else:
        shape = rng.randrange(5)
        rev = (_fill(rng, rng.choice(REVENUE), {**ctx, "growth": f(GROWTH)}), True)
        if shape == 0:
            slots = [
                (f(OPEN_ENT), False),
                (f(tech[0]), False),
                *tech2,
                (f(topic["product_s"]), True),
                (f(topic["market"]), True),
                (f(topic["traction"]), True),
                rev,
                *ask,
            ]
        elif shape == 1:
            slots = [
                (f(pains), False),
                (f(BRIDGE_ENT), False),
                (f(tech[0]), False),
                (f(topic["traction"]), True),
                (f(STAFF), True),
                *ask,
            ]
        elif shape == 2:
            slots = [(f(OPEN_ENT), False), (f(tech[0]), False), (f(topic["market"]), True), *ask]
        elif shape == 3:
            slots = [
                (f(TRAC_FIRST), False),
                (f(tech[0]), False),
                (f(topic["product_s"]), True),
                (f(GENERIC_TECH), True),
                rev,
                (f(topic["market"]), True),
                *ask,
            ]
        else:
            slots = [
                (f(pains), False),
                (f(OPEN_ENT), False),
                (f(tech[0]), False),
                *tech2,
                (f(topic["traction"]), True),
                *ask,
            ]
    limit = rng.choice([110, 160, 220, 300, 300])
    while sum(len(s) for s, _ in slots) > limit and any(opt for _, opt in slots):
        drop = rng.choice([i for i, (_, opt) in enumerate(slots) if opt])
        del slots[drop]
    while sum(len(s) for s, _ in slots) > 300:
        del slots[-2]
    text = "".join(s for s, _ in slots)
    if len(text) < 60:
        text += f(GENERIC_TECH)
    return text


def _team_text(rng: random.Random, group: str, ctx: dict[str, Any]) -> str:
    bank = TEAM_MAKER if group == "创客组" else TEAM_ENT
    return _fill(rng, rng.choice(bank), ctx)


def generate_projects(
    rng: random.Random, namer: Namer, contests: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Return the demo projects, spread over every contest of the catalogue."""
    plan: list[dict[str, str]] = []
    for c in contests:
        count = (
            REGIONAL_COUNT.get(c["code"], REGIONAL_DEFAULT)
            if c["kind"] == "区域赛"
            else OTHER_COUNT[c["kind"]]
        )
        plan += [c] * count
    projects: list[dict[str, Any]] = []
    names: set[str] = set()
    descriptions: set[str] = set()
    used: Counter[str] = Counter()
    for i, contest in enumerate(plan):
        prov, city, lean_key = _contest_location(rng, contest)
        topic_key = _pick_topic(rng, contest, lean_key, used)
        used[TOPICS[topic_key]["industry"]] += 1
        topic = TOPICS[topic_key]
        line = rng.choice(LINES[topic_key])
        product, scene = line[0], line[1]
        overseas = contest["kind"] == "境外区域赛"
        group = "创客组" if (i * 7) % 20 < 7 or (overseas and i % 2) else "企业组"
        if group == "创客组":
            stage = rng.choices(["创意阶段", "研发样机", "初创期"], [45, 50, 5])[0]
        else:
            stage = rng.choices(["初创期", "成长期", "扩张期", "成熟期"], [25, 40, 25, 10])[0]
        brand, _ = namer.brand()
        contact, phone, email = namer.person()
        founder = contact if rng.random() < 0.6 else namer.person()[0]
        emp: int | None = None
        rev: float | None = None
        if group == "企业组":
            (e_lo, e_hi), (r_lo, r_hi) = ENT_SIZE[stage]
            e, r = _sme_cap(topic["industry"], rng.randint(e_lo, e_hi), rng.uniform(r_lo, r_hi))
            emp, rev = e, _round_amount(r) if r >= 100 else int(r)
        needs = _pick_needs(rng, topic, group, stage)
        rounds, (a_lo, a_hi) = STAGE_ROUNDS[stage]
        rnd = rng.choice(rounds) if "融资" in needs else None
        amount = None
        if rnd == "银行贷款":
            amount = _round_amount(rng.uniform(300, 3000))
        elif rnd:
            amount = _round_amount(rng.uniform(a_lo, a_hi))
        city_short = city.removesuffix("市") if city.endswith("市") else city[:2]
        company = f"{city_short}{brand}{rng.choice(topic['co'])}有限公司"
        founded = rng.randint(*FOUNDED[stage]) if group == "企业组" else 2022
        maker_uses = MAKER_USES_SOFT if _is_soft(topic) else MAKER_USES
        uses = rng.sample(topic["uses"] if group == "企业组" else maker_uses, 2)
        ctx = {
            "company": company,
            "brand": brand,
            "city": city,
            "prov": prov,
            "product": product,
            "scene": scene,
            "founded": founded,
            "years": max(1, 2022 - founded),
            "emp": emp,
            "rev": rev,
            "amt": amount,
            "round": rnd,
            "use": uses[0],
            "use2": uses[1],
            "founder": founder,
            "bg": rng.choice(topic["team_bg"]),
            "title": rng.choice(TITLES.get(stage, ["科技型中小企业"])),
            "rdp": rng.randint(18, 65),
            "size": rng.randint(3, 9),
            "years2": rng.randint(4, 18),
            "country": rng.choice(OVERSEAS_COUNTRIES),
            "industry": topic["industry"],
            "land_city": rng.choice(PROVINCE_CITIES[rng.choice(list(PROVINCE_CITIES))]),
            "area": rng.choice([1500, 3000, 5000, 8000, 12000, 20000]),
            "region": rng.choice(REGIONS),
            "school": rng.choice(SCHOOLS if group == "企业组" else MAKER_SCHOOLS),
            "degree": rng.choice(DEGREES),
            "degree_m": rng.choice(MAKER_DEGREES),
            "rd": max(2, int((emp or 10) * rng.uniform(0.2, 0.5))),
            "core": rng.randint(4, 12),
        }
        ctx["phd"] = rng.randint(1, max(1, min(6, ctx["rd"] // 3)))
        ctx["size_1"] = ctx["size"] - 1
        ctx.update(SOFT_WORDS["soft" if _is_soft(topic) else "goods"])
        frames = MAKER_FRAMES if group == "创客组" else PROJECT_FRAMES
        name = _fill(rng, rng.choice(frames), ctx)
        for _ in range(10):
            if name not in names:
                break
            name = _fill(rng, rng.choice(frames), ctx)
        if name in names:
            name = f"{brand}{product}"
        names.add(name)
        record: dict[str, Any] = {
            "name": name,
            "group": group,
            "contest": contest["code"],
            "award": "无",
            "industry": topic["industry"],
            "track": contest["track"] or None,
            "province": prov,
            "city": city,
            "stage": stage,
            "amount_wan": amount,
            "round": rnd,
            "description": "",
            "team": "",
            "ip": "",
            "needs": needs,
            "contact_name": contact,
            "contact_phone": phone,
            "contact_email": email,
            "employees": emp,
            "revenue_wan": rev,
        }
        for _ in range(20):
            text = _describe(rng, record, ctx, topic, line, overseas)
            if text not in descriptions:
                break
        descriptions.add(text)
        record["description"] = text
        record["team"] = _team_text(rng, group, ctx)
        record["ip"] = _ip_text(rng, topic, group, stage)
        projects.append(record)
    _assign_awards(rng, projects)
    return projects


def _assign_awards(rng: random.Random, projects: list[dict[str, Any]]) -> None:
    """Hand out the national award quotas, national-final entrants first."""
    order = list(range(len(projects)))
    rng.shuffle(order)
    # Entrants of the national final and more mature projects are likelier to be ranked.
    order.sort(
        key=lambda i: (
            projects[i]["contest"] != "7-F01",
            rng.random() - 0.15 * STAGES.index(projects[i]["stage"]),
        )
    )
    pos = 0
    for award, quota in AWARD_QUOTA.items():
        for i in order[pos : pos + quota]:
            projects[i]["award"] = award
        pos += quota


# ---------------------------------------------------------------------------------------------
# Institutions
# ---------------------------------------------------------------------------------------------


#: Industries that sit together in one fund's focus or one park.
INDUSTRY_TOPICS = {i: [t for t, d in TOPICS.items() if d["industry"] == i] for i in INDUSTRIES}


def _examples(rng: random.Random, industries: Sequence[str]) -> tuple[str, str]:
    """Two product examples from an institution's industries (for its description)."""
    pool = [line[0] for i in industries[:2] for t in INDUSTRY_TOPICS[i] for line in LINES[t]]
    a, b = rng.sample(pool, 2)
    return a, b


def _cluster_industries(rng: random.Random, lo: int, hi: int) -> list[str]:
    """Pick lo..hi related industries, the first one being the main focus."""
    cluster = rng.choice(CLUSTERS)
    picked = rng.sample(cluster, min(len(cluster), rng.randint(lo, hi)))
    if len(picked) < lo or rng.random() < 0.2:
        picked.append(rng.choice([i for i in INDUSTRIES if i not in picked]))
    return picked


def _prov_short(prov: str) -> str:
    for suffix in ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市"):
        if prov.endswith(suffix):
            return prov.removesuffix(suffix)
    return prov


def generate_institutions(rng: random.Random, namer: Namer) -> list[dict[str, Any]]:
    """Return the demo funds, bases and platforms, spread over the provinces."""
    provinces = list(PROVINCE_CITIES)
    rng.shuffle(provinces)
    prov_cycle = iter(provinces * 5)
    vc_profiles = ["天使", "早期", "成长", "产业"]
    out: list[dict[str, Any]] = []
    seen_desc: set[str] = set()
    for kind in KINDS:
        for j in range(INSTITUTION_COUNT[kind]):
            prov = next(prov_cycle)
            city = rng.choice(PROVINCE_CITIES[prov])
            brand, _ = namer.brand()
            contact, phone, email = namer.person()
            ctx: dict[str, Any] = {
                "prov": prov,
                "prov_short": _prov_short(prov),
                "city": city,
                "brand": brand,
                "scale": rng.choice([2, 3, 5, 8, 10, 20, 30, 50]),
                "bg": rng.choice(["投资银行", "大型制造企业", "科研院所", "互联网公司"]),
                "country_pair": rng.choice(COUNTRY_PAIRS),
            }
            services: list[str] = []
            space = capacity = tmin = tmax = None
            if kind == "政府投资基金":
                industries = _cluster_industries(rng, 2, 4)
                angel = j % 4 == 2
                stages = (
                    ["研发样机", "初创期", "成长期"]
                    if angel
                    else ["初创期", "成长期", "扩张期", "成熟期"][rng.randint(0, 1) :][:3]
                )
                tmin = rng.choice([200, 300, 500]) if angel else rng.choice([1000, 2000, 3000])
                tmax = rng.choice([2000, 3000]) if angel else rng.choice([10000, 20000, 30000])
                ctx["scale"] = rng.choice([2, 3, 5, 10]) if angel else rng.choice([20, 30, 50, 100])
                name_t = GOV_NAMES[2] if angel else rng.choice([n for n in GOV_NAMES if n != GOV_NAMES[2]])
                provincial = "{prov}" in name_t or city == prov
                ctx.update(owner=prov if provincial else city, level="省级" if provincial else "市级")
                parts = [GOV_WHO, GOV_WHAT, GOV_LIKE, GOV_COND]
            elif kind == "创业投资机构":
                profile = vc_profiles[j % 4]
                stages, (a, b), (c, d) = VC_PROFILES[profile]
                stages = list(stages)
                tmin, tmax = _round_amount(rng.uniform(a, b)), _round_amount(rng.uniform(c, d))
                industries = _cluster_industries(rng, 1, 3)
                ctx["ind"] = industries[0]
                ctx["scale"] = rng.choice(
                    {
                        "天使": [1, 2, 3, 5],
                        "早期": [5, 8, 10, 20],
                        "成长": [20, 30, 50, 80],
                        "产业": [10, 20, 30],
                    }[profile]
                )
                name_t = rng.choice(VC_NAMES[profile])
                parts = [VC_WHO[profile], VC_WHAT, VC_LIKE, VC_COND[profile]]
                if rng.random() < 0.2:
                    services = rng.sample(["财务", "法律", "人力资源"], 1)
            elif kind == "银行":
                industries = rng.sample(INDUSTRIES, rng.randint(5, 9))
                stages = ["初创期", "成长期", "扩张期", "成熟期"][rng.randint(0, 1) :]
                tmin, tmax = rng.choice([50, 100, 200, 300]), rng.choice([1000, 2000, 3000])
                name_t = rng.choice(BANK_NAMES)
                parts = [BANK_WHO, BANK_WHAT, BANK_COND]
            elif kind in BASE_KINDS:
                n_ind = {
                    "小微企业创业创新基地": (2, 5),
                    "产业示范基地/园区": (1, 3),
                    "中外中小企业合作区": (2, 4),
                }[kind]
                industries = _cluster_industries(rng, *n_ind)
                if kind == "小微企业创业创新基地":
                    stages = ["创意阶段", "研发样机", "初创期", "成长期"][: rng.randint(3, 4)]
                    space, capacity = rng.randint(6, 80) * 500, rng.randint(3, 30) * 10
                    services = rng.sample(
                        ["法律", "财务", "人力资源", "知识产权", "工业设计", "技术转移"], rng.randint(2, 5)
                    )
                else:
                    stages = ["初创期", "成长期", "扩张期", "成熟期"][rng.randint(0, 1) :]
                    space, capacity = rng.randint(10, 160) * 5000, rng.randint(5, 50) * 10
                    services = rng.sample(
                        ["检验检测", "技术转移", "数字化改造", "法律", "工业设计"], rng.randint(1, 3)
                    )
                ctx["indword"] = INDWORD[industries[0]]
                ctx.update(cap=capacity, space_txt=f"{space / 10000:g}万" if space >= 10000 else str(space))
                name_t = rng.choice(BASE_NAMES[kind])
                parts = [BASE_WHO[kind], BASE_WHAT[kind], BASE_LIKE, BASE_COND[kind]]
            else:
                names_p, services, ind_pool, who, what = PLATFORMS[PLATFORM_PLAN[j % len(PLATFORM_PLAN)]]
                services = [s for s in SERVICES if s in services]
                industries = rng.sample(ind_pool, min(len(ind_pool), rng.randint(2, 5)))
                stages = STAGES[rng.randint(0, 2) :]
                name_t = rng.choice(names_p)
                parts = [who, what, PLATFORM_COND]
            name = name_t.format_map(ctx)
            ex1, ex2 = _examples(rng, industries)
            ctx.update(
                name=name,
                inds="、".join(industries[:3]),
                stages="、".join(stages[:2]) + "等阶段",
                tmin=tmin,
                tmax=tmax,
                ex1=ex1,
                ex2=ex2,
                ind=ctx.get("ind", industries[0]),
            )
            for _ in range(20):
                picked = [rng.choice(p) for p in parts]
                if len(parts) == 4 and rng.random() < 0.35:
                    picked.pop(rng.choice([2, 3]))  # some profiles skip the examples or the conditions
                desc = "".join(_fill(rng, s, ctx) for s in picked)
                if desc not in seen_desc:
                    break
            seen_desc.add(desc)
            out.append(
                {
                    "name": name,
                    "kind": kind,
                    "province": prov,
                    "city": city,
                    "industries": [i for i in INDUSTRIES if i in industries],
                    "stages": [s for s in STAGES if s in stages],
                    "ticket_min_wan": tmin,
                    "ticket_max_wan": tmax,
                    "services": [s for s in SERVICES if s in services],
                    "space_m2": space,
                    "capacity": capacity,
                    "description": desc,
                    "contact_name": contact,
                    "contact_phone": phone,
                    "contact_email": email,
                }
            )
    return out


# ---------------------------------------------------------------------------------------------
# Needs: what an institution is looking for right now
# ---------------------------------------------------------------------------------------------


def _deadline(rng: random.Random) -> str:
    if rng.random() < 0.85:
        year, month = rng.choice(
            [(2026, 12), (2027, 1), (2027, 2), (2027, 3), (2027, 4), (2027, 5), (2027, 6)]
        )
    else:
        year, month = rng.choice([(2026, 11), (2027, 7), (2027, 9)])
    return f"{year}-{month:02d}-{rng.randint(1, 28):02d}"


def generate_needs(rng: random.Random, institutions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the institutions' current needs (about half of the institutions post one or two)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for inst in institutions:
        if rng.random() > 0.45:
            continue
        side = SIDE[inst["kind"]]
        for template in rng.sample(NEED_TEXT[side], rng.choice([1, 1, 2])):
            inds = rng.sample(inst["industries"], min(2, len(inst["industries"])))
            svcs = inst["services"] or ["法律", "财务"]
            ex1, ex2 = _examples(rng, inds[:1])
            stages = inst["stages"][-3:] if side == "fund" else inst["stages"]
            start = rng.randrange(max(1, len(stages) - 1))
            stage_pick = stages[start : start + 2]  # two neighbouring stages
            first = STAGES.index(stage_pick[0])
            fund_round = ["种子轮", "天使轮", "Pre-A轮", "A轮", "B轮", "C轮及以后"][first]
            park = inst["kind"] != "小微企业创业创新基地"
            ctx = {
                "region": rng.choice(REGIONS),
                "ind": inds[0],
                "ind2": inds[-1],
                "prov": inst["province"],
                "prov_short": _prov_short(inst["province"]),
                "round": fund_round,
                "inds_txt": "和".join(dict.fromkeys(inds)),
                "stage": "、".join(s for s in STAGES if s in stage_pick),
                "ex1": ex1,
                "ex2": ex2,
                "tmin": inst["ticket_min_wan"],
                "tmax": inst["ticket_max_wan"],
                "quota": rng.choice(
                    [10, 20, 30, 50]
                    if side == "bank"
                    else [3, 5, 8, 10]
                    if side == "fund" or park
                    else [5, 10, 15, 20, 30]
                ),
                "svc": "、".join(svcs[:3]),
                "svc1": rng.choice(svcs),
                "area": rng.choice(
                    [5000, 8000, 12000, 20000, 30000] if park else [500, 800, 1200, 2000, 3000]
                ),
                "space_kind": rng.choice(["独立办公室", "标准厂房", "联合办公工位"])
                if inst["kind"] == "小微企业创业创新基地"
                else "标准厂房",
            }
            title = template[0].format_map(ctx)
            desc = template[1].format_map(ctx)
            if desc in seen:
                continue
            seen.add(desc)
            services = [ctx["svc1"]] if "{svc1}" in template[0] else []
            if side in ("base", "platform") and not services:
                services = inst["services"][:3]
            out.append(
                {
                    "institution": inst["name"],
                    "title": title,
                    "description": desc,
                    "industries": [i for i in INDUSTRIES if i in inds],
                    "stages": [s for s in STAGES if s in stage_pick],
                    "services": services,
                    "quota": ctx["quota"],
                    "deadline": _deadline(rng),
                }
            )
    return out


# ---------------------------------------------------------------------------------------------
# Sanity check and entry point
# ---------------------------------------------------------------------------------------------

PHONE_RE = re.compile(r"^1380000\d{4}$")
EMAIL_RE = re.compile(r"^[a-z0-9.]+@([a-z0-9-]+\.)*example\.cn$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check(
    projects: list[dict[str, Any]],
    institutions: list[dict[str, Any]],
    needs: list[dict[str, Any]],
    contests: list[dict[str, str]],
) -> dict[str, Any]:
    """Assert the coverage rules of the demo data; return counts for the summary."""
    by_code = {c["code"]: c for c in contests}
    assert len(contests) == 48, len(contests)
    assert Counter(c["kind"] for c in contests) == {
        "总决赛": 1,
        "区域赛": 35,
        "专题赛": 5,
        "赛道赛": 6,
        "境外区域赛": 1,
    }

    # Projects
    assert len(projects) >= 320, len(projects)
    per_contest = Counter(p["contest"] for p in projects)
    assert set(per_contest) == set(by_code), set(by_code) - set(per_contest)
    assert min(per_contest.values()) >= 3, per_contest.most_common()[-1]
    for p in projects:
        assert list(p) == PROJECT_KEYS, p["name"]
        c = by_code[p["contest"]]
        assert p["group"] in GROUPS and p["award"] in AWARDS and p["stage"] in STAGES
        assert p["industry"] in INDUSTRIES and p["province"] in PROVINCE_CITIES
        assert p["round"] is None or p["round"] in ROUNDS
        assert set(p["needs"]) <= set(NEEDS) and p["needs"], p["name"]
        assert ("融资" in p["needs"]) == (p["round"] is not None) == (p["amount_wan"] is not None), p["name"]
        assert 60 <= len(p["description"]) <= 300, (len(p["description"]), p["name"])
        assert "{" not in p["description"] + p["team"] + p["ip"], p["name"]
        assert PHONE_RE.match(p["contact_phone"]) and EMAIL_RE.match(p["contact_email"]), p["name"]
        if c["kind"] == "区域赛":
            assert p["province"] == (c["province"]), (p["name"], c["code"])
            if c["place"].endswith("市") and c["place"] != c["province"]:
                assert p["city"] == c["place"], (p["name"], c["code"])
            if c["place"] == "新疆生产建设兵团":
                assert p["city"] in BINGTUAN_CITIES
        if c["kind"] in ("专题赛", "赛道赛"):
            assert p["track"] == c["track"] and p["industry"] == TOPICS[TRACK_TOPIC[c["track"]]]["industry"]
        else:
            assert p["track"] is None
        if p["group"] == "创客组":
            assert p["employees"] is None and p["revenue_wan"] is None, p["name"]
        else:
            sector, emp_max, rev_max = SME_SECTOR[p["industry"]]
            assert 5 <= p["employees"] <= 800 and p["revenue_wan"] > 0, p["name"]
            assert p["employees"] < emp_max and p["revenue_wan"] < rev_max, (sector, p["name"])
    descs = [p["description"] for p in projects]
    assert len(set(descs)) == len(descs), "duplicate project descriptions"
    per_industry = Counter(p["industry"] for p in projects)
    assert set(per_industry) == set(INDUSTRIES) and min(per_industry.values()) >= 8, per_industry
    assert len({p["name"] for p in projects}) == len(projects), "duplicate project names"
    groups = Counter(p["group"] for p in projects)
    assert 0.30 <= groups["创客组"] / len(projects) <= 0.40, groups
    makers = [p for p in projects if p["group"] == "创客组"]
    assert sum(p["stage"] in ("创意阶段", "研发样机") for p in makers) / len(makers) >= 0.8
    awards = Counter(p["award"] for p in projects)
    assert set(awards) == set(AWARDS), awards
    assert all(awards[a] == q for a, q in AWARD_QUOTA.items()), awards

    # Institutions
    names = [i["name"] for i in institutions]
    assert len(institutions) >= 90 and len(set(names)) == len(names)
    kinds = Counter(i["kind"] for i in institutions)
    assert all(kinds[k] >= n for k, n in KIND_MIN.items()), kinds
    provinces = {i["province"] for i in institutions}
    assert len(provinces) >= 25, len(provinces)
    for i in institutions:
        assert i["industries"] and set(i["industries"]) <= set(INDUSTRIES) and set(i["stages"]) <= set(STAGES)
        assert set(i["services"]) <= set(SERVICES)
        assert "{" not in i["name"] + i["description"], i["name"]
        assert i["city"] in PROVINCE_CITIES[i["province"]]
        assert PHONE_RE.match(i["contact_phone"]) and EMAIL_RE.match(i["contact_email"])
        if i["kind"] in FUND_KINDS:
            assert 0 < i["ticket_min_wan"] < i["ticket_max_wan"], i["name"]
        if i["kind"] == "银行":
            assert i["ticket_min_wan"] >= 50 and i["ticket_max_wan"] <= 3000, i["name"]
        if i["kind"] in BASE_KINDS:
            assert i["space_m2"] and i["capacity"], i["name"]
        if i["kind"] == "中小企业公共服务平台":
            assert i["services"], i["name"]
    idescs = [i["description"] for i in institutions]
    assert len(set(idescs)) == len(idescs), "duplicate institution descriptions"

    # Needs
    assert len(needs) >= 40, len(needs)
    inst_names = set(names)
    in_window = 0
    for n in needs:
        assert n["institution"] in inst_names, n["institution"]
        assert DATE_RE.match(n["deadline"]) and n["quota"] > 0
        assert set(n["industries"]) <= set(INDUSTRIES) and set(n["stages"]) <= set(STAGES)
        assert set(n["services"]) <= set(SERVICES)
        assert "{" not in n["title"] + n["description"], n["title"]
        in_window += "2026-12-01" <= n["deadline"] <= "2027-06-30"
    assert in_window / len(needs) >= 0.7, in_window
    ndescs = [n["description"] for n in needs]
    assert len(set(ndescs)) == len(ndescs), "duplicate need descriptions"

    kind_of = {c["code"]: c["kind"] for c in contests}
    return {
        "projects": len(projects),
        "projects_per_contest_kind": dict(Counter(kind_of[p["contest"]] for p in projects)),
        "projects_per_award": {a: awards[a] for a in AWARDS},
        "projects_per_group": dict(groups),
        "projects_per_industry": dict(Counter(p["industry"] for p in projects)),
        "institutions": len(institutions),
        "institutions_per_kind": {k: kinds[k] for k in KINDS},
        "institution_provinces": len(provinces),
        "project_provinces": len({p["province"] for p in projects}),
        "needs": len(needs),
    }


def generate() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Build the three demo data sets from the fixed seed."""
    rng = random.Random(SEED)
    namer = Namer(rng)
    projects = generate_projects(rng, namer, load_contests())
    institutions = generate_institutions(rng, namer)
    needs = generate_needs(rng, institutions)
    return projects, institutions, needs


DATA_FILES = ("projects.json", "institutions.json", "needs.json")


def render(data: list[dict[str, Any]]) -> str:
    """The text of one demo data file, exactly as committed."""
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the demo files (unless --check) and check them; print a summary."""
    parser = argparse.ArgumentParser(description="Generate or check the fictional demo data.")
    parser.add_argument("--check", action="store_true", help="only check the files already written")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder to write to (default: the demo's)")
    args = parser.parse_args(argv)
    if not args.check:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, data in zip(DATA_FILES, generate(), strict=True):
            (args.out / name).write_text(render(data), encoding="utf-8")
    projects, institutions, needs = (
        json.loads((args.out / name).read_text(encoding="utf-8")) for name in DATA_FILES
    )
    for key, value in check(projects, institutions, needs, load_contests()).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
