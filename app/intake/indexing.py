"""After an import commits: its rows become searchable at once, then a background job encodes what changed.

One mechanism for every import (the pages, the API and ``flask import``): :func:`app.services.index_imported`
puts the rows into this process's ranking by their words, logs them for the other workers' indexes
(app.index_sync) and records an encoding job (app.jobs) that encodes only texts whose (model, SHA-256)
changed, in batches that each commit, adds the vectors to the index and then flags suspected duplicate
projects (app.intake.duplicates). The job runs on the RQ workers when MATCH_REDIS_URL is set, else in a
thread here; a command runs it in the foreground with a progress bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app import services


def index_rows(session: Session, kind: str, rows: Sequence[Any], dispatch: bool = True) -> int | None:
    """Index the committed new and changed rows of an import and start their encoding; return the job id.

    Args:
        kind: "project" or "institution".
        dispatch: False records the job without starting it (the caller runs it, e.g. with a progress bar).
    """
    if not rows:
        return None
    return services.index_imported(session, kind, rows, dispatch=dispatch)
