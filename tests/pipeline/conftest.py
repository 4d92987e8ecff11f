"""Accounts of every role for the pipeline tests, created in the test's private copy of the demo database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from models import Connection, Contest, Institution, InstitutionKind, Project

PASSWORD = "pipeline-test-pw-2026"


@dataclass
class World:
    """The ids a pipeline test works with: one fund, base and platform, projects with and without links."""

    fund_id: int
    base_id: int
    platform_id: int
    other_fund_id: int
    project_id: int  # no connection with the fund, base or platform yet
    other_project_id: int
    contest_id: int
    users: dict[str, int]


def _free_project(session: Any, inst_ids: list[int], skip: set[int]) -> Project:
    linked = set(
        session.scalars(select(Connection.project_id).where(Connection.institution_id.in_(inst_ids)))
    )
    for p in session.scalars(select(Project).order_by(Project.id)):
        if p.id not in linked and p.id not in skip:
            return p
    raise AssertionError("no project without connections in the demo data")


@pytest.fixture()
def world(app: Flask) -> World:
    """Create one account per role (bound to fresh objects) and return the ids."""
    from app.auth.accounts import hash_password
    from models.accounts import User
    from models.enums import AccountStatus, Role

    with app.app_context():
        s = db.session
        first = {
            k: s.scalar(select(Institution.id).where(Institution.kind == k).order_by(Institution.id))
            for k in InstitutionKind
        }
        fund, base, platform = (
            first[InstitutionKind.VC],
            first[InstitutionKind.SME_BASE],
            first[InstitutionKind.SERVICE_PLATFORM],
        )
        other_fund = s.scalar(
            select(Institution.id)
            .where(Institution.kind == InstitutionKind.VC, Institution.id != fund)
            .order_by(Institution.id)
        )
        p = _free_project(s, [fund, base, platform, other_fund], set())
        q = _free_project(s, [fund, base, platform, other_fund], {p.id})
        contest = s.get(Contest, p.contest_id)
        spec = {
            "sec": (Role.ADMIN, {}),
            "org": (Role.ORGANISER, {}),
            "org-other": (Role.ORGANISER, {}),
            "fund": (Role.INSTITUTION, {"institution_id": fund}),
            "other-fund": (Role.INSTITUTION, {"institution_id": other_fund}),
            "base": (Role.INSTITUTION, {"institution_id": base}),
            "platform": (Role.INSTITUTION, {"institution_id": platform}),
            "proj": (Role.PROJECT, {"project_id": p.id}),
            "proj-other": (Role.PROJECT, {"project_id": q.id}),
        }
        users = {}
        for name, (role, binding) in spec.items():
            u = User(
                username=f"pl-{name}",
                display_name=f"测试{name}",
                password_hash=hash_password(PASSWORD),
                role=role,
                status=AccountStatus.APPROVED,
                **binding,
            )
            if name == "org":
                u.contests = [contest]
            elif name == "org-other":
                u.contests = [s.scalar(select(Contest).where(Contest.id != contest.id).order_by(Contest.id))]
            s.add(u)
            s.flush()
            users[name] = u.id
        s.commit()
        return World(fund, base, platform, other_fund, p.id, q.id, contest.id, users)


def login(client: FlaskClient, who: str) -> FlaskClient:
    """Log the client in as one of the world's accounts (through the real login form)."""
    r = client.post("/login", data={"username": f"pl-{who}", "password": PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return client


@pytest.fixture()
def as_user(app: Flask, world: World):  # type: ignore[no-untyped-def]
    """Return a function: who -> a fresh logged-in test client."""

    def make(who: str) -> FlaskClient:
        return login(app.test_client(), who)

    return make
