"""Bulk import pages for contest organisers: upload CSV/Excel, see row errors or the imported count."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from app import services
from app.extensions import db
from app.imports import ImportFileError, header_labels, import_rows, read_rows, template_csv, template_xlsx

bp = Blueprint("imports", __name__, url_prefix="/imports")

KINDS = {"projects": "参赛项目", "institutions": "服务机构"}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def run_import(kind: str, allowed_contests: set[int] | None = None) -> tuple[Any, str | None]:
    """Read the uploaded file of the request and import it; return (report, file error)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return None, "请选择要导入的文件"
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return None, "文件超过 5 MB，请分批导入"
    try:
        report, rows = import_rows(db.session, kind, read_rows(upload.filename, data), allowed_contests)  # type: ignore[arg-type]
    except ImportFileError as exc:
        db.session.rollback()
        return None, exc.message
    if rows:
        services.index_imported(db.session, "project" if kind == "projects" else "institution", rows)
    return report, None


@bp.route("/", methods=["GET", "POST"])
def upload() -> Any:
    kind = request.values.get("kind", "projects")
    if kind not in KINDS:
        abort(404)
    report, error = (None, None)
    if request.method == "POST":
        report, error = run_import(kind)
    status = 422 if error or (report is not None and not report.ok) else 200
    return render_template(
        "imports/upload.html", kind=kind, kinds=KINDS, report=report, error=error, headers=header_labels(kind)  # type: ignore[arg-type]
    ), status


@bp.get("/template.<fmt>")
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
