"""Hard negatives: benign activity that looks odd, planned once and tagged in the truth.

Patterns: ``data_migration`` (a platform engineer's job reads a sequential block of customer
records through the API, with a change ticket), ``batch_export`` (an analyst exports far more
rows than usual, with a ticket), ``support_campaign`` (support agents open many more records
than usual for an outbound campaign, one campaign ticket), ``travel`` (an employee logs in from
abroad for a few days), ``key_rotation`` (a scheduled rotation of a signing key), plus two that
the staff model produces every day: ``night_on_call`` (the on-call engineer's night reads) and
``new_hire`` (reads in a new hire's first two weeks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.seeding import rng
from simulator.staff_traffic import StaffDay, laptops, scaled_rows, ticket_ids
from simulator.units import HOUR

PATTERNS = ("data_migration", "batch_export", "support_campaign", "travel", "key_rotation", "night_on_call", "new_hire")


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
        cfg, day_index, t0 = sd.cfg, sd.day_index, sd.t0
        if self.pattern == "data_migration":
            per_day = -(-self.size // max(self.last_day - self.first_day, 1))
            lo = self.lo + (day_index - self.first_day) * per_day
            ids = np.arange(lo, min(lo + per_day, self.lo + self.size, sd.customers_signed_up), dtype=np.int64)
            batch = 100  # the job reads in batches of 100 records
            starts = ids[::batch]
            k = len(starts)
            return pl.DataFrame(
                {
                    "ts": t0 + 1 * HOUR + np.arange(k) * (4 * HOUR // max(k, 1)),
                    "employee_id": np.full(k, self.employee),
                    "customer_id": starts,
                    "row_count": np.minimum(batch, ids[-1] + 1 - starts) if k else np.zeros(0, np.int64),
                    "action": ["migrate"] * k,
                    "channel": ["api"] * k,
                    "ticket_id": np.full(k, ticket_ids("migration", self.first_day, self.employee, 0)),
                    "ip": np.full(k, 0x0A000000 + 77),
                    "country": [cfg.time.home_country] * k,
                    "device": laptops(np.full(k, self.employee)).tolist(),
                    "_benign": ["data_migration"] * k,
                }
            )
        if self.pattern == "batch_export":
            s = sd.session(self.employee, r)
            return pl.DataFrame(
                {
                    "ts": [int(sd.work_times(s, 1, r)[0])],
                    "employee_id": [self.employee],
                    "customer_id": pl.Series([None], dtype=pl.Int64),
                    "row_count": [int(scaled_rows(cfg, np.array([self.size]))[0])],
                    "action": ["export"],
                    "channel": ["export"],
                    "ticket_id": [int(ticket_ids("batch_export", day_index, self.employee, 0))],
                    "ip": [s.ip],
                    "country": [s.country],
                    "device": [s.device],
                    "_benign": ["batch_export"],
                }
            )
        if self.pattern == "support_campaign":
            team = np.asarray(self.team, dtype=np.int64)
            per = r.poisson(self.size, len(team))
            sessions = [sd.session(int(e), r) for e in team]  # ten agents: their sessions of the day
            member = np.repeat(np.arange(len(team)), per)
            k = len(member)
            return pl.DataFrame(
                {
                    "ts": t0 + 10 * HOUR + r.integers(0, 7 * HOUR, k),
                    "employee_id": team[member],
                    "customer_id": sd.customers(k, r),
                    "row_count": np.ones(k, dtype=np.int64),
                    "action": ["view"] * k,
                    "channel": ["console"] * k,
                    "ticket_id": np.full(k, ticket_ids("campaign", self.first_day, 0, 0)),
                    "ip": np.array([x.ip for x in sessions], dtype=np.int64)[member],
                    "country": np.array([x.country for x in sessions], dtype=object)[member].tolist(),
                    "device": np.array([x.device for x in sessions], dtype=object)[member].tolist(),
                    "_benign": ["support_campaign"] * k,
                }
            )
        return None


def plan_benign(cfg: SimConfig, employees: pl.DataFrame, credentials: pl.DataFrame) -> list[Benign]:
    """Pick days, people and sizes for the configured counts of each pattern (deterministic)."""
    b = cfg.benign
    r = rng(cfg.seed, "benign-plan")
    days = cfg.time.days
    first = cfg.time.warmup_days
    start = cfg.time.start
    active = employees.filter(pl.col("termination_date").is_null() & (pl.col("hire_date") < start))
    out: list[Benign] = []

    def pick(role: str) -> int | None:
        ids = active.filter(pl.col("role") == role)["employee_id"].sort().to_numpy()
        return int(r.choice(ids)) if len(ids) else None

    def day() -> int:
        return int(r.integers(first, days)) if days > first else 0

    for _ in range(b.data_migrations):
        e = pick("platform_engineer")
        if e is not None:
            d = day()
            size = max(1, int(cfg.world.customers * 0.05))
            out.append(
                Benign(
                    "data_migration",
                    d,
                    min(days, d + 2),
                    employee=e,
                    size=size,
                    lo=int(r.integers(0, max(1, cfg.world.customers - size))),
                )
            )
    for _ in range(b.batch_exports):
        e = pick("analyst")
        if e is not None:
            d = day()
            out.append(Benign("batch_export", d, d + 1, employee=e, size=int(r.integers(100_000, 400_000))))
    for _ in range(b.support_campaigns):
        team = active.filter(pl.col("role") == "support_agent")["employee_id"].sort().to_numpy()
        if len(team):
            d = day()
            members = tuple(int(x) for x in r.choice(team, size=min(len(team), 10), replace=False))
            out.append(Benign("support_campaign", d, d + 1, size=120, team=members))
    for _ in range(b.travellers):
        ids = active["employee_id"].sort().to_numpy()
        if len(ids):
            d = day()
            out.append(
                Benign("travel", d, min(days, d + int(r.integers(3, 8))), employee=int(r.choice(ids)), u=float(r.random()))
            )
    live = credentials.filter((pl.col("kind") == "token-signing") & pl.col("revoked").is_null())["key_id"].sort().to_list()
    for _ in range(b.key_rotations):
        if live:
            d = day()
            out.append(Benign("key_rotation", d, d + 1, key_id=str(r.choice(live))))
    return out
