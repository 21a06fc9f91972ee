"""Generation config: frozen pydantic models, validated once at the edge.

Only what changes the generated dataset lives here; the bench adds its own sections on top
(``breachbench.config``). Dates are calendar days in the company's time zone; ``time.end`` is
exclusive.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulator.units import ROLES
from simulator.zones import _zone_countries, zone_country


class Frozen(BaseModel):
    """Base of every config model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WorldConfig(Frozen):
    """Size and make-up of the synthetic company."""

    customers: int = Field(4000, gt=0, description="customer accounts")
    employees: int = Field(200, gt=0, description="employees and contractors")
    locales: dict[str, float] = Field(
        default_factory=lambda: {"ko_KR": 1.0},
        description="Faker locale -> weight of customers in that locale",
    )
    block_size: int = Field(50_000, gt=0, description="customers per entity-ID block (unit of seeding and of files)")
    signing_keys: int = Field(6, ge=1, description="token-signing keys in production use")
    orphaned_keys: int = Field(2, ge=0, description="signing keys whose owner has left and that were never revoked")
    founded: dt.date = Field(dt.date(2014, 1, 1), description="first possible signup date")
    signup_growth: float = Field(2.0, gt=0, description="signup density grows as t**(g-1) from founded to time.end (1 = uniform)")
    address_book_pmf: list[float] = Field(
        default_factory=lambda: [0.45, 0.30, 0.13, 0.05, 0.03, 0.008, 0.008, 0.008, 0.008, 0.008],
        description="probability of 1, 2, ... entries in a customer's address book (docs/calibration.md §1)",
    )
    order_history_days: int = Field(90, ge=0, description="days of order history before time.start in the orders table")
    orders_per_month: float = Field(
        3.5, ge=0, description="orders a month of a customer who orders (docs/calibration.md §1: 3.5)"
    )
    ordering_share: float = Field(0.73, ge=0, le=1, description="share of customers who order at all (24.7M / 33.7M)")
    roles: dict[str, float] = Field(
        default_factory=lambda: {
            "support_agent": 0.25,
            "logistics": 0.20,
            "analyst": 0.08,
            "backend_engineer": 0.15,
            "platform_engineer": 0.12,
            "administrator": 0.05,
            "other": 0.15,
        },
        description="role mix of employees and contractors",
    )
    attrition: dict[str, float] = Field(
        default_factory=lambda: {"support_agent": 0.35, "default": 0.12},
        description="annual attrition by role ('default' for the others); contractors leave 1.5 times as fast",
    )
    contractor_share: float = Field(0.15, ge=0, le=1, description="share of staff who are contractors")
    role_change_rate: float = Field(0.08, ge=0, description="role changes per person-year")

    @field_validator("locales")
    @classmethod
    def _locales(cls, v: dict[str, float]) -> dict[str, float]:
        from faker.config import AVAILABLE_LOCALES

        if not v:
            raise ValueError("at least one locale is required, e.g. {ko_KR = 1.0}")
        for name, weight in v.items():
            if name not in AVAILABLE_LOCALES:
                raise ValueError(f"unknown locale {name!r}: Faker has e.g. ko_KR, en_US, ja_JP, de_DE")
            if not weight > 0:
                raise ValueError(f"weight of {name!r} must be > 0, got {weight}")
        return v

    @field_validator("address_book_pmf")
    @classmethod
    def _pmf(cls, v: list[float]) -> list[float]:
        if not 1 <= len(v) <= 16 or any(x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("1 to 16 non-negative weights for 1, 2, ... entries, with a positive sum")
        return v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: dict[str, float]) -> dict[str, float]:
        known = ROLES
        for name, w in v.items():
            if name not in known:
                raise ValueError(f"unknown role {name!r}; accepted: {', '.join(known)}")
            if w < 0:
                raise ValueError(f"weight of role {name!r} must be >= 0, got {w}")
        if sum(v.values()) <= 0:
            raise ValueError("role weights must have a positive sum")
        return v

    @field_validator("attrition")
    @classmethod
    def _attrition(cls, v: dict[str, float]) -> dict[str, float]:
        known = (*ROLES, "default")
        for name, rate in v.items():
            if name not in known:
                raise ValueError(f"unknown role {name!r}; accepted: {', '.join(known)}")
            if not 0 < rate < 5:
                raise ValueError(f"annual attrition of {name!r} must be in (0, 5), got {rate}")
        return v

    @model_validator(mode="after")
    def _keys(self) -> WorldConfig:
        if self.orphaned_keys > self.signing_keys:
            raise ValueError(f"orphaned_keys={self.orphaned_keys} must be <= signing_keys={self.signing_keys}")
        return self


def home_country(timezone: str) -> str:
    """The company's home country (ISO 3166 code) given its time zone: the zone's country in the IANA zone.tab.

    Raises:
        ValueError: the zone has no country there (``UTC``, ``Etc/GMT-9``, an old alias), or no zone.tab was found.
    """
    if not _zone_countries():
        raise ValueError(
            "the time zone database has no zone.tab (neither in zoneinfo.TZPATH nor in the tzdata package); "
            "time.timezone sets the home country through it: install tzdata (pip install tzdata)"
        )
    country = zone_country(timezone)
    if country is None:
        raise ValueError(
            f"time zone {timezone!r} has no country in the IANA zone.tab; time.timezone also sets the home country "
            "(the country of customers' and staff's domestic rows): use a country's zone such as 'Asia/Seoul'"
        )
    return country


class TimeConfig(Frozen):
    """The simulated span and its buckets."""

    start: dt.date = Field(dt.date(2025, 4, 1), description="first day (company time zone)")
    end: dt.date = Field(dt.date(2025, 4, 29), description="day after the last day (exclusive)")
    timezone: str = Field("Asia/Seoul", description="company time zone; buckets are its calendar days")
    warmup_days: int = Field(7, ge=1, description="days detectors may fit on before scoring starts")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as 'Asia/Seoul'") from None
        home_country(v)
        return v

    @model_validator(mode="after")
    def _span(self) -> TimeConfig:
        if self.end <= self.start:
            raise ValueError(f"end={self.end} must be after start={self.start}")
        days = (self.end - self.start).days
        if self.warmup_days >= days:
            raise ValueError(f"warmup_days={self.warmup_days} must be smaller than the span ({days} days)")
        return self

    @property
    def days(self) -> int:
        """Number of buckets in the span."""
        return (self.end - self.start).days

    @property
    def home_country(self) -> str:
        """The company's home country (ISO 3166 code), the country of ``timezone`` in the IANA zone.tab:
        the ``country`` of domestic rows (customers at home, staff at the office or on the VPN)."""
        return home_country(self.timezone)


class TrafficConfig(Frozen):
    """Normal customer behaviour (defaults from docs/calibration.md)."""

    daily_active_fraction: float = Field(0.47, gt=0, le=1, description="share of accounts active on an average day")
    pages_per_session: float = Field(6.0, ge=1, description="mean page calls per session")
    foreign_share: float = Field(0.005, ge=0, le=1, description="share of sessions from abroad")
    mobile_share: float = Field(0.55, ge=0, le=1, description="share of sessions on a mobile carrier network")
    habit_share: float = Field(
        0.4,
        ge=0,
        le=1,
        description="share of a customer's sessions at their own habitual hour (drawn from the same hourly profile)",
    )
    sale_days: list[dt.date] = Field(default_factory=list, description="sale events: days with more traffic")
    sale_multiplier: float = Field(
        1.6, ge=1, description="traffic on a sale day relative to an ordinary one (docs/calibration.md §2: 1.6)"
    )


class BenignConfig(Frozen):
    """How many hard negatives (benign but odd activity) to plant; each is tagged in truth."""

    data_migrations: int = Field(1, ge=0, description="jobs reading a sequential block of 5% of customers over two days")
    batch_exports: int = Field(2, ge=0, description="analyst exports far larger than usual")
    support_campaigns: int = Field(1, ge=0, description="days when ten support agents open ~120 extra records each")
    travellers: int = Field(2, ge=0, description="employees logging in from abroad for 3-7 days")
    key_rotations: int = Field(1, ge=0, description="scheduled signing-key rotations")


class LogsConfig(Frozen):
    """Imperfect collection: rates of missing, duplicated and late rows in every stream."""

    missing_rate: float = Field(0.001, ge=0, le=0.5, description="share of rows lost")
    duplicate_rate: float = Field(0.001, ge=0, le=0.5, description="share of rows delivered twice (same event_id)")
    late_rate: float = Field(0.001, ge=0, le=0.5, description="share of rows delivered in the next bucket's partition")


class ScenarioSpec(Frozen):
    """One scenario to inject: its versioned id and its knobs (validated by the scenario)."""

    id: str = Field(description="registered scenario id (see `breachbench scenarios list`) or 'module:attr'")
    knobs: dict[str, Any] = Field(default_factory=dict)
    count: int = Field(1, ge=1, le=10_000, description="incidents of this scenario (prevalence), each with its own actors")
    label: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        description="name in reports (default: the id); tells apart entries of one scenario with different knobs",
    )


class SimConfig(Frozen):
    """Everything that determines a generated dataset."""

    seed: int = Field(0, ge=0, lt=2**63, description="root seed")
    secret: str = Field(
        "",
        pattern=r"^([0-9a-f]{64})?$",
        description=(
            "64 hex digits mixed into every random stream with the seed, so that no one without them can generate "
            "the dataset (and its truth) again from the config; empty: the seed alone (public). `breachbench run` "
            "fills it from OUT/secret unless suite.seal_seeds = false"
        ),
    )
    world: WorldConfig = Field(default_factory=WorldConfig)
    time: TimeConfig = Field(default_factory=TimeConfig)
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    benign: BenignConfig = Field(default_factory=BenignConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    scenarios: list[ScenarioSpec] = Field(default_factory=list)

    @property
    def root(self) -> int:
        """The root of every random stream: the seed, with the secret above its 64 bits when there is one."""
        return self.seed | (int(self.secret, 16) << 64) if self.secret else self.seed
