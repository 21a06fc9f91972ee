"""World tables: customers, address books, orders, employees, credentials.

Each customer block (``world.block_size`` consecutive ids) is generated from its own random
streams, so a block's rows do not depend on which process makes them or on the other blocks.
Employees and credentials are small and made in one piece.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from simulator import layout, schema
from simulator.config import SimConfig
from simulator.errors import SimulationError
from simulator.pools import EMAIL_HOSTS, FAMILY_FIRST, HOURLY_SHARE, LocalePools, locale_pools, phones
from simulator.seeding import rng
from simulator.units import DAY_US, ENGINEERS, ROLES, SEC, Role

TIERS = pl.Series(["basic", "wow"])

#: The teams of each role (keys: :class:`simulator.units.Role` values).
TEAMS: dict[str, tuple[str, ...]] = {
    Role.SUPPORT_AGENT.value: ("cs-seoul", "cs-busan"),
    Role.LOGISTICS.value: ("fc-ops", "last-mile"),
    Role.ANALYST.value: ("bi", "growth"),
    Role.BACKEND_ENGINEER.value: ("identity", "checkout", "catalog"),
    Role.PLATFORM_ENGINEER.value: ("infra", "security-eng"),
    Role.ADMINISTRATOR.value: ("it-ops",),
    Role.OTHER.value: ("finance", "legal", "hr"),
}
OFFICES = ("Seoul", "Busan", "Incheon", "Pangyo")
SHIFTS = ("day", "evening", "night")


def block_count(cfg: SimConfig) -> int:
    """Number of customer blocks."""
    return -(-cfg.world.customers // cfg.world.block_size)


def block_range(cfg: SimConfig, block: int) -> tuple[int, int]:
    """Customer ids ``[lo, hi)`` of a block."""
    lo = block * cfg.world.block_size
    return lo, min(lo + cfg.world.block_size, cfg.world.customers)


def signup_offsets(cfg: SimConfig, ids: np.ndarray) -> np.ndarray:
    """Days from ``world.founded`` to each customer's signup: a non-decreasing function of the id.

    Customer ids follow signup order, as sequential account numbers do. Signups grow over time:
    the density of signup dates is proportional to t**(g-1) from ``founded`` to ``time.end``
    (``world.signup_growth`` = g), so the id at quantile q signs up at ``span * q**(1/g)``.
    """
    span = (cfg.time.end - cfg.world.founded).days
    q = (np.asarray(ids, dtype=np.float64) + 0.5) / cfg.world.customers
    return (span * q ** (1.0 / cfg.world.signup_growth)).astype(np.int64).clip(0, span - 1)


def signed_up(cfg: SimConfig, day_index: int) -> int:
    """How many customers have signed up by the end of day ``day_index`` of the span: ids ``[0, n)``.

    Ids follow signup order, so the customers who exist on a day are a prefix of the ids.
    """
    limit = (cfg.time.start - cfg.world.founded).days + day_index
    lo, hi = 0, cfg.world.customers  # first id whose signup is after the day lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if signup_offsets(cfg, np.array([mid]))[0] <= limit:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class CustomerWorld:
    """Read-only access to a generated world's customer tables, for a scenario's ``plan``.

    ``plan(cfg, staff, incident_id, knobs)`` finds it as ``staff["customers"]``: a scenario that
    targets people (the neighbours of one building, the residents of one district) picks them
    here, among customers who exist when it acts.
    """

    cfg: SimConfig
    root: Path

    def signed_up(self, day_index: int) -> int:
        """Customers who exist by the end of day ``day_index``: ids ``[0, n)``."""
        return signed_up(self.cfg, day_index)

    def table(self, name: str) -> pl.LazyFrame:
        """``customers``, ``addresses`` or ``orders`` of every block, lazily."""
        if name not in ("customers", "addresses", "orders"):
            raise SimulationError(f"CustomerWorld.table: unknown table {name!r}; accepted: customers, addresses, orders")
        files = layout.world_glob(self.root, name)
        return pl.scan_parquet(files) if files else pl.LazyFrame(schema=schema.WORLD_TABLES[name])

    def residents(self, address: str, day_index: int) -> np.ndarray:
        """Ids of the customers (existing on the day) whose address book has an entry at ``address``."""
        ids = self.table("addresses").filter(pl.col("address") == address).select("customer_id").unique().collect()["customer_id"]
        return np.sort(ids.filter(ids < self.signed_up(day_index)).to_numpy())


def utc_micros(day: dt.date, tz: str) -> int:
    """UTC microseconds of local midnight starting ``day`` in ``tz``."""
    local = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * SEC


def _nulls(n: int, name: str = "") -> pl.Series:
    """A string column of ``n`` nulls, to scatter per-locale values into (no Python list of n items)."""
    return pl.repeat(None, n, dtype=pl.String, eager=True).alias(name)


def _locale_of(cfg: SimConfig, r: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    names = sorted(cfg.world.locales)
    w = np.array([cfg.world.locales[k] for k in names], dtype=np.float64)
    return names, r.choice(len(names), size=n, p=w / w.sum())


def _per_locale(
    locales: list[str], loc: np.ndarray, value: Callable[[LocalePools, str, np.ndarray], pl.Series], name: str = ""
) -> pl.Series:
    """A string column made locale by locale: ``value(pools, locale, mask)`` gives the rows of ``mask``
    (the rows whose ``loc`` is that locale's index), for each locale present, in the order of ``locales``."""
    out = _nulls(len(loc), name)
    for k, locale in enumerate(locales):
        mask = loc == k
        if mask.any():
            out = out.scatter(np.flatnonzero(mask), value(locale_pools(locale), locale, mask))
    return out


def _names(
    locales: list[str], loc: np.ndarray, r: np.random.Generator, last_idx: np.ndarray | None = None
) -> tuple[pl.Series, np.ndarray]:
    """Full names by locale; returns the names and the surname indices (for family members)."""
    n = len(loc)
    first_idx = r.integers(0, 1 << 30, n)
    if last_idx is None:
        last_idx = r.integers(0, 1 << 30, n)
    surnames = last_idx

    def full(p: LocalePools, locale: str, mask: np.ndarray) -> pl.Series:
        last = p.last.gather(surnames[mask] % len(p.last))
        first = p.first.gather(first_idx[mask] % len(p.first))
        sep = "" if locale in FAMILY_FIRST else " "
        return (last + sep + first) if locale in FAMILY_FIRST else (first + sep + last)

    return _per_locale(locales, loc, full, "name"), last_idx


def _addresses_text(locales: list[str], loc: np.ndarray, r: np.random.Generator) -> pl.Series:
    n = len(loc)
    city_idx, street_idx = r.integers(0, 1 << 30, n), r.integers(0, 1 << 30, n)
    number = pl.Series(r.integers(1, 999, n)).cast(pl.String)

    def text(p: LocalePools, locale: str, mask: np.ndarray) -> pl.Series:
        city = p.city.gather(city_idx[mask] % len(p.city))
        street = p.street.gather(street_idx[mask] % len(p.street))
        num = number.filter(pl.Series(mask))
        return (city + " " + street + " " + num) if locale in FAMILY_FIRST else (num + " " + street + ", " + city)

    return _per_locale(locales, loc, text, "address")


@dataclass(frozen=True)
class _Block:
    """A block's customers as the address books and orders drawn after them read them."""

    ids: np.ndarray
    locales: list[str]
    loc: np.ndarray  # index into locales, per customer
    names: pl.Series
    last_idx: np.ndarray  # surname draws (family members share them)
    phone: pl.Series
    activity: np.ndarray


def customers_block(
    cfg: SimConfig, block: int, tables: tuple[str, ...] = ("customers", "addresses", "orders")
) -> dict[str, pl.DataFrame]:
    """Customers, their address books and their orders for one block.

    ``tables`` may leave out the address books and orders (they are drawn after the
    customers, so the customers' rows are the same either way). All three draw from one random
    stream, in this order.
    """
    r = rng(cfg.root, "customers", block)
    customers, drawn = _customers(cfg, block, r)
    if tables == ("customers",):
        return {"customers": customers}
    addresses = _address_books(cfg, drawn, r)
    return {"customers": customers, "addresses": addresses, "orders": _order_history(cfg, drawn, r)}


def _customers(cfg: SimConfig, block: int, r: np.random.Generator) -> tuple[pl.DataFrame, _Block]:
    """The customer table of a block, and what the later draws of the block read from it."""
    lo, hi = block_range(cfg, block)
    n = hi - lo
    ids = np.arange(lo, hi, dtype=np.int64)
    locales, loc = _locale_of(cfg, r, n)
    names, last_idx = _names(locales, loc, r)
    users_idx = r.integers(0, 1 << 30, n)
    region_idx = r.integers(0, 1 << 30, n)
    user = _per_locale(locales, loc, lambda p, _, mask: p.user.gather(users_idx[mask] % len(p.user)))
    phone = _per_locale(locales, loc, lambda _, locale, mask: phones(locale, r, int(mask.sum())))
    region = _per_locale(locales, loc, lambda p, _, mask: p.city.gather(region_idx[mask] % len(p.city)))
    domain = pl.Series(list(EMAIL_HOSTS)).gather(r.integers(0, len(EMAIL_HOSTS), n))
    # ids follow signup order; signups grow over time (see signup_offsets)
    r.random(n)  # the draw that once placed signups at random, kept so that later columns stay the same
    signup_off = signup_offsets(cfg, ids)
    mean = cfg.traffic.daily_active_fraction
    activity = r.beta(0.8, 0.8 * (1 - mean) / mean, n).astype(np.float32) if mean < 1 else np.ones(n, np.float32)
    customers = (
        pl.DataFrame(
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
        )
        .with_columns(
            email=pl.concat_str(
                [pl.col("user"), pl.lit("."), pl.col("customer_id").cast(pl.String), pl.lit("@"), pl.col("domain")]
            ),
            signup_date=pl.lit(cfg.world.founded) + pl.duration(days=pl.col("signup_date")),
        )
        .select(schema.CUSTOMERS.names())
        .cast(schema.CUSTOMERS)
    )
    return customers, _Block(ids, locales, loc, names, last_idx, phone, activity)


def _address_books(cfg: SimConfig, c: _Block, r: np.random.Generator) -> pl.DataFrame:
    """Address books: entry 0 is the customer; others are family (same surname) or friends."""
    locales, loc, n = c.locales, c.loc, len(c.ids)
    pmf = np.asarray(cfg.world.address_book_pmf, dtype=np.float64)
    sizes = 1 + r.choice(len(pmf), size=n, p=pmf / pmf.sum())
    owner = np.repeat(np.arange(n), sizes)
    m = len(owner)
    starts = np.cumsum(sizes) - sizes
    is_self = np.zeros(m, dtype=bool)
    is_self[starts] = True
    fam_names, _ = _names(
        locales, loc[owner], r, last_idx=np.where(r.random(m) < 0.7, c.last_idx[owner], r.integers(0, 1 << 30, m))
    )
    fam_phone = _per_locale(locales, loc[owner], lambda _, locale, mask: phones(locale, r, int(mask.sum())))
    code = pl.Series(r.integers(0, 10000, m)).cast(pl.String).str.zfill(4)
    has_code = pl.Series(r.random(m) < 0.6)
    return pl.DataFrame(
        {
            "address_id": c.ids[owner] * 16 + (np.arange(m) - starts[owner]),
            "customer_id": c.ids[owner],
            "recipient_name": pl.select(pl.when(pl.Series(is_self)).then(c.names.gather(owner)).otherwise(fam_names)).to_series(),
            "recipient_phone": pl.select(
                pl.when(pl.Series(is_self)).then(c.phone.gather(owner)).otherwise(fam_phone)
            ).to_series(),
            "is_self": is_self,
            "address": _addresses_text(locales, loc[owner], r),
            "entrance_code": pl.select(pl.when(has_code).then(pl.lit("#") + code)).to_series(),
        }
    ).cast(schema.ADDRESSES)


def _order_history(cfg: SimConfig, c: _Block, r: np.random.Generator) -> pl.DataFrame:
    """Order history before the span: orderers place ~orders_per_month, scaled by their activity."""
    n, mean = len(c.ids), cfg.traffic.daily_active_fraction
    days = cfg.world.order_history_days
    orders_rate = cfg.world.orders_per_month / 30.0 * days * c.activity / max(mean, 1e-9)
    orderer = r.random(n) < cfg.world.ordering_share
    counts = np.minimum(np.where(orderer, r.poisson(orders_rate), 0), 4095)
    o_owner = np.repeat(np.arange(n), counts)
    k = len(o_owner)
    first_day = utc_micros(cfg.time.start - dt.timedelta(days=days), cfg.time.timezone)
    ts = (
        first_day
        + r.integers(0, max(days, 1), k) * DAY_US
        + (r.choice(24, size=k, p=HOURLY_SHARE) * 3600 + r.integers(0, 3600, k)) * SEC
    )
    order = np.lexsort((ts, o_owner))  # by customer, then time
    o_owner, ts = o_owner[order], ts[order]
    o_starts = np.cumsum(counts) - counts
    return (
        pl.DataFrame(
            {
                "order_id": c.ids[o_owner] * 4096 + (np.arange(k) - o_starts[o_owner]),
                "customer_id": c.ids[o_owner],
                "ts": ts,
                "amount": np.round(r.lognormal(np.log(30_000), 0.7, k), -1).astype(np.int64),
                "items": 1 + r.poisson(1.5, k),
            }
        )
        .with_columns(pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
        .cast(schema.ORDERS)
    )


def _days(d: dt.date) -> np.int64:
    return np.int64((d - EPOCH).days)


EPOCH = dt.date(1970, 1, 1)
#: Offboarding lag between an owner's departure and the revocation of their keys
#: (docs/calibration.md §6, OneLogin 2017: 50% same day, 25% within a week, 5% within a month, 20% never).
OFFBOARD_LAG = ((0, 0, 0.50), (1, 7, 0.25), (8, 30, 0.05))
OFFBOARD_NEVER = 0.20


@dataclass
class _Hires:
    """The staff's first draws, which the role segments are cut from. Mutable: forcing engineers out before the
    span (for the orphaned keys) rewrites ``hire``, ``term`` and ``forced`` in place."""

    ids: np.ndarray
    role0: np.ndarray  # index into the roles drawn, at hire
    contractor: np.ndarray
    hire: np.ndarray  # days since the epoch
    term: np.ndarray  # >= the end of the span: still employed then
    owner: np.ndarray  # whose role change each change event is
    u_at: np.ndarray  # where in the employment each change falls (0..1)
    new_role: np.ndarray
    team_pick: np.ndarray  # one per person, then one per change
    forced: np.ndarray  # forced leavers keep their engineering role
    start: np.int64
    end: np.int64


def staff(cfg: SimConfig) -> dict[str, pl.DataFrame]:
    """Employees, their role history and credentials (one piece: thousands of rows at most).

    Every table is drawn from one random stream, in the order of the steps below.
    """
    w = cfg.world
    r = rng(cfg.root, "employees", 0)
    roles = [x for x in ROLES if w.roles.get(x, 0) > 0]
    role_names = np.asarray(roles, dtype=object)
    h = _hires(cfg, roles, r)
    segs = _segments(h)
    seg_role, cur = segs[2], segs[6]
    # the orphaned keys need owners: engineers (by their last role) who left before the span
    departed_eng = np.flatnonzero(np.isin(role_names[seg_role[cur]], ENGINEERS) & (h.term < h.start))
    need = w.orphaned_keys - len(departed_eng)
    if need > 0:
        _force_leavers(cfg, h, role_names, need, r)
        segs = _segments(h)
    employees, role_history = _staff_tables(cfg, h, segs, role_names, r)
    creds = _credentials(cfg, r, role_names[segs[2][segs[6]]], h.hire, h.term, h.forced)
    return {"employees": employees, "employee_roles": role_history, "credentials": creds}


def steady_roles(employees: pl.DataFrame, roles: pl.DataFrame, cfg: SimConfig) -> pl.DataFrame:
    """The ``employees`` whose role holds through the whole span (``roles``: the ``employee_roles`` table).

    At most one of their role periods overlaps the span, so ``employees.role`` (the role at its
    start, or the first one for people hired later) is their role on every day of it. Scenarios
    and hard negatives pick their people among these: an actor picked by ``employees.role`` who
    moved to another role during the span (a clerk gone to the legal team) went on reading records
    in a role whose people never do, a difference no scenario declares. About one employee in two
    hundred changes role in a three-week span.
    """
    start, end = cfg.time.start, cfg.time.end
    overlap = roles.filter((pl.col("start_date") < end) & (pl.col("end_date").is_null() | (pl.col("end_date") > start)))
    moved = overlap.group_by("employee_id").len().filter(pl.col("len") > 1)["employee_id"]
    return employees.filter(~pl.col("employee_id").is_in(moved.implode()))


def _hires(cfg: SimConfig, roles: list[str], r: np.random.Generator) -> _Hires:
    """Each person's first role, contract, hire and termination days, and their role changes."""
    w = cfg.world
    n = w.employees
    ids = np.arange(n, dtype=np.int64)
    p_roles = np.array([w.roles[x] for x in roles], dtype=np.float64)
    p_roles /= p_roles.sum()
    role0 = r.choice(len(roles), size=n, p=p_roles)
    contractor = r.random(n) < w.contractor_share
    start, end = _days(cfg.time.start), _days(cfg.time.end)
    founded = _days(w.founded)
    hire = founded + ((end - founded) * r.random(n) ** (1 / 1.5)).astype(np.int64)  # headcount grows
    rate = np.array([w.attrition.get(x, w.attrition.get("default", 0.12)) for x in roles])[role0] * np.where(contractor, 1.5, 1.0)
    tenure = 30 + r.exponential(365.0 / rate).astype(np.int64)
    term = hire + tenure  # >= end means still employed at the end of the span
    # role changes: Poisson in person-years, at uniform days of the employment
    stop = np.minimum(term, end)
    changes = r.poisson(w.role_change_rate * np.maximum(stop - hire, 0) / 365.25)
    owner = np.repeat(ids, changes)
    u_at = r.random(len(owner))
    new_role = r.choice(len(roles), size=len(owner), p=p_roles)
    team_pick = r.integers(0, 6, n + len(owner))
    forced = np.zeros(n, dtype=bool)
    return _Hires(ids, role0, contractor, hire, term, owner, u_at, new_role, team_pick, forced, start, end)


def _segments(h: _Hires) -> tuple[np.ndarray, ...]:
    """Role segments (owner, start, role, team pick, end, last?) and each person's segment of record."""
    ids, hire, term, end, n = h.ids, h.hire, h.term, h.end, len(h.ids)
    keep_ev = ~h.forced[h.owner]  # forced leavers keep their engineering role
    o = h.owner[keep_ev]
    at = hire[o] + 1 + (h.u_at[keep_ev] * np.maximum(np.minimum(term, end)[o] - hire[o] - 1, 1)).astype(np.int64)
    s_owner = np.concatenate([ids, o])
    s_start = np.concatenate([hire, at])
    s_role = np.concatenate([h.role0, h.new_role[keep_ev]])
    s_team = np.concatenate([h.team_pick[:n], h.team_pick[n:][keep_ev]])
    order = np.lexsort((s_start, s_owner))
    s_owner, s_start, s_role, s_team = s_owner[order], s_start[order], s_role[order], s_team[order]
    keep = np.r_[(s_owner[1:] != s_owner[:-1]) | (s_start[1:] != s_start[:-1]), True]  # same-day changes: last wins
    s_owner, s_start, s_role, s_team = s_owner[keep], s_start[keep], s_role[keep], s_team[keep]
    last = np.r_[s_owner[1:] != s_owner[:-1], True]
    s_end = np.where(last, term[s_owner], np.r_[s_start[1:], 0])
    # the role of record: at the start of the span, or the last one for those who left before
    snap = np.minimum(h.start, term - 1)
    in_seg = (s_start <= snap[s_owner]) & (snap[s_owner] < np.where(last, np.iinfo(np.int64).max, s_end))
    cur = np.full(n, -1)
    cur[s_owner[in_seg]] = np.flatnonzero(in_seg)
    first = np.flatnonzero(np.r_[True, s_owner[1:] != s_owner[:-1]])
    cur[cur < 0] = first[np.flatnonzero(cur < 0)]  # hired after the snapshot day: first role
    return s_owner, s_start, s_role, s_team, s_end, last, cur


def _force_leavers(cfg: SimConfig, h: _Hires, role_names: np.ndarray, need: int, r: np.random.Generator) -> None:
    """Make ``need`` current engineers leave 1-8 months before the span, to own orphaned keys (rewrites ``h``)."""
    w = cfg.world
    start, founded = h.start, _days(w.founded)
    pool = np.flatnonzero(np.isin(role_names[h.role0], ENGINEERS) & (h.term >= start))
    if len(pool) < need:
        raise SimulationError(
            f"world.employees={len(h.ids)} gives too few engineers for world.orphaned_keys={w.orphaned_keys}; "
            "raise world.employees or lower world.orphaned_keys"
        )
    pick = r.choice(pool, size=need, replace=False)
    if start - founded <= 61:
        raise SimulationError(
            f"world.founded={w.founded} is too close to time.start={cfg.time.start} for engineers to have left "
            f"and kept world.orphaned_keys={w.orphaned_keys} keys; move founded earlier or set orphaned_keys=0"
        )
    h.term[pick] = start - r.integers(30, min(240, int(start - founded) - 30), need)  # left 1-8 months before
    h.hire[pick] = np.maximum(founded, np.minimum(h.hire[pick], h.term[pick] - r.integers(400, 900, need)))
    h.forced[pick] = True


def _staff_tables(
    cfg: SimConfig, h: _Hires, segs: tuple[np.ndarray, ...], role_names: np.ndarray, r: np.random.Generator
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The employees (names, offices and shifts drawn here) and their role history, from the role segments."""
    seg_owner, seg_start, seg_role, seg_team_pick, seg_end, last, cur = segs
    n, term, end = len(h.ids), h.term, h.end
    seg_end_known = np.where(last & (term[seg_owner] >= end), -1, seg_end)  # -1: still in that role
    seg_team = np.array(
        [TEAMS[role_names[x]][j % len(TEAMS[role_names[x]])] for x, j in zip(seg_role, seg_team_pick, strict=True)], dtype=object
    )
    role_now = seg_role[cur]
    names, _ = _names(["ko_KR"], np.zeros(n, dtype=np.int64), r)
    shift = np.where(
        role_names[role_now] == Role.SUPPORT_AGENT.value,
        np.asarray(SHIFTS, dtype=object)[r.choice(3, n, p=[0.55, 0.3, 0.15])],
        np.where(
            role_names[role_now] == Role.LOGISTICS.value,
            np.asarray(SHIFTS, dtype=object)[r.choice(3, n, p=[0.5, 0.3, 0.2])],
            "day",
        ),
    )
    to_date = lambda a: pl.Series(a.astype("datetime64[D]"))  # noqa: E731
    employees = pl.DataFrame(
        {
            "employee_id": h.ids,
            "name": names,
            "kind": np.where(h.contractor, "contractor", "employee").tolist(),
            "role": role_names[role_now].tolist(),
            "team": seg_team[cur].tolist(),
            "hire_date": to_date(h.hire),
            "termination_date": to_date(term).set(pl.Series(term >= end), None),
            "home_office": np.asarray(OFFICES, dtype=object)[r.integers(0, len(OFFICES), n)].tolist(),
            "shift": shift.tolist(),
        }
    ).cast(schema.EMPLOYEES)
    role_history = pl.DataFrame(
        {
            "employee_id": seg_owner,
            "role": role_names[seg_role].tolist(),
            "team": seg_team.tolist(),
            "start_date": to_date(seg_start),
            "end_date": to_date(seg_end_known).set(pl.Series(seg_end_known < 0), None),
        }
    ).cast(schema.ROLE_HISTORY)
    return employees, role_history


def _offboard_lag(r: np.random.Generator, n: int) -> np.ndarray:
    """Days from departure to revocation; -1 for never."""
    u = r.random(n)
    lag = np.full(n, -1, dtype=np.int64)
    edge = 0.0
    for lo, hi, p in OFFBOARD_LAG:
        sel = (u >= edge) & (u < edge + p)
        lag[sel] = r.integers(lo, hi + 1, int(sel.sum()))
        edge += p
    return lag


@dataclass(frozen=True)
class _Keys:
    """One kind of credential: owners (-1: none) and lifecycle days (-1: never)."""

    owner: np.ndarray
    created: np.ndarray
    rotated: np.ndarray
    revoked: np.ndarray


def _credentials(
    cfg: SimConfig, r: np.random.Generator, role: np.ndarray, hire: np.ndarray, term: np.ndarray, forced: np.ndarray
) -> pl.DataFrame:
    """Signing keys, personal API keys and team service accounts with their lifecycle.

    Signing keys are long-lived (the case: 5-10 years); ``world.orphaned_keys`` of them belong
    to engineers who left before the span and were never rotated or revoked. Personal API keys
    follow a 90-day rotation policy kept with a lag (some never rotated) and are revoked after
    the owner leaves with the calibrated offboarding lag (20% never). All drawn from ``r``, in that order.
    """
    sk = _signing_keys(cfg, r, role, hire, term, forced)
    ak = _api_keys(cfg, r, role, hire, term)
    teams = sorted({t for ts in TEAMS.values() for t in ts})
    sa = _service_accounts(cfg, r, len(teams))
    n_sk, m, n_sa = len(sk.owner), len(ak.owner), len(sa.owner)
    hexes = r.choice(1 << 32, size=n_sk + m + n_sa, replace=False)
    prefix = np.array(["sk"] * n_sk + ["ak"] * m + ["sa"] * n_sa, dtype=object)
    key_id = [f"{p}-{h:08x}" for p, h in zip(prefix, hexes, strict=True)]

    def ts(days: np.ndarray) -> pl.Series:
        """Local midnight of each day (company time zone) as UTC; -1 becomes null."""
        local = pl.Series(np.maximum(days, 0).astype("datetime64[D]")).cast(pl.Datetime("us"))
        utc = local.dt.replace_time_zone(cfg.time.timezone).dt.convert_time_zone("UTC")
        return utc.set(pl.Series(days < 0), None)

    df = pl.DataFrame(
        {
            "key_id": key_id,
            "kind": ["token-signing"] * n_sk + ["api-key"] * m + ["service-account"] * n_sa,
            "owner_employee_id": pl.Series(np.concatenate([sk.owner, ak.owner, sa.owner])).set(
                pl.Series(np.concatenate([sk.owner < 0, np.zeros(m, bool), np.ones(n_sa, bool)])), None
            ),
            "owner_team": ["identity"] * n_sk + [None] * m + [teams[j % len(teams)] for j in range(n_sa)],
            "created": ts(np.concatenate([sk.created, ak.created, sa.created])),
            "rotated": ts(np.concatenate([sk.rotated, ak.rotated, sa.rotated])),
            "revoked": ts(np.concatenate([sk.revoked, ak.revoked, sa.revoked])),
        }
    )
    return df.cast(schema.CREDENTIALS).sort("key_id")


def _signing_keys(
    cfg: SimConfig, r: np.random.Generator, role: np.ndarray, hire: np.ndarray, term: np.ndarray, forced: np.ndarray
) -> _Keys:
    """Signing keys: the orphaned ones first (departed engineers', never rotated or revoked), the live ones, then
    up to two revoked keys of other departed engineers."""
    w = cfg.world
    start, end = _days(cfg.time.start), _days(cfg.time.end)
    is_eng = np.isin(role, ENGINEERS)
    departed = np.flatnonzero(is_eng & (term < start))
    current = np.flatnonzero(is_eng & (term >= end) & (hire < start))
    n_orph = w.orphaned_keys
    forced_ids = np.flatnonzero(forced)
    rest = np.setdiff1d(departed, forced_ids)
    orph = np.concatenate([forced_ids, r.choice(rest, size=max(0, n_orph - len(forced_ids)), replace=False)])[:n_orph]
    live = r.choice(current, size=w.signing_keys - n_orph, replace=True) if len(current) else np.full(w.signing_keys - n_orph, -1)
    revoked_old = r.choice(np.setdiff1d(departed, orph), size=min(2, len(np.setdiff1d(departed, orph))), replace=False)
    n_sk = w.signing_keys + len(revoked_old)
    sk_owner = np.concatenate([orph, live, revoked_old]).astype(np.int64)
    sk_created = start - r.integers(200, 2200, n_sk)
    owner_hire = np.where(sk_owner >= 0, hire[np.maximum(sk_owner, 0)], sk_created)
    owner_left = np.where(sk_owner >= 0, term[np.maximum(sk_owner, 0)], end)
    sk_created = np.clip(sk_created, owner_hire, np.maximum(owner_hire, np.minimum(owner_left, start) - 1))
    sk_rot = np.where((np.arange(n_sk) >= n_orph) & (r.random(n_sk) < 0.5), sk_created + r.integers(300, 500, n_sk), -1)
    sk_rot = np.where(sk_rot >= start, -1, sk_rot)
    sk_rev = np.full(n_sk, -1)
    k = len(revoked_old)
    if k:
        sk_rev[-k:] = term[revoked_old] + r.integers(0, 30, k)
    return _Keys(sk_owner, sk_created, sk_rot, sk_rev)


def _api_keys(cfg: SimConfig, r: np.random.Generator, role: np.ndarray, hire: np.ndarray, term: np.ndarray) -> _Keys:
    """Personal API keys of engineers, analysts and administrators."""
    start, end = _days(cfg.time.start), _days(cfg.time.end)
    holders = np.arange(len(role))[
        np.isin(role, (*ENGINEERS, Role.ANALYST.value, Role.ADMINISTRATOR.value)) & (r.random(len(role)) < 0.8)
    ]
    m = len(holders)
    ak_created = np.maximum(hire[holders], start - 1500) + r.integers(0, 200, m)
    ak_created = np.maximum(
        np.minimum(ak_created, np.minimum(term[holders], end) - 1), hire[holders]
    )  # while employed, before the end
    alive_to = np.minimum(term[holders], end)
    policy = r.random(m) < 0.7  # the rest never rotate
    periods = np.maximum(alive_to - ak_created, 0) // (90 + r.integers(0, 60, m))  # rotation kept with a lag
    ak_rot = np.where(policy & (periods > 0), ak_created + periods * 90 + r.integers(0, 30, m), -1)
    ak_rot = np.where(ak_rot >= np.minimum(alive_to, end), -1, ak_rot)
    lag = _offboard_lag(r, m)
    ak_rev = np.where((term[holders] < end) & (lag >= 0), term[holders] + lag, -1)
    ak_rev = np.where(ak_rev >= end, -1, ak_rev)
    return _Keys(holders, ak_created, ak_rot, ak_rev)


def _service_accounts(cfg: SimConfig, r: np.random.Generator, teams: int) -> _Keys:
    """Service accounts of teams: machine keys, never revoked (no owner)."""
    start = _days(cfg.time.start)
    n_sa = max(teams, cfg.world.employees // 40)
    sa_created = start - r.integers(10, 1500, n_sa)
    sa_rot = np.where(r.random(n_sa) < 0.4, sa_created + r.integers(30, 365, n_sa), -1)
    sa_rot = np.where(sa_rot >= start, -1, sa_rot)
    return _Keys(np.full(n_sa, -1), sa_created, sa_rot, np.full(n_sa, -1))
