"""X-Forwarded-* are believed only from the configured number of trusted proxies (MATCH_TRUSTED_PROXIES)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from models.accounts import AuditLog

FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def _failed_login_ip(app: Any, headers: dict[str, str]) -> str | None:
    app.test_client().post("/login", data={"username": "fund", "password": "wrong"}, headers=headers)
    with app.app_context():
        row = db.session.scalar(
            select(AuditLog).where(AuditLog.action == "login_failed").order_by(AuditLog.id.desc())
        )
        assert row is not None
        return row.ip


def test_without_trusted_proxies_forwarded_headers_are_ignored(make_app: Any) -> None:
    app = make_app()
    assert _failed_login_ip(app, FORGED) == "127.0.0.1"  # the TCP peer, not what the client claims
    r = app.test_client().get("/", headers=FORGED)
    assert "Strict-Transport-Security" not in r.headers  # a forged proto does not make us think TLS


def test_with_one_trusted_proxy_the_client_address_is_the_one_it_appended(make_app: Any) -> None:
    app = make_app(TRUSTED_PROXIES=1)
    assert _failed_login_ip(app, FORGED) == "203.0.113.9"
    # a client that sends its own X-Forwarded-For gets it prepended to, never believed
    assert _failed_login_ip(app, {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}) == "198.51.100.7"
    r = app.test_client().get("/", headers=FORGED)
    assert "Strict-Transport-Security" in r.headers  # the proxy terminated TLS


@pytest.mark.parametrize(("trusted", "expected"), [(False, "localhost"), (True, "match.example.org")])
def test_forwarded_host_is_trusted_only_when_configured(make_app: Any, trusted: bool, expected: str) -> None:
    from flask import request

    app = make_app(TRUSTED_PROXIES=1, TRUSTED_PROXY_HOST=trusted)
    seen: dict[str, str] = {}

    @app.get("/_probe_host")
    def _probe() -> str:
        seen["host"] = request.host
        return "ok"

    _probe.access_rule = ("public",)  # type: ignore[attr-defined]
    app.test_client().get("/_probe_host", headers={"X-Forwarded-Host": "match.example.org"})
    assert seen["host"] == expected


def test_rate_limits_key_on_the_forwarded_address_only_behind_trusted_proxies(make_app: Any) -> None:
    limits = {"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT_PER_ADDRESS": "2 per minute"}

    def attempts(app: Any, addresses: list[str]) -> list[int]:
        client = app.test_client()
        return [
            client.post(
                "/login",
                data={"username": f"nobody{i}", "password": "x"},
                headers={"X-Forwarded-For": addr},
            ).status_code
            for i, addr in enumerate(addresses)
        ]

    # no proxy configured: a forged X-Forwarded-For does not buy a fresh bucket
    assert attempts(make_app(**limits), ["198.51.100.1", "198.51.100.1", "198.51.100.2"]) == [401, 401, 429]
    # behind one trusted proxy: each client address has its own bucket
    app = make_app(TRUSTED_PROXIES=1, **limits)
    assert attempts(app, ["198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2"]) == [
        401,
        401,
        429,
        401,
    ]


@pytest.mark.parametrize("bad", [-1, 9, "two", True])
def test_a_nonsense_proxy_count_stops_the_start(make_app: Any, bad: Any) -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        make_app(TRUSTED_PROXIES=bad)
