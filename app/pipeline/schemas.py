"""Input validation of the pipeline: outcomes by kind, new connections, moves (forms and API alike)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from app.schemas import (
    Id,
    InputError,
    OptId,
    OptStr,
    blank_to_none,
    label_member,
    one_of,
    publish_text_rule,
    refuse_control,
    translate,
)
from models.enums import ConnectionStage, FundingRound, LabelEnum, ServiceKind
from models.pipeline import OutcomeKind

LABELS: dict[str, str] = {
    "amount_wan": "融资金额（万元）",
    "round": "融资轮次",
    "date": "日期",
    "base": "落地基地",
    "area_m2": "落地面积（平方米）",
    "service_kind": "服务类型",
    "project_id": "项目",
    "institution_id": "机构",
    "action": "操作",
    "note": "备注",
    "need_id": "对接需求",
    "to_stage": "目标阶段",
    "outcome": "签约成果",
    "shortlisted": "候选",
}

#: The fields each outcome kind requires (the others must be absent or empty).
REQUIRED: dict[OutcomeKind, tuple[str, ...]] = {
    OutcomeKind.FINANCING: ("amount_wan", "round", "date"),
    OutcomeKind.LANDING: ("base", "area_m2", "date"),
    OutcomeKind.SERVICE: ("service_kind", "date"),
}


def _label(enum_cls: type[LabelEnum]) -> Any:
    """A field's parser: a blank value is None, else the member of enum_cls with that label."""
    return BeforeValidator(lambda v: label_member(enum_cls, blank_to_none(v)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=publish_text_rule)
    #: Chinese field names for the API's schema check (app.api.openapi.check_body).
    labels: ClassVar[dict[str, str]] = LABELS

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        return refuse_control(data, LABELS)


class OutcomeIn(_Strict):
    """What a signature achieved; which fields are required depends on the kind."""

    kind: OptStr = None  # optional: derived from the institution; a different one is refused
    amount_wan: Annotated[float | None, BeforeValidator(blank_to_none)] = Field(
        default=None, gt=0, le=10_000_000
    )
    round: Annotated[FundingRound | None, _label(FundingRound)] = None
    date: Annotated[dt.date | None, BeforeValidator(blank_to_none)] = None
    base: OptStr = Field(default=None, max_length=200)
    area_m2: Annotated[float | None, BeforeValidator(blank_to_none)] = Field(
        default=None, gt=0, le=10_000_000
    )
    service_kind: Annotated[ServiceKind | None, _label(ServiceKind)] = None


class ConnectionIn(_Strict):
    """A new connection: an institution shortlists a project, or either side requests an introduction."""

    project_id: Id
    institution_id: Id
    action: Literal["shortlist", "request"] = "request"
    note: OptStr = Field(default=None, max_length=2000)
    need_id: OptId = None


#: Text that is not blank: a single line, or (a note) lines, with at least one character beyond spaces.
_FILLED = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
_FILLED_LINES = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
)


def outcome_schema() -> dict[str, Any]:
    """Return the published outcome of a signature: one complete shape for each kind (REQUIRED).

    Which kind a connection records follows from its institution (outcome_kind_of): an outcome of
    another kind, or dated after today, is refused by outcome_values with 409 (the state decides).
    """
    positive = {"type": "number", "exclusiveMinimum": 0, "maximum": 10_000_000}
    filled: dict[str, dict[str, Any]] = {
        "amount_wan": positive,
        "round": {"type": "string", "enum": FundingRound.labels()},
        "date": {"type": "string", "format": "date"},
        "base": {"type": "string", "maxLength": 200, "pattern": _FILLED},
        "area_m2": positive,
        "service_kind": {"type": "string", "enum": ServiceKind.labels()},
    }
    empty = {"enum": [None, ""]}
    shapes = [
        {
            "title": kind.value,
            "required": list(fields),
            "properties": {f: (node if f in fields else empty) for f, node in filled.items()},
        }
        for kind, fields in REQUIRED.items()
    ]
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kind": {"enum": [*OutcomeKind.labels(), "", None]},
            **{f: {"anyOf": [node, empty]} for f, node in filled.items()},
        },
        "anyOf": shapes,
        "description": "签约成果：融资 {amount_wan, round, date}；落地 {base, area_m2, date}；服务 {service_kind, date}",
    }


def _move_schema(schema: dict[str, Any], cls: Any = None) -> None:
    publish_text_rule(schema, cls)
    schema["properties"]["outcome"] = {**outcome_schema(), "type": ["object", "null"]}  # shapes bind objects
    # 终止 needs its reason, 已签约 its outcome (the view refuses either with its own code).
    schema["anyOf"] = [
        {
            "properties": {
                "to_stage": {
                    "not": {"enum": [ConnectionStage.TERMINATED.value, ConnectionStage.SIGNED.value]}
                }
            }
        },
        {
            "properties": {
                "to_stage": {"const": ConnectionStage.TERMINATED.value},
                "note": {"type": "string", "pattern": _FILLED_LINES},
            },
            "required": ["note"],
        },
        {
            "properties": {
                "to_stage": {"const": ConnectionStage.SIGNED.value},
                "outcome": {"type": "object"},
            },
            "required": ["outcome"],
        },
    ]


class MoveIn(_Strict):
    """A stage change, with its note (the reason when terminating) and, on signing, the outcome."""

    model_config = ConfigDict(json_schema_extra=_move_schema)

    to_stage: str = Field(min_length=1, max_length=32, json_schema_extra=one_of(ConnectionStage.labels()))
    note: OptStr = Field(default=None, max_length=2000)
    outcome: dict[str, Any] | None = None


class ShortlistIn(_Strict):
    shortlisted: bool
    note: OptStr = Field(default=None, max_length=2000)


def validate_in(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> Any:
    """Validate into the model or raise InputError whose messages name the pipeline's fields in Chinese."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = translate(exc)
    out: dict[str, str] = {}
    for field, message in fields.items():
        text = message.split("：", 1)[1] if "：" in message else message
        out[prefix + field] = f"{LABELS.get(field, field)}：{text}"
    raise InputError(out)


def outcome_values(kind: OutcomeKind, data: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """Return the validated outcome of this kind ({field: value}), or raise InputError naming each field."""
    errors: dict[str, str] = {}
    try:
        values = validate_in(OutcomeIn, data, prefix="outcome.")
    except InputError as exc:
        errors.update(exc.fields)
        values = None
    for field in ("amount_wan", "round", "base", "area_m2", "service_kind"):
        if field not in REQUIRED[kind] and data.get(field) not in (None, ""):
            errors[f"outcome.{field}"] = f"{LABELS[field]}：不属于{kind.value}成果"
    if values is not None:
        if values.kind is not None:
            try:
                asked = OutcomeKind.from_label(values.kind)
            except ValueError:
                asked = None
            if asked is not kind:
                errors["outcome.kind"] = f"成果类型：该机构的签约成果应为「{kind.value}」"
        for field in REQUIRED[kind]:
            if getattr(values, field) is None:
                errors[f"outcome.{field}"] = f"{LABELS[field]}：{kind.value}成果必填"
        if values.date is not None and values.date > today:
            errors["outcome.date"] = "日期：不能晚于今天"
    if errors:
        # A well-formed outcome (the published shapes) is refused only by the connection's state: the
        # kind its institution records, today's date: 409. A malformed one: 422.
        status = 409 if values is not None and all(_by_state(f, data) for f in errors) else 422
        raise InputError(errors, "签约成果填写有误，请按提示修改", status=status)
    return {field: getattr(values, field) for field in REQUIRED[kind]}


def _by_state(field: str, data: dict[str, Any]) -> bool:
    """Return True when an outcome error comes from the state, not the shape, of a well-formed outcome."""
    if field in ("outcome.kind", "outcome.date"):
        return True
    filled = [k for k, fields in REQUIRED.items() if all(data.get(f) not in (None, "") for f in fields)]
    return bool(filled)  # a complete outcome of some kind: the institution's kind decides
