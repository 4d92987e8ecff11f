"""Offline evaluation of the ranking on the shared investment data (never shipped with the service).

- ``benchmark``: ``python -m evaluation.benchmark eval`` ranks every evaluation set with the same
  features and ranker code as the service (``matching``) and scores it with the shared metric.
- ``preferences``: how well preferences inferred from an institution's text agree with real portfolios.
"""
