"""The access matrix: every role × every route of the app × the objects it must or must not reach.

Routes come from the app's url_map, so a route added later is walked too: it must declare its rule,
anonymous callers must be sent to log in, roles outside its rule must get 403, a guessed id must never
answer 2xx, and no response may carry a private marker the role may not see. Routes whose object rules
are known here (projects, institutions, needs, imports, accounts, admin) are also checked object by object.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.access import PROJECT_PUBLIC_FIELDS, access_rule
from app.api import PROJECT_FIELDS
from app.auth.accounts import DEMO_ACCOUNTS
from app.extensions import db
from models import Connection, ConnectionStage, Institution, InstitutionKind, Need, Project
from models.accounts import ApiToken, Registration, User
from models.base import utcnow
from models.enums import Role
from models.pipeline import Party

ROLES = ("anon", "admin", "organiser", "fund", "base", "platform", "project")
PASSWORDS = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}
MISSING = 999_999
# Query parameters an attacker would try on a list to widen it beyond what they may see.
WIDENING = {
    "institution_id": "{O}",
    "project_id": "{P_own}",
    "contest": "{C_other}",
    "all": "1",
    "scope": "all",
    "user_id": "1",
    "include_private": "1",
}


@dataclass
class World:
    ids: dict[str, int]
    markers: dict[str, set[str]] = field(default_factory=dict)  # marker -> roles that may see it


def _build_world(app: Flask) -> World:
    """Bind the demo accounts to chosen records and plant private markers the matrix looks for."""
    with app.app_context():
        s = db.session
        users = {u.username: u for u in s.scalars(select(User))}
        organiser = users["organiser"]
        c_org = organiser.contests[0].id
        connected = set(s.scalars(select(Connection.project_id)))
        free = [p for p in s.scalars(select(Project).order_by(Project.id)) if p.id not in connected]
        p_org = next(p for p in free if p.contest_id == c_org)
        outside = [p for p in free if p.contest_id != c_org]
        p_own, p_conn, p_req, p_other = outside[:4]
        c_other = p_other.contest_id
        users["project"].project_id = p_own.id
        fund = s.get(Institution, users["fund"].institution_id)
        bound = {u.institution_id for u in users.values() if u.institution_id}
        other = next(
            i
            for i in s.scalars(
                select(Institution).where(Institution.kind == InstitutionKind.VC).order_by(Institution.id)
            )
            if i.id not in bound
        )
        assert fund is not None
        ids = {
            "P_own": p_own.id,
            "P_org": p_org.id,
            "P_conn": p_conn.id,
            "P_req": p_req.id,
            "P_other": p_other.id,
            "F": fund.id,
            "O": other.id,
            "C_org": c_org,
            "C_other": c_other,
        }
        markers: dict[str, set[str]] = {}
        may_see = {
            "P_own": {"admin", "project"},
            "P_org": {"admin", "organiser"},
            "P_conn": {"admin", "fund"},
            "P_req": {"admin"},
            "P_other": {"admin"},
        }
        for key in ("P_own", "P_org", "P_conn", "P_req", "P_other"):
            p = s.get(Project, ids[key])
            assert p is not None
            p.contact_name, p.team, p.ip = f"LEAKP{p.id}N", f"团队 LEAKP{p.id}T", f"专利 LEAKP{p.id}I"
            p.contact_phone, p.contact_email = f"LEAKP{p.id}PH", f"leakp{p.id}@example.cn"
            for m in (f"LEAKP{p.id}N", f"LEAKP{p.id}T", f"LEAKP{p.id}I", f"LEAKP{p.id}PH", f"leakp{p.id}@"):
                markers[m] = may_see[key]
        for key in ("F", "O"):
            inst = s.get(Institution, ids[key])
            assert inst is not None
            inst.contact_name = f"LEAKI{inst.id}N"
            markers[f"LEAKI{inst.id}N"] = set(ROLES) - {"anon"}
        for key, inst_key in (("N_F", "F"), ("N_O", "O")):
            need = Need(
                institution_id=ids[inst_key],
                title=f"需求 NEEDM{inst_key}",
                description="寻找智能装备方向的早期项目，提供资金与产业资源。",
            )
            s.add(need)
            s.flush()
            ids[key] = need.id
            markers[f"NEEDM{inst_key}"] = set(ROLES) - {"anon"}
        for key, pkey, ikey, stage in (
            ("K_acc", "P_conn", "F", ConnectionStage.ACCEPTED),
            ("K_req", "P_req", "F", ConnectionStage.REQUESTED),
            ("K_own", "P_own", "O", ConnectionStage.ACCEPTED),
        ):
            # requested by the project (its consent opens its contacts to the institution once accepted)
            conn = Connection(
                project_id=ids[pkey],
                institution_id=ids[ikey],
                stage=stage,
                note=f"NOTE{key}X",
                initiated_by=Party.PROJECT,
                requested_at=utcnow(),
            )
            s.add(conn)
            s.flush()
            ids[key] = conn.id
            # an institution's notes: that institution and the secretariat only
            markers[f"NOTE{key}X"] = {"admin", "fund"} if ikey == "F" else {"admin"}
        for name in ("admin", "fund"):
            row, _plain = ApiToken.issue(users[name], f"matrix-{name}")
            s.add(row)
            s.flush()
            ids[f"T_{name}"] = row.id
        ids["U_fund"] = users["fund"].id
        s.commit()
        from app.auth import accounts

        reg = accounts.register(
            s,
            "project",
            {
                "username": "matrixreg",
                "password": "matrix-pass-1",
                "password2": "matrix-pass-1",
                "display_name": "矩阵测试",
            },
            None,
            ids["P_other"],
        )
        ids["R"] = reg.id
        return World(ids, markers)


# --- what each known route allows ----------------------------------------------------------------------

INST_OF = {"fund": "F"}


def _project_edit(role: str, key: str) -> bool:
    return (
        role == "admin" or (role == "organiser" and key == "P_org") or (role == "project" and key == "P_own")
    )


def _project_delete(role: str, key: str) -> bool:
    return role == "admin" or (role == "organiser" and key == "P_org")


def _inst_edit(role: str, key: str) -> bool:
    return role == "admin" or INST_OF.get(role) == key


def _need_edit(role: str, key: str) -> bool:
    return role == "admin" or (role == "fund" and key == "N_F")


def _anyone(_role: str, _key: str | None) -> bool:
    return True


def _roles(*names: str) -> Any:
    return lambda role, _key: role in names


INSTITUTION_MEMBERS = ("fund", "base", "platform")
LOGGED_IN = ("admin", "organiser", "fund", "base", "platform", "project")

#: endpoint -> predicate(role, object key) for logged-in roles ("may reach"); anonymous follows the rule.
KNOWN: dict[str, Any] = {
    "home.index": _anyone,
    "projects.list_projects": _anyone,
    "projects.detail": _anyone,
    "api.list_projects": _anyone,
    "api.get_project": _anyone,
    "api.project_matches": _anyone,
    "institutions.list_institutions": _anyone,
    "institutions.detail": _anyone,
    "api.list_institutions": _anyone,
    "api.get_institution": _anyone,
    "api.institution_matches": _anyone,
    "api.contests": _anyone,
    "api.openapi": _anyone,
    "auth.login": _anyone,
    "auth.register_institution": _anyone,
    "auth.register_project": _anyone,
    "projects.create": _roles("admin", "organiser"),
    "api.create_project": _roles("admin", "organiser"),
    "projects.edit": _project_edit,
    "api.update_project": _project_edit,
    "projects.delete": _project_delete,
    "api.delete_project": _project_delete,
    "institutions.create": _roles("admin"),
    "api.create_institution": _roles("admin"),
    "institutions.edit": _inst_edit,
    "api.update_institution": _inst_edit,
    "institutions.delete": _roles("admin"),
    "api.delete_institution": _roles("admin"),
    "needs.list_needs": _roles(*LOGGED_IN),
    "needs.detail": _roles(*LOGGED_IN),
    "api.list_needs": _roles(*LOGGED_IN),
    "api.get_need": _roles(*LOGGED_IN),
    "api.need_matches": _roles(*LOGGED_IN),
    "needs.create": _roles("admin", *INSTITUTION_MEMBERS),
    "api.create_need": _roles("admin", *INSTITUTION_MEMBERS),
    "needs.edit": _need_edit,
    "api.update_need": _need_edit,
    "needs.delete": _need_edit,
    "api.delete_need": _need_edit,
    "imports.upload": _roles("admin", "organiser"),
    "imports.template": _roles("admin", "organiser"),
    "api.import_file": _roles("admin", "organiser"),
    "auth.account": _roles(*LOGGED_IN),
    "auth.create_token": _roles(*LOGGED_IN),
    "auth.change_password": _roles(*LOGGED_IN),
    "auth.logout": _roles(*LOGGED_IN),
    "auth.revoke_token": lambda role, key: key == f"T_{role}",
    **{
        e: _roles("admin")
        for e in (
            "admin.index",
            "admin.users",
            "admin.new_user",
            "admin.user_status",
            "admin.registrations",
            "admin.decide",
            "admin.audit_log",
        )
    },
}
#: Routes whose allowed call changes state for good: only their refusals are walked here.
DESTRUCTIVE = {
    "projects.delete",
    "api.delete_project",
    "institutions.delete",
    "api.delete_institution",
    "needs.delete",
    "api.delete_need",
    "admin.decide",
    "auth.revoke_token",
    "auth.logout",
    "admin.user_status",
}
#: A guessed id where the object is private: the answer is 404, exactly as for a missing one.
PRIVATE_OBJECTS = {"auth.revoke_token"}


def _objects(rule: str, world: World) -> list[str]:
    """Return the object keys to put into a route's id, chosen by what the path names."""
    if "<int:" not in rule:
        return [""]
    if "/institution/<" in rule:
        keys = ["F", "O"]
    elif "/project/<" in rule:
        keys = ["P_own", "P_conn", "P_other"]
    elif rule.startswith(("/projects/", "/api/projects/")):
        keys = ["P_own", "P_org", "P_conn", "P_req", "P_other"]
    elif rule.startswith(("/institutions/", "/api/institutions/")):
        keys = ["F", "O"]
    elif rule.startswith(("/needs/", "/api/needs/")):
        keys = ["N_F", "N_O"]
    elif rule.startswith(("/connections/", "/api/connections/")):
        keys = ["K_acc", "K_req", "K_own"]
    elif "/tokens/" in rule:
        keys = ["T_admin", "T_fund"]
    elif "/users/" in rule:
        keys = ["U_fund"]
    elif "/registrations/" in rule:
        keys = ["R"]
    else:
        keys = []
    return [*keys, "MISSING"]


_ARG = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


def _url(rule: str, key: str, world: World) -> str:
    def sub(m: re.Match[str]) -> str:
        conv, conv_args, name = m.group(1), m.group(2), m.group(3)
        if conv == "int":
            return str(MISSING if key in ("MISSING", "") else world.ids[key])
        if conv == "any":
            return re.findall(r"\w+", conv_args or "")[0]
        return {"kind": "projects", "fmt": "csv", "filename": "style.css"}.get(name, "x")

    return _ARG.sub(sub, rule)


def _is_login_redirect(response: Any) -> bool:
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


def _outcome(response: Any) -> str:
    code = response.status_code
    if code >= 500:
        return "error"
    if code == 401 or _is_login_redirect(response):
        return "login"
    if code == 403:
        return "deny"
    if code == 404:
        return "missing"
    return "allow"


@pytest.fixture()
def world(app: Flask) -> World:
    return _build_world(app)


def _clients(app: Flask) -> dict[str, Any]:
    clients = {}
    for role in ROLES:
        c = app.test_client()
        if role != "anon":
            r = c.post("/login", data={"username": role, "password": PASSWORDS[role]})
            assert r.status_code == 302, f"demo account {role} cannot log in"
        clients[role] = c
    return clients


def test_every_route_declares_an_access_rule(app: Flask) -> None:
    undeclared = [
        r.endpoint
        for r in app.url_map.iter_rules()
        if r.endpoint != "static" and access_rule(app.view_functions[r.endpoint]) is None
    ]
    assert not undeclared, f"routes without public/login_required/roles_required: {undeclared}"


def test_access_matrix(app: Flask, world: World) -> None:
    clients = _clients(app)
    checked: Counter[str] = Counter()
    failures: list[str] = []
    rules = sorted((r for r in app.url_map.iter_rules() if r.endpoint != "static"), key=lambda r: r.rule)
    routes = 0
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        declared = access_rule(view) or ("login",)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes += 1
            for key in _objects(rule.rule, world):
                url = _url(rule.rule, key, world)
                for role in ROLES:
                    expected = _expected(rule.endpoint, rule.rule, method, declared, role, key)
                    if expected is None:
                        continue
                    response = _call(clients[role], method, url, rule.rule)
                    got = _outcome(response)
                    checked["requests"] += 1
                    checked[f"role:{role}"] += 1
                    if got not in expected:
                        failures.append(
                            f"{role:9} {method:6} {url}: expected {sorted(expected)}, got "
                            f"{response.status_code}"
                        )
                    if method == "GET" and got == "allow":
                        failures.extend(_leaks(world, role, method, url, response))
                    if method == "GET" and "<" not in rule.rule and role != "admin" and got == "allow":
                        widened = _call(clients[role], method, url + "?" + _widening(world), rule.rule)
                        checked["widening"] += 1
                        failures.extend(_leaks(world, role, method, url + " (widening filters)", widened))
    print(
        f"\naccess matrix: {len(ROLES)} roles × {routes} route-methods × objects = {checked['requests']} "
        f"requests, {checked['widening']} widening probes, {len(world.markers)} private markers"
    )
    assert not failures, "access matrix failures:\n" + "\n".join(failures[:80])


def _widening(world: World) -> str:
    from urllib.parse import urlencode

    return urlencode(
        {k: v.format(**{k2: str(v2) for k2, v2 in world.ids.items()}) for k, v in WIDENING.items()}
    )


def _expected(
    endpoint: str, rule: str, method: str, declared: tuple[Any, ...], role: str, key: str
) -> set[str] | None:
    """Return the acceptable outcomes of one call, or None to skip it (an allowed destructive call)."""
    public = declared[0] == "public"
    if role == "anon":
        if endpoint == "auth.login" and method == "POST":
            return {"login"}
        if public:
            return {"missing"} if key == "MISSING" else {"allow"}
        return {"login"}
    if declared[0] == "roles" and Role[_ROLE_OF[role]] not in declared[1]:
        return {"deny"}
    predicate = KNOWN.get(endpoint)
    if predicate is None:  # a route this test has no object rules for: no 2xx on a guessed id, else anything
        return {"missing", "deny"} if key == "MISSING" else {"allow", "deny", "missing"}
    if endpoint == "auth.login" and method == "POST":
        return {"login"}  # an empty form is a failed login attempt, for anyone
    if key == "MISSING":
        return {"missing"}
    if predicate(role, key):
        if endpoint in DESTRUCTIVE:
            return None
        return {"allow"}
    return {"missing"} if endpoint in PRIVATE_OBJECTS else {"deny"}


_ROLE_OF = {
    "admin": "ADMIN",
    "organiser": "ORGANISER",
    "fund": "INSTITUTION",
    "base": "INSTITUTION",
    "platform": "INSTITUTION",
    "project": "PROJECT",
}


def _call(client: Any, method: str, url: str, rule: str) -> Any:
    if rule.startswith("/api/"):
        if method in ("POST", "PUT", "PATCH"):
            return client.open(url, method=method, json={})
        return client.open(url, method=method)
    return client.open(url, method=method, data={})


def _leaks(world: World, role: str, method: str, url: str, response: Any) -> list[str]:
    body = response.get_data().decode("utf-8", "replace")
    return [
        f"{role:9} {method:6} {url}: shows private marker {m}"
        for m, allowed in world.markers.items()
        if role not in allowed and m in body
    ]


def test_guessed_ids_answer_like_missing_ones(app: Flask, world: World) -> None:
    """A token id of another account answers exactly as a token that does not exist."""
    clients = _clients(app)
    other = clients["fund"].post(f"/account/tokens/{world.ids['T_admin']}/revoke")
    missing = clients["fund"].post(f"/account/tokens/{MISSING}/revoke")
    assert other.status_code == missing.status_code == 404
    with app.app_context():
        assert db.session.get(ApiToken, world.ids["T_admin"]).revoked_at is None  # type: ignore[union-attr]


def test_allowed_deletes_work_and_refused_ones_change_nothing(app: Flask, world: World) -> None:
    clients = _clients(app)
    assert clients["project"].post(f"/projects/{world.ids['P_own']}/delete").status_code == 403
    assert clients["organiser"].delete(f"/api/projects/{world.ids['P_other']}").status_code == 403
    assert clients["organiser"].delete(f"/api/projects/{world.ids['P_org']}").status_code == 204
    assert clients["fund"].delete(f"/api/needs/{world.ids['N_O']}").status_code == 403
    assert clients["fund"].delete(f"/api/needs/{world.ids['N_F']}").status_code == 204
    assert clients["fund"].delete(f"/api/institutions/{world.ids['F']}").status_code == 403
    assert clients["admin"].post(f"/institutions/{world.ids['O']}/delete").status_code == 302
    with app.app_context():
        s = db.session
        assert (
            s.get(Project, world.ids["P_own"]) is not None
            and s.get(Project, world.ids["P_other"]) is not None
        )
        assert s.get(Project, world.ids["P_org"]) is None
        assert s.get(Need, world.ids["N_O"]).archived_at is not None  # archived with its institution O
        assert s.get(Need, world.ids["N_F"]) is None
        # O has a connection (K_own): archived, not deleted
        assert s.get(Institution, world.ids["F"]).archived_at is None
        assert s.get(Institution, world.ids["O"]).archived_at is not None


def test_organiser_cannot_create_or_move_projects_outside_its_contests(app: Flask, world: World) -> None:
    c = _clients(app)["organiser"]
    with app.app_context():
        p = db.session.get(Project, world.ids["P_org"])
        from app.serialize import project_json

        body = {k: v for k, v in project_json(p).items() if k in PROJECT_FIELDS}  # type: ignore[arg-type]
    foreign = {**body, "name": "越权新增的项目", "contest_id": world.ids["C_other"]}
    assert c.post("/api/projects", json=foreign).status_code == 403
    assert (
        c.patch(f"/api/projects/{world.ids['P_org']}", json={"contest_id": world.ids["C_other"]}).status_code
        == 403
    )
    assert c.post("/api/projects", json={**body, "name": "本赛事新增的项目"}).status_code == 201


def test_project_member_cannot_change_its_award_or_contest(app: Flask, world: World) -> None:
    c = _clients(app)["project"]
    url = f"/api/projects/{world.ids['P_own']}"
    assert c.patch(url, json={"award": "一等奖"}).status_code == 403
    assert c.patch(url, json={"contest_id": world.ids["C_org"]}).status_code == 403
    r = c.patch(url, json={"amount_wan": 321})
    assert r.status_code == 200 and r.get_json()["amount_wan"] == 321


def test_institution_member_posts_needs_only_for_its_institution(app: Flask, world: World) -> None:
    c = _clients(app)["fund"]
    need = {"title": "寻找早期硬科技项目", "description": "关注智能装备与新材料方向，单笔 500 万以内。"}
    assert c.post("/api/needs", json={**need, "institution_id": world.ids["O"]}).status_code == 403
    # The API requires institution_id of every caller (the document says so): a member names its own.
    r = c.post("/api/needs", json=need)
    assert r.status_code == 422 and "institution_id" in r.get_json()["error"]["fields"]
    r = c.post("/api/needs", json={**need, "institution_id": world.ids["F"]})
    assert r.status_code == 201 and r.get_json()["institution_id"] == world.ids["F"]


def test_contacts_open_only_after_the_project_accepts(app: Flask, world: World) -> None:
    c = _clients(app)["fund"]
    accepted = c.get(f"/api/projects/{world.ids['P_conn']}").get_json()
    requested = c.get(f"/api/projects/{world.ids['P_req']}").get_json()
    assert (
        accepted["contact_phone"] == f"LEAKP{world.ids['P_conn']}PH"
        and "contact_phone" not in accepted["hidden"]
    )
    assert "contact_phone" not in requested and "contact_phone" in requested["hidden"]
    assert "stage" not in requested["hidden"]  # logged in: the member tier is open
    page = c.get(f"/projects/{world.ids['P_req']}").get_data(as_text=True)
    assert "项目接受对接后" in page and f"LEAKP{world.ids['P_req']}" not in page
    with app.app_context():
        conn = db.session.get(Connection, world.ids["K_req"])
        conn.stage = ConnectionStage.MET  # type: ignore[union-attr]
        db.session.commit()
    assert c.get(f"/api/projects/{world.ids['P_req']}").get_json()["contact_phone"].startswith("LEAKP")


def test_anonymous_sees_the_showcase_only(client: Any, world: World) -> None:
    data = client.get(f"/api/projects/{world.ids['P_own']}").get_json()
    assert set(data) - {"hidden"} <= PROJECT_PUBLIC_FIELDS
    assert {"amount_wan", "stage", "team", "contact_phone"} <= set(data["hidden"])
    listing = client.get("/api/projects?per_page=100").get_json()
    assert all("contact_phone" not in item and "team" not in item for item in listing["items"])
    inst = client.get(f"/api/institutions/{world.ids['F']}").get_json()
    assert "contact_name" not in inst and "contact_name" in inst["hidden"]
    matches = client.get(f"/api/institutions/{world.ids['F']}/matches?k=20").get_json()["items"]
    features = {r["feature"] for m in matches for r in m["reasons"]}
    assert not features & {"stage", "amount", "services", "need_side", "activity", "coinvest", "recency"}


def test_registration_waits_for_approval_then_binds_the_account(app: Flask, world: World) -> None:
    clients = _clients(app)
    anon = app.test_client()
    assert anon.post("/login", data={"username": "matrixreg", "password": "matrix-pass-1"}).status_code == 401
    assert clients["admin"].post(f"/admin/registrations/{world.ids['R']}/approve").status_code == 302
    assert anon.post("/login", data={"username": "matrixreg", "password": "matrix-pass-1"}).status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "matrixreg"))
        reg = db.session.get(Registration, world.ids["R"])
        assert user.project_id == world.ids["P_other"] and reg.status.name == "APPROVED"  # type: ignore[union-attr]
    page = anon.get(f"/projects/{world.ids['P_other']}").get_data(as_text=True)
    assert f"LEAKP{world.ids['P_other']}PH" in page  # the claimed project's own member sees its contacts
