"""Bench-side access to a dataset: manifest, buckets, truth, positive units and the universe.

This is the only code that reads ``truth/``. Detectors get a :class:`detectors.view.View`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from detectors.features import UNIT_STREAMS, entity_units
from detectors.view import View, view_id
from simulator import layout
from simulator.errors import BreachBenchError
from simulator.schema import ENTITY_COLUMNS, LOG_STREAMS, WORLD_TABLES, DType
from simulator.storage import Store, locate

#: Roles of a positive unit: the attacker's own (``actor``), a customer read (``victim``), or
#: infrastructure other people use too (``shared``, never positive).
ROLES: tuple[str, ...] = ("actor", "victim", "shared")

#: Role of a malicious event's entity by kind; ``ip`` depends on who else uses the address.
KIND_ROLES: dict[str, str] = {"employee": "actor", "key": "actor", "token": "actor", "customer": "victim"}


def in_company_nets(ip: pl.Expr) -> pl.Expr:
    """Whether the dotted-quad address ``ip`` lies in one of the company's egress ranges
    (:data:`simulator.staff_traffic.COMPANY_NETS`); False for anything else (an IPv6 address of an imported dataset)."""
    from simulator.staff_traffic import COMPANY_NETS

    quad = ip.cast(pl.String).str.extract_groups(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
    value = sum(quad.struct.field(str(k + 1)).cast(pl.Int64) * (1 << (24 - 8 * k)) for k in range(4))
    assert isinstance(value, pl.Expr)
    inside = pl.any_horizontal([value.is_between(base, base + size - 1) for base, size, _ in COMPANY_NETS])
    return inside.fill_null(False)


def unit_roles(units: pl.DataFrame, benign: pl.DataFrame, owned: pl.DataFrame | None = None) -> pl.DataFrame:
    """``units`` with a ``role`` column (see :data:`ROLES`).

    Employees and tokens of malicious events are accounts or credentials the attacker operates
    (their own, an impersonated colleague's, a compromised one): ``actor``. Customers are
    ``victim``. A source address or a key is ``actor`` when one of the incident's actors owns it
    (``owned``: incident_id, entity_kind, entity_id), else when no benign delivered event in the
    dataset carries it but those of the accounts the incident operates (its ``employee`` units:
    an insider's home broadband, which the insider's own ordinary days use too) and it is not in
    the company's own egress ranges (:func:`in_company_nets`: the office's and the VPN's, other
    people's however few of their addresses a dataset's benign rows use), else ``shared``: an
    office or VPN egress, a carrier's gateway, the auth service's signing key that signed a token
    it issued. ``benign`` (entity_kind, entity_id[, alone]): what benign events carry, ``alone``
    the one employee whose rows alone carry it (null: several, or rows of nobody's account). A
    kind not listed is ``shared``.
    """
    alone = pl.col("alone") if "alone" in benign.columns else pl.lit(None, pl.String)
    used = benign.select("entity_kind", "entity_id", alone.cast(pl.String).alias("_alone")).unique()
    if used.height != used.select("entity_kind", "entity_id").n_unique():
        raise ValueError("benign: one 'alone' per (entity_kind, entity_id)")
    used = used.with_columns(_shared=pl.lit(True))
    own = (
        pl.DataFrame(schema={"incident_id": pl.Int32, "entity_kind": pl.String, "entity_id": pl.String})
        if owned is None
        else owned.select("incident_id", "entity_kind", "entity_id")
    )
    own = own.unique().with_columns(pl.col("incident_id").cast(units.schema["incident_id"]), _own=pl.lit(True))
    # the accounts each incident operates: an address or key that only their own benign rows carry is theirs
    accounts = (
        units.filter(pl.col("entity_kind") == "employee")
        .select("incident_id", pl.col("entity_id").alias("_alone"))
        .unique()
        .with_columns(_theirs=pl.lit(True))
    )
    either = pl.col("entity_kind").is_in(["ip", "key"])
    company = (pl.col("entity_kind") == "ip") & in_company_nets(pl.col("entity_id"))
    others = pl.col("_shared").fill_null(False) & ~pl.col("_theirs").fill_null(False)
    return (
        units.join(used, on=["entity_kind", "entity_id"], how="left")
        .join(own, on=["incident_id", "entity_kind", "entity_id"], how="left")
        .join(accounts, on=["incident_id", "_alone"], how="left")
        .with_columns(
            role=pl.when(either & (pl.col("_own").fill_null(False) | ~(others | company)))
            .then(pl.lit("actor"))
            .when(either)
            .then(pl.lit("shared"))
            .otherwise(pl.col("entity_kind").replace_strict(KIND_ROLES, default="shared", return_dtype=pl.String))
        )
        .drop("_shared", "_own", "_alone", "_theirs")
    )


class DatasetError(BreachBenchError, ValueError):
    """A path that is not a complete dataset."""


#: The most buckets (days) a dataset may span: a hundred years. A crafted manifest of 3.65 million days had the bench
#: list them all, for ever.
MAX_BUCKETS = 36_525


def check_manifest(m: Any, name: str) -> None:
    """Refuse a manifest whose parts the bench reads are not what the bench writes (a crafted one gave tracebacks deep in
    a command, or a span of millions of days): one line naming the field, the value and what is accepted."""
    from pydantic import ValidationError

    from simulator.config import TimeConfig

    where = f"{name}: {layout.MANIFEST}"
    if not isinstance(m, dict):
        raise DatasetError(f"{where}: a JSON {type(m).__name__}, expected an object")
    config = m.get("config")
    try:
        time = TimeConfig.model_validate(config.get("time") if isinstance(config, dict) else None)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(["config", "time", *map(str, err.get("loc", ()))])
        raise DatasetError(f"{where}: {field}: {err.get('msg')} (got {str(err.get('input'))[:60]!r})") from None
    if time.days > MAX_BUCKETS:
        raise DatasetError(f"{where}: config.time spans {time.days:,} days; accepted: at most {MAX_BUCKETS:,}")
    if not isinstance(m.get("config_hash"), str):
        raise DatasetError(f"{where}: config_hash: {str(m.get('config_hash'))[:60]!r}, expected a string")
    files = m.get("files")

    def count(f: dict, key: str) -> bool:  # a log file's rows and bytes are read; a view lists world files by path alone
        v = f.get(key)
        return (v is None and not f["path"].startswith("logs/")) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)

    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("path"), str) and count(f, "rows") and count(f, "bytes") for f in files
    ):
        raise DatasetError(f"{where}: files: expected a list of {{path, rows, bytes}} entries (a string and two counts)")


@dataclass
class Dataset:
    """A generated dataset directory, or a dataset at an fsspec URL.

    ``feature_cache``: where the shared feature tables of this dataset are (handed to every view).
    ``store``: where a dataset opened from a URL lives (:mod:`simulator.storage`); its ``root`` is then
    the path in that store, not a local one. Such a dataset gives its manifest, truth and :meth:`scan`,
    not detector views.
    """

    root: Path
    feature_cache: Path | None = None
    store: Store | None = None

    @classmethod
    def open(
        cls, root: str | Path, *, feature_cache: Path | None = None, storage_options: dict[str, Any] | None = None
    ) -> Dataset:
        """Open a dataset (a path, a ``file://`` URL or any fsspec URL), checking that its manifest exists.

        ``storage_options`` go to fsspec for a URL (credentials, endpoint).
        """
        where = locate(root)
        if isinstance(where, str):
            store = Store.of(where, storage_options, what="dataset")
            if store.manifest() is None:
                raise DatasetError(
                    f"{store.url}: incomplete or not a dataset (no {layout.MANIFEST}, which is written last); "
                    "make one with `breachbench generate --out URL`"
                )
            ds = cls(Path(store.root), feature_cache, store)
        else:
            p = where
            if not (p / layout.MANIFEST).is_file():
                raise DatasetError(f"{p}: not a dataset (no {layout.MANIFEST}); make one with `breachbench generate`")
            ds = cls(p, feature_cache)
        name = ds.store.url if ds.store else ds.root
        check_manifest(ds.manifest, str(name))
        if ds.manifest.get("only"):
            raise DatasetError(f"{name}: dataset was generated with --only {ds.manifest['only']}; it has no logs to score")
        return ds

    @cached_property
    def manifest(self) -> dict:
        """The parsed manifest."""
        if self.store is not None:
            m = self.store.manifest()
            if m is None:
                raise DatasetError(f"{self.store.url}: its {layout.MANIFEST} is gone or unreadable")
            return m
        try:
            return json.loads((self.root / layout.MANIFEST).read_bytes().decode())
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested past the parser
            raise DatasetError(f"{self.root / layout.MANIFEST}: not a manifest ({type(exc).__name__})") from None

    @property
    def timezone(self) -> str:
        """Company time zone."""
        return self.manifest["config"]["time"]["timezone"]

    @cached_property
    def buckets(self) -> list[dt.date]:
        """Every bucket of the span."""
        t = self.manifest["config"]["time"]
        start, end = dt.date.fromisoformat(t["start"]), dt.date.fromisoformat(t["end"])
        return [start + dt.timedelta(days=i) for i in range((end - start).days)]

    @property
    def warmup(self) -> list[dt.date]:
        """Buckets detectors fit on."""
        return self.buckets[: self.manifest["config"]["time"]["warmup_days"]]

    @property
    def scored(self) -> list[dt.date]:
        """Buckets detectors are scored on."""
        return self.buckets[self.manifest["config"]["time"]["warmup_days"] :]

    @cached_property
    def _files(self) -> tuple[dict[str, dict[dt.date, list[str]]], dict[str, list[str]]]:
        """Every log file per stream and bucket, and every world file per table, listed once (views slice it)."""
        logs = {s: {d: [str(p) for p in layout.log_files(self.root, s, [d])] for d in self.buckets} for s in LOG_STREAMS}
        world = {t: [str(p) for p in layout.world_glob(self.root, t)] for t in WORLD_TABLES}
        return logs, world

    @cached_property
    def view_id(self) -> str:
        """The id a detector's view gives the dataset (``View.dataset_id``, see :func:`detectors.view.view_id`)."""
        return view_id(self.manifest)

    def refresh(self, day: dt.date) -> None:
        """List bucket ``day``'s log files again (a sealed view gains them when the bench shows the bucket)."""
        logs, _ = self._files
        for stream, days in logs.items():
            days[day] = [str(p) for p in layout.log_files(self.root, stream, [day])]

    def view(self, upto: dt.date, bucket: dt.date | None = None) -> View:
        """The detector's view up to ``upto`` (the same view as :meth:`View.open`, from the file lists made once)."""
        if self.store is not None:
            raise DatasetError(f"{self.store.url}: detector views need a local dataset; copy it to a local directory first")
        logs, world = self._files
        start = self.buckets[0] if self.buckets else upto
        days = [start + dt.timedelta(days=i) for i in range((upto - start).days + 1)]
        visible = {
            s: {d: files[d] if d in files else [str(p) for p in layout.log_files(self.root, s, [d])] for d in days}
            for s, files in logs.items()
        }
        cache = str(self.feature_cache) if self.feature_cache is not None else None
        return View(visible, world, days, bucket, self.timezone, self.view_id, cache)

    def truth(self, table: str) -> pl.DataFrame:
        """A truth table (bench only)."""
        if self.store is not None:
            return self.store.read_parquet(layout.truth_file(Path(), table).as_posix())
        return pl.read_parquet(layout.truth_file(self.root, table))

    def scan(self, stream: str) -> pl.LazyFrame:
        """Every delivered row of a stream with its ``bucket``: the partition it arrived in
        (late rows arrive in the bucket after their ``ts``), as detectors see it."""
        if self.store is not None:
            store, listed = self.store, sorted(f["path"] for f in self.manifest["files"])
            frames = [
                store.scan_parquet(rels).with_columns(bucket=pl.lit(day, pl.Date))
                for day in self.buckets
                if (rels := [r for r in listed if r.startswith(f"{layout.log_dir(Path(), stream, day).as_posix()}/")])
            ]
        else:
            frames = [
                pl.scan_parquet(files).with_columns(bucket=pl.lit(day, pl.Date))
                for day in self.buckets
                if (files := layout.log_files(self.root, stream, [day]))
            ]
        return pl.concat(frames) if frames else pl.LazyFrame(schema={**LOG_STREAMS[stream], "bucket": pl.Date})

    def _units(self, table: str, label: str) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id, <label>) of every delivered event listed in a truth table."""
        tagged = self.truth(table)
        parts = []
        for stream in LOG_STREAMS:
            ids = tagged.filter(pl.col("stream") == stream).select("event_id", label).unique()
            if ids.height == 0:
                continue
            rows = self.scan(stream).join(ids.lazy(), on="event_id", how="inner")
            names = rows.collect_schema().names()
            for kind, col in ENTITY_COLUMNS.items():
                if col in names:
                    parts.append(
                        rows.select(
                            "bucket", pl.lit(kind).alias("entity_kind"), pl.col(col).cast(pl.String).alias("entity_id"), label
                        ).drop_nulls("entity_id")
                    )
        dtype = tagged.schema[label]
        if not parts:
            return pl.DataFrame(schema={"bucket": pl.Date, "entity_kind": pl.String, "entity_id": pl.String, label: dtype})
        return pl.concat(parts).collect().unique().sort("bucket", "entity_kind", "entity_id", label)

    @cached_property
    def positive_units(self) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id, incident_id, role) for every entity a delivered malicious event involves.

        The bucket is the one the event was delivered in; lost rows involve nobody. ``role`` is
        one of :data:`ROLES` (see :func:`unit_roles`): only ``actor`` units count as detections.
        """
        units = self._units("malicious_events", "incident_id")
        return unit_roles(units, self.benign_carried, self.actor_keys)

    def world_table(self, table: str) -> pl.DataFrame | None:
        """A world table, every part in block order (None when the dataset has no file of it)."""
        if self.store is None:
            frames = [pl.read_parquet(f) for f in layout.world_glob(self.root, table)]
        else:
            rels = sorted(f["path"] for f in self.manifest["files"] if f["path"].startswith(f"world/{table}-"))
            frames = [self.store.read_parquet(r) for r in rels]
        return pl.concat(frames) if frames else None

    @cached_property
    def actor_keys(self) -> pl.DataFrame:
        """(incident_id, entity_kind, entity_id) of every key an incident's actors own (world ``credentials``)."""
        creds = self.world_table("credentials")
        if creds is None:  # no keys, so none an actor owns
            return pl.DataFrame(schema={"incident_id": pl.Int32, "entity_kind": pl.String, "entity_id": pl.String})
        actors = (
            self.truth("incidents")
            .select("incident_id", pl.col("actors").alias("owner_employee_id"))
            .explode("owner_employee_id")
        )
        return actors.join(creds.select("owner_employee_id", "key_id"), on="owner_employee_id").select(
            "incident_id", pl.lit("key").alias("entity_kind"), pl.col("key_id").alias("entity_id")
        )

    @property
    def benign_keys(self) -> pl.DataFrame:
        """(entity_id) of every key that some delivered non-malicious event carries (the signing keys of the
        tokens the auth service issues to customers, an employee's API key in their own use)."""
        return self.benign_carried.filter(pl.col("entity_kind") == "key").select("entity_id")

    @property
    def benign_ips(self) -> pl.DataFrame:
        """(entity_id) of every source address that some delivered non-malicious event carries.

        Over the whole dataset (warm-up included): an address that anyone else uses, on any day,
        is shared infrastructure (office or VPN egress, a carrier's gateway), not the actor's own; one
        that only the rows of the accounts an incident operates carry is theirs (see :func:`unit_roles`).
        """
        return self.benign_carried.filter(pl.col("entity_kind") == "ip").select("entity_id")

    @cached_property
    def benign_carried(self) -> pl.DataFrame:
        """(entity_kind, entity_id, alone) of every address ("ip") and key ("key") that some delivered non-malicious
        event carries, ``alone`` the one employee whose rows alone carry it (null where several employees' rows do, or
        a row of nobody's account: a customer's, a service's); one pass over each stream, sorted."""
        bad = self.truth("malicious_events").select("event_id").unique()
        parts = []
        for stream, sch in LOG_STREAMS.items():
            cols = {k: ENTITY_COLUMNS[k] for k in ("ip", "key") if ENTITY_COLUMNS[k] in sch.names()}
            if not cols:
                continue
            who = ENTITY_COLUMNS["employee"]
            by = pl.col(who).cast(pl.String) if who in sch.names() else pl.lit(None, pl.String)
            pairs = (  # the distinct combinations first: few next to the rows
                self.scan(stream)
                .select("event_id", *cols.values(), by.alias("_by"))
                .join(bad.lazy(), on="event_id", how="anti")
                .drop("event_id")
                .unique()
            )
            parts += [
                pairs.select(pl.lit(kind).alias("entity_kind"), pl.col(col).cast(pl.String).alias("entity_id"), "_by").drop_nulls(
                    "entity_id"
                )
                for kind, col in cols.items()
            ]
        if not parts:
            return pl.DataFrame(schema={"entity_kind": pl.String, "entity_id": pl.String, "alone": pl.String})
        return (
            pl.concat(parts)
            .unique()
            .group_by("entity_kind", "entity_id")
            .agg(alone=pl.when((pl.col("_by").n_unique() == 1) & pl.col("_by").is_not_null().all()).then(pl.col("_by").first()))
            .sort("entity_kind", "entity_id")
            .collect()
        )

    @cached_property
    def malicious_reads(self) -> pl.DataFrame:
        """(incident_id, customer_id, ts) of every delivered malicious row that names a customer.

        The timeline of harm that accrues per read (targeted snooping); duplicates delivered
        twice count once.
        """
        tagged = self.truth("malicious_events")
        parts = []
        for stream, sch in LOG_STREAMS.items():
            ids = tagged.filter(pl.col("stream") == stream).select("event_id", "incident_id").unique("event_id")
            if ids.height == 0 or "customer_id" not in sch.names():
                continue
            parts.append(
                self.scan(stream)
                .select("event_id", "customer_id", "ts")
                .drop_nulls("customer_id")
                .unique("event_id")
                .join(ids.lazy(), on="event_id", how="inner")
                .select("incident_id", "customer_id", "ts")
            )
        schema: dict[str, DType] = {
            "incident_id": tagged.schema["incident_id"],
            "customer_id": pl.Int64,
            "ts": LOG_STREAMS["admin"]["ts"],
        }
        return pl.concat(parts).collect() if parts else pl.DataFrame(schema=schema)

    @cached_property
    def benign_units(self) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id, pattern) for every entity a delivered benign anomaly involves."""
        return self._units("benign_anomalies", "pattern")

    @cached_property
    def universe_units(self) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id) of every unit a detector could alert on: the entities
        of each bucket's own rows in :data:`~detectors.features.UNIT_STREAMS` (what the ``random``
        detector ranks, and the universe of the chance lines)."""
        if not self.buckets:
            return pl.DataFrame(schema={"bucket": pl.Date, "entity_kind": pl.String, "entity_id": pl.String})
        return entity_units(*(self.scan(s) for s in UNIT_STREAMS))  # one pass over every bucket, sorted by bucket

    @cached_property
    def unit_classes(self) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id, class) of the universe units that a public world table puts in a class.

        What any detector can read about a unit without looking at what it did: an employee's role
        that day (``employee:analyst``; world ``employee_roles``, the last role begun by that day) and
        a key's credential kind (``key:token-signing``; world ``credentials``). The chance lines rank
        each class blind too (:mod:`breachbench.chance`): ten random analysts a day, or every signing
        key, is knowledge of who tends to act, not detection. Units without a class (customers,
        addresses, tokens; a dataset without those tables) have no row.
        """
        schema = {"bucket": pl.Date, "entity_kind": pl.String, "entity_id": pl.String, "class": pl.String}
        uni = self.universe_units
        parts = []
        roles = self.world_table("employee_roles")
        if roles is not None and roles.height:
            emp = (
                uni.filter(pl.col("entity_kind") == "employee")
                .with_columns(_id=pl.col("entity_id").cast(pl.Int64, strict=False))
                .drop_nulls("_id")
                .sort("bucket")
            )
            began = roles.select(_id=pl.col("employee_id").cast(pl.Int64), start=pl.col("start_date"), role=pl.col("role")).sort(
                "start", "_id", "role"
            )
            dated = emp.join_asof(  # both sorted by date, so each employee's rows are too
                began, left_on="bucket", right_on="start", by="_id", strategy="backward", check_sortedness=False
            )
            parts.append(
                dated.drop_nulls("role").select(
                    "bucket", "entity_kind", "entity_id", ("employee:" + pl.col("role")).alias("class")
                )
            )
        creds = self.world_table("credentials")
        if creds is not None and creds.height:
            kinds = creds.select(entity_id=pl.col("key_id"), _kind=pl.col("kind")).unique("entity_id", keep="first")
            keys = uni.filter(pl.col("entity_kind") == "key").join(kinds, on="entity_id", how="inner")
            parts.append(keys.select("bucket", "entity_kind", "entity_id", ("key:" + pl.col("_kind")).alias("class")))
        if not parts:
            return pl.DataFrame(schema=schema)
        return pl.concat(parts).select(*schema).sort("bucket", "entity_kind", "entity_id")

    @cached_property
    def universe_size(self) -> pl.DataFrame:
        """Distinct alert units per bucket (the denominator of prevalence)."""
        counts = self.universe_units.group_by("bucket").len().rename({"len": "units"})
        days = pl.DataFrame({"bucket": self.buckets}, schema={"bucket": pl.Date})
        return days.join(counts, on="bucket", how="left").with_columns(pl.col("units").fill_null(0).cast(pl.Int64)).sort("bucket")

    def event_count(self, buckets: list[dt.date]) -> int:
        """Log rows (all streams) in the given buckets, from the manifest."""
        names = {f"date={d.isoformat()}" for d in buckets}
        return sum(
            f["rows"] for f in self.manifest["files"] if f["path"].startswith("logs/") and f["path"].split("/")[2] in names
        )
