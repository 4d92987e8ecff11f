"""SQLAlchemy 2.x typed mappings of the matchmaking service (no Flask here)."""

from models.base import Base
from models.core import Connection, Contest, EmbeddingRecord, Institution, Need, Project
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
from models.jobs import Job, JobKind, JobStatus
from models.index_changes import IndexChange
from models.intake import ContestFiling, DuplicateKind, DuplicatePair, DuplicateStatus

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
