"""Log in and out, self-registration (institutions: 对接服务报名; projects), 我的账户 and API tokens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from sqlalchemy import select

from app.access import audit, current_user, login_required, own_or_404, public, signed_in_user
from app.api import INSTITUTION_FIELDS, PROJECT_FIELDS
from app.auth import accounts, passwords, sessions
from app.extensions import db, limiter
from app.schemas import InputError
from app.security import safe_target
from app.web.forms import form_data
from models import Contest, Project
from models.accounts import ApiToken, LoginSession
from models.base import utcnow
from models.enums import AccountStatus
from models.events import RegistrationChoice

bp = Blueprint("auth", __name__)

ACCOUNT_FIELDS = ["username", "password", "password2", "display_name", "email"]


@bp.app_context_processor
def _password_rule() -> dict[str, Any]:
    """The password rule in words, for every form that sets a password."""
    return {"password_rule": passwords.rule_text(int(current_app.config["PASSWORD_MIN_LENGTH"]))}


def _login_key() -> str:
    """Rate-limit bucket for login attempts: the user name tried, together with the address."""
    return f"{(request.form.get('username') or '').strip().lower()[:64]}|{get_remote_address()}"


def _failed(response: Any) -> bool:
    return bool(response.status_code != 302)


def safe_next(target: str | None) -> str:
    """Return a same-site path to go to after login, or the front page."""
    return safe_target(target, url_for("home.index"))


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_key, methods=["POST"], deduct_when=_failed
)
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"], methods=["POST"])
def login() -> Any:
    next_url = safe_target(request.values.get("next"), "")
    error = None
    status = 200
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        user = accounts.find_user(db.session, username)
        if accounts.check_password(user, password) and user is not None:
            if user.status is AccountStatus.APPROVED:
                user.last_login_at = utcnow()
                g.account, g.auth_via = user, "session"
                audit("login", "user", user.id)
                sessions.start(db.session, user)  # a fresh cookie and server-side session; commits
                flash(f"欢迎，{user.display_name}", "success")
                return redirect(safe_next(next_url))
            error = (
                "账户正在等待秘书处审核"
                if user.status is AccountStatus.PENDING
                else "账户已停用，请联系秘书处"
            )
            reason = user.status.name.lower()
        else:
            error = "用户名或密码不正确"
            reason = "bad_credentials"
        audit("login_failed", "user", user.id if user else None, username=username[:64], reason=reason)
        db.session.commit()
        status = 401
    return render_template(
        "auth/login.html", error=error, next=next_url, username=request.form.get("username", "")
    ), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    audit("logout", "user", current_user().id)  # type: ignore[union-attr]
    sessions.end(db.session)  # revoked on the server: a copy of the cookie no longer works
    flash("已退出登录", "success")
    return redirect(url_for("home.index"))


@bp.route("/register/institution", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"], methods=["POST"])
def register_institution() -> Any:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"industries": [], "stages": [], "services": []}
    if request.method == "POST":
        values = form_data(request.form, INSTITUTION_FIELDS)
        account = {k: request.form.get(k, "") for k in ACCOUNT_FIELDS}
        try:
            choices = request.form.getlist("event_choices")
            accounts.register(db.session, "institution", account, values, event_choices=choices)
        except InputError as exc:
            errors = exc.fields
        else:
            return render_template("auth/registered.html", kind="institution")
        values.update({k: v for k, v in account.items() if not k.startswith("password")})
        values["event_choices"] = request.form.getlist("event_choices")
    return render_template(
        "auth/register_institution.html", v=values, errors=errors, EVENT_CHOICES=RegistrationChoice.labels()
    ), (422 if errors else 200)


@bp.route("/register/project", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"], methods=["POST"])
def register_project() -> Any:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "award": "无",
        "needs": [],
        "claim_project_id": request.args.get("project_id", ""),
    }
    if request.method == "POST":
        claim = (request.form.get("claim_project_id") or "").strip()
        values = form_data(request.form, PROJECT_FIELDS)
        values["claim_project_id"] = claim
        account = {k: request.form.get(k, "") for k in ACCOUNT_FIELDS}
        claim_id = None
        if claim:
            if not claim.isdigit() or len(claim) > 9:
                errors = {"claim_project_id": "认领项目编号：应为数字"}
            claim_id = int(claim) if claim.isdigit() and len(claim) <= 9 else None
        if not errors:
            profile = {k: values[k] for k in PROJECT_FIELDS}
            profile["award"] = "无"  # awards come from the contest, never from the applicant
            try:
                accounts.register(db.session, "project", account, None if claim_id else profile, claim_id)
            except InputError as exc:
                errors = exc.fields
            else:
                return render_template("auth/registered.html", kind="project")
        values.update({k: v for k, v in account.items() if not k.startswith("password")})
    claimed = None
    if str(values.get("claim_project_id") or "").isdigit() and len(str(values["claim_project_id"])) <= 9:
        claimed = db.session.get(Project, int(values["claim_project_id"]))
    contests = db.session.scalars(select(Contest).order_by(Contest.code)).all()
    return render_template(
        "auth/register_project.html", v=values, errors=errors, contests=contests, claimed=claimed
    ), (422 if errors else 200)


@bp.get("/account")
@login_required
def account() -> Any:
    return _account_page()


def _account_page(
    new_token: str | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> Any:
    user = signed_in_user()
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    ).all()
    current = sessions.current(db.session)
    return render_template(
        "auth/account.html",
        user=user,
        tokens=tokens,
        new_token=new_token,
        errors=errors or {},
        login_sessions=sessions.active(db.session, user),
        current_session_id=current.id if current is not None else None,
    ), status


@bp.post("/account/tokens")
@login_required
def create_token() -> Any:
    try:
        _row, plain = accounts.issue_token(db.session, current_user(), request.form.get("token_name", ""))  # type: ignore[arg-type]
    except InputError as exc:
        return _account_page(errors=exc.fields, status=422)
    return _account_page(new_token=plain)


@bp.post("/account/tokens/<int:ident>/revoke")
@login_required
def revoke_token(ident: int) -> Any:
    token = own_or_404(ApiToken, ident)  # somebody else's token: as if it did not exist
    accounts.revoke_token(db.session, token)
    flash(f"令牌「{token.name}」已吊销", "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/password")
@login_required
def change_password() -> Any:
    user = signed_in_user()
    try:
        accounts.change_password(
            db.session,
            user,
            request.form.get("old_password", ""),
            request.form.get("password", ""),
            request.form.get("password2", ""),
        )
    except InputError as exc:
        return _account_page(errors=exc.fields, status=422)
    sessions.start(db.session, user)  # every session was revoked: this browser gets a fresh one
    flash("密码已修改，其他设备上的登录已失效", "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/sessions/<int:ident>/revoke")
@login_required
def revoke_session(ident: int) -> Any:
    """End one of the account's logins (another browser, or this one)."""
    user = current_user()
    row = db.session.get(LoginSession, ident)
    if row is None or row.user_id != user.id:  # type: ignore[union-attr]
        abort(404)  # somebody else's session: as if it did not exist
    current = sessions.current(db.session)
    audit("session.revoke", "login_session", row.id)
    if current is not None and current.id == row.id:
        sessions.end(db.session)
        flash("已退出登录", "success")
        return redirect(url_for("home.index"))
    sessions.revoke(db.session, row)
    db.session.commit()
    flash("该设备上的登录已退出", "success")
    return redirect(url_for("auth.account") + "#sessions")


@bp.post("/account/sessions/revoke-others")
@login_required
def revoke_other_sessions() -> Any:
    """End every login of the account except this browser's."""
    user = current_user()
    ended = sessions.revoke_all(db.session, user, keep=sessions.current(db.session))  # type: ignore[arg-type]
    audit("session.revoke_others", "user", user.id, sessions_ended=ended)  # type: ignore[union-attr]
    db.session.commit()
    flash(f"已退出其他 {ended} 处登录", "success")
    return redirect(url_for("auth.account") + "#sessions")
