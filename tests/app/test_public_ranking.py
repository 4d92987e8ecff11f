"""Visitors who are not logged in get rankings computed from public fields only."""

from __future__ import annotations


def _ids(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.get_json()
    return [(i["id"], i["score"]) for i in r.get_json()["items"]]


def test_public_ranking_ignores_private_fields(client, auth):
    url = "/api/projects/9/matches?kind=fund&k=15"
    before = _ids(client, url)
    auth.login("admin")
    member_before = _ids(client, url)
    changed = {"stage": "创意阶段", "amount_wan": 5, "funding_round": "种子轮", "needs": ["落地", "法律"]}
    assert client.patch("/api/projects/9", json=changed).status_code == 200
    member_after = _ids(client, url)
    assert member_after != member_before, "logged-in rankings use stage, amount and needs"
    auth.logout()
    assert _ids(client, url) == before, "the public ranking must not move when private fields change"


def test_visitors_cannot_filter_on_private_fields(client, auth):
    r = client.get("/api/projects?stage=成长期")  # a login-only filter: 401, as the OpenAPI document says
    assert r.status_code == 401 and "登录" in r.get_json()["error"]["fields"]["stage"]
    auth.login("fund")
    assert client.get("/api/projects?stage=成长期").status_code == 200
