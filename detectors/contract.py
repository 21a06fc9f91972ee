"""The detector contract (docs/detectors.md).

A detector is any class constructible without arguments that has two methods:

* ``fit(view)``: called once with a view over the warm-up buckets (``view.bucket`` is None);
* ``score(view)``: called once per later bucket, in time order, with a view that reaches the
  logs up to and including ``view.bucket`` and nothing after it. It returns a polars frame
  with the columns of :data:`ALERTS` (``reason`` optional): one row per entity it wants to
  flag in that bucket, higher ``score`` meaning more suspicious.

Nothing needs to be imported or subclassed: the contract is structural. Analysts read the top
``k`` alert units of each bucket (the budget).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import polars as pl

from simulator.errors import BreachBenchError
from simulator.schema import ENTITY_KINDS

#: Columns of an alerts frame. ``reason`` may be omitted.
ALERTS = pl.Schema(
    {
        "bucket": pl.Date,
        "entity_kind": pl.String,
        "entity_id": pl.String,
        "score": pl.Float64,
        "reason": pl.String,
    }
)
REQUIRED = ("bucket", "entity_kind", "entity_id", "score")


class AlertsError(BreachBenchError, ValueError):
    """An alerts frame that breaks the contract; the message says which column and why."""


@runtime_checkable
class Detector(Protocol):
    """Structural type of a detector (see the module docstring)."""

    def fit(self, view: object) -> object:
        """Learn from the warm-up buckets."""

    def score(self, view: object) -> pl.DataFrame:
        """Alerts for ``view.bucket``."""


def empty_alerts() -> pl.DataFrame:
    """An alerts frame with no rows."""
    return pl.DataFrame(schema=ALERTS)


def validate_alerts(df: object, *, bucket: dt.date | None = None, source: str = "alerts") -> pl.DataFrame:
    """Check an alerts frame and return it in the canonical schema.

    Args:
        df: what a detector returned, or what was read from an alerts file.
        bucket: when given, every row must be for this bucket (no look-back or look-ahead).
        source: named in error messages (a detector id or a file path).

    Raises:
        AlertsError: missing columns, wrong types (a score that is not a number, a bucket that
            is not a date), unknown entity kinds, NaN or infinite scores, rows for another bucket,
            or duplicate alert units.
    """
    if df is None:
        return empty_alerts()
    if not isinstance(df, pl.DataFrame):
        raise AlertsError(f"{source}: expected a polars DataFrame, got {type(df).__name__}")
    _check_columns(df, source)
    df = _canonical(df, source)
    _check_values(df, bucket, source)
    return df


def _check_columns(df: pl.DataFrame, source: str) -> None:
    """The required columns are there, no others, and score and bucket have the right kinds of type."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise AlertsError(f"{source}: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)} (optional: reason)")
    extra = [c for c in df.columns if c not in ALERTS.names()]
    if extra:
        raise AlertsError(f"{source}: unexpected column(s) {', '.join(extra)}; accepted: {', '.join(ALERTS.names())}")
    if df.schema["score"] == pl.Boolean or not df.schema["score"].is_numeric():
        raise AlertsError(f"{source}: score is {df.schema['score']}; accepted: a number (float or integer)")
    if df.schema["bucket"] != pl.Date:
        raise AlertsError(f"{source}: bucket is {df.schema['bucket']}; accepted: a date (pl.Date)")


def _canonical(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """The frame in the canonical schema (a null ``reason`` when it has none)."""
    if "reason" not in df.columns:
        df = df.with_columns(reason=pl.lit(None, pl.String))
    try:
        return df.select(ALERTS.names()).cast(ALERTS, strict=True)
    except Exception as exc:  # polars raises several types; report the column types instead
        got = ", ".join(f"{c}: {t}" for c, t in zip(df.columns, df.dtypes, strict=True))
        raise AlertsError(
            f"{source}: columns cannot be read as bucket: date, entity_kind: str, entity_id: str, score: float ({got}): {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None


def _check_values(df: pl.DataFrame, bucket: dt.date | None, source: str) -> None:
    """Known entity kinds, no nulls, finite scores, only ``bucket``'s rows (when given), no unit twice.

    Every check in one pass first (a bench validates thousands of frames a run); only a frame that
    fails one is looked at again, to name what is wrong.
    """
    if df.height == 0:
        return
    clean = df.select(
        ok=pl.col("entity_kind").is_in(list(ENTITY_KINDS)).all()
        & pl.all_horizontal(pl.col(list(REQUIRED)).null_count() == 0)
        & pl.col("score").is_finite().all()
        & ((pl.col("bucket") == bucket).all() if bucket is not None else pl.lit(True))
        & ~pl.struct(REQUIRED[:3]).is_duplicated().any()
    ).item()
    if clean:
        return
    bad = df.filter(~pl.col("entity_kind").is_in(list(ENTITY_KINDS)))["entity_kind"].unique().sort().to_list()
    if bad:
        raise AlertsError(f"{source}: unknown entity_kind {bad[0]!r}; accepted: {', '.join(ENTITY_KINDS)}")
    nulls = [c for c in REQUIRED if df[c].null_count()]
    if nulls:
        raise AlertsError(
            f"{source}: null {', '.join(nulls)} in {df.select(pl.any_horizontal(pl.col(nulls).is_null()).sum()).item()} row(s); every alert needs all of {', '.join(REQUIRED)}"
        )
    if df.filter(pl.col("score").is_nan()).height:
        raise AlertsError(f"{source}: score is NaN in {df.filter(pl.col('score').is_nan()).height} row(s)")
    if df.filter(pl.col("score").is_infinite()).height:
        raise AlertsError(
            f"{source}: score is infinite in {df.filter(pl.col('score').is_infinite()).height} row(s); accepted: finite numbers"
        )
    if bucket is not None:
        other = df.filter(pl.col("bucket") != bucket)
        if other.height:
            raise AlertsError(f"{source}: returned rows for bucket {other['bucket'][0]} while scoring bucket {bucket}")
    dup = df.select(REQUIRED[:3]).is_duplicated()
    if dup.any():
        row = df.filter(dup).row(0, named=True)
        raise AlertsError(f"{source}: duplicate alert unit ({row['bucket']}, {row['entity_kind']}, {row['entity_id']})")
