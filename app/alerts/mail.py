"""Alert e-mails: Chinese digests with the reasons of each match, sent over SMTP, unsubscribed in one click.

MATCH_SMTP_URL names the server: smtp://host:port, smtp://user:password@host:587?starttls=1 or
smtps://user:password@host:465. Each message carries a List-Unsubscribe header (and the RFC 8058
one-click POST) whose signed link turns the account's alert e-mails off without a login.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Flask
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts.service import settings_of
from app.pipeline.states import CHINA_TZ
from models import Project
from models.accounts import User
from models.alerts import AlertFrequency, Notification
from models.base import utcnow

log = logging.getLogger(__name__)

_SALT = "alerts-unsubscribe"
#: A digest of a frequency is due this long after the last one (a little under the period, so a cron
#: job that runs a few minutes early still sends).
DUE_AFTER = {
    AlertFrequency.IMMEDIATE: timedelta(0),
    AlertFrequency.DAILY: timedelta(hours=20),
    AlertFrequency.WEEKLY: timedelta(days=6, hours=12),
}
_TITLE = {
    AlertFrequency.IMMEDIATE: "新提醒",
    AlertFrequency.DAILY: "每日摘要",
    AlertFrequency.WEEKLY: "每周摘要",
}


class MailError(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


# --- the unsubscribe token --------------------------------------------------------------------------


def _serializer(app: Flask) -> URLSafeSerializer:
    return URLSafeSerializer(app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_token(app: Flask, user_id: int) -> str:
    """Return the signed token of a user's one-click unsubscribe link."""
    return _serializer(app).dumps({"u": user_id})


def read_unsubscribe_token(app: Flask, token: str) -> int | None:
    """Return the user id of a valid token, or None for a forged, damaged or foreign one."""
    if not token or len(token) > 200:
        return None
    try:
        data = _serializer(app).loads(token)
    except BadSignature:
        return None
    user_id = data.get("u") if isinstance(data, dict) else None
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def site_url(app: Flask, path: str) -> str:
    """Return the absolute address of a path on the site (links in e-mails)."""
    return str(app.config["SITE_URL"]).rstrip("/") + path


# --- composing ------------------------------------------------------------------------------------


def digest_message(
    app: Flask,
    user: User,
    notes: Sequence[Notification],
    frequency: AlertFrequency,
    projects: dict[int, Project],
) -> EmailMessage:
    """Return the Chinese digest of some notifications for one user, with the unsubscribe headers."""
    unsubscribe = site_url(app, f"/alerts/unsubscribe/{unsubscribe_token(app, user.id)}")
    msg = EmailMessage()
    msg["Subject"] = f"【创客中国对接服务】{len(notes)} 个新进入前列的匹配项目（{_TITLE[frequency]}）"
    msg["From"] = app.config["MAIL_FROM"]
    msg["To"] = user.email
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="cnmaker-match")
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    lines = [
        f"{user.display_name}，您好：",
        "",
        f"您订阅的推荐列表有 {len(notes)} 个项目新进入了您设定的名次：",
        "",
    ]
    for i, n in enumerate(notes, start=1):
        p = projects.get(n.project_id)
        where = " · ".join(x for x in (p.industry if p else None, p.province if p else None) if x)
        lines.append(f"{i}. {p.name if p else '项目'}{f'（{where}）' if where else ''}")
        lines.append(f"   来自订阅「{n.search_name}」：第 {n.rank} 名（提醒名次：前 {n.rank_threshold} 名）")
        lines.append("   匹配理由：" + ("；".join(n.reasons) if n.reasons else "综合匹配度"))
        lines.append(f"   查看项目：{site_url(app, f'/alerts/notifications/{n.id}/open')}")
        lines.append("")
    lines += [
        f"查看全部通知：{site_url(app, '/alerts/')}",
        f"管理订阅和邮件频率：{site_url(app, '/alerts/searches')}",
        f"退订提醒邮件（一键退订，无需登录）：{unsubscribe}",
        "",
        "—— 第七届“创客中国”中小企业创新创业大赛 · 赛后对接与跟踪服务",
    ]
    msg.set_content("\n".join(lines))
    return msg


# --- sending --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    ssl: bool
    starttls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Return the server of an smtp:// or smtps:// URL; raise ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("MATCH_SMTP_URL should look like smtp://host:port or smtps://user:password@host:465")
    query = parse_qs(parts.query)
    ssl = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if ssl else 25),
        ssl=ssl,
        starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def send_messages(url: str, messages: Sequence[EmailMessage], timeout: float = 15.0) -> None:
    """Send messages over one SMTP connection; raise MailError when the server fails."""
    target = parse_smtp_url(url)
    try:
        client: smtplib.SMTP
        if target.ssl:
            client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout)
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=timeout)
        with client:
            if target.starttls:
                client.starttls()
            if target.username:
                client.login(target.username, target.password or "")
            for msg in messages:
                client.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"SMTP {target.host}:{target.port}: {exc}") from exc


@dataclass
class DigestReport:
    sent: int = 0
    notifications: int = 0
    failed: int = 0
    skipped_users: int = 0


def send_digests(
    app: Flask, session: Session, frequency: AlertFrequency | None = None, now: datetime | None = None
) -> DigestReport:
    """Mail each user its due digests: unmailed notifications of one frequency (or of every due one).

    A digest is due when its frequency's period has passed since the user's last one of that frequency
    (immediate: always). Users without an e-mail address or who unsubscribed get none. A notification is
    marked mailed only once the server accepted its message, so a failure is retried by the next run.
    """
    report = DigestReport()
    url = app.config.get("SMTP_URL")
    if not url:
        log.info("alerts: MATCH_SMTP_URL is not set; no digests sent")
        return report
    now = now or utcnow()
    frequencies = [frequency] if frequency is not None else list(AlertFrequency)
    for freq in frequencies:
        user_ids = list(
            session.scalars(
                select(Notification.user_id)
                .where(Notification.emailed_at.is_(None), Notification.frequency == freq)
                .distinct()
            )
        )
        for user_id in sorted(user_ids):
            user = session.get(User, user_id)
            settings = settings_of(session, user_id)
            if user is None or not user.is_active or not user.email or not settings.email_enabled:
                report.skipped_users += 1
                session.rollback()
                continue
            last = settings.last_digest.get(freq.name) if settings.last_digest else None
            if last and now - datetime.fromisoformat(last) < DUE_AFTER[freq]:
                session.rollback()
                continue
            notes = list(
                session.scalars(
                    select(Notification)
                    .where(
                        Notification.user_id == user_id,
                        Notification.emailed_at.is_(None),
                        Notification.frequency == freq,
                    )
                    .order_by(Notification.created_at, Notification.rank)
                )
            )
            projects = {
                p.id: p
                for p in session.scalars(select(Project).where(Project.id.in_([n.project_id for n in notes])))
            }
            msg = digest_message(app, user, notes, freq, projects)
            try:
                send_messages(url, [msg])
            except MailError:
                log.warning("alerts: digest to user %s not sent", user_id, exc_info=True)
                session.rollback()
                report.failed += 1
                continue
            for n in notes:
                n.emailed_at = now
            settings.last_digest = {**(settings.last_digest or {}), freq.name: now.isoformat()}
            session.commit()
            report.sent += 1
            report.notifications += len(notes)
    return report


def china_time(at: datetime) -> str:
    """Return a timestamp as China time, minutes."""
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
