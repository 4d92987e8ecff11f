"""After an import commits: encode what changed, update the ranking index, flag suspected duplicates."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import services
from embeddings import load_embedder, text_hash
from models import EmbeddingRecord

log = logging.getLogger(__name__)

BATCH = 64


def index_rows(
    session: Session, kind: str, rows: Sequence[Any], progress: Callable[[int], None] | None = None
) -> int:
    """Encode the rows whose text changed (in batches, each committed), re-index all, flag duplicates.

    Args:
        kind: "project" or "institution".
        rows: new and changed rows, already committed.
        progress: called with the number of rows handled after each batch.
    Returns:
        How many texts were encoded (an unchanged text keeps its stored vector).
    """
    embedder = load_embedder(current_app.config["EMBEDDING_MODEL"])
    service = services._matching_if_built()
    text_of = services.project_record_text if kind == "project" else services.institution_record_text
    encoded = 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        stored = {
            r.owner_id: r
            for r in session.scalars(
                select(EmbeddingRecord).where(
                    EmbeddingRecord.owner_kind == kind, EmbeddingRecord.owner_id.in_([r.id for r in chunk])
                )
            )
        }
        texts = {r.id: text_of(r) for r in chunk}
        todo = [
            (r.id, texts[r.id])
            for r in chunk
            if r.id not in stored
            or (stored[r.id].model, stored[r.id].text_hash) != (embedder.name, text_hash(texts[r.id]))
        ]
        vecs = dict(
            zip([i for i, _ in todo], services.store_vectors(session, kind, todo, embedder), strict=True)
        )
        session.commit()
        encoded += len(todo)
        if service is not None:
            for row in chunk:
                vec = vecs.get(row.id)
                if vec is None:
                    vec = np.frombuffer(stored[row.id].vector, dtype=np.float32).copy()
                if kind == "project":
                    service.upsert_project(services.project_profile(row), vec)
                else:
                    service.upsert_institution(services.institution_profile(row), vec)
        if progress is not None:
            progress(len(chunk))
    if kind == "project":
        from app.intake.duplicates import flag_projects

        flag_projects(session, [r.id for r in rows], embedder.name)
    return encoded
