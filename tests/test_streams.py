"""The four log streams and their imperfect collection (docs/world.md, "The logs").

Three datasets beyond the session's: ``tiny_clean_ds`` (conftest: tiny, perfect collection),
``dirty`` (tiny with 2% of rows missing, 2% duplicated and 2% late; same seed, so the same
underlying rows and event ids as the clean one) and ``big`` (1,500 employees, 20,000 customers,
three weeks around Chuseok 2025 with a sale day; default fault rates), in which every hard
negative occurs. Tolerances are a few standard deviations of the sample at hand.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from breachbench.dataset import Dataset
from simulator import layout, pools, schema
from simulator.benign import PATTERNS
from simulator.config import SimConfig
from simulator.engine import generate

TZ = "Asia/Seoul"
DIRTY = 0.02
BIG_START, BIG_END = dt.date(2025, 9, 29), dt.date(2025, 10, 20)
SALE = dt.date(2025, 10, 15)  # a Wednesday, not a holiday
CHUSEOK = dt.date(2025, 10, 6)  # the main day: the deeper dip
ENGINEERS = ("backend_engineer", "platform_engineer")


def _local(col: str = "ts") -> pl.Expr:
    return pl.col(col).dt.convert_time_zone(TZ)


def _gen_day(start: dt.date) -> pl.Expr:
    """The bucket a row was generated for, from its event id (stream | day | block | row)."""
    return pl.lit(start) + pl.duration(days=(pl.col("event_id") // (1 << 44)) % (1 << 16))


def _rows(root: Path, stream: str) -> pl.DataFrame:
    """Every delivered row of a stream as written, with its partition and whether it came late."""
    frames = []
    for day_dir in sorted((root / "logs" / stream).iterdir()):
        day = dt.date.fromisoformat(day_dir.name.removeprefix("date="))
        for f in layout.log_files(root, stream, [day]):
            late = f.name.startswith("late-")
            frames.append(pl.read_parquet(f).with_columns(partition=pl.lit(day, pl.Date), late=pl.lit(late)))
    return pl.concat(frames)


def _within(k: float, n: float, p: float, sds: float = 5.0) -> bool:
    """``k`` is within ``sds`` binomial standard deviations (plus one) of ``n * p``."""
    return abs(k - n * p) <= sds * math.sqrt(n * p * (1 - p)) + 1


def _at_most(k: float, n: float, p: float, sds: float = 5.0) -> bool:
    return k <= n * p + sds * math.sqrt(n * p * (1 - p)) + 1


def _roles_on(ds: Dataset, frame: pl.DataFrame, day: str = "day") -> pl.DataFrame:
    """``frame`` with each employee's role on ``day``, from the role history."""
    roles = pl.read_parquet(layout.world_glob(ds.root, "employee_roles")).select("employee_id", "role", "start_date", "end_date")
    return (
        frame.with_row_index("_r")
        .join(roles, on="employee_id", how="left")
        .filter((pl.col("start_date") <= pl.col(day)) & (pl.col("end_date").is_null() | (pl.col(day) < pl.col("end_date"))))
        .drop("start_date", "end_date")
        .sort("_r")
        .drop("_r")
    )


# ---- datasets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dirty_config(tiny_clean_config) -> SimConfig:
    logs = {"missing_rate": DIRTY, "duplicate_rate": DIRTY, "late_rate": DIRTY}
    return tiny_clean_config.model_copy(update={"logs": tiny_clean_config.logs.model_copy(update=logs)})


@pytest.fixture(scope="module")
def dirty(dirty_config: SimConfig, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return Dataset.open(generate(dirty_config, tmp_path_factory.mktemp("dirty") / "dataset", workers=1))


@pytest.fixture(scope="module")
def big_config() -> SimConfig:
    return SimConfig(
        seed=11,
        world={"customers": 20_000, "employees": 1_500},
        time={"start": BIG_START, "end": BIG_END, "warmup_days": 2},
        traffic={"sale_days": [SALE]},
    )


@pytest.fixture(scope="module")
def big(big_config: SimConfig, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return Dataset.open(generate(big_config, tmp_path_factory.mktemp("big") / "dataset", workers=1))


@pytest.fixture(scope="module")
def big_world(big: Dataset) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(layout.world_glob(big.root, t)) for t in ("employees", "credentials")}


@pytest.fixture(scope="module")
def big_admin(big: Dataset) -> pl.DataFrame:
    """Admin rows of the big dataset, once each, with the day they were generated for and the actor's role that day."""
    rows = _rows(big.root, "admin").unique("event_id", keep="first", maintain_order=True).with_columns(day=_gen_day(BIG_START))
    return _roles_on(big, rows)


# ---- 1. diurnal customer traffic -----------------------------------------------------------


def test_customer_traffic_sleeps_at_night(big: Dataset) -> None:
    gw = _rows(big.root, "gateway").unique("event_id").with_columns(h=_local().dt.hour())
    night, evening = gw["h"].is_between(2, 5).mean(), gw["h"].is_between(20, 23).mean()
    # a customer's habitual hour makes rows cluster by customer: count customers, not rows
    n = gw["customer_id"].n_unique()
    for got, share in ((night, pools.HOURLY_SHARE[2:6].sum()), (evening, pools.HOURLY_SHARE[20:24].sum())):
        assert abs(got - share) <= 5 * math.sqrt(share * (1 - share) / n), (got, share, n)
    assert night < 0.25 * evening, (night, evening)


# ---- 2. the staff's week ---------------------------------------------------------------------


def test_admin_follows_the_working_week(big_admin: pl.DataFrame) -> None:
    holidays = [d for d in big_admin["day"].unique().to_list() if pools.is_holiday(d)]
    days = big_admin.with_columns(wd=pl.col("day").dt.weekday(), hol=pl.col("day").is_in(holidays))
    queries = days.filter((pl.col("role") == "analyst") & (pl.col("action") == "query"))
    # analysts query on working days only, and on every one of them (there are ~120 analysts)
    bad = queries.filter((pl.col("wd") >= 6) | pl.col("hol"))
    assert bad.height == 0, f"analyst queries on weekends or holidays: {bad['day'].unique().sort().to_list()}"
    span = [BIG_START + dt.timedelta(days=i) for i in range((BIG_END - BIG_START).days)]
    workdays = [d for d in span if d.weekday() < 5 and not pools.is_holiday(d)]
    assert sorted(queries["day"].unique().to_list()) == workdays
    assert days.filter(pl.col("hol") & (pl.col("wd") < 6)).height > 0, "the span should hold weekday holidays"
    per = days.group_by("day", "wd", "hol").len()
    weekday = per.filter((pl.col("wd") < 6) & ~pl.col("hol"))["len"].mean()
    weekend = per.filter((pl.col("wd") >= 6) & ~pl.col("hol"))["len"].mean()
    # office roles stay home and shift workers read less at weekends: ~1.35x by construction
    assert weekday > 1.2 * weekend, (weekday, weekend)


# ---- 3. holidays and sales -----------------------------------------------------------------


@pytest.fixture(scope="module")
def daily_gateway(big: Dataset) -> pl.DataFrame:
    """Gateway rows per local day with a compound-Poisson standard error (sum of squared rows per session)."""
    per_tok = _rows(big.root, "gateway").unique("event_id").with_columns(day=_local().dt.date()).group_by("day", "token_id").len()
    return (
        per_tok.group_by("day")
        .agg(n=pl.col("len").sum(), var=(pl.col("len").cast(pl.Float64) ** 2).sum())
        .with_columns(m=pl.col("day").map_elements(pools.day_multiplier, return_dtype=pl.Float64))
        .sort("day")
    )


def _ordinary(daily: pl.DataFrame) -> tuple[float, float, pl.DataFrame]:
    """Per-unit-multiplier volume of the ordinary weekdays, its variance, and those days."""
    ordinary = daily.filter(
        (pl.col("day").dt.weekday() <= 5)
        & ~pl.col("day").map_elements(pools.is_holiday, return_dtype=pl.Boolean)
        & (pl.col("day") != SALE)
    )
    k = ordinary.height
    base = (ordinary["n"] / ordinary["m"]).mean()
    var = float((ordinary["var"] / ordinary["m"] ** 2).sum()) / k**2
    return base, var, ordinary


def test_chuseok_dip(daily_gateway: pl.DataFrame) -> None:
    base, base_var, ordinary = _ordinary(daily_gateway)
    assert ordinary.height >= 8
    holidays = daily_gateway.filter(pl.col("day").map_elements(pools.is_holiday, return_dtype=pl.Boolean))
    assert CHUSEOK in holidays["day"].to_list() and holidays.height >= 5
    for row in holidays.iter_rows(named=True):
        pred = base * row["m"]  # weekday rhythm times the holiday's multiplier (0.88 on the main day)
        sd = math.sqrt(row["var"] + row["m"] ** 2 * base_var)
        assert abs(row["n"] - pred) <= 4 * sd, f"{row['day']}: {row['n']} rows, expected {pred:.0f} +- {4 * sd:.0f}"
    chuseok = holidays.filter(pl.col("day") == CHUSEOK)["n"].item()
    mean_weekday = ordinary["n"].mean()
    # visibly below an ordinary weekday: 1.06 * 0.88 against ~1.03 on average
    assert chuseok < 0.95 * mean_weekday, (chuseok, mean_weekday)
    assert chuseok < ordinary["n"].min()


def test_sale_day_multiplier(daily_gateway: pl.DataFrame, big_config: SimConfig) -> None:
    base, base_var, ordinary = _ordinary(daily_gateway)
    sale = daily_gateway.filter(pl.col("day") == SALE).row(0, named=True)
    assert sale["n"] > 1.2 * ordinary["n"].max(), "the sale day is not visibly busier"
    # traffic on a sale day relative to an ordinary one: traffic.sale_multiplier (docs/calibration.md §2: 1.6)
    pred = base * sale["m"] * big_config.traffic.sale_multiplier
    sd = math.sqrt(sale["var"] + (sale["m"] * big_config.traffic.sale_multiplier) ** 2 * base_var)
    got = sale["n"] / (base * sale["m"])
    assert abs(sale["n"] - pred) <= 4 * sd, (
        f"sale day traffic is {got:.3f}x an ordinary {SALE:%A}, "
        f"configured {big_config.traffic.sale_multiplier}x (+- {4 * sd / pred:.3f})"
    )


# ---- 4. sessions: issuance before use ------------------------------------------------------


def _first_use(ds: Dataset) -> pl.DataFrame:
    """Each normal token's first gateway row: its ts and the bucket it was delivered in."""
    mal = ds.truth("malicious_events").select("event_id").lazy()
    return (
        ds.scan("gateway")
        .join(mal, on="event_id", how="anti")
        .group_by("token_id")
        .agg(first=pl.col("ts").min(), first_bucket=pl.col("bucket").min())
        .collect()
    )


def _issued(ds: Dataset) -> pl.DataFrame:
    return (
        ds.scan("auth")
        .filter(pl.col("event") == "token_issued")
        .group_by("token_id")
        .agg(issued=pl.col("ts").min(), issued_bucket=pl.col("bucket").min(), issue_event=pl.col("event_id").first())
        .collect()
    )


def test_every_normal_token_issued_before_use(tiny_clean_ds: Dataset, tiny_ds: Dataset) -> None:
    # clean collection: every normal session's token has an earlier issuance row, no exception
    use = _first_use(tiny_clean_ds).join(_issued(tiny_clean_ds), on="token_id", how="left")
    assert use.height > 50_000
    assert use["issued"].null_count() == 0, "a normal token with no token_issued row"
    assert (use["issued"] < use["first"]).all(), "a token used before it was issued"
    clean_issue = use.select("token_id", "issue_event")
    # default collection: the issuance row may be lost or arrive after the token's first bucket
    got = _first_use(tiny_ds).join(_issued(tiny_ds).drop("issue_event"), on="token_id", how="left")
    seen = pl.col("issued").is_not_null() & (pl.col("issued_bucket") <= pl.col("first_bucket"))
    exceptions = got.filter(~seen)
    assert got.filter(seen).select((pl.col("issued") < pl.col("first")).all()).item()
    logs = tiny_ds.manifest["config"]["logs"]
    p = logs["missing_rate"] + logs["late_rate"]
    assert _at_most(exceptions.height, got.height, p), f"{exceptions.height} of {got.height} tokens look unissued (rate {p})"
    # each exception is explained: its issuance row (same event id as in the clean dataset) was
    # not delivered in its own bucket's part file
    on_time = _rows(tiny_ds.root, "auth").filter(~pl.col("late")).select(pl.col("event_id").alias("issue_event")).unique()
    unexplained = exceptions.join(clean_issue, on="token_id", how="left").join(on_time, on="issue_event", how="semi")
    assert unexplained.height == 0, unexplained.head(5)


def test_a_share_of_normal_sessions_opens_with_a_login(tiny_clean_ds: Dataset) -> None:
    from simulator.traffic import LOGIN_SHARE

    mal = tiny_clean_ds.truth("malicious_events").select("event_id")
    auth = tiny_clean_ds.scan("auth").join(mal.lazy(), on="event_id", how="anti").filter(pl.col("customer_id").is_not_null())
    issued = auth.filter(pl.col("event") == "token_issued").select("customer_id", "ts").collect()
    logins = (
        auth.filter(pl.col("event") == "login").select("customer_id", pl.col("ts") + pl.duration(microseconds=500_000)).collect()
    )
    # every login is followed half a second later by its session's token; the other tokens come from a refresh
    assert logins.join(issued, on=["customer_id", "ts"], how="anti").height == 0
    share = logins.height / issued.height
    assert abs(share - LOGIN_SHARE) < 4 * (LOGIN_SHARE * (1 - LOGIN_SHARE) / issued.height) ** 0.5, (share, issued.height)


# ---- 5. who reads what ---------------------------------------------------------------------


def test_support_reads_carry_tickets(big: Dataset, big_admin: pl.DataFrame) -> None:
    tagged = big.truth("benign_anomalies").filter(pl.col("stream") == "admin").select("event_id")
    support = big_admin.filter(pl.col("role") == "support_agent").join(tagged, on="event_id", how="anti")
    assert support.height > 100_000
    assert (support["channel"] == "console").all() and support["customer_id"].null_count() == 0
    share = support["ticket_id"].is_not_null().mean()
    assert abs(share - 0.97) <= 5 * math.sqrt(0.97 * 0.03 / support.height), share
    # about two views per ticket (docs/calibration.md §4: 1.8 record views per contact)
    ticketed = support.filter(pl.col("ticket_id").is_not_null())
    assert 1.5 <= ticketed.height / ticketed["ticket_id"].n_unique() <= 2.5
    analysts = big_admin.filter(pl.col("role") == "analyst")
    assert analysts.height > 1_000
    # analysts run batch queries, and open the odd single record (about 2 a day against 6 queries)
    assert 0.6 < analysts["customer_id"].null_count() / analysts.height < 0.9, (
        "analysts run batch queries, with a few record views"
    )
    assert (analysts["row_count"] >= 1).all()
    # a query selects a share of the base: 3,000 rows at 1M customers (median), scaled to this world
    expected = 3000 * big.manifest["config"]["world"]["customers"] / 1_000_000
    queries = analysts.filter(pl.col("action") == "query")
    assert 0.5 * expected <= queries["row_count"].median() <= 2 * expected, (queries["row_count"].median(), expected)
    assert set(analysts["action"].unique()) == {"query", "export", "view"}
    # everyone else opens single records
    others = big_admin.filter(pl.col("role") != "analyst")
    assert others.filter(pl.col("channel") == "console")["row_count"].eq(1).all()


# ---- 6. collection faults ------------------------------------------------------------------


@pytest.mark.parametrize("stream", list(schema.LOG_STREAMS))
def test_fault_rates_match_config(stream: str, dirty: Dataset, tiny_clean_ds: Dataset, dirty_config: SimConfig) -> None:
    clean = _rows(tiny_clean_ds.root, stream).drop("late")
    got = _rows(dirty.root, stream)
    assert clean["event_id"].is_unique().all() and not clean.is_empty()
    last = dirty_config.time.end - dt.timedelta(days=1)
    # nothing is invented or altered: every delivered row is a clean row, byte for byte, late ones
    # in the partition after their own with their original ts
    cols = list(schema.LOG_STREAMS[stream].names())
    joined = got.join(clean.rename({"partition": "own"}), on=cols, how="left", nulls_equal=True)
    assert joined["own"].null_count() == 0, f"{stream}: a delivered row that the clean dataset lacks"
    assert (joined.filter(~pl.col("late"))["partition"] == joined.filter(~pl.col("late"))["own"]).all()
    late = joined.filter(pl.col("late"))
    assert (late["partition"] == late["own"] + dt.timedelta(days=1)).all(), f"{stream}: late rows in the wrong partition"
    fate = clean.join(
        got.group_by("event_id").agg(on_time=(~pl.col("late")).sum(), late=pl.col("late").sum()), on="event_id", how="left"
    ).with_columns(pl.col("on_time", "late").fill_null(0))
    assert fate.filter((pl.col("on_time") > 0) & (pl.col("late") > 0)).height == 0, "delivered both on time and late"
    assert fate["on_time"].max() <= 2 and fate["late"].max() <= 1
    n = fate.height
    n_last = fate.filter(pl.col("partition") == last).height
    lg = dirty_config.logs
    missing = fate.filter((pl.col("on_time") == 0) & (pl.col("late") == 0))
    # lost: the missing share, plus the late rows of the last day, which have nowhere to go
    mu = (n - n_last) * lg.missing_rate + n_last * (lg.missing_rate + lg.late_rate)
    var = (n - n_last) * lg.missing_rate * (1 - lg.missing_rate) + n_last * 0.04 * 0.96
    assert abs(missing.height - mu) <= 5 * math.sqrt(var) + 1, f"{stream}: {missing.height} lost of {n}, expected {mu:.0f}"
    n_late = fate["late"].sum()
    assert fate.filter(pl.col("partition") == last)["late"].sum() == 0
    assert _within(n_late, n - n_last, lg.late_rate), f"{stream}: {n_late} late of {n - n_last}"
    n_dup = fate.filter(pl.col("on_time") == 2).height
    assert _within(n_dup, n, (1 - lg.missing_rate - lg.late_rate) * lg.duplicate_rate), f"{stream}: {n_dup} duplicated of {n}"
    if n > 10_000:  # the big streams show every kind of fault
        assert missing.height and n_late and n_dup


# ---- 7. hard negatives ---------------------------------------------------------------------


def test_hard_negatives_tagged_and_look_their_part(
    big: Dataset, big_world: dict[str, pl.DataFrame], big_config: SimConfig
) -> None:
    tags = big.truth("benign_anomalies")
    assert set(tags["pattern"].unique()) == set(PATTERNS), "a pattern never occurred"
    assert tags["event_id"].is_unique().all()
    codes = {v: k for k, v in schema.STREAM_CODES.items()}
    assert (tags["stream"] == (tags["event_id"] // (1 << 60)).replace_strict(codes, return_dtype=pl.String)).all()
    delivered = pl.concat([_rows(big.root, s).select(pl.lit(s).alias("stream"), "event_id").unique() for s in schema.LOG_STREAMS])
    lost = tags.join(delivered, on=["stream", "event_id"], how="anti")
    p = big_config.logs.missing_rate + big_config.logs.late_rate
    assert _at_most(lost.height, tags.height, p), f"{lost.height} of {tags.height} tagged events not delivered"

    emp = big_world["employees"]
    admin = _rows(big.root, "admin").unique("event_id", keep="first", maintain_order=True).with_columns(day=_gen_day(BIG_START))
    admin = admin.join(tags.filter(pl.col("stream") == "admin").select("event_id", "pattern"), on="event_id").join(
        emp.select("employee_id", "role", "hire_date"), on="employee_id", how="left"
    )

    def rows(pattern: str) -> pl.DataFrame:
        out = admin.filter(pl.col("pattern") == pattern)
        assert out.height > 0, pattern
        return out

    mig = rows("data_migration").sort("customer_id")
    assert (mig["channel"] == "api").all() and (mig["action"] == "migrate").all() and (mig["role"] == "platform_engineer").all()
    assert mig["ticket_id"].null_count() == 0 and mig["employee_id"].n_unique() == 1
    # batches of 100 sequential customer ids, one after the other (a lost batch leaves one gap)
    ids, counts = mig["customer_id"].to_numpy(), mig["row_count"].to_numpy()
    gaps = np.diff(ids) - counts[:-1]
    assert (gaps >= 0).all() and (gaps % 100 == 0).all()
    lost_mig = lost.join(tags.filter(pl.col("pattern") == "data_migration"), on="event_id", how="semi").height
    assert gaps.sum() // 100 <= lost_mig
    if lost_mig == 0:
        assert counts.sum() == int(big_config.world.customers * 0.05)

    exp = rows("batch_export")
    # 100k-400k rows at 1M customers, scaled to this world: far above an analyst's routine export (2k-20k)
    scale = big_config.world.customers / 1_000_000
    assert (exp["row_count"] >= 100_000 * scale).all() and (exp["row_count"] <= 400_000 * scale).all()
    assert (exp["action"] == "export").all() and (exp["role"] == "analyst").all()
    assert exp["customer_id"].null_count() == exp.height and exp["ticket_id"].null_count() == 0

    camp = rows("support_campaign")
    assert camp["day"].n_unique() == 1 and camp["ticket_id"].n_unique() == 1 and (camp["role"] == "support_agent").all()
    agents = camp["employee_id"].n_unique()
    assert agents == 10
    assert abs(camp.height - 120 * agents) <= 5 * math.sqrt(120 * agents), camp.height

    assert (rows("travel")["country"] != "KR").all()
    travel_auth = _rows(big.root, "auth").join(tags.filter(pl.col("pattern") == "travel"), on="event_id")
    assert travel_auth.height > 0 and (travel_auth["country"] != "KR").all()
    # one address a trip (a hotel's), as an outsider on a taken-over account keeps one: not a fresh one each day
    trips = (
        rows("travel")
        .group_by("employee_id")
        .agg(pl.col("day").n_unique().alias("days"), pl.col("src_ip").n_unique().alias("ips"))
    )
    assert (trips["days"] >= 2).any() and (trips["ips"] == 1).all(), trips

    night = rows("night_on_call").with_columns(h=_local().dt.hour())
    assert night["h"].is_between(0, 6).all(), night["h"].unique().to_list()
    night = _roles_on(big, night.drop("role"))
    assert night["role"].is_in(ENGINEERS).all()
    assert night.group_by("day").agg(pl.col("employee_id").n_unique())["employee_id"].max() == 1, "one on-call engineer a night"

    # a bit of a routine day done at night over the VPN: whole tickets (no ticket split between two sessions),
    # each night session opened by a login from its address, before its rows
    late = rows("late_from_home").with_columns(h=_local().dt.hour())
    assert late["h"].is_between(0, 6).all(), late["h"].unique().to_list()
    tickets = late["ticket_id"].drop_nulls().unique()
    whole = _rows(big.root, "admin").filter(pl.col("ticket_id").is_in(tickets.implode())).unique("event_id")
    assert whole.join(late, on="event_id", how="anti").height == 0, "a ticket's opens split between day and night"
    late_logins = (
        _rows(big.root, "auth")
        .join(tags.filter(pl.col("pattern") == "late_from_home"), on="event_id")
        .select("employee_id", "src_ip", login=pl.col("ts"))
    )
    first = late.group_by("employee_id", "src_ip", "day").agg(pl.col("ts").min())
    opened = first.join(late_logins, on=["employee_id", "src_ip"]).filter(
        (pl.col("login") < pl.col("ts")) & (pl.col("ts") - pl.col("login") < pl.duration(hours=6))
    )
    assert opened.select("employee_id", "day").n_unique() >= 0.9 * first.height, (opened.height, first.height)  # late logins lost

    new = rows("new_hire").with_columns(tenure=(pl.col("day") - pl.col("hire_date")).dt.total_days())
    assert new["tenure"].is_between(0, 13).all(), new["tenure"].describe()

    rot = _rows(big.root, "hr").join(tags.filter(pl.col("pattern") == "key_rotation"), on="event_id")
    assert rot.height >= 1 and (rot["event"] == "key_rotated").all() and (rot["subject_kind"] == "key").all()
    signing = big_world["credentials"].filter(pl.col("kind") == "token-signing")["key_id"]
    assert rot["subject_id"].is_in(signing.implode()).all()


# ---- 8. determinism of the four streams ----------------------------------------------------


@pytest.mark.distributed
def test_four_streams_identical_across_workers(dirty: Dataset, dirty_config: SimConfig, tmp_path: Path) -> None:
    two = generate(dirty_config, tmp_path / "two", workers=2)
    a = {p.relative_to(dirty.root).as_posix(): p.read_bytes() for p in sorted((dirty.root / "logs").rglob("*.parquet"))}
    b = {p.relative_to(two).as_posix(): p.read_bytes() for p in sorted((two / "logs").rglob("*.parquet"))}
    assert a.keys() == b.keys()
    assert {k.split("/")[1] for k in a} == set(schema.LOG_STREAMS)
    lates = {k.split("/")[1] for k in a if "/late-" in k}
    assert {"gateway", "auth", "admin"} <= lates
    differ = [k for k in a if a[k] != b[k]]
    assert not differ, f"workers=2 changed: {differ[:5]}"
    for name in schema.TRUTH_TABLES:
        assert layout.truth_file(dirty.root, name).read_bytes() == layout.truth_file(two, name).read_bytes(), name


# ---- 9. staff on the books -----------------------------------------------------------------


def _employed() -> pl.Expr:
    left = pl.col("termination_date").is_null() | (pl.col("day") < pl.col("termination_date"))
    return (pl.col("hire_date") <= pl.col("day")) & left


def test_staff_rows_only_while_employed(big: Dataset, big_world: dict[str, pl.DataFrame], big_admin: pl.DataFrame) -> None:
    emp = big_world["employees"].select("employee_id", "hire_date", "termination_date")
    admin = big_admin.join(emp, on="employee_id", how="left")
    assert admin["hire_date"].null_count() == 0, "admin rows of unknown employees"
    bad = admin.filter(~_employed())
    assert bad.height == 0, bad.select("employee_id", "day", "hire_date", "termination_date").unique().head(5)
    auth = (
        _rows(big.root, "auth")
        .filter(pl.col("employee_id").is_not_null())
        .with_columns(day=_gen_day(BIG_START))
        .join(emp, on="employee_id", how="left")
    )
    assert auth.height > 10_000 and auth["hire_date"].null_count() == 0
    assert auth.filter(~_employed()).height == 0
    # the span holds comings and goings, so the check is not vacuous
    in_span = emp.filter(
        pl.col("hire_date").is_between(BIG_START, BIG_END, closed="left")
        | pl.col("termination_date").is_between(BIG_START, BIG_END, closed="left")
    )
    assert in_span.height >= 5


def _hr_expected(ds: Dataset, start: dt.date, end: dt.date) -> pl.DataFrame:
    emp = pl.read_parquet(layout.world_glob(ds.root, "employees"))
    return pl.concat(
        [
            emp.filter(pl.col(col).is_between(start, end, closed="left")).select(
                pl.col("employee_id").cast(pl.String).alias("subject_id"), pl.lit(event).alias("event"), pl.col(col).alias("day")
            )
            for col, event in (("hire_date", "hire"), ("termination_date", "termination"))
        ]
    )


def _hr_got(ds: Dataset) -> pl.DataFrame:
    return (
        _rows(ds.root, "hr")
        .filter(pl.col("event").is_in(["hire", "termination"]))
        .unique("event_id")
        .select(pl.col("subject_kind"), "subject_id", "event", _local().dt.date().alias("day"))
    )


def test_hr_records_every_hire_and_termination(
    tiny_clean_ds: Dataset, tiny_clean_config: SimConfig, big: Dataset, big_config: SimConfig
) -> None:
    # clean collection: exactly the comings and goings of the span, each on its day
    want = _hr_expected(tiny_clean_ds, tiny_clean_config.time.start, tiny_clean_config.time.end)
    got = _hr_got(tiny_clean_ds)
    assert want.height >= 2
    assert (got["subject_kind"] == "employee").all()
    assert sorted(got.drop("subject_kind").rows()) == sorted(want.rows())
    # default collection: nothing invented; losses within the fault rates
    want = _hr_expected(big, BIG_START, BIG_END)
    got = _hr_got(big).drop("subject_kind")
    assert want.height >= 10
    assert got.join(want, on=["subject_id", "event", "day"], how="anti").height == 0
    missing = want.join(got, on=["subject_id", "event", "day"], how="anti").height
    assert _at_most(missing, want.height, big_config.logs.missing_rate + big_config.logs.late_rate), missing
