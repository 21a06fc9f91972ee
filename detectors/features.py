"""Entity-bucket features and entity universes computed from the logs with polars.

Every function takes lazy frames from a :class:`detectors.view.View` and returns one row per
(bucket, entity); nothing loops over events.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from detectors.view import View
from simulator.schema import ENTITY_COLUMNS
from simulator.zones import zone_country

#: Bumped whenever the features change (cached tables are keyed by it).
FEATURE_VERSION = 2
SENSITIVE = ["/my-info", "/address-list", "/address-edit", "/order-history"]

#: Streams whose rows name alert-able entities.
UNIT_STREAMS = ("gateway", "auth", "admin")


def entity_units(*frames: pl.LazyFrame) -> pl.DataFrame:
    """Every (bucket, entity_kind, entity_id) that appears in the given logs."""
    parts = []
    for frame in frames:
        names = frame.collect_schema().names()
        for kind, col in ENTITY_COLUMNS.items():
            if col in names:
                parts.append(
                    frame.select(
                        "bucket", pl.lit(kind).alias("entity_kind"), pl.col(col).cast(pl.String).alias("entity_id")
                    ).drop_nulls("entity_id")
                )
    return pl.concat(parts).unique().sort("bucket", "entity_kind", "entity_id").collect()


def with_issuance(gateway: pl.LazyFrame, auth: pl.LazyFrame) -> pl.LazyFrame:
    """Gateway rows with ``issued``: whether auth has a token_issued row for the token."""
    issued = auth.filter(pl.col("event") == "token_issued").select("token_id").unique().with_columns(issued=pl.lit(True))
    return gateway.join(issued, on="token_id", how="left").with_columns(pl.col("issued").fill_null(False))


def gateway_features(gateway: pl.LazyFrame, auth: pl.LazyFrame, timezone: str, kind: str) -> pl.DataFrame:
    """Per (bucket, entity) features of gateway traffic for ``kind`` in {customer, ip, key}.

    Columns: requests, customers, tokens, ips, unissued_share, foreign_share, night_share,
    sensitive_share, records, sequential_share (share of the entity's distinct customer ids
    that directly follow another of them: sweeps score near 1). See :func:`gateway_feature_tables`.
    """
    return gateway_feature_tables(gateway, auth, timezone, (kind,))[kind]


def gateway_feature_tables(
    gateway: pl.LazyFrame, auth: pl.LazyFrame, timezone: str, kinds: tuple[str, ...]
) -> dict[str, pl.DataFrame]:
    """:func:`gateway_features` of several kinds from one pass over the rows.

    The values are those of a one-step group-by per kind, to the bit, in two steps: one streaming
    pass sums the rows per (bucket, token, customer, address and the kinds' columns), a few rows
    per session; each kind's features come from those sums (shares as counts over counts,
    distinct values of the sums' keys), with the issuance join and the sequence on the sums. The
    local hour is integer arithmetic on the UTC timestamp when the zone's offset is the same over
    every row's time, else the zone's calendar row by row. The sequence counts the entity's
    distinct customers whose id less one is among them too (a semi-join, no sort).
    """
    flagged = {"foreign": "country", "night": "ts", "sensitive": "endpoint"}  # each flag is null where its column is
    span = gateway.select(
        lo=pl.col("ts").min(), hi=pl.col("ts").max(), **{k: pl.col(c).null_count() for k, c in flagged.items()}
    ).collect(engine="streaming")
    offset = _fixed_offset_us(timezone, span["lo"][0], span["hi"][0])
    if offset is None:
        hour = pl.col("ts").dt.convert_time_zone(timezone).dt.hour()
    else:
        hour = ((pl.col("ts").dt.epoch("us") + offset) // 3_600_000_000) % 24
    flags = {"foreign": foreign(timezone), "night": hour < 6, "sensitive": pl.col("endpoint").is_in(SENSITIVE)}
    keys = dict.fromkeys(["bucket", *(ENTITY_COLUMNS[k] for k in kinds), "token_id", "customer_id", "src_ip"])
    per_session = gateway.group_by(*keys).agg(
        n=pl.len(),
        records=pl.col("records_returned").sum(),
        **{f"{k}_t": e.sum() for k, e in flags.items()},
        # a mean counts the rows whose flag is not null: every row (n), unless the column has nulls (an import may)
        **{f"{k}_n": e.count() for k, e in flags.items() if span[k][0]},
    )
    sums = (
        with_issuance(per_session, auth)  # the token is a key of the sums: the join runs on them, not on the rows
        .with_columns(unissued=pl.when(pl.col("issued")).then(0).otherwise(pl.col("n")))
        .collect(engine="streaming")
        .lazy()
    )
    return dict(zip(kinds, pl.collect_all([_from_sums(sums, k) for k in kinds]), strict=True))


def foreign(timezone: str) -> pl.Expr:
    """Whether a row's ``country`` is not the home country of ``timezone`` (null where ``country`` is; false
    everywhere else when the zone names no country, as ``UTC`` does: no row counts as foreign then)."""
    home = zone_country(timezone)
    if home is None:
        return pl.when(pl.col("country").is_not_null()).then(False)
    return pl.col("country") != home


def _from_sums(sums: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """One kind's features from the per-session sums of :func:`gateway_feature_tables` (plain sums and
    distinct counts per entity, the shares after: polars' fast aggregations)."""
    col = ENTITY_COLUMNS[kind]
    keys = ["bucket", col]
    flags = ("foreign", "night", "sensitive")
    one = pl.lit(1.0, pl.Float64)
    names = sums.collect_schema().names()
    table = (
        sums.group_by(keys)
        .agg(
            requests=pl.col("n").sum(),
            # the entity's own column has one value (a null key counts as one, as n_unique counts it)
            customers=one if col == "customer_id" else pl.col("customer_id").n_unique().cast(pl.Float64),
            tokens=pl.col("token_id").n_unique().cast(pl.Float64),
            ips=one if col == "src_ip" else pl.col("src_ip").n_unique().cast(pl.Float64),
            unissued=pl.col("unissued").sum(),
            records=pl.col("records").sum().cast(pl.Float64),
            **{f"{k}_t": pl.col(f"{k}_t").sum() for k in flags},
            **{f"{k}_n": pl.col(f"{k}_n" if f"{k}_n" in names else "n").sum() for k in flags},
        )
        .with_columns(
            unissued_share=pl.col("unissued") / pl.col("requests"),
            # a mean of flags: null where every flag is null, as mean() gives
            **{f"{k}_share": pl.when(pl.col(f"{k}_n") > 0).then(pl.col(f"{k}_t") / pl.col(f"{k}_n")) for k in flags},
        )
        .with_columns(requests=pl.col("requests").cast(pl.Float64))
    )
    if col == "customer_id":  # one customer per entity: no sequence to speak of
        seq = sums.select(keys).unique().with_columns(seq=pl.lit(0, pl.UInt32))
    else:
        pairs = sums.select(*keys, "customer_id").drop_nulls("customer_id").unique()
        follows = pairs.join(
            pairs.with_columns(pl.col("customer_id") + 1), on=[*keys, "customer_id"], how="semi", nulls_equal=True
        )
        seq = follows.group_by(keys).agg(seq=pl.len())
    return (
        table.join(seq, on=keys, how="left", nulls_equal=True)
        .with_columns(sequential_share=pl.col("seq").fill_null(0).cast(pl.Float64) / pl.col("customers"))
        .with_columns(entity_kind=pl.lit(kind), entity_id=pl.col(col).cast(pl.String))
        .select("bucket", *FEATURES, "entity_kind", "entity_id")
        .sort("bucket", "entity_id")
    )


def _fixed_offset_us(timezone: str, lo: dt.datetime | None, hi: dt.datetime | None) -> int | None:
    """The zone's UTC offset in microseconds when it is the same at every hour from ``lo`` to ``hi`` (and an hour
    either side); None when it changes there or the span is over a year (the caller then converts row by row)."""
    if lo is None or hi is None:
        return 0
    if hi - lo > dt.timedelta(days=366):
        return None
    zone = ZoneInfo(timezone)
    t, end = lo.astimezone(dt.UTC) - dt.timedelta(hours=1), hi.astimezone(dt.UTC) + dt.timedelta(hours=1)
    first = t.astimezone(zone).utcoffset()
    while t <= end:
        if t.astimezone(zone).utcoffset() != first:
            return None
        t += dt.timedelta(minutes=30)
    last = end.astimezone(zone).utcoffset()
    if first is None or last != first:
        return None
    return (first.days * 86_400 + first.seconds) * 1_000_000 + first.microseconds


def feature_table(view: View, kind: str, *, current_only: bool = True) -> pl.DataFrame:
    """The shared entity-bucket feature table of ``kind`` for the view's current bucket (or all
    visible buckets), one bucket at a time.

    Each bucket's features use that bucket's gateway rows and the auth rows of the bucket and the
    one before (tokens issued before midnight). When the view carries a ``feature_cache`` folder
    (the bench hands one to every view of a run), each bucket's table is computed once per
    dataset and read back by every later detector that asks.
    """
    days = [view.bucket] if current_only and view.bucket is not None else list(view.buckets)
    cache = view.feature_cache
    parts = []
    for day in days:
        path = (
            Path(cache) / f"v{FEATURE_VERSION}-{view.dataset_id}" / kind / f"{day.isoformat()}.parquet"
            if cache and view.dataset_id
            else None
        )
        if path is not None and path.is_file():
            parts.append(pl.read_parquet(path))
            continue
        gw = view.logs_of(stream="gateway", day=day)
        auth = pl.concat([view.logs_of(stream="auth", day=day - dt.timedelta(days=1)), view.logs_of(stream="auth", day=day)])
        table = gateway_features(gw, auth, view.timezone, kind)
        if path is not None:
            try:  # a sealed detector's cache is read-only: it computes what is missing for itself
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
                table.write_parquet(tmp)
                tmp.replace(path)
            except OSError:
                pass
        parts.append(table)
    return (
        pl.concat(parts)
        if parts
        else gateway_features(view.logs("gateway").head(0), view.logs("auth").head(0), view.timezone, kind)
    )


FEATURES = [
    "requests",
    "customers",
    "tokens",
    "ips",
    "unissued_share",
    "foreign_share",
    "night_share",
    "sensitive_share",
    "records",
    "sequential_share",
]
