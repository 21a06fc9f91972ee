"""Bring any outlier estimator as a detector in one line.

Any object with ``fit(X)`` and ``decision_function(X)`` or ``score_samples(X)`` works: the
scikit-learn convention (higher = more normal, so scores are negated) and the PyOD convention
(higher = more anomalous, kept as is) are both handled::

    from sklearn.ensemble import IsolationForest
    from breachbench.adapters import from_estimator   # or detectors.adapters

    MyForest = from_estimator(lambda: IsolationForest(random_state=0), name="my-forest-v1")

``MyForest`` is a class constructible without arguments, ready for the entry-point group
``breachbench.detectors``. It scores the shared entity-bucket features
(:func:`detectors.features.gateway_features`) of each kind in ``kinds``, one estimator per kind
fitted on the warm-up buckets.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from detectors.contract import ALERTS, empty_alerts
from detectors.features import FEATURES, feature_table

LOGGED = {"requests", "customers", "tokens", "ips", "records"}


def feature_matrix(df: pl.DataFrame, features: tuple[str, ...] = tuple(FEATURES)) -> np.ndarray:
    """Numeric matrix of the features (counts log-scaled, nulls as 0)."""
    return df.select([pl.col(c).log1p() if c in LOGGED else pl.col(c) for c in features]).fill_null(0).to_numpy()


def higher_is_anomalous(estimator: Any) -> bool:
    """True for PyOD models (higher = more anomalous); False for scikit-learn's convention."""
    return type(estimator).__module__.split(".")[0] == "pyod"


def anomaly_scores(estimator: Any, x: np.ndarray) -> np.ndarray:
    """Scores where higher means more anomalous, whatever the estimator's convention."""
    with warnings.catch_warnings():  # third-party models warn about constant features; the run log is not theirs
        warnings.simplefilter("ignore", RuntimeWarning)
        return _scores(estimator, x)


def _scores(estimator: Any, x: np.ndarray) -> np.ndarray:
    if hasattr(estimator, "decision_function"):
        s = np.asarray(estimator.decision_function(x), dtype=np.float64)
    elif hasattr(estimator, "score_samples"):
        s = np.asarray(estimator.score_samples(x), dtype=np.float64)
    else:
        raise TypeError(f"{type(estimator).__name__} has neither decision_function nor score_samples")
    return s if higher_is_anomalous(estimator) else -s


def _fit_models(factory: Callable[[], Any], view: Any, kinds: tuple[str, ...], features: tuple[str, ...]) -> dict[str, Any]:
    """One fitted ``factory()`` per entity kind that has warm-up features."""
    models = {}
    for kind in kinds:
        x = feature_matrix(feature_table(view, kind, current_only=False), features)
        if len(x):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                models[kind] = factory().fit(x)
    return models


def _score_models(models: dict[str, Any], view: Any, features: tuple[str, ...]) -> pl.DataFrame:
    """Alerts of the current bucket: each kind's entities scored by its model."""
    parts = []
    for kind, model in models.items():
        f = feature_table(view, kind)
        if f.height:
            s = anomaly_scores(model, feature_matrix(f, features))
            parts.append(
                f.select("bucket", "entity_kind", "entity_id").with_columns(score=pl.Series(s), reason=pl.lit(None, pl.String))
            )
    return pl.concat(parts).select(ALERTS.names()) if parts else empty_alerts()


def from_estimator(
    factory: Callable[[], Any],
    *,
    name: str = "estimator-v1",
    kinds: tuple[str, ...] = ("ip", "customer"),
    features: tuple[str, ...] = tuple(FEATURES),
    qualname: str | None = None,
    module: str | None = None,
) -> type:
    """A detector class that fits ``factory()`` per entity kind on warm-up features and scores each bucket.

    Args:
        factory: makes a fresh unfitted estimator (called once per kind at fit time).
        name: the detector's id, used as its ``version`` string too.
        kinds: entity kinds to score (from {"ip", "customer", "key"}).
        features: columns of the feature table to use.
        qualname, module: where the class will live (``Name = from_estimator(..., qualname="Name",
            module=__name__)`` at module level), so that fitted detectors pickle.
    """

    class EstimatorDetector:
        __doc__ = f"Adapter: {name} over entity-bucket features ({', '.join(kinds)})."
        version = name

        def fit(self, view: Any) -> EstimatorDetector:
            self.models_ = _fit_models(factory, view, kinds, features)
            return self

        def score(self, view: Any) -> pl.DataFrame:
            return _score_models(self.models_, view, features)

    EstimatorDetector.__name__ = EstimatorDetector.__qualname__ = qualname or "".join(
        p.capitalize() for p in name.replace("-", "_").split("_")
    )
    if module:
        EstimatorDetector.__module__ = module
    return EstimatorDetector
