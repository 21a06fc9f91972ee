"""The shared feature table: the same values as a plain one-step group-by, and local hours right across clock changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from detectors.features import SENSITIVE, feature_table, gateway_feature_tables, gateway_features, with_issuance
from simulator.schema import ENTITY_COLUMNS, LOG_STREAMS
from simulator.zones import zone_country

REPO = Path(__file__).resolve().parent.parent


def _one_step(gateway: pl.LazyFrame, auth: pl.LazyFrame, timezone: str, kind: str) -> pl.DataFrame:
    """The definition: one group-by over the rows, the zone's calendar row by row, sequences by sorting."""
    col = ENTITY_COLUMNS[kind]
    g = with_issuance(gateway, auth).with_columns(hour=pl.col("ts").dt.convert_time_zone(timezone).dt.hour())
    if col == "customer_id":  # one customer per entity: no sequence
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
            foreign_share=(pl.col("country") != zone_country(timezone)).mean().cast(pl.Float64),
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
        .collect()
    )


KINDS = ("customer", "ip", "key")


def test_the_feature_table_equals_the_one_step_definition(tiny_ds: Any) -> None:
    for day in tiny_ds.buckets[:3]:
        view = tiny_ds.view(day, day)
        gw = view.logs_of(stream="gateway", day=day)
        auth = pl.concat([view.logs_of(stream="auth", day=day - dt.timedelta(days=1)), view.logs_of(stream="auth", day=day)])
        for zone in ("Asia/Seoul", "America/New_York"):
            together = gateway_feature_tables(gw, auth, zone, KINDS)  # one pass for the three kinds, as the bench does
            for kind in KINDS:
                want = _one_step(gw, auth, zone, kind)
                assert want.height > 0
                assert_frame_equal(together[kind], want, check_exact=True)
                assert_frame_equal(gateway_features(gw, auth, zone, kind), want, check_exact=True)


def _rows(start: dt.datetime, n: int, step: dt.timedelta) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``n`` gateway rows from ``start`` every ``step``, spread over three addresses and a few customers, some
    of them with a null country or endpoint (an import may carry those)."""
    gw = pl.DataFrame(
        {
            "event_id": range(n),
            "ts": [start + i * step for i in range(n)],
            "customer_id": [100 + (i % 7) for i in range(n)],
            "token_id": [i % 11 for i in range(n)],
            "key_id": ["k1"] * n,
            "endpoint": [None if i % 13 == 0 else SENSITIVE[i % 4] if i % 3 else "/home" for i in range(n)],
            "src_ip": [f"198.51.100.{i % 3}" for i in range(n)],
            "country": [None if i % 17 == 0 else "KR" if i % 5 else "US" for i in range(n)],
            "asn": [1] * n,
            "user_agent": ["ua"] * n,
            "status": [200] * n,
            "bytes": [10] * n,
            "records_returned": [i % 4 for i in range(n)],
        },
        schema=LOG_STREAMS["gateway"],
    ).with_columns(bucket=pl.col("ts").dt.date())
    auth = pl.DataFrame(
        {"token_id": [1, 2, 3], "event": ["token_issued", "token_issued", "login"]},
    ).lazy()
    return gw.lazy(), auth


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", dt.datetime(2025, 3, 29, 12, tzinfo=dt.UTC)),  # clocks forward on the 30th
        ("Europe/Berlin", dt.datetime(2025, 10, 25, 12, tzinfo=dt.UTC)),  # and back on 26 October
        ("Australia/Lord_Howe", dt.datetime(2025, 4, 5, 6, tzinfo=dt.UTC)),  # half an hour back
        ("Asia/Kolkata", dt.datetime(2025, 4, 5, 6, tzinfo=dt.UTC)),  # a fixed half-hour offset
        ("Asia/Seoul", dt.datetime(2025, 4, 5, 6, tzinfo=dt.UTC)),
    ],
)
def test_local_hours_hold_across_clock_changes(zone: str, start: dt.datetime) -> None:
    gw, auth = _rows(start, 700, dt.timedelta(minutes=7))  # about three days
    together = gateway_feature_tables(gw, auth, zone, KINDS)
    for kind in KINDS:
        assert_frame_equal(together[kind], _one_step(gw, auth, zone, kind), check_exact=True)


def test_foreign_is_another_country_than_the_zones(tmp_path: Path) -> None:
    """A company on New York time: its domestic rows carry US, so the features, the rotation detector and the
    foreign-IP shortcut count rows of other countries as foreign (with Korea written in, every row was)."""
    from breachbench.audit import foreign_ip
    from breachbench.config import load_config
    from breachbench.dataset import Dataset
    from detectors.zoo import IpRotationDetector
    from simulator.engine import generate

    over = ["time.timezone=America/New_York", "world.customers=1500", "world.employees=120", "time.end=2025-04-16"]
    ds = Dataset.open(generate(load_config(REPO / "configs" / "tiny.toml", over).sim(), tmp_path / "ny", workers=1))
    day = ds.buckets[-1]
    view = ds.view(day, day)
    assert view.home_country == "US"
    gw = view.logs("gateway", current_only=True).collect()
    abroad = gw.filter(pl.col("country") != "US")
    assert 0 < abroad.height < 0.1 * gw.height  # mostly domestic, a few customers abroad
    table = feature_table(view, "ip")
    want = gw.group_by("src_ip").agg(share=(pl.col("country") != "US").mean())
    got = table.join(want, left_on="entity_id", right_on="src_ip", how="left")
    assert got.height == want.height and (got["foreign_share"] == got["share"]).all()
    keys = IpRotationDetector().score(view).filter(pl.col("entity_kind") == "key")
    per_key = abroad.group_by("key_id").agg(pl.col("src_ip").n_unique().cast(pl.Float64).alias("n"))
    assert keys.join(per_key, left_on="entity_id", right_on="key_id").select((pl.col("score") == pl.col("n")).all()).item()
    assert keys.height == per_key.height
    assert set(foreign_ip(view)["entity_id"]) >= set(abroad["src_ip"])
