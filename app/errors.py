"""Error pages and JSON errors: no stack trace ever reaches a user."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.schemas import InputError

log = logging.getLogger(__name__)

MESSAGES = {
    400: "请求有误",
    401: "请先登录",
    403: "没有权限访问该内容",
    404: "页面或记录不存在",
    405: "不支持该请求方式",
    409: "与现有数据冲突",
    413: "提交的内容过大",
    415: "不支持的内容类型",
    422: "提交的内容有误",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误，请稍后再试",
    503: "数据库暂时无法访问，请稍后再试",
}

#: Seconds a client is asked to wait before retrying while the database is away.
RETRY_AFTER_S = 5


def wants_json() -> bool:
    """Return True for API routes, where errors are JSON."""
    return request.path.startswith("/api/") or request.path == "/api"


def error_response(
    status: int, message: str | None = None, fields: dict[str, str] | None = None, code: str | None = None
):
    """Return a JSON error (API) or the Chinese error page, with the status code."""
    message = message or MESSAGES.get(status, "出错了")
    if wants_json():
        body: dict[str, object] = {
            "error": {"status": status, "code": code or _code(status), "message": message}
        }
        if fields:
            body["error"]["fields"] = fields  # type: ignore[index]
        return jsonify(body), status
    return render_template("error.html", status=status, message=message, fields=fields or {}), status


def _code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "validation_error",
        429: "rate_limited",
        500: "internal_error",
        503: "database_unavailable",
    }.get(status, "error")


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(InputError)
    def _input_error(exc: InputError):
        return error_response(exc.status, exc.message, exc.fields)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if exc.description and not exc.description.startswith("The "):
            return error_response(400, exc.description, code="csrf_failed")
        return error_response(
            400, "页面已过期或缺少安全令牌（CSRF），请刷新页面后重新提交", code="csrf_failed"
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status)
        if (
            exc.description
            and status in (400, 401, 403, 404, 409, 413, 415, 422)
            and not exc.description.startswith("The ")
        ):
            message = exc.description  # our own Chinese descriptions from abort(...)
        response = make_response(error_response(status, message))
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # RFC 9110: a 405 names what is allowed
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeoutError)
    def _database_unavailable(exc: Exception):
        return database_unavailable(exc)

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError):
        if exc.connection_invalidated:
            return database_unavailable(exc)
        log.exception("database error on %s %s", request.method, request.path)
        _discard_session()
        return error_response(500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)


def _discard_session() -> None:
    """Roll back and drop the request's session: its connection may be dead or mid-transaction."""
    try:
        registry = current_app.extensions["db"]["session"]
        try:
            registry().rollback()
        finally:
            registry.remove()
    except Exception:  # a dead connection can fail even to roll back; the pool replaces it
        log.debug("could not roll back the session of a failed request", exc_info=True)


def database_unavailable(exc: Exception):
    """Answer 503 in Chinese while the database cannot be reached, and recover by itself.

    The session is rolled back and removed and the connection pool dropped, so the next request
    opens fresh connections (with pre-ping on PostgreSQL): nothing needs a restart when the
    database comes back.
    """
    log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.__class__.__name__)
    _discard_session()
    try:
        current_app.extensions["db"]["engine"].dispose()
    except Exception:
        log.debug("could not dispose the connection pool", exc_info=True)
    # The page must render without the database: no account lookup for this request any more.
    g.account, g.auth_via = None, None
    manager = getattr(current_app, "login_manager", None)
    if manager is not None:
        g._login_user = manager.anonymous_user()  # Flask-Login's template variable: no user lookup
    body, status = error_response(503, code="database_unavailable")
    response = make_response(body, status)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response
