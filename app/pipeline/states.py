"""The connection state machine: which stage may follow which, who may move it, what a move records.

Pure: no Flask, no session. The functions change a Connection object and append one ConnectionEvent to
its history; the caller adds, commits, audits and refreshes the ranking evidence (app/pipeline/service.py).

    推荐 → 已申请对接 → 已接受 / 已拒绝 → 已会谈 → 尽职调查（仅投融资机构）→ 已签约
    终止 from any open stage (with a reason); 已签约 → 终止 when a signed agreement is dissolved;
    已拒绝 → 已申请对接 only when the project asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from app.pipeline.schemas import outcome_values
from app.schemas import CONTROL_MESSAGE, InputError, has_control
from models import Connection, Institution, Project
from models.enums import ConnectionStage as S
from models.pipeline import SIDE_OUTCOME, ConnectionEvent, EventAction, OutcomeKind, Party

#: Dates of the contest (quarters, days of an outcome) are Beijing dates.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

#: The happy path, in order; 尽职调查 applies to funds only.
FUNNEL: tuple[S, ...] = (S.RECOMMENDED, S.REQUESTED, S.ACCEPTED, S.MET, S.DUE_DILIGENCE, S.SIGNED)
#: Stages at which the project has said yes: its contacts open up to the institution (app/access.py) and
#: the pair is a positive ranking label (app/pipeline/labels.py).
ACCEPTED_STAGES: tuple[S, ...] = (S.ACCEPTED, S.MET, S.DUE_DILIGENCE, S.SIGNED)
#: Stages where something is still expected to happen (idle ones are flagged 待跟进).
OPEN_STAGES: frozenset[S] = frozenset({S.RECOMMENDED, S.REQUESTED, S.ACCEPTED, S.MET, S.DUE_DILIGENCE})
#: Every stage that may follow a stage, before the side rule (尽职调查 for funds only) is applied.
MOVES: dict[S, tuple[S, ...]] = {
    S.RECOMMENDED: (S.REQUESTED, S.TERMINATED),
    S.REQUESTED: (S.ACCEPTED, S.REFUSED, S.TERMINATED),
    S.ACCEPTED: (S.MET, S.TERMINATED),
    S.MET: (S.DUE_DILIGENCE, S.SIGNED, S.TERMINATED),
    S.DUE_DILIGENCE: (S.SIGNED, S.TERMINATED),
    S.REFUSED: (S.REQUESTED,),
    S.SIGNED: (S.TERMINATED,),
    S.TERMINATED: (),
}
#: The parties who act for one side of a connection; the others act for the contest.
SIDES = (Party.INSTITUTION, Party.PROJECT)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the party they act for, and the account (None for the system)."""

    kind: Party
    user_id: int | None = None
    name: str | None = None

    @property
    def is_contest(self) -> bool:
        """True for the secretariat, an organiser or the system: they may act for either side."""
        return self.kind not in SIDES


SYSTEM = Actor(Party.SYSTEM, None, "系统")


class TransitionError(InputError):
    """A refused change: a Chinese message for people and a code plus stages for the API."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "illegal_transition",
        from_stage: S | None = None,
        to_stage: S | None = None,
        field: str = "to_stage",
    ) -> None:
        super().__init__({field: message}, message)
        self.code = code
        self.from_stage = from_stage
        self.to_stage = to_stage

    def as_json(self) -> dict[str, Any]:
        """Return the structured form the API sends."""
        return {
            "code": self.code,
            "message": self.message,
            "from_stage": self.from_stage.value if self.from_stage else None,
            "to_stage": self.to_stage.value if self.to_stage else None,
            "fields": self.fields,
        }


def side_of(connection: Connection) -> str:
    """Return the institution's side of the market: fund, base or platform."""
    return connection.institution.kind.side


def outcome_kind_of(connection: Connection) -> OutcomeKind:
    """Return what a signature records for this connection: financing, landing or service."""
    return SIDE_OUTCOME[side_of(connection)]


def next_stages(connection: Connection) -> tuple[S, ...]:
    """Return the stages this connection may move to, in display order."""
    stage, fund = connection.stage, side_of(connection) == "fund"
    out = []
    for to in MOVES[stage]:
        if to is S.DUE_DILIGENCE and not fund:
            continue
        if stage is S.MET and to is S.SIGNED and fund:
            continue  # a fund signs only after due diligence
        out.append(to)
    return tuple(out)


def moves_for(connection: Connection, actor: Actor) -> tuple[S, ...]:
    """Return the next stages this actor may move the connection to (the buttons it is offered)."""
    return tuple(to for to in next_stages(connection) if _who_may(connection, to, actor) is None)


def parse_stage(value: S | str, field: str = "to_stage") -> S:
    """Return the stage named by a label (已会谈) or a name (MET), or raise naming the choices."""
    if isinstance(value, S):
        return value
    try:
        return S.from_label(str(value).strip())
    except ValueError:
        raise TransitionError(
            f"目标阶段：应为以下之一：{'、'.join(S.labels())}", code="unknown_stage", field=field
        ) from None


def _who_may(connection: Connection, to: S, actor: Actor) -> str | None:
    """Return why this actor may not make this move, or None when they may."""
    if actor.is_contest:
        return None
    frm = connection.stage
    if frm is S.REQUESTED and to in (S.ACCEPTED, S.REFUSED):
        asked = connection.initiated_by
        if asked in SIDES and actor.kind is asked:
            other = "项目方" if asked is Party.INSTITUTION else "机构"
            return f"对接申请由{asked.value}发起，只能由{other}接受或拒绝"
        if to is S.ACCEPTED and asked is not Party.PROJECT and actor.kind is not Party.PROJECT:
            # Accepting opens the project's contacts: only the project can consent to that.
            who = asked.value if asked is not None else "他方"
            return f"对接申请由{who}发起，须由项目方接受"
    if frm is S.REFUSED and actor.kind is not Party.PROJECT:
        return "已拒绝的对接只能由项目方重新申请"
    return None


def _now(at: datetime | None) -> datetime:
    at = at or datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _last_at(connection: Connection) -> datetime | None:
    times = [e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC) for e in connection.events if e.at]
    return max(times) if times else None


def _event(
    connection: Connection,
    action: EventAction,
    frm: S | None,
    to: S,
    actor: Actor,
    at: datetime,
    note: str | None,
    private: bool = False,
    detail: dict[str, Any] | None = None,
) -> ConnectionEvent:
    last = _last_at(connection)
    if last is not None and at < last:
        raise TransitionError("变更时间不能早于上一次变更", code="out_of_order", field="at")
    ev = ConnectionEvent(
        action=action,
        from_stage=frm,
        to_stage=to,
        actor_kind=actor.kind,
        actor_user_id=actor.user_id,
        actor_name=actor.name,
        note=_clean(note),
        private=private,
        detail=detail,
        at=at,
    )
    connection.events.append(ev)
    connection.last_activity_at = at
    return ev


def _clean(note: str | None, limit: int = 2000) -> str | None:
    if note is None:
        return None
    note = note.strip()
    if has_control(note, multiline=True):
        raise TransitionError(f"备注：{CONTROL_MESSAGE}", code="validation_error", field="note")
    if len(note) > limit:
        raise TransitionError(f"备注：最多 {limit} 个字符", code="validation_error", field="note")
    return note or None


def open_connection(
    project: Project,
    institution: Institution,
    actor: Actor,
    stage: S = S.RECOMMENDED,
    note: str | None = None,
    at: datetime | None = None,
    need_id: int | None = None,
) -> Connection:
    """Return a new connection at 推荐 (a shortlist or a recommendation) or 已申请对接 (a request).

    The caller adds it to the session; the one-connection-per-pair rule is the caller's check.
    """
    if stage not in (S.RECOMMENDED, S.REQUESTED):
        raise TransitionError(
            "新的对接只能从「推荐」或「已申请对接」开始", code="illegal_start", to_stage=stage
        )
    if stage is S.RECOMMENDED and actor.kind is Party.PROJECT:
        raise TransitionError(
            "项目方不能把自己加入机构的候选名单，请直接申请对接", code="forbidden_move", to_stage=stage
        )
    at = _now(at)
    c = Connection(project=project, institution=institution, need_id=need_id, stage=stage, shortlisted=False)
    c.events = []
    if stage is S.REQUESTED:
        c.initiated_by = actor.kind if actor.kind in SIDES else Party.SECRETARIAT
        c.requested_at = at
    _event(c, EventAction.CREATED, None, stage, actor, at, note)
    c.created_at = at
    return c


def transition(
    connection: Connection,
    to_stage: S | str,
    actor: Actor,
    note: str | None = None,
    outcome: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> ConnectionEvent:
    """Move a connection to another stage, record the move in its history and return the event.

    Args:
        connection: the connection, with its institution loaded (its side decides 尽职调查 and the outcome).
        to_stage: the target stage, as a member, a Chinese label or a name.
        actor: who moves it.
        note: why; required when terminating (the reason).
        outcome: required when moving to 已签约: financing {amount_wan, round, date}, landing
            {base, area_m2, date} or service {service_kind, date}, by the institution's side.
        at: when (default now); never earlier than the last recorded change.

    Raises:
        TransitionError: the move is not allowed, not allowed for this actor, or lacks its reason/outcome.
    """
    to = parse_stage(to_stage)
    frm = connection.stage
    if to is frm:
        raise TransitionError(
            f"该对接已处于「{frm.value}」阶段", code="same_stage", from_stage=frm, to_stage=to
        )
    if to not in next_stages(connection):
        allowed = "、".join(f"「{s.value}」" for s in next_stages(connection)) or "无（该对接已结束）"
        why = ""
        if to is S.DUE_DILIGENCE and side_of(connection) != "fund":
            why = "尽职调查仅适用于投融资机构；"
        elif to is S.SIGNED and frm is S.MET and side_of(connection) == "fund":
            why = "投融资机构须先完成尽职调查再签约；"
        raise TransitionError(
            f"不能从「{frm.value}」变更为「{to.value}」：{why}可变更为 {allowed}",
            from_stage=frm,
            to_stage=to,
        )
    refusal = _who_may(connection, to, actor)
    if refusal:
        raise TransitionError(refusal, code="forbidden_move", from_stage=frm, to_stage=to)
    at = _now(at)
    detail: dict[str, Any] | None = None
    if to is S.TERMINATED:
        reason = _clean(note)
        if not reason:
            raise TransitionError(
                "终止对接须填写原因", code="reason_required", from_stage=frm, to_stage=to, field="note"
            )
        connection.closed_reason = reason
        detail = {"reason": reason}
    elif to is S.REFUSED:
        connection.closed_reason = _clean(note)
    elif to is S.SIGNED:
        if outcome is None:
            kind = outcome_kind_of(connection)
            raise TransitionError(
                f"签约须填写{kind.value}成果",
                code="outcome_required",
                from_stage=frm,
                to_stage=to,
                field="outcome",
            )
        detail = {"outcome": _apply_outcome(connection, outcome, at)}
        connection.signed_at = at
    if to is S.REQUESTED:
        # A request (or a request again after a refusal) belongs to whoever asks.
        connection.initiated_by = actor.kind if actor.kind in SIDES else Party.SECRETARIAT
        connection.requested_at = connection.requested_at or at
        connection.closed_reason = None
    ev = _event(connection, EventAction.MOVED, frm, to, actor, at, note, detail=detail)
    connection.stage = to
    return ev


def request_after_closed_shortlist(
    connection: Connection, actor: Actor, note: str | None = None, at: datetime | None = None
) -> ConnectionEvent:
    """Turn a closed private shortlist entry (终止 without any request) into a request (已申请对接).

    The institution's shortlist is private: a project that asks for an introduction must neither be
    blocked by it nor learn of it, so the pair's one connection is reopened as a fresh request. The
    history keeps the earlier events (append-only); the project sees only what follows its request.
    """
    if connection.stage is not S.TERMINATED or connection.requested_at is not None:
        raise TransitionError(
            f"该对接当前阶段为「{connection.stage.value}」，不能重新申请",
            from_stage=connection.stage,
            to_stage=S.REQUESTED,
        )
    at = _now(at)
    frm = connection.stage
    ev = _event(connection, EventAction.MOVED, frm, S.REQUESTED, actor, at, note)
    connection.initiated_by = actor.kind if actor.kind in SIDES else Party.SECRETARIAT
    connection.requested_at = at
    connection.closed_reason = None
    connection.stage = S.REQUESTED
    return ev


def _apply_outcome(connection: Connection, outcome: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    kind = outcome_kind_of(connection)
    values = outcome_values(kind, dict(outcome), today=at.astimezone(CHINA_TZ).date())
    connection.outcome_kind = kind
    connection.outcome_date = values["date"]
    connection.outcome_amount_wan = values.get("amount_wan")
    connection.outcome_round = values.get("round")
    connection.outcome_base = values.get("base")
    connection.outcome_area_m2 = values.get("area_m2")
    connection.outcome_service = values.get("service_kind")
    return {
        "kind": kind.value,
        **{
            k: (v.value if hasattr(v, "value") else v.isoformat() if isinstance(v, date) else v)
            for k, v in values.items()
        },
    }


def set_shortlist(
    connection: Connection,
    shortlisted: bool,
    actor: Actor,
    note: str | None = None,
    at: datetime | None = None,
) -> ConnectionEvent:
    """Put a project on (or off) the institution's shortlist, with the institution's private note."""
    if actor.kind is Party.PROJECT:
        raise TransitionError(
            "候选名单是机构的内部记录，项目方不能修改", code="forbidden_move", field="shortlisted"
        )
    connection.shortlisted = shortlisted
    if note is not None:
        connection.note = _clean(note)
    action = EventAction.SHORTLISTED if shortlisted else EventAction.UNSHORTLISTED
    return _event(connection, action, connection.stage, connection.stage, actor, _now(at), note, private=True)


def add_note(
    connection: Connection, actor: Actor, note: str, private: bool = False, at: datetime | None = None
) -> ConnectionEvent:
    """Record a note (a call, a meeting date) without moving the stage; it counts as activity."""
    if not _clean(note):
        raise TransitionError("备注：必填", code="validation_error", field="note")
    return _event(
        connection, EventAction.NOTED, connection.stage, connection.stage, actor, _now(at), note, private
    )


def changes_evidence(event: ConnectionEvent) -> bool:
    """True when the event puts a connection into or takes it out of 已签约 (the ranking's evidence)."""
    return event.action is EventAction.MOVED and S.SIGNED in (event.from_stage, event.to_stage)


def is_idle(connection: Connection, now: datetime, days: int) -> bool:
    """True when an open connection has seen no activity for more than `days` days (待跟进)."""
    last = connection.last_activity_at
    if connection.stage not in OPEN_STAGES or last is None:
        return False
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return now - last > timedelta(days=days)


def china_date(at: datetime) -> date:
    """Return the Beijing date of a timestamp."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(CHINA_TZ).date()
