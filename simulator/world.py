"""World tables: customers, address books, orders, employees, credentials.

Each customer block (``world.block_size`` consecutive ids) is generated from its own random
streams, so a block's rows do not depend on which process makes them or on the other blocks.
Employees and credentials are small and made in one piece.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from simulator import schema
from simulator.config import SimConfig
from simulator.pools import EMAIL_DOMAINS, FAMILY_FIRST, HOURLY_SHARE, locale_pools, phones
from simulator.seeding import rng

#: Address-book size pmf (CALIBRATION: {1: .45, 2: .30, 3: .13, 4: .05, 5: .03, 6-10: .04}).
BOOK_SIZES = np.arange(1, 11)
BOOK_PMF = np.array([0.45, 0.30, 0.13, 0.05, 0.03, 0.008, 0.008, 0.008, 0.008, 0.008])
TIERS = pl.Series(["basic", "wow"])

ROLES = ("support_agent", "logistics", "analyst", "backend_engineer", "platform_engineer", "administrator", "other")
ROLE_SHARE = np.array([0.25, 0.20, 0.08, 0.15, 0.12, 0.05, 0.15])
TEAMS = {
    "support_agent": ("cs-seoul", "cs-busan"), "logistics": ("fc-ops", "last-mile"), "analyst": ("bi", "growth"),
    "backend_engineer": ("identity", "checkout", "catalog"), "platform_engineer": ("infra", "security-eng"),
    "administrator": ("it-ops",), "other": ("finance", "legal", "hr"),
}
#: Annual attrition by role (CALIBRATION: support 0.35, others 0.12).
ATTRITION = {"support_agent": 0.35}
OFFICES = ("Seoul", "Busan", "Incheon", "Pangyo")
SHIFTS = ("day", "evening", "night")
ENGINEERS = ("backend_engineer", "platform_engineer")


def block_count(cfg: SimConfig) -> int:
    """Number of customer blocks."""
    return -(-cfg.world.customers // cfg.world.block_size)


def block_range(cfg: SimConfig, block: int) -> tuple[int, int]:
    """Customer ids ``[lo, hi)`` of a block."""
    lo = block * cfg.world.block_size
    return lo, min(lo + cfg.world.block_size, cfg.world.customers)


def utc_micros(day: dt.date, tz: str) -> int:
    """UTC microseconds of local midnight starting ``day`` in ``tz``."""
    local = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * 1_000_000


def _locale_of(cfg: SimConfig, r: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    names = sorted(cfg.world.locales)
    w = np.array([cfg.world.locales[k] for k in names], dtype=np.float64)
    return names, r.choice(len(names), size=n, p=w / w.sum())


def _names(root: int, locales: list[str], loc: np.ndarray, r: np.random.Generator, last_idx: np.ndarray | None = None) -> tuple[pl.Series, np.ndarray]:
    """Full names by locale; returns the names and the surname indices (for family members)."""
    n = len(loc)
    first_idx = r.integers(0, 1 << 30, n)
    if last_idx is None:
        last_idx = r.integers(0, 1 << 30, n)
    out = pl.Series("name", [None] * n, dtype=pl.String)
    for k, locale in enumerate(locales):
        mask = loc == k
        if not mask.any():
            continue
        p = locale_pools(root, locale)
        last = p.last.gather(last_idx[mask] % len(p.last))
        first = p.first.gather(first_idx[mask] % len(p.first))
        sep = "" if locale in FAMILY_FIRST else " "
        full = (last + sep + first) if locale in FAMILY_FIRST else (first + sep + last)
        out = out.scatter(np.flatnonzero(mask), full)
    return out, last_idx


def _addresses_text(root: int, locales: list[str], loc: np.ndarray, r: np.random.Generator) -> pl.Series:
    n = len(loc)
    city_idx, street_idx = r.integers(0, 1 << 30, n), r.integers(0, 1 << 30, n)
    number = pl.Series(r.integers(1, 999, n)).cast(pl.String)
    out = pl.Series("address", [None] * n, dtype=pl.String)
    for k, locale in enumerate(locales):
        mask = loc == k
        if not mask.any():
            continue
        p = locale_pools(root, locale)
        city = p.city.gather(city_idx[mask] % len(p.city))
        street = p.street.gather(street_idx[mask] % len(p.street))
        num = number.filter(pl.Series(mask))
        text = (city + " " + street + " " + num) if locale in FAMILY_FIRST else (num + " " + street + ", " + city)
        out = out.scatter(np.flatnonzero(mask), text)
    return out


def customers_block(cfg: SimConfig, block: int) -> dict[str, pl.DataFrame]:
    """Customers, their address books and their orders for one block."""
    root = cfg.seed
    lo, hi = block_range(cfg, block)
    n = hi - lo
    r = rng(root, "customers", block)
    ids = np.arange(lo, hi, dtype=np.int64)
    locales, loc = _locale_of(cfg, r, n)
    names, last_idx = _names(root, locales, loc, r)
    users_idx = r.integers(0, 1 << 30, n)
    user = pl.Series([None] * n, dtype=pl.String)
    phone = pl.Series([None] * n, dtype=pl.String)
    region = pl.Series([None] * n, dtype=pl.String)
    region_idx = r.integers(0, 1 << 30, n)
    for k, locale in enumerate(locales):
        mask = loc == k
        if mask.any():
            p = locale_pools(root, locale)
            pos = np.flatnonzero(mask)
            user = user.scatter(pos, p.user.gather(users_idx[mask] % len(p.user)))
            phone = phone.scatter(pos, phones(locale, r, int(mask.sum())))
            region = region.scatter(pos, p.city.gather(region_idx[mask] % len(p.city)))
    domain = pl.Series(list(EMAIL_DOMAINS)).gather(r.integers(0, len(EMAIL_DOMAINS), n))
    # signups grow over time: more recent dates are likelier
    span = (cfg.time.end - cfg.world.founded).days
    signup_off = (span * np.sqrt(r.random(n))).astype(np.int64).clip(0, span - 1)
    mean = cfg.traffic.daily_active_fraction
    activity = r.beta(0.8, 0.8 * (1 - mean) / mean, n).astype(np.float32) if mean < 1 else np.ones(n, np.float32)
    customers = pl.DataFrame(
        {
            "customer_id": ids,
            "name": names,
            "user": user,
            "domain": domain,
            "phone": phone,
            "signup_date": signup_off,
            "tier": TIERS.gather((r.random(n) < 0.4).astype(np.int64)),
            "home_region": region,
            "locale": pl.Series(locales).gather(loc),
            "activity": activity,
        }
    ).with_columns(
        email=pl.concat_str([pl.col("user"), pl.lit("."), pl.col("customer_id").cast(pl.String), pl.lit("@"), pl.col("domain")]),
        signup_date=pl.lit(cfg.world.founded) + pl.duration(days=pl.col("signup_date")),
    ).select(schema.CUSTOMERS.names()).cast(schema.CUSTOMERS)

    # address books: entry 0 is the customer; others are family (same surname) or friends
    sizes = BOOK_SIZES[r.choice(len(BOOK_SIZES), size=n, p=BOOK_PMF / BOOK_PMF.sum())]
    owner = np.repeat(np.arange(n), sizes)
    m = len(owner)
    starts = np.cumsum(sizes) - sizes
    is_self = np.zeros(m, dtype=bool)
    is_self[starts] = True
    fam_names, _ = _names(root, locales, loc[owner], r, last_idx=np.where(r.random(m) < 0.7, last_idx[owner], r.integers(0, 1 << 30, m)))
    fam_phone = pl.Series([None] * m, dtype=pl.String)
    for k, locale in enumerate(locales):
        mask = loc[owner] == k
        if mask.any():
            fam_phone = fam_phone.scatter(np.flatnonzero(mask), phones(locale, r, int(mask.sum())))
    code = pl.Series(r.integers(0, 10000, m)).cast(pl.String).str.zfill(4)
    has_code = pl.Series(r.random(m) < 0.6)
    addresses = pl.DataFrame(
        {
            "address_id": ids[owner] * 16 + (np.arange(m) - starts[owner]),
            "customer_id": ids[owner],
            "recipient_name": pl.select(pl.when(pl.Series(is_self)).then(names.gather(owner)).otherwise(fam_names)).to_series(),
            "recipient_phone": pl.select(pl.when(pl.Series(is_self)).then(phone.gather(owner)).otherwise(fam_phone)).to_series(),
            "is_self": is_self,
            "address": _addresses_text(root, locales, loc[owner], r),
            "entrance_code": pl.select(pl.when(has_code).then(pl.lit("#") + code)).to_series(),
        }
    ).cast(schema.ADDRESSES)

    # orders during the simulated span: ~3.5 a month for an active customer
    days = cfg.time.days
    rate = 3.5 / 30.0 * days * activity / max(mean, 1e-9)
    counts = r.poisson(rate)
    o_owner = np.repeat(np.arange(n), counts)
    k = len(o_owner)
    start_us = utc_micros(cfg.time.start, cfg.time.timezone)
    day = r.integers(0, days, k)
    sec = r.choice(24, size=k, p=HOURLY_SHARE) * 3600 + r.integers(0, 3600, k)
    o_starts = np.cumsum(counts) - counts
    orders = pl.DataFrame(
        {
            "order_id": ids[o_owner] * 4096 + (np.arange(k) - o_starts[o_owner]),
            "customer_id": ids[o_owner],
            "ts": start_us + day * 86_400_000_000 + sec * 1_000_000,
            "amount": np.round(r.lognormal(np.log(30_000), 0.7, k), -1).astype(np.int64),
            "items": 1 + r.poisson(1.5, k),
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")).cast(schema.ORDERS).sort("ts", "order_id")
    return {"customers": customers, "addresses": addresses, "orders": orders}


def staff(cfg: SimConfig) -> dict[str, pl.DataFrame]:
    """Employees and credentials (one piece: a few thousand rows at most)."""
    root = cfg.seed
    r = rng(root, "employees", 0)
    n = cfg.world.employees
    ids = np.arange(n, dtype=np.int64)
    role_idx = r.choice(len(ROLES), size=n, p=ROLE_SHARE)
    roles = np.asarray(ROLES, dtype=object)[role_idx]
    teams = np.array([TEAMS[x][j % len(TEAMS[x])] for x, j in zip(roles, r.integers(0, 6, n), strict=True)], dtype=object)
    names, _ = _names(root, ["ko_KR"], np.zeros(n, dtype=np.int64), r)
    start = cfg.time.start
    span_before = (start - cfg.world.founded).days
    hire_off = (span_before * r.random(n)).astype(np.int64)
    hire = np.array([cfg.world.founded + dt.timedelta(days=int(d)) for d in hire_off])
    attr = np.array([ATTRITION.get(x, 0.12) for x in roles])
    tenure = r.exponential(365.0 / attr).astype(np.int64) + 30
    term = np.array([h + dt.timedelta(days=int(t)) for h, t in zip(hire, tenure, strict=True)], dtype=object)
    term[term >= np.array([cfg.time.end] * n)] = None
    # the orphaned keys need owners who left before the span: make sure enough engineers did
    eng = np.flatnonzero(np.isin(roles, ENGINEERS))
    departed_eng = [i for i in eng if term[i] is not None and term[i] < start]
    need = cfg.world.orphaned_keys - len(departed_eng)
    if need > 0:
        stayers = [i for i in eng if i not in departed_eng]
        if len(stayers) < need:
            raise ValueError(
                f"world.employees={n} gives too few engineers for world.orphaned_keys={cfg.world.orphaned_keys}; "
                "raise world.employees or lower world.orphaned_keys"
            )
        for i in r.choice(np.asarray(stayers), size=need, replace=False):
            term[i] = start - dt.timedelta(days=int(r.integers(30, 240)))
            if hire[i] >= term[i]:
                hire[i] = term[i] - dt.timedelta(days=int(r.integers(400, 900)))
    employees = pl.DataFrame(
        {
            "employee_id": ids,
            "name": names,
            "role": roles.tolist(),
            "team": teams.tolist(),
            "hire_date": hire.tolist(),
            "termination_date": term.tolist(),
            "home_office": np.asarray(OFFICES, dtype=object)[r.integers(0, len(OFFICES), n)].tolist(),
            "shift": np.where(roles == "support_agent", np.asarray(SHIFTS, dtype=object)[r.choice(3, n, p=[0.55, 0.3, 0.15])], "day").tolist(),
        },
        schema=schema.EMPLOYEES,
    )
    return {"employees": employees, "credentials": _credentials(cfg, employees, r)}


def _credentials(cfg: SimConfig, employees: pl.DataFrame, r: np.random.Generator) -> pl.DataFrame:
    start = cfg.time.start
    eng = employees.filter(pl.col("role").is_in(ENGINEERS))
    departed = eng.filter(pl.col("termination_date") < start).sort("employee_id")
    current = eng.filter(pl.col("termination_date").is_null() | (pl.col("termination_date") >= cfg.time.end)).sort("employee_id")
    n_orph, n_keys = cfg.world.orphaned_keys, cfg.world.signing_keys
    orph_owner = departed["employee_id"].to_numpy()[r.choice(departed.height, size=n_orph, replace=False)] if n_orph else np.array([], dtype=np.int64)
    cur_ids = current["employee_id"].to_numpy()
    owners = list(orph_owner) + [int(cur_ids[i]) if len(cur_ids) else None for i in r.integers(0, max(len(cur_ids), 1), n_keys - n_orph)]
    # a couple of properly revoked keys of departed owners too, so "owner left" is not unique
    revoked_owner = departed["employee_id"].to_numpy()[r.integers(0, departed.height, 2)] if departed.height else np.array([], dtype=np.int64)
    start_us = utc_micros(start, cfg.time.timezone)
    day_us = 86_400_000_000
    rows = []
    key_hex = r.integers(0, 1 << 32, n_keys + len(revoked_owner))
    for j, owner in enumerate(owners):
        created = start_us - int(r.integers(200, 2200)) * day_us
        rotated = None if j < n_orph or r.random() < 0.5 else created + int(r.integers(100, 400)) * day_us
        rows.append((f"sk-{key_hex[j]:08x}", "token-signing", owner, "identity", created, rotated, None))
    for j, owner in enumerate(revoked_owner):
        created = start_us - int(r.integers(900, 2500)) * day_us
        rows.append((f"sk-{key_hex[n_keys + j]:08x}", "token-signing", int(owner), "identity", created, None, created + int(r.integers(300, 800)) * day_us))
    teams = sorted({t for ts in TEAMS.values() for t in ts})
    for j in range(max(4, cfg.world.employees // 50)):
        created = start_us - int(r.integers(10, 1500)) * day_us
        kind = "service-account" if j % 2 else "api-key"
        rows.append((f"{'sa' if j % 2 else 'ak'}-{int(r.integers(0, 1 << 32)):08x}", kind, None, teams[j % len(teams)], created, None, None))
    df = pl.DataFrame(rows, schema=["key_id", "kind", "owner_employee_id", "owner_team", "created", "rotated", "revoked"], orient="row")
    return df.with_columns(
        [pl.col(c).cast(pl.Datetime("us")).dt.replace_time_zone("UTC") for c in ("created", "rotated", "revoked")]
    ).cast(schema.CREDENTIALS).sort("key_id")
