"""Scoring alerts against truth (the evaluation protocol in docs/metrics.md).

Alert unit: (bucket, entity_kind, entity_id). Each entity an incident's delivered events
involve has a role (:func:`breachbench.dataset.unit_roles`): ``actor`` (the insider's account,
the credentials and tokens they use, addresses that nobody but the accounts they operate uses, outside
the company's office and VPN ranges), ``victim`` (customers read) or ``shared`` (infrastructure other
people use; never positive). Only actor units detect:
analysts read the top ``k`` units of each bucket (ties broken by entity kind, then id), and an
incident is detected at the end of the bucket of its first actor unit within budget. Every
unit read within budget that is not an actor unit is a false alert (victims included: they are
counted apart, as victims flagged within budget).

Harm: each exposure row (incident, customer, kind) weighs ``harm[kind]`` of the cost profile;
it counts as exposed before detection when its first read is before the detection moment,
except ``targeted`` rows (one person read again and again on purpose), whose harm accrues per
read. ``harm_perfect`` is what a detector that alerts in the incident's first detectable bucket
(the first scored bucket with an actor unit) cannot prevent.

Operational score, per cost profile: cost = harm before detection + ``false_alert`` x false
alerts read; ``100 * (cost_null - cost) / (cost_null - cost_perfect)``: 0 for null, 100 for a
perfect detector, below 0 when false alerts cost more than the harm prevented.

Detection score (the headline, see :func:`detection_score`): per scenario, the raw score is
the mean of the share of incidents caught, timeliness and exposure prevented; it counts by how
far it lies above the top of the scenario's chance line (:func:`above_chance`); the headline is
the mean over scenarios. A dataset scored alone (:func:`score_alerts`) reports the raw score.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from breachbench.dataset import Dataset
from detectors.contract import validate_alerts
from simulator.errors import BreachBenchError
from simulator.schema import EXPOSURE_KINDS, ExposureKind

KEYS = ["bucket", "entity_kind", "entity_id"]

#: Exposure kinds whose harm accrues with every read rather than at the first one.
PER_READ_KINDS = frozenset({ExposureKind.TARGETED.value})


class CostProfileError(BreachBenchError, ValueError):
    """A cost profile file that does not weigh every exposure kind or has no false-alert cost."""


@functools.cache
def _profiles_text() -> str:
    return resources.files("breachbench").joinpath("data/cost_profiles.toml").read_text()


@functools.cache
def _cost_profiles() -> dict[str, Any]:
    data = tomllib.loads(_profiles_text())
    base = data.get("harm", {})
    for name, prof in data.get("profiles", {}).items():
        if "false_alert" not in prof:
            raise CostProfileError(f"cost_profiles.toml: profile {name!r} has no false_alert cost")
        harm = {**base, **prof.get("harm", {})}
        missing = [k for k in EXPOSURE_KINDS if k not in harm]
        if missing:
            raise CostProfileError(f"cost_profiles.toml: profile {name!r} gives no harm weight for {', '.join(missing)}")
        prof["harm"] = {k: float(v) for k, v in harm.items()}
    return data


def cost_profiles() -> dict[str, Any]:
    """The versioned cost profiles shipped with the package, each with its full ``harm`` table.

    Read and checked once per process; callers get a fresh copy they may change.
    """
    import copy

    return copy.deepcopy(_cost_profiles())


def false_alert_cost(profile: str) -> float:
    """Harm units one false alert costs under ``profile``."""
    return float(_cost_profiles()["profiles"][profile]["false_alert"])


def harm_weights(profile: str) -> dict[str, float]:
    """Harm per exposure row of each kind under ``profile`` (per read for :data:`PER_READ_KINDS`)."""
    return dict(_cost_profiles()["profiles"][profile]["harm"])


def profile_names() -> list[str]:
    """Names of the shipped cost profiles."""
    return list(_cost_profiles()["profiles"])


def top_k(alerts: pl.DataFrame, k: int) -> pl.DataFrame:
    """The ``k`` highest-scored units of each bucket (ties: entity kind, then id)."""
    return (
        alerts.sort(["bucket", "score", "entity_kind", "entity_id"], descending=[False, True, False, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("bucket"))
        .filter(pl.col("rank") <= k)
    )


def average_precision(scores: np.ndarray, labels: np.ndarray, n_positive: int) -> float:
    """Average precision over a ranking, with unretrieved positives counted as misses.

    Tied scores enter together (as scikit-learn's step-wise AP). ``n_positive`` is every
    positive unit, retrieved or not, so emitting nothing scores 0.
    """
    if n_positive == 0 or len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    n = last + 1
    precision = tp / n
    recall = tp / n_positive
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def chance_average_precision(n_units: int, n_positive: int, n_retrievable: int) -> float:
    """Expected average precision of a uniformly random ranking of ``n_units`` units.

    ``n_retrievable`` of the ``n_positive`` positives are among the units (the others can never
    be ranked). With P retrievable positives at random positions among N units,
    E[AP] = (P / n_positive) (H_N + (P - 1)(N - H_N) / (N - 1)) / N, H_N the harmonic number.
    """
    n, p = int(n_units), int(n_retrievable)
    if n_positive == 0 or n == 0 or p == 0:
        return 0.0
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    inner = (h + ((p - 1) * (n - h) / (n - 1) if n > 1 else 0.0)) / n
    return p / n_positive * inner


@dataclass(frozen=True)
class IncidentFrame:
    """What scoring needs of each incident, as arrays in incident order.

    ``cum_harm[p][i, b]``: harm of incident ``i`` under profile ``p`` exposed before the end of
    scored bucket ``b``; ``harm_total[p][i]``: all of it. ``first``/``last``: index of the first
    and last scored bucket with an actor unit of the incident (-1 when it has none: the incident
    cannot be detected and is left out of the detection score).
    """

    ids: np.ndarray
    scenario: list[str]
    start_bucket: list[dt.date | None]
    first: np.ndarray
    last: np.ndarray
    cum_harm: dict[str, np.ndarray]
    harm_total: dict[str, np.ndarray]
    cum_records: np.ndarray
    records_total: np.ndarray

    @property
    def detectable(self) -> np.ndarray:
        """Incidents with at least one actor unit in a scored bucket."""
        return self.first >= 0

    def harm_before(self, profile: str, det_idx: np.ndarray) -> np.ndarray:
        """Harm before detection for detection bucket indices ``det_idx`` (-1: missed), any shape ``(..., n)``."""
        cum, total = self.cum_harm[profile], self.harm_total[profile]
        n_b = cum.shape[1]
        idx = np.clip(det_idx, 0, max(n_b - 1, 0))
        rows = np.broadcast_to(np.arange(len(self.ids)), det_idx.shape)
        got = cum[rows, idx] if n_b else np.zeros(det_idx.shape)
        return np.where(det_idx >= 0, got, total)

    def harm_perfect(self, profile: str) -> np.ndarray:
        """Harm exposed before the end of each incident's first detectable bucket (all of it if undetectable)."""
        return self.harm_before(profile, self.first)


@dataclass
class Truth:
    """Everything scoring needs from a dataset, computed once and reused for every detector."""

    scored: list[dt.date]
    timezone: str
    positives: pl.DataFrame  # bucket, entity_kind, entity_id, incident_id, role (scored buckets only)
    incidents: pl.DataFrame
    exposure: pl.DataFrame  # incident_id, customer_id, first_ts: each customer once per incident
    universe: int
    exposure_kinds: pl.DataFrame | None = None  # the truth table: one row per (incident, customer, kind)
    universe_units: pl.DataFrame | None = None  # bucket, entity_kind, entity_id (scored buckets only)
    reads: pl.DataFrame | None = None  # incident_id, customer_id, ts of every delivered malicious read
    unit_classes: pl.DataFrame | None = None  # bucket, entity_kind, entity_id, class (Dataset.unit_classes, scored buckets)

    @classmethod
    def of(cls, ds: Dataset) -> Truth:
        """Load the truth of a dataset, restricted to the scored buckets."""
        scored = ds.scored
        pos = ds.positive_units.filter(pl.col("bucket").is_in(scored))
        uni_units = ds.universe_units.filter(pl.col("bucket").is_in(scored))
        kinds = ds.truth("exposure")
        records = (
            kinds.group_by("incident_id", "customer_id")
            .agg(pl.col("first_ts").min(), pl.col("reads").sum())
            .sort("incident_id", "customer_id")
        )
        classes = ds.unit_classes.filter(pl.col("bucket").is_in(scored))
        return cls(
            scored,
            ds.timezone,
            pos,
            ds.truth("incidents"),
            records,
            uni_units.height,
            kinds,
            uni_units,
            ds.malicious_reads,
            classes,
        )

    def bucket_end(self, day: dt.date) -> dt.datetime:
        """UTC instant at which a bucket is over (when its alerts reach an analyst)."""
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(self.timezone)).astimezone(dt.UTC)

    def local_day(self, ts: dt.datetime) -> dt.date:
        """The bucket of an instant."""
        return ts.astimezone(ZoneInfo(self.timezone)).date()

    @functools.cached_property
    def actors(self) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id, incident_id) of the actor units: the only true positives."""
        return self.positives.filter(pl.col("role") == "actor").select(*KEYS, "incident_id")

    @functools.cached_property
    def pool(self) -> pl.DataFrame:
        """(entity_kind, entity_id) of every employee an incident's actors were drawn from (the truth's ``pool``: the
        scenario's picking rule applied to the public world tables), sorted; empty where the incidents name none."""
        empty = pl.DataFrame(schema={"entity_kind": pl.String, "entity_id": pl.String})
        if "pool" not in self.incidents.columns:
            return empty
        ids = self.incidents.select(pl.col("pool").explode().drop_nulls().unique().sort())["pool"]
        return pl.DataFrame({"entity_kind": "employee", "entity_id": ids.cast(pl.String)}) if len(ids) else empty

    @functools.cached_property
    def starts(self) -> dict[int, dt.datetime | None]:
        """incident -> the instant it starts."""
        return dict(zip(self.incidents["incident_id"].to_list(), self.incidents["start"].to_list(), strict=True))

    @functools.cached_property
    def victims(self) -> pl.DataFrame:
        """(bucket, entity_kind, entity_id, incident_id) of the victim units."""
        return self.positives.filter(pl.col("role") == "victim").select(*KEYS, "incident_id")

    @functools.cached_property
    def actor_units(self) -> pl.DataFrame:
        """The distinct (bucket, entity_kind, entity_id) actor units."""
        return self.actors.select(KEYS).unique()

    @functools.cached_property
    def victim_units(self) -> pl.DataFrame:
        """The distinct (bucket, entity_kind, entity_id) victim units."""
        return self.victims.select(KEYS).unique()

    @functools.cached_property
    def victims_total(self) -> dict[int, int]:
        """incident -> its victim units."""
        return dict(self.victims.group_by("incident_id").len().iter_rows())

    @functools.cached_property
    def retrievable_actors(self) -> int:
        """How many actor units are in the universe a detector ranks (all of them without a universe)."""
        return _retrievable(self, self.actor_units)

    @functools.cached_property
    def blind_auprc(self) -> tuple[str, float]:
        """The blind ranking whose expected AUPRC is highest here, and that AUPRC (:func:`breachbench.chance.blind_auprc`)."""
        from breachbench.chance import blind_auprc

        return blind_auprc(self)

    def _day_index(self, col: str) -> pl.Expr:
        """Scored-bucket index of a UTC timestamp column: -1 before the span, len(scored) after it."""
        first = self.scored[0] if self.scored else dt.date(1970, 1, 1)
        day = pl.col(col).dt.convert_time_zone(self.timezone).dt.date()
        return (day - pl.lit(first)).dt.total_days().clip(-1, len(self.scored)).cast(pl.Int64)

    def _placed_harm(self) -> pl.DataFrame:
        """Each exposure row's harm units (incident_id, kind, idx, units), placed on the scored-bucket index where it happens."""
        ex = (
            self.exposure_kinds
            if self.exposure_kinds is not None
            else self.exposure.with_columns(kind=pl.lit(ExposureKind.RECORD.value))
        )
        if "reads" not in ex.columns:
            ex = ex.with_columns(reads=pl.lit(1, pl.Int32))
        ex = ex.with_columns(idx=self._day_index("first_ts"))
        once = ex.filter(~pl.col("kind").is_in(list(PER_READ_KINDS))).select("incident_id", "kind", "idx", units=pl.lit(1.0))
        per_read = ex.filter(pl.col("kind").is_in(list(PER_READ_KINDS)))
        if not per_read.height:
            return once
        # harm of a per-read row spread over its delivered reads (its truth count of reads);
        # a row with no delivered read keeps all of it at its first read
        reads = (
            self.reads
            if self.reads is not None
            else pl.DataFrame(schema={"incident_id": pl.Int32, "customer_id": pl.Int64, "ts": pl.Datetime("us", "UTC")})
        )
        seen = reads.with_columns(idx=self._day_index("ts")).join(
            per_read.select("incident_id", "customer_id", "kind", "reads"), on=["incident_id", "customer_id"], how="inner"
        )
        n_seen = seen.group_by("incident_id", "customer_id", "kind").agg(pl.len().alias("n"))
        seen = seen.join(n_seen, on=["incident_id", "customer_id", "kind"]).select(
            "incident_id", "kind", "idx", units=pl.col("reads").cast(pl.Float64) / pl.col("n")
        )
        unseen = per_read.join(n_seen, on=["incident_id", "customer_id", "kind"], how="anti").select(
            "incident_id", "kind", "idx", units=pl.col("reads").cast(pl.Float64)
        )
        return pl.concat([once, seen, unseen])

    @functools.cached_property
    def frame(self) -> IncidentFrame:
        """Per-incident arrays (harm curves per profile, detectable window) in incident order."""
        inc = self.incidents.sort("incident_id")
        ids = inc["incident_id"].to_numpy()
        n, nb = len(ids), len(self.scored)
        pos_of = {int(i): j for j, i in enumerate(ids)}
        day0 = {d: j for j, d in enumerate(self.scored)}
        first, last = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        span = self.actors.group_by("incident_id").agg(pl.col("bucket").min().alias("lo"), pl.col("bucket").max().alias("hi"))
        for iid, lo, hi in span.iter_rows():
            if int(iid) in pos_of:
                first[pos_of[int(iid)]], last[pos_of[int(iid)]] = day0[lo], day0[hi]
        placed = self._placed_harm().filter(pl.col("incident_id").is_in(ids.tolist()))
        row = np.array([pos_of[int(i)] for i in placed["incident_id"].to_list()], dtype=np.int64)
        idx = placed["idx"].to_numpy().astype(np.int64) if placed.height else np.zeros(0, np.int64)
        kinds = placed["kind"].to_list()
        units = placed["units"].to_numpy() if placed.height else np.zeros(0)

        def curve(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            by_day = np.zeros((n, nb + 2))  # column 0: before the span; nb + 1: after it
            np.add.at(by_day, (row, idx + 1), weight)
            cum = np.cumsum(by_day, axis=1)
            return cum[:, 1 : nb + 1], cum[:, -1]

        cum_harm, harm_total = {}, {}
        for name in profile_names():
            w = harm_weights(name)
            cum_harm[name], harm_total[name] = curve(units * np.array([w.get(k, 1.0) for k in kinds]))
        rec = self.exposure.with_columns(idx=self._day_index("first_ts")).filter(pl.col("incident_id").is_in(ids.tolist()))
        rrow = np.array([pos_of[int(i)] for i in rec["incident_id"].to_list()], dtype=np.int64)
        by_day = np.zeros((n, nb + 2))
        np.add.at(by_day, (rrow, rec["idx"].to_numpy().astype(np.int64) + 1 if rec.height else np.zeros(0, np.int64)), 1.0)
        cum = np.cumsum(by_day, axis=1)
        starts = [None if s is None else self.local_day(s) for s in inc["start"].to_list()]
        return IncidentFrame(
            ids, inc["scenario"].to_list(), starts, first, last, cum_harm, harm_total, cum[:, 1 : nb + 1], cum[:, -1]
        )


def op_score(
    exposed_before: float, exposed_total: float, exposed_perfect: float, false_alerts: float, false_alert_cost: float
) -> float:
    """100 * (cost of null - cost) / (cost of null - cost of perfect); see the module docstring."""
    cost = exposed_before + false_alert_cost * false_alerts
    null, perfect = float(exposed_total), float(exposed_perfect)
    if null > perfect:
        return 100.0 * (null - cost) / (null - perfect)
    return 100.0 if cost <= perfect else 0.0


def timeliness(det_idx: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """1 - (buckets from the first detectable bucket to detection) / (detectable window), 0 if missed.

    The window is the incident's span of scored buckets with an actor unit (first to last,
    inclusive), so an alert in the first such bucket scores 1 and one in the last 1 / window.
    """
    window = np.maximum(last - first + 1, 1)
    val = 1.0 - (det_idx - first) / window
    return np.where((det_idx >= 0) & (first >= 0), np.clip(val, 0.0, 1.0), 0.0)


@dataclass(frozen=True)
class DetectionParts:
    """Sums over detectable incidents from which a scenario's detection score is computed.

    Pool several datasets of a scenario by adding them (:meth:`plus`).
    """

    incidents: float = 0.0  # detectable incidents
    caught: float = 0.0
    timeliness: float = 0.0  # sum over incidents
    preventable: float = 0.0  # harm total - harm perfect
    prevented: float = 0.0  # harm total - harm before detection

    def plus(self, other: DetectionParts) -> DetectionParts:
        """Componentwise sum."""
        return DetectionParts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        """(incidents, caught, timeliness, preventable, prevented)."""
        return (self.incidents, self.caught, self.timeliness, self.preventable, self.prevented)

    def components(self) -> dict[str, float | None]:
        """Caught share, mean timeliness and exposure prevented (normalised so perfect is 1)."""
        if self.incidents <= 0:
            return {"caught": None, "timeliness": None, "prevented": None}
        prevented = min(max(self.prevented / self.preventable, 0.0), 1.0) if self.preventable > 0 else None
        return {"caught": self.caught / self.incidents, "timeliness": self.timeliness / self.incidents, "prevented": prevented}

    def score(self) -> float | None:
        """100 x the mean of the available components; None without detectable incidents."""
        vals = [v for v in self.components().values() if v is not None]
        return 100.0 * float(np.mean(vals)) if vals else None


def above_chance(score: Any, bar: float | None) -> Any:
    """A raw detection score (0-100; a float or a numpy array) as its share of the way from chance's bar to perfect.

    ``100 * max(0, score - bar) / (100 - bar)``, with ``bar`` the top of the scenario's chance
    line (the score that 97.5% of rankings that know nothing stay under,
    :func:`breachbench.chance.chance_bar`). Blind luck earns 0 but in one draw of 40, a perfect
    detector 100. Where chance is already perfect (a blind ranking, say every token-signing key of a
    world with no more of them than the budget, catches every incident at once in at least one draw
    of 40) no score can stand above it, a perfect one neither: the scenario has no score above
    chance at that budget (None; NaN in an array) and the headline leaves it out. ``bar`` None (no
    chance line) leaves the score as it is.
    """
    if score is None or bar is None:
        return score
    c = min(max(float(bar), 0.0), 100.0)
    if 100.0 - c < 1e-9:
        return np.full(np.shape(score), np.nan) if isinstance(score, np.ndarray) else None
    out = 100.0 * np.maximum(np.asarray(score, dtype=np.float64) - c, 0.0) / (100.0 - c)
    return out if isinstance(score, np.ndarray) else float(out)


def detection_score(per_scenario: dict[str, DetectionParts], chance: dict[str, float] | None = None) -> float | None:
    """The headline: the equal-weight mean over scenarios of each scenario's score above chance (0-100).

    ``chance`` maps a scenario to the top of its chance line (:func:`above_chance`); a scenario
    without one counts with its raw score, one whose chance line is perfect (no score above chance)
    not at all.
    """
    chance = chance or {}
    vals = [
        v for k, p in per_scenario.items() if (s := p.score()) is not None and (v := above_chance(s, chance.get(k))) is not None
    ]
    return float(np.mean(vals)) if vals else None


@dataclass(frozen=True)
class _Reads:
    """What a budget's reads found, per incident of the truth frame (index ``j`` of ``truth.frame.ids``)."""

    false_reads: int  # alert units read that are not an actor of any incident
    det_idx: np.ndarray  # scored-bucket index of the first true read, -1 when never
    false_days: np.ndarray  # scored-bucket index of each false read
    victims_read: dict[int, int]  # incident -> victim units read
    victims_total: dict[int, int]  # incident -> victim units
    rec_before: np.ndarray  # records exposed before detection
    rec_perfect: np.ndarray  # records exposed before the first detectable bucket
    harm: dict[str, np.ndarray]  # profile -> harm before detection


@dataclass(frozen=True)
class _Ranked:
    """The labelled alerts ranked once, at the largest budget, as arrays that each budget slices by rank.

    A budget ``k`` reads the units of rank at most ``k`` in their bucket: the rows of ``top_k(labelled, k)``.
    """

    false_rank: np.ndarray  # rank of each false unit (not an actor of any incident)
    false_day: np.ndarray  # and its scored-bucket index
    actor_rank: np.ndarray  # one entry per (actor unit, incident it is an actor of): the unit's rank
    actor_inc: np.ndarray  # the incident
    actor_row: np.ndarray  # its row in the truth frame (-1: not one of the frame's incidents)
    actor_day: np.ndarray  # the unit's scored-bucket index
    victim_rank: np.ndarray  # one entry per (victim unit, incident): the unit's rank
    victim_inc: np.ndarray  # the incident

    @classmethod
    def of(cls, labelled: pl.DataFrame, truth: Truth, max_k: int) -> _Ranked:
        days = pl.DataFrame(
            {"bucket": truth.scored, "day": range(len(truth.scored))}, schema={"bucket": pl.Date, "day": pl.Int64}
        )
        ranked = top_k(labelled, max_k).join(days, on="bucket", how="inner")  # the alerts are in scored buckets already
        false = ranked.filter(~pl.col("hit"))
        true = ranked.filter(pl.col("hit")).join(truth.actors, on=KEYS, how="inner")
        vic = ranked.join(truth.victims, on=KEYS, how="inner")

        def arr(frame: pl.DataFrame, col: str) -> np.ndarray:
            return frame[col].cast(pl.Int64).to_numpy()

        ids, inc = truth.frame.ids.astype(np.int64), arr(true, "incident_id")
        row = np.searchsorted(ids, inc)  # the frame's incidents are sorted by id
        known = row < len(ids)
        known[known] = ids[row[known]] == inc[known]
        return cls(
            arr(false, "rank"),
            arr(false, "day"),
            arr(true, "rank"),
            inc,
            np.where(known, row, -1),
            arr(true, "day"),
            arr(vic, "rank"),
            arr(vic, "incident_id"),
        )


def _reads(rk: _Ranked, truth: Truth, k: int) -> _Reads:
    """The ``k`` alert units read per bucket, set against the truth: first detections, false reads, victims, exposure."""
    fr = truth.frame
    n = len(fr.ids)
    seen = (rk.actor_rank <= k) & (rk.actor_row >= 0)
    never = np.iinfo(np.int64).max
    first = np.full(n, never, dtype=np.int64)
    np.minimum.at(first, rk.actor_row[seen], rk.actor_day[seen])
    det_idx = np.where(first == never, -1, first)
    false_days = rk.false_day[rk.false_rank <= k]
    vic, count = np.unique(rk.victim_inc[rk.victim_rank <= k], return_counts=True)
    victims_read = {int(i): int(c) for i, c in zip(vic, count, strict=True)}
    harm = {name: fr.harm_before(name, det_idx) for name in profile_names()}
    n_buckets = len(truth.scored)
    rec_before = np.where(
        det_idx >= 0, fr.cum_records[np.arange(n), np.clip(det_idx, 0, None)] if n_buckets else 0, fr.records_total
    )
    rec_perfect = np.where(
        fr.first >= 0, fr.cum_records[np.arange(n), np.clip(fr.first, 0, None)] if n_buckets else 0, fr.records_total
    )
    return _Reads(len(false_days), det_idx, false_days, victims_read, truth.victims_total, rec_before, rec_perfect, harm)


def _at_budget(rk: _Ranked, truth: Truth, k: int, profile: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Budget-dependent metrics at ``k``: detection per incident, harm, false alerts, cost."""
    rd = _reads(rk, truth, k)
    per_incident = _incident_metrics(rd, truth, profile)
    return _budget_metrics(rd, truth, k, profile, per_incident), per_incident


def _incident_metrics(rd: _Reads, truth: Truth, profile: str) -> list[dict[str, Any]]:
    """One dict per incident: detected when and how early, records and harm before detection, false alerts, victims."""
    fr, det_idx = truth.frame, rd.det_idx
    tl = timeliness(det_idx, fr.first, fr.last)
    per_incident: list[dict[str, Any]] = []
    for j, iid in enumerate(fr.ids):
        detected = bool(det_idx[j] >= 0)
        det_bucket = truth.scored[det_idx[j]] if detected else None
        start = fr.start_bucket[j]
        inc_start = truth.starts[int(iid)]
        per_incident.append(
            {
                "incident_id": int(iid),
                "scenario": fr.scenario[j],
                "detected": detected,
                "detectable": bool(fr.first[j] >= 0),
                "detected_bucket": det_bucket.isoformat() if det_bucket else None,
                "ttd_buckets": (det_bucket - start).days if det_bucket is not None and start else None,
                "ttd_hours": (truth.bucket_end(det_bucket) - inc_start).total_seconds() / 3600
                if det_bucket is not None and inc_start
                else None,
                "timeliness": float(tl[j]),
                "window_buckets": int(fr.last[j] - fr.first[j] + 1) if fr.first[j] >= 0 else 0,
                "exposed_before_detection": int(rd.rec_before[j]),
                "exposed_total": int(fr.records_total[j]),
                "exposed_perfect": int(rd.rec_perfect[j]),
                "harm_before_detection": float(rd.harm[profile][j]),
                "harm_total": float(fr.harm_total[profile][j]),
                "harm_perfect": float(fr.harm_perfect(profile)[j]),
                "false_alerts_before_detection": int((rd.false_days <= det_idx[j]).sum()) if detected else rd.false_reads,
                "victims_flagged": int(rd.victims_read.get(int(iid), 0)),
                "victim_units": int(rd.victims_total.get(int(iid), 0)),
            }
        )
    return per_incident


def _budget_metrics(rd: _Reads, truth: Truth, k: int, profile: str, per_incident: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of budget ``k`` over every incident: detection, exposure, harm, false alerts, op score per profile."""
    fr, harm, false_reads, n_buckets = truth.frame, rd.harm, rd.false_reads, len(truth.scored)
    n_inc = len(per_incident)
    ttds = [math.inf if p["ttd_buckets"] is None else p["ttd_buckets"] for p in per_incident]
    med = float(np.median(ttds)) if ttds else None
    parts = incident_parts(per_incident)
    op = {
        name: op_score(
            float(harm[name].sum()),
            float(fr.harm_total[name].sum()),
            float(fr.harm_perfect(name).sum()),
            false_reads,
            false_alert_cost(name),
        )
        for name in profile_names()
    }
    v_total = sum(rd.victims_total.values())
    return {
        "budget": k,
        "recall_at_k": (sum(p["detected"] for p in per_incident) / n_inc) if n_inc else None,
        "ttd_median_buckets": None if med is None or math.isinf(med) else med,
        "timeliness": parts.components()["timeliness"],
        "detection_score": parts.score(),
        "exposed_before_detection": int(rd.rec_before.sum()),
        "exposed_total": int(fr.records_total.sum()),
        "exposure_prevented": parts.components()["prevented"],
        "harm_before_detection": float(harm[profile].sum()),
        "harm_total": float(fr.harm_total[profile].sum()),
        "harm_perfect": float(fr.harm_perfect(profile).sum()),
        "false_alerts_read": false_reads,
        "false_alerts_per_bucket": false_reads / n_buckets if n_buckets else 0.0,
        "alerts_before_first_true": (
            float(np.mean([p["false_alerts_before_detection"] for p in per_incident])) if n_inc else None
        ),
        "victims_flagged": sum(rd.victims_read.values()),
        "victims_flagged_share": sum(rd.victims_read.values()) / v_total if v_total else None,
        "op_score": op[profile],
        "op_score_profiles": op,
        "harm_by_profile": {
            name: [float(harm[name].sum()), float(fr.harm_total[name].sum()), float(fr.harm_perfect(name).sum())]
            for name in profile_names()
        },
    }


def incident_parts(incidents: list[dict[str, Any]]) -> DetectionParts:
    """The :class:`DetectionParts` of per-incident entries (undetectable incidents left out)."""
    inc = [i for i in incidents if i.get("detectable", True)]
    return DetectionParts(
        float(len(inc)),
        float(sum(i["detected"] for i in inc)),
        float(sum(i["timeliness"] for i in inc)),
        float(sum(i["harm_total"] - i["harm_perfect"] for i in inc)),
        float(sum(i["harm_total"] - i["harm_before_detection"] for i in inc)),
    )


def pr_curve(scores: np.ndarray, labels: np.ndarray, n_positive: int, points: int = 200) -> dict[str, list[float]]:
    """Precision and recall at each distinct threshold (at most ``points`` of them kept)."""
    if n_positive == 0 or len(scores) == 0:
        return {"precision": [], "recall": []}
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    precision, recall = tp / (last + 1), tp / n_positive
    keep = np.unique(np.linspace(0, len(last) - 1, min(points, len(last))).astype(int))
    return {"precision": precision[keep].round(6).tolist(), "recall": recall[keep].round(6).tolist()}


def budget_curve(rk: _Ranked, truth: Truth, max_k: int) -> list[float | None]:
    """Incident recall at every budget 1..max_k (``rk`` ranked at ``max_k`` or more)."""
    n_inc = truth.incidents.height
    if n_inc == 0:
        return [None] * max_k
    seen = rk.actor_rank <= max_k
    inc, rank = rk.actor_inc[seen], rk.actor_rank[seen]
    order = np.lexsort((rank, inc))
    inc, rank = inc[order], rank[order]
    ranks = rank[np.r_[True, inc[1:] != inc[:-1]]] if len(inc) else rank  # the smallest budget that finds each incident at all
    return [float((ranks <= k).sum() / n_inc) for k in range(1, max_k + 1)]


def _retrievable(truth: Truth, units: pl.DataFrame) -> int:
    """How many of ``units`` (distinct alert units) are in the universe a detector ranks."""
    if truth.universe_units is None:
        return units.height
    return units.join(truth.universe_units, on=KEYS, how="semi").height


def score_alerts(
    alerts: pl.DataFrame, truth: Truth, budget: int = 10, profile: str = "standard", budgets: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Every metric of one detector's alerts.

    Returns ``overall`` (at ``budget``), ``incidents`` (one entry each, at ``budget``),
    ``by_budget`` (the budget-dependent metrics at each of ``budgets``) and ``curves``
    (precision-recall points and the budget curve of incident recall at k = 1..max budget).
    AUPRC is over actor units (``auprc``) and, separately, over victim units (``auprc_victims``);
    ``chance_auprc`` is the expected AUPRC of a uniformly random ranking of the universe,
    ``chance_auprc_blind`` that of the blind ranking that reaches highest (every unit, one entity
    kind, one public class or the union of the classes holding the actors: ``chance_auprc_kind``,
    :attr:`Truth.blind_auprc`) and ``lift`` = ``auprc`` / ``chance_auprc_blind``.
    """
    if profile not in profile_names():
        raise ValueError(f"unknown cost profile {profile!r}; known: {', '.join(profile_names())}")
    alerts = validate_alerts(alerts, source="alerts").filter(pl.col("bucket").is_in(truth.scored))
    act_units, vic_units = truth.actor_units, truth.victim_units  # computed once per truth
    n_pos, n_vic = act_units.height, vic_units.height
    labelled = (
        alerts.join(act_units.with_columns(hit=pl.lit(True)), on=KEYS, how="left")
        .join(vic_units.with_columns(victim=pl.lit(True)), on=KEYS, how="left")
        .with_columns(pl.col("hit").fill_null(False), pl.col("victim").fill_null(False))
    )
    scores, hits = labelled["score"].to_numpy(), labelled["hit"].to_numpy()
    ap = average_precision(scores, hits, n_pos)
    ap_victims = average_precision(scores, labelled["victim"].to_numpy(), n_vic)
    chance_ap = chance_average_precision(truth.universe, n_pos, truth.retrievable_actors)
    blind_kind, blind_ap = truth.blind_auprc
    prevalence = n_pos / truth.universe if truth.universe else 0.0
    ks = sorted(set(budgets) | {budget})
    ranked = _Ranked.of(labelled, truth, max(ks))  # ranked once: each budget reads the units ranked within it
    main, per_incident = _at_budget(ranked, truth, budget, profile)
    overall = {
        "auprc": ap,
        "auprc_victims": ap_victims,
        "prevalence": prevalence,
        "chance_auprc": chance_ap,
        "chance_auprc_blind": blind_ap,
        "chance_auprc_kind": blind_kind,
        "lift": ap / blind_ap if blind_ap else None,
        **main,
        "cost_profiles_version": _cost_profiles()["version"],
        "alert_units": alerts.height,
        "positive_units": n_pos,
        "victim_units": n_vic,
        "universe_units": truth.universe,
        "scored_buckets": len(truth.scored),
    }
    at = {k: ((main, per_incident) if k == budget else _at_budget(ranked, truth, k, profile)) for k in ks}
    by_budget = {str(k): m | {"parts": list(incident_parts(incs).as_tuple())} for k, (m, incs) in at.items()}
    curves = {"pr": pr_curve(scores, hits, n_pos), "budget": budget_curve(ranked, truth, max(ks))}
    return {"overall": overall, "incidents": per_incident, "by_budget": by_budget, "curves": curves}
