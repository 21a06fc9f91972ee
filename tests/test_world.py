"""The world tables: determinism of the split, synthetic PII by locale, address books, signups,
staff tenures and role history, credentials, and bad input.

Distribution checks draw a few thousand to 20,000 rows straight from ``customers_block`` and
``staff`` and allow ``Z`` standard errors of the sampling noise, derived from the sample size;
each one fails for a plausible wrong implementation (a pmf reversed, a rate off by half).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from breachbench.config import ConfigError, load_config
from simulator import layout, schema
from simulator.config import SimConfig
from simulator.engine import generate, shards
from simulator.pools import EMAIL_HOSTS, locale_pools
from simulator.world import ENGINEERS, OFFBOARD_LAG, OFFBOARD_NEVER, block_count, customers_block, staff

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs" / "tiny.toml"

#: Tolerance in standard errors: a false alarm has odds of about 1 in 150,000 per check.
Z = 4.5


def _sim(seed: int = 0, **world: object) -> SimConfig:
    return SimConfig(seed=seed, world=world)


def _blocks(cfg: SimConfig) -> dict[str, pl.DataFrame]:
    """Every block of the config's customers, concatenated table by table."""
    parts = [customers_block(cfg, b) for b in range(block_count(cfg))]
    return {name: pl.concat([p[name] for p in parts]) for name in parts[0]}


def _binomial_z(observed: float, n: int, p: float) -> float:
    """Standard score of ``observed`` successes in ``n`` trials of probability ``p``."""
    sd = np.sqrt(n * p * (1 - p))
    if sd == 0:
        return 0.0 if observed == n * p else np.inf
    return (observed - n * p) / sd


def _days(col: str) -> pl.Expr:
    """Days since 1970-01-01 of a Date column (nulls stay null)."""
    return pl.col(col).cast(pl.Int64)


def _local_day(col: str, tz: str) -> pl.Expr:
    """Calendar day in ``tz`` of a UTC timestamp column, as days since 1970-01-01."""
    return pl.col(col).dt.convert_time_zone(tz).dt.date().cast(pl.Int64)


def _day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


# ---- 1. determinism of the world across workers and shard sizes ------------------------------

DET = _sim(seed=5, customers=6000, block_size=1000, employees=200)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(root: Path) -> dict:
    return json.loads((root / layout.MANIFEST).read_text())


@pytest.fixture(scope="module")
def det_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world of ``DET`` made serially, one block per shard."""
    return generate(DET, tmp_path_factory.mktemp("det") / "ref", workers=1, shard_size=None, only="world")


def test_world_only_manifest(det_reference: Path) -> None:
    m = _manifest(det_reference)
    assert m["only"] == "world"
    assert m["truth"] == []
    paths = [f["path"] for f in m["files"]]
    assert all(re.fullmatch(r"world/[a-z_]+-\d{5}\.parquet", p) for p in paths), paths
    by_table: dict[str, list[dict]] = {}
    for f in m["files"]:
        by_table.setdefault(re.sub(r"-\d{5}\.parquet$", "", f["path"].removeprefix("world/")), []).append(f)
    assert set(by_table) == set(schema.WORLD_TABLES)
    # one file per customer block; the staff tables are one piece
    for name in ("customers", "addresses", "orders"):
        assert len(by_table[name]) == block_count(DET) == 6, name
    for name in ("employees", "employee_roles", "credentials"):
        assert len(by_table[name]) == 1, name
    assert sum(f["rows"] for f in by_table["customers"]) == DET.world.customers
    assert by_table["employees"][0]["rows"] == DET.world.employees
    on_disk = {p.relative_to(det_reference).as_posix() for p in det_reference.rglob("*") if p.is_file()}
    assert on_disk == set(paths) | {layout.MANIFEST}, "logs, truth or stray files in a world-only dataset"


def test_shards_group_whole_blocks() -> None:
    assert shards(DET, None) == [[b] for b in range(6)]
    assert shards(DET, 1) == [[b] for b in range(6)]
    assert shards(DET, 1000) == [[b] for b in range(6)]
    assert shards(DET, 2500) == [[0, 1, 2], [3, 4, 5]]  # rounded up to whole blocks
    assert shards(DET, 3000) == [[0, 1, 2], [3, 4, 5]]
    assert shards(DET, 6000) == [list(range(6))]
    ragged = _sim(customers=6500, block_size=1000)
    assert shards(ragged, 3000) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize(
    ("workers", "shard_size"),
    [
        pytest.param(1, 2500, id="w1-s2500"),
        pytest.param(2, 1000, id="w2-s1000", marks=pytest.mark.distributed),
        pytest.param(4, 3000, id="w4-s3000", marks=pytest.mark.distributed),
        pytest.param(2, 2500, id="w2-s2500", marks=pytest.mark.distributed),
    ],
)
def test_world_bytes_do_not_depend_on_split(det_reference: Path, tmp_path: Path, workers: int, shard_size: int) -> None:
    out = generate(DET, tmp_path / "out", workers=workers, shard_size=shard_size, only="world")

    def listing(root: Path) -> list[tuple[str, int, str]]:
        return [(f["path"], f["rows"], f["sha256"]) for f in _manifest(root)["files"]]

    assert listing(out) == listing(det_reference)
    t1, t2 = _tree(det_reference), _tree(out)
    assert t1.keys() == t2.keys()
    differ = [k for k in t1 if t1[k] != t2[k]]
    assert not differ, f"workers={workers}, shard_size={shard_size} changed: {differ}"


# ---- 2. identifiers, e-mails, names and phones by locale -------------------------------------

MIXED = _sim(seed=21, customers=12_000, block_size=4000, locales={"ko_KR": 3.0, "en_US": 2.0, "de_DE": 1.0})
HANGUL_NAME = r"^[가-힣]+$"
ASCII_NAME = r"^[\x21-\x7e]+( [\x21-\x7e]+)+$"
PHONES = {"ko_KR": r"^010-0\d{3}-\d{4}$", "en_US": r"^\+1-\d{3}-555-01\d{2}$", "de_DE": r"^\+999 \d{3} \d{4}$"}


@pytest.fixture(scope="module")
def mixed() -> dict[str, pl.DataFrame]:
    return _blocks(MIXED)


def test_customer_ids_and_emails_unique_across_blocks(mixed: dict[str, pl.DataFrame]) -> None:
    c = mixed["customers"]
    assert c["customer_id"].to_list() == list(range(MIXED.world.customers))
    assert c["email"].null_count() == 0
    assert c["email"].n_unique() == c.height
    domains = c["email"].str.extract(r"@([^@]+)$")
    assert domains.null_count() == 0
    assert set(domains.unique()) <= set(EMAIL_HOSTS), set(domains.unique()) - set(EMAIL_HOSTS)
    assert domains.n_unique() == len(EMAIL_HOSTS)
    # address ids are unique too, and every book belongs to a customer of the world
    a = mixed["addresses"]
    assert a["address_id"].n_unique() == a.height
    assert set(a["customer_id"].unique()) == set(c["customer_id"])


def test_names_and_phones_follow_locale(mixed: dict[str, pl.DataFrame]) -> None:
    c = mixed["customers"]
    assert set(c["locale"].unique()) == set(PHONES)
    ko, us, de = (c.filter(pl.col("locale") == x) for x in ("ko_KR", "en_US", "de_DE"))
    assert ko["name"].str.contains(HANGUL_NAME).all(), ko.filter(~pl.col("name").str.contains(HANGUL_NAME))["name"].head(3)
    assert us["name"].str.contains(ASCII_NAME).all(), us.filter(~pl.col("name").str.contains(ASCII_NAME))["name"].head(3)
    assert not de["name"].str.contains(HANGUL_NAME).any()
    for locale, pattern in PHONES.items():
        phones = c.filter(pl.col("locale") == locale)["phone"]
        bad = phones.filter(~phones.str.contains(pattern))
        assert bad.len() == 0, (locale, bad.head(3).to_list())
    # the other entries of an address book are in the owner's locale too
    book = mixed["addresses"].join(c.select("customer_id", "locale"), on="customer_id")
    for locale, pattern in PHONES.items():
        phones = book.filter(pl.col("locale") == locale)["recipient_phone"]
        assert phones.str.contains(pattern).all(), locale
    assert book.filter(pl.col("locale") == "ko_KR")["recipient_name"].str.contains(HANGUL_NAME).all()
    assert book.filter(pl.col("locale") == "en_US")["recipient_name"].str.contains(ASCII_NAME).all()


@pytest.mark.parametrize(
    "locales",
    [{"ko_KR": 1.0, "en_US": 1.0}, {"ko_KR": 3.0, "en_US": 2.0, "de_DE": 1.0}, {"ja_JP": 0.1, "en_US": 0.9}],
    ids=["even", "3-2-1", "10-90"],
)
def test_locale_shares_follow_weights(locales: dict[str, float]) -> None:
    cfg = _sim(seed=22, customers=12_000, block_size=4000, locales=locales)
    c = _blocks(cfg)["customers"]
    total = sum(locales.values())
    counts = dict(c.group_by("locale").len().iter_rows())
    assert set(counts) == set(locales)
    for locale, w in locales.items():
        z = _binomial_z(counts[locale], c.height, w / total)
        assert abs(z) <= Z, f"{locale}: {counts[locale]} of {c.height}, expected share {w / total:.3f} (z={z:.1f})"


# ---- 3. address books -----------------------------------------------------------------------

DEFAULT_PMF = list(SimConfig().world.address_book_pmf)
BOOK_PMFS = {"default": DEFAULT_PMF, "custom": [0.1, 0.9], "unnormalised-gaps": [2.0, 0.0, 0.0, 6.0]}


def _book_sizes(addresses: pl.DataFrame) -> np.ndarray:
    return addresses.group_by("customer_id").len().sort("customer_id")["len"].to_numpy()


def _pmf_misfits(sizes: np.ndarray, pmf: list[float]) -> list[tuple[int, int, float]]:
    """(size, observed, expected) of every size whose count is off by more than Z standard errors."""
    p = np.asarray(pmf) / np.sum(pmf)
    n = len(sizes)
    out = []
    for k in range(1, max(len(p), int(sizes.max())) + 1):
        pk = p[k - 1] if k <= len(p) else 0.0
        obs = int((sizes == k).sum())
        if abs(_binomial_z(obs, n, pk)) > Z:
            out.append((k, obs, n * pk))
    return out


@pytest.fixture(scope="module")
def books() -> dict[str, dict[str, pl.DataFrame]]:
    """20,000 ko_KR customers (four blocks) with their books, for each pmf."""
    return {
        name: _blocks(_sim(seed=31, customers=20_000, block_size=5000, address_book_pmf=pmf)) for name, pmf in BOOK_PMFS.items()
    }


@pytest.mark.parametrize("pmf_name", list(BOOK_PMFS))
def test_address_book_sizes_follow_pmf(books: dict[str, dict[str, pl.DataFrame]], pmf_name: str) -> None:
    pmf = BOOK_PMFS[pmf_name]
    t = books[pmf_name]
    sizes = _book_sizes(t["addresses"])
    assert len(sizes) == t["customers"].height, "a customer without an address book"
    assert sizes.min() >= 1 and sizes.max() <= len(pmf)
    for k, w in enumerate(pmf, start=1):
        if w == 0:
            assert not (sizes == k).any(), f"size {k} has weight 0 but occurs"
    assert _pmf_misfits(sizes, pmf) == []
    # the tolerance has teeth: the same counts do not fit the reversed pmf
    assert _pmf_misfits(sizes, pmf[::-1]) != []


def test_first_entry_is_the_customer(books: dict[str, dict[str, pl.DataFrame]]) -> None:
    for name, t in books.items():
        a = t["addresses"].sort("address_id")
        pos = a.select(pl.int_range(pl.len()).over("customer_id").alias("pos"))["pos"]
        assert (a["address_id"] == a["customer_id"] * 16 + pos).all(), name
        assert (a["is_self"] == (pos == 0)).all(), f"{name}: is_self is not exactly entry 0"
        own = a.filter(pl.col("is_self")).join(t["customers"], on="customer_id", how="full", coalesce=True)
        assert own.height == t["customers"].height
        assert (own["recipient_name"] == own["name"]).all(), name
        assert (own["recipient_phone"] == own["phone"]).all(), name


def test_family_entries_share_the_surname(books: dict[str, dict[str, pl.DataFrame]]) -> None:
    t = books["default"]
    others = (
        t["addresses"]
        .filter(~pl.col("is_self"))
        .join(t["customers"].select("customer_id", "name"), on="customer_id")
        .select(same=pl.col("recipient_name").str.slice(0, 1) == pl.col("name").str.slice(0, 1))
    )["same"]
    # ko_KR surnames are one syllable here; a random surname matches by chance with probability q
    last = locale_pools("ko_KR").last
    assert (last.str.len_chars() == 1).all()
    q = float(((last.value_counts()["count"] / last.len()) ** 2).sum())
    p = 0.7 + 0.3 * q
    z = _binomial_z(int(others.sum()), others.len(), p)
    assert abs(z) <= Z, f"{others.mean():.3f} of {others.len()} entries share the surname, expected {p:.3f} (z={z:.1f})"


# ---- 4. signup dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("growth", "founded"),
    [(1.0, dt.date(2014, 1, 1)), (2.0, dt.date(2014, 1, 1)), (2.0, dt.date(2021, 6, 15)), (0.5, dt.date(2018, 3, 1))],
)
def test_signups_grow_as_configured(growth: float, founded: dt.date) -> None:
    cfg = _sim(seed=41, customers=20_000, block_size=20_000, signup_growth=growth, founded=founded)
    signup = customers_block(cfg, 0)["customers"]["signup_date"]
    assert signup.min() >= founded
    assert signup.max() < cfg.time.end
    span = (cfg.time.end - founded).days
    off = signup.cast(pl.Int64).to_numpy() - _day(founded)
    n = len(off)
    # P(offset >= h) = 1 - (h / span) ** g for a whole number of days h
    half = span // 2
    later = int((off >= half).sum())
    expected = 1 - (half / span) ** growth
    assert abs(expected - (1 - 0.5**growth)) < 1e-3
    z = _binomial_z(later, n, expected)
    assert abs(z) <= Z, f"g={growth}: {later / n:.3f} in the later half, expected {expected:.3f} (z={z:.1f})"
    # and quarter by quarter
    edges = [round(j * span / 4) for j in range(5)]
    for lo, hi in itertools.pairwise(edges):
        obs = int(((off >= lo) & (off < hi)).sum())
        p = (hi / span) ** growth - (lo / span) ** growth
        assert abs(_binomial_z(obs, n, p)) <= Z, (growth, lo, hi, obs / n, p)


# ---- 5. employee tenures --------------------------------------------------------------------

BIG_STAFF = _sim(seed=51, employees=20_000, orphaned_keys=0)
#: Contractors leave 1.5 times as fast as employees of the same role (simulator.world.staff).
CONTRACTOR_ATTRITION = 1.5


#: Staff worlds for the tenure, role-history and credential tests.
ROLE_STAFF = {
    "big": BIG_STAFF,
    # a young company: too few engineers have left, so some are made to leave for the orphaned keys
    "forced-leavers": _sim(seed=61, employees=300, founded=dt.date(2024, 9, 1), signing_keys=8, orphaned_keys=6),
    "busy": _sim(seed=53, employees=5000, role_change_rate=0.5),
}


@functools.cache
def _role_staff(name: str) -> dict[str, pl.DataFrame]:
    """Staff tables of ``ROLE_STAFF[name]``, made once per session (a failure stays with its tests)."""
    return staff(ROLE_STAFF[name])


@pytest.fixture(scope="module")
def big_staff() -> dict[str, pl.DataFrame]:
    return _role_staff("big")


def _with_hire_role(s: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Employees with the role they were hired into (it sets their attrition)."""
    first = s["employee_roles"].sort("employee_id", "start_date").group_by("employee_id", maintain_order=True).first()
    return s["employees"].join(first.select("employee_id", pl.col("role").alias("hire_role")), on="employee_id")


def _leavers_by_group(cfg: SimConfig, s: dict[str, pl.DataFrame]) -> dict[str, tuple[int, float, float]]:
    """Observed vs expected leavers per (role group, kind): (observed, expected, sd)."""
    e = _with_hire_role(s).with_columns(
        exposure=pl.lit(_day(cfg.time.end)) - _days("hire_date"), left=pl.col("termination_date").is_not_null()
    )
    att = cfg.world.attrition
    out = {}
    for group in ("support_agent", "others"):
        for kind in ("employee", "contractor"):
            agent = pl.col("hire_role") == "support_agent"
            sel = agent if group == "support_agent" else ~agent
            sub = e.filter(sel & (pl.col("kind") == kind))
            rate = att["support_agent"] if group == "support_agent" else att["default"]
            rate *= CONTRACTOR_ATTRITION if kind == "contractor" else 1.0
            # tenure = 30 + floor(Exponential(365 / rate)) days ends before time.end iff X < exposure - 30
            x = np.maximum(sub["exposure"].to_numpy() - 30, 0)
            p = -np.expm1(-x * rate / 365.0)
            out[f"{group}/{kind}"] = (int(sub["left"].sum()), float(p.sum()), float(np.sqrt((p * (1 - p)).sum())))
    return out


def test_tenures_follow_attrition(big_staff: dict[str, pl.DataFrame]) -> None:
    e = big_staff["employees"]
    assert e.height == BIG_STAFF.world.employees
    tenure = e.filter(pl.col("termination_date").is_not_null()).select(_days("termination_date") - _days("hire_date"))
    assert tenure.to_series().min() >= 30, "a leaver stayed less than the 30-day minimum"
    assert e["termination_date"].drop_nulls().max() < BIG_STAFF.time.end, "a termination at or after time.end is not null"
    fits = _leavers_by_group(BIG_STAFF, big_staff)
    for group, (obs, exp, sd) in fits.items():
        assert sd > 5, group
        assert abs(obs - exp) <= Z * sd, f"{group}: {obs} leavers, expected {exp:.0f} ± {sd:.0f}"


def test_lower_attrition_means_fewer_leavers(big_staff: dict[str, pl.DataFrame]) -> None:
    slow = {"support_agent": 0.035, "default": 0.012}  # a tenth of the defaults
    low = BIG_STAFF.model_copy(update={"world": BIG_STAFF.world.model_copy(update={"attrition": slow})})
    s = staff(low)
    fits = _leavers_by_group(low, s)
    for group, (obs, exp, sd) in fits.items():
        assert abs(obs - exp) <= Z * max(sd, 1.0), f"{group}: {obs} leavers, expected {exp:.0f} ± {sd:.0f}"
    before = big_staff["employees"]["termination_date"].is_not_null().sum()
    after = s["employees"]["termination_date"].is_not_null().sum()
    assert after < 0.25 * before, (before, after)


# ---- 6. role history ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ROLE_STAFF))
def test_role_segments_tile_employment(name: str) -> None:
    s = _role_staff(name)
    e, seg = s["employees"], s["employee_roles"].sort("employee_id", "start_date")
    assert set(seg["employee_id"].unique()) == set(e["employee_id"])
    nxt = seg.with_columns(
        next_start=pl.col("start_date").shift(-1).over("employee_id"),
        pos=pl.int_range(pl.len()).over("employee_id"),
        n=pl.len().over("employee_id"),
    )
    inner = nxt.filter(pl.col("pos") < pl.col("n") - 1)
    assert (inner["end_date"] == inner["next_start"]).all(), "a gap or overlap between role segments"
    assert inner["end_date"].null_count() == 0
    closed = nxt.filter(pl.col("end_date").is_not_null())
    assert (closed["start_date"] < closed["end_date"]).all(), "an empty or reversed segment"
    ends = (
        nxt.filter(pl.col("pos") == 0)
        .select("employee_id", "start_date")
        .join(nxt.filter(pl.col("pos") == pl.col("n") - 1).select("employee_id", "end_date"), on="employee_id")
        .join(e, on="employee_id")
    )
    assert (ends["start_date"] == ends["hire_date"]).all(), "first segment does not start at hire"
    assert (ends["end_date"].is_null() == ends["termination_date"].is_null()).all()
    both = ends.filter(pl.col("end_date").is_not_null())
    assert (both["end_date"] == both["termination_date"]).all(), "last segment does not end at termination"


@pytest.mark.parametrize("name", list(ROLE_STAFF))
def test_role_of_record(name: str) -> None:
    cfg = ROLE_STAFF[name]
    s = _role_staff(name)
    start = _day(cfg.time.start)
    e = s["employees"].with_columns(
        snap=pl.min_horizontal(pl.lit(start), _days("termination_date") - 1).fill_null(start), hire=_days("hire_date")
    )
    seg = s["employee_roles"].with_columns(lo=_days("start_date"), hi=_days("end_date").fill_null(np.iinfo(np.int64).max))
    covering = e.join(seg, on="employee_id", suffix="_seg").filter(
        (pl.col("lo") <= pl.col("snap")) & (pl.col("snap") < pl.col("hi"))
    )
    assert covering["employee_id"].is_unique().all()
    first = seg.sort("employee_id", "start_date").group_by("employee_id", maintain_order=True).first()
    later = e.filter(pl.col("hire") > pl.col("snap")).join(first, on="employee_id", suffix="_seg")
    record = pl.concat(
        [
            covering.select("employee_id", "role", "team", "role_seg", "team_seg"),
            later.select("employee_id", "role", "team", "role_seg", "team_seg"),
        ]
    )
    assert record.height == e.height, "an employee without a segment at the snapshot day"
    wrong = record.filter((pl.col("role") != pl.col("role_seg")) | (pl.col("team") != pl.col("team_seg")))
    assert wrong.height == 0, wrong.head(5)


@pytest.mark.parametrize("name", ["big", "busy"])
def test_role_change_rate(name: str) -> None:
    cfg = ROLE_STAFF[name]
    s = _role_staff(name)
    e = s["employees"]
    end = _day(cfg.time.end)
    years = (
        e.select((pl.min_horizontal(_days("termination_date").fill_null(end), pl.lit(end)) - _days("hire_date")) / 365.25)
        .to_series()
        .sum()
    )
    changes = s["employee_roles"].height - e.height
    expected = cfg.world.role_change_rate * years
    msg = f"{changes} changes in {years:.0f} person-years, expected {expected:.0f}"
    assert abs(changes - expected) <= Z * np.sqrt(expected), msg


# ---- 7. credentials -------------------------------------------------------------------------

ORPHAN_CASES = {
    "none": _sim(seed=61, employees=300, signing_keys=3, orphaned_keys=0),
    "default": _sim(seed=61, employees=300),
    "many": _sim(seed=62, employees=300, signing_keys=8, orphaned_keys=5),
    "forced-leavers": ROLE_STAFF["forced-leavers"],
    "all-orphaned-some-forced": _sim(seed=63, employees=400, founded=dt.date(2024, 6, 1), signing_keys=4, orphaned_keys=4),
}


def _check_orphans(cfg: SimConfig, s: dict[str, pl.DataFrame]) -> None:
    start = cfg.time.start
    sk = (
        s["credentials"]
        .filter(pl.col("kind") == "token-signing")
        .join(s["employees"], left_on="owner_employee_id", right_on="employee_id", how="left")
    )
    # the keys in production use are exactly the unrevoked ones
    assert sk.filter(pl.col("revoked").is_null()).height == cfg.world.signing_keys
    gone = sk.filter(pl.col("termination_date").is_not_null() & (pl.col("termination_date") < start))
    orphans = gone.filter(pl.col("revoked").is_null())
    assert orphans.height == cfg.world.orphaned_keys, orphans
    assert orphans["rotated"].null_count() == orphans.height, "an orphaned key was rotated"
    assert orphans["owner_employee_id"].is_unique().all()
    assert orphans["role"].is_in(list(ENGINEERS)).all(), orphans["role"].to_list()
    # the other signing keys belong to people employed through the span (or to none)
    live = sk.filter(pl.col("revoked").is_null() & ~pl.col("key_id").is_in(orphans["key_id"].implode()))
    assert live["termination_date"].null_count() == live.height


@pytest.mark.parametrize("name", list(ORPHAN_CASES))
def test_exactly_the_orphaned_signing_keys(name: str) -> None:
    cfg = ORPHAN_CASES[name]
    _check_orphans(cfg, staff(cfg))


@pytest.mark.parametrize(
    "cfg",
    [
        pytest.param(_sim(seed=120, employees=60, signing_keys=6, orphaned_keys=4), id="seed120-60-employees"),
        pytest.param(
            _sim(seed=52, employees=300, founded=dt.date(2024, 9, 1), signing_keys=8, orphaned_keys=6), id="seed52-forced-leavers"
        ),
        pytest.param(_sim(seed=7, employees=25), id="tiny-seed-25-employees"),
    ],
)
def test_orphaned_keys_when_departed_engineers_changed_role(cfg: SimConfig) -> None:
    """Worlds where some engineers changed role before leaving still get their orphaned keys.

    ``staff`` counts departed engineers by their hiring role, ``_credentials`` by their role of
    record; when they disagree ``_credentials`` asks numpy for more departed engineers than there are.
    """
    _check_orphans(cfg, staff(cfg))


def test_credential_lifecycle(big_staff: dict[str, pl.DataFrame]) -> None:
    c = big_staff["credentials"]
    assert c["key_id"].is_unique().all()
    assert set(c["kind"].unique()) == {"token-signing", "api-key", "service-account"}
    assert c["created"].null_count() == 0
    for col in ("rotated", "revoked"):
        bad = c.filter(pl.col(col) < pl.col("created"))
        assert bad.height == 0, f"{col} before created: {bad.head(3)}"
    sa = c.filter(pl.col("kind") == "service-account")
    assert sa["owner_employee_id"].null_count() == sa.height and sa["owner_team"].null_count() == 0
    assert sa["revoked"].null_count() == sa.height
    ak = c.filter(pl.col("kind") == "api-key").join(big_staff["employees"], left_on="owner_employee_id", right_on="employee_id")
    assert ak.height == c.filter(pl.col("kind") == "api-key").height, "an API key whose owner is not an employee"
    tz = BIG_STAFF.time.timezone
    made = ak.select(d=_local_day("created", tz), hire=_days("hire_date"), term=_days("termination_date"))
    assert (made["d"] >= made["hire"]).all(), "an API key made before its owner was hired"
    left = made.filter(pl.col("term").is_not_null())
    assert (left["d"] < left["term"]).all(), "an API key made after its owner left"
    # keys of people still employed at the end are never revoked
    staying = ak.filter(pl.col("termination_date").is_null())
    assert staying["revoked"].null_count() == staying.height


def test_credentials_created_before_the_end(big_staff: dict[str, pl.DataFrame]) -> None:
    """The world is the state at time.end: no credential can be created on or after it."""
    c = big_staff["credentials"].with_columns(d=_local_day("created", BIG_STAFF.time.timezone))
    late = c.filter(pl.col("d") >= _day(BIG_STAFF.time.end))
    assert late.height == 0, f"{late.height} credentials created on or after time.end: {late.group_by('kind').len().rows()}"


def _p_revoked_by_end(days_left: np.ndarray) -> np.ndarray:
    """P(revoked before time.end) for a leaver with ``days_left`` days between leaving and the end."""
    p = np.zeros(len(days_left))
    for lo, hi, share in OFFBOARD_LAG:
        lags = np.arange(lo, hi + 1)
        p += share * (lags[None, :] < days_left[:, None]).mean(axis=1)
    return p


def test_offboarding_revokes_api_keys(big_staff: dict[str, pl.DataFrame]) -> None:
    assert OFFBOARD_NEVER == pytest.approx(0.20) and sum(s for *_, s in OFFBOARD_LAG) == pytest.approx(0.80)
    tz, end = BIG_STAFF.time.timezone, _day(BIG_STAFF.time.end)
    ak = (
        big_staff["credentials"]
        .filter(pl.col("kind") == "api-key")
        .join(big_staff["employees"], left_on="owner_employee_id", right_on="employee_id")
        .filter(pl.col("termination_date").is_not_null())
        .select(term=_days("termination_date"), rev=_local_day("revoked", tz))
        .with_columns(lag=pl.col("rev") - pl.col("term"), days_left=pl.lit(end) - pl.col("term"))
    )
    assert ak.height > 1000
    revoked = ak.filter(pl.col("rev").is_not_null())
    assert (revoked["lag"] >= 0).all() and (revoked["lag"] <= 30).all(), revoked["lag"].describe()
    assert (revoked["rev"] < end).all()
    # every leaver: the chance of a revocation visible before time.end, summed
    p = _p_revoked_by_end(ak["days_left"].to_numpy())
    obs, exp, sd = revoked.height, p.sum(), np.sqrt((p * (1 - p)).sum())
    assert abs(obs - exp) <= Z * sd, f"{obs} revoked API keys of leavers, expected {exp:.0f} ± {sd:.0f}"
    # leavers with the whole 30-day window inside the data: 50% same day, 25% in a week, 5% in a month, 20% never
    full = ak.filter(pl.col("days_left") > 30)
    n = full.height
    assert n > 1000
    buckets = [(pl.col("rev").is_null(), OFFBOARD_NEVER)]
    buckets += [(pl.col("lag").is_between(lo, hi), share) for lo, hi, share in OFFBOARD_LAG]
    for cond, share in buckets:
        k = full.filter(cond).height
        z = _binomial_z(k, n, share)
        assert abs(z) <= Z, f"{k / n:.3f} of {n} leavers in a bucket of share {share} (z={z:.1f})"


def test_contractor_share(big_staff: dict[str, pl.DataFrame]) -> None:
    e = big_staff["employees"]
    assert set(e["kind"].unique()) == {"employee", "contractor"}
    k = int((e["kind"] == "contractor").sum())
    z = _binomial_z(k, e.height, BIG_STAFF.world.contractor_share)
    assert abs(z) <= Z, f"{k / e.height:.4f} contractors, configured {BIG_STAFF.world.contractor_share} (z={z:.1f})"
    none = staff(_sim(seed=54, employees=2000, contractor_share=0.0))["employees"]
    assert (none["kind"] == "employee").all()
    half = staff(_sim(seed=54, employees=2000, contractor_share=0.5))["employees"]
    assert abs(_binomial_z(int((half["kind"] == "contractor").sum()), 2000, 0.5)) <= Z


# ---- 8. bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "must_name"),
    [
        pytest.param("world.customers=0", ["world.customers = 0", "greater than 0"], id="zero-customers"),
        pytest.param("world.locales={ ko_KR = 1.0, en_XX = 1.0 }", ["world.locales", "en_XX", "unknown locale"], id="bad-locale"),
        pytest.param("world.locales={ ko_KR = 0.0 }", ["world.locales", "ko_KR", "> 0"], id="zero-locale-weight"),
        pytest.param("world.address_book_pmf=[0.5, -0.1, 0.6]", ["world.address_book_pmf", "-0.1", "non-negative"], id="neg-pmf"),
        pytest.param("world.address_book_pmf=[0.0, 0.0]", ["world.address_book_pmf", "positive sum"], id="zero-pmf"),
        pytest.param("world.address_book_pmf=[]", ["world.address_book_pmf", "[]", "1 to 16"], id="empty-pmf"),
        pytest.param(f"world.address_book_pmf=[{', '.join(['0.1'] * 17)}]", ["world.address_book_pmf", "1 to 16"], id="long-pmf"),
        pytest.param(
            "world.roles={ support_agent = 1.0, wizard = 0.5 }",
            ["world.roles", "wizard", "support_agent", "platform_engineer"],
            id="unknown-role",
        ),
        pytest.param("world.roles={ support_agent = -1.0, other = 2.0 }", ["world.roles", "support_agent", "-1"], id="neg-role"),
        pytest.param("world.orphaned_keys=7", ["world", "orphaned_keys=7", "signing_keys=6"], id="orphans-over-keys"),
        pytest.param("world.attrition={ support_agent = 0.0 }", ["world.attrition", "support_agent", "(0, 5)"], id="zero-rate"),
    ],
)
def test_bad_world_config(override: str, must_name: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(TINY, [override])
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(TINY)), msg
    for needle in must_name:
        assert needle in msg, f"{needle!r} not in {msg!r}"


def test_unknown_role_in_attrition_is_rejected() -> None:
    """A misspelt role in world.attrition would silently fall back to the default rate."""
    with pytest.raises(ConfigError) as info:
        load_config(TINY, ["world.attrition={ suport_agent = 0.35, default = 0.12 }"])
    assert "world.attrition" in str(info.value) and "suport_agent" in str(info.value)


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "breachbench", *map(str, args)]
    return subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "must_name"),
    [
        pytest.param(["--shard-size", "4001"], ["--shard-size", "4001", "world.customers=4000"], id="shard-larger-than-world"),
        pytest.param(["--shard-size", "9000", "--set", "world.customers=3000"], ["--shard-size", "9000", "=3000"], id="over-set"),
        pytest.param(["--shard-size", "0"], ["--shard-size", ">= 1"], id="shard-zero"),
        pytest.param(["--set", "world.address_book_pmf=[0.5,-0.1]"], ["world.address_book_pmf", "non-negative"], id="neg-pmf"),
        pytest.param(["--set", "world.roles={ wizard = 1.0 }"], ["world.roles", "wizard", "accepted"], id="unknown-role"),
        pytest.param(["--set", "world.employees=3"], ["world.employees", "world.orphaned_keys"], id="too-few-engineers"),
    ],
)
def test_cli_bad_world_input(tmp_path: Path, extra: list[str], must_name: list[str]) -> None:
    out = tmp_path / "out"
    line = _one_line_exit_2(_cli("generate", TINY, "--out", out, "--only", "world", *extra))
    for needle in must_name:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], "temporary directories left behind"
