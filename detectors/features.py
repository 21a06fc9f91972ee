"""Entity-bucket features and entity universes computed from the logs with polars.

Every function takes lazy frames from a :class:`detectors.view.View` and returns one row per
(bucket, entity); nothing loops over events.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl

from detectors.view import View
from simulator.schema import ENTITY_COLUMNS

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
    that directly follow another of them: sweeps score near 1).
    """
    col = ENTITY_COLUMNS[kind]
    g = with_issuance(gateway, auth).with_columns(
        hour=pl.col("ts").dt.convert_time_zone(timezone).dt.hour(),
    )
    # sequential ids: sort the distinct (entity, customer) pairs once, compare with the row above
    if col == "customer_id":  # one customer per entity: no sequence to speak of
        seq = g.select("bucket", col).unique().with_columns(seq=pl.lit(0.0))
    else:
        pairs = g.select("bucket", col, "customer_id").unique().sort("bucket", col, "customer_id")
        same = (pl.col("bucket") == pl.col("bucket").shift(1)) & (pl.col(col) == pl.col(col).shift(1))
        seq = (
            pairs.with_columns(step=same & (pl.col("customer_id") - pl.col("customer_id").shift(1) == 1))
            .group_by("bucket", col)
            .agg(seq=pl.col("step").sum().cast(pl.Float64))
        )
    return (
        g.group_by("bucket", col)
        .agg(
            requests=pl.len().cast(pl.Float64),
            customers=pl.col("customer_id").n_unique().cast(pl.Float64),
            tokens=pl.col("token_id").n_unique().cast(pl.Float64),
            ips=pl.col("src_ip").n_unique().cast(pl.Float64),
            unissued_share=(~pl.col("issued")).mean().cast(pl.Float64),
            foreign_share=(pl.col("country") != "KR").mean().cast(pl.Float64),
            night_share=(pl.col("hour") < 6).mean().cast(pl.Float64),
            sensitive_share=pl.col("endpoint").is_in(SENSITIVE).mean().cast(pl.Float64),
            records=pl.col("records_returned").sum().cast(pl.Float64),
        )
        .join(seq, on=["bucket", col], how="left", nulls_equal=True)
        .with_columns(sequential_share=pl.col("seq").fill_null(0.0) / pl.col("customers"))
        .drop("seq")
        .with_columns(entity_kind=pl.lit(kind), entity_id=pl.col(col).cast(pl.String))
        .drop(col)
        .sort("bucket", "entity_id")
        .collect(engine="streaming")
    )


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
