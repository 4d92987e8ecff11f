"""Bad input against the JSON API: a bounded schemathesis run from /api/openapi.json, and named cases.

The fuzz run calls every documented operation through the WSGI app (no network), as an anonymous caller
and with the API token of each role (secretariat, organiser, institution member, project member), with
schema-valid and schema-violating inputs, and applies every check schemathesis has (not a server error,
status code, content type, response schema and headers conformance, negative data rejected, positive data
accepted, ...). No answer may fail a check, and an answer of 4xx must leave the data as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from jsonschema import Draft202012Validator
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.generation import GenerationMode

import tools.schemathesis_hooks  # noqa: F401  (the document's own string formats)
from app.extensions import db

#: Cases per operation and generation mode (schema-valid, schema-violating), by caller: bounded (make test).
CASES = {
    "anonymous": {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2},
    "secretariat": {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4},
    "organiser": {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2},
    "institution": {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2},
    "project": {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2},
}
#: The demo account each caller's API token belongs to (README, Demo accounts); anonymous sends none.
ACCOUNTS = {"secretariat": "admin", "organiser": "organiser", "institution": "fund", "project": "project"}
#: Tables whose content a refused request must leave alone.
DATA_TABLES = ("project", "institution", "need", "connection", "contest", "user_account", "registration")
SKIP = {"api.openapi"}  # the document itself


def all_checks() -> list[Any]:
    """Return every check schemathesis registers (the CLI's `--checks all`)."""
    load_all_checks()
    return [c for c in CHECKS.get_all() if not is_check_class(c)]


def _token(app: Flask, username: str = "admin") -> str:
    from app.auth import accounts

    with app.app_context():
        user = accounts.find_user(db.session, username)
        return accounts.issue_token(db.session, user, "fuzz")[1]  # type: ignore[arg-type]


def _digest(con: sqlite3.Connection) -> str:
    digest = hashlib.sha256()
    for table in DATA_TABLES:
        for row in con.execute(f"SELECT * FROM {table} ORDER BY id"):
            digest.update(repr(row).encode())
    return digest.hexdigest()


def _fingerprint(path: str) -> str:
    """Return a digest of every row of the data tables (a dump, compared before and after)."""
    con = sqlite3.connect(path)
    try:
        return _digest(con)
    finally:
        con.close()


class _Watch:
    """The data tables' digest, dumped again only once the app has committed something since the last dump
    (PRAGMA data_version of a connection kept open): most refused requests write nothing at all."""

    def __init__(self, path: str) -> None:
        self._con = sqlite3.connect(path)
        self._version: int | None = None
        self._digest = ""

    def digest(self) -> str:
        version = self._con.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version, self._digest = version, _digest(self._con)
        return self._digest

    def close(self) -> None:
        self._con.close()


@pytest.mark.parametrize("caller", list(CASES))
def test_fuzz_the_api_from_its_openapi_document(app: Flask, caller: str) -> None:
    account = ACCOUNTS.get(caller)
    headers = {"Authorization": f"Bearer {_token(app, account)}"} if account else {}
    watch = _Watch(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    checks = all_checks()
    stats: Counter[str] = Counter()
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    for operation in operations:
        endpoint = _endpoint(app, operation)
        if endpoint in SKIP:
            continue
        stats["operations"] += 1
        for mode, n in CASES[caller].items():

            @settings(
                max_examples=n,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                before = watch.digest() if case.method != "GET" else None
                response = case.call(headers=headers)
                stats["cases"] += 1
                stats[f"{response.status_code // 100}xx"] += 1
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except (
                    Exception,
                    BaseExceptionGroup,
                ) as exc:  # collect: one run reports every broken operation
                    failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:600]}")
                if before is not None and 400 <= response.status_code < 500 and watch.digest() != before:
                    failures.append(
                        f"{case.method} {case.formatted_path}: {response.status_code} but data changed"
                    )

            try:
                run()
            except Unsatisfiable:  # nothing to violate (no parameters, no body): only positive cases exist
                stats["unsatisfiable"] += 1
    watch.close()
    print(
        f"\nfuzz ({caller}, {len(checks)} checks): {stats['operations']} operations, {stats['cases']} cases, "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k.endswith(("xx", "422")))
    )
    assert stats["5xx"] == 0
    assert not failures, "\n".join(dict.fromkeys(failures))


def _endpoint(app: Flask, operation: Any) -> str:
    path = operation.path
    for rule in app.url_map.iter_rules():
        if rule.rule.replace("<int:ident>", "{ident}").replace("<kind>", "{kind}") == path:
            return rule.endpoint
    return path


# --- named bad inputs: each gets a clear 4xx and changes nothing --------------------------------------------

PROJECT = {
    "name": "测试项目",
    "group": "企业组",
    "contest_id": 1,
    "industry": "人工智能",
    "description": "一个用于检验输入校验的测试项目简介。",
}


def _bad_cases() -> list[tuple[str, str, dict[str, Any], int, str]]:
    big = "长" * 300_000
    return [
        ("POST", "/api/projects", {"data": b"{not json", "content_type": "application/json"}, 422, "JSON"),
        (
            "POST",
            "/api/projects",
            {"data": "名称=x", "content_type": "application/x-www-form-urlencoded"},
            415,
            "JSON",
        ),
        (
            "POST",
            "/api/projects",
            {"data": b'{"name": "\xff\xfe"}', "content_type": "application/json"},
            422,
            "JSON",
        ),
        ("POST", "/api/projects", {"json": [1, 2]}, 422, "JSON 对象"),
        ("POST", "/api/projects", {"json": {**PROJECT, "description": big}}, 413, "过大"),
        ("POST", "/api/projects", {"json": {**PROJECT, "contest_id": "一"}}, 422, "contest_id"),
        ("POST", "/api/projects", {"json": {**PROJECT, "employees": 1.5}}, 422, "employees"),
        ("POST", "/api/projects", {"json": {**PROJECT, "amount_wan": -5}}, 422, "amount_wan"),
        ("POST", "/api/projects", {"json": {**PROJECT, "amount_wan": float("inf")}}, 422, "amount_wan"),
        ("POST", "/api/projects", {"json": {**PROJECT, "is_admin": True}}, 422, "is_admin"),
        ("POST", "/api/projects", {"json": {**PROJECT, "industry": ["人工智能"]}}, 422, "industry"),
        ("PATCH", "/api/projects/1", {"json": {"amount_wan": "很多"}}, 422, "amount_wan"),
        ("PATCH", "/api/projects/1", {"json": {"contest_id": 2**70}}, 422, "contest_id"),
        ("PUT", "/api/institutions/1", {"json": {"name": "x"}}, 422, "kind"),
        (
            "POST",
            "/api/needs",
            {"json": {"institution_id": -1, "title": "标题很短", "description": "说明" * 10}},
            422,
            "institution_id",
        ),
        ("GET", "/api/projects/1/matches?k=100000000000000000000", {}, 422, "k"),
        ("GET", "/api/institutions/1/matches?k=-3", {}, 422, "k"),
        ("GET", "/api/projects?per_page=0", {}, 422, "per_page"),
        ("GET", "/api/projects?contest=%FF%FE", {}, 422, "contest"),
        ("GET", "/api/projects/99999999999999999999999", {}, 404, "不存在"),
        ("DELETE", "/api/projects/99999999999", {}, 404, "不存在"),
    ]


def test_bad_input_gets_a_clear_4xx_and_the_database_is_unchanged(app: Flask, client: Any, auth: Any) -> None:
    auth.login("admin")
    db_path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    before = _fingerprint(db_path)
    for method, url, kwargs, status, words in _bad_cases():
        if "data" in kwargs and isinstance(kwargs["data"], str):
            kwargs = {**kwargs, "data": kwargs["data"].encode()}
        r = client.open(url, method=method, **kwargs)
        assert r.status_code == status, (method, url, r.status_code, r.get_data(as_text=True)[:300])
        error = r.get_json()["error"]
        text = json.dumps(error, ensure_ascii=False)
        assert error["message"] and words in text, (url, text)
    assert _fingerprint(db_path) == before


def test_every_api_route_is_in_the_openapi_document(app: Flask, client: Any) -> None:
    """The document is walked from the url map: every /api route and method, each with its declaration."""
    doc = client.get("/api/openapi.json").get_json()
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule), m.lower())
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/")
        for m in (r.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    assert "Error" in doc["components"]["schemas"] and doc["openapi"].startswith("3.1")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (path, method)
            assert any(code.startswith("2") for code in op["responses"]), (path, method)


def test_an_undeclared_api_route_fails_the_document(app: Flask) -> None:
    """A new /api route without @operation cannot slip into the document undescribed."""
    from app.api.openapi import build_openapi

    app.add_url_rule("/api/undeclared", "undeclared", lambda: "")
    with app.app_context(), pytest.raises(LookupError, match="undeclared"):
        build_openapi(app)


def test_the_published_schemas_are_the_checked_ones(client: Any, auth: Any) -> None:
    """Cases schemathesis reported: an over-long q, a boolean capacity, the anonymous stage filter."""
    r = client.get("/api/projects?q=" + "长" * 101)
    assert r.status_code == 422 and "q" in r.get_json()["error"]["fields"]
    doc = client.get("/api/openapi.json").get_json()
    q = next(p for p in doc["paths"]["/api/projects"]["get"]["parameters"] if p["name"] == "q")
    assert q["schema"]["maxLength"] == 100
    r = client.get("/api/projects?stage=初创期")
    assert r.status_code == 401 and "stage" in r.get_json()["error"]["fields"]
    assert "401" in doc["paths"]["/api/projects"]["get"]["responses"]
    auth.login("admin")
    assert client.get("/api/projects?stage=初创期").status_code == 200
    r = client.patch("/api/institutions/1", json={"capacity": False})
    assert r.status_code == 422 and "capacity" in r.get_json()["error"]["fields"]
    r = client.patch("/api/institutions/1", json={"industries": "人工智能,物联网"})
    assert r.status_code == 422 and "industries" in r.get_json()["error"]["fields"]
    r = client.get("/api/connections?follow_up=yes")
    assert r.status_code == 422 and "follow_up" in r.get_json()["error"]["fields"]
    r = client.get("/api/projects?page=1&page=2")
    assert r.status_code == 422 and "page" in r.get_json()["error"]["fields"]


def test_put_replaces_and_patch_changes_part_through_one_path(client: Any, auth: Any) -> None:
    auth.login("admin")
    for url in ("/api/projects/1", "/api/institutions/1", "/api/needs/1"):
        before = client.get(url).get_json()
        r = client.patch(url, json={"description": "一段新的、足够长的简介文字，用于检验部分修改。"})
        assert r.status_code == 200, (url, r.get_json())
        after = r.get_json()
        assert after["description"].startswith("一段新的")
        assert {k: v for k, v in after.items() if k not in ("description", "updated_at")} == {
            k: v for k, v in before.items() if k not in ("description", "updated_at")
        }
        r = client.put(url, json={"description": "只有简介的全量替换应当被拒绝。"})
        assert r.status_code == 422, url


def test_a_minimum_length_is_counted_without_the_white_space_at_the_ends(client: Any, auth: Any) -> None:
    """Reported for an institution member: a description of a line break and nine characters had 10 by the
    document's minLength, but the model trims it to 9 (422). The published pattern counts as the model."""
    doc = client.get("/api/openapi.json").get_json()
    schemas = doc["components"]["schemas"]

    def documented(model: str, name: str, value: str) -> bool:
        return Draft202012Validator(schemas[model]["properties"][name]).is_valid(value)

    auth.login("admin")
    need = {"institution_id": 1, "title": "招引智能装备企业", "description": "诚邀工业机器人企业入驻园区。"}
    short = "\n诚邀机器人企业入驻"  # 10 characters, 9 once trimmed
    assert len(short) == 10 and not documented("NeedIn", "description", short)
    r = client.post("/api/needs", json={**need, "description": short})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["fields"] == {"description": "简介：至少 10 个字符（不计首尾空白）"}
    padded = "\u3000诚邀机器人企业入驻园区\n"
    assert documented("NeedIn", "description", padded)
    r = client.post("/api/needs", json={**need, "description": padded, "title": " 招引企业 "})
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["description"], r.get_json()["title"]) == ("诚邀机器人企业入驻园区", "招引企业")
    for title, ok in ((" 招引 ", False), ("\u2003招引企业", True), ("招引\x07企业", False)):
        assert documented("NeedIn", "title", title) is ok, title
        r = client.post("/api/needs", json={**need, "title": title})
        assert (r.status_code == 201) is ok, (title, r.get_json())
    r = client.post("/api/needs", json={**need, "title": "招引\x07企业"})
    assert r.get_json()["error"]["fields"]["title"].endswith("不能包含控制字符")
    # the same for a name of at least one character, and an e-mail address trimmed before its @ is checked
    assert not documented("SearchIn", "name", " ") and documented("SearchIn", "name", " 提醒 ")
    for email, ok in ((" a@b.cn ", True), (" @b.cn", False), ("a@ ", False), ("a@\u3000", False)):
        assert documented("InstitutionIn", "contact_email", email) is ok, email
        r = client.patch("/api/institutions/1", json={"contact_email": email})
        assert (r.status_code == 200) is ok, (email, r.get_json())
