"""Ranked-list answers kept for visitors: the same anonymous question is answered again from bytes.

An anonymous ranked list depends only on its question (path, k, side) and on the ranking core's
state (:meth:`matching.service.MatchingService.state_token`): no account, contact or pipeline enters
it, and nothing is logged for it. So the JSON a visitor was answered is kept, per worker, until the
state changes (an edit here or in another worker, once this worker has applied it; a ranker change;
an index rebuild), and the same question asked again is answered with those bytes: no ranking call, no
serialising. Per-request headers (rate limit, security, the lexical-only flag) are still added by the
after-request hooks. Only 200 answers are kept; a logged-in caller is always answered afresh.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from flask import Flask, current_app, request

from app import services
from app.access import current_user

__all__ = ["KeptAnswers", "init_app", "kept_for_visitors"]

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSION = "kept_answers"


class KeptAnswers:
    """Answer bodies by question (path and parameters) for one ranking state, the oldest out first past
    a byte budget (thread-safe)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._token: Hashable = None
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, token: Hashable, question: Hashable) -> bytes | None:
        """Return the body kept for the question in this state, or None (a new state forgets the old)."""
        with self._lock:
            self._follow(token)
            body = self._bodies.get(question)
            if body is not None:
                self._bodies.move_to_end(question)
            return body

    def put(self, token: Hashable, question: Hashable, body: bytes) -> None:
        """Keep a body answered in this state (not when the state has moved on meanwhile)."""
        if len(body) > self.budget:
            return
        with self._lock:
            if self._token != token:  # the state moved on while the answer was built
                return
            old = self._bodies.pop(question, None)
            self._size += len(body) - (len(old) if old is not None else 0)
            self._bodies[question] = body
            while self._size > self.budget:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        return len(self._bodies)

    def _follow(self, token: Hashable) -> None:
        # Any other token is a new state: what was kept is forgotten (never answered from again).
        if token != self._token:
            self._bodies.clear()
            self._size = 0
            self._token = token


def init_app(app: Flask) -> None:
    """Check KEPT_ANSWERS_MB (a number of MB, at least 0; a bad value stops the start) and make the store."""
    raw = app.config.get("KEPT_ANSWERS_MB", 0)
    try:
        mb = float(raw)
    except (TypeError, ValueError):
        mb = -1.0
    if isinstance(raw, bool) or not 0 <= mb <= 1 << 20:
        raise ValueError(f"KEPT_ANSWERS_MB must be a number of MB from 0 up, got {raw!r}")
    app.extensions[_EXTENSION] = KeptAnswers(int(mb * 1024 * 1024)) if mb > 0 else None


def kept_for_visitors(question: Callable[[], Hashable | None]) -> Callable[[F], F]:
    """Answer an anonymous GET of a ranked list from the kept bytes of the same question and state.

    Args:
        question: what the request asks besides its path (k, the side...), from the query string as
            the view reads it, or None to answer afresh. Parameters the view ignores are not part of
            it, so junk ones cannot push the kept answers out. A filtered list is answered afresh: a
            filter reads the ids it allows from rows (a contest's kind, say) that the ranking state
            does not follow.

    Put it innermost (after the access rule and the query check, which still run on every call).
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            kept: KeptAnswers | None = app.extensions.get(_EXTENSION)
            asked = None
            if kept is not None and request.method == "GET" and current_user() is None:
                asked = question()
            if kept is None or asked is None:
                return view(*args, **kwargs)
            token = services.get_matching().state_token()  # applies other workers' edits first
            key = (request.path, asked)
            body = kept.get(token, key)
            if body is not None:
                return app.response_class(body, mimetype="application/json")
            response = view(*args, **kwargs)
            if getattr(response, "status_code", None) == 200 and not response.direct_passthrough:
                kept.put(token, key, response.get_data())
            return response

        return cast(F, wrapped)

    return decorator
