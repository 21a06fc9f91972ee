"""Staff behaviour: the admin stream, employees' auth events and the hr / key-event stream.

One call makes one day for the whole staff (employees are thousands, not millions). Who works
that day follows role, shift, weekday and holidays; what each person does follows their role:
support agents open customer records tied to tickets, logistics staff look up addresses,
analysts run batch queries and the odd export, engineers read a few records for bugs and one
on-call engineer a night reads records for incidents, administrators act on records. The
planned benign anomalies (hard negatives, :mod:`simulator.benign`) are rendered here too and
carry a ``_benign`` tag that the engine turns into truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator import pools
from simulator.config import SimConfig
from simulator.seeding import hash_unit, rng
from simulator.world import EPOCH, utc_micros

SEC = 1_000_000
HOUR = 3600 * SEC
DAY_US = 86_400 * SEC

#: Corporate egress (office) and VPN concentrators: documentation ranges, unmistakably synthetic.
OFFICE_NET = (0xCB007100, 256, 64500)  # 203.0.113.0/24, private ASN 64500
VPN_NET = (0xC6336400, 256, 64500)  # 198.51.100.0/24
#: Local hour each shift starts.
SHIFT_START = {"day": 9, "evening": 15, "night": 23}
#: Mean admin reads per working day by role (support: ~55 contacts a day, a call-centre benchmark, x 1.8 views: an estimate).
READS_PER_DAY = {"support_agent": 100.0, "logistics": 30.0, "administrator": 3.0, "backend_engineer": 0.3, "platform_engineer": 0.3}
TICKET_SHARE = {"support_agent": 0.97, "logistics": 0.9, "administrator": 0.8, "backend_engineer": 0.95, "platform_engineer": 0.95}
ANALYST_QUERIES = 6.0
#: World size at which the row counts of analysts' queries and exports are given; a query
#: selects a share of the customer base ("customers who signed up in March"), so row counts
#: scale with the world.
ROWS_AT = 1_000_000


def row_scale(cfg: SimConfig) -> float:
    """Factor from row counts at a 1M-customer world to this world's."""
    return cfg.world.customers / ROWS_AT


def scaled_rows(cfg: SimConfig, rows: np.ndarray) -> np.ndarray:
    """Row counts given at 1M customers, in this world (at least 1, at most every customer)."""
    return np.clip(np.round(np.asarray(rows, dtype=np.float64) * row_scale(cfg)), 1, cfg.world.customers).astype(np.int64)


@dataclass(frozen=True)
class StaffContext:
    """Employees, their role history and credentials as arrays, read once per process."""

    ids: np.ndarray
    hire: np.ndarray  # days since epoch
    term: np.ndarray  # days since epoch; large when still employed
    shift: np.ndarray
    office: np.ndarray
    seg_owner: np.ndarray
    seg_start: np.ndarray
    seg_end: np.ndarray
    seg_role: np.ndarray
    api_key_owner: np.ndarray
    api_key_id: np.ndarray
    service_keys: np.ndarray
    key_events: pl.DataFrame  # ts, subject_id, event (created/rotated/revoked) of credentials
    customers: int


def staff_context(cfg: SimConfig, employees: pl.DataFrame, roles: pl.DataFrame, credentials: pl.DataFrame) -> StaffContext:
    """Arrays for :func:`staff_day` from the world tables."""
    far = np.iinfo(np.int32).max

    def days(col: pl.Series) -> np.ndarray:
        return (col.cast(pl.Int32).fill_null(far)).to_numpy().astype(np.int64)

    roles = roles.sort("employee_id", "start_date")
    api = credentials.filter(pl.col("kind") == "api-key").sort("key_id")
    events = pl.concat(
        [
            credentials.select(pl.col(c).alias("ts"), pl.col("key_id").alias("subject_id"), pl.lit(f"key_{name}").alias("event"))
            .drop_nulls("ts")
            for c, name in (("created", "created"), ("rotated", "rotated"), ("revoked", "revoked"))
        ]
    ).sort("ts", "subject_id", "event")
    return StaffContext(
        ids=employees["employee_id"].to_numpy(),
        hire=days(employees["hire_date"]),
        term=days(employees["termination_date"]),
        shift=employees["shift"].to_numpy().astype(object),
        office=employees["home_office"].to_numpy().astype(object),
        seg_owner=roles["employee_id"].to_numpy(),
        seg_start=days(roles["start_date"]),
        seg_end=days(roles["end_date"]),
        seg_role=roles["role"].to_numpy().astype(object),
        api_key_owner=api["owner_employee_id"].to_numpy(),
        api_key_id=api["key_id"].to_numpy().astype(object),
        service_keys=credentials.filter(pl.col("kind") == "service-account")["key_id"].sort().to_numpy().astype(object),
        key_events=events,
        customers=cfg.world.customers,
    )


def roles_on(ctx: StaffContext, day: int) -> np.ndarray:
    """Each employee's role on a day (None when not employed)."""
    out = np.full(len(ctx.ids), None, dtype=object)
    sel = (ctx.seg_start <= day) & (day < ctx.seg_end)
    out[ctx.seg_owner[sel]] = ctx.seg_role[sel]
    out[(ctx.hire > day) | (ctx.term <= day)] = None
    return out


def _api_key_index(ctx: StaffContext, employees: np.ndarray) -> np.ndarray:
    """Index into ``ctx.api_key_id`` of each employee's API key (the last one listed), -1 for none."""
    if len(ctx.api_key_owner) == 0:
        return np.full(len(employees), -1)
    order = np.argsort(ctx.api_key_owner, kind="stable")
    owners = ctx.api_key_owner[order]
    pos = np.clip(np.searchsorted(owners, employees, side="right") - 1, 0, None)
    return np.where(owners[pos] == employees, order[pos], -1)


def _in_day(ts: np.ndarray, t0: int) -> np.ndarray:
    """Fold times past midnight back into the day: a night shift's small hours are this day's.

    The person on the night rota of a day works its first hours and its last ones, so every
    row stays in its bucket's partition.
    """
    return t0 + (ts - t0) % DAY_US


def _ips(net: tuple[int, int, int], u: np.ndarray) -> np.ndarray:
    base, size, _ = net
    return base + (u * size).astype(np.int64)


def staff_day(cfg: SimConfig, day_index: int, ctx: StaffContext, benign: list) -> dict[str, pl.DataFrame]:  # noqa: PLR0915
    """Admin, employee auth and hr rows of one day (unsorted, without ids)."""
    r = rng(cfg.seed, "staff", day_index)
    day = cfg.time.start + dt.timedelta(days=day_index)
    dnum = (day - EPOCH).days
    t0 = utc_micros(day, cfg.time.timezone)
    holiday = pools.is_holiday(day)
    weekend = day.weekday() >= 5
    role = roles_on(ctx, dnum)
    employed = role != None  # noqa: E711 - object array
    n = len(ctx.ids)
    # who works today: support and logistics rota 5 of 7 days (a stable per-person pattern),
    # office roles work weekdays that are not holidays
    rota = hash_unit(cfg.seed, "rota", ctx.ids * 7 + day.weekday()) < 5 / 7
    office_day = not weekend and not holiday
    shift_role = np.isin(role, ["support_agent", "logistics"])
    works = employed & np.where(shift_role, rota & (r.random(n) < (0.8 if holiday else 1.0)), office_day)
    who = np.flatnonzero(works)
    # start of work: the shift's hour plus a personal habit (stable offset) and daily jitter
    habit = (hash_unit(cfg.seed, "habit", ctx.ids) - 0.5) * 2 * HOUR
    shift_h = np.array([SHIFT_START.get(s, 9) if sr else 9 for s, sr in zip(ctx.shift[who], shift_role[who], strict=True)], dtype=np.int64)
    start = t0 + shift_h * HOUR + habit[who].astype(np.int64) + r.integers(0, 20 * 60 * SEC, len(who))
    remote = hash_unit(cfg.seed, "remote", ctx.ids[who] * 1000 + day_index) < 0.2
    ip = np.where(remote, _ips(VPN_NET, r.random(len(who))), _ips(OFFICE_NET, r.random(len(who))))
    country = np.full(len(who), "KR", dtype=object)
    # travel (benign): logins from abroad for the traveller's days
    tags = np.full(len(who), None, dtype=object)
    for b in benign:
        if b.pattern == "travel" and b.first_day <= day_index < b.last_day:
            k = np.flatnonzero(ctx.ids[who] == b.employee)
            if len(k):
                f_ip, _, f_idx = pools.addresses_in(pools.FOREIGN_RESIDENTIAL, np.array([b.u]), np.array([r.random()]))
                ip[k], country[k], tags[k] = f_ip[0], pools.FOREIGN_RESIDENTIAL.country[f_idx[0]], "travel"
    auth = [
        pl.DataFrame(
            {
                "ts": _in_day(start - 60 * SEC, t0),
                "event": ["employee_login"] * len(who),
                "employee_id": ctx.ids[who],
                "ip": ip,
                "country": country.tolist(),
                "_benign": tags.tolist(),
            },
            schema_overrides={"_benign": pl.String},
        )
    ]
    # vault key use: engineers use their API keys a few times a day; services steadily
    eng = who[np.isin(role[who], ["backend_engineer", "platform_engineer"])]
    key_of = _api_key_index(ctx, ctx.ids[eng])
    have = key_of >= 0
    eng, key_of = eng[have], key_of[have]
    if len(eng):
        uses = r.poisson(3, len(eng))
        e_rep = np.repeat(eng, uses)
        k_rep = np.repeat(key_of, uses)
        pos = np.searchsorted(who, e_rep)
        auth.append(
            pl.DataFrame(
                {
                    "ts": _in_day(start[pos] + r.integers(0, 8 * HOUR, len(e_rep)), t0),
                    "event": ["key_use"] * len(e_rep),
                    "employee_id": ctx.ids[e_rep],
                    "key_id": ctx.api_key_id[k_rep].tolist(),
                    "ip": ip[pos],
                    "country": country[pos].tolist(),
                    "_benign": tags[pos].tolist(),
                },
                schema_overrides={"_benign": pl.String},
            )
        )
    if len(ctx.service_keys):
        per = 24 * 4  # every 15 minutes
        k = np.repeat(np.arange(len(ctx.service_keys)), per)
        auth.append(
            pl.DataFrame(
                {
                    "ts": t0 + np.tile(np.arange(per) * 15 * 60 * SEC, len(ctx.service_keys)) + r.integers(0, 30 * SEC, len(k)),
                    "event": ["key_use"] * len(k),
                    "key_id": ctx.service_keys[k].tolist(),
                    "ip": _ips((0x0A000000, 1 << 16, 64500), hash_unit(cfg.seed, "svc-ip", k.astype(np.int64))),
                    "country": ["KR"] * len(k),
                }
            )
        )
    admin = [_reads(cfg, r, ctx, who, role, start, ip, country, tags, day_index, dnum, t0, holiday or weekend)]
    for b in benign:
        rows = b.render(cfg, ctx, day_index, t0, r) if b.first_day <= day_index < b.last_day else None
        if rows is not None and rows.height:
            admin.append(rows)
    hr = _hr_events(cfg, ctx, day_index, dnum, t0, r, benign)
    return {
        "admin": pl.concat(admin, how="diagonal_relaxed"),
        "auth": pl.concat(auth, how="diagonal_relaxed"),
        "hr": hr,
    }


def _reads(cfg: SimConfig, r: np.random.Generator, ctx: StaffContext, who: np.ndarray, role: np.ndarray, start: np.ndarray,
           ip: np.ndarray, country: np.ndarray, tags: np.ndarray, day_index: int, dnum: int, t0: int, quiet: bool) -> pl.DataFrame:
    """Routine reads of customer data by role, plus the night's on-call engineer."""
    roles_w = role[who]
    mean = np.array([READS_PER_DAY.get(x, 0.0) for x in roles_w]) * (0.75 if quiet else 1.0)
    # new hires ramp up over their first two weeks
    tenure = dnum - ctx.hire[who]
    ramp = np.clip((tenure + 1) / 14.0, 0.1, 1.0)
    n_reads = r.poisson(mean * ramp)
    idx = np.repeat(np.arange(len(who)), n_reads)
    m = len(idx)
    ts = _in_day(start[idx] + r.integers(0, 8 * HOUR, m), t0)
    ticket_p = np.array([TICKET_SHARE.get(x, 0.8) for x in roles_w])[idx]
    has_ticket = r.random(m) < ticket_p
    # about two views per ticket (an estimate: 1.8 record views per contact)
    ticket = (np.int64(day_index) << 40) | (ctx.ids[who][idx].astype(np.int64) << 16) | (np.arange(m) // 2)
    tag = tags[idx].copy()
    newbie = tenure[idx] < 14
    tag[(tag == None) & newbie] = "new_hire"  # noqa: E711
    action = np.where(roles_w[idx] == "administrator", np.where(r.random(m) < 0.3, "update", "view"), "view")
    frames = [
        pl.DataFrame(
            {
                "ts": ts,
                "employee_id": ctx.ids[who][idx],
                "customer_id": r.integers(0, ctx.customers, m),
                "row_count": np.ones(m, dtype=np.int64),
                "action": action.tolist(),
                "channel": ["console"] * m,
                "ticket_id": pl.Series(ticket).set(pl.Series(~has_ticket), None),
                "ip": ip[idx],
                "country": country[idx].tolist(),
                "_benign": tag.tolist(),
            },
            schema_overrides={"_benign": pl.String},
        )
    ]
    # analysts: batch queries (no single customer), an export now and then
    an = np.flatnonzero(roles_w == "analyst")
    if len(an):
        q = r.poisson(ANALYST_QUERIES, len(an))
        a_idx = np.repeat(an, q)
        k = len(a_idx)
        export = r.random(k) < 0.03
        frames.append(
            pl.DataFrame(
                {
                    "ts": _in_day(start[a_idx] + r.integers(0, 8 * HOUR, k), t0),
                    "employee_id": ctx.ids[who][a_idx],
                    "customer_id": pl.Series([None] * k, dtype=pl.Int64),
                    "row_count": scaled_rows(cfg, np.where(export, r.integers(2_000, 20_000, k), np.exp(r.normal(np.log(3000), 1.2, k)) + 1)),
                    "action": np.where(export, "export", "query").tolist(),
                    "channel": np.where(export, "export", "sql").tolist(),
                    "ticket_id": pl.Series((np.int64(day_index) << 40) | (ctx.ids[who][a_idx] << 16) | (1 << 15) | np.arange(k)).set(pl.Series(~export), None),
                    "ip": ip[a_idx],
                    "country": country[a_idx].tolist(),
                    "_benign": tags[a_idx].tolist(),
                },
                schema_overrides={"_benign": pl.String},
            )
        )
    # on call: one engineer a night (rotating over today's engineers) reads a few records at night
    eng = np.flatnonzero(np.isin(role, ["backend_engineer", "platform_engineer"]))
    if len(eng):
        oc = eng[day_index % len(eng)]
        c = int(r.integers(1, 7))
        frames.append(
            pl.DataFrame(
                {
                    "ts": t0 + r.integers(0, 6 * HOUR, c),
                    "employee_id": np.full(c, ctx.ids[oc]),
                    "customer_id": r.integers(0, ctx.customers, c),
                    "row_count": np.ones(c, dtype=np.int64),
                    "action": ["view"] * c,
                    "channel": ["console"] * c,
                    "ticket_id": np.full(c, (np.int64(day_index) << 40) | (1 << 39) | int(ctx.ids[oc])),
                    "ip": _ips(VPN_NET, r.random(c)),
                    "country": ["KR"] * c,
                    "_benign": ["night_on_call"] * c,
                }
            )
        )
    return pl.concat(frames, how="diagonal_relaxed")


def _hr_events(cfg: SimConfig, ctx: StaffContext, day_index: int, dnum: int, t0: int, r: np.random.Generator, benign: list) -> pl.DataFrame:
    """Hires, terminations, role changes and key lifecycle events of the day."""
    parts = []
    for mask, event in ((ctx.hire == dnum, "hire"), (ctx.term == dnum, "termination")):
        ids = ctx.ids[mask]
        if len(ids):
            parts.append(pl.DataFrame({"ts": t0 + 9 * HOUR + r.integers(0, 8 * HOUR, len(ids)), "subject_kind": "employee",
                                       "subject_id": ids.astype(str).tolist(), "event": event}))
    change = (ctx.seg_start == dnum) & (ctx.hire[np.searchsorted(ctx.ids, ctx.seg_owner)] != dnum)
    if change.any():
        ids = ctx.seg_owner[change]
        parts.append(pl.DataFrame({"ts": t0 + 9 * HOUR + r.integers(0, 8 * HOUR, len(ids)), "subject_kind": "employee",
                                   "subject_id": ids.astype(str).tolist(), "event": "role_change",
                                   "detail": ctx.seg_role[change].tolist()}))
    end = t0 + DAY_US
    keys = ctx.key_events.filter((pl.col("ts").dt.epoch("us") >= t0) & (pl.col("ts").dt.epoch("us") < end))
    if keys.height:
        parts.append(keys.select(pl.col("ts").dt.epoch("us"), pl.lit("key").alias("subject_kind"), "subject_id", "event"))
    for b in benign:
        if b.pattern == "key_rotation" and b.first_day == day_index:
            parts.append(pl.DataFrame({"ts": [t0 + 14 * HOUR], "subject_kind": ["key"], "subject_id": [b.key_id],
                                       "event": ["key_rotated"], "detail": ["scheduled rotation"], "_benign": ["key_rotation"]}))
    if not parts:
        return pl.DataFrame(schema={"ts": pl.Int64, "subject_kind": pl.String, "subject_id": pl.String, "event": pl.String})
    return pl.concat(parts, how="diagonal_relaxed")
