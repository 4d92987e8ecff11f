"""What the JSON API reads from query strings and answers, as pydantic models.

The request bodies are the shared input models (app.schemas, app.pipeline.schemas, app.alerts.service); the
models here describe the query strings each route accepts (validated before the view runs, see
app.api.openapi.operation) and the JSON each route answers (documented; the test suite checks the answers
against them). The OpenAPI document is generated from both.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from app.schemas import ID_TEXT_PATTERN, MAX_ID, SINGLE_LINE_PATTERN
from models import enums

SIDES = ["fund", "base", "platform"]

#: Chinese names of the query parameters, for error messages.
QUERY_LABELS: dict[str, str] = {
    "q": "关键词",
    "contest": "赛事",
    "contest_kind": "赛事类型",
    "award": "获奖等级",
    "group": "组别",
    "industry": "行业",
    "province": "地区",
    "stage": "阶段",
    "kind": "类别",
    "institution_kind": "机构类型",
    "side": "类别",
    "page": "页码",
    "per_page": "每页条数",
    "k": "返回条数",
    "institution_id": "机构",
    "project_id": "项目",
    "follow_up": "待跟进",
    "quarter": "季度",
    "from": "开始日期",
    "to": "结束日期",
    "unread": "只看未读",
}


class _Checked:
    """A pydantic annotation that checks a value after its type and publishes its own JSON schema."""

    def _check(self, v: Any) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.json_schema()


class Vocab(_Checked):
    """A closed list of string values: checked on input and published as an enum.

    Use as `Annotated[str, Vocab(values)]`.
    """

    def __init__(self, values: list[str] | tuple[str, ...], description: str | None = None) -> None:
        self.values = list(values)
        self.description = description

    def _check(self, v: str) -> str:
        if v not in self.values:
            raise ValueError(f"应为以下之一：{'、'.join(self.values)}")
        return v

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "enum": self.values}
        if self.description:
            out["description"] = self.description
        return out


class ConfigMax(_Checked):
    """An integer from 1 to the app setting `key`, published with the setting's value.

    Use as `Annotated[int, ConfigMax("MAX_K")]`; the document builder replaces `x-config-maximum`.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def _check(self, v: int) -> int:
        from flask import current_app

        top = int(current_app.config[self.key])
        if not 1 <= v <= top:
            raise ValueError(f"应在 1 到 {top} 之间")
        return v

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "x-config-maximum": self.key}


#: A query filter only logged-in callers may use: anonymous callers get 401 (it would reveal private fields).
LOGIN_ONLY: dict[str, Any] = {"x-login-required": True}


class Query(BaseModel):
    """Base of the query-string models: unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Paging(Query):
    page: int = Field(default=1, ge=1, le=1_000_000, description="页码")
    per_page: Annotated[int, ConfigMax("API_MAX_PAGE_SIZE")] = Field(default=20, description="每页条数")


class Keyset(Paging):
    """Paging of a list ordered by id: ?after= reads by keyset (the answer's `next`), ?page= by position."""

    after: int | None = Field(default=None, ge=0, le=2**62, description="分页游标：上一页答复的 next")


class ProjectFilters(Query):
    q: str | None = Field(default=None, max_length=100, description="名称或简介包含（最多 100 个字符）")
    contest: int | None = Field(default=None, ge=1, le=MAX_ID, description="赛事编号")
    contest_kind: Annotated[str, Vocab(enums.ContestKind.labels(), "赛事类型")] | None = None
    award: Annotated[str, Vocab(enums.Award.labels(), "获奖等级")] | None = None
    group: Annotated[str, Vocab(enums.ProjectGroup.labels(), "组别")] | None = None
    industry: Annotated[str, Vocab(enums.INDUSTRIES, "行业")] | None = None
    province: Annotated[str, Vocab(enums.PROVINCES, "地区")] | None = None
    stage: Annotated[str, Vocab(enums.Stage.labels(), "阶段（需登录：未登录时 401）")] | None = Field(
        default=None, json_schema_extra=LOGIN_ONLY
    )


class InstitutionFilters(Query):
    q: str | None = Field(default=None, max_length=100, description="名称或介绍包含（最多 100 个字符）")
    side: Annotated[str, Vocab(SIDES, "类别")] | None = None
    industry: Annotated[str, Vocab(enums.INDUSTRIES, "关注行业")] | None = None
    province: Annotated[str, Vocab(enums.PROVINCES, "地区")] | None = None


def filter_value_schemas() -> dict[str, Any]:
    """Return the JSON schema of each project filter's value as a saved search stores it (text).

    The same rules as the query string (ProjectFilters): a vocabulary where there is one, the contest as
    digits, the keyword single-line and at most 100 characters.
    """
    out: dict[str, Any] = {}
    for name, prop in ProjectFilters.model_json_schema()["properties"].items():
        node = next(b for b in prop.get("anyOf", [prop]) if b.get("type") != "null")
        if node.get("type") == "integer":
            out[name] = {"type": "string", "pattern": ID_TEXT_PATTERN}
        elif "enum" in node:
            out[name] = {"type": "string", "enum": node["enum"]}
        else:
            out[name] = {"type": "string", "maxLength": node["maxLength"], "pattern": SINGLE_LINE_PATTERN}
    return out


class ProjectListQuery(Keyset, ProjectFilters):
    pass


class InstitutionListQuery(Keyset, InstitutionFilters):
    kind: Annotated[str, Vocab(enums.InstitutionKind.labels(), "机构类型")] | None = None


class TopK(Query):
    k: Annotated[int, ConfigMax("MAX_K")] = Field(default=10, description="返回条数")


class ProjectMatchQuery(TopK, InstitutionFilters):
    kind: Annotated[str, Vocab(SIDES, "推荐哪一类机构")] = "fund"
    institution_kind: Annotated[str, Vocab(enums.InstitutionKind.labels(), "机构类型")] | None = None


class ProjectRankQuery(TopK, ProjectFilters):
    pass


class NeedListQuery(Keyset):
    institution_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="发布机构")


class ConnectionListQuery(Paging):
    institution_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="机构")
    project_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="项目")
    stage: Annotated[str, Vocab(enums.ConnectionStage.labels(), "阶段")] | None = None
    follow_up: Literal["0", "1"] | None = Field(default=None, description="1 = 只看待跟进")


_DAY = Annotated[
    date,
    WithJsonSchema({"type": "string", "format": "date", "pattern": "^(20[0-9]{2}|2100)-[0-9]{2}-[0-9]{2}$"}),
]


class PeriodQuery(Query):
    """The period of the figures (app.pipeline.figures.period_from_args): every combination names one."""

    quarter: str | None = Field(
        default=None,
        pattern=r"^20[0-9]{2}Q[1-4]$",
        description="季度，如 2026Q3；给出时即为统计区间，不再读取 from/to（都不给：最近一个完整季度）",
    )
    from_: _DAY | None = Field(
        default=None,
        alias="from",
        description="开始日期（无 quarter 时读取；只给 from：到该季度末）",
    )
    to: _DAY | None = Field(
        default=None,
        description="结束日期（含；只给 to：从该季度初起）。两个日期先后不限，区间最长三年，"
        "超出时保留截至较晚日期的三年；答复中的区间名称即实际统计区间",
    )


class UnreadQuery(Query):
    unread: Literal["0", "1"] | None = Field(default=None, description="1 = 只看未读")


# --- answers ------------------------------------------------------------------------------------------


class Out(BaseModel):
    """Base of the answer models: no field beyond those listed."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Out):
    status: int
    code: str
    message: str = Field(description="中文说明")
    fields: dict[str, str] | None = Field(default=None, description="字段名 → 中文错误")
    rows: list[dict[str, Any]] | None = Field(default=None, description="导入：有误的行")
    field: str | None = None
    from_stage: str | None = Field(default=None, description="阶段变更被拒时：当前阶段")
    to_stage: str | None = Field(default=None, description="阶段变更被拒时：目标阶段")


class Error(BaseModel):
    """Every error answer of the API."""

    model_config = ConfigDict(extra="allow")
    error: ErrorDetail


class Eligibility(Out):
    condition: str
    status: Literal["holds", "fails", "unknown"]
    reason: str


_TIME = {"type": "string", "format": "date-time"}
Time = Annotated[str, WithJsonSchema(_TIME)]
OptTime = Annotated[str | None, WithJsonSchema({"anyOf": [_TIME, {"type": "null"}]})]
ArchivedAt = Annotated[
    str, WithJsonSchema({**_TIME, "description": "归档时间（仅已归档的记录有此字段，仅秘书处可见）"})
]


class RecordOut(Out):
    """The fields a project's and an institution's answers share: who, where, the contact persons (left
    out above the caller's level and listed in `hidden`) and the record's times."""

    id: int
    name: str
    province: str | None = None
    city: str | None = None
    description: str
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    created_at: OptTime = None
    updated_at: OptTime = None
    archived_at: ArchivedAt | None = None
    hidden: list[str]


class ProjectOut(RecordOut):
    """A project as the caller may see it: fields above the caller's level are left out and listed in
    `hidden` (contacts, team, IP, head count, revenue need can_see_contacts; stage, amount, round and
    needs need a login)."""

    group: Annotated[str, Vocab(enums.ProjectGroup.labels())]
    contest_id: int
    contest: str | None = None
    contest_kind: Annotated[str, Vocab(enums.ContestKind.labels())] | None = None
    award: Annotated[str, Vocab(enums.Award.labels())]
    industry: str
    track: str | None = None
    stage: Annotated[str, Vocab(enums.Stage.labels())] | None = None
    amount_wan: float | None = None
    funding_round: Annotated[str, Vocab(enums.FundingRound.labels())] | None = None
    team: str | None = None
    ip: str | None = None
    needs: list[str] = []
    employees: int | None = None
    revenue_wan: float | None = None
    assets_wan: float | None = None
    sme_industry: str | None = None
    ref: str | None = None
    credit_code: str | None = None
    team_lead: str | None = None
    eligibility: list[Eligibility] = Field(default=[], description="所属组别的参赛条件（私有字段）")


class InstitutionOut(RecordOut):
    """An institution; contact persons only for logged-in callers (else listed in `hidden`)."""

    kind: Annotated[str, Vocab(enums.InstitutionKind.labels())]
    side: Annotated[str, Vocab(SIDES)]
    industries: list[str] = []
    stages: list[str] = []
    ticket_min_wan: float | None = None
    ticket_max_wan: float | None = None
    services: list[str] = []
    space_m2: float | None = None
    capacity: int | None = None
    competitor_policy: Annotated[str, Vocab(["avoid", "welcome"])] = Field(
        default="avoid",
        description="near-copies of its backed projects: avoid (回避竞争) or welcome (欢迎同类)",
    )


class NeedOut(Out):
    id: int
    institution_id: int
    institution: str | None = None
    title: str
    description: str
    industries: list[str] = []
    stages: list[str] = []
    services: list[str] = []
    quota: int | None = None
    deadline: Annotated[
        str | None, WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]})
    ] = None
    status: Annotated[str, Vocab(enums.NeedStatus.labels())]
    archived_at: ArchivedAt | None = None


class ContestOut(BaseModel):
    id: int
    code: str
    edition: int
    kind: Annotated[str, Vocab(enums.ContestKind.labels())]
    name: str
    place: str | None = None
    province: str | None = None
    track: str | None = None
    organisers: str | None = None


class ContestList(Out):
    items: list[ContestOut]
    total: int


class Reason(BaseModel):
    text: str
    contribution: float | None = None
    feature: str | None = None


class MatchOut(BaseModel):
    id: int
    name: str
    score: float = Field(
        description="匹配度 0-100: the pair's percentile among pairs of the same kind of institution; "
        "the same for the same pair and view on every list"
    )
    reasons: list[Reason] = Field(description="Only the reasons the caller may read (no private text).")
    kind: str | None = None
    province: str | None = None
    industry: str | None = None
    competitor_of: str | None = Field(
        default=None, description="The backed project this candidate nearly copies (可能构成竞争), when shown"
    )


#: A logged ranked list's id (signed-in callers only): open an item with ?from=<list_id>&pos=<rank>.
ListId = Annotated[str | None, Field(default=None, description="本次推荐列表的编号（仅登录用户）")]


class Page(BaseModel):
    page: int
    per_page: int
    total: int
    pages: int
    next: int | None = Field(default=None, description="?after= cursor of the next page (null on the last)")


class ProjectPage(Page):
    items: list[ProjectOut]


class InstitutionPage(Page):
    items: list[InstitutionOut]


class NeedPage(Page):
    items: list[NeedOut]


class ProjectMatches(BaseModel):
    project_id: int
    kind: Annotated[str, Vocab(SIDES)]
    k: int
    items: list[MatchOut]
    list_id: ListId = None


class InstitutionMatches(BaseModel):
    institution_id: int
    k: int
    items: list[MatchOut]
    list_id: ListId = None


class NeedMatches(BaseModel):
    need_id: int
    k: int
    items: list[MatchOut]
    list_id: ListId = None


class Archived(Out):
    """A delete of a record with connections archives it (200); one without history is deleted (204)."""

    id: int
    archived: Literal[True]
    archived_at: Time


class ImportReport(BaseModel):
    kind: Annotated[str, Vocab(["projects", "institutions"])]
    rows: int
    created: int
    updated: int
    unchanged: int
    suspected_duplicates: list[dict[str, Any]]
    eligibility_warnings: list[dict[str, Any]]


class ImportFile(BaseModel):
    file: Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})] = Field(
        description="CSV 或 XLSX 文件"
    )


class Event(BaseModel):
    """One entry of a connection's history (append-only)."""

    id: int | None = None
    at: str
    date: str
    action: str
    from_stage: str | None = None
    to_stage: str
    actor_kind: str | None = None
    actor: str | None = None
    note: str | None = None
    private: bool | None = None
    detail: Any = None


class ConnectionOut(BaseModel):
    """A connection; `shortlisted` and `note` only for its institution and the secretariat."""

    id: int
    project_id: int
    project: str
    institution_id: int
    institution: str
    institution_kind: str
    side: Annotated[str, Vocab(SIDES)]
    need_id: int | None = None
    stage: Annotated[str, Vocab(enums.ConnectionStage.labels())]
    next_stages: list[str]
    outcome_kind: str
    initiated_by: str | None = None
    requested_at: str | None = None
    created_at: str | None = None
    last_activity_at: str | None = None
    follow_up: bool
    signed_at: str | None = None
    closed_reason: str | None = None
    outcome: dict[str, Any] | None = None
    shortlisted: bool | None = None
    note: str | None = None
    history: list[Event] | None = None


class ConnectionPage(Page):
    items: list[ConnectionOut]


class ConnectionHistory(BaseModel):
    connection_id: int
    items: list[Event]


class Stages(BaseModel):
    stages: list[str]
    open: list[str]
    moves: dict[str, list[str]]
    notes: dict[str, str]


class JobOut(BaseModel):
    id: int
    kind: str
    kind_label: str
    status: str
    status_label: str
    done: int | None = None
    total: int | None = None
    percent: float | None = None
    message: str | None = None
    error: str | None = None
    finished: bool
    result_url: str | None = None
    page_url: str
    created_at: str
    finished_at: str | None = None


#: Any JSON object (the figures of the dashboard, the OpenAPI document itself).
AnyObject = dict[str, Any]


class SearchOut(BaseModel):
    """A saved search (app.alerts)."""

    id: int
    name: str
    kind: Annotated[str, Vocab(["institution", "need"])]
    institution_id: int | None = None
    need_id: int | None = None
    filters: dict[str, Any]
    rank_threshold: int
    frequency: str
    active: bool
    automatic: bool
    created_at: str


class SavedSearches(BaseModel):
    items: list[SearchOut]


class NotificationOut(BaseModel):
    id: int
    search_id: int | None = None
    search_name: str | None = None
    project_id: int | None = None
    institution_id: int | None = None
    need_id: int | None = None
    rank: int | None = None
    rank_threshold: int | None = None
    score: float
    reasons: Any = None
    created_at: str
    read: bool


class Notifications(BaseModel):
    items: list[NotificationOut]
    unread: int
