"""The bodies of the background jobs: encoding, index rebuilds, the quarterly report, imports.

Each body takes the run (its parameters and progress) and a session of its own, and commits its work
in whole steps: a run killed between two steps leaves the database as after the last one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.jobs import TASKS, JobError, JobRun
from models.jobs import JobKind

_KIND_LABELS = {"project": "项目", "institution": "机构", "need": "需求"}


def encode(run: JobRun, session: Session) -> None:
    """Encode the records whose text or model changed, in batches; skip every stored (model, text) vector.

    Params:
        only: {kind: [ids]} to encode only these records (an import), else every record (and drop
            the vectors of deleted records).
        batch_size: texts per batch (each batch commits its vectors and the progress together).
    """
    only = run.params.get("only")
    batch_size = int(run.params.get("batch_size") or 64)
    if only is not None and not (
        isinstance(only, dict)
        and set(only) <= set(_KIND_LABELS)
        and all(isinstance(i, int) and not isinstance(i, bool) for ids in only.values() for i in ids)
    ):
        raise JobError("参数有误：要编码的记录应为 {类型: [编号]}")
    encode_records(run, session, only, batch_size, bool(run.params.get("flag_duplicates")))


def encode_records(
    run: JobRun, session: Session, only: dict[str, list[int]] | None, batch_size: int, flag_duplicates: bool
) -> None:
    """Encode (all, or only these) records whose (model, text) has no stored vector; count them in the run.

    The total becomes what the run has done already plus the texts to encode (an import's rows written,
    then its encoding, on one bar). flag_duplicates: then flag suspected duplicates of only's projects.
    """
    from app.services import index_encoded, sync_embeddings
    from embeddings import load_embedder

    if not 1 <= batch_size <= 4096:
        raise JobError("参数有误：每批条数应在 1 到 4096 之间")
    run.beat(session, "加载向量模型")
    embedder = load_embedder(run.app.config["EMBEDDING_MODEL"])

    def on_start(remaining: int) -> None:
        run.begin(session, remaining, f"待编码 {remaining} 条")

    committed: list[tuple[str, list[int], list[Any]]] = []

    def on_batch(kind: str, items: list[tuple[int, str]], vecs: Any) -> None:
        run.advance(session, len(items), f"正在编码{_KIND_LABELS[kind]}")
        committed.append((kind, [i for i, _ in items], list(vecs)))

    def progress(_kind: str, _n: int) -> None:
        # the batch is committed: in-process runs put its vectors into this process's index now
        index_encoded(session, *committed.pop())

    run.outcome = sync_embeddings(
        session, embedder, batch_size, progress=progress, on_start=on_start, only=only, on_batch=on_batch
    )
    if flag_duplicates and only and only.get("project"):
        from app.intake.duplicates import flag_projects

        run.beat(session, "检查疑似重复项目")
        flag_projects(session, only["project"], embedder.name)


def index_rebuild(run: JobRun, session: Session) -> None:
    """Encode what changed, then rebuild the FAISS indexes from the stored vectors (and save them)."""
    from app.services import build_matching

    encode(run, session)
    run.beat(session, "重建索引")
    service = build_matching(run.app, rebuild=True)
    if "matching" in run.app.extensions:  # in-process: this web process ranks with the new indexes now
        run.app.extensions["matching"] = service
    run.outcome = service


def quarterly_report(run: JobRun, session: Session) -> None:
    """Write the quarterly report workbook (the same function as the synchronous download) into the job."""
    from app.pipeline.figures import period_from_args
    from app.pipeline.report import quarterly_report_file
    from app.services import today

    params = run.params
    scope = params.get("scope")
    period = period_from_args(dict(params.get("period") or {}), today())
    run.begin(session, 1, f"统计 {period.label}")
    name, body = quarterly_report_file(
        session,
        period,
        set(scope) if scope is not None else None,
        str(params.get("scope_label") or "全部赛事"),
        int(run.app.config["FOLLOW_UP_DAYS"]),
    )
    run.save_result(session, name, body)
    run.advance(session, 1, "已生成")
    session.commit()


def import_file(run: JobRun, session: Session) -> None:
    """Import an uploaded sheet: check it, write its rows in chunks, encode them (app.intake.importjob)."""
    from app.intake.importjob import import_job

    import_job(run, session)


TASKS.update(
    {
        JobKind.ENCODE: encode,
        JobKind.INDEX_REBUILD: index_rebuild,
        JobKind.REPORT: quarterly_report,
        JobKind.IMPORT: import_file,
    }
)
