"""The demo as a fund sees it: plain reasons, distinctive keywords, competitors flagged, one 匹配度 a pair."""

from __future__ import annotations

import html
import re

from app.auth.accounts import find_user
from app.extensions import db
from app.services import get_matching
from embeddings.tokenize import content_word, words
from matching.explain import GENERIC_TERMS, JARGON, KEYWORD_MAX_CHARS, is_keyword
from models import Institution

#: The fillers the issue saw quoted as shared keywords.
FILLERS = ("提出", "为此", "第二", "数量", "缺口", "针对", "运行", "同比")


def _fund_id(app) -> int:
    with app.app_context():
        return find_user(db.session, "fund").institution_id


def _outside_quotes(text: str) -> str:
    return re.sub(r"「[^」]*」", "", text)


def _check_reason(text: str) -> None:
    plain = _outside_quotes(text)
    assert not any(word in plain for word in JARGON), text
    assert "z-score" not in text.lower() and "bm25" not in text.lower(), text
    assert not re.search(r"\([+-]\d", text), text  # no score points
    if text.startswith("共同关键词"):
        for term in re.findall(r"「([^」]*)」", text):
            assert term not in FILLERS and term.lower() not in GENERIC_TERMS, text
            assert not re.fullmatch(r"[\d.,%]+", term), text
            # content words only, never a piece of a shared sentence (「这个想法最早出现」)
            assert is_keyword(term, words, content_word) and len(term) <= KEYWORD_MAX_CHARS, text
    # A copied sentence is never quoted twice as evidence of fit.
    quotes = re.findall(r"「([^」]{6,})」", text)
    assert len(quotes) == len(set(quotes)), text


def test_every_reason_of_the_demo_is_plain(app) -> None:
    with app.app_context():
        service = get_matching()
        seen = 0
        for inst_id in service.institution_ids("fund") + service.institution_ids("base"):
            for m in service.match_institution(inst_id, 20):
                for r in m.reasons:
                    _check_reason(r.text)
                    seen += 1
        for pid in sorted(service.project_ids())[::10]:
            for side in ("fund", "base", "platform"):
                for m in service.match_project(pid, side, 10):
                    for r in m.reasons:
                        _check_reason(r.text)
                        seen += 1
        assert seen > 1000


def test_fund_list_page_flags_competitors_and_shows_plain_reasons(app, client, auth) -> None:
    fund = _fund_id(app)
    auth.login("fund")
    first = client.get(f"/institutions/{fund}").get_data(as_text=True)
    pages = int(re.search(r"第 1 / (\d+) 页", first).group(1))
    items = []
    for n in range(1, pages + 1):  # the whole ranked list, page by page
        page = first if n == 1 else client.get(f"/institutions/{fund}?page={n}").get_data(as_text=True)
        items += re.findall(r'<li class="match">(.*?)</li>\s*(?=<li class="match">|</ol>)', page, re.S)
    assert len(items) >= 50
    flags, scores = [], []
    for item in items:
        reasons = [html.unescape(x).strip() for x in re.findall(r'<li class="[a-z]+">(.*?)</li>', item, re.S)]
        for text in reasons:
            _check_reason(text)
        flags.append(any(re.fullmatch(r"可能与已投企业「[^」]+」构成竞争", t) for t in reasons))
        score = re.search(r'<span class="score".*?</span>([\d.]+)</span>', item, re.S)
        assert score is not None
        scores.append(float(score.group(1)))
    assert any(flags), "a near-copy of the fund's signed projects is flagged"
    # 回避竞争 (the default): every flagged candidate comes after every other.
    first_flag = flags.index(True)
    assert all(flags[first_flag:])
    assert scores[0] < 100.0
    assert scores[:first_flag] == sorted(scores[:first_flag], reverse=True)


def test_welcome_keeps_rank_and_api_names_the_competitor(app, client, auth) -> None:
    fund = _fund_id(app)
    auth.login("fund")
    avoid = client.get(f"/api/institutions/{fund}/matches?k=100").get_json()["items"]
    r = client.patch(f"/api/institutions/{fund}", json={"competitor_policy": "welcome"})
    assert r.status_code == 200 and r.get_json()["competitor_policy"] == "welcome"
    welcome = client.get(f"/api/institutions/{fund}/matches?k=100").get_json()["items"]
    assert {i["id"] for i in welcome} == {i["id"] for i in avoid}
    assert [i["score"] for i in welcome] == sorted((i["score"] for i in welcome), reverse=True)
    named = [i for i in welcome if i["competitor_of"]]
    assert named and all(i["reasons"][0]["feature"] == "competitor" for i in named)
    assert all(f"「{i['competitor_of']}」" in i["reasons"][0]["text"] for i in named)
    # Under welcome a competitor keeps the place its 匹配度 gives it; under avoid it went last.
    order = [i["id"] for i in welcome]
    assert min(order.index(i["id"]) for i in named) < len(order) - len(named)
    assert {i["id"]: i["score"] for i in welcome} == {i["id"]: i["score"] for i in avoid}


def test_policy_round_trip_form_and_api(app, client, auth) -> None:
    fund = _fund_id(app)
    auth.login("fund")
    page = client.get(f"/institutions/{fund}").get_data(as_text=True)
    assert "回避竞争" in page  # the default, visible on the institution's own page
    form = client.get(f"/institutions/{fund}/edit").get_data(as_text=True)
    assert 'name="competitor_policy"' in form and "欢迎同类" in form
    api = client.get(f"/api/institutions/{fund}").get_json()
    assert api["competitor_policy"] == "avoid"
    values = {k: v for k, v in api.items() if k in {"name", "kind", "province", "city", "description"}}
    data = {**values, "industries": api["industries"], "stages": api["stages"], "services": api["services"]}
    data = {k: v for k, v in data.items() if v is not None}
    r = client.post(f"/institutions/{fund}/edit", data={**data, "competitor_policy": "welcome"})
    assert r.status_code == 302
    with app.app_context():
        assert db.session.get(Institution, fund).competitor_policy == "welcome"
    assert "欢迎同类" in client.get(f"/institutions/{fund}").get_data(as_text=True)
    # Bad values are refused with a structured error and change nothing.
    bad = client.patch(f"/api/institutions/{fund}", json={"competitor_policy": "ignore"})
    assert bad.status_code in (400, 422)
    body = bad.get_json()
    assert "competitor_policy" in str(body) and "回避竞争" in str(body)
    assert client.get(f"/api/institutions/{fund}").get_json()["competitor_policy"] == "welcome"
    r = client.post(f"/institutions/{fund}/edit", data={**data, "competitor_policy": "ignore"})
    assert r.status_code == 422 and "回避竞争" in r.get_data(as_text=True)
    # The Chinese label is accepted too.
    ok = client.patch(f"/api/institutions/{fund}", json={"competitor_policy": "回避竞争"})
    assert ok.status_code == 200 and ok.get_json()["competitor_policy"] == "avoid"


def test_same_pair_same_score_on_both_pages(app, client, auth) -> None:
    fund = _fund_id(app)
    auth.login("fund")
    listed = client.get(f"/api/institutions/{fund}/matches?k=10").get_json()["items"]
    assert listed and listed[0]["score"] < 100.0
    for item in listed[:5]:
        on_project = client.get(f"/api/projects/{item['id']}/matches?kind=fund&k=60").get_json()["items"]
        mine = [i for i in on_project if i["id"] == fund]
        assert mine and mine[0]["score"] == item["score"], item["name"]
        # The project's HTML page shows the same number.
        page = client.get(f"/projects/{item['id']}").get_data(as_text=True)
        assert f"{item['score']:.1f}" in page
    auth.logout()
    auth.login("admin")  # the secretariat sees every pipeline: one view on both pages
    listed = client.get(f"/api/institutions/{fund}/matches?k=5").get_json()["items"]
    for item in listed:
        on_project = client.get(f"/api/projects/{item['id']}/matches?kind=fund&k=60").get_json()["items"]
        assert next(i["score"] for i in on_project if i["id"] == fund) == item["score"]


def test_a_shorter_list_is_the_start_of_a_longer_one(app) -> None:
    fund = _fund_id(app)
    with app.app_context():
        service = get_matching()
        long = service.match_institution(fund, 100, explain=False)
        short = service.match_institution(fund, 10, explain=False)
        assert [(m.id, m.score) for m in short] == [(m.id, m.score) for m in long[:10]]
        assert all(m.competitor_of is None for m in short)  # 回避竞争: competitors come after the rest
        pid = long[0].id
        assert [m.id for m in service.match_project(pid, "fund", 5)] == [
            m.id for m in service.match_project(pid, "fund", 20)
        ][:5]
