"""The process the kill -9 tests kill: run one write through the app, stop at a named point, wait.

Usage: python fault_child.py SCENARIO DB_PATH INDEX_DIR MARKER POINT

SCENARIO is "import" (a CSV of projects posted to /api/imports/projects), "embed" (`flask embed
--batch-size 16`) or "move" (POST /api/connections/<id>/move to 终止). POINT is where to stop:

- ``flush:N``: right after the N-th flush that writes rows of the scenario's kind, before its
  commit (the transaction is open, its rows are written but not committed);
- ``commit:N``: right after the N-th commit of such rows;
- ``none``: run to the end.

At the point the child writes MARKER and sleeps until the test sends SIGKILL. Nothing here changes
the code under test: the stops are SQLAlchemy session events installed from outside.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

IMPORT_ROWS = 40
ROW = {
    "名称": "故障测试项目",
    "组别": "企业组",
    "所属赛事": "7-R25",
    "获奖等级": "无",
    "行业": "现代农业",
    "省份": "西藏自治区",
    "城市": "拉萨市",
    "发展阶段": "成长期",
    "拟融资金额（万元）": "800",
    "融资轮次": "A轮",
    "简介": "以高原青稞为原料开发低升糖主食与饮品，建有两条自动化产线。",
    "需求": "融资、检验检测",
}


def import_csv() -> bytes:
    """Return a CSV of IMPORT_ROWS distinct projects."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ROW))
    writer.writeheader()
    for i in range(IMPORT_ROWS):
        writer.writerow({**ROW, "名称": f"故障测试项目{i:03d}", "简介": f"{ROW['简介']}第{i}号产线。"})
    return buf.getvalue().encode("utf-8-sig")


def _stop(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()), encoding="utf-8")
    while True:  # wait for SIGKILL
        time.sleep(0.5)


def install_stop(point: str, kind: type, marker: str) -> None:
    """Stop the process at POINT, counting only flushes and commits that write rows of kind."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if point == "none":
        return
    what, _, n = point.partition(":")
    target = int(n)
    seen = {"flush": 0, "commit": 0}

    @event.listens_for(Session, "after_flush")
    def _after_flush(session: Session, _ctx: Any) -> None:
        # new/dirty still list what this flush wrote (SQL sent, transaction open).
        if not any(isinstance(obj, kind) for obj in (*session.new, *session.dirty)):
            return
        session.info["fault_rows"] = True
        seen["flush"] += 1
        if what == "flush" and seen["flush"] == target:
            _stop(marker)

    from sqlalchemy.engine import Engine

    table = kind.__table__.name
    core = {"pending": False}

    @event.listens_for(Engine, "after_cursor_execute")
    def _after_core_write(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Rows written by a Core statement (the stored vectors' upsert): a flush of its own.
        if not statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
            return
        core["pending"] = True
        seen["flush"] += 1
        if what == "flush" and seen["flush"] == target:
            _stop(marker)

    @event.listens_for(Session, "after_commit")
    def _after_commit(session: Session) -> None:
        wrote = session.info.pop("fault_rows", False) or core["pending"]
        core["pending"] = False
        if not wrote:
            return
        seen["commit"] += 1
        if what == "commit" and seen["commit"] == target:
            _stop(marker)


def main() -> None:
    scenario, db_path, index_dir, marker, point = sys.argv[1:6]
    from app import create_app
    from app.auth.accounts import DEMO_ACCOUNTS
    from models import EmbeddingRecord, Project
    from models.pipeline import ConnectionEvent

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{db_path}",
            "INDEX_DIR": index_dir,
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    kinds = {"import": Project, "embed": EmbeddingRecord, "move": ConnectionEvent}
    if scenario == "embed":
        install_stop(point, kinds[scenario], marker)
        result = app.test_cli_runner().invoke(args=["embed", "--batch-size", "16"])
        print(result.output, flush=True)
        if result.exception is not None:
            raise result.exception
        return
    client = app.test_client()
    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}["admin"]
    assert client.post("/login", data={"username": "admin", "password": password}).status_code == 302
    install_stop(point, kinds[scenario], marker)
    if scenario == "import":
        r = client.post(
            "/api/imports/projects",
            data={"file": (io.BytesIO(import_csv()), "batch.csv")},
            content_type="multipart/form-data",
        )
    elif scenario == "move":
        connection_id = int(os.environ["FAULT_CONNECTION_ID"])
        r = client.post(
            f"/api/connections/{connection_id}/move", json={"to_stage": "终止", "note": "故障测试"}
        )
    else:  # pragma: no cover
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps({"status": r.status_code}), flush=True)
    assert r.status_code in (200, 201), r.get_data(as_text=True)


if __name__ == "__main__":
    main()
