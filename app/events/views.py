"""Event pages (对接活动): create an event for contests, invite, see conflicts with their causes, plan,
see and print the timetable, export it to Excel, and turn meetings into connections after the event.
Also the experts (judges, mentors) and their assignment, and an institution's registration choices.

The secretariat sees every event; an organiser only events whose contests they all run, and only
invites projects of those contests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.access import (
    audit,
    current_user,
    deny,
    is_secretariat,
    login_required,
    organiser_contest_ids,
    roles_required,
)
from app.events import files, planning
from app.events import registration as event_registration
from app.extensions import db
from app.imports import read_rows
from app.params import institution_filter, project_filter
from app.schemas import CONTROL_MESSAGE, MAX_ID, InputError, has_control
from app.services import institution_query, project_query
from app.uploads import check_upload
from app.web import records
from app.web.lists import send_xlsx
from models import Award, Contest, Institution, Project
from models.enums import PROJECT_NEEDS, SIDES, FundingRound, InstitutionKind, Role
from models.events import (
    Conflict,
    ConflictSource,
    Event,
    EventContest,
    EventInvite,
    Expert,
    ExpertAssignment,
    ExpertKind,
    ExpertRole,
    InstitutionRegistration,
    RegistrationChoice,
)
from models.pipeline import Party

bp = Blueprint("events", __name__, url_prefix="/events")
R = TypeVar("R")


@bp.before_request
def _refuse_control_characters() -> None:
    """Refuse a posted form whose text holds a control character (one rule for every events form)."""
    if request.method == "POST" and any(
        has_control(v.strip(), multiline=True) for values in request.form.listvalues() for v in values
    ):
        abort(422, description=f"提交的内容{CONTROL_MESSAGE}，请删除后重新提交")


STAFF = (Role.ADMIN, Role.ORGANISER)
MAX_SLOTS = 48
MAX_INVITES = 2000
_INT = re.compile(r"\A[0-9]{1,9}\Z")


class FormError(ValueError):
    """Bad form input: field -> Chinese message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _int(form: Any, key: str, label: str, lo: int, hi: int, default: int | None = None) -> int | None:
    raw = (form.get(key) or "").strip()
    if not raw:
        if default is None:
            return None
        return default
    if not _INT.match(raw):
        raise FormError({key: f"{label}：应为 {lo} 到 {hi} 之间的整数"})
    value = int(raw)
    if not lo <= value <= hi:
        raise FormError({key: f"{label}：应为 {lo} 到 {hi} 之间的整数"})
    return value


def _id_list(text: str, key: str, label: str, limit: int = MAX_INVITES) -> list[int]:
    parts = [t for t in re.split(r"[\s,，;；、]+", text or "") if t]
    if len(parts) > limit:
        raise FormError({key: f"{label}：一次最多 {limit} 个"})
    bad = [t for t in parts if not _INT.match(t)]
    if bad:
        raise FormError({key: f"{label}：「{bad[0][:20]}」不是编号（应为正整数，用逗号或空格分隔）"})
    return list(dict.fromkeys(int(t) for t in parts))


def _slots(text: str, n_slots: int, key: str) -> list[int]:
    """Parse 1-based slot numbers ("1, 3") into sorted 0-based slots."""
    nums = _id_list(text, key, "不可用时段", n_slots)
    bad = [n for n in nums if not 1 <= n <= n_slots]
    if bad:
        raise FormError({key: f"不可用时段：{bad[0]} 不在 1 到 {n_slots} 之间"})
    return sorted(n - 1 for n in nums)


def _scope() -> set[int] | None:
    """Contest ids the user may plan for: None means every contest (the secretariat)."""
    return organiser_contest_ids(current_user())


def _event_or_404(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None:
        abort(404, description="对接活动不存在")
    scope = _scope()
    contest_ids = {c.contest_id for c in event.contests}
    if scope is not None and (not contest_ids or not contest_ids <= scope):
        deny(f"event {event_id} is for contests outside the organiser's", "只能管理本人负责赛事的对接活动")
    return event


def _actor() -> Any:
    from app.pipeline.states import Actor

    user = current_user()
    assert user is not None
    kind = Party.SECRETARIAT if is_secretariat(user) else Party.ORGANISER
    return Actor(kind, user.id, user.display_name)


def _visible_events() -> list[Event]:
    events = list(db.session.scalars(select(Event).order_by(Event.created_at.desc(), Event.id.desc())))
    scope = _scope()
    if scope is None:
        return events
    return [e for e in events if e.contests and {c.contest_id for c in e.contests} <= scope]


# ---------------------------------------------------------------------------------------------- events
@bp.get("/")
@roles_required(*STAFF)
def list_events() -> Any:
    return render_template("events/list.html", events=_visible_events())


def _event_values(form: Any, allowed_contests: set[int]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    name = (form.get("name") or "").strip()
    if not name:
        errors["name"] = "活动名称：必填"
    elif len(name) > 200:
        errors["name"] = "活动名称：最多 200 字"
    values["name"] = name
    raw_date = (form.get("held_on") or "").strip()
    values["held_on"] = None
    if raw_date:
        try:
            values["held_on"] = date.fromisoformat(raw_date)
        except ValueError:
            errors["held_on"] = "活动日期：应为 YYYY-MM-DD"
    values["place"] = (form.get("place") or "").strip()[:200] or None
    values["online"] = form.get("online") == "1"
    for key, label, lo, hi, default in (
        ("slots", "时段数", 1, MAX_SLOTS, 6),
        ("slot_minutes", "每场时长（分钟）", 5, 240, 20),
        ("institution_capacity", "每家机构最多会谈数", 0, MAX_SLOTS, 6),
        ("project_min", "每个项目最少会谈数", 0, MAX_SLOTS, 1),
        ("project_max", "每个项目最多会谈数", 0, MAX_SLOTS, 3),
    ):
        try:
            values[key] = _int(form, key, label, lo, hi, default)
        except FormError as exc:
            errors.update(exc.errors)
    try:
        values["tables"] = _int(form, "tables", "桌数", 1, 1000)
    except FormError as exc:
        errors.update(exc.errors)
    if "project_min" in values and "project_max" in values and values["project_min"] > values["project_max"]:
        errors["project_min"] = "每个项目最少会谈数：不能大于最多会谈数"
    raw_ids = form.getlist("contest_ids")
    ids = [int(x) for x in raw_ids if _INT.match(x)]
    if len(ids) != len(raw_ids) or not ids:
        errors["contest_ids"] = "所属赛事：至少选择一个赛事"
    elif not set(ids) <= allowed_contests:
        errors["contest_ids"] = "所属赛事：只能选择本人负责的赛事"
    values["contest_ids"] = ids
    if errors:
        raise FormError(errors)
    return values


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*STAFF)
def new_event() -> Any:
    contests = records.my_contests()
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "slots": 6,
        "slot_minutes": 20,
        "institution_capacity": 6,
        "project_min": 1,
        "project_max": 3,
    }
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in request.form}
        values["contest_ids"] = request.form.getlist("contest_ids")
        try:
            clean = _event_values(request.form, {c.id for c in contests})
        except FormError as exc:
            errors = exc.errors
        else:
            user = current_user()
            contest_ids = clean.pop("contest_ids")
            event = Event(**clean, created_by_user_id=user.id if user else None)
            event.contests = [EventContest(contest_id=c) for c in contest_ids]
            db.session.add(event)
            db.session.flush()
            audit("event_create", "event", event.id, name=event.name, contests=contest_ids)
            db.session.commit()
            flash("对接活动已创建：请邀请项目和机构", "ok")
            return redirect(url_for("events.detail", event_id=event.id))
    return render_template("events/form.html", v=values, errors=errors, contests=contests), (
        400 if errors else 200
    )


@bp.get("/<int:event_id>")
@roles_required(*STAFF)
def detail(event_id: int) -> Any:
    event = _event_or_404(event_id)
    projects, institutions = planning.invited(event)
    p_names = dict(db.session.execute(select(Project.id, Project.name).where(Project.id.in_(projects))).all())
    i_names = dict(
        db.session.execute(
            select(Institution.id, Institution.name).where(Institution.id.in_(institutions))
        ).all()
    )
    conflicts = planning.conflicts_of(db.session, event)
    ids = [c.contest_id for c in event.contests]
    contest_names = {c.id: c.label for c in db.session.scalars(select(Contest).where(Contest.id.in_(ids)))}
    return render_template(
        "events/detail.html",
        event=event,
        p_names=p_names,
        i_names=i_names,
        conflicts=conflicts,
        contest_names=contest_names,
        report=event.plan_report,
        LABELS=planning.CONSTRAINT_LABELS,
        KINDS=InstitutionKind.labels(),
        ROUNDS=FundingRound.labels(),
        NEEDS=PROJECT_NEEDS,
    )


def _back(event: Event, message: str, category: str = "ok") -> Any:
    flash(message, category)
    return redirect(url_for("events.detail", event_id=event.id))


@bp.post("/<int:event_id>/invite")
@roles_required(*STAFF)
def invite(event_id: int) -> Any:
    """Invite projects and institutions: by id, the event's contests' projects, or from ranked lists."""
    event = _event_or_404(event_id)
    contest_ids = {c.contest_id for c in event.contests}
    have_p = {i.project_id for i in event.invites if i.project_id is not None}
    have_i = {i.institution_id for i in event.invites if i.institution_id is not None}
    mode = request.form.get("mode", "ids")
    try:
        if mode == "contest_projects":
            limit = _int(request.form, "limit", "邀请数量", 1, MAX_INVITES, 50)
            try:  # the showcase's filters (award, group, industry, region, stage), same parser as the lists
                f = project_filter(request.form)
            except InputError as exc:
                raise FormError(exc.fields) from None
            stmt = project_query(f, Project.id).add_columns(Project.award)
            rows = db.session.execute(stmt.where(Project.contest_id.in_(contest_ids))).all()
            rank = {a: n for n, a in enumerate(Award)}  # best award first
            project_ids = [p for p, _a in sorted(rows, key=lambda r: (rank[r[1]], r[0]))][:limit]
            institution_ids: list[int] = []
        elif mode == "filtered_institutions":
            limit = _int(request.form, "limit", "邀请数量", 1, MAX_INVITES, 50)
            try:  # the directory's filters (kind, industry, region), same parser as the lists
                fi = institution_filter(request.form)
            except InputError as exc:
                raise FormError(exc.fields) from None
            stmt = institution_query(fi, Institution.id).order_by(Institution.id).limit(limit)
            institution_ids = list(db.session.scalars(stmt))
            project_ids = []
        elif mode == "ranked_institutions":
            per = _int(request.form, "per_project", "每个项目取前几名", 1, 20, 3)
            from app.services import get_matching

            service = get_matching()
            institution_ids = []
            for p in sorted(have_p):
                for side in SIDES:
                    try:
                        institution_ids += service.rank_institutions(p, side, k=per)  # type: ignore[arg-type]
                    except KeyError:
                        continue
            institution_ids = list(dict.fromkeys(institution_ids))
            project_ids = []
            if not have_p:
                raise FormError({"mode": "请先邀请项目，再按推荐名单邀请机构"})
        elif mode == "file":
            project_ids, institution_ids = _ids_from_file()
        else:
            project_ids = _id_list(request.form.get("project_ids", ""), "project_ids", "项目编号")
            institution_ids = _id_list(request.form.get("institution_ids", ""), "institution_ids", "机构编号")
        found_p = dict(
            db.session.execute(
                select(Project.id, Project.contest_id).where(Project.id.in_(project_ids))
            ).all()
        )
        missing = [p for p in project_ids if p not in found_p]
        if missing:
            raise FormError({"project_ids": f"项目编号：{missing[0]} 不存在"})
        outside = [p for p in project_ids if found_p[p] not in contest_ids]
        if outside:
            raise FormError({"project_ids": f"项目编号：{outside[0]} 不属于本活动的赛事"})
        found_i = set(db.session.scalars(select(Institution.id).where(Institution.id.in_(institution_ids))))
        missing = [i for i in institution_ids if i not in found_i]
        if missing:
            raise FormError({"institution_ids": f"机构编号：{missing[0]} 不存在"})
        new_p = [p for p in project_ids if p not in have_p]
        new_i = [i for i in institution_ids if i not in have_i]
        if len(have_p) + len(new_p) > MAX_INVITES or len(have_i) + len(new_i) > MAX_INVITES:
            raise FormError({"mode": f"每个活动最多邀请 {MAX_INVITES} 个项目和 {MAX_INVITES} 家机构"})
    except FormError as exc:
        return _back(event, "；".join(exc.errors.values()), "error")
    for p in new_p:
        event.invites.append(EventInvite(project_id=p, unavailable_slots=[]))
    for i in new_i:
        event.invites.append(EventInvite(institution_id=i, unavailable_slots=[]))
    audit("event_invite", "event", event.id, projects=new_p, institutions=new_i)
    db.session.commit()
    return _back(event, f"已邀请 {len(new_p)} 个项目、{len(new_i)} 家机构")


def _upload_rows() -> list[Any]:
    """The rows of the uploaded CSV or XLSX file (checked, then parsed by the import reader)."""
    upload = request.files.get("file")
    try:
        data = check_upload(upload, ("csv", "xlsx"), files.MAX_FILE_BYTES, "file", "文件")
        return read_rows(upload.filename or "", data)  # type: ignore[union-attr]
    except InputError as exc:  # ImportFileError too
        raise FormError({"file": next(iter(exc.fields.values()), exc.message)}) from exc


def _ids_from_file() -> tuple[list[int], list[int]]:
    """(project ids, institution ids) named in the uploaded invite list (项目编号/机构编号 or names)."""
    rows = _upload_rows()
    try:
        return files.invite_ids(db.session, rows)
    except files.RowErrors as exc:
        raise FormError({"file": f"邀请名单：{exc}"}) from exc


def _one_of(rows: Iterable[R], ident: int, missing: str) -> R:
    """Return the row of an event's invites or conflicts with this id, or answer 404 saying `missing`."""
    found = next((row for row in rows if getattr(row, "id", None) == ident), None)
    if found is None:
        abort(404, description=missing)
    return found


@bp.post("/<int:event_id>/invites/<int:invite_id>")
@roles_required(*STAFF)
def update_invite(event_id: int, invite_id: int) -> Any:
    """Set an invitee's unavailable slots (1-based) and, for an institution, its capacity; or remove it."""
    event = _event_or_404(event_id)
    inv = _one_of(event.invites, invite_id, "邀请不存在")
    if request.form.get("remove") == "1":
        event.invites.remove(inv)
        audit("event_uninvite", "event", event.id, invite=invite_id)
        db.session.commit()
        return _back(event, "已移除邀请")
    try:
        slots = _slots(request.form.get("unavailable", ""), event.slots, "unavailable")
        cap = _int(request.form, "capacity", "会谈上限", 0, MAX_SLOTS) if inv.institution_id else None
    except FormError as exc:
        return _back(event, "；".join(exc.errors.values()), "error")
    inv.unavailable_slots = slots
    if inv.institution_id is not None:
        inv.capacity = cap
    audit("event_invite_update", "event", event.id, invite=invite_id, unavailable=slots, capacity=cap)
    db.session.commit()
    return _back(event, "已保存")


def _pair_form(event: Event) -> tuple[int, int]:
    projects, institutions = planning.invited(event)
    p = _int(request.form, "project_id", "项目编号", 1, MAX_ID)
    i = _int(request.form, "institution_id", "机构编号", 1, MAX_ID)
    if p is None or p not in projects:
        raise FormError({"project_id": "项目编号：应为本活动已邀请的项目"})
    if i is None or i not in institutions:
        raise FormError({"institution_id": "机构编号：应为本活动已邀请的机构"})
    return p, i


@bp.post("/<int:event_id>/conflicts")
@roles_required(*STAFF)
def add_conflict(event_id: int) -> Any:
    """Declare a pair that must never meet, with its cause; or require a pair (kind=required)."""
    event = _event_or_404(event_id)
    try:
        p, i = _pair_form(event)
        cause = (request.form.get("cause") or "").strip()
        if request.form.get("kind") == "required":
            if any(
                c.project_id == p and c.institution_id == i for c in planning.conflicts_of(db.session, event)
            ):
                raise FormError({"kind": "该组合存在利益冲突，不能设为必须会谈"})
            if [p, i] not in (event.required or []):
                event.required = [*(event.required or []), [p, i]]
            audit("event_require", "event", event.id, project=p, institution=i)
            db.session.commit()
            return _back(event, "已设为必须会谈")
        if not cause:
            raise FormError({"cause": "回避原因：必填（如持股关系、曾评审该项目、项目方拒绝）"})
        if len(cause) > 300:
            raise FormError({"cause": "回避原因：最多 300 字"})
    except FormError as exc:
        return _back(event, "；".join(exc.errors.values()), "error")
    if [p, i] in (event.required or []):
        event.required = [r for r in event.required if r != [p, i]]
    event.conflicts.append(
        Conflict(project_id=p, institution_id=i, source=ConflictSource.DECLARED, cause=cause)
    )
    audit("event_conflict", "event", event.id, project=p, institution=i, cause=cause)
    db.session.commit()
    return _back(event, "已登记回避")


@bp.post("/<int:event_id>/conflicts/<int:conflict_id>/delete")
@roles_required(*STAFF)
def delete_conflict(event_id: int, conflict_id: int) -> Any:
    event = _event_or_404(event_id)
    c = _one_of(event.conflicts, conflict_id, "回避记录不存在")
    event.conflicts.remove(c)
    audit("event_conflict_delete", "event", event.id, conflict=conflict_id)
    db.session.commit()
    return _back(event, "已撤销回避")


MAX_GROUP_RULES = 20


def rule_text(rule: dict[str, Any]) -> str:
    """A group rule in Chinese, e.g. 寻求 银行贷款 的项目：至少会谈 1 家 银行."""
    kinds = "、".join(
        InstitutionKind[k].value for k in rule.get("kinds", []) if k in InstitutionKind.__members__
    )
    scope = [FundingRound[r].value for r in rule.get("rounds", []) if r in FundingRound.__members__]
    scope += list(rule.get("needs", []))
    who = f"寻求{'或'.join(scope)}的项目" if scope else "每个项目"
    return f"{who}：至少会谈 {rule.get('at_least', 1)} 家{kinds}"


@bp.post("/<int:event_id>/group-rules")
@roles_required(*STAFF)
def add_group_rule(event_id: int) -> Any:
    """Add a group rule: projects with these rounds or needs meet at least n institutions of these kinds."""
    event = _event_or_404(event_id)
    try:
        kinds = request.form.getlist("kinds")
        rounds = request.form.getlist("rounds")
        needs = request.form.getlist("needs")
        if not kinds:
            raise FormError({"kinds": "分组规则：请至少选择一类机构"})
        if not set(kinds) <= set(InstitutionKind.labels()):
            raise FormError({"kinds": "分组规则：不认识的机构类型"})
        if not set(rounds) <= set(FundingRound.labels()):
            raise FormError({"rounds": "分组规则：不认识的融资方式"})
        if not set(needs) <= set(PROJECT_NEEDS):
            raise FormError({"needs": "分组规则：不认识的项目需求"})
        at_least = _int(request.form, "at_least", "至少会谈几家", 1, MAX_SLOTS, 1)
        if len(event.group_rules or []) >= MAX_GROUP_RULES:
            raise FormError({"kinds": f"分组规则：每个活动最多 {MAX_GROUP_RULES} 条"})
    except FormError as exc:
        return _back(event, "；".join(exc.errors.values()), "error")
    rule: dict[str, Any] = {
        "kinds": [InstitutionKind.from_label(k).name for k in InstitutionKind.labels() if k in kinds],
        "rounds": [FundingRound.from_label(r).name for r in FundingRound.labels() if r in rounds],
        "needs": [n for n in PROJECT_NEEDS if n in needs],
        "at_least": at_least,
    }
    rule["label"] = rule_text(rule)
    event.group_rules = [*(event.group_rules or []), rule]
    audit("event_group_rule", "event", event.id, rule=rule)
    db.session.commit()
    return _back(event, f"已添加分组规则：{rule['label']}")


@bp.post("/<int:event_id>/group-rules/<int:index>/delete")
@roles_required(*STAFF)
def delete_group_rule(event_id: int, index: int) -> Any:
    event = _event_or_404(event_id)
    rules = list(event.group_rules or [])
    if not 0 <= index < len(rules):
        abort(404, description="分组规则不存在")
    removed = rules.pop(index)
    event.group_rules = rules
    audit("event_group_rule_delete", "event", event.id, rule=removed)
    db.session.commit()
    return _back(event, "已删除分组规则")


@bp.post("/<int:event_id>/plan")
@roles_required(*STAFF)
def plan(event_id: int) -> Any:
    """Run the global assignment and the timetable; an infeasible event explains itself."""
    from app.services import get_matching

    event = _event_or_404(event_id)
    report = planning.run_plan(db.session, event, get_matching())
    audit("event_plan", "event", event.id, status=report["status"], meetings=report.get("meetings", 0))
    db.session.commit()
    if report["status"] == "optimal":
        return _back(event, f"排程完成：{report['meetings']} 场会谈，总匹配分 {report['objective']}")
    return _back(event, "无法排程：请按下方提示放宽约束", "error")


@bp.get("/<int:event_id>/timetable")
@roles_required(*STAFF)
def timetable(event_id: int) -> Any:
    """The timetable: slots by tables, or one party's own (?project=ID or ?institution=ID), printable."""
    event = _event_or_404(event_id)
    p_names = dict(db.session.execute(select(Project.id, Project.name)).all())
    i_names = dict(db.session.execute(select(Institution.id, Institution.name)).all())
    meetings = sorted(event.meetings, key=lambda m: (m.slot, m.table_no))
    party = None
    for key, names in (("project", p_names), ("institution", i_names)):
        raw = request.args.get(key)
        if raw is not None:
            if not _INT.match(raw) or int(raw) not in names:
                abort(400, description=f"{'项目' if key == 'project' else '机构'}编号：不存在")
            pid = int(raw)
            meetings = [m for m in meetings if getattr(m, f"{key}_id") == pid]
            party = (key, pid, names[pid])
    grid: dict[int, list[Any]] = {}
    for m in meetings:
        grid.setdefault(m.slot, []).append(m)
    return render_template(
        "events/timetable.html",
        event=event,
        grid=grid,
        party=party,
        p_names=p_names,
        i_names=i_names,
        slot_label=lambda s: planning.slot_label(event, s),
    )


@bp.get("/<int:event_id>/export.xlsx")
@roles_required(*STAFF)
def export(event_id: int) -> Any:
    event = _event_or_404(event_id)
    if not event.meetings:
        return _back(event, "尚无排程，无法导出", "error")
    data = planning.workbook(db.session, event)
    audit("event_export", "event", event.id, meetings=len(event.meetings))
    db.session.commit()
    return send_xlsx(data, f"event-{event.id}-timetable.xlsx")


@bp.post("/<int:event_id>/held")
@roles_required(*STAFF)
def held(event_id: int) -> Any:
    """After the event: every meeting becomes a connection at 已会谈 in the follow-up pipeline."""
    from app.pipeline.states import TransitionError
    from app.schemas import InputError

    event = _event_or_404(event_id)
    if not event.meetings:
        return _back(event, "尚无排程：没有可登记的会谈", "error")
    try:
        counts = planning.mark_held(db.session, event, _actor())
    except (TransitionError, InputError) as exc:
        db.session.rollback()
        return _back(event, f"登记失败，未作任何更改：{exc}", "error")
    audit("event_held", "event", event.id, **counts)
    db.session.commit()
    return _back(
        event,
        f"已登记会谈：新建对接 {counts['created']}，推进到已会谈 {counts['moved']}，"
        f"已在已会谈或之后 {counts['linked']}，已终止未变更 {counts['skipped']}",
    )


# ---------------------------------------------------------------------------------------------- experts
@bp.route("/experts", methods=["GET", "POST"])
@roles_required(*STAFF)
def experts() -> Any:
    """List experts (judges, mentors, 技术/投资/管理 experts) and add one."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"capacity": "5", "kinds": [], "roles": []}
    if request.method == "POST":
        values = {
            k: request.form.get(k, "")
            for k in ("name", "employer_institution_id", "employer", "fields", "capacity")
        }
        values["kinds"] = request.form.getlist("kinds")
        values["roles"] = request.form.getlist("roles")
        name = values["name"].strip()
        if not name or len(name) > 80:
            errors["name"] = "姓名：必填，最多 80 字"
        try:
            employer_id = _int(request.form, "employer_institution_id", "所在机构编号", 1, MAX_ID)
            capacity = _int(request.form, "capacity", "最多负责项目数", 1, 500, 5)
        except FormError as exc:
            errors.update(exc.errors)
            employer_id = capacity = None
        if employer_id is not None and db.session.get(Institution, employer_id) is None:
            errors["employer_institution_id"] = "所在机构编号：不存在"
        kinds = [ExpertKind.from_label(k).name for k in values["kinds"] if k in ExpertKind.labels()]
        roles = [ExpertRole.from_label(r).name for r in values["roles"] if r in ExpertRole.labels()]
        if len(kinds) != len(values["kinds"]):
            errors["kinds"] = "专长类别：不认识的取值"
        if not roles or len(roles) != len(values["roles"]):
            errors["roles"] = "角色：至少选择一项"
        fields = [f for f in re.split(r"[\s,，;；、]+", values["fields"]) if f][:20]
        if not errors:
            e = Expert(
                name=name,
                employer_institution_id=employer_id,
                employer=(values["employer"] or "").strip()[:200] or None,
                fields=fields,
                kinds=kinds,
                roles=roles,
                capacity=capacity,
            )
            db.session.add(e)
            db.session.flush()
            audit("expert_create", "expert", e.id, name=name)
            db.session.commit()
            flash(f"已添加专家：{name}", "ok")
            return redirect(url_for("events.experts"))
    rows = list(db.session.scalars(select(Expert).order_by(Expert.id)))
    loads = dict(
        db.session.execute(
            select(ExpertAssignment.expert_id, func.count()).group_by(ExpertAssignment.expert_id)
        ).all()
    )
    i_names = dict(db.session.execute(select(Institution.id, Institution.name)).all())
    return render_template(
        "events/experts.html",
        experts=rows,
        loads=loads,
        i_names=i_names,
        v=values,
        errors=errors,
        KINDS=ExpertKind,
        ROLES=ExpertRole,
    ), (400 if errors else 200)


@bp.post("/experts/import")
@roles_required(*STAFF)
def import_experts() -> Any:
    """Add experts from a CSV or XLSX file: all rows or none, each bad row named in Chinese."""
    try:
        rows = _upload_rows()
        try:
            new = files.read_experts(db.session, rows)
        except files.RowErrors as exc:
            raise FormError({"file": f"专家导入：{exc}"}) from exc
    except FormError as exc:
        flash("；".join(exc.errors.values()) + "。未导入任何专家。", "error")
        return redirect(url_for("events.experts"))
    db.session.add_all(new)
    db.session.flush()
    audit("expert_import", "expert", None, rows=len(new), ids=[e.id for e in new][:50])
    db.session.commit()
    flash(f"已导入 {len(new)} 位专家", "ok")
    return redirect(url_for("events.experts"))


@bp.route("/assign", methods=["GET", "POST"])
@roles_required(*STAFF)
def assign() -> Any:
    """Assign judges or mentors to a contest's projects: coverage per project, load limits, no conflicts."""
    contests = records.my_contests()
    report: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    values = {"contest_id": "", "role": ExpertRole.JUDGE.value, "coverage": "3"}
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in values}
        try:
            contest_id = _int(request.form, "contest_id", "赛事", 1, MAX_ID)
            coverage = _int(request.form, "coverage", "每个项目的评委/导师人数", 1, 20, 3)
            if contest_id is None or contest_id not in {c.id for c in contests}:
                raise FormError({"contest_id": "赛事：请选择本人负责的赛事"})
            if values["role"] not in ExpertRole.labels():
                raise FormError({"role": f"角色：应为 {'、'.join(ExpertRole.labels())} 之一"})
        except FormError as exc:
            errors = exc.errors
        else:
            role = ExpertRole.from_label(values["role"])
            report = planning.assign_experts(db.session, contest_id, role, coverage)  # type: ignore[arg-type]
            audit("expert_assign", "contest", contest_id, role=role.name, status=report["status"])
            db.session.commit()
    contest_ids = [c.id for c in contests]
    rows = db.session.execute(
        select(ExpertAssignment, Expert.name, Project.name)
        .join(Expert, Expert.id == ExpertAssignment.expert_id)
        .join(Project, Project.id == ExpertAssignment.project_id)
        .where(ExpertAssignment.contest_id.in_(contest_ids or [-1]))
        .order_by(ExpertAssignment.contest_id, ExpertAssignment.project_id, ExpertAssignment.role)
        .limit(2000)
    ).all()
    return render_template(
        "events/assign.html",
        contests=contests,
        report=report,
        errors=errors,
        v=values,
        rows=rows,
        ROLES=ExpertRole.labels(),
        LABELS=planning.CONSTRAINT_LABELS,
    ), (400 if errors else 200)


# ---------------------------------------------------------------------------------------------- registration
@bp.route("/registration/<int:institution_id>", methods=["GET", "POST"])
@login_required
def registration(institution_id: int) -> Any:
    """An institution's 对接服务报名 choices: the secretariat, or the institution's own member."""
    user = current_user()
    inst = db.session.get(Institution, institution_id)
    if inst is None:
        abort(404, description="机构不存在")
    if not (
        is_secretariat(user)
        or (user is not None and user.role is Role.INSTITUTION and user.institution_id == inst.id)
    ):
        deny(f"registration choices of institution {institution_id}", "只能修改本机构的报名选项")
    row = db.session.get(InstitutionRegistration, inst.id)
    if request.method == "POST":
        chosen = request.form.getlist("choices")
        if not set(chosen) <= set(RegistrationChoice.labels()):
            abort(400, description="报名选项：不认识的取值")
        if row is None:
            row = InstitutionRegistration(institution_id=inst.id)
            db.session.add(row)
        row.choices = [
            RegistrationChoice.from_label(c).name for c in RegistrationChoice.labels() if c in chosen
        ]
        audit("registration_choices", "institution", inst.id, choices=row.choices)
        db.session.commit()
        flash("报名选项已保存", "ok")
        return redirect(url_for("events.registration", institution_id=inst.id))
    chosen = [RegistrationChoice[c].value for c in (row.choices if row else [])]
    return render_template(
        "events/registration.html", inst=inst, chosen=chosen, CHOICES=RegistrationChoice.labels()
    )


@bp.app_template_global("institution_event_choices")
def institution_event_choices(institution_id: int) -> list[str]:
    """The 对接服务报名 labels an institution chose, for its profile page."""
    return event_registration.labels_of(db.session, institution_id)
