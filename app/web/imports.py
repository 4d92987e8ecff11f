"""Bulk import pages for contest organisers: upload → column mapping → preview with row errors → commit.

The uploaded file waits in the instance folder under a random token, readable only by the account that
uploaded it, until it is imported or a day has passed. The commit hands the file and the confirmed mapping
to a background job (app.intake.importjob: on the RQ workers, or in a thread without Redis) and shows its
page: a progress bar (rows written, then their encoding), then the import's summary. The command
`flask import projects` runs the same job in the foreground; the JSON API (`POST /api/imports/<kind>`)
imports in one step within the request (one transaction) with the automatic column mapping.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for

from app.access import audit, current_user, deny, is_secretariat, organiser_contest_ids, roles_required
from app.extensions import db
from app.imports import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_SHEET_ROWS,
    ImportFileError,
    Kind,
    apply_mapping,
    check_mapping,
    columns,
    contest_label,
    guess_mapping,
    header_labels,
    import_rows,
    read_rows,
    template_csv,
    template_xlsx,
)
from app.schemas import FIELD_LABELS, InputError
from app.uploads import check_upload
from app.web import records
from app.web.lists import send_xlsx
from models.enums import Role
from models.jobs import JobKind, JobStatus

bp = Blueprint("imports", __name__, url_prefix="/imports")

KINDS = {"projects": "参赛项目", "institutions": "服务机构"}
#: A whole contest's intake (20,000 rows with descriptions) as CSV or xlsx.
MAX_UPLOAD_BYTES = 40 * 1024 * 1024
#: The import's limits, as the upload page states them.
LIMITS = {
    "rows": MAX_ROWS,
    "sheet_rows": MAX_SHEET_ROWS,
    "columns": MAX_COLUMNS,
    "cell_chars": MAX_CELL_CHARS,
    "mb": MAX_UPLOAD_BYTES // (1024 * 1024),
}
#: An encrypted .xlsx (and an old .xls) is an OLE compound file, not a zip archive.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: How long an uploaded file waits for its mapping and commit.
PENDING_SECONDS = 24 * 3600
#: Row errors and warnings listed on the preview page (the counts are always complete).
SHOWN_ROWS = 300


@bp.before_request
def _larger_uploads() -> None:
    # Only these pages take files this large; the rest of the site keeps MAX_CONTENT_LENGTH.
    request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024


def may_import(kind: str) -> bool:
    """Return True when the current account may import this kind (institutions: the secretariat only)."""
    return kind == "projects" or organiser_contest_ids(current_user()) is None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        abort(404)
    if not may_import(kind):
        deny(f"import of {kind}", "只有秘书处可以导入服务机构")


def _uploaded_bytes() -> tuple[bytes | None, str, str | None]:
    """Return (data, filename, error) of the request's uploaded file after the upload checks."""
    upload = request.files.get("file")
    if upload is not None and (upload.filename or "").lower().endswith(".xlsx"):
        head = upload.stream.read(len(OLE_MAGIC))
        upload.stream.seek(0)
        if head == OLE_MAGIC:
            return (
                None,
                "",
                ("导入文件：Excel 文件已加密或是旧版 .xls 格式，请取消密码并另存为 .xlsx 文件后导入"),
            )
    try:
        data = check_upload(upload, ("csv", "xlsx"), MAX_UPLOAD_BYTES, "file", "导入文件")
    except InputError as exc:
        return None, "", next(iter(exc.fields.values()))
    return data, (upload.filename or "")[:200], None  # type: ignore[union-attr]


def encode_after_import(kind: str, rows: list[Any]) -> None:
    """Start encoding the new and changed rows (only changed texts) as a background job, which then flags
    suspected duplicate projects; the rows rank by their words at once (app.intake.indexing)."""
    from app.intake.indexing import index_rows

    if rows:
        index_rows(db.session, "project" if kind == "projects" else "institution", rows)


def run_import(kind: str, allowed_contests: set[int] | None = None) -> tuple[Any, str | None]:
    """Import the request's uploaded file in one step (automatic column mapping); return (report, error)."""
    _check_kind(kind)
    if allowed_contests is None:
        allowed_contests = organiser_contest_ids(current_user())  # an organiser: its own contests only
    data, filename, error = _uploaded_bytes()
    if error:
        return None, error
    assert data is not None
    try:
        default = _default_contest(request.values.get("contest"))
        rows = read_rows(filename, data)
        mapping = guess_mapping(kind, list(rows[0]) if rows else [])  # type: ignore[arg-type]
        report, saved = import_rows(
            db.session,
            cast(Kind, kind),  # checked by _check_kind
            apply_mapping(rows, mapping, ignored=False),
            allowed_contests,
            before_commit=_auditor(kind, filename),
            default_contest=default,
        )
    except ImportFileError as exc:
        db.session.rollback()
        return None, exc.message
    encode_after_import(kind, saved)
    return report, None


def _default_contest(value: str | None) -> int | None:
    """Return the contest of rows that name none: the one chosen, else the organiser's only contest."""
    mine = records.my_contests()
    if value:
        for c in mine:
            if str(c.id) == value or c.code == value:
                return c.id
        raise ImportFileError("所选赛事不是本单位负责的赛事")
    ids = organiser_contest_ids(current_user())
    return mine[0].id if ids is not None and len(mine) == 1 else None


def _auditor(kind: str, filename: str) -> Any:
    def audit_import(report: Any) -> None:
        audit(
            f"import.{kind}",
            kind.rstrip("s"),
            None,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            file=filename,
        )

    return audit_import


# --- the pending upload ------------------------------------------------------------------------------


def _pending_dir() -> Path:
    folder = Path(current_app.instance_path) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save_pending(kind: str, filename: str, data: bytes) -> str:
    folder = _pending_dir()
    now = time.time()
    for old in folder.glob("*.json"):  # files left waiting longer than a day go
        if now - old.stat().st_mtime > PENDING_SECONDS:
            old.unlink(missing_ok=True)
            old.with_suffix(".bin").unlink(missing_ok=True)
    token = secrets.token_urlsafe(16)
    (folder / f"{token}.bin").write_bytes(data)
    user = current_user()
    meta = {
        "user_id": user.id if user else None,
        "kind": kind,
        "filename": filename,
        "mapping": None,
        "contest": None,
    }
    (folder / f"{token}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return token


def _load_pending(token: str) -> tuple[dict[str, Any], Path]:
    if not token.replace("-", "").replace("_", "").isalnum() or len(token) > 64:
        abort(404)
    meta_path = _pending_dir() / f"{token}.json"
    if not meta_path.exists():
        abort(404, description="上传的文件已过期或已导入，请重新上传")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    user = current_user()
    if user is None or meta.get("user_id") != user.id:
        abort(404)
    _check_kind(meta["kind"])
    return meta, meta_path


def _save_meta(meta_path: Path, meta: dict[str, Any]) -> None:
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def _drop_pending(meta_path: Path) -> None:
    meta_path.with_suffix(".bin").unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)


def _rows(meta: dict[str, Any], meta_path: Path) -> list[Any]:
    return read_rows(meta["filename"], meta_path.with_suffix(".bin").read_bytes())


# --- pages -----------------------------------------------------------------------------------------


def _page(kind: str, **extra: Any) -> str:
    return render_template(
        "imports/upload.html",
        kind=kind,
        kinds={k: v for k, v in KINDS.items() if may_import(k)},
        headers=header_labels(cast(Kind, kind)),  # checked by _check_kind
        limits=LIMITS,
        contests=records.my_contests(),
        contest_label=contest_label,
        **extra,
    )


@bp.route("/", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ORGANISER)
def upload() -> Any:
    kind = request.values.get("kind", "projects")
    _check_kind(kind)
    if request.method == "GET":
        return _page(kind)
    data, filename, error = _uploaded_bytes()
    if error is None:
        assert data is not None
        try:
            # a file that cannot be read is refused now, not after the mapping
            if not read_rows(filename, data):
                error = "文件中没有数据行"
        except ImportFileError as exc:
            error = exc.message
    if error:
        return _page(kind, error=error), 422
    token = _save_pending(kind, filename, data)  # type: ignore[arg-type]
    return redirect(url_for("imports.mapping", token=token))


@bp.route("/<token>/mapping", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ORGANISER)
def mapping(token: str) -> Any:
    meta, meta_path = _load_pending(token)
    kind = meta["kind"]
    try:
        rows = _rows(meta, meta_path)
    except ImportFileError as exc:
        _drop_pending(meta_path)
        return _page(kind, error=exc.message), 422
    headers = list(rows[0]) if rows else []
    targets = [(c, FIELD_LABELS.get(c, "所属赛事" if c == "contest" else c)) for c in columns(kind)]
    error = None
    chosen = meta.get("mapping") or guess_mapping(kind, headers)
    if request.method == "POST":
        chosen = {h: request.form.get(f"col{i}", "") for i, h in enumerate(headers)}
        try:
            check_mapping(kind, chosen)
            contest = request.form.get("contest") or None
            if contest:
                _default_contest(contest)
            meta["mapping"], meta["contest"] = chosen, contest
            _save_meta(meta_path, meta)
            return redirect(url_for("imports.preview", token=token))
        except ImportFileError as exc:
            error = exc.message
    samples = {h: next((str(r.get(h)) for r in rows if r.get(h) not in (None, "")), "") for h in headers}
    return render_template(
        "imports/mapping.html",
        kind=kind,
        kinds=KINDS,
        token=token,
        meta=meta,
        headers=headers,
        chosen=chosen,
        targets=targets,
        samples=samples,
        error=error,
        rows=len(rows),
        contests=records.my_contests(),
        contest_label=contest_label,
    ), (422 if error else 200)


def _mapped_import(meta: dict[str, Any], meta_path: Path, dry_run: bool) -> tuple[Any, list[Any]]:
    kind = meta["kind"]
    rows = _rows(meta, meta_path)
    mapping = meta.get("mapping") or guess_mapping(kind, list(rows[0]) if rows else [])
    return import_rows(
        db.session,
        kind,
        apply_mapping(rows, mapping),
        organiser_contest_ids(current_user()),
        before_commit=_auditor(kind, meta["filename"]),
        default_contest=_default_contest(meta.get("contest")),
        dry_run=dry_run,
    )


@bp.get("/<token>/preview")
@roles_required(Role.ADMIN, Role.ORGANISER)
def preview(token: str) -> Any:
    meta, meta_path = _load_pending(token)
    try:
        report, _ = _mapped_import(meta, meta_path, dry_run=True)
    except ImportFileError as exc:
        return _page(meta["kind"], error=exc.message), 422
    return render_template(
        "imports/preview.html",
        kind=meta["kind"],
        kinds=KINDS,
        token=token,
        meta=meta,
        report=report,
        shown=SHOWN_ROWS,
    ), (422 if not report.ok else 200)


@bp.post("/<token>/commit")
@roles_required(Role.ADMIN, Role.ORGANISER)
def commit(token: str) -> Any:
    """Queue the import of the previewed file with its confirmed mapping; show the job's page."""
    from app.intake.importjob import queue_import

    meta, meta_path = _load_pending(token)
    try:
        default = _default_contest(meta.get("contest"))
    except ImportFileError as exc:
        return _page(meta["kind"], error=exc.message), 422
    user = current_user()
    job_id = queue_import(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        meta["kind"],
        meta["filename"],
        meta_path.with_suffix(".bin").read_bytes(),
        mapping=meta.get("mapping"),
        default_contest=default,
        allowed_contests=organiser_contest_ids(user),
        user_id=user.id if user is not None else None,
    )
    _drop_pending(meta_path)
    return redirect(url_for("imports.job", job_id=job_id))


@bp.get("/jobs/<int:job_id>")
@roles_required(Role.ADMIN, Role.ORGANISER)
def job(job_id: int) -> Any:
    """An import's page: its progress bar while it runs, then its summary (or why it failed)."""
    from app.intake.importjob import row_errors, summary
    from app.jobs import is_abandoned
    from app.jobs.views import _visible_job

    found = _visible_job(job_id)
    if found.kind is not JobKind.IMPORT:
        abort(404, description="任务不存在")
    kind = found.params.get("kind", "projects")
    report = summary(db.session, found)
    refused = found.status is JobStatus.FAILED and report is not None and report["phase"] == "refused"
    return render_template(
        "imports/job.html",
        job=found,
        kind=kind,
        kinds=KINDS,
        report=report,
        shown=SHOWN_ROWS,
        refused=refused,
        errors=list(row_errors(report or {})),
        abandoned=is_abandoned(current_app, found),
        may_retry=is_secretariat(current_user()),
    ), (422 if refused else 200)


@bp.get("/template.<fmt>")
@roles_required(Role.ADMIN, Role.ORGANISER)
def template(fmt: str) -> Any:
    kind = request.args.get("kind", "projects")
    if kind not in KINDS or fmt not in ("csv", "xlsx"):
        abort(404)
    name = f"{kind}-template.{fmt}"
    disposition = {"Content-Disposition": f"attachment; filename={name}"}
    if fmt == "csv":
        return Response(template_csv(kind), mimetype="text/csv", headers=disposition)  # type: ignore[arg-type]
    contests = records.my_contests() if kind == "projects" else []
    return send_xlsx(template_xlsx(kind, contests), name)  # type: ignore[arg-type]
