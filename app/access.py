"""Who may see and change what: the one access API every page, API route and service uses.

This module is the privacy policy. What each viewer sees of a project is one of three tiers
(PROJECT_PUBLIC_FIELDS, PROJECT_MEMBER_FIELDS, PROJECT_PRIVATE_FIELDS, chosen by `project_level`); who sees
a project's contacts is `can_see_contacts` / `contact_project_ids` (the project accepted the institution,
or asked for it); an institution's contacts are for logged-in accounts (INSTITUTION_PRIVATE_FIELDS); the
text a record is ranked on holds only public fields (`project_record_text`, `institution_record_text`);
which reasons of a ranked match a viewer may read is `visible_reasons`. The ranking core's public view
of a project (matching.types.PUBLIC_HIDDEN_FIELDS) is a copy of the member tier, kept equal by
tests/app/test_privacy_policy.py.

Accounts log in with a session cookie (pages, and same-origin API calls that carry the CSRF header)
or with `Authorization: Bearer <token>` (the JSON API). Views declare their rule with `public`,
`login_required` or `roles_required(...)`; a view that declares nothing needs a login, and the access
matrix test fails on it. Object rules are the predicates below (`can_edit_project`, ...).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal, NoReturn, TypeVar

import flask_login
from flask import Flask, abort, g, has_request_context, redirect, request, url_for
from sqlalchemy import select

from app.extensions import db, login_manager
from app.pipeline.states import ACCEPTED_STAGES
from app.schemas import MAX_ID, NeedIn, ProjectIn
from embeddings.text import institution_text, project_text
from models import Connection, ConnectionStage, Institution, Need, Project
from models.accounts import ApiToken, AuditLog, User, hash_token
from models.base import utcnow
from models.enums import LabelEnum, Role
from models.pipeline import ConnectionEvent, Party

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")

#: Project fields anyone may see (the contest's publicity: 宣传展示).
PROJECT_PUBLIC_FIELDS = frozenset(
    {
        "id",
        "name",
        "group",
        "contest_id",
        "contest",
        "contest_kind",
        "award",
        "industry",
        "track",
        "province",
        "city",
        "description",
        "created_at",
        "updated_at",
    }
)
#: Project fields that need a login (what a fund needs to judge fit, but not for the open web).
PROJECT_MEMBER_FIELDS = frozenset({"stage", "amount_wan", "funding_round", "needs"})
#: Project fields behind can_see_contacts: contacts, team, IP, head count, revenue, documents.
PROJECT_PRIVATE_FIELDS = frozenset(
    {
        "contact_name",
        "contact_phone",
        "contact_email",
        "team",
        "ip",
        "employees",
        "revenue_wan",
        "documents",
        "assets_wan",
        "sme_industry",
        "ref",
        "credit_code",
        "team_lead",
        "eligibility",
    }
)
#: Institution fields that need a login.
INSTITUTION_PRIVATE_FIELDS = frozenset({"contact_name", "contact_phone", "contact_email"})

#: The project fields its ranking text is made of (embedded, indexed for BM25, quoted by match reasons):
#: showcase fields only, so that a public ranking and the quotes of its reasons draw on nothing private.
PROJECT_TEXT_FIELDS = ("name", "description", "industry", "track")
#: The institution fields its ranking text is made of (none of INSTITUTION_PRIVATE_FIELDS).
INSTITUTION_TEXT_FIELDS = ("name", "kind", "description", "industries", "stages", "services")

Level = Literal["public", "member", "private"]


# --- who is asking ---------------------------------------------------------------------------------


def current_user() -> User | None:
    """Return the logged-in, approved account of this request (session or API token), or None."""
    if not has_request_context():
        return None
    if "account" not in g:
        g.account, g.auth_via = _resolve()
    return g.account


def signed_in_user() -> User:
    """Return the account of a request that must be signed in (behind ``login_required``); 401 otherwise."""
    user = current_user()
    if user is None:
        abort(401)
    return user


def auth_via() -> Literal["session", "token"] | None:
    """Return how this request authenticated: by session cookie, by API token, or not at all."""
    current_user()
    return g.get("auth_via")


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _resolve() -> tuple[User | None, str | None]:
    header = request.headers.get("Authorization", "")
    if header and _is_api():
        scheme, _, token = header.partition(" ")
        row = None
        if scheme.lower() == "bearer" and token.strip():
            row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
        if row is None or not row.active or not row.user.is_active:
            g.bad_token = True
            return None, None  # a bad token never falls back to the session cookie
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now  # resolved before the view runs, so nothing else is pending
            db.session.commit()
        return row.user, "token"
    user = flask_login.current_user
    if user is not None and user.is_authenticated and user.is_active:
        return user._get_current_object(), "session"
    return None, None


def _load_user(session_id: str) -> User | None:
    ident, _, stamp = session_id.partition(":")
    if not ident.isdigit():
        return None
    user = db.session.get(User, int(ident))
    if user is None or user.session_stamp != stamp or not user.is_active:
        return None
    from app.auth import sessions  # the server-side row: a copied cookie dies with its session

    return user if sessions.check(db.session, user) else None


# --- view decorators ------------------------------------------------------------------------------


def _declare(view: Callable[..., Any], rule: tuple[Any, ...]) -> None:
    view.access_rule = rule  # type: ignore[attr-defined]


def public(view: F) -> F:
    """Declare a view open to everyone (what it shows may still depend on who asks)."""
    _declare(view, ("public",))
    return view


def login_required(view: F) -> F:
    """Require a logged-in account: pages redirect to the login page, the API answers 401 JSON."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return unauthenticated()
        return view(*args, **kwargs)

    _declare(wrapped, ("login",))
    return wrapped  # type: ignore[return-value]


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Require a login and one of the roles; others get 403 (a Chinese page, or JSON in the API)."""
    allowed = frozenset(roles)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return unauthenticated()
            if user.role not in allowed:
                deny(f"role {user.role.name} not in {sorted(r.name for r in allowed)}")
            return view(*args, **kwargs)

        _declare(wrapped, ("roles", allowed))
        return wrapped  # type: ignore[return-value]

    return decorator


def access_rule(view: Callable[..., Any]) -> tuple[Any, ...] | None:
    """Return the declared rule of a view function: ("public",), ("login",), ("roles", roles) or None."""
    return getattr(view, "access_rule", None)


def unauthenticated() -> Any:
    """Answer a request that needs a login: 401 JSON in the API, a redirect to the login page otherwise."""
    from app.errors import error_response

    if _is_api():
        message = "API 令牌无效或已吊销" if g.get("bad_token") else "请先登录，或在请求头中提供 API 令牌"
        response, status = error_response(401, message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response, status
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def deny(reason: str, message: str | None = None, status: int = 403) -> NoReturn:
    """Write the refusal to the audit log and abort with 403 (or `status`).

    Args:
        reason: why, for the audit log (English or Chinese).
        message: what the user reads; the generic 没有权限访问该内容 when None.
        status: 403, or 404 where even the existence of the object is private.
    """
    db.session.rollback()  # nothing half-done survives a refusal
    audit("denied", reason=reason, method=request.method, path=request.path, status=status)
    db.session.commit()
    abort(status, description=message or "")


# --- object rules ---------------------------------------------------------------------------------


def own_or_404(model: type[R], ident: int) -> R:
    """Return a row of the current user's own (an API token, a saved search, a notification: its user_id
    is theirs); another account's answers exactly like a missing one (404)."""
    user = current_user()
    row = db.session.get(model, ident)
    if row is None or user is None or getattr(row, "user_id", None) != user.id:
        abort(404)
    return row


def is_secretariat(user: User | None) -> bool:
    """Return True for an approved secretariat admin."""
    return user is not None and user.role is Role.ADMIN and user.is_active


def organiser_contest_ids(user: User | None) -> set[int] | None:
    """Return the contest ids the user organises: None means all (the secretariat), empty means none."""
    if is_secretariat(user):
        return None
    if user is not None and user.role is Role.ORGANISER and user.is_active:
        return {c.id for c in user.contests}
    return set()


def _organises(user: User | None, contest_id: int | None) -> bool:
    ids = organiser_contest_ids(user)
    return ids is None or (contest_id is not None and contest_id in ids)


def can_create_project(user: User | None, contest_id: int | None = None) -> bool:
    """Return True if the user may add a project (to this contest, when given)."""
    if user is None or user.role not in (Role.ADMIN, Role.ORGANISER):
        return False
    return contest_id is None or _organises(user, contest_id)


def can_edit_project(user: User | None, project: Project) -> bool:
    """Secretariat; the organiser of the project's contest; the project's own member."""
    if user is None or not user.is_active:
        return False
    if user.role in (Role.ADMIN, Role.ORGANISER):
        return _organises(user, project.contest_id)
    return user.role is Role.PROJECT and user.project_id == project.id


def can_delete_project(user: User | None, project: Project) -> bool:
    """Secretariat and the organiser of the project's contest (a project cannot delete itself)."""
    return (
        user is not None
        and user.role in (Role.ADMIN, Role.ORGANISER)
        and _organises(user, project.contest_id)
    )


def can_edit_institution(user: User | None, inst: Institution | int) -> bool:
    """Secretariat, and members of that institution."""
    if is_secretariat(user):
        return True
    inst_id = inst if isinstance(inst, int) else inst.id
    return (
        user is not None
        and user.is_active
        and user.role is Role.INSTITUTION
        and user.institution_id == inst_id
    )


def can_edit_need(user: User | None, need: Need) -> bool:
    """Whoever may edit the institution that posted the need."""
    return can_edit_institution(user, need.institution_id)


def is_project_member(user: User | None, project_id: int) -> bool:
    """Return True for an approved member of this project."""
    return user is not None and user.is_active and user.role is Role.PROJECT and user.project_id == project_id


def can_view_institution_private(user: User | None, institution_id: int) -> bool:
    """Shortlist, notes, pipeline and portfolio: that institution's members and the secretariat."""
    return can_edit_institution(user, institution_id)


def can_see_contacts(user: User | None, project: Project) -> bool:
    """Contacts, team, IP, figures and documents of a project.

    True for the secretariat, the project's own members, its contest's organisers, and members of an
    institution the project has accepted a connection with (已接受, 已会谈, 尽职调查, 已签约), when the
    project itself asked for it or accepted it (see project_consented).
    """
    return project.id in contact_project_ids(user, [project.id], {project.id: project.contest_id})


def contact_project_ids(
    user: User | None, project_ids: Iterable[int], contests: Mapping[int, int | None] | None = None
) -> set[int]:
    """Return the subset of project ids whose contacts the user may see (one query for a whole list).

    Args:
        user: the viewer.
        project_ids: the projects on the page.
        contests: {project id: contest id} when the caller has them loaded; looked up otherwise.
    """
    ids = set(project_ids)
    if user is None or not user.is_active or not ids:
        return set()
    if is_secretariat(user):
        return ids
    if user.role is Role.PROJECT:
        return ids & {user.project_id} if user.project_id else set()
    if user.role is Role.ORGANISER:
        mine = organiser_contest_ids(user) or set()
        if contests is None:
            contests = dict(
                db.session.execute(select(Project.id, Project.contest_id).where(Project.id.in_(ids))).all()
            )
        return {i for i in ids if contests.get(i) in mine}
    if user.role is Role.INSTITUTION and user.institution_id:
        rows = db.session.scalars(
            select(Connection.project_id).where(
                Connection.institution_id == user.institution_id,
                Connection.project_id.in_(ids),
                Connection.stage.in_(ACCEPTED_STAGES),
                project_consented(),
            )
        )
        return set(rows)
    return set()


def project_consented() -> Any:
    """Return the SQL condition "the project itself agreed to this connection".

    Consent to reveal a project's contacts comes only from the project: it asked for the introduction
    (the latest request is its own), or a member of the project accepted it. A request made by the
    secretariat or the institution and accepted by anyone else opens nothing.
    """
    accepted_by_project = (
        select(ConnectionEvent.id)
        .where(
            ConnectionEvent.connection_id == Connection.id,
            ConnectionEvent.to_stage == ConnectionStage.ACCEPTED,
            ConnectionEvent.actor_kind == Party.PROJECT,
        )
        .exists()
    )
    return (Connection.initiated_by == Party.PROJECT) | accepted_by_project


def project_level(user: User | None, project: Project, contacts: set[int] | None = None) -> Level:
    """Return how much of a project the user may see: public, member (logged in) or private."""
    if contacts is not None:
        if project.id in contacts:
            return "private"
    elif can_see_contacts(user, project):
        return "private"
    return "member" if user is not None else "public"


def project_fields(level: Level) -> frozenset[str]:
    """Return the project fields visible at a level."""
    if level == "private":
        return PROJECT_PUBLIC_FIELDS | PROJECT_MEMBER_FIELDS | PROJECT_PRIVATE_FIELDS
    if level == "member":
        return PROJECT_PUBLIC_FIELDS | PROJECT_MEMBER_FIELDS
    return PROJECT_PUBLIC_FIELDS


def can_see_institution_contacts(user: User | None) -> bool:
    """Institutions publish their profile; their contact persons are for logged-in accounts."""
    return user is not None


# --- write guards shared by pages and the API -------------------------------------------------------


def check_project_write(user: User | None, values: ProjectIn, project: Project | None = None) -> None:
    """Refuse (403, audited) a project create or update the user may not make.

    Runs on the validated values (the same object that is then saved), never on the raw input.
    Organisers create and move projects only within their own contests; a project member edits its own
    project but neither its contest nor its award (those come from the contest).
    """
    contest_id = values.contest_id
    if project is None:
        if not can_create_project(user):
            deny("may not create projects", "只有秘书处和赛事组织方可以新增项目")
        if not _organises(user, contest_id):
            deny(f"contest {contest_id} is not the user's", "只能在自己负责的赛事中新增项目")
        return
    if not can_edit_project(user, project):
        deny(f"may not edit project {project.id}", "只能编辑自己的项目或自己负责赛事的项目")
    assert user is not None
    if user.role is Role.PROJECT:
        if contest_id != project.contest_id or values.award is not project.award:
            deny("project member changing contest or award", "项目成员不能修改所属赛事和获奖等级")
    elif contest_id != project.contest_id and not _organises(user, contest_id):
        deny(f"moving project {project.id} to contest {contest_id}", "只能把项目移到自己负责的赛事")


def locked_project_fields(user: User | None, project: Project, data: dict[str, Any]) -> dict[str, Any]:
    """Fill the contest and award a project member may not change, where the input leaves them out.

    A value that is given is kept and checked after validation (a different one is refused), so
    `{"award": null}` is a refused change, not a silent reset.
    """
    if user is None or user.role is not Role.PROJECT:
        return data
    data = dict(data)
    data.setdefault("contest_id", project.contest_id)
    data.setdefault("award", project.award.value if project.award else None)
    return data


def need_owner_default(user: User | None, data: dict[str, Any]) -> dict[str, Any]:
    """Return the input with an institution member's own institution where it names none."""
    if user is None or user.role is not Role.INSTITUTION or not user.institution_id:
        return data
    data = dict(data)
    if data.get("institution_id") is None or data.get("institution_id") == "":
        data["institution_id"] = user.institution_id
    return data


def check_need_write(user: User | None, values: NeedIn | None, need: Need | None = None) -> None:
    """Refuse a need create/update/delete the user may not make; an institution member posts for its own.

    Args:
        values: the validated need (None to ask only whether the user may manage needs, or this need).
        need: the stored need being changed or deleted, if any.
    """
    if need is not None and not can_edit_need(user, need):
        deny(f"may not change need {need.id}", "只能管理本机构发布的需求")
    if is_secretariat(user):
        return
    if user is None or user.role is not Role.INSTITUTION or not user.institution_id:
        deny("may not post needs", "只有机构成员和秘书处可以发布对接需求")
    assert user is not None
    if values is not None and values.institution_id != user.institution_id:
        deny("posting a need for another institution", "只能以本机构名义发布需求")


# --- what the reasons of a ranked match may reveal ---------------------------------------------------

#: Reasons drawn only from showcase fields.
PUBLIC_REASON_FEATURES = frozenset({"industry", "region", "region_base", "award"})
#: Reasons that quote the texts: shown when every quoted fragment is public text.
TEXT_REASON_FEATURES = frozenset({"dense", "bm25"})
#: Reasons from the logged-in tier of a project (stage, amount, needs).
MEMBER_REASON_FEATURES = frozenset({"stage", "amount", "services", "need_side"})
#: Everything else (portfolio, activity, co-investment...) derives from an institution's signed
#: connections: its private pipeline.

_QUOTE = re.compile(r"「(?:项目|机构|基地|平台|案例)?：?([^」]*)」")


def _fields(row: Any, names: Iterable[str]) -> dict[str, Any]:
    values = {n: getattr(row, n) for n in names}
    return {n: v.value if isinstance(v, LabelEnum) else v for n, v in values.items()}  # an enum: its label


def project_record_text(project: Project) -> str:
    """Return the text a project is ranked on (embedded, BM25): its PROJECT_TEXT_FIELDS only.

    Team, IP and needs are not public, and rankings shown to anyone must not depend on them (needs still
    count as a structured feature for logged-in viewers); a short text also encodes faster.
    """
    return project_text(**_fields(project, PROJECT_TEXT_FIELDS))


def institution_record_text(inst: Institution) -> str:
    """Return the text an institution is ranked on: its INSTITUTION_TEXT_FIELDS."""
    return institution_text(**_fields(inst, INSTITUTION_TEXT_FIELDS))


def visible_reasons(
    user: User | None,
    project: Project,
    inst: Institution,
    reasons: Iterable[Any],
    contacts: bool | None = None,
) -> tuple[Any, ...]:
    """Return the reasons of a project-institution match that this viewer may read.

    A ranked list is public, but its reasons may quote a project's team or IP text, its funding figures,
    or an institution's signed deals; each reason is shown only to those who may see what it draws on.

    Args:
        contacts: whether the viewer may see the project's private fields, when already known.
    """
    if contacts is None:
        contacts = can_see_contacts(user, project)
    return readable_reasons(
        user,
        reasons,
        contacts,
        can_view_institution_private(user, inst.id),
        lambda: project_record_text(project) + " " + institution_record_text(inst),
    )


def readable_reasons(
    user: User | None,
    reasons: Iterable[Any],
    contacts: bool,
    pipeline: bool,
    ranked_text: Callable[[], str],
) -> tuple[Any, ...]:
    """Return the reasons this viewer may read (visible_reasons with its checks already made).

    Args:
        contacts: the viewer may see the project's private fields (can_see_contacts).
        pipeline: the viewer may see the institution's pipeline (can_view_institution_private).
        ranked_text: returns what the two records are ranked on, public fields only: the project's
            record text, a space, the institution's (a ranking profile's `text` is that record text);
            called only when a text reason must be checked.
    """
    public_text: str | None = None
    out = []
    for r in reasons:
        feature = getattr(r, "feature", "")
        if feature in PUBLIC_REASON_FEATURES:
            ok = True
        elif feature in MEMBER_REASON_FEATURES:
            ok = user is not None
        elif feature in TEXT_REASON_FEATURES:
            if contacts:
                ok = True
            else:
                if public_text is None:
                    public_text = ranked_text()
                fragments = [f.rstrip("…").strip() for f in _QUOTE.findall(r.text)]
                ok = all(f in public_text for f in fragments if f)
        else:
            ok = pipeline
        if ok:
            out.append(r)
    return tuple(out)


def redact_ranked(
    user: User | None,
    ranked: list[Any],
    project: Project | None = None,
    institution: Institution | None = None,
) -> list[Any]:
    """Return ranked rows (services.RankedRow) with only the reasons this viewer may read.

    Give `project` for a project's ranked institutions, `institution` for an institution's ranked projects.
    """
    if project is not None:
        contacts = can_see_contacts(user, project)
        return [
            replace(
                r,
                match=replace(
                    r.match, reasons=visible_reasons(user, project, r.row, r.match.reasons, contacts)
                ),
            )
            for r in ranked
        ]
    assert institution is not None
    ids = contact_project_ids(user, [r.row.id for r in ranked])
    return [
        replace(
            r,
            match=replace(
                r.match, reasons=visible_reasons(user, r.row, institution, r.match.reasons, r.row.id in ids)
            ),
        )
        for r in ranked
    ]


# --- the audit log --------------------------------------------------------------------------------


def client_ip() -> str | None:
    """Return the caller's address (as the WSGI server saw it; put ProxyFix in front behind a proxy)."""
    return request.remote_addr if has_request_context() else None


def audit(action: str, obj_kind: str | None = None, obj_id: int | None = None, **detail: Any) -> AuditLog:
    """Add an audit line to the current session; it commits with the change it describes.

    Args:
        action: what happened, e.g. "login", "login_failed", "denied", "export", "project.update".
        obj_kind: the kind of record touched ("project", "institution", "need", "connection", "user", ...).
        obj_id: its id.
        **detail: anything else worth keeping (JSON-serialisable).
    """
    user = current_user()
    if user is None and has_request_context():
        user = g.get("audit_user")  # e.g. the account a login attempt named
    row = AuditLog(
        at=utcnow(),
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else detail.pop("username", None),
        action=action,
        obj_kind=obj_kind,
        obj_id=obj_id,
        detail=_jsonable(detail),
        ip=client_ip(),
    )
    session = db.session
    session.add(row)
    return row


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- wiring ---------------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Bind Flask-Login, authenticate each request up front and guard undeclared views."""
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录"
    login_manager.session_protection = "basic"

    @app.context_processor
    def _me() -> dict[str, Any]:
        return {
            "me": current_user(),
            "can_edit_project": can_edit_project,
            "can_edit_institution": can_edit_institution,
            "can_delete_project": can_delete_project,
            "is_secretariat": is_secretariat,
        }

    @app.before_request
    def _authenticate() -> Any:
        # Resolve the account before any view runs (token bookkeeping commits here, not mid-view).
        user = current_user()
        view = app.view_functions.get(request.endpoint or "")
        if view is None or request.endpoint == "static":
            return None
        if any(isinstance(v, int) and v > MAX_ID for v in (request.view_args or {}).values()):
            abort(404)  # no row has such an id; the database driver would choke on it
        if access_rule(view) is None and user is None:
            log.warning("view %s declares no access rule: requiring a login", request.endpoint)
            return unauthenticated()
        return None
