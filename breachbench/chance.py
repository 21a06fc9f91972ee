"""Chance lines: what a ranking that knows nothing scores, per dataset, budget and metric.

A blind ranking is uniform over each bucket's universe (every unit of the bucket's own rows in
``UNIT_STREAMS``, the units the ``random`` detector ranks), over the units of one entity kind
only, or over the units of one public class (:attr:`breachbench.dataset.Dataset.unit_classes`:
an employee's role that day, a key's credential kind). A detector that alerts on ten random
employees a day knows nothing about the attack but does know that staff scenarios have employee
actors, and that alone lifts it above a ranking of every unit; ten random analysts a day, or
every token-signing key (a world has about as many as the budget), lift it further without
reading a row of what anyone did. A scenario's code says which roles it draws its actors from, so the union of the
classes that hold its actors is ranked blind too (:func:`actor_class_unions`). Each scenario's line is the blind ranking
(any unit, one kind, one class or the union) whose line reaches highest (:func:`chance_lines`), so no detection score
counts what knowing a kind or a class earns. A rotating ranking of a kind or class (:data:`ROTATING`) reads each bucket the
units it read least recently, so it works through them all before reading one twice: blind, yet it catches an actor
present every day within as many days as the units take turns (simulated unit by unit, :class:`_Rotation`).
A ranking's top ``k`` is a uniform ``k``-subset of the bucket's units. How many actor and victim units of each incident such a subset
holds follows a multivariate hypergeometric law; each draw picks one subset per scored bucket
(numpy, vectorised over draws) and yields the same sufficient statistics a detector's run
yields: incidents caught, timeliness, harm before detection, false alerts, victims flagged.
Draws of the datasets of a scenario are added draw by draw (independent datasets), so chance
lines pool exactly as the detectors' figures do. AUPRC's chance line is exact in expectation
(:func:`breachbench.scoring.chance_average_precision`) with its spread simulated.
"""

from __future__ import annotations

import itertools
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from breachbench.scoring import (
    KEYS,
    Truth,
    above_chance,
    chance_average_precision,
    false_alert_cost,
    op_score,
    profile_names,
    timeliness,
)
from simulator.schema import ENTITY_KINDS

#: Percentiles of the draws reported as a chance line's spread.
SPREAD = (2.5, 97.5)


@dataclass(frozen=True)
class ChanceDraws:
    """Per-draw sums of one dataset (or a pool of datasets) at one budget.

    Arrays have one value per draw; scalars do not depend on the draw.
    """

    budget: int
    incidents: float  # every incident (recall's denominator)
    detected: np.ndarray  # incidents caught (all incidents)
    parts: tuple[
        float, np.ndarray, np.ndarray, float, np.ndarray
    ]  # DetectionParts fields: detectable, caught, timeliness, preventable, prevented
    harm_before: dict[str, np.ndarray]  # per profile, all incidents
    harm_total: dict[str, float]
    harm_perfect: dict[str, float]
    false_alerts: np.ndarray
    buckets: float
    victims_flagged: np.ndarray
    victims_total: float
    auprc: np.ndarray  # per draw: one dataset's AP, or the mean over pooled datasets
    auprc_expected: float
    auprc_victims: np.ndarray
    datasets: int = 1

    def plus(self, other: ChanceDraws) -> ChanceDraws:
        """Pool two independent sets of datasets draw by draw (AUPRC: mean over datasets)."""
        n = self.datasets + other.datasets

        def mean(a: Any, b: Any) -> Any:
            return (a * self.datasets + b * other.datasets) / n

        return ChanceDraws(
            self.budget,
            self.incidents + other.incidents,
            self.detected + other.detected,
            (
                self.parts[0] + other.parts[0],
                self.parts[1] + other.parts[1],
                self.parts[2] + other.parts[2],
                self.parts[3] + other.parts[3],
                self.parts[4] + other.parts[4],
            ),
            {p: self.harm_before[p] + other.harm_before[p] for p in self.harm_before},
            {p: self.harm_total[p] + other.harm_total[p] for p in self.harm_total},
            {p: self.harm_perfect[p] + other.harm_perfect[p] for p in self.harm_perfect},
            self.false_alerts + other.false_alerts,
            self.buckets + other.buckets,
            self.victims_flagged + other.victims_flagged,
            self.victims_total + other.victims_total,
            mean(self.auprc, other.auprc),
            mean(self.auprc_expected, other.auprc_expected),
            mean(self.auprc_victims, other.auprc_victims),
            n,
        )

    def detection_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per draw: caught share, timeliness, exposure prevented and the scenario's detection score (0-100); NaN where undefined."""
        inc, caught, tl, preventable, prevented = self.parts
        with np.errstate(divide="ignore", invalid="ignore"):
            c = caught / inc if inc > 0 else np.full_like(caught, np.nan)
            t = tl / inc if inc > 0 else np.full_like(caught, np.nan)
            p = np.clip(prevented / preventable, 0.0, 1.0) if preventable > 0 and inc > 0 else np.full_like(caught, np.nan)
        score = 100.0 * np.nanmean(np.vstack([c, t, p]), axis=0) if inc > 0 else np.full_like(caught, np.nan)
        return c, t, p, score

    def metrics(self) -> dict[str, np.ndarray]:
        """Per draw: every metric with a chance line."""
        c, t, p, score = self.detection_parts()
        out = {
            "detection_score": score,
            "caught": c,
            "timeliness": t,
            "exposure_prevented": p,
            "recall_at_k": self.detected / self.incidents if self.incidents else np.full_like(c, np.nan),
            "false_alerts_per_bucket": self.false_alerts / self.buckets if self.buckets else np.zeros_like(c),
            "victims_flagged_share": self.victims_flagged / self.victims_total if self.victims_total else np.full_like(c, np.nan),
            "auprc": self.auprc,
            "auprc_victims": self.auprc_victims,
        }
        for name in self.harm_before:
            ops = _op_vec(
                self.harm_before[name], self.harm_total[name], self.harm_perfect[name], self.false_alerts, false_alert_cost(name)
            )
            out[f"op_score:{name}"] = ops
        return out


def _op_vec(before: np.ndarray, total: float, perfect: float, false: np.ndarray, cost: float) -> np.ndarray:
    if total > perfect:
        return 100.0 * (total - (before + cost * false)) / (total - perfect)
    return np.array([op_score(b, total, perfect, f, cost) for b, f in zip(before, false, strict=True)])


def summary(values: np.ndarray) -> dict[str, float | None]:
    """Mean and :data:`SPREAD` percentiles of draws (None when undefined)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return {"mean": None, "lo": None, "hi": None}
    lo, hi = np.percentile(v, SPREAD)
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi)}


def _groups(units: pl.DataFrame) -> pl.DataFrame:
    """(bucket, members: list of incident ids, n): units of a bucket grouped by the incidents they belong to."""
    if units.height == 0:
        return pl.DataFrame(schema={"bucket": pl.Date, "members": pl.List(pl.Int64), "n": pl.Int64})
    per_unit = units.group_by(KEYS).agg(pl.col("incident_id").cast(pl.Int64).unique().sort().alias("members"))
    groups = per_unit.group_by("bucket", "members").agg(pl.len().cast(pl.Int64).alias("n"))
    # a group-by's output order is not fixed, and the draws are assigned to groups in frame order: sort by (bucket, members)
    key = pl.col("members").list.eval(pl.element().cast(pl.String).str.zfill(12)).list.join(",")
    return groups.with_columns(_key=key).sort("bucket", "_key").drop("_key")


def _ap_draws(n_units: int, n_positive: int, n_in: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """AP of ``draws`` uniformly random rankings: ``n_in`` of ``n_positive`` positives among ``n_units``."""
    if n_positive == 0 or n_in == 0 or n_units == 0:
        return np.zeros(draws)
    out = np.empty(draws)
    j = np.arange(1, n_in + 1)
    for d in range(draws):  # one sample of positions per draw (n_in small against n_units)
        pos = np.sort(rng.choice(n_units, size=n_in, replace=False)) + 1
        out[d] = float(np.sum(j / pos)) / n_positive
    return out


@dataclass(frozen=True)
class _Units:
    """A dataset's universe of alert units as the uniform ranking draws from it, bucket by bucket."""

    size: dict[Any, int]  # bucket -> units
    a_by: dict[Any, pl.DataFrame]  # bucket -> groups of actor units (n, members)
    v_by: dict[Any, pl.DataFrame]  # bucket -> groups of victim units
    col: dict[int, int]  # incident id -> column of the truth frame


#: What a blind ranking ranks: every unit of a bucket, or the units of one entity kind. The public
#: classes of a dataset (``employee:<role>``, ``key:<credential kind>``) come after them (:func:`blind_kinds`).
ANY = "any"
BLIND_KINDS: tuple[str, ...] = (ANY, *ENTITY_KINDS)


#: The employees a scenario's picking rule lets it draw its actors from (:attr:`breachbench.scoring.Truth.pool`): the
#: rule is in the scenario's public code and reads public world tables (a role held through the span, hired a month
#: before it; not the departures to come, which no detector sees: a leaver's pool is its role fit), so ranking them
#: blind is knowing who tends to act, not detection. A red team's
#: rotation through the analysts and administrators the rule allowed, ten a day from the incidents' first day and reading
#: nothing of what anyone did, cleared the chance bar of ``compromised-employee-v3`` under six tie orders of six (37.1 to
#: 41.7 raw against a bar of 34.8 from the analysts alone), where the scenario draws from four roles.
POOL = "pool"
#: The pool's employees within a class or union of classes (``pool:employee:analyst``, :func:`actor_class_unions`).
POOL_OF = POOL + ":"


def blind_kinds(truth: Truth) -> tuple[str, ...]:
    """Every blind ranking of a dataset: :data:`BLIND_KINDS`, then its public classes (sorted), then :data:`POOL` where
    the truth names one."""
    classes = truth.unit_classes
    extra = sorted(classes["class"].unique().to_list()) if classes is not None and classes.height else []
    return (*BLIND_KINDS, *extra, *((POOL,) if truth.pool.height else ()))


#: A rotating blind ranking (``rotating:<kind>``) reads, each bucket, the ``k`` units of its kind it read least recently
#: (never read first; ties in an order drawn once per draw): it works through its units without reading one twice
#: before it has read them all. A uniform ranking draws each bucket afresh, so a red team's blind rotation through
#: the bucket's support agents and logistics staff scored 24 on the headline against a chance line of 0.1.
ROTATING = "rotating:"
#: A kind gets a rotating ranking where its ``k`` units a bucket, over the scored buckets, can read at least this share
#: of its units (at the run's largest budget; at a smaller one below the share, the uniform line stands in) and its
#: units hold an actor's unit in the dataset (else the rotation detects nothing, as the uniform ranking does; where
#: another dataset of the scenario has the rotation, the uniform line stands in for this one). Below the share a
#: rotation reads as few units twice as a uniform ranking does (a unit present on every scored bucket is read by a
#: uniform ranking with chance 1 - (1 - x/B)^B and by a rotation with chance x, x the share read: at x = 0.1 about
#: 0.095 against 0.1), and simulating it would cost the draws times the units of a bucket, each bucket (the `any`
#: kind's thousands).
ROTATION_COVER = 0.1


def _rotation_budgets(truth: Truth, kind: str, budgets: list[int]) -> list[int]:
    """The budgets at which a rotation through ``kind``'s units can read :data:`ROTATION_COVER` of them; none where they
    hold no actor's unit (it detects nothing then, as the uniform ranking of the kind does, and reaches no higher)."""
    units = _ranked_units(truth, kind)
    n = units.select("entity_kind", "entity_id").n_unique()
    out = [k for k in budgets if n and k * max(len(truth.scored), 1) >= ROTATION_COVER * n]
    return out if out and truth.actors.join(units, on=KEYS, how="semi").height > 0 else []


def rotating_kinds(truth: Truth, budget: int) -> tuple[str, ...]:
    """The rotating rankings of a dataset at its largest budget ``budget`` (see :data:`ROTATION_COVER`)."""
    assert truth.universe_units is not None
    return tuple(ROTATING + kind for kind in blind_kinds(truth) if _rotation_budgets(truth, kind, [budget]))


#: Joins the classes of a union (``employee:logistics+employee:support_agent``, :func:`actor_class_unions`).
UNION = "+"


#: At most this many classes of one entity kind hold a scenario's actors for every union of them to be ranked (2^n - 1
#: rankings and their rotations); past it, each class alone and all of them together.
MAX_UNION_CLASSES = 6


def actor_class_unions(truths: Iterable[Truth]) -> tuple[str, ...]:
    """The extra blind rankings of a scenario, given the truths of its datasets: per entity kind (``employee``, ``key``),
    every union of two or more of the classes that hold an actor's unit in any of them, joined by :data:`UNION`
    (sorted); and, where the truths name a :data:`POOL`, the pool's employees within each union of one or more of the
    employee classes (``pool:employee:analyst+employee:administrator``).

    A scenario draws its actors from a few roles (support agents and logistics staff), which its code makes public. A
    ranking of one class misses the actors of the others, and a ranking of the whole kind spreads its ``k`` over every
    role: a red team's rotation through two roles at once, ten a day, scored 5.4 above a chance line of 0.0 that had
    each role's rotation alone. Nor did the union of all of them bound a part of it: where the takeover draws from four
    roles, a rotation through two of them that its picking rule allowed (:data:`POOL`) cleared the bar of the best
    single role under six tie orders of six. The classes are what any of the scenario's datasets shows, so the names,
    and so the lines, are the same in every one of them (they pool draw by draw, :func:`chance_lines`).
    """
    held: dict[str, set[str]] = {}
    pooled = False
    for truth in truths:
        pooled |= truth.pool.height > 0
        if truth.unit_classes is None or not truth.unit_classes.height:
            continue
        hit = truth.unit_classes.join(truth.actors.select(KEYS).unique(), on=KEYS, how="semi")
        for kind, cls in hit.select("entity_kind", "class").unique().iter_rows():
            held.setdefault(kind, set()).add(cls)
    out: list[str] = []
    for kind, classes in sorted(held.items()):
        ordered = sorted(classes)
        if len(ordered) > MAX_UNION_CLASSES:
            subsets = [(c,) for c in ordered] + [tuple(ordered)]
        else:
            subsets = [c for n in range(1, len(ordered) + 1) for c in itertools.combinations(ordered, n)]
        out += [UNION.join(c) for c in subsets if len(c) >= 2]
        if pooled and kind == "employee":
            out += [POOL_OF + UNION.join(c) for c in subsets]
    return tuple(out)


def _ranked_units(truth: Truth, kind: str) -> pl.DataFrame:
    """The universe units a blind ranking of ``kind`` (or ``rotating:<kind>``) draws from; a union of classes
    (:func:`actor_class_unions`) draws from the units of any of them (of those the dataset has), :data:`POOL` from the
    employees the truth's pool names."""
    assert truth.universe_units is not None
    kind = kind.removeprefix(ROTATING)
    if kind == ANY:
        return truth.universe_units
    if kind in ENTITY_KINDS:
        return truth.universe_units.filter(pl.col("entity_kind") == kind)
    if kind == POOL:
        return truth.universe_units.join(truth.pool, on=["entity_kind", "entity_id"], how="semi")
    if kind.startswith(POOL_OF):
        return _ranked_units(truth, kind.removeprefix(POOL_OF)).join(truth.pool, on=["entity_kind", "entity_id"], how="semi")
    classes = truth.unit_classes
    if ":" not in kind or classes is None:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(BLIND_KINDS)}, {POOL} nor a public class of the dataset")
    # a unit has one class a bucket (an employee's role that day), so the classes' units are apart
    mine = classes.filter(pl.col("class").is_in(kind.split(UNION))).select(KEYS)
    return truth.universe_units.join(mine, on=KEYS, how="semi")


def blind_auprc(truth: Truth) -> tuple[str, float]:
    """The blind ranking whose expected AUPRC is highest on a dataset, and that AUPRC: what ``lift`` divides by.

    The rankings are those of the chance lines, but for rotations (whose order within a bucket is as blind as a
    uniform one's): every unit, one entity kind, one public class, the employees the scenarios' picking rules allowed
    (:func:`blind_kinds`), or a union of the classes that hold the dataset's actors, alone or within the pool
    (:func:`actor_class_unions`). A red team's detector that gave random scores to the employees of the four staff
    roles, and no evidence, had a lift of 3.3 against a ranking of every unit, where the honest
    ``rule-off-hours-bulk-v1`` had 2.8 (default suite, two sealed seeds).
    """
    n_act = truth.actor_units.height
    best = (ANY, chance_average_precision(truth.universe, n_act, truth.retrievable_actors))
    if truth.universe_units is None:
        return best
    for kind in (*blind_kinds(truth)[1:], *actor_class_unions([truth])):
        units = _ranked_units(truth, kind).select(KEYS)
        ap = chance_average_precision(units.height, n_act, truth.actor_units.join(units, on=KEYS, how="semi").height)
        if ap > best[1]:
            best = (kind, ap)
    return best


def chance_draws(
    truth: Truth,
    budgets: list[int],
    draws: int = 1000,
    seed: int = 0,
    profile: str = "standard",
    ap_draws: int = 200,
    kind: str = ANY,
) -> dict[int, ChanceDraws]:
    """The uniform ranking's draws on one dataset at each budget (detection parts under ``profile``'s harm).

    ``kind`` restricts the ranking to the units of one entity kind (:data:`BLIND_KINDS`) or of one
    public class (``employee:analyst``, :func:`blind_kinds`); a dataset without units of that kind
    or class gives a line that never alerts.
    """
    if truth.universe_units is None:
        raise ValueError("chance lines need the truth's universe units (Truth.of a dataset)")
    rng = np.random.default_rng(seed)
    fr = truth.frame
    universe = _ranked_units(truth, kind)
    n_universe = universe.height
    uni = universe.group_by("bucket").len()
    in_uni = universe.select(KEYS)
    actors = _groups(truth.actors.join(in_uni, on=KEYS, how="semi"))
    victims = _groups(truth.victims.join(in_uni, on=KEYS, how="semi"))
    units = _Units(
        dict(uni.iter_rows()),
        {b: g for (b,), g in actors.group_by(["bucket"])},
        {b: g for (b,), g in victims.group_by(["bucket"])},
        {int(i): j for j, i in enumerate(fr.ids)},
    )
    n_act = truth.actors.select(KEYS).unique().height
    n_vic = truth.victims.select(KEYS).unique().height
    a_in = truth.actors.select(KEYS).unique().join(in_uni, on=KEYS, how="semi").height
    v_in = truth.victims.select(KEYS).unique().join(in_uni, on=KEYS, how="semi").height
    ap = _ap_draws(n_universe, n_act, a_in, ap_draws, rng)
    ap_v = _ap_draws(n_universe, n_vic, v_in, ap_draws, rng)
    ranking = _Ranking(ap, chance_average_precision(n_universe, n_act, a_in), ap_v, n_vic)
    if kind.startswith(ROTATING):
        rot = _Rotation.of(truth, universe, units.col)
        return {k: _chance_at(truth, k, rot.draw(k, draws, rng), profile, ranking) for k in sorted(set(budgets))}
    return {k: _chance_at(truth, k, _draw_budget(truth, units, k, draws, rng), profile, ranking) for k in sorted(set(budgets))}


def chance_draws_by_kind(
    truth: Truth,
    budgets: list[int],
    draws: int = 1000,
    seed: int = 0,
    profile: str = "standard",
    ap_draws: int = 200,
    unions: Sequence[str] = (),
) -> dict[str, dict[int, ChanceDraws]]:
    """:func:`chance_draws` for every blind ranking of :func:`blind_kinds`, of the ``unions`` of classes (the scenario's,
    :func:`actor_class_unions`), and their rotations (:func:`rotating_kinds`; each its own random stream)."""
    out: dict[str, dict[int, ChanceDraws]] = {}
    kinds = (*blind_kinds(truth), *(u for u in unions if u not in BLIND_KINDS))
    rotations = {ROTATING + kind: mine for kind in kinds if (mine := _rotation_budgets(truth, kind, budgets))}
    for j, kind in enumerate((*kinds, *rotations)):
        # a class's stream, and a rotating ranking's: its name, not its place
        tag = [j] if kind in BLIND_KINDS else [0xC1A55, zlib.crc32(kind.encode())]
        s = seed if kind == ANY else int(np.random.SeedSequence([seed, *tag]).generate_state(1, np.uint64)[0])
        if kind in rotations:  # at a budget too small to read ROTATION_COVER of the units, the uniform line
            mine = rotations[kind]
            out[kind] = {k: out[kind.removeprefix(ROTATING)][k] for k in budgets if k not in mine}
            out[kind] |= chance_draws(truth, mine, draws, s, profile, ap_draws, kind)
        else:
            out[kind] = chance_draws(truth, budgets, draws, s, profile, ap_draws, kind)
    return out


@dataclass(frozen=True)
class _Rotation:
    """A dataset's universe of one kind as a rotating ranking reads it: per scored bucket, its units (as indices into
    the kind's units), the positions among them of the actor units with their incidents, and of the victim units."""

    n_units: int
    n_inc: int
    buckets: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # units, actor positions, member, victim positions

    @staticmethod
    def of(truth: Truth, universe: pl.DataFrame, col: dict[int, int]) -> _Rotation:
        ids = universe.select("entity_kind", "entity_id").unique().sort("entity_kind", "entity_id").with_row_index("_u")
        uni = universe.select(KEYS).join(ids, on=["entity_kind", "entity_id"])
        act = truth.actors.join(uni, on=KEYS).select("bucket", "_u", "incident_id")
        vic = (
            truth.victims.join(uni, on=KEYS)
            .select("bucket", "_u")
            .join(act.select("bucket", "_u"), on=["bucket", "_u"], how="anti")
        )
        by_bucket = {b: np.sort(g["_u"].to_numpy()) for (b,), g in uni.group_by("bucket")}
        acts = {b: g for (b,), g in act.group_by("bucket")}
        vics = {b: np.unique(g["_u"].to_numpy()) for (b,), g in vic.group_by("bucket")}
        n_inc = len(truth.frame.ids)
        out = []
        for day in truth.scored:
            units = by_bucket.get(day, np.zeros(0, np.int64)).astype(np.int64)
            a = acts.get(day)
            a_units = np.unique(a["_u"].to_numpy()) if a is not None else np.zeros(0, np.int64)
            member = np.zeros((len(a_units), n_inc))
            if a is not None:
                row = np.searchsorted(a_units, a["_u"].to_numpy())
                for r, inc in zip(row, a["incident_id"].to_list(), strict=True):
                    if int(inc) in col:
                        member[r, col[int(inc)]] = 1.0
            out.append(
                (
                    units,
                    np.searchsorted(units, a_units),
                    member,
                    np.searchsorted(units, vics.get(day, np.zeros(0, np.int64))),
                )
            )
        return _Rotation(ids.height, n_inc, out)

    def draw(self, k: int, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``draws`` rotating readings of ``k`` units a bucket, as :func:`_draw_budget` gives uniform ones."""
        det = np.full((draws, self.n_inc), -1, dtype=np.int64)
        false = np.zeros(draws)
        vflag = np.zeros(draws)
        # each draw's order of the units: a permutation of 0..n-1 (the rank a unit has among those read as long ago)
        wide = np.int64 if (len(self.buckets) + 1) * self.n_units >= 2**31 else np.int32
        order = rng.permuted(np.tile(np.arange(self.n_units, dtype=wide), (draws, 1)), axis=1)
        last = np.zeros((draws, self.n_units), dtype=wide)  # the bucket a unit was last read, plus one (0: never)
        for b, (units, a_pos, member, v_pos) in enumerate(self.buckets):
            take = min(k, len(units))
            if take == 0:
                continue
            seen = last[:, units]
            key = seen * self.n_units + order[:, units]  # distinct within a draw: ``order`` is a permutation
            if take < len(units):  # the ``take`` smallest keys: those at most the take-th smallest (a partition of the
                # values, about five times faster than partitioning their indices)
                read = key <= np.partition(key, take - 1, axis=1)[:, take - 1 : take]
            else:
                read = np.ones(key.shape, dtype=bool)
            last[:, units] = np.where(read, b + 1, seen)
            a_read = read[:, a_pos]
            false += take - a_read.sum(axis=1)
            vflag += read[:, v_pos].sum(axis=1)
            if len(a_pos):
                hit = (a_read.astype(np.float64) @ member) > 0
                det = np.where((det < 0) & hit, b, det)
        return det, false, vflag


class _Ranking(NamedTuple):
    """The uniform ranking's average precision (its own draws, expected, on victims) and the victim units."""

    auprc: np.ndarray
    auprc_expected: float
    auprc_victims: np.ndarray
    victims: int


def _chance_at(
    truth: Truth, k: int, drawn: tuple[np.ndarray, np.ndarray, np.ndarray], profile: str, ranking: _Ranking
) -> ChanceDraws:
    """The per-draw sums at budget ``k`` from :func:`_draw_budget`'s draws (detections, false alerts, victims flagged)."""
    fr = truth.frame
    det, false, vflag = drawn
    detected = det >= 0
    dmask = fr.detectable
    tl = timeliness(det, fr.first[None, :], fr.last[None, :])
    before = {p: fr.harm_before(p, det) for p in profile_names()}
    std = profile
    total = fr.harm_total[std]
    perfect = fr.harm_perfect(std)
    parts = (
        float(dmask.sum()),
        detected[:, dmask].sum(axis=1).astype(np.float64),
        tl[:, dmask].sum(axis=1),
        float((total - perfect)[dmask].sum()),
        (total[None, :] - before[std])[:, dmask].sum(axis=1),
    )
    return ChanceDraws(
        k,
        float(len(fr.ids)),
        detected.sum(axis=1).astype(np.float64),
        parts,
        {p: before[p].sum(axis=1) for p in before},
        {p: float(fr.harm_total[p].sum()) for p in before},
        {p: float(fr.harm_perfect(p).sum()) for p in before},
        false,
        float(len(truth.scored)),
        vflag,
        float(ranking.victims),
        _resize(ranking.auprc, len(false)),
        ranking.auprc_expected,
        _resize(ranking.auprc_victims, len(false)),
    )


def _draw_budget(
    truth: Truth, units: _Units, k: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``draws`` uniform readings of ``k`` units a bucket: per draw, each incident's first detecting bucket
    index (-1: never), the false alerts read and the victim units flagged."""
    n_inc = len(truth.frame.ids)
    det = np.full((draws, n_inc), -1, dtype=np.int64)
    false = np.zeros(draws)
    vflag = np.zeros(draws)
    for b, day in enumerate(truth.scored):
        u = int(units.size.get(day, 0))
        if u == 0:
            continue
        ga, gv = units.a_by.get(day), units.v_by.get(day)
        na = ga["n"].to_numpy() if ga is not None else np.zeros(0, np.int64)
        nv = gv["n"].to_numpy() if gv is not None else np.zeros(0, np.int64)
        rest = u - int(na.sum()) - int(nv.sum())
        colors = np.r_[na, nv, max(rest, 0)].astype(np.int64)
        take = min(k, int(colors.sum()))
        got = rng.multivariate_hypergeometric(colors, take, size=draws)
        ga_n = got[:, : len(na)]
        false += take - ga_n.sum(axis=1)
        vflag += got[:, len(na) : len(na) + len(nv)].sum(axis=1)
        if ga is not None and len(na):
            member = np.zeros((len(na), n_inc))
            for g, ms in enumerate(ga["members"].to_list()):
                member[g, [units.col[m] for m in ms if m in units.col]] = 1.0
            hit = (ga_n @ member) > 0
            det = np.where((det < 0) & hit, b, det)
    return det, false, vflag


def _resize(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` repeated or cut to ``n`` values (AP draws are fewer than the budget draws)."""
    return np.resize(a, n) if len(a) else np.zeros(n)


def pool(draws: list[ChanceDraws]) -> ChanceDraws:
    """Datasets pooled draw by draw."""
    out = draws[0]
    for d in draws[1:]:
        out = out.plus(d)
    return out


def chance_bar(raw: np.ndarray) -> float | None:
    """The top of a chance line: the :data:`SPREAD` upper percentile of raw detection score draws (None if undefined)."""
    ok = np.asarray(raw, dtype=np.float64)
    ok = ok[~np.isnan(ok)]
    return float(np.percentile(ok, SPREAD[1])) if len(ok) else None


def above_chance_draws(d: ChanceDraws) -> np.ndarray:
    """Per draw: the scenario's detection score above the top of its own chance line (the headline's per-scenario term)."""
    raw = d.detection_parts()[3]
    bar = chance_bar(raw)
    return raw if bar is None else above_chance(raw, bar)


def headline_draws(per_scenario: dict[str, ChanceDraws]) -> np.ndarray:
    """Per draw: the equal-weight mean over scenarios of each scenario's detection score above chance."""
    if not per_scenario:
        return np.zeros(0)
    scores = np.vstack([above_chance_draws(d) for d in per_scenario.values()])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every scenario's chance line perfect: NaN, no score above chance
        return np.nanmean(scores, axis=0)


def _scenario_line(d: ChanceDraws, kind: str, raw_by_kind: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    line: dict[str, Any] = {m: summary(v) for m, v in d.metrics().items()}
    line["detection_score_raw"] = line["detection_score"]
    line["detection_score"] = summary(above_chance_draws(d))
    line["kind"] = kind
    line["raw_by_kind"] = raw_by_kind
    return line


def _by_kind(per_dataset: dict[str, Any]) -> dict[str, dict[str, dict[int, ChanceDraws]]]:
    """label -> kind -> budget -> draws; draws of one ranking (budget -> draws) count as the ``any`` kind."""
    out = {}
    for label, v in per_dataset.items():
        first = next(iter(v), None)
        out[label] = {ANY: v} if isinstance(first, int) else v
    return out


def _reach(d: ChanceDraws) -> tuple[float, float]:
    """How high a blind ranking's line reaches: the top of its raw detection score line, then its mean (NaN as -1)."""
    raw = d.detection_parts()[3]
    bar = chance_bar(raw)
    mean = summary(raw)["mean"]
    return (-1.0 if bar is None else bar, -1.0 if mean is None else mean)


def best_kind(per_kind: dict[str, ChanceDraws]) -> str:
    """The blind ranking whose raw detection score line reaches highest (its top, then its mean; ``any`` wins ties)."""
    order = [k for k in BLIND_KINDS if k in per_kind] + sorted(k for k in per_kind if k not in BLIND_KINDS)
    return max(order, key=lambda k: (_reach(per_kind[k]), -order.index(k)))


def chance_lines(per_dataset: dict[str, Any], scenario_of: dict[str, str], headline_budget: int) -> dict[str, Any]:
    """The run's chance lines (as ``results.json`` carries them): per budget, overall and per scenario.

    ``per_dataset`` maps a dataset's label to its draws per blind kind and budget
    (:func:`chance_draws_by_kind`), or to one ranking's draws per budget (:func:`chance_draws`).
    Per scenario and budget the line is the blind ranking that reaches highest (:func:`best_kind`,
    named in ``kind``; ``raw_by_kind`` gives every ranking's raw line). Overall figures pool every
    dataset under its scenario's ranking as the leaderboard pools detectors; ``detection_score``
    is the equal-weight mean over scenarios of scores above chance, like the headline. Per
    scenario, ``detection_score_raw`` is the raw score's line and ``detection_score`` the line of
    the score above chance (what chance earns on the leaderboard's scale: 0 in all but the top
    ``100 - SPREAD[1]`` percent of draws); ``detection_score_raw``'s ``hi`` is the bar that
    scores above chance count from (:func:`chance_bar`).
    """
    kinds = _by_kind(per_dataset)
    budgets = sorted({k for d in kinds.values() for by_k in d.values() for k in by_k})
    first = next((by_k for d in kinds.values() for by_k in d.values() if by_k), None)
    out: dict[str, Any] = {
        "method": "uniform ranking of each bucket's units, of one entity kind's units, of one public class's units "
        "(an employee's role, a key's credential kind), of the union of the classes that hold the scenario's actors "
        "or of the employees the scenario's picking rule allowed (pool), "
        "or a rotation through one of these (each bucket the units read least recently); per scenario the one that "
        "reaches highest; uniform rankings by multivariate hypergeometric draws, rotations simulated unit by unit",
        "draws": int(len(next(iter(first.values())).detected)) if first else 0,
        "spread": list(SPREAD),
        "budget": headline_budget,
        "by_budget": {},
    }
    for k in budgets:
        scen: dict[str, dict[str, list[ChanceDraws]]] = {}
        rotating: dict[str, set[str]] = {
            s: set() for s in scenario_of.values()
        }  # per scenario: every rotation one of its datasets has
        for label, per_kind in kinds.items():
            rotating[scenario_of[label]] |= {kind for kind in per_kind if kind.startswith(ROTATING)}
        for label, per_kind in kinds.items():
            for kind, by_k in per_kind.items():
                scen.setdefault(scenario_of[label], {}).setdefault(kind, []).append(by_k[k])
            # a rotation this dataset has no line of (its units hold no actor's here, or too many to rotate through):
            # the uniform ranking of its kind stands in, so that the rotation pools over all of the scenario's datasets
            for kind in sorted(rotating[scenario_of[label]] - set(per_kind)):
                if kind.removeprefix(ROTATING) in per_kind:
                    scen[scenario_of[label]].setdefault(kind, []).append(per_kind[kind.removeprefix(ROTATING)][k])
        n_sets = {s: max(len(v) for v in per.values()) for s, per in scen.items()}
        # a ranking pools only over all of a scenario's datasets (a class one world lacks is no line of that scenario)
        pooled_kinds = {s: {kind: pool(v) for kind, v in per.items() if len(v) == n_sets[s]} for s, per in scen.items()}
        chosen = {s: best_kind(per) for s, per in pooled_kinds.items()}
        pooled = {s: pooled_kinds[s][chosen[s]] for s in pooled_kinds}
        allp = pool([d for s, per in scen.items() for d in per[chosen[s]]])
        overall = {m: summary(v) for m, v in allp.metrics().items() if m not in ("detection_score",)}
        overall["detection_score"] = summary(headline_draws(pooled))
        overall["auprc"]["expected"] = allp.auprc_expected
        out["by_budget"][str(k)] = {
            "overall": overall,
            "by_scenario": {
                s: _scenario_line(d, chosen[s], {kind: summary(v.detection_parts()[3]) for kind, v in pooled_kinds[s].items()})
                for s, d in sorted(pooled.items())
            },
        }
    return out
