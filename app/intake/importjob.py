"""An import as a background job (JobKind.IMPORT): its rows in chunks, then their encoding.

The import page's commit step and `flask import` store the file in the database (models.jobs.JobFile,
so a worker on any host reads it) with the confirmed column mapping as the job's parameters, and queue
the job: on the RQ workers with MATCH_REDIS_URL, else in a thread of the web process; the command runs
it in the foreground with a progress bar. The run has three steps, each recorded in the job's row:

1. **Check** the whole file (the same validation as the preview) and plan it: which rows are new,
   changed or unchanged. A file with any bad row writes nothing: the job fails with the rows named.
   The plan (the summary the page shows, the rows to write) is committed in the job's row.
2. **Write** the new and changed rows in chunks of CHUNK rows. Each chunk commits its rows, their
   index change-log rows (app.index_sync) and the job's progress (rows written / total) together.
3. **Encode** the written rows (the ENCODE job's body): batches that each commit their vectors with
   the progress; every (model, text SHA-256) already stored is skipped. Then suspected duplicate
   projects are flagged.

Crash safety: chunked commits, not one transaction. One transaction would hold SQLite's only write lock
for the whole write, so neither the progress nor the heartbeat could be written meanwhile (a second
connection cannot write then) and the job would look dead; chunks keep both moving on every database.
A worker killed with -9 therefore leaves whole chunks; its row stops beating and it is queued again
(app.jobs.requeue_abandoned). The next run keeps the plan made before the first write (so the summary
counts rows as the file found the database, not as the killed run left it), skips the chunks the
progress counts as committed, and writes the rest. Writing a row again creates nothing twice even so:
a project row finds its project by its stable key (project number, else credit code, else name +
contest + lead; app.imports.write_project), and an institution chunk is never applied twice because
its rows commit atomically with the progress that skips them. The encoding then skips every stored
vector, so a text is encoded again only if its batch was in flight when the worker died.

What a user sees is "as before or as after": until the last chunk is written the import is shown as
running (or interrupted and queued again), never as done; its summary (new / changed / unchanged), its
audit line and its place in the secretariat's records appear only with the commit that ends the
writing. Rows of a half-written import are stored, and found by the lists, as soon as their chunk
commits, and the job resumes them: it never removes them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import index_sync
from app.imports import (
    ImportFileError,
    ImportReport,
    apply_mapping,
    check_mapping,
    existing_projects,
    guess_mapping,
    parse_rows,
    plan_projects,
    read_rows,
    write_project,
)
from app.jobs import JobError, JobLost, JobRun, start_job
from app.serialize import attrs
from models import Institution
from models.accounts import AuditLog, User
from models.base import utcnow
from models.jobs import Job, JobFile, JobKind, JobStatus

log = logging.getLogger(__name__)

#: Rows written per committed chunk (each chunk also commits the job's progress).
CHUNK = 500
#: Row errors, warnings and suspects kept with the job's summary (the counts are always complete).
SHOWN = 300
#: A file left by a failed import that nobody retried is deleted after this long.
FILE_DAYS = 7
_KINDS = {"projects": "project", "institutions": "institution"}


# --- queueing -----------------------------------------------------------------------------------------


def queue_import(
    app: Flask,
    kind: str,
    filename: str,
    data: bytes,
    *,
    mapping: Mapping[str, str] | None = None,
    refuse_unmapped: bool = False,
    default_contest: int | None = None,
    allowed_contests: Iterable[int] | None = None,
    user_id: int | None = None,
    via: str = "web",
    dispatch: bool = True,
    chunk: int | None = None,
) -> int:
    """Store the file and record an import job in one transaction, then send it to a worker; return its id.

    Args:
        mapping: {file header: column id or ""} as the organiser confirmed it; None guesses it.
        refuse_unmapped: a column no field takes is a row error (the command and the API), instead of
            being left out (the pages, where the organiser chose 不导入).
        default_contest: the contest of project rows that name none.
        allowed_contests: the contests the importer may write to (None: all).
        dispatch: False records the job only, for a command that runs it in the foreground.
        chunk: rows per committed chunk (default CHUNK).
    """

    params: dict[str, Any] = {
        "kind": kind,
        "filename": filename[:200],
        "mapping": dict(mapping) if mapping is not None else None,
        "refuse_unmapped": refuse_unmapped,
        "default_contest": default_contest,
        "allowed_contests": sorted(allowed_contests) if allowed_contests is not None else None,
        "via": via,
    }
    if chunk is not None:
        params["chunk"] = chunk

    def store_file(session: Session, job: Job) -> None:
        _prune_files(session)
        session.add(JobFile(job_id=job.id, name=filename[:200], data=data))

    return start_job(JobKind.IMPORT, params, user_id=user_id, app=app, dispatch=dispatch, attach=store_file)


def _prune_files(session: Session) -> None:
    """Delete the files of imports that failed long ago and were never retried."""
    cutoff = utcnow() - timedelta(days=FILE_DAYS)
    old = select(Job.id).where(Job.status == JobStatus.FAILED, Job.finished_at < cutoff)
    session.execute(delete(JobFile).where(JobFile.job_id.in_(old)))


# --- the job's state: the plan, then the progress of the writing -------------------------------------


def ranges(numbers: Iterable[int]) -> list[list[int]]:
    """Return ascending runs of consecutive integers as [first, last] pairs, in the given order."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def expand(runs: Iterable[Sequence[int]]) -> list[int]:
    """Return the integers of [first, last] pairs (the inverse of :func:`ranges`)."""
    return [n for first, last in runs for n in range(first, last + 1)]


def load_state(session: Session, job_id: int) -> dict[str, Any] | None:
    """Return the import's committed state (plan, phase, written ids), None before its plan."""
    raw = session.scalar(select(Job.result).where(Job.id == job_id))
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("v") == 1 else None


def _save_state(run: JobRun, session: Session, state: Mapping[str, Any]) -> None:
    """Put the state into the job's row, in the caller's transaction, while this run still owns it."""
    body = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    mine = (Job.id == run.job_id) & (Job.attempt == run.attempt) & (Job.status == JobStatus.RUNNING)
    if session.execute(update(Job).where(mine).values(result=body)).rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise JobLost(f"job {run.job_id} attempt {run.attempt} was taken over")


def _report_json(report: ImportReport) -> dict[str, Any]:
    return {
        **attrs(report, "rows created updated unchanged skipped_example"),
        "n_errors": len(report.errors),
        "errors": [[n, dict(fields)] for n, fields in report.errors[:SHOWN]],
        "n_warnings": len(report.warnings),
        "warnings": [
            [n, [{"condition": c.condition, "status": c.status, "reason": c.reason} for c in conditions]]
            for n, conditions in report.warnings[:SHOWN]
        ],
        "n_suspects": len(report.suspects),
        "suspects": [[n, text] for n, text in report.suspects[:SHOWN]],
    }


# --- the body ----------------------------------------------------------------------------------------


def import_job(run: JobRun, session: Session) -> None:
    """Check and plan the file, write its new and changed rows in chunks, encode them (see the module)."""
    params = _check_params(run.params)
    state = load_state(session, run.job_id)
    parsed = None
    if state is None or state.get("phase") == "refused":
        state, parsed = _plan(run, session, params)
    if state["phase"] == "planned":
        _write(run, session, params, state, parsed)
    if state["phase"] == "written":
        _encode(run, session, params, state)
    run.outcome = state


def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)

    def ints(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    mapping = out.get("mapping")
    allowed = out.get("allowed_contests")
    if (
        out.get("kind") not in _KINDS
        or not isinstance(out.get("filename"), str)
        or not (mapping is None or (isinstance(mapping, dict) and _strings(mapping)))
        or not (out.get("default_contest") is None or ints(out["default_contest"]))
        or not (allowed is None or (isinstance(allowed, list) and all(ints(i) for i in allowed)))
        or not (ints(out.get("chunk", CHUNK)) and 1 <= out.get("chunk", CHUNK) <= 10_000)
    ):
        raise JobError("参数有误：导入任务的文件、列对应或赛事不完整，请重新上传文件")
    return out


def _strings(mapping: Mapping[str, Any]) -> bool:
    return all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())


def _read(run: JobRun, session: Session, params: Mapping[str, Any]) -> tuple[ImportReport, list[Any]]:
    """Read the stored file and check every row; return the report and the valid rows."""
    run.beat(session, "读取文件")
    data = session.scalar(select(JobFile.data).where(JobFile.job_id == run.job_id))
    if data is None:
        raise JobError("导入的文件已不在服务器上（已完成或已清理），请重新上传文件")
    kind = params["kind"]
    try:
        rows = read_rows(params["filename"], data)
        mapping = params["mapping"]
        if mapping is None:
            mapping = guess_mapping(kind, list(rows[0]) if rows else [])
        check_mapping(kind, mapping)
        total = len(rows)

        def checked(n: int) -> None:
            if n % 2000 == 0 or n == total:
                run.beat(session, f"正在校验：已检查 {n} / {total} 行")

        allowed = params["allowed_contests"]
        return parse_rows(
            session,
            kind,
            apply_mapping(rows, mapping, ignored=not params.get("refuse_unmapped")),
            set(allowed) if allowed is not None else None,
            params["default_contest"],
            progress=checked,
        )
    except ImportFileError as exc:
        raise JobError(f"无法导入：{exc.message}") from None


def _plan(
    run: JobRun, session: Session, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[int, tuple[Any, dict[str, Any]]]]:
    """Check the file and decide which rows to write; commit the plan (or fail the job with the bad rows)."""
    report, parsed = _read(run, session, params)
    if params["kind"] == "projects":
        run.beat(session, "正在比对已导入的项目")
        write = [(n, values, given) for n, values, given, _project in plan_projects(session, report, parsed)]
    else:
        write = list(parsed)
        report.created = len(write)
    state: dict[str, Any] = {"v": 1, "kind": params["kind"], "report": _report_json(report)}
    if report.errors:
        state["phase"] = "refused"
        _save_state(run, session, state)
        session.commit()
        first, fields = report.errors[0]
        raise JobError(
            f"{len(report.errors)} 行有误，未导入任何数据（第 {first} 行：{'；'.join(fields.values())}）；"
            "请修改文件后重新导入"
        )
    state.update(phase="planned", write=ranges(n for n, _v, _g in write), ids=[])
    _save_state(run, session, state)
    run.begin(session, len(write), f"校验通过，待写入 {len(write)} 行")  # commits the plan with the total
    return state, {n: (values, given) for n, values, given in write}


def _write(
    run: JobRun,
    session: Session,
    params: Mapping[str, Any],
    state: dict[str, Any],
    parsed: dict[int, tuple[Any, dict[str, Any]]] | None,
) -> None:
    """Write the planned rows not yet committed, a chunk per transaction; then close the writing."""
    from app.alerts import projects_changed

    numbers = expand(state["write"])
    start = min(run.done, len(numbers))  # the progress counts exactly the committed chunks' rows
    kind = params["kind"]
    record_kind = _KINDS[kind]
    if start < len(numbers):
        if parsed is None:  # a run resumed after a crash: check the file again for the rows left
            _report, rows = _read(run, session, params)
            parsed = {n: (values, given) for n, values, given in rows}
            missing = [n for n in numbers[start:] if n not in parsed]
            if missing:
                raise JobError(
                    f"第 {missing[0]} 行现在无法导入（赛事或权限已变化），已写入 {start} 行；"
                    "请修改文件后重新导入（已导入的行不会重复）"
                )
        run.begin(session, len(numbers) - start, f"已写入 {start} / {len(numbers)} 行")
        existing = (
            existing_projects(session, {parsed[n][0].contest_id for n in numbers[start:]})
            if kind == "projects"
            else {}
        )
        ids = expand(state["ids"])
        size = int(params.get("chunk") or CHUNK)
        for first in range(start, len(numbers), size):
            chunk = numbers[first : first + size]
            records: list[Any] = []
            for n in chunk:
                values, given = parsed[n]
                if kind == "projects":
                    records.append(write_project(session, existing, values, given)[0])
                else:
                    records.append(Institution(**values.model_dump()))
                    session.add(records[-1])
            session.flush()
            written = [r.id for r in records]
            ids.extend(written)
            index_sync.record_changes(session, record_kind, written)  # every web worker ranks them
            state["ids"] = ranges(ids)
            _save_state(run, session, state)
            run.advance(session, len(chunk), f"已写入 {first + len(chunk)} / {len(numbers)} 行")
            session.commit()
    state["phase"] = "written"
    _audit(run, session, params, state)
    session.execute(delete(JobFile).where(JobFile.job_id == run.job_id))  # no longer needed
    _save_state(run, session, state)
    session.commit()
    if kind == "projects" and numbers and "matching" in run.app.extensions:
        # a web process (no Redis) re-runs its saved searches now; on a worker, `flask alerts run` does
        # (building the whole matching service in every worker for that would cost its memory)
        projects_changed()


def _audit(run: JobRun, session: Session, params: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Add the import's audit line (committed with the end of its writing, as a page's write is)."""
    user_id = session.scalar(select(Job.started_by_id).where(Job.id == run.job_id))
    username = session.scalar(select(User.username).where(User.id == user_id)) if user_id else None
    report = state["report"]
    kind = params["kind"]
    detail = {
        "rows": report["rows"],
        "created": report["created"],
        "updated": report["updated"],
        "unchanged": report["unchanged"],
        "file": params["filename"],
        "job": run.job_id,
    }
    if params.get("via") != "web":
        detail["via"] = params.get("via")
    session.add(
        AuditLog(
            at=utcnow(),
            user_id=user_id,
            username=username,
            action=f"import.{kind}",
            obj_kind=kind.rstrip("s"),
            obj_id=None,
            detail=detail,
            ip=None,
        )
    )


def _encode(run: JobRun, session: Session, params: Mapping[str, Any], state: dict[str, Any]) -> None:
    """Encode the written rows whose (model, text) has no stored vector; flag duplicates; close the job."""
    from app.jobs.tasks import encode_records

    ids = list(dict.fromkeys(expand(state["ids"])))
    written = len(expand(state["write"]))
    if ids:
        kind = _KINDS[params["kind"]]
        encode_records(
            run, session, {kind: ids}, int(params.get("batch_size") or 64), flag_duplicates=kind == "project"
        )
    state["phase"] = "finished"
    state["encoded"] = max(0, run.done - written)  # over every run: the progress counts stored batches
    state["encode_unchanged"] = max(0, len(ids) - state["encoded"])
    _save_state(run, session, state)
    session.commit()


# --- reading a job's outcome ---------------------------------------------------------------------------


def summary(session: Session, job: Job) -> dict[str, Any] | None:
    """Return what the import's page shows: its phase and report (None before the file was checked)."""
    state = load_state(session, job.id)
    if state is None:
        return None
    report = dict(state["report"])
    report["phase"] = state.get("phase")
    report["written"] = len(expand(state.get("write", [])))
    report["encoded"] = state.get("encoded")
    report["encode_unchanged"] = state.get("encode_unchanged")
    return report


def row_errors(report: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """Yield (row number, the row's problems in one line) of a summary's kept row errors."""
    for number, fields in report.get("errors", []):
        yield number, "；".join(fields.values())
