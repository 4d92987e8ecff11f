"""flask alerts run | send-digests: re-run saved searches and mail due digests (for cron)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db
from models.alerts import AlertFrequency

_FREQUENCIES = {
    "immediate": AlertFrequency.IMMEDIATE,
    "daily": AlertFrequency.DAILY,
    "weekly": AlertFrequency.WEEKLY,
}


def init_app(app: Flask) -> None:
    """Register the `alerts` command group."""
    group = AppGroup("alerts", help="Saved searches, notifications and e-mail digests.")
    app.cli.add_command(group)

    @group.command("run")
    def run() -> None:
        """Re-run every active saved search (and posted need); record new entrants; mail immediate ones."""
        from app.alerts import run_and_mail

        ran, mailed = run_and_mail(current_app._get_current_object())  # type: ignore[attr-defined]
        click.echo(
            f"alerts: {ran.searches} searches run, {ran.notified} notifications, "
            f"{ran.deferred} deferred by the daily limit, {ran.skipped} skipped, "
            f"{ran.created_searches} need searches created"
            + (f"; {mailed.sent} immediate e-mails sent" if mailed is not None else "")
        )

    @group.command("send-digests")
    @click.option(
        "--frequency",
        type=click.Choice(sorted(_FREQUENCIES)),
        default=None,
        help="Only this frequency (default: every frequency that is due).",
    )
    def send_digests(frequency: str | None) -> None:
        """Mail each user its due digest of unmailed notifications (needs MATCH_SMTP_URL)."""
        from app.alerts.mail import send_digests as send

        app_ = current_app._get_current_object()  # type: ignore[attr-defined]
        if not app_.config.get("SMTP_URL"):
            raise click.ClickException("MATCH_SMTP_URL is not set: no SMTP server to send digests through")
        session = db.new_session(app_)
        try:
            report = send(app_, session, _FREQUENCIES[frequency] if frequency else None)
        finally:
            session.close()
        click.echo(
            f"digests: {report.sent} e-mails with {report.notifications} notifications sent, "
            f"{report.failed} failed, {report.skipped_users} users without e-mail or unsubscribed"
        )
        if report.failed:
            raise SystemExit(1)
