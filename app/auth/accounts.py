"""Account operations: passwords, registrations and their approval, API tokens, demo accounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, has_app_context
from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.access import audit
from app.auth import passwords
from app.auth import sessions as login_sessions
from app.events import registration as event_registration
from app.pipeline.states import ACCEPTED_STAGES
from app.schemas import FIELD_LABELS, InputError, InstitutionIn, ProjectIn, _Strict, validate
from models import Connection, Contest, Institution, InstitutionKind, Project
from models.accounts import ApiToken, Registration, User, new_stamp
from models.base import utcnow
from models.enums import AccountStatus, RegistrationStatus, Role

T = TypeVar("T")

FIELD_LABELS.update(
    {
        "username": "用户名",
        "password": "密码",
        "password2": "确认密码",
        "display_name": "姓名",
        "email": "邮箱",
        "role": "角色",
        "contest_ids": "负责赛事",
        "claim_project_id": "认领项目编号",
        "token_name": "令牌名称",
    }
)

#: A hash to compare against when the user name does not exist, so both paths take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountIn(_Strict):
    """The account part of a registration or of an account the secretariat creates."""

    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str  # the strength rule runs in _account, where the user name is known (app.auth.passwords)
    display_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=120)

    @field_validator("username")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip() or None
        if v is not None and ("@" not in v or v.startswith("@") or v.endswith("@")):
            raise ValueError("邮箱格式不正确")
        return v


def _min_length() -> int:
    if not has_app_context():
        return passwords.DEFAULT_MIN_LENGTH
    return int(current_app.config["PASSWORD_MIN_LENGTH"])


def hash_password(password: str) -> str:
    """Return the salted scrypt hash of a password."""
    return generate_password_hash(password)


def check_password(user: User | None, password: str) -> bool:
    """Return True if the password is the user's; takes as long when the user does not exist."""
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password)


def find_user(session: Session, username: str) -> User | None:
    """Return the account with this user name (case-insensitive), or None."""
    name = (username or "").strip().lower()
    if not name or len(name) > 64:
        return None
    return session.scalar(select(User).where(func.lower(User.username) == name))


def _collecting(fields: dict[str, str], parse: Callable[[], T]) -> T | None:
    """Return what `parse` returns; on InputError add its fields to `fields` and return None (a form
    reports every wrong field at once)."""
    try:
        return parse()
    except InputError as exc:
        fields.update(exc.fields)
        return None


def _account(session: Session, data: dict[str, Any]) -> AccountIn:
    fields: dict[str, str] = {}
    account = {k: data.get(k) or None for k in ("username", "password", "display_name", "email")}
    values = _collecting(fields, lambda: validate(AccountIn, account))
    if values is not None:
        weak = passwords.problem(values.password, values.username, min_length=_min_length())
        if weak:
            fields["password"] = weak
    if (
        data.get("password")
        and data.get("password2") is not None
        and data.get("password") != data.get("password2")
    ):
        fields["password2"] = "确认密码：两次输入的密码不一致"
    if values is not None and find_user(session, values.username) is not None:
        fields["username"] = "用户名：已被使用，请换一个"
    if fields:
        raise InputError(fields)
    assert values is not None
    return values


def _new_user(values: AccountIn, role: Role, status: AccountStatus) -> User:
    return User(
        username=values.username,
        display_name=values.display_name,
        email=values.email,
        password_hash=hash_password(values.password),
        role=role,
        status=status,
        session_stamp=new_stamp(),
    )


def register(
    session: Session,
    kind: str,
    account: dict[str, Any],
    profile: dict[str, Any] | None,
    claim_project_id: int | None = None,
    event_choices: list[str] | None = None,
) -> Registration:
    """Create a pending account and its registration (an institution, a new project, or a claim); commit.

    `event_choices` (an institution's 对接服务报名 labels) wait in the data until approval.

    Raises:
        InputError: for any field that is wrong, account and profile fields together.
    """
    fields: dict[str, str] = {}
    values = _collecting(fields, lambda: _account(session, account))
    data: dict[str, Any] = {}
    if kind == "project" and claim_project_id is not None:
        if session.get(Project, claim_project_id) is None:
            fields["claim_project_id"] = "认领项目编号：项目不存在"
    else:
        model = InstitutionIn if kind == "institution" else ProjectIn
        data = _collecting(fields, lambda: validate(model, profile or {}).model_dump(mode="json")) or {}
        if kind == "project" and data and session.get(Contest, data["contest_id"]) is None:
            fields["contest_id"] = "所属赛事：赛事不存在"
    if kind == "institution" and event_choices:
        try:
            data[event_registration.DATA_KEY] = event_registration.names_from_labels(event_choices)
        except ValueError as exc:
            fields[event_registration.DATA_KEY] = str(exc)
    if fields:
        raise InputError(fields)
    assert values is not None
    role = Role.INSTITUTION if kind == "institution" else Role.PROJECT
    user = _new_user(values, role, AccountStatus.PENDING)
    reg = Registration(kind=kind, user=user, data=data, claim_project_id=claim_project_id)
    session.add_all([user, reg])
    session.flush()
    audit("registration.create", "registration", reg.id, kind=kind, username=user.username)
    session.commit()
    return reg


def approve(session: Session, reg: Registration, admin: User, note: str | None = None) -> Registration:
    """Approve a registration: create (or bind) the record, enable the account; all or nothing."""
    from app import services

    if reg.status is not RegistrationStatus.PENDING:
        raise InputError({"_": "该申请已处理"}, "该申请已处理")
    user = reg.user
    # Status first, the record second: save_* commits the session, so both land together; the binding
    # follows in a second, trivial commit.
    user.status = AccountStatus.APPROVED
    reg.status = RegistrationStatus.APPROVED
    reg.decided_at, reg.decided_by_id, reg.note = utcnow(), admin.id, note
    audit("registration.approve", "registration", reg.id, user_id=user.id, kind=reg.kind)
    if reg.kind == "institution":
        profile = dict(reg.data)
        choices = event_registration.pop_choices(profile)
        inst = services.save_institution(session, profile)
        user.institution_id = inst.id
        if choices:
            event_registration.record(session, inst.id, choices)
    elif reg.claim_project_id is not None:
        user.project_id = reg.claim_project_id
    else:
        project = services.save_project(session, dict(reg.data))
        user.project_id = project.id
    session.commit()
    return reg


def reject(session: Session, reg: Registration, admin: User, note: str | None = None) -> Registration:
    """Reject a registration; the account stays disabled."""
    if reg.status is not RegistrationStatus.PENDING:
        raise InputError({"_": "该申请已处理"}, "该申请已处理")
    reg.status = RegistrationStatus.REJECTED
    reg.decided_at, reg.decided_by_id, reg.note = utcnow(), admin.id, note
    reg.user.status = AccountStatus.DISABLED
    audit("registration.reject", "registration", reg.id, user_id=reg.user_id, note=note)
    session.commit()
    return reg


def create_account(session: Session, data: dict[str, Any]) -> User:
    """Create an approved account of any role with its bindings (the secretariat's form); commit."""
    fields: dict[str, str] = {}
    values = _collecting(fields, lambda: _account(session, data))
    try:
        role = Role.from_label(str(data.get("role") or ""))
    except ValueError:
        fields["role"] = f"角色：应为以下之一：{'、'.join(Role.labels())}"
        role = None
    contests: list[Contest] = []
    inst_id = project_id = None
    if role is Role.ORGANISER:
        ids = [int(x) for x in data.get("contest_ids") or [] if str(x).isdigit()]
        contests = list(session.scalars(select(Contest).where(Contest.id.in_(ids)))) if ids else []
        if not contests:
            fields["contest_ids"] = "负责赛事：赛事组织方至少负责一个赛事"
    elif role is Role.INSTITUTION:
        inst_id = _int(data.get("institution_id"))
        if inst_id is None or session.get(Institution, inst_id) is None:
            fields["institution_id"] = "所属机构：请选择存在的机构"
    elif role is Role.PROJECT:
        project_id = _int(data.get("project_id"))
        if project_id is None or session.get(Project, project_id) is None:
            fields["project_id"] = "所属项目：请填写存在的项目编号"
    if fields:
        raise InputError(fields)
    assert values is not None and role is not None
    user = _new_user(values, role, AccountStatus.APPROVED)
    user.contests = contests
    user.institution_id, user.project_id = inst_id, project_id
    session.add(user)
    session.flush()
    audit(
        "user.create",
        "user",
        user.id,
        role=role.name,
        username=user.username,
        contests=[c.id for c in contests],
        institution_id=inst_id,
        project_id=project_id,
    )
    session.commit()
    return user


def _int(v: Any) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def set_status(session: Session, user: User, status: AccountStatus) -> None:
    """Enable or disable an account; disabling ends its sessions and its tokens stop working."""
    user.status = status
    user.session_stamp = new_stamp()
    login_sessions.revoke_all(session, user)
    audit("user.status", "user", user.id, status=status.name)
    session.commit()


def change_password(session: Session, user: User, old: str, new: str, new2: str) -> None:
    """Change a password after checking the old one; other sessions of the account end."""
    fields: dict[str, str] = {}
    if not check_password(user, old):
        fields["old_password"] = "原密码：不正确"
    weak = passwords.problem(new, user.username, label="新密码", min_length=_min_length())
    if weak:
        fields["password"] = weak
    elif check_password(user, new):
        fields["password"] = "新密码：不能与原密码相同"
    if new != new2:
        fields["password2"] = "确认密码：两次输入的密码不一致"
    if fields:
        raise InputError(fields)
    user.password_hash = hash_password(new)
    user.session_stamp = new_stamp()
    ended = login_sessions.revoke_all(session, user)
    audit("user.password", "user", user.id, sessions_ended=ended)
    session.commit()


def issue_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create an API token for the user; return the row and the plain token (shown once)."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise InputError({"token_name": "令牌名称：1 到 100 个字符"})
    active = [t for t in user.tokens if t.active]
    if len(active) >= 20:
        raise InputError({"token_name": "令牌名称：有效令牌已达 20 个，请先吊销不用的令牌"})
    row, plain = ApiToken.issue(user, name)
    session.add(row)
    session.flush()
    audit("token.create", "api_token", row.id, name=name)
    session.commit()
    return row, plain


def revoke_token(session: Session, token: ApiToken) -> None:
    """Revoke a token (kept for the record, never usable again)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit("token.revoke", "api_token", token.id, name=token.name)
        session.commit()


# --- demo accounts ---------------------------------------------------------------------------------

#: The demo accounts `make run` creates (listed in the README): user name, password, role, binding.
DEMO_ACCOUNTS: tuple[tuple[str, str, Role, str], ...] = (
    ("admin", "demo-admin-2026", Role.ADMIN, "秘书处：全部赛事、审核、审计日志"),
    ("organiser", "demo-organiser-2026", Role.ORGANISER, "赛事组织方：负责演示项目最多的一个赛事"),
    ("fund", "demo-fund-2026", Role.INSTITUTION, "机构成员：已接受对接最多的一家创业投资机构"),
    ("base", "demo-base-2026", Role.INSTITUTION, "机构成员：已接受对接最多的一家小微企业创业创新基地"),
    (
        "platform",
        "demo-platform-2026",
        Role.INSTITUTION,
        "机构成员：已接受对接最多的一家中小企业公共服务平台",
    ),
    ("project", "demo-project-2026", Role.PROJECT, "项目成员：第一个一等奖项目"),
)


def load_demo_accounts(session: Session) -> dict[str, int]:
    """Create the demo accounts that do not exist yet (one per role, and one per institution side)."""
    created = 0
    for username, password, role, _what in DEMO_ACCOUNTS:
        if find_user(session, username) is not None:
            continue
        user = User(
            username=username,
            display_name=f"演示·{role.value}",
            password_hash=hash_password(password),
            role=role,
            status=AccountStatus.APPROVED,
            session_stamp=new_stamp(),
        )
        if role is Role.ORGANISER:
            busiest = session.execute(
                select(Project.contest_id, func.count())
                .group_by(Project.contest_id)
                .order_by(func.count().desc(), Project.contest_id)
                .limit(1)
            ).first()
            contest = (
                session.get(Contest, busiest[0]) if busiest else session.scalar(select(Contest).limit(1))
            )
            user.contests = [contest] if contest else []
        elif role is Role.INSTITUTION:
            kind = {
                "fund": InstitutionKind.VC,
                "base": InstitutionKind.SME_BASE,
                "platform": InstitutionKind.SERVICE_PLATFORM,
            }[username]
            # the institution of that kind with the most accepted connections, so the demo shows contacts
            accepted = (
                select(func.count(Connection.id))
                .where(Connection.institution_id == Institution.id, Connection.stage.in_(ACCEPTED_STAGES))
                .scalar_subquery()
            )
            user.institution_id = session.scalar(
                select(Institution.id)
                .where(Institution.kind == kind)
                .order_by(accepted.desc(), Institution.id)
                .limit(1)
            )
        elif role is Role.PROJECT:
            from models import Award

            user.project_id = session.scalar(
                select(Project.id).order_by((Project.award != Award.FIRST), Project.id).limit(1)
            )
        session.add(user)
        created += 1
    session.commit()
    return {"accounts": created}
