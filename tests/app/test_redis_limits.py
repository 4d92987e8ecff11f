"""Rate limits shared through the real Redis of this machine (two app processes, one budget)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

REDIS_URL = os.environ.get("MATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

pytestmark = pytest.mark.redis


@pytest.fixture()
def redis_url() -> str:
    redis = pytest.importorskip("redis", reason="Redis tests skipped: the redis client is not installed")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"Redis tests skipped: no server at {REDIS_URL} ({exc.__class__.__name__})")
    return REDIS_URL


def test_failed_logins_share_one_budget_across_processes(make_app: Any, redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"  # a fresh key space, so earlier runs do not count
    settings = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": prefix,
        "LOGIN_RATE_LIMIT": "3 per minute",
    }
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    for client in (first, second, first):
        assert client.post("/login", data={"username": "fund", "password": "wrong"}).status_code == 401
    # the budget is used up in the shared store: the other "process" is refused too
    r = second.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    assert r.status_code == 429
    # and the counters really live in Redis
    import redis

    store = redis.Redis.from_url(redis_url)
    keys = list(store.scan_iter(f"*{prefix}*"))
    assert keys, "no rate-limit counters in Redis"
    store.delete(*keys)
