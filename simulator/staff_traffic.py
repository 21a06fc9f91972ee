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
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from simulator import pools
from simulator.config import SimConfig
from simulator.errors import ScenarioError
from simulator.seeding import hash_u64, hash_unit, rng
from simulator.units import DAY_US, ENGINEERS, HOUR, SEC, SHIFT_ROLES
from simulator.world import EPOCH, signed_up, utc_micros

if TYPE_CHECKING:
    from simulator.benign import Benign

#: Corporate egress (office) and VPN concentrators: documentation ranges, unmistakably synthetic.
OFFICE_NET = (0xCB007100, 256, 64500)  # 203.0.113.0/24, private ASN 64500
VPN_NET = (0xC6336400, 256, 64500)  # 198.51.100.0/24
#: The company's own egress ranges: every address in them is shared infrastructure, whichever of them a dataset's benign
#: rows happen to carry (an attacker's night session through the VPN drew an address no employee's benign row had that
#: month, and a shortcut that named new VPN addresses was credited with catching him: breachbench.dataset.unit_roles).
COMPANY_NETS = (OFFICE_NET, VPN_NET)
#: Local hour each shift starts.
SHIFT_START = {"day": 9, "evening": 15, "night": 23}
#: Mean admin reads per working day by role (support: ~55 contacts x 1.8 views, docs/calibration.md §4).
#: Analysts open the odd single record to check their data.
READS_PER_DAY = {
    "support_agent": 100.0,
    "logistics": 30.0,
    "administrator": 3.0,
    "analyst": 2.0,
    "backend_engineer": 0.3,
    "platform_engineer": 0.3,
}
TICKET_SHARE = {
    "support_agent": 0.97,
    "logistics": 0.9,
    "administrator": 0.8,
    "analyst": 0.5,
    "backend_engineer": 0.95,
    "platform_engineer": 0.95,
}
#: Share of an administrator's record opens that are edits.
ADMIN_UPDATE_SHARE = 0.3
#: Spread (log-normal sigma) of the row counts of analysts' routine queries, around their median.
QUERY_SIGMA = 1.2
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
            credentials.select(
                pl.col(c).alias("ts"), pl.col("key_id").alias("subject_id"), pl.lit(f"key_{name}").alias("event")
            ).drop_nulls("ts")
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


def direct_addresses(root: int, who: str, keys: np.ndarray, day_index: int) -> np.ndarray:
    """The addresses of a day worked without the VPN for the people ``keys`` (``who``: "staff" for employee ids, or
    another name for people of another numbering): their home broadband's one address (as a customer's), or on
    :data:`HOTSPOT_SHARE` of the days their carrier's address of the day."""
    keys = np.asarray(keys, dtype=np.int64)
    day_keys = keys * 1000 + day_index
    home, _, _ = pools.addresses_in(
        pools.KR_FIXED, hash_unit(root, f"{who}-home-isp", keys), hash_unit(root, f"{who}-home-host", keys)
    )
    mobile, _, _ = pools.addresses_in(
        pools.KR_MOBILE, hash_unit(root, f"{who}-carrier", keys), hash_unit(root, f"{who}-hotspot-host", day_keys)
    )
    return np.where(hash_unit(root, f"{who}-hotspot", day_keys) < HOTSPOT_SHARE, mobile, home)


#: Kinds of ticket, the top byte of a ticket id (see :func:`ticket_ids`).
TICKET_KINDS = {"contact": 0, "export": 1, "on_call": 2, "migration": 3, "batch_export": 4, "campaign": 5}
#: Share of the days an employee works remotely (VPN) and, then, from their personal device.
REMOTE_SHARE = 0.2
#: Logins after the first of a working day, per employee at work (Poisson): a lapsed single sign-on
#: session or a dropped VPN signs in again from the day's address, some time into the day. Without
#: them no employee ever logged in twice a day, and any second session of an attack (a night one, a
#: takeover) gave its account away by its login alone.
RELOGINS_PER_DAY = 0.3
#: Share of the employees at work on a day who also work a little at night from home (an estimate):
#: one ticket's record opens, or one query, of their routine day come from a night session on the
#: VPN, opened by a login as every session is. Without it only the on-call engineer ever worked at
#: night or had a second address in a day. Night work is a signal the staff scenarios declare
#: (off-hours), so this is benign noise on it, not a leak closed: at about six such employees a
#: day, ranking employees by their login addresses of the day still finds the night sessions of
#: bulk-export-before-departure-v2 within ten alerts a day.
LATE_WORK_SHARE = 0.01
PERSONAL_DEVICE_SHARE = 0.1
#: Share of remote days worked without the VPN (the console's single sign-on answers from anywhere; an
#: estimate), and of those the days on a phone's hotspot rather than the home broadband: an address of a
#: Korean broadband or mobile network, the same generator an outsider on a taken-over account draws from
#: at home (:func:`direct_addresses`). Without them every staff row came from the office, the VPN or a
#: traveller's hotel, and a rule "an employee on a network no colleague uses" named the outsider's
#: domestic address, declared stealthier than a foreign one, as surely as a foreign one.
DIRECT_SHARE = 0.5
HOTSPOT_SHARE = 0.3
#: Share of analysts' exports run without a ticket (ad-hoc requests), as ticketing audits find.
EXPORT_UNTICKETED = 0.1


def ticket_ids(kind: str, day_index: int, employee: np.ndarray | int, ordinal: np.ndarray | int, root: int) -> np.ndarray:
    """Ticket ids: kind (8 bits) | day (16) | employee (24) | number (16).

    The number is the ticket's ``ordinal`` among the employee's tickets of that kind that day (0,
    1, ... in the order they are made: contact tickets two record opens each, exports one each;
    tickets a scenario adds continue that count, :meth:`StaffDay.tickets`) through a keyed
    shuffle of the 16-bit numbers (four Feistel rounds keyed by the dataset's root, its seed and
    secret, and by kind, day and employee; :func:`ticket_ordinal` undoes it). Even undone, an ordinal says how many tickets
    the day held before it (volume), not which were added. Every ticket in the logs is made here.
    """
    emp = np.asarray(employee, dtype=np.int64)
    head = (np.int64(TICKET_KINDS[kind]) << 56) | (np.int64(day_index) << 40) | (emp << 16)
    return head | _feistel(head, np.asarray(ordinal, dtype=np.int64) & 0xFFFF, root, inverse=False)


#: Record opens per contact ticket, on average (docs/calibration.md §4: 1.8 record views per contact). Each open
#: after an employee's first of the day starts a new ticket with chance 1 / TICKET_OPENS, else it is one more open of
#: the ticket before it (:func:`ticket_numbers`): tickets of one, two, three or more opens, as contacts come.
TICKET_OPENS = 1.8


def ticket_starts(root: int, day_index: int, employee: np.ndarray, nth: np.ndarray) -> np.ndarray:
    """Whether each record open starts a contact ticket (``nth``: its place among the employee's opens of the day; the
    first always does): a keyed hash of (day, employee, ``nth``), so the routine reads and the opens a scenario adds
    after them draw from one process."""
    emp = np.asarray(employee, dtype=np.int64)
    nth = np.asarray(nth, dtype=np.int64)
    key = (np.int64(day_index) << 48) | (emp << 24) | nth
    return (nth == 0) | (hash_unit(root, "ticket-start", key.astype(np.uint64)) < 1 / TICKET_OPENS)


def ticket_numbers(starts: np.ndarray, employee: np.ndarray) -> np.ndarray:
    """The number of the contact ticket of each record open, counted from 0 per employee: a running count of the opens
    that start one (:func:`ticket_starts`). The arrays run employee by employee, each employee's opens in order."""
    emp = np.asarray(employee, dtype=np.int64)
    count: np.ndarray = np.cumsum(starts, dtype=np.int64)
    if not len(count):
        return count
    # per employee: the count since their first open (which always starts one)
    head = np.flatnonzero(np.r_[True, emp[1:] != emp[:-1]])
    out: np.ndarray = count - np.repeat(count[head], np.diff(np.r_[head, len(emp)]))
    return out


def ticket_ordinal(ticket: np.ndarray, root: int) -> np.ndarray:
    """The ordinals of ``ticket`` ids of a dataset of root ``root`` (``SimConfig.root``): :func:`ticket_ids`'s shuffle undone."""
    t = np.asarray(ticket, dtype=np.int64)
    return _feistel(t & ~np.int64(0xFFFF), t & 0xFFFF, root, inverse=True)


def _feistel(head: np.ndarray, number: np.ndarray, root: int, *, inverse: bool) -> np.ndarray:
    """A keyed permutation of 16-bit ``number`` per ``head`` (kind, day, employee) and its inverse: four rounds on 8-bit halves."""
    head, number = np.broadcast_arrays(np.asarray(head, dtype=np.int64), number)

    def f(i: int, half: np.ndarray) -> np.ndarray:
        return (hash_u64(root, f"ticket-{i}", (head | half).astype(np.uint64)) & np.uint64(0xFF)).astype(np.int64)

    left, right = (number >> 8) & 0xFF, number & 0xFF
    if inverse:
        for i in reversed(range(4)):
            left, right = right ^ f(i, left), left
    else:
        for i in range(4):
            left, right = right, left ^ f(i, right)
    return (left << 8) | right


def laptops(employees: np.ndarray) -> np.ndarray:
    """The company laptop of each employee (``LT-<employee>``)."""
    return np.array([f"LT-{int(e):05d}" for e in np.asarray(employees)], dtype=object)


def personal_devices(root: int, owners: np.ndarray) -> np.ndarray:
    """A personal device id (``MB-<6 digits>``) per owner key, stable for a given root seed."""
    digits = hash_u64(root, "personal-device", np.asarray(owners, dtype=np.int64)) % np.uint64(10**6)
    return np.array([f"MB-{int(d):06d}" for d in digits], dtype=object)


@dataclass(frozen=True)
class WorkDay:
    """Who works on a day and how: the draws the staff model makes before any row.

    Arrays over ``who`` (indices into :class:`StaffContext` arrays of the employees at work).
    """

    role: np.ndarray  # every employee's role that day (None when not employed)
    who: np.ndarray
    start: np.ndarray  # UTC microseconds work starts
    ip: np.ndarray  # the day's address (office egress; VPN, home broadband or hotspot when remote; abroad when travelling)
    country: np.ndarray
    device: np.ndarray  # laptop, or a personal device on some remote days
    tags: np.ndarray  # benign pattern (travel) or None
    reads: np.ndarray  # single-record reads planned for the day


def single_read_share(role: str) -> float:
    """Share of single-record reads among a role's routine admin rows (the rest are batch queries)."""
    reads = READS_PER_DAY.get(role, 0.0)
    queries = ANALYST_QUERIES if role == "analyst" else 0.0
    return reads / (reads + queries) if reads + queries > 0 else 1.0


def usual_start(
    cfg: SimConfig, ctx: StaffContext, idx: np.ndarray, shift_role: np.ndarray, t0: int, r: np.random.Generator
) -> np.ndarray:
    """Start of work: the shift's hour (support and logistics) or 9h, a personal habit and daily jitter."""
    habit = (hash_unit(cfg.root, "habit", ctx.ids[idx]) - 0.5) * 2 * HOUR
    shift_h = np.array(
        [SHIFT_START.get(s, 9) if sr else 9 for s, sr in zip(ctx.shift[idx], shift_role, strict=True)], dtype=np.int64
    )
    return t0 + shift_h * HOUR + habit.astype(np.int64) + r.integers(0, 20 * 60 * SEC, len(idx))


def plan_work_day(cfg: SimConfig, ctx: StaffContext, day_index: int, benign: list, r: np.random.Generator) -> WorkDay:
    """Who works today, from when, from where, on which device, and how many records they will open."""
    day = cfg.time.start + dt.timedelta(days=day_index)
    dnum = (day - EPOCH).days
    t0 = utc_micros(day, cfg.time.timezone)
    holiday = pools.is_holiday(day)
    quiet = holiday or day.weekday() >= 5
    role = roles_on(ctx, dnum)
    employed = role != None  # noqa: E711 - object array
    n = len(ctx.ids)
    # support and logistics rota 5 of 7 days (a stable per-person pattern); office roles work
    # weekdays that are not holidays
    rota = hash_unit(cfg.root, "rota", ctx.ids * 7 + day.weekday()) < 5 / 7
    shift_role = np.isin(role, SHIFT_ROLES)
    works = employed & np.where(shift_role, rota & (r.random(n) < (0.8 if holiday else 1.0)), not quiet)
    who = np.flatnonzero(works)
    start = usual_start(cfg, ctx, who, shift_role[who], t0, r)
    remote = hash_unit(cfg.root, "remote", ctx.ids[who] * 1000 + day_index) < REMOTE_SHARE
    ip = np.where(remote, _ips(VPN_NET, r.random(len(who))), _ips(OFFICE_NET, r.random(len(who))))
    direct = remote & (hash_unit(cfg.root, "direct", ctx.ids[who] * 1000 + day_index) < DIRECT_SHARE)
    ip = np.where(direct, direct_addresses(cfg.root, "staff", ctx.ids[who], day_index), ip)
    country = np.full(len(who), cfg.time.home_country, dtype=object)
    personal = remote & (hash_unit(cfg.root, "personal", ctx.ids[who] * 1000 + day_index) < PERSONAL_DEVICE_SHARE)
    device = (
        np.where(personal, personal_devices(cfg.root, ctx.ids[who]), laptops(ctx.ids[who]))
        if len(who)
        else np.array([], dtype=object)
    )
    tags = np.full(len(who), None, dtype=object)
    for b in benign:  # travel: the traveller works from abroad, from one address the whole trip (a hotel's)
        if b.pattern == "travel" and b.first_day <= day_index < b.last_day:
            k = np.flatnonzero(ctx.ids[who] == b.employee)
            if len(k):
                # one host per trip, where each day drew its own: an outsider on a taken-over account keeps one
                # address abroad, and a rule "the same outside address on two days" told it from the travellers
                # (the day's draw is still made, so the rest of the day's stream stays as it was)
                r.random()
                host = hash_unit(cfg.root, "travel-host", np.array([b.employee * 100_000 + b.first_day], dtype=np.int64))
                f_ip, _, f_idx = pools.addresses_in(pools.FOREIGN_RESIDENTIAL, np.array([b.u]), host)
                ip[k], country[k], tags[k] = f_ip[0], pools.FOREIGN_RESIDENTIAL.country[f_idx[0]], "travel"
    mean = np.array([READS_PER_DAY.get(x, 0.0) for x in role[who]]) * (0.75 if quiet else 1.0)
    ramp = np.clip((dnum - ctx.hire[who] + 1) / 14.0, 0.1, 1.0)  # new hires ramp up over two weeks
    return WorkDay(role, who, start, ip, country, device, tags, r.poisson(mean * ramp))


def staff_day(
    cfg: SimConfig, day_index: int, ctx: StaffContext, benign: list, work: WorkDay | None = None
) -> dict[str, pl.DataFrame]:
    """Admin, employee auth and hr rows of one day (unsorted, without ids).

    ``work``: the day's :func:`plan_work_day`, when the caller made it already (it is drawn
    first from the day's stream, so it is the same either way).
    """
    r = rng(cfg.root, "staff", day_index)
    day = cfg.time.start + dt.timedelta(days=day_index)
    t0 = utc_micros(day, cfg.time.timezone)
    drawn = plan_work_day(cfg, ctx, day_index, benign, r)
    work = work or drawn
    auth = [_employee_logins(ctx, work, t0), _relogins(cfg, ctx, work, t0, day_index)]
    keys = _api_key_uses(ctx, work, t0, r)
    if keys is not None:
        auth.append(keys)
    if len(ctx.service_keys):
        auth.append(_service_key_uses(cfg, ctx, t0, r))
    sd = StaffDay(cfg, day_index, day, t0, ctx, work, signed_up(cfg, day_index))
    routine, late_logins = _late_work(sd, _reads(sd, r))
    admin = [routine, *_benign_admin(sd, benign, r)]
    if late_logins is not None:
        auth.append(late_logins)
    on_call = _on_call(sd)
    if on_call is not None:
        admin.append(on_call[0])
        auth.append(on_call[1])
    return {
        "admin": pl.concat(admin, how="diagonal_relaxed"),
        "auth": pl.concat(auth, how="diagonal_relaxed"),
        "hr": _hr_events(sd, benign, r),
    }


def _employee_logins(ctx: StaffContext, work: WorkDay, t0: int) -> pl.DataFrame:
    """A login a minute before work starts for everyone at work."""
    who = work.who
    return pl.DataFrame(
        {
            "ts": _in_day(work.start - 60 * SEC, t0),
            "event": ["employee_login"] * len(who),
            "employee_id": ctx.ids[who],
            "ip": work.ip,
            "country": work.country.tolist(),
            "_benign": work.tags.tolist(),
        },
        schema_overrides={"_benign": pl.String},
    )


def _relogins(cfg: SimConfig, ctx: StaffContext, work: WorkDay, t0: int, day_index: int) -> pl.DataFrame:
    """Logins later in the working day (:data:`RELOGINS_PER_DAY`), from the day's address: a minute to
    eight hours after work starts. Drawn from a stream of their own, so the day's other rows stay as drawn."""
    r = rng(cfg.root, "staff-relogin", day_index)
    n = r.poisson(RELOGINS_PER_DAY, len(work.who))
    pos = np.repeat(np.arange(len(work.who)), n)
    return pl.DataFrame(
        {
            "ts": _in_day(work.start[pos] + r.integers(60 * SEC, 8 * HOUR, len(pos)), t0),
            "event": ["employee_login"] * len(pos),
            "employee_id": ctx.ids[work.who[pos]],
            "ip": work.ip[pos],
            "country": work.country[pos].tolist(),
            "_benign": work.tags[pos].tolist(),
        },
        schema_overrides={"_benign": pl.String},
    )


def _api_key_uses(ctx: StaffContext, work: WorkDay, t0: int, r: np.random.Generator) -> pl.DataFrame | None:
    """Vault key use: engineers at work use their API keys a few times a day (None when none has a key)."""
    who = work.who
    eng = who[np.isin(work.role[who], ENGINEERS)]
    key_of = _api_key_index(ctx, ctx.ids[eng])
    have = key_of >= 0
    eng, key_of = eng[have], key_of[have]
    if not len(eng):
        return None
    uses = r.poisson(3, len(eng))
    e_rep = np.repeat(eng, uses)
    k_rep = np.repeat(key_of, uses)
    pos = np.searchsorted(who, e_rep)
    return pl.DataFrame(
        {
            "ts": _in_day(work.start[pos] + r.integers(0, 8 * HOUR, len(e_rep)), t0),
            "event": ["key_use"] * len(e_rep),
            "employee_id": ctx.ids[e_rep],
            "key_id": ctx.api_key_id[k_rep].tolist(),
            "ip": work.ip[pos],
            "country": work.country[pos].tolist(),
            "_benign": work.tags[pos].tolist(),
        },
        schema_overrides={"_benign": pl.String},
    )


def _service_key_uses(cfg: SimConfig, ctx: StaffContext, t0: int, r: np.random.Generator) -> pl.DataFrame:
    """Vault key use by the service accounts: every 15 minutes, from the internal network."""
    per = 24 * 4  # every 15 minutes
    k = np.repeat(np.arange(len(ctx.service_keys)), per)
    return pl.DataFrame(
        {
            "ts": t0 + np.tile(np.arange(per) * 15 * 60 * SEC, len(ctx.service_keys)) + r.integers(0, 30 * SEC, len(k)),
            "event": ["key_use"] * len(k),
            "key_id": ctx.service_keys[k].tolist(),
            "ip": _ips((0x0A000000, 1 << 16, 64500), hash_unit(cfg.root, "svc-ip", k.astype(np.int64))),
            "country": [cfg.time.home_country] * len(k),
        }
    )


def _benign_admin(sd: StaffDay, benign: list, r: np.random.Generator) -> list[pl.DataFrame]:
    """Admin rows of the planned benign anomalies running on the day (the non-empty ones)."""
    out = []
    for b in benign:
        rows = b.render(sd, r) if b.first_day <= sd.day_index < b.last_day else None
        if rows is not None and rows.height:
            out.append(rows)
    return out


@dataclass(frozen=True)
class Session:
    """Where and from when an employee works on a day: what their rows of that day carry."""

    start: int  # UTC microseconds
    ip: int
    country: str
    device: str


@dataclass(frozen=True)
class StaffDay:
    """One day of the staff's world, as a scenario's ``render_staff`` (and benign traffic) sees it.

    Everything a staff-side scenario needs to make rows that look like the actor's ordinary
    rows comes from here: the actor's role, their session of the day (start of work, address,
    device), read times inside their working hours, ticket numbers like the ones their ordinary
    reads carry, and customers who exist on the day. Rows built from these differ from benign
    rows only where the scenario chooses to (night work, no ticket, volume, ...).
    """

    cfg: SimConfig
    day_index: int
    date: dt.date
    t0: int  # UTC microseconds of local midnight
    staff: StaffContext
    work: WorkDay
    customers_signed_up: int  # customers who exist by the end of the day: ids [0, n)
    #: contact tickets of the day's routine reads that late work moved to a night session (:func:`_late_work`)
    late_tickets: frozenset[int] = frozenset()

    @property
    def off_day(self) -> bool:
        """A weekend or public holiday."""
        return self.date.weekday() >= 5 or pools.is_holiday(self.date)

    def _index(self, employee: int) -> int:
        pos = int(np.searchsorted(self.staff.ids, employee))
        if pos >= len(self.staff.ids) or self.staff.ids[pos] != employee:
            raise ScenarioError(f"employee {employee} is not in the world's employees table")
        return pos

    def role(self, employee: int) -> str:
        """The employee's role on the day (their last role when none is open that day)."""
        dnum = (self.date - EPOCH).days
        ctx = self.staff
        mine = np.flatnonzero(ctx.seg_owner == employee)
        open_ = mine[(ctx.seg_start[mine] <= dnum) & (dnum < ctx.seg_end[mine])]
        pick = open_[-1] if len(open_) else mine[-1] if len(mine) else -1
        return str(ctx.seg_role[pick]) if pick >= 0 else ""

    def works(self, employee: int) -> bool:
        """Whether the employee is at work on the day."""
        return self._at_work(employee) >= 0

    def employed(self, employee: int) -> bool:
        """Whether the employee is employed on the day (hired on or before it, not gone by it)."""
        i = self._index(employee)
        dnum = (self.date - EPOCH).days
        return bool(self.staff.hire[i] <= dnum < self.staff.term[i])

    def session(self, employee: int, r: np.random.Generator) -> Session:
        """The employee's working session of the day: the one benign traffic uses when they work,
        else one drawn the same way (usual start, remote from the VPN, their laptop)."""
        routine = self.routine_session(employee)
        if routine is not None:
            return routine
        i = self._index(employee)
        shift_role = np.array([self.role(employee) in SHIFT_ROLES])
        start = usual_start(self.cfg, self.staff, np.array([i]), shift_role, self.t0, r)
        return Session(
            int(start[0]), int(_ips(VPN_NET, r.random(1))[0]), self.cfg.time.home_country, str(laptops(np.array([employee]))[0])
        )

    def usual_start(self, employee: int, r: np.random.Generator) -> int:
        """A start of work drawn as the employee's own starts are (their shift's hour, their habit,
        daily jitter): the hours someone mimicking the account holder keeps."""
        i = self._index(employee)
        shift_role = np.array([self.role(employee) in SHIFT_ROLES])
        return int(usual_start(self.cfg, self.staff, np.array([i]), shift_role, self.t0, r)[0])

    def login_time(self, session: Session) -> int:
        """When the login that opens a working session is logged: a minute before work starts, as benign logins."""
        return int(_in_day(np.array([session.start - 60 * SEC]), self.t0)[0])

    def relogin_times(self, session: Session, r: np.random.Generator) -> np.ndarray:
        """Times of the later logins of a working session: as many as a benign working day has
        (Poisson, :data:`RELOGINS_PER_DAY`), a minute to eight hours after its start (:func:`_relogins`)."""
        n = int(r.poisson(RELOGINS_PER_DAY))
        return _in_day(session.start + r.integers(60 * SEC, 8 * HOUR, n), self.t0)

    def night_session(self, employee: int, r: np.random.Generator) -> Session:
        """A session in the small hours from home (the VPN), as the on-call engineer's."""
        return Session(
            self.t0, int(_ips(VPN_NET, r.random(1))[0]), self.cfg.time.home_country, str(laptops(np.array([employee]))[0])
        )

    def work_times(self, session: Session, n: int, r: np.random.Generator) -> np.ndarray:
        """Times of ``n`` rows inside a working session (eight hours from its start), as benign reads."""
        return _in_day(session.start + r.integers(0, 8 * HOUR, n), self.t0)

    def night_start(self, r: np.random.Generator) -> int:
        """When a night session starts (UTC microseconds): a minute to two hours after local midnight,
        as the on-call engineer's; its login (:meth:`login_time`) comes a minute before."""
        return self.t0 + 60 * SEC + int(r.integers(0, 2 * HOUR))

    def night_times(self, start: int, n: int, r: np.random.Generator) -> np.ndarray:
        """Times of ``n`` rows of a night session that starts at ``start``: after it, before 6h local."""
        return start + (r.random(n) * (self.t0 + 6 * HOUR - start)).astype(np.int64)

    def _at_work(self, employee: int) -> int:
        """The employee's index into the day's ``work`` arrays, or -1 when they are not at work."""
        i = self._index(employee)
        k = int(np.searchsorted(self.work.who, i))
        return k if k < len(self.work.who) and self.work.who[k] == i else -1

    def tickets(self, employee: int, opens: list[int], own: list[bool]) -> np.ndarray:
        """Contact tickets for record opens the employee adds to their day, session by session: ``opens[i]`` opens
        in session ``i``, which is the employee's routine working session of the day when ``own[i]``.

        The added opens go on from the employee's routine reads of the day (:func:`ticket_starts`, the same
        process, counted on as a ticketing system numbers the next ticket): those of the routine session first,
        which may go on with the routine's last ticket, then each other session's. A ticket's opens come from one
        place and device, so another session's first open starts one; when the process would not have started one
        there, the session's next start is dropped instead, so that the day keeps the number of tickets of a day
        with that many routine opens (a start added per session gave attack days more tickets than their opens
        allow). The ids come back in the sessions' order.
        """
        k = self._at_work(employee)
        reads = int(self.work.reads[k]) if k >= 0 else 0
        order = sorted(range(len(opens)), key=lambda i: not own[i])  # the routine session's opens first
        n = [opens[i] for i in order]
        total = reads + sum(n)
        starts = ticket_starts(self.cfg.root, self.day_index, np.full(total, employee), np.arange(total))
        # the routine's last ticket, when late work moved it to a night session, is not there to go on with
        moved = False
        if self.late_tickets and reads:  # late work moves a ticket of about one employee in a hundred a day
            last = ticket_numbers(starts[:reads], np.full(reads, employee))[-1:]
            moved = int(ticket_ids("contact", self.day_index, employee, last, self.cfg.root)[0]) in self.late_tickets
        at = reads
        for i, c in zip(order, n, strict=True):
            if c and (not own[i] or (moved and at == reads)) and not starts[at]:
                later = np.flatnonzero(starts[at + 1 : at + c])
                if len(later):
                    starts[at + 1 + later[0]] = False
                starts[at] = True
            at += c
        number = ticket_numbers(starts, np.full(total, employee))[reads:]
        out = np.empty(total - reads, dtype=np.int64)
        placed = np.cumsum([0, *n])  # where each session's opens are in ``number`` (routine session first)
        given = np.cumsum([0, *opens])  # and in the caller's order
        for j, i in enumerate(order):
            out[given[i] : given[i + 1]] = number[placed[j] : placed[j + 1]]
        return ticket_ids("contact", self.day_index, employee, out, self.cfg.root)

    def routine_session(self, employee: int) -> Session | None:
        """The employee's routine working session of the day (None when they are not at work)."""
        k = self._at_work(employee)
        if k < 0:
            return None
        w = self.work
        return Session(int(w.start[k]), int(w.ip[k]), str(w.country[k]), str(w.device[k]))

    def export_tickets(self, employee: int, n: int) -> np.ndarray:
        """``n`` export tickets the employee adds to their day (one per export), counted on after their
        routine exports' tickets of the day."""
        k = self._at_work(employee)
        routine = 0
        if k >= 0:
            analysts, counts, _, ticketed = query_plan(self)
            pos = np.flatnonzero(analysts == k)
            if len(pos):
                first = int(counts[: pos[0]].sum())
                routine = int(ticketed[first : first + int(counts[pos[0]])].sum())
        return ticket_ids("export", self.day_index, employee, routine + np.arange(n), self.cfg.root)

    def view_actions(self, employee: int, n: int, r: np.random.Generator) -> np.ndarray:
        """Actions of ``n`` record opens by the employee, in their role's mix (administrators also edit)."""
        if self.role(employee) == "administrator":
            return np.where(r.random(n) < ADMIN_UPDATE_SHARE, "update", "view")
        return np.full(n, "view", dtype=object)

    def customers(self, n: int, r: np.random.Generator) -> np.ndarray:
        """``n`` customers drawn uniformly among those who exist on the day."""
        return r.integers(0, self.customers_signed_up, n)

    def pull_ranges(self, rows: np.ndarray, r: np.random.Generator) -> np.ndarray:
        """First id of a contiguous range of ``rows`` existing customers for each pull (ids follow signup order)."""
        rows = np.minimum(np.asarray(rows, dtype=np.int64), self.customers_signed_up)
        return (r.random(len(rows)) * (self.customers_signed_up - rows + 1)).astype(np.int64)

    def new_device(self, key: int) -> str:
        """A personal device id that is none of the staff's own (an outsider's phone or laptop)."""
        return str(personal_devices(self.cfg.root, np.array([-1 - int(key)]))[0])


def _reads(sd: StaffDay, r: np.random.Generator) -> pl.DataFrame:
    """Routine reads of customer data by role (the night's on-call engineer: :func:`_on_call`)."""
    frames = [_single_reads(sd, r)]
    queries = _analyst_queries(sd, r)
    if queries is not None:
        frames.append(queries)
    return pl.concat(frames, how="diagonal_relaxed")


def _single_reads(sd: StaffDay, r: np.random.Generator) -> pl.DataFrame:
    """Everyone's planned single-record reads (``work.reads``), mostly tied to a ticket."""
    ctx, work, t0 = sd.staff, sd.work, sd.t0
    who = work.who
    dnum = (sd.date - EPOCH).days
    roles_w = work.role[who]
    idx = np.repeat(np.arange(len(who)), work.reads)
    m = len(idx)
    ts = _in_day(work.start[idx] + r.integers(0, 8 * HOUR, m), t0)
    ticket_p = np.array([TICKET_SHARE.get(x, 0.8) for x in roles_w])[idx]
    has_ticket = r.random(m) < ticket_p
    # about two views per ticket (TICKET_OPENS; docs/calibration.md §4: 1.8 record views per contact)
    nth = np.arange(m) - np.repeat(np.cumsum(work.reads) - work.reads, work.reads)
    number = ticket_numbers(ticket_starts(sd.cfg.root, sd.day_index, ctx.ids[who][idx], nth), ctx.ids[who][idx])
    ticket = ticket_ids("contact", sd.day_index, ctx.ids[who][idx], number, sd.cfg.root)
    tag = work.tags[idx].copy()
    newbie = (dnum - ctx.hire[who])[idx] < 14
    tag[(tag == None) & newbie] = "new_hire"  # noqa: E711
    action = np.where(roles_w[idx] == "administrator", np.where(r.random(m) < ADMIN_UPDATE_SHARE, "update", "view"), "view")
    return pl.DataFrame(
        {
            "ts": ts,
            "employee_id": ctx.ids[who][idx],
            "customer_id": sd.customers(m, r),
            "row_count": np.ones(m, dtype=np.int64),
            "action": action.tolist(),
            "channel": ["console"] * m,
            "ticket_id": pl.Series(ticket).set(pl.Series(~has_ticket), None),
            "ip": work.ip[idx],
            "country": work.country[idx].tolist(),
            "device": work.device[idx].tolist(),
            "_benign": tag.tolist(),
        },
        schema_overrides={"_benign": pl.String, "device": pl.String},
    )


def query_plan(sd: StaffDay) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The analysts' batch queries of the day, from a stream of their own (so that a scenario can
    count an analyst's routine export tickets): (analysts at work as indices into ``work.who``,
    queries each, and per query in that order: an export?, a ticketed export?)."""
    work = sd.work
    an = np.flatnonzero(work.role[work.who] == "analyst")
    r = rng(sd.cfg.root, "analyst-queries", sd.day_index)
    q = r.poisson(ANALYST_QUERIES, len(an))
    k = int(q.sum())
    export = r.random(k) < 0.03
    ticketed = export & (r.random(k) >= EXPORT_UNTICKETED)
    return an, q, export, ticketed


def _analyst_queries(sd: StaffDay, r: np.random.Generator) -> pl.DataFrame | None:
    """Analysts' batch queries (no single customer) and an export now and then (None without analysts at work)."""
    cfg, ctx, work, day_index = sd.cfg, sd.staff, sd.work, sd.day_index
    who = work.who
    an, q, export, ticketed = query_plan(sd)
    if not len(an):
        return None
    a_idx = np.repeat(an, q)
    k = len(a_idx)
    # an export ticket numbers the analyst's ticketed exports of the day: 0, 1, ...
    first = np.repeat(np.cumsum(q) - q, q)  # each query's analyst's first query
    done = np.concatenate([[0], np.cumsum(ticketed)]).astype(np.int64)  # ticketed exports before each query
    seq = done[1:] - done[first] - 1
    return pl.DataFrame(
        {
            "ts": _in_day(work.start[a_idx] + r.integers(0, 8 * HOUR, k), sd.t0),
            "employee_id": ctx.ids[who][a_idx],
            "customer_id": pl.Series([None] * k, dtype=pl.Int64),
            "row_count": scaled_rows(
                cfg, np.where(export, r.integers(2_000, 20_000, k), np.exp(r.normal(np.log(3000), QUERY_SIGMA, k)) + 1)
            ),
            "action": np.where(export, "export", "query").tolist(),
            "channel": np.where(export, "export", "sql").tolist(),
            "ticket_id": pl.Series(ticket_ids("export", day_index, ctx.ids[who][a_idx], seq, cfg.root)).set(
                pl.Series(~ticketed), None
            ),
            "ip": work.ip[a_idx],
            "country": work.country[a_idx].tolist(),
            "device": work.device[a_idx].tolist(),
            "_benign": work.tags[a_idx].tolist(),
        },
        schema_overrides={"_benign": pl.String, "device": pl.String},
    )


def _late_work(sd: StaffDay, routine: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Some employees at work (:data:`LATE_WORK_SHARE`) do a bit of their routine day at night from home:
    one of their ticket's opens (or one untied open, or one query) moves to a night session that starts
    as any night session does, from a VPN address on the day's device, opened by a login a minute
    before; (the routine rows so moved and tagged ``late_from_home``, the logins). Drawn from a stream
    of its own, so the day's other rows stay as drawn."""
    r = rng(sd.cfg.root, "staff-late-work", sd.day_index)
    work = sd.work
    picked = np.flatnonzero(r.random(len(work.who)) < LATE_WORK_SHARE)
    if not len(picked) or routine.height == 0:
        return routine, None
    ids = sd.staff.ids[work.who]
    emp = routine["employee_id"].to_numpy()
    ticket = routine["ticket_id"].fill_null(-1).to_numpy()
    ts, ip = routine["ts"].to_numpy().copy(), routine["ip"].to_numpy().copy()
    country = routine["country"].to_numpy().astype(object)
    device = routine["device"].to_numpy().astype(object)
    tag = routine["_benign"].to_numpy().astype(object)
    logins: dict[str, list] = {"ts": [], "employee_id": [], "ip": [], "country": []}
    for k in picked:  # about one employee in a hundred a day
        mine = np.flatnonzero(emp == ids[k])
        if not len(mine):
            continue
        row = mine[r.integers(len(mine))]
        group = mine[ticket[mine] == ticket[row]] if ticket[row] >= 0 else np.array([row])
        night = sd.night_session(int(ids[k]), r)
        start = sd.night_start(r)
        ts[group] = sd.night_times(start, len(group), r)
        ip[group], country[group], device[group], tag[group] = night.ip, night.country, work.device[k], "late_from_home"
        logins["ts"].append(sd.login_time(Session(start, night.ip, night.country, str(work.device[k]))))
        logins["employee_id"].append(int(ids[k]))
        logins["ip"].append(night.ip)
        logins["country"].append(night.country)
    if not logins["ts"]:
        return routine, None
    moved = routine.with_columns(
        pl.Series("ts", ts),
        pl.Series("ip", ip),
        pl.Series("country", country.tolist(), dtype=pl.String),
        pl.Series("device", device.tolist(), dtype=pl.String),
        pl.Series("_benign", tag.tolist(), dtype=pl.String),
    )
    n = len(logins["ts"])
    return moved, pl.DataFrame(
        logins | {"event": ["employee_login"] * n, "_benign": ["late_from_home"] * n},
        schema_overrides={"ts": pl.Int64, "employee_id": routine.schema["employee_id"], "ip": routine.schema["ip"]},
    )


def _on_call(sd: StaffDay) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """One engineer a night (rotating over today's engineers) logs in from home in the small hours
    and reads a few records: (admin rows, the login). The session starts as any night session does
    (a minute to two hours after midnight, its login a minute before, its rows after it, before
    6h). Drawn from a stream of its own."""
    eng = np.flatnonzero(np.isin(sd.work.role, ENGINEERS))
    if not len(eng):
        return None
    r = rng(sd.cfg.root, "staff-on-call", sd.day_index)
    oc = int(sd.staff.ids[eng[sd.day_index % len(eng)]])
    c = int(r.integers(1, 7))
    night = sd.night_session(oc, r)
    start = sd.night_start(r)
    reads = pl.DataFrame(
        {
            "ts": sd.night_times(start, c, r),
            "employee_id": np.full(c, oc),
            "customer_id": sd.customers(c, r),
            "row_count": np.ones(c, dtype=np.int64),
            "action": ["view"] * c,
            "channel": ["console"] * c,
            "ticket_id": np.full(c, ticket_ids("on_call", sd.day_index, oc, 0, sd.cfg.root)),
            "ip": np.full(c, night.ip),
            "country": [night.country] * c,
            "device": [night.device] * c,
            "_benign": ["night_on_call"] * c,
        }
    )
    login = pl.DataFrame(
        {
            "ts": [sd.login_time(Session(start, night.ip, night.country, night.device))],
            "event": ["employee_login"],
            "employee_id": [oc],
            "ip": [night.ip],
            "country": [night.country],
            "_benign": ["night_on_call"],
        }
    )
    return reads, login


def _hr_events(sd: StaffDay, benign: list, r: np.random.Generator) -> pl.DataFrame:
    """Hires, terminations, role changes and key lifecycle events of the day."""
    dnum = (sd.date - EPOCH).days
    parts = [*_people_events(sd.staff, dnum, sd.t0, r), *_key_events(sd.staff, sd.t0)]
    parts += [_scheduled_rotation(b, sd.t0) for b in benign if b.pattern == "key_rotation" and b.first_day == sd.day_index]
    if not parts:
        return pl.DataFrame(schema={"ts": pl.Int64, "subject_kind": pl.String, "subject_id": pl.String, "event": pl.String})
    return pl.concat(parts, how="diagonal_relaxed")


def _people_events(ctx: StaffContext, dnum: int, t0: int, r: np.random.Generator) -> list[pl.DataFrame]:
    """Hires, terminations and role changes of the day, in office hours."""
    parts = []
    for mask, event in ((ctx.hire == dnum, "hire"), (ctx.term == dnum, "termination")):
        ids = ctx.ids[mask]
        if len(ids):
            parts.append(
                pl.DataFrame(
                    {
                        "ts": t0 + 9 * HOUR + r.integers(0, 8 * HOUR, len(ids)),
                        "subject_kind": "employee",
                        "subject_id": ids.astype(str).tolist(),
                        "event": event,
                    }
                )
            )
    change = (ctx.seg_start == dnum) & (ctx.hire[np.searchsorted(ctx.ids, ctx.seg_owner)] != dnum)
    if change.any():
        ids = ctx.seg_owner[change]
        parts.append(
            pl.DataFrame(
                {
                    "ts": t0 + 9 * HOUR + r.integers(0, 8 * HOUR, len(ids)),
                    "subject_kind": "employee",
                    "subject_id": ids.astype(str).tolist(),
                    "event": "role_change",
                    "detail": ctx.seg_role[change].tolist(),
                }
            )
        )
    return parts


def _key_events(ctx: StaffContext, t0: int) -> list[pl.DataFrame]:
    """Credentials created, rotated or revoked on the day (from the world's credentials table)."""
    end = t0 + DAY_US
    keys = ctx.key_events.filter((pl.col("ts").dt.epoch("us") >= t0) & (pl.col("ts").dt.epoch("us") < end))
    if not keys.height:
        return []
    return [keys.select(pl.col("ts").dt.epoch("us"), pl.lit("key").alias("subject_kind"), "subject_id", "event")]


def _scheduled_rotation(b: Benign, t0: int) -> pl.DataFrame:
    """The hr row of a planned benign key rotation, at 14h on its day."""
    return pl.DataFrame(
        {
            "ts": [t0 + 14 * HOUR],
            "subject_kind": ["key"],
            "subject_id": [b.key_id],
            "event": ["key_rotated"],
            "detail": ["scheduled rotation"],
            "_benign": ["key_rotation"],
        }
    )
