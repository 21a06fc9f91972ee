"""Hard negatives: benign activity that looks odd, planned once and tagged in the truth.

Patterns: ``data_migration`` (a platform engineer's job reads a sequential block of customer
records through the API, with a change ticket), ``batch_export`` (an analyst exports far more
rows than usual, with a ticket), ``support_campaign`` (support agents open many more records
than usual for an outbound campaign, one campaign ticket), ``travel`` (an employee logs in from
abroad for a few days), ``key_rotation`` (a scheduled rotation of a signing key), plus three that
the staff model produces every day: ``night_on_call`` (the on-call engineer's night reads),
``late_from_home`` (a bit of an employee's routine day done at night over the VPN) and
``new_hire`` (reads in a new hire's first two weeks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.seeding import rng
from simulator.staff_traffic import StaffDay, laptops, scaled_rows, ticket_ids
from simulator.units import HOUR
from simulator.world import steady_roles

PATTERNS = (
    "data_migration",
    "batch_export",
    "support_campaign",
    "travel",
    "key_rotation",
    "night_on_call",
    "late_from_home",
    "new_hire",
)


@dataclass(frozen=True)
class Benign:
    """One planned benign anomaly."""

    pattern: str
    first_day: int
    last_day: int  # exclusive
    employee: int = -1
    key_id: str = ""
    size: int = 0
    lo: int = 0
    u: float = 0.0
    team: tuple[int, ...] = field(default_factory=tuple)

    def render(self, sd: StaffDay, r: np.random.Generator) -> pl.DataFrame | None:
        """Admin rows of the pattern on one day (None when it has none)."""
        rows = _RENDERERS.get(self.pattern)
        return rows(self, sd, r) if rows is not None else None

    def _migration(self, sd: StaffDay, r: np.random.Generator) -> pl.DataFrame:
        """The day's share of a data migration: the job reads its block in batches of 100 records, from 1h to 5h."""
        per_day = -(-self.size // max(self.last_day - self.first_day, 1))
        lo = self.lo + (sd.day_index - self.first_day) * per_day
        ids = np.arange(lo, min(lo + per_day, self.lo + self.size, sd.customers_signed_up), dtype=np.int64)
        batch = 100  # the job reads in batches of 100 records
        starts = ids[::batch]
        k = len(starts)
        return pl.DataFrame(
            {
                "ts": sd.t0 + 1 * HOUR + np.arange(k) * (4 * HOUR // max(k, 1)),
                "employee_id": np.full(k, self.employee),
                "customer_id": starts,
                "row_count": np.minimum(batch, ids[-1] + 1 - starts) if k else np.zeros(0, np.int64),
                "action": ["migrate"] * k,
                "channel": ["api"] * k,
                "ticket_id": np.full(k, ticket_ids("migration", self.first_day, self.employee, 0, sd.cfg.root)),
                "ip": np.full(k, 0x0A000000 + 77),
                "country": [sd.cfg.time.home_country] * k,
                "device": laptops(np.full(k, self.employee)).tolist(),
                "_benign": ["data_migration"] * k,
            }
        )

    def _batch_export(self, sd: StaffDay, r: np.random.Generator) -> pl.DataFrame:
        """One export far larger than the analyst's usual, with a ticket, inside their working session."""
        s = sd.session(self.employee, r)
        return pl.DataFrame(
            {
                "ts": [int(sd.work_times(s, 1, r)[0])],
                "employee_id": [self.employee],
                "customer_id": pl.Series([None], dtype=pl.Int64),
                "row_count": [int(scaled_rows(sd.cfg, np.array([self.size]))[0])],
                "action": ["export"],
                "channel": ["export"],
                "ticket_id": [int(ticket_ids("batch_export", sd.day_index, self.employee, 0, sd.cfg.root))],
                "ip": [s.ip],
                "country": [s.country],
                "device": [s.device],
                "_benign": ["batch_export"],
            }
        )

    def _campaign(self, sd: StaffDay, r: np.random.Generator) -> pl.DataFrame:
        """The team's extra record views of an outbound campaign, under one campaign ticket, from 10h to 17h."""
        team = np.asarray(self.team, dtype=np.int64)
        per = r.poisson(self.size, len(team))
        sessions = [sd.session(int(e), r) for e in team]  # ten agents: their sessions of the day
        member = np.repeat(np.arange(len(team)), per)
        k = len(member)
        return pl.DataFrame(
            {
                "ts": sd.t0 + 10 * HOUR + r.integers(0, 7 * HOUR, k),
                "employee_id": team[member],
                "customer_id": sd.customers(k, r),
                "row_count": np.ones(k, dtype=np.int64),
                "action": ["view"] * k,
                "channel": ["console"] * k,
                "ticket_id": np.full(k, ticket_ids("campaign", self.first_day, 0, 0, sd.cfg.root)),
                "ip": np.array([x.ip for x in sessions], dtype=np.int64)[member],
                "country": np.array([x.country for x in sessions], dtype=object)[member].tolist(),
                "device": np.array([x.device for x in sessions], dtype=object)[member].tolist(),
                "_benign": ["support_campaign"] * k,
            }
        )


#: The patterns that add admin rows of their own, and how (the others: hr rows, or the staff model's own).
_RENDERERS: dict[str, Callable[[Benign, StaffDay, np.random.Generator], pl.DataFrame]] = {
    "data_migration": Benign._migration,
    "batch_export": Benign._batch_export,
    "support_campaign": Benign._campaign,
}


@dataclass
class _Planner:
    """What planning draws from: the plan's stream, the span and the employees active at its start."""

    cfg: SimConfig
    r: np.random.Generator
    active: pl.DataFrame

    def pick(self, role: str) -> int | None:
        """A random active employee of the role (None when there is none)."""
        ids = self.active.filter(pl.col("role") == role)["employee_id"].sort().to_numpy()
        return int(self.r.choice(ids)) if len(ids) else None

    def day(self) -> int:
        """A random day after the warm-up."""
        days, first = self.cfg.time.days, self.cfg.time.warmup_days
        return int(self.r.integers(first, days)) if days > first else 0


def plan_benign(cfg: SimConfig, staff: Mapping[str, pl.DataFrame]) -> list[Benign]:
    """Pick days, people and sizes for the configured counts of each pattern (deterministic).

    ``staff``: the world's ``employees``, ``employee_roles`` and ``credentials``
    (:func:`simulator.engine.staff_tables`); people are picked among those whose role holds
    through the span (:func:`simulator.world.steady_roles`), as the scenarios' actors are.
    """
    start = cfg.time.start
    employees, credentials = staff["employees"], staff["credentials"]
    active = steady_roles(employees, staff["employee_roles"], cfg).filter(
        pl.col("termination_date").is_null() & (pl.col("hire_date") < start)
    )
    p = _Planner(cfg, rng(cfg.root, "benign-plan"), active)
    live = credentials.filter((pl.col("kind") == "token-signing") & pl.col("revoked").is_null())["key_id"].sort().to_list()
    return [*_migrations(p), *_batch_exports(p), *_campaigns(p), *_travels(p), *_rotations(p, live)]


def _picked(p: _Planner, count: int, role: str) -> Iterator[tuple[int, int]]:
    """(employee, day) of each of ``count`` one-person patterns of a role (none while the role has nobody active).

    Lazy: each pair is drawn after the caller's draws for the one before, so the plan's stream is
    read in pattern order.
    """
    for _ in range(count):
        e = p.pick(role)
        if e is not None:
            yield e, p.day()


def _migrations(p: _Planner) -> list[Benign]:
    """Jobs of a platform engineer reading a sequential 5% of the customers over two days."""
    out = []
    for e, d in _picked(p, p.cfg.benign.data_migrations, "platform_engineer"):
        size = max(1, int(p.cfg.world.customers * 0.05))
        lo = int(p.r.integers(0, max(1, p.cfg.world.customers - size)))
        out.append(Benign("data_migration", d, min(p.cfg.time.days, d + 2), employee=e, size=size, lo=lo))
    return out


def _batch_exports(p: _Planner) -> list[Benign]:
    """Analysts' exports of 100k-400k rows (at 1M customers)."""
    picked = _picked(p, p.cfg.benign.batch_exports, "analyst")
    return [Benign("batch_export", d, d + 1, employee=e, size=int(p.r.integers(100_000, 400_000))) for e, d in picked]


def _campaigns(p: _Planner) -> list[Benign]:
    """Days when ten support agents open ~120 extra records each."""
    out = []
    for _ in range(p.cfg.benign.support_campaigns):
        team = p.active.filter(pl.col("role") == "support_agent")["employee_id"].sort().to_numpy()
        if len(team):
            d = p.day()
            members = tuple(int(x) for x in p.r.choice(team, size=min(len(team), 10), replace=False))
            out.append(Benign("support_campaign", d, d + 1, size=120, team=members))
    return out


def _travels(p: _Planner) -> list[Benign]:
    """Employees working from abroad for 3-7 days."""
    out = []
    for _ in range(p.cfg.benign.travellers):
        ids = p.active["employee_id"].sort().to_numpy()
        if len(ids):
            d = p.day()
            last = min(p.cfg.time.days, d + int(p.r.integers(3, 8)))
            out.append(Benign("travel", d, last, employee=int(p.r.choice(ids)), u=float(p.r.random())))
    return out


def _rotations(p: _Planner, live: list[str]) -> list[Benign]:
    """Scheduled rotations of live signing keys."""
    out = []
    for _ in range(p.cfg.benign.key_rotations):
        if live:
            d = p.day()
            out.append(Benign("key_rotation", d, d + 1, key_id=str(p.r.choice(live))))
    return out
