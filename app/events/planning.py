"""Event planning on a session: conflicts with their causes, the global plan, the timetable, the Excel
export, the meetings turned into connections after the event, and judge/mentor assignment.

Views call these; each write function leaves the commit to the caller so that the change and its audit
line land in one transaction.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.events.scores import pair_scores
from app.sheets import append_row
from matching.assignment import (
    AssignmentProblem,
    GroupRule,
    assign_reviewers,
    build_timetable,
    solve_assignment,
)
from matching.service import MatchingService
from matching.types import Filters
from models import Connection, Institution, Project
from models.enums import ConnectionStage as S
from models.events import (
    Conflict,
    ConflictSource,
    Event,
    EventStatus,
    Expert,
    ExpertAssignment,
    ExpertKind,
    ExpertRole,
    Meeting,
)
from models.pipeline import OutcomeKind

#: A project's stated needs -> the kind of expert who helps with it.
NEED_EXPERT_KIND: dict[str, ExpertKind] = {
    "融资": ExpertKind.INVESTMENT,
    "落地": ExpertKind.MANAGEMENT,
    "检验检测": ExpertKind.TECH,
    "技术转移": ExpertKind.TECH,
    "数字化改造": ExpertKind.TECH,
    "工业设计": ExpertKind.TECH,
    "知识产权": ExpertKind.TECH,
    "法律": ExpertKind.MANAGEMENT,
    "人力资源": ExpertKind.MANAGEMENT,
    "财务": ExpertKind.MANAGEMENT,
}


#: The solver's constraint keys, in Chinese for the pages.
CONSTRAINT_LABELS: dict[str, str] = {
    "project_bounds": "项目会谈数上下限矛盾",
    "slots": "时段不足",
    "project_candidates": "项目的可会谈机构/可分配专家不足",
    "required_project_max": "必须会谈超过项目上限",
    "required_capacity": "必须会谈超过机构容量",
    "total_capacity": "机构总容量不足",
    "group_rule": "分组规则无法满足",
    "project_floor": "项目达不到最少会谈数",
    "required_pair": "必须会谈无法安排",
    "group_shortfall": "分组规则无法满足",
    "party_slots": "参与方可用时段不足",
    "tables": "桌数不足",
    "timetable": "无法排出无冲突日程",
    "invites": "尚未邀请",
    "experts": "没有可分配的专家",
    "solver": "求解超时",
}


@dataclass(frozen=True)
class PairConflict:
    """A pair that must not meet, and why."""

    project_id: int
    institution_id: int
    cause: str
    source: ConflictSource
    conflict_id: int | None = None  # the stored row of a declared conflict


def invited(event: Event) -> tuple[list[int], list[int]]:
    """Return the invited project ids and institution ids, in invitation order."""
    projects = [i.project_id for i in event.invites if i.project_id is not None]
    institutions = [i.institution_id for i in event.invites if i.institution_id is not None]
    return projects, institutions


def conflicts_of(session: Session, event: Event) -> list[PairConflict]:
    """Return the declared conflicts of the event and those the data shows, each with its cause.

    Detected from the data: a connection the project or the institution refused or terminated; a
    signed financing (the institution holds shares in the project); a person employed by the
    institution who judged the project.
    """
    projects, institutions = invited(event)
    out = [
        PairConflict(c.project_id, c.institution_id, c.cause, c.source, c.id)
        for c in event.conflicts
        if c.institution_id is not None
    ]
    if not projects or not institutions:
        return out
    pset, iset = set(projects), set(institutions)
    conns = session.scalars(
        select(Connection).where(Connection.project_id.in_(pset), Connection.institution_id.in_(iset))
    ).all()
    for c in conns:
        if c.stage is S.REFUSED:
            why = f"：{c.closed_reason}" if c.closed_reason else ""
            out.append(
                PairConflict(c.project_id, c.institution_id, f"对接已被拒绝{why}", ConflictSource.DETECTED)
            )
        elif c.stage is S.TERMINATED:
            why = f"：{c.closed_reason}" if c.closed_reason else ""
            out.append(
                PairConflict(c.project_id, c.institution_id, f"对接已终止{why}", ConflictSource.DETECTED)
            )
        elif c.stage is S.SIGNED and c.outcome_kind is OutcomeKind.FINANCING:
            out.append(
                PairConflict(
                    c.project_id, c.institution_id, "机构已投资该项目（持股关系）", ConflictSource.DETECTED
                )
            )
    judged = session.execute(
        select(ExpertAssignment.project_id, Expert.employer_institution_id, Expert.name)
        .join(Expert, Expert.id == ExpertAssignment.expert_id)
        .where(
            ExpertAssignment.role == ExpertRole.JUDGE,
            ExpertAssignment.project_id.in_(pset),
            Expert.employer_institution_id.in_(iset),
        )
    ).all()
    for project_id, institution_id, name in judged:
        if institution_id is None:  # not an employee of any institution
            continue
        out.append(
            PairConflict(
                project_id, institution_id, f"该机构人员「{name}」担任该项目评委", ConflictSource.DETECTED
            )
        )
    return out


def _report_blockers(
    blocking: Sequence[dict[str, Any]], names: dict[str, dict[int, str]]
) -> list[dict[str, Any]]:
    for b in blocking:
        subject = b.get("subject", {})
        b["project_name"] = names["p"].get(subject.get("project"), "") if "project" in subject else ""
        b["institution_name"] = (
            names["i"].get(subject.get("institution"), "") if "institution" in subject else ""
        )
    return list(blocking)


def rule_applies(rule: dict[str, Any], funding_round: str | None, needs: Sequence[str]) -> bool:
    """Return True when an event group rule covers a project (any project when it names no round or need)."""
    rounds, wanted = rule.get("rounds") or [], rule.get("needs") or []
    if not rounds and not wanted:
        return True
    return funding_round in rounds or bool(set(needs or []) & set(wanted))


def group_rules_for(
    session: Session, event: Event, projects: Sequence[int], institutions: Sequence[int]
) -> list[GroupRule]:
    """Turn the event's group rules into the solver's: one per covered project, over invited columns."""
    rules = event.group_rules or []
    if not rules:
        return []
    kinds = dict(
        session.execute(
            select(Institution.id, Institution.kind).where(Institution.id.in_(institutions))
        ).all()
    )
    info = {
        pid: (rnd.name if rnd is not None else None, list(needs or []))
        for pid, rnd, needs in session.execute(
            select(Project.id, Project.funding_round, Project.needs).where(Project.id.in_(projects))
        )
    }
    out: list[GroupRule] = []
    for rule in rules:
        members = tuple(
            c for c, i in enumerate(institutions) if i in kinds and kinds[i].name in (rule.get("kinds") or [])
        )
        for r, p in enumerate(projects):
            if rule_applies(rule, *info.get(p, (None, []))):
                out.append(GroupRule(r, members, int(rule.get("at_least", 1)), str(rule.get("label", ""))))
    return out


def run_plan(session: Session, event: Event, service: MatchingService) -> dict[str, Any]:
    """Plan the event: replace its meetings with the optimal plan and timetable, or explain why not.

    An infeasible event keeps no meetings (never a partial plan); its report lists the blockers.
    """
    start = time.perf_counter()
    projects, institutions = invited(event)
    names = {
        "p": dict(session.execute(select(Project.id, Project.name).where(Project.id.in_(projects))).all()),
        "i": dict(
            session.execute(
                select(Institution.id, Institution.name).where(Institution.id.in_(institutions))
            ).all()
        ),
    }
    session.execute(delete(Meeting).where(Meeting.event_id == event.id))
    event.meetings = []
    report: dict[str, Any]
    if not projects or not institutions:
        report = {
            "status": "infeasible",
            "blocking": [
                {
                    "constraint": "invites",
                    "subject": {},
                    "message_zh": "请先邀请项目和机构：至少各一个。",
                    "message_en": "Invite at least one project and one institution first.",
                }
            ],
        }
        event.plan_report, event.status = report, EventStatus.DRAFT
        return report
    prow = {p: r for r, p in enumerate(projects)}
    icol = {i: c for c, i in enumerate(institutions)}
    allowed = np.ones((len(projects), len(institutions)), dtype=bool)
    for c in conflicts_of(session, event):
        if c.project_id in prow and c.institution_id in icol:
            allowed[prow[c.project_id], icol[c.institution_id]] = False
    found = pair_scores(service, projects, institutions)
    scores = np.array([[round(found.get((p, i), 0.0), 2) for i in institutions] for p in projects])
    unavailable: dict[Hashable, set[int]] = {}
    caps, free_p = [], {}
    for inv in event.invites:
        bad = {int(t) for t in inv.unavailable_slots or [] if 0 <= int(t) < event.slots}
        if inv.project_id is not None:
            unavailable[("p", inv.project_id)] = bad
            free_p[inv.project_id] = event.slots - len(bad)
    for inv in event.invites:
        if inv.institution_id is not None:
            bad = unavailable.setdefault(
                ("i", inv.institution_id),
                {int(t) for t in inv.unavailable_slots or [] if 0 <= int(t) < event.slots},
            )
            cap = inv.capacity if inv.capacity is not None else event.institution_capacity
            caps.append(min(cap, event.slots - len(bad)))
    required = [(prow[p], icol[i]) for p, i in (event.required or []) if p in prow and i in icol]
    problem = AssignmentProblem(
        scores=scores,
        allowed=allowed,
        required=required,
        capacity=np.array(caps),
        project_min=event.project_min,
        project_max=np.array([min(event.project_max, free_p[p]) for p in projects]),
        slots=event.slots,
        max_total=event.slots * event.tables if event.tables else None,  # each slot seats `tables`
        groups=group_rules_for(session, event, projects, institutions),
    )
    result = solve_assignment(problem)
    if result.status != "optimal":
        report = {
            "status": "infeasible",
            "blocking": _report_blockers([b.as_dict(projects, institutions) for b in result.blocking], names),
        }
        event.plan_report, event.status = report, EventStatus.DRAFT
        return report
    pairs = [(projects[r], institutions[c]) for r, c in result.pairs]
    # A project's mentors (创业导师) sit in on its meetings: one person is never in two at once.
    mentors: dict[int, list[int]] = {}
    for expert_id, project_id in session.execute(
        select(ExpertAssignment.expert_id, ExpertAssignment.project_id).where(
            ExpertAssignment.project_id.in_(projects), ExpertAssignment.role == ExpertRole.MENTOR
        )
    ):
        mentors.setdefault(project_id, []).append(expert_id)
    parties = [(("p", p), ("i", i), *(("x", e) for e in mentors.get(p, ()))) for p, i in pairs]
    tt = build_timetable(parties, event.slots, event.tables, unavailable)
    if tt.status != "ok":
        blocking = []
        for b in tt.blocking:
            d = b.as_dict()
            kind, _sep, ident = d["subject"].get("party", "").strip("()").partition(", ")
            label = {"'p'": "项目", "'i'": "机构", "'x'": "创业导师"}.get(kind, "")
            d["message_zh"] = d["message_zh"].replace(d["subject"].get("party", "\0"), f"{label} {ident}")
            blocking.append(d)
        report = {"status": "infeasible", "blocking": blocking}
        event.plan_report, event.status = report, EventStatus.DRAFT
        return report
    reasons = _reasons(service, pairs)
    for (p, i), slot, table in zip(pairs, tt.slots, tt.tables, strict=True):
        event.meetings.append(
            Meeting(
                project_id=p,
                institution_id=i,
                slot=slot,
                table_no=table,
                score=float(scores[prow[p], icol[i]]),
                reasons=reasons.get((p, i), []),
            )
        )
    per_p = np.bincount([prow[p] for p, _ in pairs], minlength=len(projects))
    report = {
        "status": "optimal",
        "objective": round(float(sum(scores[prow[p], icol[i]] for p, i in pairs)), 2),
        "meetings": len(pairs),
        "min_per_project": int(per_p.min()),
        "mean_per_project": round(float(per_p.mean()), 2),
        "without_meeting": int((per_p == 0).sum()),
        "proven_optimal": result.proven_optimal,
        "seconds": round(time.perf_counter() - start, 2),
        "blocking": [],
    }
    event.plan_report, event.status = report, EventStatus.PLANNED
    return report


def _reasons(service: MatchingService, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
    """Return the ranked list's match reasons (text) of each planned pair."""
    wanted: dict[tuple[int, str], list[int]] = defaultdict(list)
    for p, i in pairs:
        try:
            wanted[(p, service.institution(i).side)].append(i)
        except KeyError:
            continue
    out: dict[tuple[int, int], list[str]] = {}
    for (p, side), ids in wanted.items():
        try:
            matches = service.match_project(p, side, k=len(ids), filters=Filters(allowed_ids=frozenset(ids)))  # type: ignore[arg-type]
        except KeyError:
            continue
        for m in matches:
            out[(p, m.id)] = [r.text for r in m.reasons]
    return out


def mark_held(session: Session, event: Event, actor: Any) -> dict[str, int]:
    """After the event: every meeting becomes a connection at 已会谈 (through the pipeline's moves).

    A pair with no connection is opened (已申请对接 by the contest), accepted and met; one further back is
    moved forward to 已会谈; one at or past 已会谈 is only linked. Returns counts by what happened.
    """
    from app.pipeline.service import connect, pair
    from app.pipeline.states import transition

    counts = {"created": 0, "moved": 0, "linked": 0, "skipped": 0}
    note = f"对接活动「{event.name}」会谈"
    for m in event.meetings:
        c = pair(session, m.project_id, m.institution_id)
        if c is None or c.stage in (S.RECOMMENDED, S.REFUSED):
            counts["created" if c is None else "moved"] += 1
            c, _ev = connect(session, m.project_id, m.institution_id, "request", actor, note=note)
            session.flush()
        elif c.stage in (S.REQUESTED, S.ACCEPTED):
            counts["moved"] += 1
        elif c.stage is S.TERMINATED:
            counts["skipped"] += 1
            continue
        else:
            counts["linked"] += 1
        if c.stage is S.REQUESTED:
            transition(c, S.ACCEPTED, actor, note)
        if c.stage is S.ACCEPTED:
            transition(c, S.MET, actor, note)
        m.connection_id = c.id
        session.flush()
    event.status = EventStatus.HELD
    return counts


def slot_label(event: Event, slot: int) -> str:
    """Return a slot's name, e.g. 第 1 场（0:00-0:20 起算）."""
    start = slot * event.slot_minutes
    return f"第 {slot + 1} 场（{start // 60}:{start % 60:02d} 起，{event.slot_minutes} 分钟）"


def workbook(session: Session, event: Event) -> bytes:
    """Return the event's timetable as an Excel workbook: by slot, and by party, with match reasons."""
    p_names = dict(session.execute(select(Project.id, Project.name)).all())
    i_names = dict(session.execute(select(Institution.id, Institution.name)).all())
    wb = Workbook()
    ws = wb.active
    ws.title = "日程"
    head = ["时段", "桌号", "项目编号", "项目", "机构编号", "机构", "匹配分", "匹配理由"]
    append_row(
        ws,
        [f"{event.name}（{event.held_on or '日期待定'}，{'线上' if event.online else event.place or ''}）"],
    )
    append_row(ws, head)
    meetings = sorted(event.meetings, key=lambda m: (m.slot, m.table_no))
    for m in meetings:
        append_row(
            ws,
            [
                slot_label(event, m.slot),
                m.table_no + 1,
                m.project_id,
                p_names.get(m.project_id, ""),
                m.institution_id,
                i_names.get(m.institution_id, ""),
                round(m.score, 1),
                "；".join(m.reasons),
            ],
        )
    by_party = wb.create_sheet("按参与方")
    append_row(by_party, ["参与方", "名称", "时段", "桌号", "对方", "匹配分", "匹配理由"])
    rows = []
    for m in meetings:
        reasons = "；".join(m.reasons)
        project, institution = p_names.get(m.project_id, ""), i_names.get(m.institution_id, "")
        rows.append(("项目", project, m.slot, m.table_no, institution, m.score, reasons))
        rows.append(("机构", institution, m.slot, m.table_no, project, m.score, reasons))
    for kind, name, slot, table, other, score, reasons in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        append_row(
            by_party, [kind, name, slot_label(event, slot), table + 1, other, round(score, 1), reasons]
        )
    for sheet, widths in ((ws, [30, 6, 9, 30, 9, 30, 8, 80]), (by_party, [8, 30, 30, 6, 30, 8, 80])):
        for col, w in zip("ABCDEFGH", widths, strict=False):
            sheet.column_dimensions[col].width = w
        for cell in sheet[2 if sheet is ws else 1]:
            cell.font = Font(bold=True)
        for row in sheet.iter_rows(min_row=1):
            row[-1].alignment = Alignment(wrap_text=True, vertical="top")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- experts
def expert_scores(experts: Sequence[Expert], projects: Sequence[Project], role: ExpertRole) -> np.ndarray:
    """Return (projects x experts) fit: judges by field (industry), mentors by need kind and field."""
    out = np.zeros((len(projects), len(experts)))
    for r, p in enumerate(projects):
        need_kinds = {NEED_EXPERT_KIND[n].name for n in p.needs or [] if n in NEED_EXPERT_KIND}
        for c, e in enumerate(experts):
            field = 1.0 if p.industry in (e.fields or []) else 0.0
            if role is ExpertRole.JUDGE:
                out[r, c] = 10.0 * field + 1.0
            else:
                out[r, c] = 10.0 * len(need_kinds & set(e.kinds or [])) + 3.0 * field
    return out


#: Legal-form suffixes that say nothing about who a company is (longest first).
_COMPANY_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团公司", "集团", "公司")


def _company_core(name: str) -> str:
    """Return a company name without its legal suffix; empty when too short to identify anyone."""
    core = name.strip()
    for suffix in _COMPANY_SUFFIXES:
        if core.endswith(suffix):
            core = core[: -len(suffix)]
            break
    return core if len(core) >= 4 else ""


def expert_conflicts(
    session: Session, experts: Sequence[Expert], projects: Sequence[Project]
) -> dict[tuple[int, int], str]:
    """Return (project id, expert id) -> cause for every pair that must not be assigned.

    A judge or mentor whose employer institution has a connection with the project (any stage), who
    works for the project's own company (an employer outside the service whose name, without its legal
    suffix, stands in the project's name, description or team), or a declared conflict between the
    person and the project.
    """
    pids = [p.id for p in projects]
    out: dict[tuple[int, int], str] = {}
    names = {e.id: _company_core(e.employer or "") for e in experts}  # employers outside the service
    for p in projects:
        text = " ".join(x for x in (p.name, p.description, p.team) if x)
        for e in experts:
            core = names[e.id]
            if core and core in text:
                out[(p.id, e.id)] = f"任职单位「{core}」即项目所在单位"
    by_inst: dict[int, list[Expert]] = defaultdict(list)
    for e in experts:
        if e.employer_institution_id is not None:
            by_inst[e.employer_institution_id].append(e)
    if by_inst and pids:
        rows = session.execute(
            select(Connection.project_id, Connection.institution_id, Connection.stage).where(
                Connection.project_id.in_(pids), Connection.institution_id.in_(list(by_inst))
            )
        ).all()
        for project_id, institution_id, stage in rows:
            for e in by_inst[institution_id]:
                out[(project_id, e.id)] = f"所在机构与该项目已有对接（{stage.value}）"
    declared = session.scalars(
        select(Conflict).where(Conflict.expert_id.in_([e.id for e in experts]), Conflict.project_id.in_(pids))
    ).all()
    for c in declared:
        out[(c.project_id, c.expert_id)] = c.cause  # type: ignore[index]
    return out


def assign_experts(
    session: Session,
    contest_id: int,
    role: ExpertRole,
    coverage: int,
    project_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Assign judges or mentors to a contest's projects; replace that contest's assignments of the role.

    Judges: every project gets exactly ``coverage`` judges. Mentors: projects with stated needs get
    ``coverage`` mentors. Load limits are each expert's capacity; conflicts are never assigned.
    """
    stmt = select(Project).where(Project.contest_id == contest_id).order_by(Project.id)
    if project_ids is not None:
        stmt = stmt.where(Project.id.in_(project_ids))
    projects = list(session.scalars(stmt))
    if role is not ExpertRole.JUDGE:  # mentors and 辅导专家 serve the projects that stated needs
        projects = [p for p in projects if p.needs]
    experts = [e for e in session.scalars(select(Expert).order_by(Expert.id)) if role.name in (e.roles or [])]
    if not projects or not experts:
        return {
            "status": "infeasible",
            "blocking": [
                {
                    "constraint": "experts",
                    "subject": {},
                    "message_zh": "没有可分配的项目或专家：请先添加该角色的专家。"
                    if not experts
                    else "该赛事没有需要分配的项目。",
                }
            ],
            "assigned": 0,
        }
    conflicts = expert_conflicts(session, experts, projects)
    mask = np.zeros((len(projects), len(experts)), dtype=bool)
    col = {e.id: c for c, e in enumerate(experts)}
    row = {p.id: r for r, p in enumerate(projects)}
    for (p, e), _cause in conflicts.items():
        if p in row and e in col:
            mask[row[p], col[e]] = True
    scores = expert_scores(experts, projects, role)
    result = assign_reviewers(scores, mask, [e.capacity for e in experts], coverage)
    if result.status != "optimal":
        names = {"p": {p.id: p.name for p in projects}, "i": {}}
        blocking = [b.as_dict([p.id for p in projects], [e.id for e in experts]) for b in result.blocking]
        for b in blocking:
            # the solver's columns are experts here
            b["message_zh"] = b["message_zh"].replace("机构", "专家")
        return {"status": "infeasible", "blocking": _report_blockers(blocking, names), "assigned": 0}
    session.execute(
        delete(ExpertAssignment).where(
            ExpertAssignment.contest_id == contest_id,
            ExpertAssignment.role == role,
            ExpertAssignment.project_id.in_([p.id for p in projects]),
        )
    )
    for r, c in result.pairs:
        session.add(
            ExpertAssignment(
                expert_id=experts[c].id,
                project_id=projects[r].id,
                contest_id=contest_id,
                role=role,
                score=float(scores[r, c]),
            )
        )
    return {
        "status": "optimal",
        "assigned": len(result.pairs),
        "projects": len(projects),
        "conflicts_avoided": int(mask.sum()),
        "blocking": [],
    }
