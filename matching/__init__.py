"""Pure ranking core: no Flask, no SQLAlchemy, no models/ (the import-linter contract in pyproject.toml).

types.py      the profiles that cross the boundary, and this package's copies of the vocabularies and of
              the public view (kept equal to models/enums.py and app/access.py by tests)
service.py    MatchingService, the one object the app ranks through; store.py its profiles and indexes
candidates.py, scoring.py, evidence.py, explanation.py   the stages of one ranking
features.py, normalize.py, lexical.py   pair features, normalisations, BM25
ranker.py, learn.py      rankers and their training; explain.py  the Chinese reasons
assignment.py the event assignment solver.   Offline evaluation lives in evaluation/, outside the service.
"""

from matching.features import FEATURES, Evidence, build_evidence, pair_features
from matching.lexical import LexicalIndex
from matching.ranker import HandWeightedRanker, LearnedRanker, Ranker, load_ranker
from matching.service import MatchingService

__all__ = [
    "FEATURES",
    "Evidence",
    "HandWeightedRanker",
    "LearnedRanker",
    "LexicalIndex",
    "MatchingService",
    "Ranker",
    "build_evidence",
    "load_ranker",
    "pair_features",
]
