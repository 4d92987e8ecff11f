"""An institution's 对接服务报名 choices (参加对接活动 / 成为大赛评委 / 发布对接需求).

Chosen on the self-registration form, carried in the pending registration's data under `event_choices`
(choice names), and stored as an InstitutionRegistration row when the secretariat approves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from models.events import InstitutionRegistration, RegistrationChoice

DATA_KEY = "event_choices"


def names_from_labels(labels: Iterable[str]) -> list[str]:
    """Choice names, in the form's order, from the submitted labels; ValueError for an unknown label."""
    chosen = set(labels)
    unknown = chosen - set(RegistrationChoice.labels())
    if unknown:
        raise ValueError("对接服务报名选项：不认识的取值")
    return [RegistrationChoice.from_label(c).name for c in RegistrationChoice.labels() if c in chosen]


def record(session: Session, institution_id: int, names: Iterable[str]) -> InstitutionRegistration:
    """Store (or replace) an institution's choices; the caller commits."""
    valid = [n for n in names if n in RegistrationChoice.__members__]
    row = session.get(InstitutionRegistration, institution_id)
    if row is None:
        row = InstitutionRegistration(institution_id=institution_id)
        session.add(row)
    row.choices = valid
    return row


def labels_of(session: Session, institution_id: int) -> list[str]:
    """The chosen labels of an institution (empty when it never chose)."""
    row = session.get(InstitutionRegistration, institution_id)
    return [
        RegistrationChoice[n].value
        for n in (row.choices if row else [])
        if n in RegistrationChoice.__members__
    ]


def pop_choices(data: dict[str, Any]) -> list[str]:
    """Take the choices out of a registration's data (the profile schema does not know them)."""
    value = data.pop(DATA_KEY, None) or []
    return [str(n) for n in value if str(n) in RegistrationChoice.__members__]
