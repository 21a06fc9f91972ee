"""The view a detector receives: world tables as of now and logs up to the current bucket.

A view holds only the lists of log and world files it may read; it has no path to the
dataset root and so none to ``truth/``. World tables are masked to what was known at the end
of the latest visible bucket: an employee's future termination, a key's future revocation and
customers who have not signed up yet are not visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from simulator import layout
from simulator.schema import LOG_STREAMS, WORLD_TABLES
from simulator.zones import zone_country

#: The world tables read through any view of this process since the bench last cleared it
#: (:func:`breachbench.runner.run_detector` does, per dataset): in a sealed slot, the slot's own, which
#: says which tables a detector needed on a dataset that lacks some (``breachbench run DATASET``).
WORLD_READ: set[str] = set()


def view_id(manifest: dict) -> str:
    """The id a detector's view gives a dataset (:attr:`View.dataset_id`, the shared feature tables' folder name): 16
    hex digits of a SHA-256 over the dataset's config hash and its truth files' hashes, which no published file holds
    (a sealed slot's reduced manifest carries the id itself in place of the config hash).

    It was the config hash's first 16 digits, and a sealed view's manifest held the whole hash, which ``results.json``
    lists beside each dataset's label: a red-team plugin carrying that table from a finished run named the scenario of
    each of its views (6 of 6) and ran a rule chosen per scenario when added to the same run.
    """
    if manifest.get("format") == "breachbench-view":
        return str(manifest["config_hash"])
    listed = manifest.get("truth")  # a dataset's truth files (an imported dataset says whether it has labels instead)
    files = [f for f in (*(listed if isinstance(listed, list) else ()), *manifest.get("files", ())) if isinstance(f, dict)]
    truth = sorted({str(f.get("sha256", "")) for f in files if str(f.get("path", "")).startswith("truth/")})
    parts = [str(manifest.get("config_hash", "")), *truth]
    return hashlib.sha256("\n".join(["view", *parts]).encode()).hexdigest()[:16]


class View:
    """Read-only access to the visible part of a dataset.

    Attributes:
        bucket: the bucket being scored, or None while fitting.
        buckets: every visible bucket, oldest first (the last one is ``bucket`` when scoring).
        timezone: the company's time zone (buckets are its calendar days).
        home_country: the company's home country (ISO 3166 code, ``KR`` for ``Asia/Seoul``), the
            country of its time zone and of its domestic rows; None for a zone without a country
            (``UTC``, which an imported dataset may carry).
        feature_cache: a folder of shared feature tables the bench computed for this dataset
            (read by :func:`detectors.features.feature_table`), or None.
    """

    def __init__(
        self,
        logs: dict[str, dict[dt.date, list[str]]],
        world: dict[str, list[str]],
        buckets: list[dt.date],
        bucket: dt.date | None,
        timezone: str,
        dataset_id: str | None = None,
        feature_cache: str | None = None,
    ) -> None:
        """A view over these file lists (made by :meth:`open` and ``Dataset.view``).

        (Seven positional parameters: they are the view's whole state, which :meth:`__reduce__`
        hands back in this order so that a view pickles as its file lists.)
        """
        self._logs = logs
        self._world = world
        self.buckets: tuple[dt.date, ...] = tuple(buckets)
        self.bucket = bucket
        self.timezone = timezone
        self.dataset_id = dataset_id
        self.feature_cache = feature_cache

    @property
    def home_country(self) -> str | None:
        """The company's home country (see the class); rows whose ``country`` differs are foreign."""
        return zone_country(self.timezone)

    @classmethod
    def open(cls, dataset: Path, upto: dt.date, bucket: dt.date | None = None, *, feature_cache: Path | None = None) -> View:
        """A view of ``dataset`` with every bucket up to ``upto`` (inclusive) visible (``feature_cache``: see the class)."""
        dataset = Path(dataset)
        manifest = json.loads((dataset / layout.MANIFEST).read_text())
        cfg = manifest["config"]["time"]
        start = dt.date.fromisoformat(cfg["start"])
        days = [start + dt.timedelta(days=i) for i in range((upto - start).days + 1)]
        logs = {s: {d: [str(p) for p in layout.log_files(dataset, s, [d])] for d in days} for s in LOG_STREAMS}
        world = {t: [str(p) for p in layout.world_glob(dataset, t)] for t in WORLD_TABLES}
        cache = str(feature_cache) if feature_cache is not None else None
        return cls(logs, world, days, bucket, cfg["timezone"], view_id(manifest), cache)

    def logs(self, stream: str, *, current_only: bool = False) -> pl.LazyFrame:
        """A lazy frame of ``stream`` over the visible buckets (or the current one), with ``bucket``.

        Raises:
            KeyError: unknown stream.
        """
        if stream not in self._logs:
            raise KeyError(f"unknown stream {stream!r}; available: {', '.join(self._logs)}")
        days = [self.bucket] if current_only and self.bucket is not None else list(self.buckets)
        frames = [
            pl.scan_parquet(files).with_columns(bucket=pl.lit(day, pl.Date))
            for day in days
            if (files := self._logs[stream].get(day))
        ]
        if not frames:
            return pl.LazyFrame(schema={**LOG_STREAMS[stream], "bucket": pl.Date})
        return pl.concat(frames, how="vertical")

    def logs_of(self, *, stream: str, day: dt.date) -> pl.LazyFrame:
        """One visible bucket of a stream (empty when the bucket is not visible)."""
        files = self._logs.get(stream, {}).get(day) if day in self.buckets else None
        if not files:
            return pl.LazyFrame(schema={**LOG_STREAMS[stream], "bucket": pl.Date})
        return pl.scan_parquet(files).with_columns(bucket=pl.lit(day, pl.Date))

    def world(self, table: str) -> pl.DataFrame:
        """A world table as known at the end of the latest visible bucket."""
        if table not in self._world:
            raise KeyError(f"unknown world table {table!r}; available: {', '.join(self._world)}")
        WORLD_READ.add(table)
        files = self._world[table]
        df = pl.read_parquet(files) if files else pl.DataFrame(schema=WORLD_TABLES[table])
        return as_of(table, df, self.buckets[-1], self.timezone)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        state = (self._logs, self._world, list(self.buckets), self.bucket, self.timezone, self.dataset_id, self.feature_cache)
        return (View, state)


#: The columns :func:`as_of` reads, per table: a table known at the end of a day changes only on
#: the days (in the company's time zone) these dates and times fall on.
DATED_COLUMNS = {
    "employees": ("hire_date", "termination_date"),
    "employee_roles": ("start_date", "end_date"),
    "credentials": ("created", "rotated", "revoked"),
    "customers": ("signup_date",),
    "orders": ("ts",),
}


def change_days(table: str, df: pl.DataFrame, timezone: str) -> list[dt.date]:
    """The days on which ``as_of(table, df, day, timezone)`` differs from the day before, sorted."""
    days: set[dt.date] = set()
    for col in DATED_COLUMNS.get(table, ()):
        s = df[col].drop_nulls()
        if s.dtype != pl.Date:
            s = s.dt.convert_time_zone(timezone).dt.date()
        days.update(s.unique().to_list())
    return sorted(days)


def as_of(table: str, df: pl.DataFrame, last_day: dt.date, timezone: str) -> pl.DataFrame:
    """World table ``table`` as known at the end of bucket ``last_day`` (a calendar day in ``timezone``).

    Rows that do not exist yet go (employees not hired, roles not started, keys not created,
    customers not signed up, orders not placed); dates and times still ahead are null (a
    termination, a role's end, a key's rotation or revocation). Address books carry no dates.
    """
    end_ts = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)
    if table == "employees":
        return df.filter(pl.col("hire_date") <= last_day).with_columns(
            termination_date=pl.when(pl.col("termination_date") <= last_day).then(pl.col("termination_date"))
        )
    if table == "employee_roles":
        return df.filter(pl.col("start_date") <= last_day).with_columns(
            end_date=pl.when(pl.col("end_date") <= last_day).then(pl.col("end_date"))
        )
    if table == "credentials":
        return df.filter(pl.col("created") < end_ts).with_columns(
            [pl.when(pl.col(c) < end_ts).then(pl.col(c)).alias(c) for c in ("rotated", "revoked")]
        )
    if table == "customers":
        return df.filter(pl.col("signup_date") <= last_day)
    if table == "orders":
        return df.filter(pl.col("ts") < end_ts)
    return df
