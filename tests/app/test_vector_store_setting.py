"""MATCH_VECTOR_STORE: the demo ranks alike through Milvus (milvus-lite) and FAISS; bad values stop it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from embeddings.stores import MilvusBackend, MilvusStore, collection_name
from tests.conftest import REPO, app_config


@pytest.fixture()
def milvus_file(tmp_path: Path) -> str:
    path = str(tmp_path / "vectors.db")
    probe = MilvusBackend(path)
    try:
        probe.client.list_collections()
    except Exception as exc:
        pytest.skip(f"milvus-lite cannot start here: {exc}")
    return path


def _ids(client: Any, url: str) -> list[int]:
    r = client.get(url)
    assert r.status_code == 200, r.get_json()
    return [item["id"] for item in r.get_json()["items"]]


def test_milvus_rankings_equal_faiss_rankings(make_app: Any, milvus_file: str) -> None:
    faiss_app = make_app()
    milvus_app = make_app(VECTOR_STORE=f"milvus:{milvus_file}")
    urls = [
        f"/api/projects/{p}/matches?kind={side}&k=10" for p in (1, 7, 20, 50) for side in ("fund", "base")
    ]
    urls += [f"/api/institutions/{i}/matches?k=10" for i in (1, 5, 30, 60)]
    fc, mc = faiss_app.test_client(), milvus_app.test_client()
    for url in urls:
        expected = _ids(fc, url)
        assert len(expected) == 10
        assert _ids(mc, url) == expected, url

    service = milvus_app.extensions["matching"]
    assert isinstance(service._proj_index, MilvusStore) and isinstance(service._inst_index, MilvusStore)
    assert faiss_app.extensions["matching"]._proj_index.kind == "faiss"
    projects = service._proj_index
    assert projects.remote_count() == len(projects) == len(faiss_app.extensions["matching"]._proj_index)
    # an edit reaches the collection
    gone = int(projects.ids()[0])
    service.remove_project(gone)
    assert gone not in projects and projects.remote_count() == len(projects)

    # `flask index rebuild` rebuilds the collection from the database's vectors
    result = milvus_app.test_cli_runner().invoke(args=["index", "rebuild"])
    assert result.exit_code == 0, result.output
    client = milvus_app.extensions["vector_backend"].client
    name = collection_name("projects", service.embedder.name)
    rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert rows[0]["count(*)"] == len(faiss_app.extensions["matching"]._proj_index)  # the removed one is back


@pytest.mark.parametrize("value", ["milvus", "milvus:", "milvus:vectors.sqlite", "pgvector:x"])
def test_a_bad_setting_stops_the_start(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="MATCH_VECTOR_STORE"):
        create_app(app_config(tmp_path / "m.db", tmp_path / "index", VECTOR_STORE=value))


@pytest.mark.parametrize(
    ("value", "missing"),
    [("milvus:vectors.db", "milvus_lite"), ("milvus:http://127.0.0.1:19530", "pymilvus")],
)
def test_milvus_without_its_packages_stops_the_start_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, missing: str
) -> None:
    """pymilvus and milvus-lite are the `milvus` extra: naming Milvus without them says how to install."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else find_spec(name, *a)
    )
    with pytest.raises(RuntimeError, match=rf"needs {missing}.*pip install -e '\.\[milvus\]'"):
        create_app(app_config(tmp_path / "m.db", tmp_path / "index", VECTOR_STORE=value))
    assert create_app(
        app_config(tmp_path / "f.db", tmp_path / "index", VECTOR_STORE="faiss")
    )  # FAISS needs neither


def test_faiss_default_never_imports_pymilvus(app: Any) -> None:
    code = (
        "import sys; from app import create_app; from app.services import build_matching\n"
        f"a = create_app({{'DATABASE_URL': {app.config['DATABASE_URL']!r}, "
        f"'INDEX_DIR': {app.config['INDEX_DIR']!r}}})\n"
        "s = build_matching(a); assert s.match_project(1, 'fund', 10)\n"
        "print('pymilvus' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
