"""Pure ranking core: indexes, features, rankers, explanations and evaluation."""

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
