"""The OpenAPI 3.1 document of the JSON API, generated from the routes and their declarations.

Every API view declares itself with `@operation(...)`: a summary, the pydantic model of its query string,
of its JSON body (or its multipart form) and of each answer. The declaration is also the gate: the query
string and the JSON body are checked against exactly what the document publishes before the view runs
(422 naming each field, in Chinese), so the document and the behaviour cannot part. `build_openapi`
walks `app.url_map` for every /api route and writes its operations; the schemas come from the models
(`model_json_schema`), the error answers from the route's access rule and declaration.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from flask import Flask, abort, g, make_response, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from app.access import access_rule, current_user
from app.api.models import QUERY_LABELS, Archived, Error
from app.schemas import (
    CONTROL_MESSAGE,
    FIELD_LABELS,
    ID_TEXT_PATTERN,
    MAX_ID,
    MULTILINE_PATTERN,
    SINGLE_LINE_PATTERN,
    TRIMMED_PATTERNS,
    InputError,
    has_control,
    query_error,
    translate,
)

F = TypeVar("F", bound=Callable[..., Any])

REF = "#/components/schemas/{model}"
JSON = "application/json"

#: What each error status means, as written into the document.
ERRORS = {
    400: "请求有误（如用会话调用写操作时缺少 CSRF 令牌）",
    401: "未登录或令牌无效",
    403: "没有权限",
    404: "记录不存在（路径中的编号，或请求体引用的编号，或调用者无权看到）",
    409: "与现有数据或当前状态冲突",
    413: "请求体过大",
    415: "请求体不是 JSON",
    422: "参数或内容有误（fields 指明字段）",
    429: "请求过于频繁",
}


@dataclass(frozen=True)
class Answer:
    """One documented answer: a model (or None for an empty body) and its media type."""

    model: type[BaseModel] | Any | None
    description: str = "成功"
    media_type: str = JSON


@dataclass(frozen=True)
class Operation:
    """The declaration of one API view (see `operation`)."""

    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    multipart: type[BaseModel] | None = None
    answers: dict[int, Answer] = field(default_factory=dict)
    errors: tuple[int, ...] = ()


def operation(
    summary: str,
    *,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    multipart: type[BaseModel] | None = None,
    answers: dict[int, Any] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Declare an API view: what it reads and answers; check the query string and JSON body against it.

    Put it below the access decorator (public / login_required / roles_required), so that who may call
    is checked first.

    Args:
        summary: one line, Chinese.
        query: the model of the query string (unknown parameters are ignored; a repeated one is refused).
        body: the model of the JSON body: POST and PUT send it whole, PATCH any part of it.
        multipart: the model of a multipart/form-data body (a file upload).
        answers: status -> model, Answer or None (no body), e.g. {201: ProjectOut, 200: Archived}.
        errors: statuses the view itself answers beyond those its access rule and inputs imply
            (403 for an object-level refusal, 404 for a missing record, 409 for a conflict).
    """
    declared = {
        status: (a if isinstance(a, Answer) else Answer(a)) for status, a in (answers or {200: None}).items()
    }
    spec = Operation(summary, query, body, multipart, declared, errors)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                check_query(query)
            if body is not None and request.method in ("POST", "PUT", "PATCH"):
                # Checked when the view reads the body (app.api._body): after its lookups and access checks.
                g.api_body = (body, request.method == "PATCH")
            return view(*args, **kwargs)

        vars(wrapped)["openapi"] = spec
        return cast(F, wrapped)

    return decorator


def declaration(view: Callable[..., Any]) -> Operation | None:
    """Return the declaration of a view function (None when it has none)."""
    return getattr(view, "openapi", None)


# --- the gate ------------------------------------------------------------------------------------------


def _label(name: str, labels: dict[str, str] | None = None) -> str:
    """Return a field's Chinese name: the model's own `labels`, else the shared ones."""
    return (labels or {}).get(name) or QUERY_LABELS.get(name) or FIELD_LABELS.get(name) or name


def check_query(model: type[BaseModel]) -> BaseModel:
    """Return the request's query string validated into the model, or raise InputError naming each field.

    A filter marked login-only (it reads a private field) answers 401 to an anonymous caller.
    """
    names = {(f.alias or name): name for name, f in model.model_fields.items()}
    data: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key in request.args:
        if key not in names:
            continue
        values = request.args.getlist(key)
        if len(values) > 1:
            errors[key] = f"{_label(key)}：只能给一个值"
        data[key] = values[0]
    try:
        values_in = model.model_validate(data)
    except ValidationError as exc:
        for key, message in translate(exc).items():
            errors.setdefault(key, f"{_label(key)}：{message.split('：', 1)[-1]}")
        values_in = None
    if errors:
        raise query_error(errors)
    for key, name in names.items():
        extra = model.model_fields[name].json_schema_extra
        if (
            key in data
            and isinstance(extra, dict)
            and extra.get("x-login-required")
            and current_user() is None
        ):
            from app.errors import error_response

            message = f"{_label(key)}：登录后才能按该项筛选"
            abort(make_response(error_response(401, message, {key: message})))
    assert values_in is not None
    return values_in


_TYPES = {
    "integer": "整数",
    "number": "数字",
    "string": "文本",
    "array": "列表",
    "object": "对象",
    "boolean": "是或否",
}


def _schema_message(err: SchemaError) -> str:
    kind, value = err.validator, err.validator_value
    if kind == "type":
        names = value if isinstance(value, list) else [value]
        return "应为" + "或".join(_TYPES.get(str(n), str(n)) for n in names if n != "null")
    if kind == "anyOf":
        titles = [str(b["title"]) for b in value if isinstance(b, dict) and "title" in b]
        if titles:  # shapes of an object (an outcome by kind): the fields of one, filled in
            return f"应为以下之一（填全其字段）：{'、'.join(titles)}"
        if any(isinstance(b, dict) and b.get("pattern") == ID_TEXT_PATTERN for b in value):
            return f"应为整数编号（1 到 {MAX_ID}，不带小数点）"
        inner = [e for e in err.context or () if e.validator != "type"]
        if inner:
            return _schema_message(inner[0])
        types = [str(b["type"]) for b in value if isinstance(b, dict) and b.get("type") not in (None, "null")]
        return "应为" + "或".join(_TYPES.get(t, t) for t in types) if types else "格式不正确"
    if kind == "enum" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return f"应为以下之一：{'、'.join(value)}"
    if kind in ("enum", "const"):
        return "取值不在可选范围内"
    if kind == "maxLength":
        return f"最多 {value} 个字符"
    if kind == "minLength":
        return f"至少 {value} 个字符"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"不能小于 {value}" if kind == "minimum" else f"应大于 {value}"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"不能大于 {value}"
    if kind == "required":
        return "必填"
    if kind == "additionalProperties":
        return "不认识的字段"
    if kind == "format":
        return "日期格式应为 YYYY-MM-DD" if value == "date" else "格式不正确"
    if kind == "pattern" and value in TRIMMED_PATTERNS and isinstance(err.instance, str):
        multiline, min_length = TRIMMED_PATTERNS[value]
        return (
            CONTROL_MESSAGE
            if has_control(err.instance, multiline)
            else f"至少 {min_length} 个字符（不计首尾空白）"
        )
    if kind == "pattern":
        return CONTROL_MESSAGE if value in (SINGLE_LINE_PATTERN, MULTILINE_PATTERN) else "格式不正确"
    return "格式不正确"


@functools.cache
def _validator(model: type[BaseModel], partial: bool) -> Draft202012Validator:
    schema = request_schema(model, partial)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_body(data: dict[str, Any]) -> None:
    """Check a JSON body against the published schema of the view's declared body; raise InputError.

    Called by app.api._body. The model's own validation still runs in the view; this check refuses what
    the document does not allow even where the model is lenient for forms and imports (a string for a
    number, "a,b" for a list).
    """
    declared = g.get("api_body")
    if declared is None:
        return
    model, partial = declared
    labels = getattr(model, "labels", None)
    errors: dict[str, str] = {}
    for err in sorted(_validator(model, partial).iter_errors(data), key=lambda e: list(e.path)):
        if err.validator == "anyOf" and not err.path:
            continue  # a rule across fields (MoveIn: 终止 needs a note): the view refuses it with its own code
        if err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            key = missing[0] if missing else "_body"
        elif err.validator == "additionalProperties":
            for key in sorted(set(data) - set(model.model_fields)):
                errors.setdefault(key, f"{_label(key, labels)}：不认识的字段")
            continue
        elif len(err.path) > 1 and isinstance(err.path[1], str):  # a field of an object: outcome.date
            key = f"{err.path[0]}.{err.path[1]}"
        else:
            key = str(err.path[0]) if err.path else "_body"
        errors.setdefault(key, f"{_label(key, labels)}：{_schema_message(err)}")
    if len(errors) == 1:
        raise InputError(errors, next(iter(errors.values())))
    if errors:
        raise InputError(errors)


def request_schema(model: type[BaseModel], partial: bool = False) -> dict[str, Any]:
    """Return the self-contained JSON schema of a request body (every field optional when partial)."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    schema["additionalProperties"] = False
    if partial:
        schema.pop("required", None)
    return schema


# --- the document --------------------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def sub(m: re.Match[str]) -> str:
        conv, args, name = m.group(1) or "string", m.group(2), m.group(3)
        schema: dict[str, Any] = {"type": "string", "pattern": "^[^/]+$"}
        if conv == "int":
            schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
        elif conv == "any" and args:
            schema = {"type": "string", "enum": re.findall(r"\w+", args)}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _CONVERTER.sub(sub, rule), params


def _plain(schema: dict[str, Any], app: Flask) -> dict[str, Any]:
    """Return a query parameter's schema: no null branch (a query string cannot send null), no title."""
    branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    out = dict(branches[0]) if len(branches) == 1 else {k: v for k, v in schema.items() if k != "anyOf"}
    if len(branches) > 1:
        out["anyOf"] = branches
    for key in ("title", "default", "description"):
        out.pop(key, None)
    key = out.pop("x-config-maximum", None)
    if key:
        out["maximum"] = int(app.config[key])
    if "default" in schema and schema["default"] is not None:
        out["default"] = schema["default"]
    return out


def _query_params(model: type[BaseModel], app: Flask) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    params = []
    for name, prop in schema.get("properties", {}).items():
        description = prop.get("description") or next(
            (b.get("description") for b in prop.get("anyOf", []) if b.get("description")), _label(name)
        )
        param = {
            "name": name,
            "in": "query",
            "required": False,
            "schema": _plain(prop, app),
            "description": description,
        }
        if prop.get("x-login-required"):
            param["x-login-required"] = True  # anonymous callers get 401
        params.append(param)
    return params


def _ref(model: Any) -> dict[str, Any]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {"$ref": REF.format(model=model.__name__)}
    from pydantic import TypeAdapter

    return TypeAdapter(model).json_schema(ref_template=REF)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(Error)}}}


def _operation(app: Flask, endpoint: str, method: str, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    view = app.view_functions[endpoint]
    spec = declaration(view)
    if spec is None:
        raise LookupError(f"API route {endpoint} has no @operation declaration")
    rule = access_rule(view)
    op: dict[str, Any] = {
        "operationId": f"{endpoint.replace('.', '_')}_{method.lower()}",
        "summary": spec.summary,
        "parameters": [*path_params, *(_query_params(spec.query, app) if spec.query else [])],
        "responses": {},
    }
    for status, answer in sorted(spec.answers.items()):
        if method == "PUT" and status == 201:
            status = 200
        out: dict[str, Any] = {"description": answer.description}
        if answer.model is not None:
            schema = (
                _ref(answer.model) if answer.media_type == JSON else {"type": "string", "format": "binary"}
            )
            out["content"] = {answer.media_type: {"schema": schema}}
        op["responses"][str(status)] = out
    errors = set(spec.errors) | {429}
    writes = method in ("POST", "PUT", "PATCH", "DELETE")
    if spec.body is not None and method in ("POST", "PUT", "PATCH"):
        name = spec.body.__name__ + ("Patch" if method == "PATCH" else "")
        op["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": {"$ref": REF.format(model=name)}}},
        }
        errors |= {413, 415, 422}
    if spec.multipart is not None and method == "POST":
        op["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": _ref(spec.multipart)}},
        }
        errors |= {413, 422}
    if spec.query is not None:
        errors.add(422)
        if any(p.get("x-login-required") for p in op["parameters"]):
            errors.add(401)
    if path_params:
        errors.add(404)
    if rule is None or rule[0] != "public":
        errors |= {401, 403}
        op["security"] = [{"bearer": []}, {"session": []}]
    else:
        op["security"] = [{}, {"bearer": []}, {"session": []}]
    if writes:
        errors.add(400)
    for status in sorted(errors):
        op["responses"].setdefault(str(status), _error(ERRORS[status]))
    return op


def build_openapi(app: Flask) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every /api route of the app."""
    paths: dict[str, Any] = {}
    answer_models: set[type[BaseModel]] = set()
    bodies: set[type[BaseModel]] = set()
    patched: set[type[BaseModel]] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        path, params = _path(rule.rule)
        spec = declaration(app.view_functions[rule.endpoint])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule.endpoint, method, params)
        if spec is not None:
            answer_models |= {
                a.model
                for a in spec.answers.values()
                if isinstance(a.model, type) and issubclass(a.model, BaseModel)
            }
            bodies |= {m for m in (spec.body, spec.multipart) if m is not None}
            if spec.body is not None and "PATCH" in (rule.methods or ()):
                patched.add(spec.body)
    fixed: set[type[BaseModel]] = {Error, Archived}
    models = sorted(answer_models | fixed | bodies, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for model in bodies:
        schemas[model.__name__] = {**schemas[model.__name__], "additionalProperties": False}
    for model in patched:
        patch = {k: v for k, v in schemas[model.__name__].items() if k != "required"}
        schemas[f"{model.__name__}Patch"] = {**patch, "title": f"{model.__name__}Patch"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "创客中国 对接服务 API",
            "version": "1.0",
            "description": "JSON in and out; errors as {error: {status, code, message, fields}}. "
            "Authenticate with `Authorization: Bearer <token>` (我的账户 → API 令牌); same-origin pages "
            "may use the session cookie and must send X-CSRFToken on writes.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API 令牌"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }
