"""The OpenAPI 3.1 description of the JSON API, built from the pydantic schemas and the route list.

Every /api route of the app appears: the known operations with their parameters, bodies and responses;
a route added later without an entry here still appears (path parameters, the error schema) and can
describe itself with the `document(...)` decorator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel

from app.access import access_rule
from app.schemas import InstitutionIn, NeedIn, ProjectIn
from models.enums import (
    INDUSTRIES,
    PROJECT_NEEDS,
    PROVINCES,
    Award,
    ContestKind,
    FundingRound,
    InstitutionKind,
    NeedStatus,
    ProjectGroup,
    ServiceKind,
    Stage,
)

F = TypeVar("F", bound=Callable[..., Any])

REF = "#/components/schemas/{model}"
MAX_ID = 2**31 - 1

# --- response schemas -------------------------------------------------------------------------------


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_STRS = {"type": "array", "items": _STR}
_TIME = {"type": "string", "format": "date-time"}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": _INT,
                "code": _STR,
                "message": {"type": "string", "description": "中文说明"},
                "fields": {
                    "type": "object",
                    "additionalProperties": _STR,
                    "description": "字段名 → 中文错误",
                },
                "rows": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}

#: Present only on an archived record, which only the secretariat can read.
_ARCHIVED_AT = {**_TIME, "description": "归档时间（仅已归档的记录有此字段，仅秘书处可见）"}

#: A delete of a record with connections archives it (200); a record without history is deleted (204).
ARCHIVED = {
    "type": "object",
    "required": ["id", "archived", "archived_at"],
    "properties": {"id": _INT, "archived": {"const": True}, "archived_at": _TIME},
    "additionalProperties": False,
}
_ARCHIVED_RESPONSE = [(200, ARCHIVED, "有对接记录：已归档（列表与匹配中隐藏，对接历史与统计保留）")]
_DELETED = "无对接记录：已删除"

PROJECT_OUT = {
    "type": "object",
    "description": "A project as the caller may see it: fields above the caller's level are left out and "
    "listed in `hidden` (contacts, team, IP, head count, revenue need can_see_contacts; stage, amount, "
    "round and needs need a login).",
    "required": ["id", "name", "group", "contest_id", "award", "industry", "description", "hidden"],
    "properties": {
        "id": _INT,
        "name": _STR,
        "group": {"enum": ProjectGroup.labels()},
        "contest_id": _INT,
        "contest": _nullable(_STR),
        "contest_kind": _nullable({"enum": ContestKind.labels()}),
        "award": {"enum": Award.labels()},
        "industry": _STR,
        "track": _nullable(_STR),
        "province": _nullable(_STR),
        "city": _nullable(_STR),
        "stage": _nullable({"enum": Stage.labels()}),
        "amount_wan": _nullable(_NUM),
        "funding_round": _nullable({"enum": FundingRound.labels()}),
        "description": _STR,
        "team": _nullable(_STR),
        "ip": _nullable(_STR),
        "needs": _STRS,
        "contact_name": _nullable(_STR),
        "contact_phone": _nullable(_STR),
        "contact_email": _nullable(_STR),
        "employees": _nullable(_INT),
        "revenue_wan": _nullable(_NUM),
        "assets_wan": _nullable(_NUM),
        "sme_industry": _nullable(_STR),
        "ref": _nullable(_STR),
        "credit_code": _nullable(_STR),
        "team_lead": _nullable(_STR),
        "eligibility": {
            "type": "array",
            "description": "Entry conditions of its group (app.intake.eligibility); a private field.",
            "items": {
                "type": "object",
                "required": ["condition", "status", "reason"],
                "properties": {
                    "condition": _STR,
                    "status": {"type": "string", "enum": ["holds", "fails", "unknown"]},
                    "reason": _STR,
                },
                "additionalProperties": False,
            },
        },
        "created_at": _nullable(_TIME),
        "updated_at": _nullable(_TIME),
        "archived_at": _ARCHIVED_AT,
        "hidden": _STRS,
    },
    "additionalProperties": False,
}

INSTITUTION_OUT = {
    "type": "object",
    "description": "An institution; contact persons only for logged-in callers (else listed in `hidden`).",
    "required": ["id", "name", "kind", "side", "description", "hidden"],
    "properties": {
        "id": _INT,
        "name": _STR,
        "kind": {"enum": InstitutionKind.labels()},
        "side": {"enum": ["fund", "base", "platform"]},
        "province": _nullable(_STR),
        "city": _nullable(_STR),
        "industries": _STRS,
        "stages": _STRS,
        "ticket_min_wan": _nullable(_NUM),
        "ticket_max_wan": _nullable(_NUM),
        "services": _STRS,
        "space_m2": _nullable(_NUM),
        "capacity": _nullable(_INT),
        "description": _STR,
        "contact_name": _nullable(_STR),
        "contact_phone": _nullable(_STR),
        "contact_email": _nullable(_STR),
        "created_at": _nullable(_TIME),
        "updated_at": _nullable(_TIME),
        "archived_at": _ARCHIVED_AT,
        "hidden": _STRS,
    },
    "additionalProperties": False,
}

NEED_OUT = {
    "type": "object",
    "required": ["id", "institution_id", "title", "description", "status"],
    "properties": {
        "id": _INT,
        "institution_id": _INT,
        "institution": _nullable(_STR),
        "title": _STR,
        "description": _STR,
        "industries": _STRS,
        "stages": _STRS,
        "services": _STRS,
        "quota": _nullable(_INT),
        "deadline": _nullable({"type": "string", "format": "date"}),
        "status": {"enum": NeedStatus.labels()},
        "archived_at": _ARCHIVED_AT,
    },
    "additionalProperties": False,
}

CONTEST_OUT = {
    "type": "object",
    "required": ["id", "code", "edition", "kind", "name"],
    "properties": {
        "id": _INT,
        "code": _STR,
        "edition": _INT,
        "kind": {"enum": ContestKind.labels()},
        "name": _STR,
        "place": _nullable(_STR),
        "province": _nullable(_STR),
        "track": _nullable(_STR),
        "organisers": _nullable(_STR),
    },
}

MATCH_OUT = {
    "type": "object",
    "required": ["id", "name", "score", "reasons"],
    "properties": {
        "id": _INT,
        "name": _STR,
        "score": _NUM,
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {"text": _STR, "contribution": _NUM, "feature": _STR},
            },
            "description": "Only the reasons the caller may read (no quoted private text, no pipeline).",
        },
        "kind": _nullable(_STR),
        "province": _nullable(_STR),
        "industry": _nullable(_STR),
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _page_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "page": _INT,
            "per_page": _INT,
            "total": _INT,
            "pages": _INT,
            "next": {"type": ["integer", "null"], "description": "?after= cursor of the next page"},
        },
    }


def _ranked(owner: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [owner, "k", "items"],
        "properties": {
            owner: _INT,
            "k": _INT,
            "kind": _STR,
            "items": {"type": "array", "items": _ref("Match")},
        },
    }


# --- parameters ---------------------------------------------------------------------------------------


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PAGING = [
    _q("page", {"type": "integer", "minimum": 1, "maximum": 1_000_000}, "页码"),
    _q("per_page", {"type": "integer", "minimum": 1, "maximum": 100}, "每页条数（最多 100）"),
    _q("after", {"type": "integer", "minimum": 0, "maximum": 2**62}, "分页游标：上一页答复的 next"),
]
PROJECT_FILTERS = [
    _q("q", {"type": "string", "maxLength": 100}, "名称或简介包含"),
    _q("contest", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "赛事编号"),
    _q("contest_kind", {"enum": ContestKind.labels()}, "赛事类型"),
    _q("award", {"enum": Award.labels()}, "获奖等级"),
    _q("group", {"enum": ProjectGroup.labels()}, "组别"),
    _q("industry", {"enum": list(INDUSTRIES)}, "行业"),
    _q("province", {"enum": list(PROVINCES)}, "地区"),
    _q("stage", {"enum": Stage.labels()}, "阶段"),
]


def _institution_filters(kind_key: str) -> list[dict[str, Any]]:
    return [
        _q("q", {"type": "string", "maxLength": 100}, "名称或介绍包含"),
        _q(kind_key, {"enum": InstitutionKind.labels()}, "机构类型"),
        _q("side", {"enum": ["fund", "base", "platform"]}, "类别"),
        _q("industry", {"enum": list(INDUSTRIES)}, "关注行业"),
        _q("province", {"enum": list(PROVINCES)}, "地区"),
    ]


K = _q("k", {"type": "integer", "minimum": 1, "maximum": 100}, "返回条数（1–100）")
SIDE = _q("kind", {"enum": ["fund", "base", "platform"]}, "推荐哪一类机构")


# --- request bodies ------------------------------------------------------------------------------------

#: Closed vocabularies the validators enforce, written into the published schemas.
_VOCAB: dict[str, dict[str, Any]] = {
    "industry": {"enum": list(INDUSTRIES)},
    "province": {"anyOf": [{"enum": list(PROVINCES)}, {"type": "null"}]},
    "needs": {"type": "array", "items": {"enum": list(PROJECT_NEEDS)}},
    "industries": {"type": "array", "items": {"enum": list(INDUSTRIES)}},
    "stages": {"type": "array", "items": {"enum": Stage.labels()}},
    "services": {"type": "array", "items": {"enum": ServiceKind.labels()}},
}


def body_schema(model: type[BaseModel], partial: bool = False) -> dict[str, Any]:
    """Return the JSON schema of a request body (all fields optional for PATCH)."""
    schema = model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)
    props = schema.get("properties", {})
    for name, vocab in _VOCAB.items():
        if name in props:
            props[name] = {**vocab, "title": props[name].get("title", name)}
    schema["additionalProperties"] = False
    if partial:
        schema.pop("required", None)
        schema["title"] = f"{schema.get('title', model.__name__)}Patch"
    return schema


def _enum_defs() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in (ProjectIn, InstitutionIn, NeedIn):
        defs.update(model.model_json_schema(ref_template=REF).get("$defs", {}))
    return defs


# --- operations ---------------------------------------------------------------------------------------

#: endpoint -> {summary, query, body, ok: (status, schema or None)}
OPERATIONS: dict[str, dict[str, Any]] = {
    "api.openapi": {"summary": "本 API 的 OpenAPI 描述", "ok": (200, {"type": "object"})},
    "api.contests": {
        "summary": "赛事目录",
        "ok": (
            200,
            {
                "type": "object",
                "required": ["items", "total"],
                "properties": {"items": {"type": "array", "items": _ref("Contest")}, "total": _INT},
            },
        ),
    },
    "api.list_projects": {
        "summary": "项目展示列表（按调用者可见范围返回字段）",
        "query": PAGING + PROJECT_FILTERS,
        "ok": (200, _page_of("Project")),
    },
    "api.create_project": {
        "summary": "新增项目（秘书处；赛事组织方限本人负责赛事）",
        "body": "ProjectIn",
        "ok": (201, _ref("Project")),
    },
    "api.get_project": {"summary": "项目详情", "ok": (200, _ref("Project"))},
    "api.update_project": {
        "summary": "修改项目（PUT 全量，PATCH 部分）",
        "body": "ProjectIn",
        "ok": (200, _ref("Project")),
    },
    "api.delete_project": {
        "summary": "删除项目（有对接记录的归档，否则删除）",
        "ok": (204, None, _DELETED),
        "also": _ARCHIVED_RESPONSE,
    },
    "api.restore_project": {"summary": "恢复已归档的项目（秘书处）", "ok": (200, _ref("Project"))},
    "api.project_matches": {
        "summary": "为项目推荐机构",
        "query": [SIDE, K, *_institution_filters("institution_kind")],
        "ok": (200, _ranked("project_id")),
    },
    "api.list_institutions": {
        "summary": "机构名录",
        "query": PAGING + _institution_filters("kind"),
        "ok": (200, _page_of("Institution")),
    },
    "api.create_institution": {
        "summary": "新增机构（秘书处）",
        "body": "InstitutionIn",
        "ok": (201, _ref("Institution")),
    },
    "api.get_institution": {"summary": "机构详情", "ok": (200, _ref("Institution"))},
    "api.update_institution": {
        "summary": "修改机构（本机构成员或秘书处）",
        "body": "InstitutionIn",
        "ok": (200, _ref("Institution")),
    },
    "api.delete_institution": {
        "summary": "删除机构（秘书处；有对接记录的连同需求归档，否则连同需求删除）",
        "ok": (204, None, _DELETED),
        "also": _ARCHIVED_RESPONSE,
    },
    "api.restore_institution": {"summary": "恢复已归档的机构（秘书处）", "ok": (200, _ref("Institution"))},
    "api.institution_matches": {
        "summary": "为机构推荐项目",
        "query": [K, *PROJECT_FILTERS],
        "ok": (200, _ranked("institution_id")),
    },
    "api.list_needs": {
        "summary": "对接需求列表（需登录）",
        "query": [
            *PAGING,
            _q("institution_id", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "发布机构"),
        ],
        "ok": (200, _page_of("Need")),
    },
    "api.create_need": {
        "summary": "发布对接需求（机构成员限本机构）",
        "body": "NeedIn",
        "ok": (201, _ref("Need")),
    },
    "api.get_need": {"summary": "对接需求详情", "ok": (200, _ref("Need"))},
    "api.update_need": {"summary": "修改对接需求", "body": "NeedIn", "ok": (200, _ref("Need"))},
    "api.delete_need": {
        "summary": "删除对接需求（有对接记录的归档，否则删除）",
        "ok": (204, None, _DELETED),
        "also": _ARCHIVED_RESPONSE,
    },
    "api.restore_need": {"summary": "恢复已归档的对接需求（秘书处）", "ok": (200, _ref("Need"))},
    "api.need_matches": {
        "summary": "符合需求的项目",
        "query": [K, *PROJECT_FILTERS],
        "ok": (200, _ranked("need_id")),
    },
    "api.import_file": {
        "summary": "批量导入 CSV/XLSX（multipart 字段 file；全部成功或全部不导入）",
        "multipart": True,
        "ok": (201, {"type": "object"}),
    },
}


def document(
    summary: str,
    body: dict[str, Any] | None = None,
    query: list[dict[str, Any]] | None = None,
    ok: tuple[int, dict[str, Any] | None] = (200, {"type": "object"}),
) -> Callable[[F], F]:
    """Describe an API view in the OpenAPI document (for routes added outside this module).

    Args:
        summary: one line, Chinese.
        body: the JSON schema of the request body (e.g. openapi.body_schema(MyModel)).
        query: query parameters as OpenAPI parameter objects.
        ok: the success status and its response schema (None for an empty body).
    """

    def decorator(view: F) -> F:
        view.openapi = {"summary": summary, "body": body, "query": query or [], "ok": ok}  # type: ignore[attr-defined]
        return view

    return decorator


_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _path_params(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def sub(m: re.Match[str]) -> str:
        conv, name = m.group(1) or "string", m.group(2)
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 0, "maximum": MAX_ID} if conv == "int" else {"type": "string"}
        )
        if conv == "any":
            schema = {"enum": re.findall(r"\w+", m.group(0).split(":")[0].split("(", 1)[1])}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _CONVERTER.sub(sub, rule), params


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _operation(app: Flask, endpoint: str, method: str, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    view = app.view_functions[endpoint]
    spec = (
        OPERATIONS.get(endpoint)
        or getattr(view, "openapi", None)
        or {"summary": (view.__doc__ or endpoint).strip().splitlines()[0], "ok": ("2XX", None)}
    )
    rule = access_rule(view)
    op: dict[str, Any] = {
        "operationId": f"{endpoint.replace('.', '_')}_{method.lower()}",
        "summary": spec["summary"],
        "parameters": [*path_params, *((spec.get("query") or []) if method == "GET" else [])],
        "responses": {},
    }
    status, schema, *described = spec["ok"]
    if method == "PUT" and status == 201:
        status = 200
    answers = [(status, schema, (described or ["成功"])[0]), *spec.get("also", ())]
    for code, answer_schema, description in answers:  # "also": other success answers, e.g. 200 archived
        ok: dict[str, Any] = {"description": description}
        if answer_schema is not None:
            ok["content"] = {"application/json": {"schema": answer_schema}}
        op["responses"][str(code)] = ok
    body = spec.get("body")
    if body is not None and method in ("POST", "PUT", "PATCH"):
        if isinstance(body, str):
            body = _ref(f"{body}Patch" if method == "PATCH" else body)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        op["responses"]["413"] = _error("请求体过大")
        op["responses"]["415"] = _error("请求体不是 JSON")
    if spec.get("multipart") and method == "POST":
        op["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
        op["responses"]["413"] = _error("文件过大")
    if method in ("POST", "PUT", "PATCH"):
        op["responses"].setdefault("413", _error("请求体过大"))
        op["responses"].setdefault("415", _error("请求体不是 JSON"))
    op["responses"]["422"] = _error("参数或内容有误（fields 指明字段）")
    op["responses"]["400"] = _error("请求有误（如缺少 CSRF 令牌）")
    op["responses"]["429"] = _error("请求过于频繁")
    op["responses"]["404"] = _error("记录不存在")
    op["responses"]["409"] = _error("与现有数据冲突")
    if rule is None or rule[0] != "public":
        op["responses"]["401"] = _error("未登录或令牌无效")
        op["responses"]["403"] = _error("没有权限")
        op["security"] = [{"bearer": []}, {"session": []}]
    else:
        op["security"] = [{}, {"bearer": []}, {"session": []}]
    return op


def build_openapi(app: Flask) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every /api route of the app."""
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        path, params = _path_params(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule.endpoint, method, params)
    schemas: dict[str, Any] = {
        "Error": ERROR,
        "Project": PROJECT_OUT,
        "Institution": INSTITUTION_OUT,
        "Need": NEED_OUT,
        "Contest": CONTEST_OUT,
        "Match": MATCH_OUT,
        **_enum_defs(),
    }
    for model in (ProjectIn, InstitutionIn, NeedIn):
        schemas[model.__name__] = body_schema(model)
        schemas[f"{model.__name__}Patch"] = body_schema(model, partial=True)
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
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API 令牌"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }
