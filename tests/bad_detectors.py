"""Faulty detectors for the conformance-check and isolation tests (not registered).

They live in a module of their own so that the spawned processes of
``breachbench.isolation.run_isolated`` can import them as ``bad_detectors:Name`` (a spawned
child gets the parent's ``sys.path``, which pytest has given the tests directory), and so that
fitted instances pickle by reference.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import polars as pl

from detectors.builtin import IsolationForestDetector, UnissuedTokenRule
from detectors.contract import empty_alerts

RAISER_MESSAGE = "planted failure in fit"
HOG_BYTES = 1_500_000_000


# ---- for run_isolated ------------------------------------------------------------------------


class Raiser:
    """Raises while fitting."""

    def fit(self, view):
        raise RuntimeError(RAISER_MESSAGE)

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class Sleeper:
    """Takes far longer than any test timeout to fit."""

    def fit(self, view):
        time.sleep(120)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class Hog:
    """Allocates and touches 1.5 GB while fitting (np.ones writes every page)."""

    def fit(self, view):
        self.ballast_ = np.ones(HOG_BYTES // 8)
        time.sleep(30)  # hold it: the parent must kill us, not see us finish
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


# ---- for check_detector ----------------------------------------------------------------------


def _gateway_file(view) -> Path:
    """A gateway file of the current bucket, from the view's private file lists."""
    return Path(view._logs["gateway"][view.bucket][0])


class PeeksAhead:
    """Scores today's source IPs by their requests today plus tomorrow, reading tomorrow's partition directly."""

    resolve = False

    def fit(self, view):
        return self

    def score(self, view):
        today = view.logs("gateway", current_only=True).group_by("src_ip").agg(n=pl.len()).collect()
        f = _gateway_file(view)
        part = (f.resolve() if self.resolve else f).parent  # .../logs/gateway/date=YYYY-MM-DD
        nxt = part.with_name(f"date={(view.bucket + dt.timedelta(days=1)).isoformat()}")
        files = sorted(nxt.glob("*.parquet"))
        if files:
            later = pl.read_parquet(files).group_by("src_ip").agg(m=pl.len())
            today = today.join(later, on="src_ip", how="left").with_columns(n=pl.col("n") + pl.col("m").fill_null(0)).drop("m")
        return today.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"), pl.lit("ip").alias("entity_kind"), pl.col("src_ip").alias("entity_id"),
            pl.col("n").cast(pl.Float64).alias("score"),
        )


class PeeksAheadResolved(PeeksAhead):
    """Like :class:`PeeksAhead`, but follows symbolic links to the real partition first."""

    resolve = True


class ReadsTruth:
    """Walks up from a log file to the dataset root and scores customers by their malicious events."""

    resolve = False

    def fit(self, view):
        return self

    def score(self, view):
        f = _gateway_file(view)
        root = (f.resolve() if self.resolve else f).parents[3]  # root/logs/gateway/date=.../part.parquet
        truth = root / "truth" / "malicious_events.parquet"
        gw = view.logs("gateway", current_only=True).select("event_id", "customer_id").collect()
        if truth.is_file():
            bad = pl.read_parquet(truth).select("event_id", hit=pl.lit(1.0))
            gw = gw.join(bad, on="event_id", how="left")
        else:
            gw = gw.with_columns(hit=pl.lit(0.0))
        s = gw.group_by("customer_id").agg(score=pl.col("hit").fill_null(0.0).sum())
        return s.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"), pl.lit("customer").alias("entity_kind"),
            pl.col("customer_id").cast(pl.String).alias("entity_id"), "score",
        )


class ReadsTruthResolved(ReadsTruth):
    """Like :class:`ReadsTruth`, but follows symbolic links to the real dataset first."""

    resolve = True


class Inverted(UnissuedTokenRule):
    """The unissued-token rule with its scores negated (lower = more suspicious)."""

    def score(self, view):
        return super().score(view).with_columns(score=-pl.col("score"))


class RawScoreSamples(IsolationForestDetector):
    """The classic scikit-learn slip: ``score_samples`` used as is (higher = more normal)."""

    def score(self, view):
        return super().score(view).with_columns(score=-pl.col("score"))


class Nondeterministic:
    """Random scores from an unseeded generator."""

    def fit(self, view):
        return self

    def score(self, view):
        ips = view.logs("gateway", current_only=True).select(pl.col("src_ip").unique().sort()).collect()
        return ips.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"), pl.lit("ip").alias("entity_kind"), pl.col("src_ip").alias("entity_id"),
            score=pl.Series(np.random.default_rng().random(ips.height)),
        )


class HoldsLambda(UnissuedTokenRule):
    """Keeps a lambda in its fitted state."""

    def fit(self, view):
        self.transform_ = lambda s: s
        return self


class HoldsGenerator(UnissuedTokenRule):
    """Keeps a generator in its fitted state."""

    def fit(self, view):
        self.days_ = (d for d in view.buckets)
        return self


class OtherBucket(UnissuedTokenRule):
    """Labels its alerts with the next bucket."""

    def score(self, view):
        return super().score(view).with_columns(bucket=pl.lit(view.bucket + dt.timedelta(days=1), pl.Date))


class NoScoreColumn(UnissuedTokenRule):
    """Forgets the score column."""

    def score(self, view):
        return super().score(view).drop("score")
