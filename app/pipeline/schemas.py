"""Input validation of the pipeline: outcomes by kind, new connections, moves (forms and API alike)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from app.schemas import Id, InputError, OptId, one_of, publish_text_rule, refuse_control, translate
from models.enums import ConnectionStage, FundingRound, ServiceKind
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


def _blank(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _label(enum_cls: Any) -> Any:
    def parse(v: Any) -> Any:
        v = _blank(v)
        if v is None or isinstance(v, enum_cls):
            return v
        try:
            return enum_cls.from_label(str(v))
        except ValueError:
            raise ValueError(f"应为以下之一：{'、'.join(enum_cls.labels())}") from None

    return BeforeValidator(parse)


Opt = Annotated[str | None, BeforeValidator(_blank)]


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

    kind: Opt = None  # optional: derived from the institution; a different one is refused
    amount_wan: Annotated[float | None, BeforeValidator(_blank)] = Field(default=None, gt=0, le=10_000_000)
    round: Annotated[FundingRound | None, _label(FundingRound)] = None
    date: Annotated[dt.date | None, BeforeValidator(_blank)] = None
    base: Opt = Field(default=None, max_length=200)
    area_m2: Annotated[float | None, BeforeValidator(_blank)] = Field(default=None, gt=0, le=10_000_000)
    service_kind: Annotated[ServiceKind | None, _label(ServiceKind)] = None


class ConnectionIn(_Strict):
    """A new connection: an institution shortlists a project, or either side requests an introduction."""

    project_id: Id
    institution_id: Id
    action: Literal["shortlist", "request"] = "request"
    note: Opt = Field(default=None, max_length=2000)
    need_id: OptId = None


class MoveIn(_Strict):
    """A stage change, with its note (the reason when terminating) and, on signing, the outcome."""

    to_stage: str = Field(min_length=1, max_length=32, json_schema_extra=one_of(ConnectionStage.labels()))
    note: Opt = Field(default=None, max_length=2000)
    outcome: dict[str, Any] | None = None


class ShortlistIn(_Strict):
    shortlisted: bool
    note: Opt = Field(default=None, max_length=2000)


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
        raise InputError(errors, "签约成果填写有误，请按提示修改")
    return {field: getattr(values, field) for field in REQUIRED[kind]}
