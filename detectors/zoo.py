"""The baseline zoo: rules, statistics and learned detectors to beat.

Every detector here follows the contract (structural; ``__init__`` stores keyword arguments,
fitted state ends in ``_``), reads only its view, and keeps state only about buckets it has
already seen, so scores never depend on later buckets.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from detectors.adapters import from_estimator
from detectors.contract import empty_alerts
from detectors.features import SENSITIVE, foreign


def _alerts(df: pl.DataFrame, bucket: dt.date, kind: str, reason: pl.Expr | str) -> pl.DataFrame:
    """Alerts from a frame with ``entity_id`` and ``score``."""
    if df.height == 0:
        return empty_alerts()
    r = pl.lit(reason) if isinstance(reason, str) else reason
    return df.select(
        pl.lit(bucket, pl.Date).alias("bucket"),
        pl.lit(kind).alias("entity_kind"),
        pl.col("entity_id").cast(pl.String),
        pl.col("score").cast(pl.Float64),
        r.cast(pl.String).alias("reason"),
    ).sort("entity_id")


def _local_hour(tz: str) -> pl.Expr:
    return pl.col("ts").dt.convert_time_zone(tz).dt.hour()


# ---- rules -------------------------------------------------------------------------------


class DepartedOwnerKeyRule:
    """Keys in use whose owner has left (the case's unrevoked key): score = tokens or uses today."""

    version = "1"

    def fit(self, view: Any) -> DepartedOwnerKeyRule:
        """A rule: nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Keys whose owner's termination date is on or before the bucket."""
        emp = view.world("employees").filter(pl.col("termination_date").is_not_null())
        keys = view.world("credentials").join(
            emp.select(pl.col("employee_id").alias("owner_employee_id")), on="owner_employee_id"
        )
        used = (
            pl.concat([view.logs(s, current_only=True).select("key_id", "token_id") for s in ("gateway", "auth")])
            .drop_nulls("key_id")
            .group_by("key_id")
            .agg(score=pl.col("token_id").n_unique() + 1)
            .collect()
        )
        hit = used.join(keys.select("key_id"), on="key_id").rename({"key_id": "entity_id"})
        return _alerts(hit, view.bucket, "key", "key owner has left")


class StaleKeyRule:
    """Keys in use that were not created or rotated for more than ``max_age_days``: score = age in days."""

    version = "1"

    def __init__(self, max_age_days: int = 365) -> None:
        self.max_age_days = max_age_days

    def fit(self, view: Any) -> StaleKeyRule:
        """A rule: nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Age of each key used today since its last rotation (or creation)."""
        end = dt.datetime.combine(view.bucket, dt.time(0), tzinfo=dt.UTC)
        creds = (
            view.world("credentials")
            .with_columns(age=((pl.lit(end) - pl.coalesce("rotated", "created")).dt.total_days()).cast(pl.Float64))
            .filter(pl.col("age") > self.max_age_days)
        )
        used = (
            pl.concat([view.logs(s, current_only=True).select("key_id") for s in ("gateway", "auth")])
            .drop_nulls()
            .unique()
            .collect()
        )
        hit = used.join(creds.select("key_id", "age"), on="key_id").select(
            pl.col("key_id").alias("entity_id"), pl.col("age").alias("score")
        )
        return _alerts(hit, view.bucket, "key", pl.format("not rotated for {} days", pl.col("score").cast(pl.Int64)))


class NewCountryRule:
    """Customers seen today from a country never seen for them before (warm-up included)."""

    version = "1"

    def fit(self, view: Any) -> NewCountryRule:
        """Remember each customer's countries over the warm-up."""
        self.seen_ = view.logs("gateway").select("customer_id", "country").unique().collect()
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Customers with a new country today; the seen set then grows with today's pairs."""
        today = view.logs("gateway", current_only=True).select("customer_id", "country").unique().collect()
        new = today.join(self.seen_, on=["customer_id", "country"], how="anti")
        self.seen_ = pl.concat([self.seen_, new])
        hit = new.group_by("customer_id").agg(score=pl.len().cast(pl.Float64), c=pl.col("country").sort().str.join(","))
        return _alerts(
            hit.rename({"customer_id": "entity_id"}),
            view.bucket,
            "customer",
            pl.format("new country {}", pl.col("c")) if hit.height else "",
        )


class AfterTerminationRule:
    """Employees active after their termination date (admin reads, logins, key use)."""

    version = "1"

    def fit(self, view: Any) -> AfterTerminationRule:
        """A rule: nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Events today by employees whose termination date is before today."""
        gone = view.world("employees").filter(pl.col("termination_date") < view.bucket).select("employee_id")
        acts = (
            pl.concat([view.logs(s, current_only=True).select("employee_id") for s in ("admin", "auth")]).drop_nulls().collect()
        )
        hit = acts.join(gone, on="employee_id").group_by("employee_id").agg(score=pl.len().cast(pl.Float64))
        return _alerts(hit.rename({"employee_id": "entity_id"}), view.bucket, "employee", "active after termination")


class NoTicketReadsRule:
    """Employees' reads of customer records with no ticket: score = untied reads today."""

    version = "1"

    def fit(self, view: Any) -> NoTicketReadsRule:
        """A rule: nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Count of today's admin reads without a ticket, per employee."""
        hit = (
            view.logs("admin", current_only=True)
            .filter(pl.col("ticket_id").is_null() & pl.col("customer_id").is_not_null())
            .group_by("employee_id")
            .agg(score=pl.len().cast(pl.Float64))
            .collect()
        )
        return _alerts(
            hit.rename({"employee_id": "entity_id"}),
            view.bucket,
            "employee",
            pl.format("{} reads without a ticket", pl.col("score").cast(pl.Int64)),
        )


class OffHoursBulkRule:
    """Records read at night (local 0-6h): per employee (admin rows) and per source IP (sensitive pages)."""

    version = "1"

    def __init__(self, night_end_hour: int = 6) -> None:
        self.night_end_hour = night_end_hour

    def fit(self, view: Any) -> OffHoursBulkRule:
        """A rule: nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Night-time record reads today."""
        tz = view.timezone
        emp = (
            view.logs("admin", current_only=True)
            .filter(_local_hour(tz) < self.night_end_hour)
            .group_by("employee_id")
            .agg(score=pl.col("row_count").sum().cast(pl.Float64))
            .collect()
        )
        ips = (
            view.logs("gateway", current_only=True)
            .filter((_local_hour(tz) < self.night_end_hour) & pl.col("endpoint").is_in(SENSITIVE))
            .group_by("src_ip")
            .agg(score=pl.col("records_returned").sum().cast(pl.Float64))
            .collect()
        )
        return pl.concat(
            [
                _alerts(emp.rename({"employee_id": "entity_id"}), view.bucket, "employee", "records read at night"),
                _alerts(ips.rename({"src_ip": "entity_id"}), view.bucket, "ip", "records read at night"),
            ]
        )


# ---- statistics --------------------------------------------------------------------------


class OwnHistoryDetector:
    """Today's volume of each entity against its own past: z-score of requests per bucket.

    Entities: customers and source IPs (gateway), employees (admin). The history is the
    warm-up plus every scored bucket so far; entities without history get the pooled mean and
    spread of their kind.
    """

    version = "1"

    def _counts(self, view: Any, current_only: bool) -> dict[str, pl.DataFrame]:
        g = view.logs("gateway", current_only=current_only)
        a = view.logs("admin", current_only=current_only)
        return {
            "customer": g.group_by("bucket", pl.col("customer_id").cast(pl.String).alias("entity_id")).agg(n=pl.len()).collect(),
            "ip": g.group_by("bucket", pl.col("src_ip").alias("entity_id")).agg(n=pl.len()).collect(),
            "employee": a.group_by("bucket", pl.col("employee_id").cast(pl.String).alias("entity_id"))
            .agg(n=pl.col("row_count").sum())
            .collect(),
        }

    def fit(self, view: Any) -> OwnHistoryDetector:
        """Per-entity sums of counts and squares over the warm-up."""
        self.stats_ = {
            k: df.group_by("entity_id").agg(
                s=pl.col("n").sum().cast(pl.Float64), q=(pl.col("n").cast(pl.Float64) ** 2).sum(), m=pl.len().cast(pl.Float64)
            )
            for k, df in self._counts(view, False).items()
        }
        self.days_ = float(len(view.buckets))
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """z = (today - mean) / (std + 1), with absent days counted as zero."""
        out = []
        for kind, today in self._counts(view, True).items():
            st = self.stats_[kind]
            d = self.days_
            j = today.join(st, on="entity_id", how="left").with_columns(pl.col("s", "q").fill_null(0.0))
            mean = pl.col("s") / d
            std = ((pl.col("q") / d - mean**2).clip(0)).sqrt()
            j = j.with_columns(score=(pl.col("n") - mean) / (std + 1.0))
            out.append(_alerts(j.select("entity_id", "score"), view.bucket, kind, "above its own history"))
            upd = today.select("entity_id", s=pl.col("n").cast(pl.Float64), q=pl.col("n").cast(pl.Float64) ** 2, m=pl.lit(1.0))
            self.stats_[kind] = pl.concat([st, upd]).group_by("entity_id").agg(pl.col("s", "q", "m").sum())
        self.days_ += 1
        return pl.concat(out)


class PeerGroupDetector:
    """Each employee's records read today against the peers of the same role that day (z-score)."""

    version = "1"

    def fit(self, view: Any) -> PeerGroupDetector:
        """Nothing to learn: peers are compared within the bucket."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """z-score of records read within the role."""
        roles = view.world("employees").select(pl.col("employee_id"), "role")
        reads = (
            view.logs("admin", current_only=True)
            .group_by("employee_id")
            .agg(n=pl.col("row_count").sum().cast(pl.Float64))
            .collect()
            .join(roles, on="employee_id", how="left")
            .sort("employee_id")  # a fixed order for the role's mean and spread (float sums depend on it)
        )
        z = reads.with_columns(
            score=(pl.col("n") - pl.col("n").mean().over("role")) / (pl.col("n").std().over("role").fill_null(0) + 1.0)
        )
        return _alerts(
            z.select(pl.col("employee_id").alias("entity_id"), "score", "role"),
            view.bucket,
            "employee",
            pl.format("reads vs {} peers", pl.col("role")),
        )


class SequentialSweepDetector:
    """Source IPs and keys that read consecutive customer ids: score = longest id run today."""

    version = "1"

    def fit(self, view: Any) -> SequentialSweepDetector:
        """Nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Length of the longest run of consecutive customer ids per IP and per key."""
        g = view.logs("gateway", current_only=True).select("src_ip", "key_id", "customer_id").unique()
        out = []
        for col, kind in (("src_ip", "ip"), ("key_id", "key")):
            runs = (
                g.select(col, "customer_id")
                .unique()
                .sort(col, "customer_id")
                .with_columns(brk=(pl.col("customer_id").diff().over(col) != 1).fill_null(True))
                .with_columns(run=pl.col("brk").cum_sum().over(col))
                .group_by(col, "run")
                .agg(length=pl.len())
                .group_by(col)
                .agg(score=pl.col("length").max().cast(pl.Float64))
                .filter(pl.col("score") > 1)
                .collect()
            )
            out.append(
                _alerts(
                    runs.rename({col: "entity_id"}),
                    view.bucket,
                    kind,
                    pl.format("{} consecutive customer ids", pl.col("score").cast(pl.Int64)),
                )
            )
        return pl.concat(out)


class IpRotationDetector:
    """Keys and customers served from many source addresses or networks in one bucket."""

    version = "1"

    def fit(self, view: Any) -> IpRotationDetector:
        """Nothing to learn."""
        return self

    def score(self, view: Any) -> pl.DataFrame:
        """Distinct foreign IPs per key, distinct ASNs per customer."""
        g = view.logs("gateway", current_only=True)
        keys = (
            g.filter(foreign(view.timezone)).group_by("key_id").agg(score=pl.col("src_ip").n_unique().cast(pl.Float64)).collect()
        )
        cust = (
            g.group_by("customer_id").agg(score=pl.col("asn").n_unique().cast(pl.Float64)).filter(pl.col("score") > 1).collect()
        )
        return pl.concat(
            [
                _alerts(
                    keys.rename({"key_id": "entity_id"}),
                    view.bucket,
                    "key",
                    pl.format("{} foreign IPs", pl.col("score").cast(pl.Int64)),
                ),
                _alerts(
                    cust.rename({"customer_id": "entity_id"}),
                    view.bucket,
                    "customer",
                    pl.format("{} networks", pl.col("score").cast(pl.Int64)),
                ),
            ]
        )


# ---- learned -----------------------------------------------------------------------------


def _iforest() -> Any:
    from sklearn.ensemble import IsolationForest

    return IsolationForest(n_estimators=100, max_samples=4096, random_state=0)


#: IsolationForest through the one-line adapter (compare with the hand-written ``iforest-v1``).
IForestAdapter = from_estimator(_iforest, name="iforest-adapter-v1", qualname="IForestAdapter", module=__name__)
