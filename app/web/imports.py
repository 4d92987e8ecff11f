"""Bulk import pages for contest organisers: upload CSV/Excel, see row errors or the imported count."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from app import services
from app.access import audit, current_user, deny, organiser_contest_ids, roles_required
from app.extensions import db
from app.imports import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_SHEET_ROWS,
    ImportFileError,
    header_labels,
    import_rows,
    read_rows,
    template_csv,
    template_xlsx,
)
from app.schemas import InputError
from app.uploads import check_upload
from models.enums import Role

bp = Blueprint("imports", __name__, url_prefix="/imports")

KINDS = {"projects": "参赛项目", "institutions": "服务机构"}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: The import's limits, as the upload page states them.
LIMITS = {
    "rows": MAX_ROWS, "sheet_rows": MAX_SHEET_ROWS, "columns": MAX_COLUMNS, "cell_chars": MAX_CELL_CHARS,
}
#: An encrypted .xlsx (and an old .xls) is an OLE compound file, not a zip archive.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def run_import(kind: str, allowed_contests: set[int] | None = None) -> tuple[Any, str | None]:
    """Read the uploaded file of the request and import it; return (report, file error)."""
    if kind != "projects" and organiser_contest_ids(current_user()) is not None:
        deny(f"import of {kind}", "只有秘书处可以导入服务机构")
    if allowed_contests is None:
        allowed_contests = organiser_contest_ids(current_user())  # an organiser: its own contests only
    upload = request.files.get("file")
    if upload is not None and (upload.filename or "").lower().endswith(".xlsx"):
        head = upload.stream.read(len(OLE_MAGIC))
        upload.stream.seek(0)
        if head == OLE_MAGIC:
            return None, "导入文件：Excel 文件已加密或是旧版 .xls 格式，请取消密码并另存为 .xlsx 文件后导入"
    try:
        data = check_upload(upload, ("csv", "xlsx"), MAX_UPLOAD_BYTES, "file", "导入文件")
    except InputError as exc:
        return None, next(iter(exc.fields.values()))
    filename = (upload.filename or "")[:200]  # type: ignore[union-attr]

    def audit_import(report: Any) -> None:
        audit(f"import.{kind}", kind.rstrip("s"), None, rows=report.rows, created=report.created, file=filename)

    try:
        report, rows = import_rows(
            db.session, kind, read_rows(upload.filename, data), allowed_contests, before_commit=audit_import  # type: ignore[arg-type,union-attr]
        )
    except ImportFileError as exc:
        db.session.rollback()
        return None, exc.message
    if rows:  # the rows and their audit line are committed; encoding follows in batches
        services.index_imported(db.session, "project" if kind == "projects" else "institution", rows)
    return report, None


@bp.route("/", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ORGANISER)
def upload() -> Any:
    kind = request.values.get("kind", "projects")
    if kind not in KINDS:
        abort(404)
    report, error = (None, None)
    if request.method == "POST":
        report, error = run_import(kind)
    status = 422 if error or (report is not None and not report.ok) else 200
    return render_template(
        "imports/upload.html", kind=kind, kinds=KINDS, report=report, error=error,
        headers=header_labels(kind), limits=LIMITS,  # type: ignore[arg-type]
    ), status


@bp.get("/template.<fmt>")
@roles_required(Role.ADMIN, Role.ORGANISER)
def template(fmt: str) -> Any:
    kind = request.args.get("kind", "projects")
    if kind not in KINDS or fmt not in ("csv", "xlsx"):
        abort(404)
    name = f"{kind}-template.{fmt}"
    if fmt == "csv":
        return Response(template_csv(kind), mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={name}"})  # type: ignore[arg-type]
    return Response(
        template_xlsx(kind),  # type: ignore[arg-type]
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )
