"""Anonymous ranked-list answers are kept per ranking state: the same URL is answered again without
ranking, and any change of the rankings (an edit, here or in another worker) is answered afresh."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import services
from app.api.answers import KeptAnswers
from app.extensions import db
from models import Institution, Project


@contextmanager
def rankings(app: Flask) -> Iterator[list[str]]:
    """Count the ranking calls of the app's matching service meanwhile."""
    with app.app_context():
        service = services.get_matching()
    calls: list[str] = []
    originals = {name: getattr(service, name) for name in ("match_institution", "match_project")}

    def counted(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return originals[name](*args, **kwargs)

        return call

    for name in originals:
        setattr(service, name, counted(name))
    try:
        yield calls
    finally:
        for name in originals:
            delattr(service, name)


def _first(app: Flask, model: Any) -> int:
    with app.app_context():
        ident = db.session.scalar(select(model.id).where(model.archived_at.is_(None)).order_by(model.id))
        assert ident is not None
        return int(ident)


def test_the_same_anonymous_list_is_answered_again_without_ranking(make_app: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, API_RATE_LIMIT="1000 per minute")
    client = app.test_client()
    iid, pid = _first(app, Institution), _first(app, Project)
    urls = (f"/api/institutions/{iid}/matches?k=10", f"/api/projects/{pid}/matches?kind=fund&k=10")
    first = [client.get(u) for u in urls]
    assert all(r.status_code == 200 for r in first)
    with rankings(app) as calls:
        again = [client.get(u) for u in urls]
    assert calls == []
    assert [r.data for r in again] == [r.data for r in first]
    assert all(r.mimetype == "application/json" for r in again)
    assert all("X-RateLimit-Remaining" in r.headers for r in again)  # per-request headers still added
    assert all(r.headers["X-Content-Type-Options"] == "nosniff" for r in again)
    with rankings(app) as calls:  # parameters the list ignores ask the same question
        assert client.get(urls[0] + "&junk=1").data == first[0].data
        assert client.get(f"/api/institutions/{iid}/matches?junk=2&k=10").data == first[0].data
    assert calls == []
    with rankings(app) as calls:  # another k or side is another question
        assert len(client.get(f"/api/institutions/{iid}/matches?k=5").json["items"]) == 5
        assert client.get(f"/api/projects/{pid}/matches?kind=base&k=10").json["kind"] == "base"
    assert calls == ["match_institution", "match_project"]


def test_an_edit_is_answered_afresh(app: Flask, client: Any, auth: Any) -> None:
    iid = _first(app, Institution)
    url = f"/api/institutions/{iid}/matches?k=10"
    top = client.get(url).json["items"][0]
    auth.login("admin")
    renamed = top["name"] + "（更名）"
    assert client.patch(f"/api/projects/{top['id']}", json={"name": renamed}).status_code == 200
    auth.logout()
    items = client.get(url).json["items"]
    assert {i["id"]: i["name"] for i in items}.get(top["id"]) == renamed


def test_signed_in_and_filtered_lists_are_ranked_each_time(app: Flask, client: Any, auth: Any) -> None:
    iid = _first(app, Institution)
    url = f"/api/institutions/{iid}/matches?k=10"
    filtered = url + "&province=浙江省"
    for _ in range(2):
        assert client.get(filtered).status_code == 200
    auth.login("admin")
    client.get(url)
    with rankings(app) as calls:
        assert client.get(url).status_code == 200
    assert calls == ["match_institution"]
    auth.logout()
    with rankings(app) as calls:
        assert client.get(filtered).status_code == 200
    assert calls == ["match_institution"]


def test_kept_answers_still_count_against_the_rate_limit(make_app: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, API_RATE_LIMIT="3 per minute")
    client = app.test_client()
    url = f"/api/institutions/{_first(app, Institution)}/matches?k=10"
    assert [client.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_errors_are_not_kept(app: Flask, client: Any) -> None:
    assert client.get("/api/institutions/999999/matches?k=10").status_code == 404
    assert client.get("/api/institutions/999999/matches?k=10").status_code == 404
    assert len(app.extensions.get("kept_answers") or ()) == 0


def test_no_budget_answers_every_request_afresh(make_app: Any) -> None:
    app = make_app(KEPT_ANSWERS_MB=0)
    client = app.test_client()
    url = f"/api/institutions/{_first(app, Institution)}/matches?k=10"
    assert client.get(url).status_code == 200
    with rankings(app) as calls:
        assert client.get(url).status_code == 200
    assert calls == ["match_institution"]


def test_kept_answers_stay_within_their_budget_and_state() -> None:
    kept = KeptAnswers(budget_bytes=10)
    kept.put("s1", "/a", b"x")  # no state seen yet: nothing is kept
    assert kept.get("s1", "/a") is None
    kept.put("s1", "/a", b"aaaa")
    kept.put("s1", "/b", b"bbbb")
    assert kept.get("s1", "/a") == b"aaaa"  # /a is now the most recent
    kept.put("s1", "/c", b"cccc")  # 12 bytes: the oldest (/b) goes
    assert (kept.get("s1", "/b"), kept.get("s1", "/a"), kept.get("s1", "/c")) == (None, b"aaaa", b"cccc")
    kept.put("s1", "/big", b"z" * 11)  # larger than the budget: never kept
    assert kept.get("s1", "/big") is None
    assert kept.get("s2", "/a") is None  # a new state forgets the old answers
    kept.put("s1", "/a", b"old")  # built in a state that has passed: not kept
    assert kept.get("s2", "/a") is None and len(kept) == 0


@pytest.mark.parametrize("k", ["10.0", "true", "-1", "101"])
def test_bad_queries_are_refused_before_any_kept_answer(app: Flask, client: Any, k: str) -> None:
    url = f"/api/institutions/{_first(app, Institution)}/matches"
    assert client.get(url + "?k=10").status_code == 200
    r = client.get(f"{url}?k={k}")
    assert r.status_code == 422 and "error" in r.json
    # a query-string error says so, and names k
    assert "查询参数有误" in str(r.json) and "k" in str(r.json)


@pytest.mark.parametrize("value", ["abc", -1, True, None, "1e400"])
def test_a_bad_budget_stops_the_start(make_app: Any, value: Any) -> None:
    with pytest.raises(ValueError, match="KEPT_ANSWERS_MB"):
        make_app(KEPT_ANSWERS_MB=value)
