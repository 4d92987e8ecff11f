"""The offline demo generator (tools/generate_demo.py) still writes exactly the committed demo data,
and that data passes the generator's own coverage rules."""

from __future__ import annotations

import json
from pathlib import Path

from tools import generate_demo as gen

DEMO_DATA = Path(__file__).resolve().parents[2] / "app" / "demo" / "data"


def test_generator_reproduces_the_committed_demo_files() -> None:
    for name, data in zip(gen.DATA_FILES, gen.generate(), strict=True):
        assert gen.render(data) == (DEMO_DATA / name).read_text(encoding="utf-8"), name


def test_committed_demo_data_passes_the_coverage_check() -> None:
    projects, institutions, needs = (
        json.loads((DEMO_DATA / name).read_text(encoding="utf-8")) for name in gen.DATA_FILES
    )
    summary = gen.check(projects, institutions, needs, gen.load_contests())
    assert summary["projects"] == len(projects) and summary["needs"] == len(needs)
    assert len(summary["institutions_per_kind"]) == 7


def test_generator_vocabularies_are_the_models_enums() -> None:
    from models import enums

    assert list(enums.INDUSTRIES) == gen.INDUSTRIES
    assert set(gen.KINDS) == set(enums.InstitutionKind.labels())
    assert gen.FUND_KINDS | gen.BASE_KINDS | {"中小企业公共服务平台"} == set(gen.KINDS)
    # every bank keyed by a vocabulary uses only its labels
    assert set(gen.SME_SECTOR) == set(gen.INDUSTRIES)
    assert {t["industry"] for t in gen.TOPICS.values()} <= set(gen.INDUSTRIES)
    assert set(gen.INSTITUTION_COUNT) <= set(gen.KINDS)


def test_main_writes_and_checks(tmp_path: Path, capsys) -> None:
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert "projects:" in capsys.readouterr().out
    assert (tmp_path / "needs.json").read_text(encoding="utf-8") == (DEMO_DATA / "needs.json").read_text(
        encoding="utf-8"
    )
