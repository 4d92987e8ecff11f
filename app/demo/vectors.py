"""The demo's vectors for the default model, shipped with the demo data so a first run encodes nothing.

``data/vectors.npz`` holds one row per demo record: its kind, its natural key (a project's or an
institution's name; a need's institution name and title), the model name, the SHA-256 of the text
that was encoded and the float32 vector. A record takes a shipped vector only when the configured
model and its current text's SHA-256 both match, so an edited demo text or another model is encoded
as usual, never served a stale vector.

Regenerate after changing the demo data or the default model (see README)::

    flask --app app demo load
    flask --app app demo vectors --out app/demo/data/vectors.npz
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.services import institution_record_text, need_record_text, project_record_text
from embeddings import text_hash
from models import EmbeddingRecord, Institution, Need, Project

VECTORS = Path(__file__).parent / "data" / "vectors.npz"
_DATA = Path(__file__).parent / "data"
#: Joins a need's institution name and title into its key (a character no name contains).
_SEP = "\x1f"


def _records(session: Session) -> Iterator[tuple[str, str, int, str]]:
    """Yield (kind, natural key, id, text) of every project, institution and need in the database."""
    for p in session.scalars(select(Project)):
        yield "project", p.name, p.id, project_record_text(p)
    for i in session.scalars(select(Institution)):
        yield "institution", i.name, i.id, institution_record_text(i)
    for n in session.scalars(select(Need).options(selectinload(Need.institution))):
        yield "need", f"{n.institution.name}{_SEP}{n.title}", n.id, need_record_text(n)


def demo_keys() -> set[tuple[str, str]]:
    """Return the (kind, natural key) of every record in the shipped demo data."""

    def read(name: str) -> list[dict[str, Any]]:
        return json.loads((_DATA / name).read_text(encoding="utf-8"))

    keys = {("project", r["name"]) for r in read("projects.json")}
    keys |= {("institution", r["name"]) for r in read("institutions.json")}
    keys |= {("need", f"{r['institution']}{_SEP}{r['title']}") for r in read("needs.json")}
    return keys


def restore_shipped_vectors(session: Session, model: str, path: Path = VECTORS) -> int:
    """Store the shipped vector of every record lacking a current one, where model and text hash match.

    Args:
        model: the name the configured embedder records (``embeddings.model_name(spec)``); a file
            made by another model is ignored.

    Returns:
        How many vectors were stored (committed).
    """
    if not path.is_file():
        return 0
    with np.load(path, allow_pickle=False) as data:
        if str(data["model"]) != model:
            return 0
        shipped = {
            (str(kind), str(key)): (str(digest), vector)
            for kind, key, digest, vector in zip(
                data["kind"], data["key"], data["hash"], data["vector"], strict=True
            )
        }
    current = {(r.owner_kind, r.owner_id): r for r in session.scalars(select(EmbeddingRecord))}
    restored = 0
    for kind, key, owner_id, text in list(_records(session)):
        found = shipped.get((kind, key))
        if found is None:
            continue
        digest, vector = found
        if digest != text_hash(text):
            continue  # the text changed since the file was made: encoded as usual
        rec = current.get((kind, owner_id))
        if rec is not None and rec.model == model and rec.text_hash == digest:
            continue
        rec = rec or EmbeddingRecord(owner_kind=kind, owner_id=owner_id)
        rec.model, rec.dim, rec.text_hash = model, int(vector.shape[0]), digest
        rec.vector = np.asarray(vector, dtype=np.float32).tobytes()
        session.add(rec)
        restored += 1
    session.commit()
    return restored


def write_shipped_vectors(session: Session, model: str, path: Path) -> tuple[int, int]:
    """Write the current vectors of the demo records found in the database to path (atomically).

    Only records whose stored vector was made by this model from their current text are written.

    Returns:
        (vectors written, demo records without a current vector).
    """
    stored = {
        (r.owner_kind, r.owner_id): r
        for r in session.scalars(select(EmbeddingRecord).where(EmbeddingRecord.model == model))
    }
    wanted = demo_keys()
    rows = []
    for kind, key, owner_id, text in _records(session):
        rec = stored.get((kind, owner_id))
        if (kind, key) in wanted and rec is not None and rec.text_hash == text_hash(text):
            rows.append((kind, key, rec.text_hash, np.frombuffer(rec.vector, dtype=np.float32)))
            wanted.discard((kind, key))
    rows.sort(key=lambda r: (r[0], r[1]))
    if not rows:
        raise ValueError(f"no demo record has a current vector made by {model!r}: run `flask embed` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp,
        model=np.array(model),
        kind=np.array([r[0] for r in rows]),
        key=np.array([r[1] for r in rows]),
        hash=np.array([r[2] for r in rows]),
        vector=np.stack([r[3] for r in rows]).astype(np.float32),
    )
    os.replace(tmp, path)
    return len(rows), len(wanted)
