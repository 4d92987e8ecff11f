"""Every `next` parameter goes through one check: only paths of this site, never another host."""

from __future__ import annotations

from typing import Any

import pytest

from app.security import safe_target

#: Targets a browser could turn into another site (or that no page of ours writes): all refused.
HOSTILE = [
    "/\t/evil.example/phish",  # the reported one: the tab is dropped by the browser -> //evil.example
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " /evil.example",
    "/ /evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/%2F/evil.example",
    "/%2f/evil.example",
    "/%252F/evil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "https:evil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "http:/evil.example",
    "evil.example",
    "",
    "/\u200b/evil.example",  # zero-width space
    "/\u3000/evil.example",  # ideographic space
    "/\u00a0/evil.example",  # no-break space
    "/\uff0f/evil.example",  # fullwidth solidus
    "\uff0f\uff0fevil.example",
    "/\u2215/evil.example",  # division slash
    "/\u2044/evil.example",  # fraction slash
    "/\ufe68evil.example",  # small reverse solidus
    "/\u202e/elpmaxe.live",  # right-to-left override
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/" + "a" * 3000,
]

#: Targets our own pages write: kept as they are.
SAFE = [
    "/projects/2",
    "/needs/?page=2",
    "/projects/?q=%E4%BA%BA%E5%B7%A5%E6%99%BA%E8%83%BD&page=3",
    "/projects/?q=人工智能",
    "/connections/12#history",
    "/",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_end_at_the_default(target: str) -> None:
    assert safe_target(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", SAFE)
def test_paths_of_this_site_are_kept(target: str) -> None:
    assert safe_target(target, "/fallback") == target


def test_login_redirects_only_within_the_site(client: Any) -> None:
    # the reported reproduction, as the browser sends it: /login?next=/%09/evil.example/phish
    r = client.get("/login?next=/%09/evil.example/phish")
    assert 'name="next" value=""' in r.get_data(as_text=True)  # not even carried into the form
    for target in [*HOSTILE[:24], "/projects/2"]:
        r = client.post("/login", data={"username": "base", "password": "demo-base-2026", "next": target})
        expected = target if target == "/projects/2" else "/"
        assert r.status_code == 302 and r.headers["Location"] == expected, repr(target)
        client.post("/logout")
    r = client.post(
        "/login?next=/%09/evil.example/phish", data={"username": "base", "password": "demo-base-2026"}
    )
    assert r.headers["Location"] == "/"


def test_connection_forms_redirect_only_within_the_site(client: Any, auth: Any) -> None:
    auth.login("admin")
    r = client.post("/connections/new", data={"next": "/projects/2"})  # an incomplete form: back to next
    assert r.status_code == 302 and r.headers["Location"] == "/projects/2"
    for target in ("/\t/evil.example/phish", "/%2F/evil.example", "/\\evil.example", "https:evil.example"):
        r = client.post("/connections/new", data={"next": target})
        assert r.status_code == 302 and r.headers["Location"] == "/connections/", repr(target)
