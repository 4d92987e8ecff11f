"""The ranking core's copies of the contest vocabulary agree with models/enums.py, their one source.

matching/ may not import models/ (the import-linter contract), so matching/types.py spells out the labels
it ranks on; these tests fail the moment a label is added, renamed or reordered on one side only.
"""

from __future__ import annotations

from typing import get_args

from app.params import SIDES as PARAM_SIDES
from matching import types
from models.enums import (
    PROJECT_NEEDS,
    SIDE_LABELS,
    SIDES,
    Award,
    InstitutionKind,
    ServiceKind,
    Stage,
)
from models.pipeline import SIDE_OUTCOME


def test_institution_kinds_and_their_sides() -> None:
    assert {k.value: k.side for k in InstitutionKind} == types.KIND_SIDE
    assert list(types.KIND_SIDE) == InstitutionKind.labels()  # same order: lists and menus follow it


def test_the_three_sides() -> None:
    assert get_args(types.Side) == SIDES
    assert tuple(SIDE_LABELS) == SIDES
    assert tuple(SIDE_OUTCOME) == SIDES
    assert {k.side for k in InstitutionKind} == set(SIDES)
    assert PARAM_SIDES is SIDES


def test_stages_in_order() -> None:
    # the order matters: the core measures stage distance by the index
    assert tuple(Stage.labels()) == types.STAGES


def test_awards_best_first() -> None:
    # the order matters: the award feature scores by the index, the last one (无) scores nothing
    assert tuple(Award.labels()) == types.AWARDS
    assert types.AWARDS[-1] == Award.NONE.value


def test_services_and_needs() -> None:
    assert tuple(ServiceKind.labels()) == types.SERVICE_KINDS
    assert (types.NEED_FINANCING, types.NEED_LANDING, *types.SERVICE_KINDS) == PROJECT_NEEDS
