"""The state machine: every legal move is allowed, every other move is refused with a clear message."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from app.pipeline.states import (
    Actor,
    TransitionError,
    add_note,
    changes_evidence,
    is_idle,
    next_stages,
    open_connection,
    set_shortlist,
    transition,
)
from app.schemas import InputError
from models import Institution, InstitutionKind, Project
from models.enums import ConnectionStage as S
from models.pipeline import EventAction, OutcomeKind, Party

SECRETARIAT = Actor(Party.SECRETARIAT, 1, "秘书处")
INSTITUTION = Actor(Party.INSTITUTION, 2, "机构用户")
PROJECT = Actor(Party.PROJECT, 3, "项目用户")
T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)

KIND_OF_SIDE = {
    "fund": InstitutionKind.VC,
    "base": InstitutionKind.SME_BASE,
    "platform": InstitutionKind.SERVICE_PLATFORM,
}
OUTCOME = {
    "fund": {"amount_wan": 800, "round": "A轮", "date": "2026-06-30"},
    "base": {"base": "滨江小微企业创业创新基地", "area_m2": 600, "date": "2026-06-30"},
    "platform": {"service_kind": "检验检测", "date": "2026-06-30"},
}

#: The whole legal-move table by side, written out by hand from the issue (the test's oracle).
LEGAL: dict[str, set[tuple[S, S]]] = {}
_common = {
    (S.RECOMMENDED, S.REQUESTED),
    (S.RECOMMENDED, S.TERMINATED),
    (S.REQUESTED, S.ACCEPTED),
    (S.REQUESTED, S.REFUSED),
    (S.REQUESTED, S.TERMINATED),
    (S.ACCEPTED, S.MET),
    (S.ACCEPTED, S.TERMINATED),
    (S.MET, S.TERMINATED),
    (S.REFUSED, S.REQUESTED),
    (S.SIGNED, S.TERMINATED),
}
LEGAL["fund"] = _common | {
    (S.MET, S.DUE_DILIGENCE),
    (S.DUE_DILIGENCE, S.SIGNED),
    (S.DUE_DILIGENCE, S.TERMINATED),
}
LEGAL["base"] = _common | {(S.MET, S.SIGNED)}
LEGAL["platform"] = LEGAL["base"]


def make(side: str, stage: S = S.RECOMMENDED, initiated_by: Party | None = Party.INSTITUTION):
    project = Project(id=1, name="测试项目", industry="人工智能")
    inst = Institution(id=2, name="测试机构", kind=KIND_OF_SIDE[side], description="测试机构简介测试")
    c = open_connection(project, inst, SECRETARIAT, at=T0)
    c.stage = stage  # put it where the test needs it, as if the history had led there
    c.initiated_by = initiated_by
    return c


def args_for(side: str, to: S) -> dict:
    if to is S.SIGNED:
        return {"outcome": OUTCOME[side]}
    if to is S.TERMINATED:
        return {"note": "项目方暂停融资计划"}
    return {}


#: Every (side, from, to) triple, leaving out 尽职调查 as a start for bases and platforms (unreachable).
TRIPLES = [
    (side, frm, to)
    for side, frm, to in itertools.product(["fund", "base", "platform"], S, S)
    if side == "fund" or frm is not S.DUE_DILIGENCE
]


@pytest.mark.parametrize(("side", "frm", "to"), TRIPLES)
def test_every_move_is_allowed_exactly_when_the_table_says(side: str, frm: S, to: S) -> None:
    c = make(side, frm)
    at = T0 + timedelta(days=3)
    if (frm, to) in LEGAL[side]:
        actor = PROJECT if frm is S.REFUSED else SECRETARIAT
        ev = transition(c, to, actor, at=at, **args_for(side, to))
        assert c.stage is to
        assert (ev.from_stage, ev.to_stage) == (frm, to)
        assert c.events[-1] is ev and c.last_activity_at == at
    else:
        with pytest.raises(TransitionError) as err:
            transition(c, to, SECRETARIAT, at=at, **args_for(side, to))
        assert c.stage is frm
        assert len(c.events) == 1  # nothing recorded
        msg = err.value.message
        assert ("已处于" in msg) if frm is to else (f"不能从「{frm.value}」变更为「{to.value}」" in msg)
        assert err.value.as_json()["code"] in ("illegal_transition", "same_stage")


@pytest.mark.parametrize("side", ["fund", "base", "platform"])
def test_next_stages_lists_the_legal_moves(side: str) -> None:
    for frm in S:
        if side != "fund" and frm is S.DUE_DILIGENCE:
            continue
        assert set(next_stages(make(side, frm))) == {to for f, to in LEGAL[side] if f is frm}


def test_refusal_messages_explain_the_side_rules() -> None:
    with pytest.raises(TransitionError, match="尽职调查仅适用于投融资机构"):
        transition(make("base", S.MET), S.DUE_DILIGENCE, SECRETARIAT)
    with pytest.raises(TransitionError, match="须先完成尽职调查再签约"):
        transition(make("fund", S.MET), S.SIGNED, SECRETARIAT, outcome=OUTCOME["fund"])
    with pytest.raises(TransitionError, match="该对接已结束"):
        transition(make("fund", S.TERMINATED), S.REQUESTED, PROJECT)


def test_full_fund_path_records_each_step_in_order() -> None:
    c = make("fund")
    path = [S.REQUESTED, S.ACCEPTED, S.MET, S.DUE_DILIGENCE, S.SIGNED]
    actors = [INSTITUTION, PROJECT, INSTITUTION, INSTITUTION, INSTITUTION]
    for n, (to, actor) in enumerate(zip(path, actors, strict=True), start=1):
        transition(c, to, actor, note=f"第{n}步", at=T0 + timedelta(days=n), **args_for("fund", to))
    assert [e.to_stage for e in c.events] == [S.RECOMMENDED, *path]
    assert c.initiated_by is Party.INSTITUTION and c.requested_at == T0 + timedelta(days=1)
    assert c.outcome_kind is OutcomeKind.FINANCING and c.outcome_amount_wan == 800
    assert c.outcome_round.value == "A轮" and c.outcome_date.isoformat() == "2026-06-30"
    assert c.signed_at == T0 + timedelta(days=5)
    assert c.events[-1].detail["outcome"] == {
        "kind": "融资",
        "amount_wan": 800.0,
        "round": "A轮",
        "date": "2026-06-30",
    }
    assert changes_evidence(c.events[-1]) and not changes_evidence(c.events[-2])


def test_the_requester_cannot_answer_its_own_request() -> None:
    c = make("fund", S.REQUESTED, initiated_by=Party.INSTITUTION)
    with pytest.raises(TransitionError, match="只能由项目方接受或拒绝"):
        transition(c, S.ACCEPTED, INSTITUTION)
    transition(c, S.ACCEPTED, PROJECT)
    c = make("base", S.REQUESTED, initiated_by=Party.PROJECT)
    with pytest.raises(TransitionError, match="只能由机构接受或拒绝"):
        transition(c, S.REFUSED, PROJECT)
    transition(c, S.REFUSED, INSTITUTION, note="暂无空置场地")
    assert c.closed_reason == "暂无空置场地"


def test_only_the_project_asks_again_after_a_refusal() -> None:
    c = make("fund", S.REFUSED, initiated_by=Party.INSTITUTION)
    with pytest.raises(TransitionError, match="只能由项目方重新申请"):
        transition(c, S.REQUESTED, INSTITUTION)
    transition(c, S.REQUESTED, PROJECT, note="补充了最新财务数据")
    assert c.stage is S.REQUESTED and c.initiated_by is Party.PROJECT and c.closed_reason is None


def test_termination_needs_a_reason_and_keeps_it() -> None:
    c = make("platform", S.ACCEPTED)
    with pytest.raises(TransitionError, match="终止对接须填写原因") as err:
        transition(c, S.TERMINATED, INSTITUTION, note="  ")
    assert err.value.fields == {"note": "终止对接须填写原因"}
    transition(c, S.TERMINATED, INSTITUTION, note="企业已自建检测实验室")
    assert c.closed_reason == "企业已自建检测实验室" and c.events[-1].detail == {
        "reason": "企业已自建检测实验室"
    }


@pytest.mark.parametrize("side", ["fund", "base", "platform"])
def test_signing_requires_the_outcome_of_the_institutions_kind(side: str) -> None:
    stage = S.DUE_DILIGENCE if side == "fund" else S.MET
    with pytest.raises(TransitionError, match="签约须填写"):
        transition(make(side, stage), S.SIGNED, SECRETARIAT)
    other = {"fund": "base", "base": "platform", "platform": "fund"}[side]
    with pytest.raises(InputError) as err:
        transition(make(side, stage), S.SIGNED, SECRETARIAT, outcome=OUTCOME[other])
    assert any(k.startswith("outcome.") for k in err.value.fields)


def test_outcome_fields_are_checked_one_by_one() -> None:
    c = make("fund", S.DUE_DILIGENCE)
    with pytest.raises(InputError) as err:
        transition(
            c, S.SIGNED, SECRETARIAT, at=T0, outcome={"amount_wan": -5, "round": "Z轮", "date": "2026-13-01"}
        )
    fields = err.value.fields
    assert "不能小于" in fields["outcome.amount_wan"] or "应大于" in fields["outcome.amount_wan"]
    assert "应为以下之一" in fields["outcome.round"]
    assert "日期" in fields["outcome.date"]
    with pytest.raises(InputError) as err:
        transition(
            c, S.SIGNED, SECRETARIAT, at=T0, outcome={"amount_wan": 5, "round": "A轮", "date": "2027-01-01"}
        )
    assert err.value.fields == {"outcome.date": "日期：不能晚于今天"}
    assert c.stage is S.DUE_DILIGENCE and c.outcome_kind is None


def test_unknown_stage_names_the_choices() -> None:
    with pytest.raises(TransitionError, match="目标阶段：应为以下之一"):
        transition(make("fund"), "签了", SECRETARIAT)
    ev = transition(make("fund"), "REQUESTED", INSTITUTION)  # names work too
    assert ev.to_stage is S.REQUESTED


def test_a_change_cannot_be_dated_before_the_last_one() -> None:
    c = make("fund")
    with pytest.raises(TransitionError, match="不能早于上一次变更"):
        transition(c, S.REQUESTED, INSTITUTION, at=T0 - timedelta(hours=1))


def test_only_the_institution_side_keeps_a_shortlist() -> None:
    c = make("fund")
    ev = set_shortlist(c, True, INSTITUTION, note="团队背景强，约下周电话", at=T0 + timedelta(hours=1))
    assert c.shortlisted and c.note == "团队背景强，约下周电话"
    assert ev.private and ev.action is EventAction.SHORTLISTED and ev.to_stage is S.RECOMMENDED
    with pytest.raises(TransitionError, match="项目方不能修改"):
        set_shortlist(c, False, PROJECT)
    with pytest.raises(TransitionError, match="不能把自己加入"):
        open_connection(c.project, c.institution, PROJECT, S.RECOMMENDED)
    add_note(c, INSTITUTION, "已电话沟通", at=T0 + timedelta(hours=2))
    assert c.events[-1].action is EventAction.NOTED and c.last_activity_at == T0 + timedelta(hours=2)


def test_idle_means_open_and_quiet_for_longer_than_the_setting() -> None:
    c = make("fund", S.ACCEPTED)
    c.last_activity_at = T0
    assert not is_idle(c, T0 + timedelta(days=14), 14)
    assert is_idle(c, T0 + timedelta(days=15), 14)
    c.stage = S.SIGNED
    assert not is_idle(c, T0 + timedelta(days=100), 14)
