"""Normal customer traffic: sessions in the auth stream and page calls in the gateway stream.

One call makes one (day, customer block): who is active that day, their sessions (token
issuance in auth, after a login for some), and the pages each session calls with its token (gateway). All
columns are drawn with numpy from the (``traffic``, day, block) stream; no loop over rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator import pools
from simulator.config import SimConfig
from simulator.seeding import hash_u64, hash_unit, rng
from simulator.units import DAY_US, SEC
from simulator.world import utc_micros

#: Customer-facing endpoints, their share of page calls and their base response size.
ENDPOINTS = ("/home", "/search", "/product", "/cart", "/checkout", "/my-info", "/address-list", "/address-edit", "/order-history")
ENDPOINT_SHARE = np.array([0.22, 0.20, 0.27, 0.08, 0.04, 0.04, 0.04, 0.01, 0.10])
ENDPOINT_BYTES = np.array([48_000, 22_000, 35_000, 9_000, 12_000, 2_500, 1_200, 1_500, 6_000])
MY_INFO, ADDRESS_LIST, ADDRESS_EDIT, ORDER_HISTORY = 5, 6, 7, 8
SESSIONS_PER_ACTIVE_DAY = 1.8
FOREIGN_CLOUD_SHARE = 0.15  # of sessions from abroad: VPN exits and hosting, not residential
#: Sessions that open with a login: after a logout or a lapsed refresh token. The others' access
#: tokens (an hour's validity) come from the app's refresh token (30 days), with no login row.
LOGIN_SHARE = 0.35
#: Sessions that end with a logout (5 s after their last page).
LOGOUT_SHARE = 0.3


@dataclass(frozen=True)
class CustomerBlock:
    """One block of customers as traffic (and a scenario's ``render``) sees it, one array entry per customer.

    Habits persist across days and come from stable hashes: the client and its user agent, the
    home network, the mobile carrier, the habitual hour. Scenarios that act as customers take
    these from here so that their rows carry what the customer's own rows carry.
    """

    ids: np.ndarray  # customer ids of the block, ascending
    activity: np.ndarray
    ua: np.ndarray  # index into pools.UA_POOL of the customer's client
    home_ip: np.ndarray
    home_asn: np.ndarray
    carrier: np.ndarray  # uniform that picks the mobile carrier's prefix
    signup_day: np.ndarray  # day index of the span (negative: before the span)
    n_addresses: np.ndarray  # entries in the address book
    habit_hour: np.ndarray

    def signed_up(self, day_index: int) -> np.ndarray:
        """Mask of the block's customers who exist on the day."""
        return self.signup_day <= day_index

    def index(self, customer_ids: np.ndarray) -> np.ndarray:
        """Positions of customer ids of this block in the arrays."""
        return np.asarray(customer_ids, dtype=np.int64) - int(self.ids[0])

    def user_agents(self, customer_ids: np.ndarray) -> pl.Series:
        """The user agent of each customer's own client."""
        return pools.UA_POOL.gather(self.ua[self.index(customer_ids)])


def customer_context(cfg: SimConfig, customers: pl.DataFrame, n_addresses: np.ndarray) -> CustomerBlock:
    """Per-customer habits that persist across days (client, home network), from stable hashes."""
    ids = customers["customer_id"].to_numpy()
    ua = pools.user_agent_index(hash_unit(cfg.root, "client", ids), hash_u64(cfg.root, "ua", ids))
    home_ip, home_asn, _ = pools.addresses_in(
        pools.KR_FIXED, hash_unit(cfg.root, "home-isp", ids), hash_unit(cfg.root, "home-host", ids)
    )
    carrier = hash_unit(cfg.root, "carrier", ids)
    signup_day = (customers["signup_date"] - cfg.time.start).dt.total_days().to_numpy()
    # a habitual hour per customer, drawn from the same profile so the aggregate shape holds
    habit_hour = np.searchsorted(np.cumsum(pools.HOURLY_SHARE), hash_unit(cfg.root, "habit-hour", ids), side="right").clip(0, 23)
    return CustomerBlock(
        ids=ids,
        activity=customers["activity"].to_numpy(),
        ua=ua,
        home_ip=home_ip,
        home_asn=home_asn,
        carrier=carrier,
        signup_day=signup_day,
        n_addresses=n_addresses,
        habit_hour=habit_hour,
    )


#: HTTP status of a page call: 98.5% OK, the rest spread over these.
STATUS_OK_SHARE = 0.985
STATUS_OTHER = np.array([304, 404, 429, 500])


def statuses(r: np.random.Generator, n: int) -> np.ndarray:
    """HTTP status codes of ``n`` page calls, as the gateway logs them for customers."""
    return np.where(r.random(n) < STATUS_OK_SHARE, 200, r.choice(STATUS_OTHER, n))


def think_times(r: np.random.Generator, pages: np.ndarray) -> np.ndarray:
    """Microseconds from a session's start to each of its pages (exponential think times, 20 s mean)."""
    gaps = r.exponential(20.0, int(np.sum(pages))) * SEC
    return 1_000_000 + _segment_cumsum(gaps, pages).astype(np.int64)


def response_bytes(r: np.random.Generator, endpoint: np.ndarray, records: np.ndarray) -> np.ndarray:
    """Response size of each page call: the endpoint's base size +-20% and 350 bytes a record."""
    return (ENDPOINT_BYTES[endpoint] * r.uniform(0.8, 1.2, len(endpoint)) + records * 350).astype(np.int32)


def _segment_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each segment of ``counts`` rows."""
    c = np.cumsum(values)
    starts = np.cumsum(counts) - counts
    return c - np.repeat(c[starts] - values[starts], counts)


def session_starts(cfg: SimConfig, ctx: CustomerBlock, cust: np.ndarray, t0: int, r: np.random.Generator) -> np.ndarray:
    """UTC microseconds at which sessions of the customers at block positions ``cust`` start, as
    customers' own sessions do: at the customer's habitual hour (``traffic.habit_share`` of them)
    or at an hour of the day's profile, anywhere in the hour."""
    s = len(cust)
    hour = np.where(r.random(s) < cfg.traffic.habit_share, ctx.habit_hour[cust], r.choice(24, size=s, p=pools.HOURLY_SHARE))
    return t0 + (hour * 3600 + r.integers(0, 3600, s)).clip(5, None) * SEC + r.integers(0, SEC, s)


@dataclass(frozen=True)
class _Sessions:
    """The sessions of one (day, block): who (index into the block), when, from where, with which token and key."""

    cust: np.ndarray
    start: np.ndarray
    ip: np.ndarray
    asn: np.ndarray
    country: np.ndarray
    token: np.ndarray
    key: np.ndarray  # index into key_ids


def normal_day(cfg: SimConfig, day_index: int, block: int, ctx: CustomerBlock, key_ids: list[str]) -> dict[str, pl.DataFrame]:
    """Gateway and auth rows of normal customer traffic for one (day, block), unsorted, without ids.

    Every column is drawn from one random stream, in the order of the steps below.
    """
    r = rng(cfg.root, "traffic", day_index, block)
    day = cfg.time.start + dt.timedelta(days=day_index)
    t0 = utc_micros(day, cfg.time.timezone)
    cust, start = _who_and_when(cfg, ctx, day_index, t0, r)
    ip, asn, country = _networks(cfg, ctx, cust, r)
    s = len(cust)
    token = r.integers(1, np.iinfo(np.int64).max, s, dtype=np.int64)
    key = r.integers(0, len(key_ids), s)
    sessions = _Sessions(cust, start, ip, asn, country, token, key)
    gateway, last = _gateway(cfg, ctx, sessions, t0, r, key_ids)
    return {"gateway": gateway, "auth": _auth(ctx, sessions, last, t0, r, key_ids)}


def _who_and_when(
    cfg: SimConfig, ctx: CustomerBlock, day_index: int, t0: int, r: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The customers active on the day (signed up), their sessions (index into the block, repeated) and each session's start."""
    day = cfg.time.start + dt.timedelta(days=day_index)
    mult = pools.day_multiplier(day) * (cfg.traffic.sale_multiplier if day in cfg.traffic.sale_days else 1.0)
    eligible = ctx.signed_up(day_index)
    want = ctx.activity * mult  # expected active-days; above 1 the customer is active and does more sessions
    active = (r.random(len(ctx.ids)) < np.clip(want, 0, 1)) & eligible
    act = np.flatnonzero(active)
    n_sess = 1 + r.poisson(SESSIONS_PER_ACTIVE_DAY * np.maximum(want[act], 1.0) - 1)
    cust = np.repeat(act, n_sess)  # index into the block
    return cust, session_starts(cfg, ctx, cust, t0, r)


def _networks(
    cfg: SimConfig, ctx: CustomerBlock, cust: np.ndarray, r: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ip, asn, country) of each session: home broadband, mobile carrier (CGNAT address of the day), or abroad."""
    s = len(cust)
    u = r.random(s)
    foreign = u < cfg.traffic.foreign_share
    mobile = ~foreign & (r.random(s) < cfg.traffic.mobile_share)
    ip = ctx.home_ip[cust].copy()
    asn = ctx.home_asn[cust].copy()
    country = np.full(s, cfg.time.home_country, dtype=object)
    m_ip, m_asn, _ = pools.addresses_in(pools.KR_MOBILE, ctx.carrier[cust], r.random(s))
    ip[mobile], asn[mobile] = m_ip[mobile], m_asn[mobile]
    nf = int(foreign.sum())
    if nf:
        cloud = r.random(nf) < FOREIGN_CLOUD_SHARE
        f_ip, f_asn, f_idx = pools.addresses_in(pools.FOREIGN_RESIDENTIAL, r.random(nf), r.random(nf))
        c_ip, c_asn, c_idx = pools.addresses_in(pools.FOREIGN_CLOUD, r.random(nf), r.random(nf))
        ip[foreign] = np.where(cloud, c_ip, f_ip)
        asn[foreign] = np.where(cloud, c_asn, f_asn)
        country[foreign] = np.where(cloud, pools.FOREIGN_CLOUD.country[c_idx], pools.FOREIGN_RESIDENTIAL.country[f_idx])
    return ip, asn, country


def _gateway(
    cfg: SimConfig, ctx: CustomerBlock, ss: _Sessions, t0: int, r: np.random.Generator, key_ids: list[str]
) -> tuple[pl.DataFrame, np.ndarray]:
    """The gateway rows: pages of each session, spaced by exponential think times, cut at the end of the bucket;
    also returns the time of each session's last page."""
    s = len(ss.cust)
    pages = np.minimum(r.geometric(1.0 / cfg.traffic.pages_per_session, s), 60)
    sess = np.repeat(np.arange(s), pages)
    ts = ss.start[sess] + think_times(r, pages)
    ep = r.choice(len(ENDPOINTS), size=len(sess), p=ENDPOINT_SHARE)
    c = ss.cust[sess]
    records = np.zeros(len(sess), dtype=np.int32)
    records[ep == MY_INFO] = 1
    records[ep == ADDRESS_EDIT] = 1
    al = ep == ADDRESS_LIST
    records[al] = ctx.n_addresses[c[al]]
    oh = ep == ORDER_HISTORY
    records[oh] = 1 + r.poisson(4, int(oh.sum()))
    status = statuses(r, len(sess))
    keep = ts < t0 + DAY_US
    gateway = pl.DataFrame(
        {
            "ts": ts[keep],
            "customer_id": ctx.ids[c[keep]],
            "token_id": ss.token[sess[keep]],
            "key_id": pl.Series(key_ids, dtype=pl.String).gather(ss.key[sess[keep]]),
            "endpoint": pl.Series(ENDPOINTS).gather(ep[keep]),
            "ip": ss.ip[sess[keep]],
            "country": ss.country[sess[keep]].tolist(),
            "asn": ss.asn[sess[keep]],
            "user_agent": pools.UA_POOL.gather(ctx.ua[c[keep]]),
            "status": status[keep],
            "bytes": response_bytes(r, ep[keep], records[keep]),
            "records_returned": records[keep],
        }
    )
    return gateway, ts[np.cumsum(pages) - 1]


def _auth(
    ctx: CustomerBlock, ss: _Sessions, last: np.ndarray, t0: int, r: np.random.Generator, key_ids: list[str]
) -> pl.DataFrame:
    """The auth rows: token issuance just before the first page, after a login for a :data:`LOGIN_SHARE` of
    sessions (the others' tokens come from a refresh); a logout after the last page for some."""
    s = len(ss.cust)
    logout = (r.random(s) < LOGOUT_SHARE) & (last + 5 * SEC < t0 + DAY_US)
    login = np.flatnonzero(r.random(s) < LOGIN_SHARE)
    idx = np.concatenate([login, np.arange(s), np.flatnonzero(logout)])
    ev = np.concatenate([np.zeros(len(login), np.int64), np.ones(s, np.int64), np.full(int(logout.sum()), 2)])
    a_ts = np.concatenate([ss.start[login] - 1_500_000, ss.start - 1_000_000, last[logout] + 5 * SEC])
    return pl.DataFrame(
        {
            "ts": a_ts,
            "event": pl.Series(["login", "token_issued", "logout"]).gather(ev),
            "customer_id": ctx.ids[ss.cust[idx]],
            "token_id": pl.Series(ss.token[idx]).scatter(np.flatnonzero(ev == 0), None),
            "key_id": pl.Series(key_ids, dtype=pl.String).gather(ss.key[idx]).scatter(np.flatnonzero(ev != 1), None),
            "ip": ss.ip[idx],
            "country": ss.country[idx].tolist(),
        }
    )
