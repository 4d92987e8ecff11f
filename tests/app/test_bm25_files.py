"""Saved BM25 files: used as they are when intact, rebuilt when damaged, synced when stale.

Like the FAISS files (tests/app/test_faults.py), a deleted, truncated, corrupted or foreign BM25 file
is found when the service starts and never used: the index is built again from the texts (rankings
are the same as with intact files) and saved, so the next start uses it. A stale file (saved when a
record's text was another) is used with that record tokenized again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from matching.lexical import LexicalIndex, lexical_paths

URLS = ("/api/projects/1/matches?kind=fund&k=8", "/api/institutions/1/matches?k=8")


def _ranked(client: Any) -> list[list[tuple[int, float]]]:
    out = []
    for url in URLS:
        body = client.get(url).get_json()
        assert "degraded" not in body
        out.append([(item["id"], item["score"]) for item in body["items"]])
    return out


def test_intact_bm25_files_are_used_without_tokenizing(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    _ranked(client)
    service = app.extensions["matching"]
    assert service.lexical_loaded == {
        "projects": "saved",
        "institutions": "saved",
        "institutions_own": "saved",
    }
    assert service._proj_lex.mapped and service._inst_lex.mapped


def _damage(index_dir: Path, how: str) -> None:
    data, manifest = lexical_paths(index_dir, "projects")
    if how == "delete":
        data.unlink()
    elif how == "truncate":
        raw = data.read_bytes()
        data.write_bytes(raw[: len(raw) // 2])
    elif how == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 3] ^= 0x55
        data.write_bytes(bytes(raw))
    elif how == "corrupt_manifest":
        manifest.write_text('{"format": 1, "tokenizer": ', encoding="utf-8")
    elif how == "other_tokenizer":
        body = json.loads(manifest.read_text("utf-8"))
        body["tokenizer"] = "jieba-0.0-v0-0000"
        manifest.write_text(json.dumps(body), encoding="utf-8")
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["delete", "truncate", "flip", "corrupt_manifest", "other_tokenizer"])
def test_a_damaged_bm25_file_is_rebuilt_and_rankings_do_not_change(make_app: Any, how: str) -> None:
    healthy = _ranked(make_app().test_client())
    app = make_app()
    index_dir = Path(app.config["INDEX_DIR"])
    _damage(index_dir, how)
    assert _ranked(app.test_client()) == healthy
    service = app.extensions["matching"]
    assert service.lexical_loaded["projects"].startswith("built")
    assert service.lexical_loaded["institutions"] == "saved"
    # Saved again: the next start uses the file.
    assert LexicalIndex().open(index_dir, "projects") is None
    again = make_app()
    for name in ("projects.bm25", "projects.bm25.json"):
        (Path(again.config["INDEX_DIR"]) / name).write_bytes((index_dir / name).read_bytes())
    assert _ranked(again.test_client()) == healthy
    assert again.extensions["matching"].lexical_loaded["projects"] == "saved"


def test_a_stale_bm25_file_is_used_with_the_changed_texts_tokenized_again(make_app: Any) -> None:
    healthy = _ranked(make_app().test_client())
    app = make_app()
    index_dir = Path(app.config["INDEX_DIR"])
    stale = LexicalIndex()
    assert stale.open(index_dir, "projects") is None
    some = stale.ids()[:2]
    stale.upsert(some[0], "一段早已改掉的旧文本 碳纤维")  # as if saved before the record was edited
    stale.remove(some[1])  # ... and before this one was created
    stale.save(index_dir, "projects")
    assert _ranked(app.test_client()) == healthy
    service = app.extensions["matching"]
    assert service.lexical_loaded["projects"] == "saved+2"
    service.flush()
    fixed = LexicalIndex()
    assert fixed.open(index_dir, "projects") is None
    assert sorted(fixed.ids()) == sorted(service._proj_lex.ids())
