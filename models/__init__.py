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

__all__ = [
    "Award",
    "Base",
    "Connection",
    "ConnectionStage",
    "Contest",
    "ContestKind",
    "EmbeddingRecord",
    "FundingRound",
    "Institution",
    "InstitutionKind",
    "Need",
    "NeedStatus",
    "Project",
    "ProjectGroup",
    "ServiceKind",
    "Stage",
]
