"""Input validation shared by the web forms, the JSON API and the bulk import.

pydantic models with a translation of every error into a Chinese message that names the field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from models import enums

FIELD_LABELS: dict[str, str] = {
    "name": "名称",
    "group": "组别",
    "contest_id": "所属赛事",
    "award": "获奖等级",
    "industry": "行业",
    "track": "赛道",
    "province": "省份",
    "city": "城市",
    "stage": "发展阶段",
    "amount_wan": "拟融资金额（万元）",
    "funding_round": "融资轮次",
    "description": "简介",
    "team": "团队",
    "ip": "知识产权",
    "needs": "需求",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "contact_email": "联系邮箱",
    "employees": "从业人员",
    "revenue_wan": "营业收入（万元）",
    "ref": "项目编号",
    "credit_code": "统一社会信用代码",
    "team_lead": "团队负责人",
    "assets_wan": "资产总额（万元）",
    "sme_industry": "划型行业",
    "kind": "机构类型",
    "industries": "关注行业",
    "stages": "偏好阶段",
    "ticket_min_wan": "单笔金额下限（万元）",
    "ticket_max_wan": "单笔金额上限（万元）",
    "services": "提供服务",
    "competitor_policy": "竞争项目处理方式",
    "space_m2": "可用面积（平方米）",
    "capacity": "可入驻企业数",
    "institution_id": "发布机构",
    "title": "标题",
    "quota": "征集数量",
    "deadline": "截止日期",
    "k": "返回条数",
    "page": "页码",
    "per_page": "每页条数",
}


#: Largest record id (a primary key is a 32-bit signed integer, as in PostgreSQL): the one bound every id
#: parameter, field and URL is checked against (larger ids are simply not found).
MAX_ID = 2**31 - 1
#: Text fields that may span lines (tab, line feed and carriage return allowed).
MULTILINE_FIELDS = frozenset({"description", "team", "ip", "note"})
# C0 and C1 control characters, DEL, and lone surrogates (which no database encoding can store).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_MESSAGE = "不能包含控制字符"


def has_control(text: str, multiline: bool = False) -> bool:
    """Return True when the text holds a control character (tab and line breaks pass when multiline)."""
    return (_CONTROL_MULTILINE if multiline else _CONTROL).search(text) is not None


class InputError(ValueError):
    """Bad input: a mapping of field name -> Chinese message, and a summary.

    `status` is the API's answer: 422 for a value the rules refuse, 404 when a well-formed id names a
    record that does not exist or that the caller may not see (`missing`).
    """

    def __init__(
        self, fields: dict[str, str], message: str = "提交的内容有误，请按提示修改", status: int = 422
    ) -> None:
        super().__init__(message)
        self.fields = fields
        self.message = message
        self.status = status


#: The summary of an error in a query string (a filter, a page, ``k``), the same on every path.
QUERY_MESSAGE = "查询参数有误，请按提示修改"


def query_error(fields: dict[str, str]) -> InputError:
    """Return the 422 of refused query-string parameters (field name -> Chinese message)."""
    return InputError(fields, QUERY_MESSAGE)


def missing(field: str, message: str) -> InputError:
    """Return the error of an id (in a body or query string) naming no record the caller may see: 404."""
    return InputError({field: message}, message.split("：", 1)[-1], status=404)


def blank_to_none(v: Any) -> Any:
    """Return text stripped, blank text as None; any other value unchanged (the forms send "" for none)."""
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _to_list(v: Any) -> Any:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [
            p.strip()
            for p in v.replace("，", ",").replace("、", ",").replace(";", ",").split(",")
            if p.strip()
        ]
    return v


def whole(v: Any) -> Any:
    """Return a JSON number without a fraction as an int (12.0 -> 12: the same JSON Schema integer)."""
    if isinstance(v, float) and v.is_integer() and abs(v) <= 2**53:
        return int(v)
    return v


def _parse_id(v: Any) -> int:
    """Return an id from a JSON integer or (forms) a string of ASCII digits; refuse everything else.

    A JSON number is an integer when it has no fraction, however it is written: 12.0 is the id 12, as
    in the published schema ({"type": "integer"}, JSON Schema 2020-12). It is converted here, once,
    so the value an access rule checks is the int that is stored. "12.0", "1e1", 12.5, booleans, lists
    and numbers beyond MAX_ID are refused.
    """
    v = whole(v)
    if isinstance(v, str):
        text = v.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            raise ValueError("应为整数编号（只含数字）")
        v = int(text)
    elif isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("应为整数编号")
    if not 1 <= v <= MAX_ID:
        raise ValueError(f"应为 1 到 {MAX_ID} 之间的整数编号")
    return v


def _parse_opt_id(v: Any) -> int | None:
    return None if v is None or (isinstance(v, str) and not v.strip()) else _parse_id(v)


#: An id written as text (forms): digits only.
ID_TEXT_PATTERN = "^[1-9][0-9]{0,8}$"
_ID_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        {"type": "string", "pattern": ID_TEXT_PATTERN},
    ],
    "description": "整数编号（不带小数点），或只含数字的文本",
}
#: A record id: an int or a string of ASCII digits (forms send strings), 1..MAX_ID, nothing else.
Id = Annotated[int, PlainValidator(_parse_id), WithJsonSchema(_ID_SCHEMA)]
#: An id the API takes as a JSON integer only (its form sends text, as for Id): published without the text.
JsonId = Annotated[
    int, PlainValidator(_parse_id), WithJsonSchema({**_ID_SCHEMA["anyOf"][0], "description": "整数编号"})
]
OptId = Annotated[
    int | None,
    PlainValidator(_parse_opt_id),
    WithJsonSchema({**_ID_SCHEMA, "anyOf": [*_ID_SCHEMA["anyOf"], {"type": "null"}]}),
]

OptStr = Annotated[str | None, BeforeValidator(blank_to_none)]
StrListIn = Annotated[list[str], BeforeValidator(_to_list)]


def label_member(enum_cls: type[enums.LabelEnum], value: Any) -> Any:
    """Return the member of enum_cls with this label (or name); None and a member pass unchanged."""
    if value is None or isinstance(value, enum_cls):
        return value
    try:
        return enum_cls.from_label(str(value))
    except ValueError:
        raise ValueError(f"应为以下之一：{'、'.join(enum_cls.labels())}") from None


def _check_members(values: list[str], allowed: tuple[str, ...] | list[str]) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"不认识的取值：{'、'.join(bad)}；可选：{'、'.join(allowed)}")
    out: list[str] = []
    for v in values:  # keep order, drop repeats
        if v not in out:
            out.append(v)
    return out


def _members_of(allowed: Any, single: bool = False) -> Any:
    """Return a field validator: a list whose every value is in `allowed` (or, `single`, one value; None
    passes). `allowed` is the list, or a function returning it (for a vocabulary imported late)."""

    def check(v: Any) -> Any:
        values = allowed() if callable(allowed) else allowed
        if v is None:
            return None
        return _check_members([v], values)[0] if single else _check_members(v, values)

    return check


def refuse_control(data: Any, labels: dict[str, str] | None = None) -> Any:
    """Raise InputError naming every field whose text holds a control character; return data unchanged.

    Tab, line feed and carriage return pass in the long text fields (MULTILINE_FIELDS) only.
    """
    if not isinstance(data, dict):
        return data
    labels = FIELD_LABELS if labels is None else labels
    bad: dict[str, str] = {}
    for key, value in data.items():
        texts = value if isinstance(value, list | tuple) else [value]
        multiline = key in MULTILINE_FIELDS
        if any(isinstance(t, str) and has_control(t.strip(), multiline) for t in texts):
            bad[str(key)] = f"{labels.get(str(key), key)}：{CONTROL_MESSAGE}"
    if bad:
        raise InputError(bad)
    return data


#: Control characters refuse_control refuses, in a single-line and in a long text (a regex class body).
_CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f"
_CONTROL_CLASS_MULTILINE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
#: Published as the pattern of every text field: what refuse_control lets through.
SINGLE_LINE_PATTERN = rf"^[^{_CONTROL_CLASS}]*$"
MULTILINE_PATTERN = rf"^[^{_CONTROL_CLASS_MULTILINE}]*$"
#: The white space the models trim from both ends of a text (str_strip_whitespace) that is no control
#: character, written out: JSON Schema's \s is ECMAScript's, not Python's.
_SPACE_CLASS = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_CLASS_MULTILINE = r"\t\n\r" + _SPACE_CLASS
#: Each pattern trimmed_pattern published -> (multiline, min_length): for the message of a refusal.
TRIMMED_PATTERNS: dict[str, tuple[bool, int]] = {}


def trimmed_pattern(multiline: bool, min_length: int) -> str:
    """Return the published pattern of a text with a minimum length: the control-character rule, and at
    least `min_length` characters once the white space at both ends is trimmed (as the model counts).

    minLength alone counts the white space a model trims: " " would pass a minimum of 1 that the model
    refuses.
    """
    control = _CONTROL_CLASS_MULTILINE if multiline else _CONTROL_CLASS
    space = _SPACE_CLASS_MULTILINE if multiline else _SPACE_CLASS
    edge, inner = f"[^{control}{space}]", f"[^{control}]"
    core = f"{edge}(?:{inner}*{edge})?" if min_length <= 1 else f"{edge}{inner}{{{min_length - 2},}}{edge}"
    pattern = f"^[{space}]*{core}[{space}]*$"
    TRIMMED_PATTERNS[pattern] = (multiline, min_length)
    return pattern


def _text_nodes(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the string schemas of a property: itself, its anyOf branches, its array items."""
    if schema.get("type") == "string":
        return [schema]
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return _text_nodes(schema["items"])
    return [node for branch in schema.get("anyOf", []) for node in _text_nodes(branch)]


def publish_text_rule(schema: dict[str, Any], _cls: Any = None) -> None:
    """Write the control-character rule (refuse_control) into a model's JSON schema, as patterns."""
    for name, prop in schema.get("properties", {}).items():
        multiline = name in MULTILINE_FIELDS
        pattern = MULTILINE_PATTERN if multiline else SINGLE_LINE_PATTERN
        for node in _text_nodes(prop):
            if "enum" in node or "format" in node or "pattern" in node:
                continue
            node["pattern"] = (
                trimmed_pattern(multiline, node["minLength"]) if "minLength" in node else pattern
            )


def publish_without_nulls(schema: dict[str, Any], cls: Any = None) -> None:
    """Publish a change whose fields may be left out but not sent as null (the model refuses null)."""
    publish_text_rule(schema, cls)
    for prop in schema.get("properties", {}).values():
        if prop.get("default", "") is None:
            del prop["default"]  # "leave it out", not a value to send
        branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
        if "anyOf" in prop and len(branches) == 1:
            del prop["anyOf"]
            prop.update(branches[0])
        elif "anyOf" in prop:
            prop["anyOf"] = branches


def one_of(values: Any) -> Any:
    """Return a field's json_schema_extra that publishes its closed vocabulary (checked by a validator).

    `values` is the list, or a function returning it (for a vocabulary imported late).
    """

    def extra(schema: dict[str, Any]) -> None:
        allowed = list(values() if callable(values) else values)
        for node in _text_nodes(schema):
            node["enum"] = allowed
            node.pop("pattern", None)

    return extra


#: Published pattern of an e-mail address: what ProjectIn._email accepts once the white space at both
#: ends is trimmed (an @ neither first nor last).
EMAIL_PATTERN = (
    rf"^[{_SPACE_CLASS}]*[^@{_CONTROL_CLASS}{_SPACE_CLASS}][^{_CONTROL_CLASS}]*@"
    rf"[^{_CONTROL_CLASS}]*[^@{_CONTROL_CLASS}{_SPACE_CLASS}][{_SPACE_CLASS}]*$"
)


#: The unified social credit code (GB 32100-2015) as the JSON API takes it: 18 characters of the code's
#: alphabet (upper case, no I, O, Z, S, V), published with the format CREDIT_CODE_FORMAT for its check
#: character, which no pattern states (a generator learns it from tools/schemathesis_hooks.py).
CREDIT_CODE_FORMAT = "gb32100"
CREDIT_CODE_PATTERN = "^[0-9A-HJ-NPQRTUWXY]{18}$"


def _credit_code_schema(schema: dict[str, Any]) -> None:
    for node in _text_nodes(schema):
        node.update(pattern=CREDIT_CODE_PATTERN, format=CREDIT_CODE_FORMAT)
    schema["description"] = "统一社会信用代码（GB 32100-2015：18 位，末位为校验码）"


def _sme_industries() -> Any:
    from app.intake.eligibility import SME_INDUSTRIES

    return SME_INDUSTRIES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=publish_text_rule)

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        return refuse_control(data)


def _optional_for_some(schema: dict[str, Any], name: str, description: str) -> None:
    """Publish a field some callers may leave out or send as null (the view fills it in for them)."""
    schema["required"] = [f for f in schema.get("required", []) if f != name]
    prop = schema["properties"][name]
    branches = prop.pop("anyOf", None) or [{k: prop.pop(k) for k in ("$ref", "type", "enum") if k in prop}]
    prop["anyOf"] = [*branches, {"type": "null"}]
    prop["description"] = description


def _need_schema(schema: dict[str, Any], cls: Any = None) -> None:
    publish_text_rule(schema, cls)
    # Required of every caller in the API (an institution member names its own institution): a field
    # that some roles may leave out would be one the schema calls optional and the view refuses.
    schema["properties"]["institution_id"]["description"] = "发布机构（机构成员：本机构）"


def _project_schema(schema: dict[str, Any], cls: Any = None) -> None:
    publish_text_rule(schema, cls)
    # contest_id is required of every caller (a project member sends its project's own contest; another
    # one is refused, 403); award may be left out by anyone: none (无), or for a project member, unchanged.
    schema["properties"]["contest_id"]["description"] = "所属赛事（项目方：不能改为其他赛事）"
    _optional_for_some(schema, "award", "获奖等级；省略、空或 null 为「无」（项目方：保持不变，不能修改）")


class ProjectIn(_Strict):
    """A project as entered on the form, in the API or in an import row."""

    model_config = ConfigDict(json_schema_extra=_project_schema)

    name: str = Field(min_length=2, max_length=200)
    group: enums.ProjectGroup
    contest_id: Id
    award: enums.Award = enums.Award.NONE
    industry: str = Field(json_schema_extra=one_of(enums.INDUSTRIES))
    track: OptStr = Field(default=None, max_length=32)
    province: OptStr = Field(default=None, json_schema_extra=one_of(enums.PROVINCES))
    city: OptStr = Field(default=None, max_length=32)
    stage: enums.Stage | None = None
    amount_wan: float | None = Field(default=None, ge=0, le=10_000_000)
    funding_round: enums.FundingRound | None = None
    description: str = Field(min_length=10, max_length=5000)
    team: OptStr = Field(default=None, max_length=3000)
    ip: OptStr = Field(default=None, max_length=3000)
    needs: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.PROJECT_NEEDS))
    contact_name: OptStr = Field(default=None, max_length=64)
    contact_phone: OptStr = Field(default=None, max_length=32)
    contact_email: OptStr = Field(default=None, max_length=120, json_schema_extra={"pattern": EMAIL_PATTERN})
    employees: int | None = Field(default=None, ge=0, le=10_000_000)
    revenue_wan: float | None = Field(default=None, ge=0, le=100_000_000)
    ref: OptStr = Field(default=None, max_length=64)
    credit_code: OptStr = Field(default=None, json_schema_extra=_credit_code_schema)
    team_lead: OptStr = Field(default=None, max_length=64)
    assets_wan: float | None = Field(default=None, ge=0, le=100_000_000)
    sme_industry: OptStr = Field(default=None, json_schema_extra=one_of(_sme_industries))

    _group = field_validator("group", mode="before")(lambda v: label_member(enums.ProjectGroup, v))
    _award = field_validator("award", mode="before")(
        lambda v: enums.Award.NONE if v in (None, "") else label_member(enums.Award, v)
    )
    _stage = field_validator("stage", mode="before")(lambda v: label_member(enums.Stage, blank_to_none(v)))
    _round = field_validator("funding_round", mode="before")(
        lambda v: label_member(enums.FundingRound, blank_to_none(v))
    )
    _amount = field_validator("amount_wan", "revenue_wan", "employees", "assets_wan", mode="before")(
        blank_to_none
    )

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, v: str | None) -> str | None:
        from app.intake.eligibility import check_credit_code

        return None if v is None else check_credit_code(v)

    _sme_industry = field_validator("sme_industry")(_members_of(_sme_industries, single=True))
    _industry = field_validator("industry")(_members_of(enums.INDUSTRIES, single=True))
    _province = field_validator("province")(_members_of(enums.PROVINCES, single=True))
    _needs = field_validator("needs")(_members_of(enums.PROJECT_NEEDS))

    @field_validator("contact_email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and ("@" not in v or v.startswith("@") or v.endswith("@")):
            raise ValueError("邮箱格式不正确")
        return v


#: An institution's choice about candidates that nearly copy a project it backed: value -> label.
COMPETITOR_POLICIES: dict[str, str] = {"avoid": "回避竞争", "welcome": "欢迎同类"}


def competitor_policy_value(v: Any) -> str:
    """Return "avoid" or "welcome" from the value or its Chinese label (blank: the default, avoid)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return "avoid"
    if isinstance(v, str):
        text = v.strip()
        if text in COMPETITOR_POLICIES:
            return text
        for value, label in COMPETITOR_POLICIES.items():
            if text == label:
                return value
    raise ValueError("竞争项目处理方式只能是「回避竞争」(avoid) 或「欢迎同类」(welcome)")


class InstitutionIn(_Strict):
    """An institution profile."""

    name: str = Field(min_length=2, max_length=200)
    kind: enums.InstitutionKind
    province: OptStr = Field(default=None, json_schema_extra=one_of(enums.PROVINCES))
    city: OptStr = Field(default=None, max_length=32)
    industries: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.INDUSTRIES))
    stages: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.Stage.labels()))
    ticket_min_wan: float | None = Field(
        default=None, ge=0, le=10_000_000, description="单笔金额下限（万元）"
    )
    ticket_max_wan: float | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="单笔金额上限（万元）；API 中两个界限先后不限，按大小存为下限与上限",
    )
    services: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.ServiceKind.labels()))
    space_m2: float | None = Field(default=None, ge=0, le=100_000_000)
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    description: str = Field(min_length=10, max_length=5000)
    contact_name: OptStr = Field(default=None, max_length=64)
    contact_phone: OptStr = Field(default=None, max_length=32)
    contact_email: OptStr = Field(default=None, max_length=120, json_schema_extra={"pattern": EMAIL_PATTERN})
    competitor_policy: str = Field(
        default="avoid",
        description="竞争项目处理方式: avoid (回避竞争) or welcome (欢迎同类)",
        json_schema_extra={"enum": ["avoid", "welcome", "回避竞争", "欢迎同类"]},
    )

    _kind = field_validator("kind", mode="before")(lambda v: label_member(enums.InstitutionKind, v))

    @field_validator("competitor_policy", mode="before")
    @classmethod
    def _competitor_policy(cls, v: Any) -> str:
        return competitor_policy_value(v)

    _numbers = field_validator("ticket_min_wan", "ticket_max_wan", "space_m2", "capacity", mode="before")(
        blank_to_none
    )

    _province = field_validator("province")(_members_of(enums.PROVINCES, single=True))
    _industries = field_validator("industries")(_members_of(enums.INDUSTRIES))
    _stages = field_validator("stages")(_members_of(enums.Stage.labels()))
    _services = field_validator("services")(_members_of(enums.ServiceKind.labels()))

    @field_validator("contact_email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return ProjectIn._email(v)

    @model_validator(mode="after")
    def _ticket_range(self) -> InstitutionIn:
        lo, hi = self.ticket_min_wan, self.ticket_max_wan
        if lo is not None and hi is not None and lo > hi:
            raise InputError({"ticket_max_wan": "单笔金额上限不能小于下限"})
        return self


class NeedIn(_Strict):
    """A need (对接需求) posted by an institution."""

    model_config = ConfigDict(json_schema_extra=_need_schema)

    institution_id: Id
    title: str = Field(min_length=4, max_length=200)
    description: str = Field(min_length=10, max_length=5000)
    industries: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.INDUSTRIES))
    stages: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.Stage.labels()))
    services: StrListIn = Field(default_factory=list, json_schema_extra=one_of(enums.ServiceKind.labels()))
    quota: int | None = Field(default=None, ge=1, le=10_000)
    deadline: date | None = None

    _blank = field_validator("quota", "deadline", mode="before")(blank_to_none)
    _industries = field_validator("industries")(_members_of(enums.INDUSTRIES))
    _stages = field_validator("stages")(_members_of(enums.Stage.labels()))
    _services = field_validator("services")(_members_of(enums.ServiceKind.labels()))


_TEMPLATES: dict[str, str] = {
    "missing": "必填",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "finite_number": "应为有限的数字",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "extra_forbidden": "不认识的字段",
    "enum": "取值不在可选范围内",
    "bool_parsing": "应为是或否",
}


def translate(exc: ValidationError) -> dict[str, str]:
    """Return {field: Chinese message} for a pydantic ValidationError."""
    fields: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        field = loc[0] if loc else "_"
        label = FIELD_LABELS.get(field, field)
        etype = err.get("type", "")
        if etype == "value_error":
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, InputError):
                fields.update(cause.fields)
                continue
            text = str(cause) if cause is not None else err.get("msg", "")
        else:
            template = _TEMPLATES.get(etype)
            try:
                ctx = {
                    k: (int(v) if isinstance(v, float) and v.is_integer() else v)
                    for k, v in err.get("ctx", {}).items()
                }
                text = template.format(**ctx) if template else "格式不正确"
            except (KeyError, IndexError):
                text = template or "格式不正确"
        fields.setdefault(field, f"{label}：{text}")
    return fields


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def validate(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate data into the model or raise InputError with Chinese messages.

    A required field left blank (an empty form input) is reported as missing (必填), not as a type error.
    """
    data = {
        k: v
        for k, v in data.items()
        if not (k in model.model_fields and model.model_fields[k].is_required() and _blank(v))
    }
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(translate(exc)) from None
