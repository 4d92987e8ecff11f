"""The in-process rate-limit storage counts like limits' memory storage without starting a thread per hit."""

from __future__ import annotations

import threading
import time
from typing import Any

from limits import parse
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from app.security import InlineExpiryMemoryStorage


def test_memory_uri_opens_the_inline_storage(make_app: Any) -> None:
    from app.extensions import limiter

    make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    assert type(limiter.storage) is InlineExpiryMemoryStorage


def test_hits_count_and_start_no_thread(monkeypatch: Any) -> None:
    storage = InlineExpiryMemoryStorage()
    started: list[Any] = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self))
    fixed = FixedWindowRateLimiter(storage)
    limit = parse("3 per minute")
    assert [fixed.hit(limit, "k") for _ in range(4)] == [True, True, True, False]
    moving = MovingWindowRateLimiter(storage)
    assert [moving.hit(limit, "m") for _ in range(4)] == [True, True, True, False]
    assert started == []


def test_expired_counters_are_swept() -> None:
    storage = InlineExpiryMemoryStorage()
    storage.incr("gone", expiry=0.01)
    storage.acquire_entry("gone-window", limit=5, expiry=0)
    storage.incr("kept", expiry=60)
    time.sleep(0.02)
    storage._next_sweep = 0.0  # the next hit sweeps
    storage.incr("kept", expiry=60)
    assert "gone" not in storage.storage and "gone-window" not in storage.events
    assert storage.get("kept") == 2
