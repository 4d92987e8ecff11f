"""SQLAlchemy 2.x typed mappings of the matchmaking service (no Flask here).

enums.py      the contest's vocabularies (the one source: kinds, stages, awards, services, sides, ...)
base.py       the declarative base and column types; db.py engines and sessions outside Flask
core.py       contests, projects, institutions, needs, stored vectors; catalog.py the contest catalogue
pipeline.py   connections and their append-only history, with the pipeline's vocabulary
accounts.py, events.py, alerts.py, jobs.py, intake.py, index_changes.py   one feature's tables each
Who may see which column is not decided here but in app/access.py.
"""

from models.base import Base
from models.core import Contest, EmbeddingRecord, Institution, Need, Project
from models.enums import (
    Award,
    ConnectionStage,
    ContestKind,
    FundingRound,
    InstitutionKind,
    NeedStatus,
    ProjectGroup,
    ServiceKind,
    Stage,
)
from models.events import (
    Conflict,
    Event,
    EventContest,
    EventInvite,
    Expert,
    ExpertAssignment,
    InstitutionRegistration,
    Meeting,
)
from models.feedback import ActionKind, FeedbackAction, Impression
from models.index_changes import IndexChange
from models.intake import ContestFiling, DuplicateKind, DuplicatePair, DuplicateStatus
from models.jobs import Job, JobKind, JobStatus
from models.pipeline import Connection

__all__ = [
    "ActionKind",
    "Award",
    "Base",
    "Conflict",
    "Connection",
    "ConnectionStage",
    "Contest",
    "ContestFiling",
    "ContestKind",
    "DuplicateKind",
    "DuplicatePair",
    "DuplicateStatus",
    "EmbeddingRecord",
    "Event",
    "EventContest",
    "EventInvite",
    "Expert",
    "ExpertAssignment",
    "FeedbackAction",
    "FundingRound",
    "Impression",
    "IndexChange",
    "Institution",
    "InstitutionKind",
    "InstitutionRegistration",
    "Job",
    "JobKind",
    "JobStatus",
    "Meeting",
    "Need",
    "NeedStatus",
    "Project",
    "ProjectGroup",
    "ServiceKind",
    "Stage",
]
