"""Built-in detectors: the null and random anchors, a rule and a learned detector.

Each follows scikit-learn's estimator rule: ``__init__`` stores its keyword arguments, fitted
state ends in ``_``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from detectors.adapters import feature_matrix
from detectors.contract import ALERTS, empty_alerts
from detectors.features import UNIT_STREAMS, entity_units, feature_table, with_issuance
from detectors.view import View
from simulator.schema import ENTITY_COLUMNS


class NullDetector:
    """Never alerts: the floor of every metric (operational score 0)."""

    version = "1"

    def fit(self, view: object) -> NullDetector:
        """Nothing to learn."""
        return self

    def score(self, view: object) -> pl.DataFrame:
        """No alerts."""
        return empty_alerts()


class RandomDetector:
    """Scores every entity seen in the bucket uniformly at random (AUPRC near prevalence)."""

    version = "1"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, view: object) -> RandomDetector:
        """Nothing to learn."""
        return self

    def score(self, view: View) -> pl.DataFrame:
        """A uniform score for every entity of the current bucket, seeded by (seed, bucket)."""
        assert view.bucket is not None, "score() gets a view with a current bucket"
        units = entity_units(*(view.logs(s, current_only=True) for s in UNIT_STREAMS))
        r = np.random.default_rng([self.seed, view.bucket.toordinal()])
        return units.with_columns(score=pl.Series(r.random(units.height)), reason=pl.lit(None, pl.String)).select(ALERTS.names())


class UnissuedTokenRule:
    """Flags gateway traffic whose token has no issuance record in auth.

    The rule the 2025 case lacked: the gateway accepted any token the key signed, and nobody
    compared tokens against the auth service's issuance log. Tokens issued in the previous
    bucket count as issued (sessions that cross midnight). Each source IP, signing key,
    customer and token is scored by the number of distinct unissued tokens it involves (1 for
    a token), so the aggregates rank first within the budget.
    """

    version = "1"

    def __init__(self, kinds: tuple[str, ...] = ("ip", "key", "customer", "token")) -> None:
        self.kinds = kinds

    def fit(self, view: object) -> UnissuedTokenRule:
        """A rule: nothing to learn."""
        return self

    def score(self, view: View) -> pl.DataFrame:
        """Count unissued tokens per entity in the current bucket."""
        bucket = view.bucket
        assert bucket is not None, "score() gets a view with a current bucket"
        gw = view.logs("gateway", current_only=True)
        auth = view.logs("auth").filter(pl.col("bucket") >= bucket - dt.timedelta(days=1))
        bad = with_issuance(gw, auth).filter(~pl.col("issued"))
        parts = [
            bad.group_by(ENTITY_COLUMNS[k])
            .agg(score=pl.col("token_id").n_unique().cast(pl.Float64))
            .select(
                pl.lit(bucket, pl.Date).alias("bucket"),
                pl.lit(k).alias("entity_kind"),
                pl.col(ENTITY_COLUMNS[k]).cast(pl.String).alias("entity_id"),
                "score",
                pl.format("{} tokens with no issuance record", pl.col("score").cast(pl.Int64)).alias("reason"),
            )
            for k in self.kinds
        ]
        return pl.concat(parts).collect().sort("entity_kind", "entity_id")


class IsolationForestDetector:
    """IsolationForest over entity-bucket gateway features, one forest per entity kind.

    Fitted on the warm-up buckets; each bucket's entities are scored by the negated
    ``score_samples`` (higher is more anomalous). Counts are log-scaled.
    """

    version = "1"

    def __init__(
        self, kinds: tuple[str, ...] = ("ip", "customer"), n_estimators: int = 100, max_samples: int = 4096, seed: int = 0
    ) -> None:
        self.kinds = kinds
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed

    def fit(self, view: View) -> IsolationForestDetector:
        """Fit one forest per kind on the warm-up features."""
        from sklearn.ensemble import IsolationForest

        self.forests_ = {}
        for kind in self.kinds:
            x = feature_matrix(feature_table(view, kind, current_only=False))
            forest = IsolationForest(
                n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(x)), random_state=self.seed
            )
            self.forests_[kind] = forest.fit(x)
        return self

    def score(self, view: View) -> pl.DataFrame:
        """Anomaly score of every entity of the current bucket."""
        parts = []
        for kind, forest in self.forests_.items():
            f = feature_table(view, kind)
            if f.height == 0:
                continue
            s = -forest.score_samples(feature_matrix(f))
            parts.append(
                f.select("bucket", "entity_kind", "entity_id").with_columns(score=pl.Series(s), reason=pl.lit(None, pl.String))
            )
        return pl.concat(parts).select(ALERTS.names()) if parts else empty_alerts()
