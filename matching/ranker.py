"""Rankers: turn feature matrices into scores and per-feature contributions.

Two implementations share one interface so the service and the benchmark never care which one
runs: :class:`HandWeightedRanker` (hand-set weights, the fallback when nothing has been learned)
and :class:`LearnedRanker` (scikit-learn, trained on connection outcomes or on history).
Contributions are additive pieces of the score, one per feature, and become the reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from matching.features import FEATURES

__all__ = ["DEFAULT_WEIGHTS", "HandWeightedRanker", "LearnedRanker", "Ranker", "load_ranker"]

#: Hand-set weights in score points per feature unit; a sane fallback, not a fitted model.
DEFAULT_WEIGHTS: dict[str, float] = {
    "dense": 5.0,  # per standard deviation above the query's candidates
    "dense_port_max": 3.0,
    "dense_port_mean": 2.0,
    "bm25": 4.0,
    "industry": 8.0,
    "industry_portfolio": 6.0,
    "industry_count": 1.0,
    "stage": 5.0,
    "stage_portfolio": 3.0,
    "stage_count": 1.0,
    "stage_round": 1.0,
    "amount": 6.0,
    "region": 3.0,
    "region_base": 4.0,
    "region_portfolio": 2.0,
    "services": 8.0,
    "need_side": 6.0,
    "activity": 1.0,
    "recency": 1.0,
    # The hand-set fallback keeps its one recency term; the finer activity features are for learning.
    "recency_fast": 0.0,
    "recency_slow": 0.0,
    "idle": 0.0,
    "coinvest": 3.0,
    "award": 3.0,
    "group": 1.0,
}


class Ranker:
    """Score feature rows (n, len(FEATURES)) and split each score into feature contributions."""

    def score(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return one score per row; higher ranks first."""
        raise NotImplementedError

    def contributions(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return (n, n_features) additive contributions of each feature to each row's score."""
        raise NotImplementedError

    def feature_importances(self) -> dict[str, float]:
        """Return a non-negative importance per feature name (for reports and the notebook)."""
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write the ranker to path with joblib."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, Path(path))

    @staticmethod
    def load(path: str | Path) -> Ranker:
        """Read a ranker written by :meth:`save`."""
        obj = joblib.load(Path(path))
        if not isinstance(obj, Ranker):
            raise TypeError(f"{path} does not hold a Ranker, got {type(obj).__name__}")
        if tuple(getattr(obj, "feature_names_", FEATURES)) != FEATURES:
            raise ValueError(f"{path} was trained on other features; retrain it")
        return obj


def load_ranker(path: str | Path | None) -> Ranker:
    """Return the ranker saved at path, or the hand-weighted fallback when there is none."""
    if path is not None and Path(path).is_file():
        return Ranker.load(path)
    return HandWeightedRanker()


def _as_matrix(X: ArrayLike) -> NDArray[np.float64]:
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURES):
        raise ValueError(f"X must have shape (n, {len(FEATURES)}), got {matrix.shape}")
    return matrix


class HandWeightedRanker(Ranker):
    """A linear score with hand-set weights (score points per feature unit).

    Args:
        weights: per-feature weights overriding :data:`DEFAULT_WEIGHTS`; unknown names are an error.
    """

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = weights

    def _vector(self) -> NDArray[np.float64]:
        merged = dict(DEFAULT_WEIGHTS)
        if self.weights:
            unknown = set(self.weights) - set(FEATURES)
            if unknown:
                raise ValueError(f"unknown feature weights: {sorted(unknown)}")
            merged.update(self.weights)
        return np.array([merged.get(f, 0.0) for f in FEATURES])

    def fit(self, X: ArrayLike | None = None, y: ArrayLike | None = None) -> HandWeightedRanker:
        """Return self unchanged: hand-set weights learn nothing."""
        return self

    def score(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the weighted sum of each row."""
        return _as_matrix(X) @ self._vector()

    def contributions(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return weight x value per feature."""
        return _as_matrix(X) * self._vector()

    def feature_importances(self) -> dict[str, float]:
        """Return the absolute weights."""
        return {f: abs(w) for f, w in zip(FEATURES, self._vector(), strict=True)}


#: The learners a LearnedRanker can fit.
LearnedModel = Literal["logistic", "pairwise", "hgb", "lambdarank"]


@dataclass(eq=False)
class LearnedRanker(Ranker):
    """A learned ranker (pointwise or pairwise) over the shared feature vector.

    Args:
        model: ``"lambdarank"`` (LambdaMART: LightGBM ``LGBMRanker`` with the lambdarank objective,
            fit per query group = project; exact TreeSHAP contributions; needs ``groups`` in fit),
            ``"logistic"`` (standardised logistic regression: exact coef x value contributions),
            ``"pairwise"`` (the same linear model fit on positive-minus-negative differences within
            each project, a RankNet-style objective; needs ``groups`` in fit) or ``"hgb"``
            (histogram gradient boosting: contributions by feature perturbation).
        C: inverse L2 strength of the logistic model.
        learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization: for ``"hgb"``
            and ``"lambdarank"`` (boosting rounds, leaves, rows per leaf, L2 on leaf values).
        class_weight: passed to the estimator (``"balanced"`` counters the many negatives).
        score_scale: multiplies log-odds so contributions read like score points.
        prior_weight: weight of a fixed activity prior added to the learned score, in log-odds per
            unit of ``prior_feature`` (log of the 2-year-decayed deal count). The learned part then
            only has to say which of the active institutions fits; a weight chosen on the newest
            history slice keeps who-is-active from being drowned by noisy text features.
        prior_feature: the feature the prior reads.
        random_state: seed of anything random.
    """

    model: LearnedModel = "logistic"
    C: float = 1.0
    learning_rate: float = 0.05
    max_iter: int = 200
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    class_weight: str | None = "balanced"
    score_scale: float = 10.0
    prior_weight: float = 0.0
    prior_feature: str = "recency_slow"
    random_state: int | None = 0

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> LearnedRanker:
        """Fit on feature rows X (n, n_features) and 0/1 labels y; return self.

        ``groups`` (one query id per row, e.g. the project) is required by ``"pairwise"``.
        """
        matrix = _as_matrix(X)
        labels = np.asarray(y).astype(int).ravel()
        if labels.shape[0] != matrix.shape[0]:
            raise ValueError(f"X has {matrix.shape[0]} rows but y has {labels.shape[0]} labels")
        if set(np.unique(labels).tolist()) != {0, 1}:
            raise ValueError("y must hold both labels 0 and 1")
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.mean_ = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.feature_names_ = FEATURES
        estimator: Any
        if self.model == "logistic":
            from sklearn.linear_model import LogisticRegression

            estimator = LogisticRegression(
                C=self.C, class_weight=self.class_weight, max_iter=2000, random_state=self.random_state
            )
            with threadpool_limits(limits=1):
                estimator.fit((matrix - self.mean_) / self.scale_, labels, sample_weight=weights)
        elif self.model == "pairwise":
            from sklearn.linear_model import LogisticRegression

            if groups is None:
                raise ValueError("model='pairwise' needs groups (the query id of every row)")
            diffs = self._pair_differences((matrix - self.mean_) / self.scale_, labels, np.asarray(groups))
            if diffs.shape[0] == 0:
                raise ValueError("no group holds both a positive and a negative row")
            signed = np.vstack([diffs, -diffs])
            target = np.r_[np.ones(len(diffs), dtype=int), np.zeros(len(diffs), dtype=int)]
            estimator = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000)
            with threadpool_limits(limits=1):
                estimator.fit(signed, target)
        elif self.model == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            estimator = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                class_weight=self.class_weight,
                early_stopping=False,
                random_state=self.random_state,
            )
            # One thread: on a few thousand rows OpenMP start-up and contention cost 10-40x more
            # than the work itself (measured on 2 shared cores).
            with threadpool_limits(limits=1):
                estimator.fit(matrix, labels, sample_weight=weights)
        elif self.model == "lambdarank":
            from matching.ltr import lgbm_ranker

            if groups is None:
                raise ValueError("model='lambdarank' needs groups (the query id of every row)")
            g = np.asarray(groups)
            order = np.argsort(g, kind="stable")  # LightGBM wants each query's rows contiguous
            _, sizes = np.unique(g[order], return_counts=True)
            estimator = lgbm_ranker(
                {
                    "learning_rate": self.learning_rate,
                    "num_leaves": self.max_leaf_nodes,
                    "min_child_samples": min(self.min_samples_leaf, max(1, int(sizes.min()))),
                    "reg_lambda": self.l2_regularization,
                },
                self.max_iter,
                0 if self.random_state is None else int(self.random_state),
            )
            estimator.fit(
                matrix[order],
                labels[order],
                group=sizes,
                sample_weight=None if weights is None else weights[order],
                feature_name=list(FEATURES),
            )
        else:
            raise ValueError(
                f"model must be 'logistic', 'pairwise', 'hgb' or 'lambdarank', got {self.model!r}"
            )
        self.estimator_ = estimator
        self.n_train_ = int(matrix.shape[0])
        self.n_positive_ = int(labels.sum())
        return self

    def _pair_differences(
        self, Z: NDArray[np.float64], labels: NDArray[np.int_], groups: NDArray[Any], per_positive: int = 50
    ) -> NDArray[np.float64]:
        """Return positive-minus-negative row differences within each group (negatives subsampled)."""
        rng = np.random.default_rng(self.random_state)
        out = []
        for g in np.unique(groups):
            rows = groups == g
            pos, neg = Z[rows & (labels == 1)], Z[rows & (labels == 0)]
            if len(pos) == 0 or len(neg) == 0:
                continue
            for p in pos:
                take = (
                    neg
                    if len(neg) <= per_positive
                    else neg[rng.choice(len(neg), per_positive, replace=False)]
                )
                out.append(p - take)
        return np.vstack(out) if out else np.zeros((0, Z.shape[1]))

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise RuntimeError("LearnedRanker is not fitted; call fit() or use HandWeightedRanker")

    def _raw(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.model in ("logistic", "pairwise"):
            out = self.estimator_.decision_function((matrix - self.mean_) / self.scale_)
        elif self.model == "lambdarank":
            out = self.estimator_.booster_.predict(matrix, num_threads=1)
        else:
            with threadpool_limits(limits=1):
                out = self.estimator_.decision_function(matrix)
        out = np.asarray(out, dtype=np.float64)
        if self.prior_weight:
            out = out + self.prior_weight * matrix[:, FEATURES.index(self.prior_feature)]
        return out * self.score_scale

    def score(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return scaled log-odds of a positive outcome per row."""
        self._check_fitted()
        return self._raw(_as_matrix(X))

    def contributions(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return per-feature contributions relative to the training mean.

        Logistic: coef x standardised value (exact). Boosting: score(x) - score(x with the feature
        set to its training mean), a one-at-a-time perturbation approximation of SHAP values.
        """
        self._check_fitted()
        matrix = _as_matrix(X)
        if self.model in ("logistic", "pairwise"):
            coef = self.estimator_.coef_.ravel().copy()
            coef[FEATURES.index(self.prior_feature)] += (
                self.prior_weight * self.scale_[FEATURES.index(self.prior_feature)]
            )
            return (matrix - self.mean_) / self.scale_ * coef * self.score_scale
        if self.model == "lambdarank":
            # Exact TreeSHAP values (the last column is the expected score, dropped).
            shap = np.asarray(self.estimator_.booster_.predict(matrix, pred_contrib=True, num_threads=1))
            out = shap[:, :-1].copy()
            if self.prior_weight:
                j = FEATURES.index(self.prior_feature)
                out[:, j] += self.prior_weight * (matrix[:, j] - self.mean_[j])
            return out * self.score_scale
        base = self._raw(matrix)
        out = np.empty_like(matrix)
        for j in range(matrix.shape[1]):
            probe = matrix.copy()
            probe[:, j] = self.mean_[j]
            out[:, j] = base - self._raw(probe)
        return out

    def feature_importances(self) -> dict[str, float]:
        """Return |coef| (logistic, standardised units) or mean |contribution| over training rows (trees)."""
        self._check_fitted()
        if self.model in ("logistic", "pairwise"):
            coef = self.estimator_.coef_.ravel().copy()
            j = FEATURES.index(self.prior_feature)
            coef[j] += self.prior_weight * self.scale_[j]
            values = np.abs(coef)
        else:
            values = np.asarray(
                self.importances_ if hasattr(self, "importances_") else np.zeros(len(FEATURES))
            )
        return {f: float(v) for f, v in zip(FEATURES, values, strict=True)}

    def set_importances(self, X: ArrayLike) -> LearnedRanker:
        """Store mean |contribution| over X as importances_ (for tree models); return self."""
        self.importances_ = np.abs(self.contributions(X)).mean(axis=0)
        return self
