"""Web safety for every response: cookie flags, security headers, rate limits, CSRF on cookie API writes."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, abort, current_app, g, request
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, validate_csrf
from limits.storage import MemoryStorage
from wtforms.validators import ValidationError

from app.access import auth_via, current_user
from app.extensions import limiter

log = logging.getLogger(__name__)

#: No inline scripts anywhere; inline style *attributes* only (the score bars set a CSS variable).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


#: Characters a path may hold as written (RFC 3986 pchar, "/" and "%" escapes): ASCII only.
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")

#: Longest redirect target we follow; anything longer is not a link of ours.
MAX_TARGET_LENGTH = 2048


#: Unicode categories a browser may drop or treat specially: controls, format, surrogates, unassigned...
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _hostile_char(ch: str) -> bool:
    """Return True for what a browser may drop or reinterpret: controls, whitespace, invisibles, backslash."""
    return ch == "\\" or ch.isspace() or unicodedata.category(ch) in _INVISIBLE


def safe_target(target: str | None, default: str) -> str:
    """Return `target` if it is a path on this site, else `default`: the one check for every redirect.

    Browsers strip tabs and newlines from a URL, read a backslash as a slash and a leading `//` as
    another host, so the check refuses rather than cleans: any control, whitespace or invisible
    character, any backslash (also %-escaped), anything with a scheme or a host, a path that starts
    with `//` before or after %-decoding, and non-ASCII in the path (look-alike slashes). Non-ASCII
    text in the query string (a Chinese search) is kept.
    """
    if not target or len(target) > MAX_TARGET_LENGTH or not target.startswith("/"):
        return default
    if any(_hostile_char(ch) for ch in target):
        return default
    path, _, _rest = target.partition("?")
    path = path.partition("#")[0]
    if not _PATH_CHARS.fullmatch(path) or path.startswith("//"):
        return default
    decoded = path
    for _ in range(3):  # a proxy or a framework may decode once more than we expect
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
        if decoded.startswith("//") or any(_hostile_char(ch) for ch in decoded):
            return default
    else:
        return default  # still escaped after three rounds: nobody writes links like that
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    return target


class InlineExpiryMemoryStorage(MemoryStorage):
    """limits' in-process storage ("memory://") without its expiry thread.

    The stock storage starts a threading.Timer on every hit that finds the previous one finished, i.e.
    up to a hundred thread starts a second under load, each a GIL hand-off in the middle of a request.
    Counters already expire when read; here the sweep that frees expired keys runs inside a hit, at most
    once per SWEEP_SECONDS. Selected by RATELIMIT_STORAGE_URI = "memory://" (the default).
    """

    STORAGE_SCHEME = ["inline-memory"]  # noqa: RUF012 (the base class declares it so)
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the parent's private timer start
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self.sweep()

    def sweep(self) -> None:
        """Forget expired counters and moving-window entries (what the parent's timer thread does)."""
        now = time.time()
        for key in list(self.expirations):
            if self.expirations.get(key, now + 1) <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)
        for key in list(self.events):
            with self.locks[key]:
                live = [e for e in self.events.get(key, []) if e.expiry > now]
                if live:
                    self.events[key] = live
                else:
                    self.events.pop(key, None)
                    self.locks.pop(key, None)


def _storage_uri(uri: str | None) -> str:
    """Return the rate-limit storage to open: the in-process one without a timer thread for memory://."""
    if not uri or uri.startswith("memory://"):
        return "inline-memory://" + (uri or "memory://")[len("memory://") :]
    return uri


def api_rate_key() -> str:
    """Return the API rate-limit bucket: the token (or account) together with the address."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        from models.accounts import hash_token

        who = "t:" + hash_token(header[7:].strip())[:16]
    else:
        user = current_user()
        who = f"u:{user.id}" if user is not None else "anon"
    return f"{who}|{get_remote_address()}"


def api_rate_limit() -> str:
    return str(current_app.config["API_RATE_LIMIT"])


def limit_api(blueprint: Blueprint) -> None:
    """Count every call to the blueprint's routes against its token (or account) and address."""
    limiter.limit(api_rate_limit, key_func=api_rate_key)(blueprint)


#: More proxies than this in front of one service is a configuration mistake, not a deployment.
MAX_TRUSTED_PROXIES = 5


def install_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-For/-Proto (and -Host, if asked) from TRUSTED_PROXIES proxies in front of us.

    With 0 (the default) nothing is wrapped: the client address is the TCP peer, so a forged
    X-Forwarded-For changes neither the audit log nor a rate-limit bucket. With n > 0 werkzeug's
    ProxyFix takes the n-th address from the right of X-Forwarded-For (what our own proxies
    appended, never what the client wrote) and the scheme from X-Forwarded-Proto, so Secure
    cookies and HSTS follow the proxy's TLS. X-Forwarded-Host is trusted only with
    TRUSTED_PROXY_HOST: the Host header builds absolute URLs, and a proxy that passes the
    client's header through would let anyone choose them; the proxy should set Host itself.
    """
    raw = app.config.get("TRUSTED_PROXIES") or 0
    try:
        proxies = int(raw)
    except (TypeError, ValueError):
        proxies = -1
    if not 0 <= proxies <= MAX_TRUSTED_PROXIES or isinstance(raw, bool):
        raise ValueError(
            f"TRUSTED_PROXIES must be a whole number from 0 to {MAX_TRUSTED_PROXIES}, got {raw!r}"
        )
    app.config["TRUSTED_PROXIES"] = proxies
    if proxies == 0:
        return
    from werkzeug.middleware.proxy_fix import ProxyFix

    x_host = proxies if app.config.get("TRUSTED_PROXY_HOST") else 0
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=x_host, x_port=0, x_prefix=0
    )
    log.info("trusting X-Forwarded-For/-Proto%s from %d proxies", "/-Host" if x_host else "", proxies)


def init_app(app: Flask) -> None:
    """Bind the limiter and register the cookie, header and API guards."""
    install_proxy_fix(app)
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        secure = not (app.debug or app.testing)
        app.config["SESSION_COOKIE_SECURE"] = secure
        app.config.setdefault("REMEMBER_COOKIE_SECURE", secure)
    if not (app.debug or app.testing) and app.config.get("SECRET_KEY") == "dev-only-change-me":
        log.warning("SECRET_KEY is the development default: set MATCH_SECRET_KEY before going live")
    app.config["RATELIMIT_STORAGE_URI"] = _storage_uri(app.config.get("RATELIMIT_STORAGE_URI"))
    limiter.init_app(app)

    @app.before_request
    def _api_guard() -> Any:
        if not request.path.startswith("/api/"):
            return None
        limit = int(app.config["API_MAX_BODY_BYTES"])
        if request.endpoint != "api.import_file":
            request.max_content_length = limit
            if (request.content_length or 0) > limit:
                abort(413, description=f"请求体过大：API 最多接受 {limit // 1024} KB")
        # The API is exempt from the form CSRF check because token calls carry no cookie; a write made
        # with the session cookie must prove it comes from our own pages with the X-CSRFToken header.
        if (
            request.method not in SAFE_METHODS
            and auth_via() == "session"
            and app.config.get("WTF_CSRF_ENABLED", True)
        ):
            try:
                validate_csrf(request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token"))
            except ValidationError:
                g.csrf_failed = True
                raise CSRFError(
                    "缺少或无效的 CSRF 令牌：用会话调用 API 写操作时须带 X-CSRFToken 请求头"
                ) from None
        return None

    @app.after_request
    def _headers(response: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if current_user() is not None:
            # Pages of a logged-in account may hold contacts: keep them out of shared caches.
            response.headers.setdefault("Cache-Control", "private, no-store")
        return response
