"""Entity-bucket features and entity universes computed from the logs with polars.

Every function takes lazy frames from a :class:`detectors.view.View` and returns one row per
(bucket, entity); nothing loops over events.
"""

from __future__ import annotations

import polars as pl

SENSITIVE = ["/my-info", "/address-list", "/address-edit", "/order-history"]

#: Log column that names each kind of entity.
ENTITY_COLUMNS: dict[str, str] = {
    "customer": "customer_id",
    "ip": "src_ip",
    "key": "key_id",
    "token": "token_id",
    "employee": "employee_id",
}


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
                    frame.select("bucket", pl.lit(kind).alias("entity_kind"), pl.col(col).cast(pl.String).alias("entity_id"))
                    .drop_nulls("entity_id")
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
    ids = pl.col("customer_id").unique().sort()
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
            sequential_share=(ids.diff() == 1).sum().cast(pl.Float64) / pl.col("customer_id").n_unique().cast(pl.Float64),
        )
        .with_columns(entity_kind=pl.lit(kind), entity_id=pl.col(col).cast(pl.String))
        .drop(col)
        .sort("bucket", "entity_id")
        .collect()
    )


FEATURES = ["requests", "customers", "tokens", "ips", "unissued_share", "foreign_share", "night_share", "sensitive_share", "records", "sequential_share"]
