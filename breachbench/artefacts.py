"""The artefact audit: do attack rows differ from benign rows only in what their scenario declares?

A scenario declares, per phase, the behavioural signals its rows carry
(``Scenario.signals(knobs)``, names from :data:`simulator.signals.VOCABULARY`); each signal
names the raw columns and the per-entity-day aggregates it may change. Everything else about an
attack row must look like the rows of comparable benign actors. This module measures it, per
stream, phase and column, on generated datasets (it reads ``truth/`` to know which rows are
attack rows, so it is bench side):

* **unseen values**: the share of attack rows whose value (and, separately, whose value *shape*,
  letters -> ``A``, digits -> ``9``, or prefix) never occurs in comparable benign rows, against
  the same share for held-out benign rows (benign split in halves by event id);
* **stickiness**: distinct values of each column per entity-day (and per token in the gateway),
  days with attack rows against benign days of comparable actors: the share of attack days above
  the benign 99th percentile;
* **distributions**: the Kolmogorov-Smirnov distance of every numeric feature (a numeric
  column, the local hour, weekday and gap of ``ts``, a token's rhythm (a gap over the one before it), string
  lengths, id bit fields, days since a customer signed up...) between attack rows and benign rows, against the
  distance between two benign halves;
* **one-line separation**: the AUC of each feature alone (the best one-line shortcut on it);
* **excess**: one category in excess against its expected count, as a z-score: a residue (modulo 2..16) or a bit of an
  integer column's distinct values (the entity's own id too), a residue of a time's microseconds, a value of a column
  of few values or of a 0/1 feature counted once per session (token, else entity-day) that carries it. Ids drawn
  even or a multiple of three, times cut to the millisecond, a fixed byte in token ids, 8% of calls answered 429 where
  benign ones see 0.4%: each moves a KS distance or an unseen share by its category's share only;
* **orphan groups**: attack rows in a comparability group (below) that no benign row has, such as
  a staff account on a day its holder holds no role: an exact rule however few they are;
* **adversarial validation**: a gradient-boosted classifier, cross-validated with folds grouped
  by entity, trained to tell attack rows (and entity-days with attack rows) from comparable
  benign ones, once on every feature and once with the declared signals' features removed.

Comparable benign rows: admin rows and employees' auth rows of employees who held the same role
that day (``world/employee_roles``), auth rows of the same event kind, all benign customer
traffic for the gateway. Rows tagged as benign anomalies stay benign (they are benign
behaviour); the result counts them.

Every feature belongs to one raw column (its derived features are the column's); entity-day
aggregates may also name an aggregate of the vocabulary (``ips``, ``tickets``, ``night``...). A
difference is *declared* when a signal declared for the rows' phase names the column (row
features and unnamed aggregates) or the aggregate (named aggregates); any other difference beyond
its threshold is *undeclared* and fails the audit.

Entry points: :func:`audit_datasets` (datasets of one scenario at one set of knobs, pooled),
:func:`audit_scenarios` (generate and audit scenario ids x seeds x knob settings) and
:func:`artefact_audit` (a JSON-able section for ``results.json``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from breachbench.dataset import Dataset
from simulator import layout, pools, signals
from simulator.errors import BreachBenchError
from simulator.schema import LOG_STREAMS, WORLD_TABLES
from simulator.units import DAY_US

# ---- thresholds ----------------------------------------------------------------------------------

#: An unseen-value share this much above the highest share of the null draws (random benign actors) is a difference.
UNSEEN_GAP = 0.2
#: A KS distance is a difference above max(KS_FLOOR, the null draws' highest + NULL_MARGIN,
#: the two-sample critical value at KS_ALPHA).
KS_FLOOR = 0.2
KS_ALPHA = 1e-4
#: Share of attack entity-days (tokens) above the benign 99th percentile of distinct values that is a difference.
STICKY_SHARE = 0.25
#: The sticky test's benign 99th percentile is taken over benign units of the attack unit's group as busy as it (the
#: same number of rows), or over the group's STICKY_PEERS benign units nearest in rows where fewer have that many.
STICKY_PEERS = 100
#: A single feature that separates attack from benign with at least this AUC is a one-line shortcut.
SINGLE_AUC = 0.7
#: The adversarial classifier with the declared features removed must stay at or below this AUC.
CHANCE_AUC = 0.6
#: Null draws (random benign actors standing in for the attack's) per test, and the margin above their highest figure.
NULL_DRAWS = 4
NULL_MARGIN = 0.1
NULL_MARGIN_FEW = 0.2
#: The classifier gives a verdict only with this many attack entities (folds grouped by entity); pool seeds or raise knobs.actors.
MIN_ENTITIES = 3
#: Benign rows the unseen-value test looks values up in (a sample, the same for attack and null draws).
MAX_REF_ROWS = 300_000
#: Fewer attack rows (entity-days) than this in a (stream, phase): no figure.
MIN_ROWS = 10
MIN_DAYS = 3
#: Caps of the samples the classifier and the KS test see.
MAX_CLASS_ROWS = 4000
#: Folds of the adversarial classifier.
FOLDS = 3
#: Attack units the classifier's draws evaluate in all: with fewer attack units than this it is run on
#: several draws (a fresh matched benign sample and fold split each, at most MAX_DRAWS) and its AUCs
#: averaged. A single draw's AUC on a handful of attack entity-days spreads by +-0.15 around the same
#: mean, so a verdict of one draw was a coin toss (the same rows passed or failed with the draw).
DRAW_UNITS = 1000
MAX_DRAWS = 5
MAX_KS_ROWS = 20_000
#: Bins of a numeric feature in the classifier (see :func:`_binned`).
MAX_BINS = 64
#: The permutation test of the actor's features (see :func:`_perm_lines`): draws, draws at once, and the number of
#: actors (or peers) from which the critical values of continuous values take over (ties only lower the figures).
PERMUTATIONS = 10_000
PERM_BATCH = 2_000
PERM_BELOW = 30

#: Row features tested one by one and not given to the classifier: an integer's digits (parity, trailing zeros) and a
#: session's rhythm (added later). Given to it, and with every later draw moved (see audit_rows), the catalogue's audits
#: saw AUCs move by up to 0.1 and three verdicts at stealth 0.5 and 1 turn to failures on figures near their lines
#: (2026-12-05).
#: So are the clock's fields (minute, second), an id's order within a session (``up``) and a row's lack of a login
#: before it that day (``no_auth``), added after a red team planted leaks there (times on whole minutes or quarter
#: hours, customers read in ascending id order, a login logged after the first read) that no test saw; and the named
#: customer's profile (a category of the customer table and its share of customers) and how many rows name an id
#: (``uses``), added for reads of one home region and a whole day's opens under one ticket; and a token's lifecycle
#: (``lifecycle``: its nearest row's delay from each kind of its auth rows), added for a logout logged before the last page;
#: and who the actor is (``actor``: tenure, departure, the share of employees in their team or office); and how near
#: another entity's row comes (``near``: in each stream, and among the rows naming the same customer), added for rows
#: planted in step with other people's.
ALONE = (
    "again",
    "odd",
    "zeros",
    "rhythm",
    "pace",
    "after_auth",
    "minute",
    "second",
    "up",
    "no_auth",
    "profile",
    "uses",
    "lifecycle",
    "actor",
    "near",
    "echo",
    "daily",
)
#: Row features that only some rows have (the tests compare the rows that have one; no unit picks one: whether a
#: unit's picked row has one moves with the unit's rows); and every ``f:<id column>:up``, ``f:<id column>:uses``,
#: ``f:customer_id:profile:<c>``, ``f:ts:lifecycle:<kind>`` and ``f:employee_id:actor:<what>`` (rows of an employee).
PARTIAL = ("f:ts:rhythm", "f:ts:pace", "f:ts:after_auth", "f:ts:no_auth", "f:ts:echo", "f:ts:echo:wide", "f:ts:daily")
#: A row's lags to other entities' rows (``f:ts:echo``, see :func:`_echo_lags`): within this many microseconds
#: either side (a red team's relay of 45 s passed a window of 30 s), at most this many reference rows in all; worked
#: out a whole number of units at a time, about ECHO_CHUNK_PAIRS lags each.
ECHO_WINDOW_US = 120_000_000
ECHO_MAX_PAIRS = 32
#: The width of the bins: a relay's fixed delay falls in one bin of 10 ms. Wider bins, for a delay drawn within a
#: second or three (a red team's 17 s + U(0, 1 s) passed these), shared lags by chance where they counted rows: a unit's
#: rows a second apart meet one colleague's row at delays one wide bin holds (48% of benign rows past the line with
#: bins of 2 s); ``f:ts:echo:wide`` counts reference rows too.
ECHO_BIN_US = 10_000
#: ``f:ts:echo:wide``: the same in bins of a second, laid twice (shifted by half a second), a bin's rows counted only
#: as many as the distinct reference rows their lags go to. A relay whose delay is drawn within a second (a red team's
#: 17 s + U(0, 1 s) after a colleague's row: a rule "17-18 s before" flagged 99.8% of its rows and 9% of benign ones)
#: spreads over a hundred of the fine bins; in these it is named at KS 0.74 with 0.04% of benign rows past the line.
ECHO_WIDE_US = 1_000_000
ECHO_WIDE_GRIDS = 2
ECHO_CHUNK_PAIRS = 4_000_000
#: A chunk's (unit, bin) pairs counted in one dense array up to this many (wide bins, a chunk's few thousand units),
#: by sorting beyond it; the counts are the same either way
ECHO_DENSE_BINS = 4_000_000
#: ``f:ts:echo`` is 0 below this (-log10 of the odds: one in a thousand), so that how often a benign row shares a lag by
#: chance, which moves with its unit's rows, does not show; and at most this much (odds no float tells from zero).
ECHO_LINE = 3.0
ECHO_MAX_SURPRISE = 300.0
#: A row's time of day met on another day of its entity (``f:ts:daily``) when another row comes within this many
#: microseconds of it on the clock.
DAILY_US = 1_000_000
#: A row's gap repeated to the microsecond on another day of its entity (``f:ts:again``) counts where at most this share
#: of the dataset's benign entities of the stream show that gap (at least one): more is a delay of the system's, not a
#: habit. Benign ones only: a script's delay on many attack entities (three incidents of six actors in one world) is
#: still the script's.
AGAIN_ENTITIES = 0.05
#: A session's pace (``f:ts:pace``) is judged in sessions of at least this many rows: below it the spacing of a few
#: rows over their own span moves with their number (two rows: always the span), which volume would explain.
PACE_MIN_ROWS = 10
#: A row feature of a column whose benign entity-days hold at most this many distinct values on average counts as one
#: value per entity-day and value in its tests' critical values (:func:`_shared_columns`).
SHARED_VALUES = 1.5
#: The key of the ``sizes`` of :func:`_stats` for the numbers of attack and benign units every full feature compares.
COMPARED = "*"
#: The excess test (see :func:`_excess_stats`): categories it counts in a column. Residues of integers (and of a time's
#: microseconds) modulo 2..16; every bit of an integer (0..62); the values of a string (or small integer) column with at
#: most EXCESS_LEVELS distinct values among comparable benign rows; 0/1 features (null, night, ...).
EXCESS_MODULI = tuple(range(2, 17))
EXCESS_BITS = 63
EXCESS_LEVELS = 64
#: Its reference: comparable benign rows (same groups and days) matched EXCESS_PER to an attack row, at most EXCESS_REF_ROWS.
EXCESS_PER = 20.0
EXCESS_REF_ROWS = 50_000
#: A category is in excess above max(EXCESS_MIN, EXCESS_RATIO x the null draws' highest figure) (z-scores).
EXCESS_MIN = 6.0
EXCESS_RATIO = 2.0
#: The tie test (see :func:`_tie_stats`): a value the attack rows' integers share beyond chance, alone or two columns
#: together (every id congruent to the actor's number modulo a prime, every minute even, the second of the clock the
#: customer's id modulo 60). Its figure is log2 of the greatest common divisor of the differences between the rows'
#: values (of ``x``, or of ``x - y``); a divisor of ``g`` bits is shared by ``n`` distinct random values with odds of
#: about ``2^(-g (n - 1))``: the line is at least log2(1 / TIE_ALPHA) / (n - 1) bits, TIE_MIN_BITS, and the null draws'
#: highest plus TIE_MARGIN_BITS. All rows on one value count as 64 bits (judged against the null draws alone).
TIE_ALPHA = 1e-6
TIE_MIN_BITS = 1.0
TIE_MARGIN_BITS = 1.0
#: The clock's fields (local time) the tie test takes as integers, beside the integer columns and the entity's number.
TIE_CLOCK = ("second", "minute", "hour")
#: The conditional excess test (a 0/1 feature within each value of another column) judges a value that at least
#: GIVEN_MIN_SESSIONS comparable benign sessions carry.
GIVEN_MIN_SESSIONS = 20
#: Raw column -> aggregate of the vocabulary for its distinct values per entity-day (and new ones).
DISTINCT_AGG = {"src_ip": "ips", "device": "devices", "user_agent": "agents", "ticket_id": "tickets", "customer_id": "customers"}
NEW_AGG = {"src_ip": "new_ip", "device": "new_device", "user_agent": "new_device"}  # a new client is a new device
#: Columns that say where a row comes from: a unit whose values of one of them take turns (the time ranges of two values
#: overlap: an account used from two places at once) has ``a:<column>:interleaved`` 1. Its aggregate is ``interleaved``
#: whatever the column, so that an address or device declared new does not declare it: a new address used after the
#: usual one (a commute, a night at home) and one used beside it are different things.
PLACES = ("src_ip", "device", "user_agent")
#: The entity of a row, per stream (auth: the employee, else the customer, else the key).
ENTITY = {
    "gateway": ("customer_id",),
    "admin": ("employee_id",),
    "auth": ("employee_id", "customer_id", "key_id"),
    "hr": ("subject_id",),
}
#: Per-token grouping (sessions) where the stream has a token.
TOKEN = "token_id"
#: Columns never used as features: row ids.
SKIP = {"event_id"}


class AuditError(BreachBenchError, ValueError):
    """Bad input to the audit (a knob, a seed, a dataset); the message names the field and value."""


# ---- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One test of one feature in one (stream, phase)."""

    stream: str
    phase: str
    column: str
    feature: str
    test: str  # unseen | shape | ks | sticky | single_auc | orphan | excess | deficit | tie
    attack: float
    benign: float
    threshold: float
    n_attack: int
    differs: bool
    declared: bool
    unit: str = "rows"  # rows | entity-days | tokens
    detail: str = ""  # excess, deficit: the category and its shares; tie: the columns and their shared residue

    @property
    def undeclared(self) -> bool:
        """A difference no declared signal covers."""
        return self.differs and not self.declared

    def describe(self, where: str = "") -> str:
        """One line naming the stream, column, feature and figure."""
        what = {
            "unseen": f"{self.attack:.0%} of attack {self.unit} carry a value no comparable benign row has (a random benign actor: {self.benign:.0%})",
            "shape": f"{self.attack:.0%} of attack {self.unit} carry a value shape no comparable benign row has (a random benign actor: {self.benign:.0%})",
            "ks": f"KS distance {self.attack:.2f} from benign (a random benign actor: {self.benign:.2f}; threshold {self.threshold:.2f})",
            "sticky": f"{self.attack:.0%} of attack {self.unit} above the p99 of benign {self.unit} of their group as busy ({self.benign:g} distinct at the attack's median)",
            "single_auc": f"alone separates attack {self.unit} with AUC {self.attack:.2f} (a random benign actor: {self.benign:.2f})",
            "orphan": f"{self.attack:.2%} of attack {self.unit} fall in a group no benign row has (role that day and shift; auth event kind)",
            "excess": f"{self.detail}: in excess by z {self.attack:.1f} (a random benign actor: {self.benign:.1f}; threshold {self.threshold:.1f})",
            "deficit": f"{self.detail}: in deficit by z {self.attack:.1f} (a random benign actor: {self.benign:.1f}; threshold {self.threshold:.1f})",
            "tie": f"{self.detail}: a common divisor of {self.attack:.1f} bits (a random benign actor: {self.benign:.1f}; threshold {self.threshold:.1f})",
        }[self.test]
        tag = "declared" if self.declared else "undeclared"
        return f"{where}{self.stream}.{self.column or '(rows)'} in phase {self.phase}, {self.feature} -> {what} ({tag})"


@dataclass(frozen=True)
class ClassifierScore:
    """Cross-validated AUC of the adversarial classifier in one (stream, phase, level)."""

    stream: str
    phase: str
    level: str  # rows | entity-days
    auc_all: float | None
    auc_undeclared: float | None
    n_attack: int
    n_benign: int
    folds: int
    top_undeclared: tuple[str, ...] = ()  # features with the strongest single separation among the undeclared ones
    entities: int = 0  # attack entities (actors; customers in the gateway)
    verdict: bool = True  # False with fewer than MIN_ENTITIES attack entities: folds by entity-day, figures for information only
    draws: int = 1  # matched benign samples (and fold splits) the AUCs are averaged over
    null: float | None = None  # the highest AUC without declared features of the null draws (computed above CHANCE_AUC only)

    @property
    def line(self) -> float:
        """The AUC without the declared features above which the classifier finds a difference: CHANCE_AUC, or
        NULL_MARGIN above the null draws' highest when they reach it."""
        return CHANCE_AUC if self.null is None else max(CHANCE_AUC, self.null + NULL_MARGIN)

    @property
    def near_chance(self) -> bool:
        """Without the declared signals' features the classifier is near chance (or gives no verdict)."""
        return not self.verdict or self.auc_undeclared is None or self.auc_undeclared <= self.line


@dataclass(frozen=True)
class AuditResult:
    """The audit of one scenario at one set of knobs, pooled over its datasets (seeds)."""

    scenario: str
    knobs: str  # "stealth=1.0" (the knobs set explicitly) or "defaults"
    seeds: tuple[int, ...]
    declared: dict[str, tuple[str, ...]]
    findings: tuple[Finding, ...]
    classifiers: tuple[ClassifierScore, ...]
    benign_anomalies: dict[str, dict[str, int]] = field(default_factory=dict)  # stream -> pattern -> rows kept as benign
    attack_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    classified: bool = True  # False: audited without the classifier (``classifier=False``), so no verdict

    @property
    def where(self) -> str:
        """Scenario and knobs, as problems name them."""
        return f"{self.scenario} {self.knobs}: "

    @property
    def problems(self) -> list[str]:
        """One line per undeclared difference and per classifier above chance without the declared features."""
        out = [f.describe(self.where) for f in self.findings if f.undeclared]
        if not self.classified:
            out.append(f"{self.where}the adversarial classifier did not run (classifier=False): no verdict")
        for c in self.classifiers:
            if not c.near_chance:
                out.append(
                    f"{self.where}{c.stream} in phase {c.phase}, adversarial classifier on {c.level} -> AUC {c.auc_undeclared:.2f} > {c.line:.2f} "
                    f"without the declared signals' features{'' if c.auc_all is None else f' (with them {c.auc_all:.2f})'}; "
                    f"strongest undeclared: {', '.join(c.top_undeclared) or '-'}"
                )
        return out

    @property
    def passed(self) -> bool:
        """No undeclared difference and every classifier near chance without the declared features."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (for ``results.json``)."""
        return {
            "scenario": self.scenario,
            "knobs": self.knobs,
            "seeds": list(self.seeds),
            "passed": self.passed,
            "declared": {k: list(v) for k, v in self.declared.items()},
            "problems": self.problems,
            "attack_rows": self.attack_rows,
            "benign_anomalies": self.benign_anomalies,
            "classifiers": [asdict(c) | {"top_undeclared": list(c.top_undeclared)} for c in self.classifiers],
            "findings": [asdict(f) for f in self.findings if f.differs],
            "seconds": round(self.seconds, 2),
        }


# ---- loading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """A feature of a row (or entity-day), the raw column it belongs to and the aggregate it is, if any."""

    name: str
    column: str
    kind: str  # num | cat | raw (the excess test's residues and bits of a column)
    aggregate: str | None = None
    # its distribution moves with the unit's number of rows (a day's mean of a row feature concentrates
    # as rows are added), so volume explains a difference too: declared when ``rows`` is
    volume: bool = False
    # it has a value on some rows only (a token's rhythm): its tests compare the rows that have one
    partial: bool = False
    # the excess test of a 0/1 feature within each value of this column (see :func:`_given_features`)
    given: str = ""


def _entry_of_incidents(ds: Dataset) -> list[int]:
    """Scenario entry (index into the config's ``scenarios``) of each incident id, in order."""
    out: list[int] = []
    for i, spec in enumerate(ds.manifest["config"]["scenarios"]):
        out.extend([i] * int(spec.get("count", 1)))
    return out


def _local(ts: pl.Expr, tz: str) -> pl.Expr:
    return ts.dt.convert_time_zone(tz)


def _load_stream(
    ds: Dataset,
    k: int,
    stream: str,
    incidents: list[int],
    roles: pl.DataFrame,
    shifts: pl.DataFrame,
    entries: dict[int, int] | None = None,
) -> pl.DataFrame:
    """Rows of one stream of one dataset with labels, entity, comparability group and day (deduplicated).

    The group of an employee's row is their role that day and their shift (a night-shift agent is
    compared with night-shift agents).
    """
    files = sorted((ds.root / "logs" / stream).rglob("*.parquet"))
    if not files:
        return pl.DataFrame()
    df = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed").unique(
        "event_id", keep="first", maintain_order=True
    )
    if df.height == 0:
        return df
    ev = ds.truth("malicious_events").filter(pl.col("stream") == stream).select("event_id", "incident_id", "phase")
    tags = ds.truth("benign_anomalies").filter(pl.col("stream") == stream).select("event_id", pl.col("pattern").alias("_pattern"))
    df = df.join(ev, on="event_id", how="left").join(tags, on="event_id", how="left")
    # rows of other scenario entries are neither attack nor benign here
    df = df.filter(pl.col("incident_id").is_null() | pl.col("incident_id").is_in(incidents))
    if entries is not None:  # several entries loaded at once: which one each attack row is of
        df = df.with_columns(_entry=pl.col("incident_id").replace_strict(entries, default=None, return_dtype=pl.Int32))
    tz = ds.timezone
    cols = ENTITY[stream]
    ent = pl.coalesce([pl.concat_str([pl.lit(f"{c}:"), pl.col(c).cast(pl.String)]) for c in cols if c in df.columns])
    eid = pl.coalesce(
        [pl.col(c).cast(pl.Int64, strict=False) for c in cols if c in df.columns and df.schema[c].is_integer()]
        or [pl.lit(None, pl.Int64)]
    )
    df = df.with_columns(
        _ds=pl.lit(k, pl.Int32),
        _entity=pl.concat_str([pl.lit(f"{k}/"), ent]),
        _eid=eid,
        _day=_local(pl.col("ts"), tz).dt.date(),
        _attack=pl.col("incident_id").is_not_null(),
        _phase=pl.col("phase"),
    ).drop("incident_id", "phase")
    # comparability group: the employee's role that day; the event kind in auth
    if "employee_id" in df.columns:
        pairs = df.select("employee_id", "_day").drop_nulls().unique()
        role = (
            pairs.join(roles, on="employee_id", how="inner")
            .filter(
                (pl.col("start_date") <= pl.col("_day")) & (pl.col("end_date").is_null() | (pl.col("_day") < pl.col("end_date")))
            )
            .group_by("employee_id", "_day")
            .agg(pl.col("role").last())
        )
        df = (
            df.join(role, on=["employee_id", "_day"], how="left")
            .join(shifts, on="employee_id", how="left")
            .with_columns(
                pl.concat_str([pl.col("role").fill_null("none"), pl.lit("/"), pl.col("_shift").fill_null("-")]).alias("role")
            )
            .drop("_shift")
        )
    else:
        df = df.with_columns(role=pl.lit(None, pl.String))
    kind = pl.col("event") if "event" in df.columns and stream == "auth" else pl.lit(stream)
    df = df.with_columns(
        _group=pl.when(pl.col("employee_id").is_not_null() if "employee_id" in df.columns else pl.lit(False))
        .then(pl.concat_str([kind, pl.lit(":"), pl.col("role")]))
        .otherwise(kind)
    ).drop("role")
    return df


def _cross_presence(frames: dict[str, pl.DataFrame], wanted: set[str]) -> dict[str, pl.DataFrame]:
    """Add, per column shared with another stream, whether (entity, day, value) occurs there (else (day, value)).

    Only to the ``wanted`` streams; every stream is looked in.
    """
    out = {}
    for s, df in frames.items():
        if df.height == 0 or s not in wanted:
            out[s] = df
            continue
        ent_cols = [c for c in ENTITY[s] if c in df.columns]
        for t, other in frames.items():
            if t == s or other.height == 0:
                continue
            for c in df.columns:
                if c.startswith("_") or c in SKIP or c == "ts" or c not in other.columns or c in ent_cols:
                    continue
                keys = [e for e in ent_cols[:1] if e in other.columns] + ["_day", c]
                seen = other.select(keys).drop_nulls().unique().with_columns(pl.lit(True).alias(f"f:{c}:in_{t}"))
                df = df.join(seen, on=keys, how="left").with_columns(pl.col(f"f:{c}:in_{t}").fill_null(False).cast(pl.Float64))
        out[s] = df
    return out


def _after_auth(frames: dict[str, pl.DataFrame], wanted: set[str]) -> dict[str, pl.DataFrame]:
    """Add ``f:ts:after_auth`` to the ``wanted`` streams but auth: on the first row of an entity after each of its auth
    rows (a login, a token issued), the delay since that auth row in units of the gap between the rows it opens (its
    rows up to the entity's next auth row): log10((1 + seconds since the auth row) / (1 + their mean gap)); none on the
    other rows, nor where the auth row opens one row. Where both streams carry an address (``src_ip``), per entity and
    address: the login that opened the row's session.

    A session's first row follows its login by a person's delay: one that always came a minute after was a script,
    and no feature of a single stream compares times across streams. Only the first row after a login, since the
    later rows' delays grow with the session's length. In units of the session's gap, since a session with more
    rows has its first one sooner: in seconds, the delay moved with volume (compromised-employee-v3 at stealth 1,
    a quarter of the reads of the account's role, seeds 1-9: KS 0.25 in seconds, 0.12 in gaps); the gap of the rows
    the auth row opens, not of the whole day's, since a customer signs in several times a day and a day's mean gap
    spans the hours between (a crawler's one session per victim stood out at KS 0.21). Per address, since an
    account used from two places at once (a taken-over account and its holder, declared as a new origin or device)
    interleaves two sessions' logins and rows: per entity, a session's first row was often the other session's, and
    the merged delays lost their long tail (KS 0.48 against a line of 0.47, same setting).
    """
    auth = frames.get("auth")
    out = {}
    for s, df in frames.items():
        e = ENTITY[s][0] if s in ENTITY else ""
        if s == "auth" or s not in wanted or df.height == 0 or auth is None or auth.height == 0 or e not in auth.columns:
            out[s] = df
            continue
        by = [e, "src_ip"] if "src_ip" in df.columns and "src_ip" in auth.columns else [e]
        days = "_day" in auth.columns and "_day" in df.columns  # the local day (frames of load_rows have it)
        row_day = pl.col("_day") if days else pl.col("ts").dt.date()
        logins = (
            auth.select(*by, pl.col("ts").alias("_auth_ts"), row_day.alias("_auth_day")).drop_nulls().unique().sort("_auth_ts")
        )
        tie = ["event_id"] if "event_id" in df.columns else []
        d = (
            df.with_row_index("_o")
            .sort(*by, "ts", *tie, maintain_order=True, nulls_last=True)
            .with_columns(_prev=pl.col("ts").shift(1).over(by))
            .sort("ts", maintain_order=True)
            .join_asof(
                logins, left_on="ts", right_on="_auth_ts", by=by, strategy="backward", check_sortedness=False
            )  # both sorted by time
        )
        # the mean gap of the rows each auth row opens: their span over one fewer than their rows (none for one row)
        span = (pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds().cast(pl.Float64) / 1e6
        d = d.with_columns(_mean_gap=(span / (pl.len() - 1)).over([*by, "_auth_ts"]))
        first = (
            pl.col("_auth_ts").is_not_null()
            & pl.all_horizontal(pl.col(c).is_not_null() for c in by)
            & (pl.col("_prev").is_null() | (pl.col("_prev") < pl.col("_auth_ts")))
            & pl.col("_mean_gap").is_finite()
        )
        secs = (pl.col("ts") - pl.col("_auth_ts")).dt.total_microseconds().cast(pl.Float64) / 1e6
        # on the first row of an entity's day (per address where both streams carry one): 1 where no auth row came before
        # it that day, a session whose first rows precede its login; none on the other rows
        known = pl.all_horizontal(pl.col(c).is_not_null() for c in by) & (pl.col("ts") == pl.col("ts").min().over(*by, row_day))
        none_yet = pl.col("_auth_ts").is_null() | (pl.col("_auth_day") != row_day)
        out[s] = (
            d.with_columns(
                pl.when(first).then(((secs + 1) / (pl.col("_mean_gap") + 1)).log10()).alias("f:ts:after_auth"),
                pl.when(known).then(none_yet.cast(pl.Float64)).alias("f:ts:no_auth"),
            )
            .sort("_o")
            .drop("_o", "_prev", "_auth_ts", "_auth_day", "_mean_gap")
        )
    return out


def _lifecycle(frames: dict[str, pl.DataFrame], wanted: set[str]) -> dict[str, pl.DataFrame]:
    """Add ``f:ts:lifecycle:<kind>`` to the ``wanted`` streams but auth that carry a token, for each kind of auth row
    that names a token (``event``: a token issued, a logout): on the token's row nearest in time to the token's first
    auth row of that kind, the signed delay from that auth row, sign(s) * log10(1 + |s|) in seconds; none on the other
    rows, nor for a token without such an auth row.

    A session's pages and the auth rows that open and close it come from one generator: pages after their token's
    logout, or before its issuance, or a logout at another delay from the last page, broke that order where no column
    of either stream alone differed (a red team's logout logged 5 s before the last page instead of after it). On
    one row per token, so that a token's many pages do not weigh as many tokens and the figure does not move with
    the session's length (the row nearest the auth row is the first page after an issuance, the last before a logout).
    """
    auth = frames.get("auth")
    if auth is None or auth.height == 0 or TOKEN not in auth.columns or "event" not in auth.columns:
        return frames
    life = auth.filter(pl.col(TOKEN).is_not_null()).group_by(TOKEN, "event").agg(pl.col("ts").min().alias("_life_ts"))
    kinds = sorted(life["event"].drop_nulls().unique().to_list())[:EXCESS_LEVELS]
    out = {}
    for s, df in frames.items():
        if s == "auth" or s not in wanted or df.height == 0 or TOKEN not in df.columns or not kinds:
            out[s] = df
            continue
        d = df.with_row_index("_o")
        for k in kinds:
            d = d.join(life.filter(pl.col("event") == k).select(TOKEN, "_life_ts"), on=TOKEN, how="left", maintain_order="left")
            secs = (pl.col("ts") - pl.col("_life_ts")).dt.total_microseconds().cast(pl.Float64) / 1e6
            # the token's row nearest the auth row (the first of equals in the rows' order)
            nearest = pl.col("_o") == pl.col("_o").sort_by(secs.abs(), pl.col("_o")).first().over(TOKEN)
            d = d.with_columns(
                pl.when(pl.col("_life_ts").is_not_null() & nearest)
                .then(secs.sign() * secs.abs().log1p() / math.log(10))
                .alias(f"f:ts:lifecycle:{k}")
            ).drop("_life_ts")
        out[s] = d.drop("_o")
    return out


def _near_ref(t: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """The rows of ``t`` that :func:`_others_near` looks in, in time order: per row, beside its entity and time, the
    latest row before its run of one entity's rows (with the same ``by``) and the earliest after it."""
    keys = [*by, "_entity"]

    def per(e: pl.Expr) -> pl.Expr:
        return e.over(by) if by else e

    other = pl.col("_entity") != per(pl.col("_entity").shift(1))  # a run of one entity's rows starts here (or none)
    last = pl.col("_entity") != per(pl.col("_entity").shift(-1))
    return (
        t.select(*keys, "ts")
        .drop_nulls()
        .sort([*by, "ts"])
        .with_columns(
            _back=per(pl.when(other).then(per(pl.col("ts").shift(1))).forward_fill()),
            _fwd=per(pl.when(last).then(per(pl.col("ts").shift(-1))).backward_fill()),
        )
        .sort("ts")
    )


def _others_near(q: pl.DataFrame, ref: pl.DataFrame, by: list[str]) -> pl.Series:
    """Per row of ``q`` (in its order): log10(1 + seconds) to the nearest row of a stream, before or after it, of another
    entity (``_entity``) with the same values of ``by``; None where the stream has none. ``ref``: :func:`_near_ref` of
    the stream's rows with the same ``by``."""
    if ref.height == 0 or q.height == 0:
        return pl.Series([None] * q.height, dtype=pl.Float64)
    d = q.select(*by, "_entity", "ts").with_row_index("_o").sort("ts")
    sides: tuple[tuple[Literal["backward", "forward"], str, str], ...] = (
        ("backward", "_b_ts", "_back"),
        ("forward", "_f_ts", "_fwd"),
    )
    for strategy, ts, own in sides:
        hit = ref.select(*by, pl.col("ts").alias(ts), pl.col("_entity").alias(f"{ts}_e"), pl.col(own).alias(f"{ts}_own"))
        d = d.join_asof(hit, left_on="ts", right_on=ts, by=by or None, strategy=strategy, check_sortedness=False)
    back = pl.when(pl.col("_b_ts_e") != pl.col("_entity")).then(pl.col("_b_ts")).otherwise(pl.col("_b_ts_own"))
    fwd = pl.when(pl.col("_f_ts_e") != pl.col("_entity")).then(pl.col("_f_ts")).otherwise(pl.col("_f_ts_own"))
    secs = pl.min_horizontal((pl.col("ts") - back).dt.total_microseconds(), (fwd - pl.col("ts")).dt.total_microseconds()).cast(
        pl.Float64
    )
    return d.select("_o", (secs / 1e6 + 1).log10().alias("near")).sort("_o")["near"]


def _coincidence(frames: dict[str, pl.DataFrame], wanted: set[str]) -> dict[str, pl.DataFrame]:
    """Add ``f:ts:near:<t>`` to the ``wanted`` streams: per row, log10(1 + seconds) to the nearest row of stream ``t``
    (its own too) of another entity; and ``f:customer_id:near:<t>``, the same among ``t``'s rows naming the row's
    customer. None where there is no such row.

    An attack's rows are drawn as its actor's are, apart from the declared signals: never in step with other people's.
    A red team's outsider rows each came 50-300 ms after another employee's latest row, or 100-500 ms after another's
    login (in auth), or read the customer another employee had read last: a one-feature rule separated them at AUC
    0.98-1.0, and no feature of an entity's own rows saw it.
    """
    refs: dict[tuple[str, ...], pl.DataFrame] = {}  # made once per stream looked in, whatever stream looks

    def near(q: pl.DataFrame, t: str, by: list[str]) -> pl.Series:
        if (t, *by) not in refs:
            refs[(t, *by)] = _near_ref(frames[t], by)
        return _others_near(q, refs[(t, *by)], by)

    out = {}
    for s, df in frames.items():
        if s not in wanted or df.height == 0 or "ts" not in df.columns:
            out[s] = df
            continue
        cols = []
        for t, other in frames.items():
            if other.height == 0 or "ts" not in other.columns or "_entity" not in other.columns:
                continue
            cols.append(near(df, t, []).alias(f"f:ts:near:{t}"))
            if "customer_id" in df.columns and "customer_id" in other.columns:
                cols.append(near(df, t, ["customer_id"]).alias(f"f:customer_id:near:{t}"))
        out[s] = df.with_columns(cols)
    return out


def _echo_lags(
    q_ts: np.ndarray,
    q_ent: np.ndarray,
    q_tok: np.ndarray,
    q_unit: np.ndarray,
    r_ts: np.ndarray,
    r_ent: np.ndarray,
    r_tok: np.ndarray,
    bin_us: int = ECHO_BIN_US,
    grids: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: (how many other rows of its unit (``q_unit``) share one of its lags to the reference's rows
    (``r_*``, sorted by time) of another entity and token, the most over its lags, NaN where the unit has one row; how
    many lags it has).

    Times in microseconds; entities and tokens as integer codes, a missing token coded apart in the two (it matches
    nothing); units as integers 0 .. units - 1. The lags are signed, within ECHO_WINDOW_US either side and at most
    ECHO_MAX_PAIRS // 2 reference rows either side of the row's time; two lags are in common when they fall in one bin
    of ``bin_us``. With ``grids`` above 1, the bins are laid ``grids`` times, each shifted by ``bin_us // grids``, and
    a bin's rows count only as many as the distinct reference rows their lags in it go to (the fewer of the two), the
    most over the grids: in bins of a second, a unit's rows a second apart meet one colleague's row at lags one bin
    holds, which is one reference row, not a relay.
    """
    ((shared, lags),) = _echo_lags_binned((q_ts, q_ent, q_tok, q_unit), (r_ts, r_ent, r_tok), ((bin_us, grids),))
    return shared, lags


def _echo_lags_binned(
    query: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ref: tuple[np.ndarray, np.ndarray, np.ndarray],
    bins: Sequence[tuple[int, int]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`_echo_lags` for each ``(bin_us, grids)`` of ``bins``, the row's lags drawn once for all of them; ``query``
    is (``q_ts``, ``q_ent``, ``q_tok``, ``q_unit``) and ``ref`` (``r_ts``, ``r_ent``, ``r_tok``)."""
    (q_ts, q_ent, q_tok, q_unit), (r_ts, r_ent, r_tok) = query, ref
    n = len(q_ts)
    if n == 0 or len(r_ts) == 0:
        return [(np.full(n, np.nan), np.zeros(n, dtype=np.int64)) for _ in bins]
    half = ECHO_MAX_PAIRS // 2
    mid = np.searchsorted(r_ts, q_ts)
    lo = np.maximum(np.searchsorted(r_ts, q_ts - ECHO_WINDOW_US, "left"), mid - half)
    hi = np.minimum(np.searchsorted(r_ts, q_ts + ECHO_WINDOW_US, "right"), mid + half)
    unit = q_unit
    size = np.bincount(unit)
    lags = np.zeros(n, dtype=np.int64)
    # whole units at a time, about ECHO_CHUNK_PAIRS lags each: the memory stays bounded whatever the rows
    order = np.argsort(unit, kind="stable")
    pairs = np.cumsum(np.maximum(hi - lo, 0)[order])
    starts = np.flatnonzero(np.r_[True, np.diff(unit[order]) != 0])  # where a unit starts in ``order``
    targets = np.searchsorted(pairs, np.arange(0, max(int(pairs[-1]), 1), ECHO_CHUNK_PAIRS))
    cuts = np.unique(starts[np.searchsorted(starts, targets, "right") - 1])
    best = [np.zeros(n) for _ in bins]
    for c0, c1 in zip(cuts, [*cuts[1:], n], strict=True):
        rows = order[c0:c1]
        counts = np.maximum(hi[rows] - lo[rows], 0)
        k = np.repeat(np.arange(len(rows)), counts)
        j = lo[rows][k] + (np.arange(len(k)) - np.repeat(np.cumsum(counts) - counts, counts))
        i = rows[k]
        keep = (r_ent[j] != q_ent[i]) & (r_tok[j] != q_tok[i])
        i, k, j = i[keep], k[keep], j[keep]
        lag = q_ts[i] - r_ts[j]
        lags += np.bincount(i, minlength=n)
        if not len(i):
            continue
        for (bin_us, grids), top in zip(bins, best, strict=True):
            _echo_bins(unit, size, lags, rows, i, k, j, lag, len(r_ts), bin_us, grids, top)
    many_rows = size[unit] > 1
    out = []
    for top in best:
        shared = np.full(n, np.nan)
        shared[many_rows] = top[many_rows]
        out.append((shared, lags.copy()))
    return out


def _echo_bins(
    unit: np.ndarray,
    size: np.ndarray,
    lags: np.ndarray,
    rows: np.ndarray,
    i: np.ndarray,
    k: np.ndarray,
    j: np.ndarray,
    lag: np.ndarray,
    n_ref: int,
    bin_us: int,
    grids: int,
    best: np.ndarray,
) -> None:
    """One chunk of :func:`_echo_lags_binned` in bins of ``bin_us`` laid ``grids`` times: raise ``best`` (per query row)
    to the others of its unit that share a bin of its lags (``i`` the lag's query row, ``k`` its row within the chunk's
    ``rows``, ``j`` its reference row)."""
    nbins = 2 * (ECHO_WINDOW_US // bin_us) + 3
    # the lags come row by row (``k`` rises) and a unit's rows together (``rows`` is in unit order)
    at_unit = unit[i]
    if grids > 1:
        # per unit, the fewest others a row must share a bin with to reach ECHO_LINE at all (Poisson, with the least
        # mean any of its rows has; one fewer, a margin): a bin whose rows are fewer stays under the line however
        # many reference rows they go to, so its distinct reference rows are not counted
        most = np.zeros(len(size), dtype=np.int64)
        np.maximum.at(most, unit[rows], lags[rows])
        least = (np.bincount(at_unit, minlength=len(size)) - most) / (2 * ECHO_WINDOW_US / bin_us)
        lines = _echo_lines(least, grids)
    for g in range(grids):
        # falls within a row's lags (the reference is in time order, so a row's bins come in order)
        b = (lag + ECHO_WINDOW_US + g * (bin_us // grids)) // bin_us
        first = np.r_[True, (k[1:] != k[:-1]) | (b[1:] != b[:-1])]  # each row once per bin
        u_first = at_unit[first]
        u0 = int(u_first[0])  # the chunk's least unit (``rows`` is in unit order)
        span = (int(u_first[-1]) - u0 + 1) * nbins
        if span <= ECHO_DENSE_BINS:  # few enough bins of the chunk's units to count them all (wide bins): no sort
            group = (u_first - u0) * nbins + b[first]  # each (row, bin)'s bin of the unit
            rows_with = np.bincount(group, minlength=span)  # rows of the unit with a lag in the bin
            u_of = u0 + np.arange(span) // nbins  # each bin's unit
        else:
            key = u_first * nbins + b[first]
            by = np.argsort(key, kind="stable")  # timsort: a unit's rows are together, each row's bins in order (runs)
            sorted_key = key[by]
            edge = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1], True])
            rows_with = np.diff(edge)
            group = np.empty(len(by), dtype=np.int64)
            group[by] = np.repeat(np.arange(len(rows_with)), rows_with)
            u_of = u_first[by[edge[:-1]]]
        if grids > 1:  # no more than the distinct reference rows of those lags, in bins that can matter
            can = rows_with - 1 >= lines[u_of]  # per bin
            if can.any():
                g_of = group[np.cumsum(first) - 1]  # each lag's (row, bin)
                many = can[g_of]
                pair = np.sort(g_of[many] * n_ref + j[many], kind="stable")
                pair = pair[np.r_[True, pair[1:] != pair[:-1]]]  # distinct (bin, reference row)
                refs = np.bincount(pair // n_ref, minlength=len(rows_with))
                rows_with = np.where(can, np.minimum(rows_with, refs), rows_with)
        # the others among them, the most over a row's bins (a row's bins are together)
        row_of = i[first]
        starts = np.flatnonzero(np.r_[True, row_of[1:] != row_of[:-1]])
        top = np.maximum.reduceat(rows_with[group], starts) - 1.0
        heads = row_of[starts]
        best[heads] = np.maximum(best[heads], top)


@functools.cache
def _echo_line_table(grids: int) -> tuple[np.ndarray, np.ndarray]:
    """Poisson means on a fine log grid and, per mean, the fewest rows at which odds of ECHO_LINE are reached."""
    from scipy.stats import poisson

    means = np.geomspace(1e-9, 1e7, 6401)
    return means, poisson.isf(10.0**-ECHO_LINE / (2 * grids), means)


def _echo_lines(means: np.ndarray, grids: int) -> np.ndarray:
    """Per Poisson mean, a lower bound on the count past which a bin's rows can reach ECHO_LINE: the table's value at
    the grid's mean just below (the count grows with the mean), 0 below the grid."""
    grid, table = _echo_line_table(grids)
    at = np.searchsorted(grid, means, "right") - 1
    return np.where(at >= 0, table[np.clip(at, 0, len(grid) - 1)], 0.0)


def _echo_surprise(
    shared: np.ndarray, lags: np.ndarray, unit: np.ndarray, bin_us: int = ECHO_BIN_US, grids: int = 1
) -> np.ndarray:
    """-log10 of the odds that as many of a unit's other rows as ``shared`` (see :func:`_echo_lags`) share a lag with the
    row by chance: Poisson, with the mean the unit's other rows' lags over the window's bins of ``bin_us``, for the best
    of the row's lags on any of the ``grids`` (times 2 x ``grids`` x ``lags``, a margin over the bins it looks in); 0
    below ECHO_LINE, so that a benign row is 0 but for about one in a thousand whatever its unit's rows; NaN where
    ``shared`` is."""
    from scipy.stats import poisson

    total = np.bincount(unit, weights=lags)[unit] if len(unit) else np.zeros(0)
    expect = (total - lags) / (2 * ECHO_WINDOW_US / bin_us)
    with np.errstate(divide="ignore"):
        log_p = poisson.logsf(shared - 1, expect) + np.log(2.0 * grids * np.maximum(lags, 1))
    out = np.clip(-log_p / np.log(10.0), 0.0, ECHO_MAX_SURPRISE)
    out[(shared <= 0) | (out < ECHO_LINE)] = 0.0
    out[np.isnan(shared)] = np.nan
    return out


def _echo(frames: dict[str, pl.DataFrame], wanted: set[str]) -> dict[str, pl.DataFrame]:
    """Add ``f:ts:echo`` (and ``f:ts:echo:wide``: the same in bins of a second, see :data:`ECHO_WIDE_US`) to the
    ``wanted`` streams: per row, how unlikely by chance it is that as many of the other rows
    of its unit (its token, else its entity's day) share one of its lags to one stream's rows of other entities
    (-log10 of the odds, :func:`_echo_surprise` of :func:`_echo_lags`), the most over the streams. None where the unit
    has one row. In odds, not in the share of the unit's rows: a small unit's share is coarse and a busy one's rows
    share lags by chance, so a share moved with the unit's rows (an impersonation's few rows a day on a colleague's
    account at stealth 1: KS 0.43 against a line of 0.39, no lag planted).

    Rows drawn as their actor's come at no fixed delay from anybody else's: a red team's relay sent each outsider row
    17 s after a colleague's admin row, and a rule "another employee's row 17.000 s before" flagged 99.7% of its rows
    and 0.02% of benign ones, while the nearest row of another entity (``near``), with other people's rows in between,
    was the colleague's for 43% of them only. A benign row shares a lag with a few of its unit's rows by chance.
    """
    with_ts = {t: df for t, df in frames.items() if df.height and "ts" in df.columns and "_entity" in df.columns}
    if not with_ts:
        return frames

    def coded(column: str) -> dict[str, int]:  # one code per value over the streams, so they compare across streams
        values = pl.concat([df[column].cast(pl.String) for df in with_ts.values() if column in df.columns])
        return {v: k for k, v in enumerate(values.drop_nulls().unique().sort().to_list())}

    ents, toks = coded("_entity"), coded(TOKEN)

    def arrays(df: pl.DataFrame) -> pl.DataFrame:
        token = pl.col(TOKEN).cast(pl.String) if TOKEN in df.columns else pl.lit(None, pl.String)
        return df.select(
            pl.col("ts").dt.epoch("us").alias("t"),
            pl.col("_entity").replace_strict(ents, return_dtype=pl.Int64).alias("e"),
            token.replace_strict(toks, default=-1, return_dtype=pl.Int64).alias("k"),
            # the unit: the token, else the entity's day
            pl.coalesce(pl.concat_str(pl.lit("t"), token), pl.concat_str("_entity", pl.lit("/"), pl.col("_day").cast(pl.String)))
            .rank("dense")
            .cast(pl.Int64)
            .sub(1)
            .alias("u"),
        )

    rows = {t: arrays(df) for t, df in with_ts.items()}
    refs = {t: r.sort("t") for t, r in rows.items()}
    out = dict(frames)
    for s, df in with_ts.items():
        if s not in wanted:
            continue
        q_ts, q_ent, q_tok, q_unit = (rows[s][c].to_numpy() for c in ("t", "e", "k", "u"))
        share, wide = np.full(df.height, np.nan), np.full(df.height, np.nan)
        for r in refs.values():
            # a row without a token matches no reference row's token (-1 there is -2 here)
            r_tok = r["k"].to_numpy()
            ref = (r["t"].to_numpy(), r["e"].to_numpy(), np.where(r_tok < 0, -2, r_tok))
            bins = ((ECHO_BIN_US, 1), (ECHO_WIDE_US, ECHO_WIDE_GRIDS))
            (found, lags), (found_wide, _) = _echo_lags_binned((q_ts, q_ent, q_tok, q_unit), ref, bins)
            share = np.fmax(share, _echo_surprise(found, lags, q_unit))
            wide = np.fmax(wide, _echo_surprise(found_wide, lags, q_unit, ECHO_WIDE_US, ECHO_WIDE_GRIDS))
        out[s] = df.with_columns(
            pl.Series("f:ts:echo", share, nan_to_null=True), pl.Series("f:ts:echo:wide", wide, nan_to_null=True)
        )
    return out


def _same_clock_days(entity: np.ndarray, day: np.ndarray, tod: np.ndarray) -> np.ndarray:
    """Per row: the share of its entity's other days that have a row within DAILY_US of its time of day (the clock
    taken round midnight), NaN where the entity has rows on one day only. ``entity`` and ``day`` integer codes, ``tod``
    microseconds since local midnight."""
    n = len(tod)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    # each row also a day before and after midnight, so a window round midnight finds the rows on the other side
    e3, d3, t3 = np.tile(entity, 3), np.tile(day, 3), np.concatenate([tod - DAY_US, tod, tod + DAY_US])
    span = 3 * DAY_US
    key = e3 * span + (t3 + DAY_US)
    order = np.argsort(key)
    key, d3 = key[order], d3[order]
    own = entity * span + tod + DAY_US
    lo, hi = np.searchsorted(key, own - DAILY_US, "left"), np.searchsorted(key, own + DAILY_US, "right")
    counts = hi - lo
    i = np.repeat(np.arange(n), counts)
    j = lo[i] + (np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts))
    other = d3[j] != day[i]
    pair = np.unique(i[other] * (int(day.max()) + 1) + d3[j][other])  # each other day once per row
    found = np.bincount(pair // (int(day.max()) + 1), minlength=n)
    ent_days = np.unique(entity * (int(day.max()) + 1) + day) // (int(day.max()) + 1)
    days = np.bincount(ent_days, minlength=int(entity.max()) + 1)[entity]
    many = days > 1
    out[many] = found[many] / (days[many] - 1)
    return out


def _daily(frames: dict[str, pl.DataFrame], wanted: set[str], tz: str) -> dict[str, pl.DataFrame]:
    """Add ``f:ts:daily`` to the ``wanted`` streams: per row, the share of its entity's other days with a row of the
    stream at the same time of day, within DAILY_US (see :func:`_same_clock_days`). None where the entity has one day.

    A red team's script read one record a day at the same second of the clock (a cron job): a rule "a row within a
    second of one clock time on most days" told its actors from benign support staff at AUC 0.90, and every feature
    looked at one day's rows, or at the gap to the row before (``again``). A benign row meets its entity's rows of
    another day within a second now and then, by chance, where it is busy.
    """
    out = dict(frames)
    for s, df in frames.items():
        if s not in wanted or df.height == 0 or "ts" not in df.columns or "_entity" not in df.columns:
            continue
        loc = _local(pl.col("ts"), tz)
        a = df.select(
            pl.col("_entity").rank("dense").cast(pl.Int64).alias("e"),
            (pl.col("_day").cast(pl.Int64) - pl.col("_day").cast(pl.Int64).min()).alias("d"),
            (loc - loc.dt.truncate("1d")).dt.total_microseconds().alias("t"),
        )
        share = _same_clock_days(a["e"].to_numpy(), a["d"].to_numpy(), a["t"].to_numpy())
        out[s] = df.with_columns(pl.Series("f:ts:daily", share, nan_to_null=True))
    return out


def load_rows(
    datasets: Sequence[Dataset], entry: int | Sequence[int] = 0, streams: Iterable[str] | None = None
) -> dict[str, pl.DataFrame]:
    """The rows of the datasets (pooled), labelled, with their raw and derived features.

    Attack rows are those of incidents of scenario entry ``entry`` of each dataset's config;
    other incidents' rows are dropped. ``streams``: which streams to return (default: those with
    attack rows).

    Several entries (a sequence): their rows loaded and featurised once, each attack row's entry in ``_entry`` (null on
    benign rows); :func:`entry_rows` gives one entry's rows. Each entry's rows are then context of the others' (their
    nearest rows, shared lags, ...), as every row of the dataset is to a detector; alone, they are not there.
    """
    pooled: dict[str, list[pl.DataFrame]] = {s: [] for s in LOG_STREAMS}
    several = not isinstance(entry, int)
    chosen = {entry} if isinstance(entry, int) else set(entry)
    # per dataset: each chosen incident's entry
    entry_of = [{i: e for i, e in enumerate(_entry_of_incidents(ds)) if e in chosen} for ds in datasets]
    incidents = [list(of) for of in entry_of]
    wanted = set()  # streams with attack rows in some dataset: only those are featurised
    for ds, inc in zip(datasets, incidents, strict=True):
        wanted |= set(ds.truth("malicious_events").filter(pl.col("incident_id").is_in(inc))["stream"].unique().to_list())
    if streams is not None:
        wanted = set(streams)
    for k, ds in enumerate(datasets):
        inc = incidents[k]
        roles = pl.concat([pl.read_parquet(p) for p in layout.world_glob(ds.root, "employee_roles")]).select(
            "employee_id", "role", "start_date", "end_date"
        )
        employees = pl.concat([pl.read_parquet(p) for p in layout.world_glob(ds.root, "employees")])
        related = _employee_related(ds)
        shifts = employees.select("employee_id", pl.col("shift").alias("_shift"))
        of = entry_of[k] if several else None
        frames = {s: _load_stream(ds, k, s, inc, roles, shifts, of) for s in LOG_STREAMS}
        frames = _cross_presence(frames, wanted)  # the other streams are looked in, not featurised
        frames = _after_auth(frames, wanted)
        frames = _lifecycle(frames, wanted)
        frames = _coincidence(frames, wanted)
        frames = _echo(frames, wanted)
        frames = _daily(frames, wanted, ds.timezone)
        customers = _usual(
            frames, _with_related(ds, pl.concat([pl.read_parquet(p) for p in layout.world_glob(ds.root, "customers")]))
        )
        for s, df in frames.items():
            if df.height and s in wanted:
                rows = _actor_features(_row_features(df, s, ds.timezone, customers), s, employees, roles, related)
                pooled[s].append(_kin_features(rows, s, customers, employees))
    # a row's own entity column is not a feature, but the other streams' presence columns of it stay
    return {s: pl.concat(v, how="diagonal_relaxed") for s, v in pooled.items() if v}


def entry_rows(rows: dict[str, pl.DataFrame], entry: int) -> dict[str, pl.DataFrame]:
    """One entry's rows of :func:`load_rows` of several entries: the benign rows and that entry's attack rows, in the
    streams where it has attack rows (the other entries' rows are dropped here, after they served as context)."""
    out = {}
    for s, df in rows.items():
        if "_entry" not in df.columns:
            raise AuditError("entry_rows: expected the rows of load_rows(datasets, entry=[...]) of several entries")
        mine = df.filter(pl.col("_entry").is_null() | (pl.col("_entry") == entry))
        if mine.select((pl.col("_entry") == entry).any()).item():
            out[s] = mine.with_columns(_attack=pl.col("_entry").is_not_null()).drop("_entry")
    return out


# ---- row features --------------------------------------------------------------------------------


def _shape(col: pl.Expr) -> pl.Expr:
    """Letters -> A, digits -> 9, runs collapsed (``LT-00042`` -> ``AA-9``... kept short)."""
    return col.str.replace_all(r"[A-Za-z]+", "A").str.replace_all(r"[0-9]+", "9")


def _prefix(col: pl.Expr) -> pl.Expr:
    """The value without its last alphanumeric run (``203.0.113.7`` -> ``203.0.113.``)."""
    return col.str.replace(r"[A-Za-z0-9]+$", "")


def _row_features(df: pl.DataFrame, stream: str, tz: str, customers: pl.DataFrame) -> pl.DataFrame:
    """Derived features of every column, named ``f:<column>:<feature>``, driven by dtype."""
    days = df["_day"].unique().to_list()
    off = pl.DataFrame(
        {"_day": days, "_off": [d.weekday() >= 5 or pools.is_holiday(d) for d in days]},
        schema={"_day": pl.Date, "_off": pl.Boolean},
    )
    df = df.join(off, on="_day", how="left")
    exprs: list[pl.Expr] = []
    for c, t in df.schema.items():
        if c.startswith(("_", "f:")) or c in SKIP:
            continue
        exprs.append(pl.col(c).is_null().cast(pl.Float64).alias(f"f:{c}:null"))
        if c not in ENTITY[stream]:  # the entity's id: never a feature (the classifier would learn the actor, not the attack)
            exprs += _column_features(c, t, tz)
    df = _with_value_features(df, exprs)
    # time since the entity's previous row (whatever its label), as a detector sees the stream
    gus = pl.col("ts").diff().over("_entity").dt.total_microseconds()  # one expression: computed once (polars' CSE)
    df = df.sort("_entity", "ts").with_columns(
        (gus.cast(pl.Float64) / 1e6 + 1).log10().fill_null(-1.0).alias("f:ts:gap"), _gus=gus
    )
    # whether the row's gap, to the microsecond, is one the entity's rows show on another day too, and few other
    # entities show at all: a script's fixed sleep repeats its delay exactly, where a person's delays are drawn to the
    # microsecond. A red team's takeover put each day's second row exactly 41 s after its first, all else as drawn
    # (77% of its days against none of 6,340 benign ones), and the audit passed it. A delay every client has (a session's
    # logout 5 s after its last page) is the system's, not anyone's habit: shown by more than AGAIN_ENTITIES of the
    # dataset's benign entities of the stream, it is none. Counted over benign entities alone: 18 actors of one script
    # (three incidents of six) were over the line among some 300 entities, and their 41 s delay passed as the system's
    per = [c for c in ("_ds",) if c in df.columns]  # the datasets pooled (none: one)
    entities = (pl.col("_entity").filter(~pl.col("_attack")) if "_attack" in df.columns else pl.col("_entity")).n_unique()
    few = ((entities.over(per) if per else entities) * AGAIN_ENTITIES).clip(1)
    df = df.with_columns(
        pl.when((pl.col("_gus") > 0) & (entities.over([*per, "_gus"]) <= few))
        .then((pl.col("_day").n_unique().over("_entity", "_gus") > 1).cast(pl.Float64))
        .otherwise(0.0)  # an entity's first row, one at the same instant as the row before it, or a system's delay
        .alias("f:ts:again")
    ).drop("_gus")
    # a session's rhythm, on a token's rows from its third on: |log10| of the ratio of the row's gap to the gap before
    # it. A scripted loop's even spacing is 0 on every row where a person's pages spread wide. Only within a token:
    # one actor's session, whose every row is the attack's or none is. Over an entity's rows it mixed the attack's
    # rows with the holder's (a taken-over account's extra logins broke a benign daily cadence: added rows, which
    # volume explains), and a session's first two rows have none (their share moves with the session's length)
    # A stream without tokens (staff's admin rows): a session is an entity's rows of a day from one device and address,
    # so that a taken-over account's rows (the outsider's device and address) are not mixed with its holder's
    session = TOKEN
    if TOKEN not in df.columns:
        session = "_session"
        df = df.with_columns(
            _session=pl.concat_str([pl.col(c) for c in ("_entity", "device", "src_ip", "_day") if c in df.columns], separator="|")
        )
    gap = pl.col("ts").diff().over(session).dt.total_microseconds().cast(pl.Float64) / 1e6 + 1e-3
    span = (pl.col("ts").max() - pl.col("ts").min()).over(session).dt.total_microseconds().cast(pl.Float64) / 1e6
    tie = ["event_id"] if "event_id" in df.columns else []  # rows of the same time: a fixed order, so fixed figures
    # an id's order within the session: 1 where the row's id is above the session's last id before it, 0 below, none on
    # the first and where equal (customers read in ascending order, or tickets worked in their numbers' order)
    ids = [
        c
        for c, t in df.schema.items()
        if t.is_integer() and c.endswith("_id") and c not in (*ENTITY[stream], TOKEN, *SKIP) and not c.startswith(("_", "f:"))
    ]
    ups = [
        pl.when(pl.col(session).is_not_null() & (pl.col(c) != (last := pl.col(c).shift(1).forward_fill().over(session))))
        .then((pl.col(c) > last).cast(pl.Float64))
        .alias(f"f:{c}:up")
        for c in ids
    ]
    # how many rows of the dataset name the row's id (a ticket's reads, a customer's): a day's opens all under one
    # ticket were each a value benign rows carry, in a column whose distinct values move with the day's rows
    uses = [
        pl.when(pl.col(c).is_not_null()).then(pl.len().over("_ds", c).cast(pl.Float64).log10()).alias(f"f:{c}:uses") for c in ids
    ]
    df = (
        df.with_columns(uses)
        .with_row_index("_o")
        .sort(session, "ts", *tie, maintain_order=True, nulls_last=True)
        .with_columns(
            pl.when(pl.col(session).is_not_null()).then((gap / gap.shift(1).over(session)).log10().abs()).alias("f:ts:rhythm"),
            # its pace: the row's gap over the session's mean gap (log10), from the session's second row on. Rows
            # squeezed into ten minutes of a day's session are far faster than the session's mean; rows added through
            # the session (volume) keep their spacing near it
            pl.when(pl.col(session).is_not_null() & (pl.len().over(session) >= PACE_MIN_ROWS) & (span > 0))
            .then((gap * (pl.len().over(session) - 1) / span).log10())
            .alias("f:ts:pace"),
            *ups,
        )
        .sort("_o")
        .drop("_o", *(["_session"] if session == "_session" else []))
    )
    # the customers a row names: known? signed up before the row? how active? (not where the customer is
    # the row's entity: who is read is the scenario's choice, as an employee's attributes are)
    if "customer_id" in df.columns and "customer_id" not in ENTITY[stream]:
        df = _customer_features(df, customers)
    return df.drop("_off")


def _with_value_features(df: pl.DataFrame, exprs: list[pl.Expr]) -> pl.DataFrame:
    """``df.with_columns(exprs)``, where a feature of a string column alone is computed once per distinct value.

    A string column's shape and prefix are regular expressions; a column of ten user agents over 100k rows ran them
    100k times. Such features are computed on the column's distinct values and joined back; the columns come out in
    the order ``with_columns`` gives them.
    """
    names = [*df.columns, *(e.meta.output_name() for e in exprs)]
    per_value: dict[str, list[pl.Expr]] = {}
    rest = []
    for e in exprs:
        roots = e.meta.root_names()
        if len(set(roots)) == 1 and df.schema[roots[0]] == pl.String:
            per_value.setdefault(roots[0], []).append(e)
        else:
            rest.append(e)
    df = df.with_columns(rest)
    for c, es in per_value.items():
        values = df.select(pl.col(c).unique()).with_columns(es)
        df = df.join(values, on=c, how="left", nulls_equal=True, maintain_order="left")
    return df.select(names)


def _column_features(c: str, t: pl.DataType, tz: str) -> list[pl.Expr]:
    """The derived features of one column by its dtype: times (local hour, weekday, night, sub-second), strings (value,
    shape, prefix, length, whether it holds the entity's number), integers (id bit fields; numbers), floats."""
    col = pl.col(c)
    exprs: list[pl.Expr] = []
    if t == pl.Datetime or isinstance(t, pl.Datetime):
        loc = _local(col, tz)
        exprs += [
            (loc.dt.hour() + loc.dt.minute() / 60).cast(pl.Float64).alias(f"f:{c}:hour"),
            loc.dt.weekday().cast(pl.Float64).alias(f"f:{c}:weekday"),
            (loc.dt.hour() < 6).or_(pl.col("_off")).cast(pl.Float64).alias(f"f:{c}:night"),
            # the clock's own fields: times on whole minutes, or minutes on the quarter hour, move the hour by little
            loc.dt.minute().cast(pl.Float64).alias(f"f:{c}:minute"),
            loc.dt.second().cast(pl.Float64).alias(f"f:{c}:second"),
            (col.dt.epoch("us") % 1_000_000).cast(pl.Float64).alias(f"f:{c}:subsecond"),
        ]
    elif t == pl.String:
        exprs += [
            col.fill_null("<null>").alias(f"f:{c}:value"),
            _shape(col).fill_null("<null>").alias(f"f:{c}:shape"),
            _prefix(col).fill_null("<null>").alias(f"f:{c}:prefix"),
            col.str.len_chars().cast(pl.Float64).alias(f"f:{c}:length"),
            (col.str.replace_all(r"\D", "").cast(pl.Int64, strict=False) == pl.col("_eid"))
            .fill_null(False)
            .cast(pl.Float64)
            .alias(f"f:{c}:has_entity"),
        ]
    elif t.is_integer():
        v = col.cast(pl.Int64)
        # the digits a generator leaves in a number whatever its size: parity (ids drawn even, a step of two)
        # and trailing zeros (round numbers); a distribution or a bit field of the whole value hides both
        exprs += [
            (v % 2).abs().cast(pl.Float64).alias(f"f:{c}:odd"),
            pl.when(v.is_not_null())
            .then(v.abs().cast(pl.String).str.extract(r"[1-9](0*)$").str.len_chars().fill_null(0))
            .cast(pl.Float64)
            .alias(f"f:{c}:zeros"),
        ]
        if c.endswith("_id"):
            # a field above the lowest holds the number only where it is not zero: the high fields of a small id are, and
            # an actor numbered 0 "held" its number in every customer id it read (an audit grid's FAIL at stealth 1)
            field = [(v.abs() // (1 << s)) % (1 << 24) for s in (0, 8, 16, 24, 32)]
            has = pl.any_horizontal(
                [field[0] == pl.col("_eid"), *((f == pl.col("_eid")) & (f != 0) for f in field[1:])]
            ).fill_null(False)
            exprs += [
                (64 - v.abs().bitwise_leading_zeros().cast(pl.Int64)).cast(pl.Float64).alias(f"f:{c}:bits"),
                (v.abs() % (1 << 16)).cast(pl.Float64).alias(f"f:{c}:low16"),
                (v.abs() // (1 << 40)).cast(pl.Float64).alias(f"f:{c}:high"),
                has.cast(pl.Float64).alias(f"f:{c}:has_entity"),
                v.cast(pl.String).fill_null("<null>").alias(f"f:{c}:value"),
            ]
        else:
            exprs += [v.cast(pl.Float64).alias(f"f:{c}:num"), v.cast(pl.String).fill_null("<null>").alias(f"f:{c}:value")]
    elif t.is_float():
        exprs.append(col.cast(pl.Float64).alias(f"f:{c}:num"))
    return exprs


def _profile_columns(customers: pl.DataFrame) -> list[str]:
    """A world table's categories: its string columns with two values or more and at most a tenth as many values as
    rows (a customer's tier, home region, locale; an employee's team or office; not a name, an address or a phone
    number, which name one customer or a few)."""
    n = customers.height
    return [
        c
        for c, t in customers.schema.items()
        if t == pl.String and c != "customer_id" and 2 <= customers[c].n_unique() <= max(2, n // 10)
    ]


def _employee_related(ds: Dataset) -> pl.DataFrame | None:
    """Per employee, from each other world table keyed by an employee (a column ``employee_id`` or ``*_employee_id``: the
    credentials' owner): their number of rows in it (``credentials.rows``, 0 for none) and, over those rows, each date's
    share with a value (``credentials.rotated.present``) and log10(1 + days) from its earliest value to the dataset's
    first day (``credentials.created.age``, none without one), and the same from the first date of its oldest row whose
    later dates are empty (``credentials.open.age``: a key never rotated nor revoked; 0 without one). A red team's
    takeovers of accounts whose owner held an API key made over a year before and never rotated (9 of 9 actors against
    10% of their peers) passed the audit: no feature read the credentials table. None when no such table holds rows."""
    start = pl.lit(ds.buckets[0], pl.Date) if ds.buckets else None
    out: pl.DataFrame | None = None
    for table, schema in WORLD_TABLES.items():
        if table in ("employees", "employee_roles"):
            continue
        key = next((c for c in schema.names() if c == "employee_id" or c.endswith("_employee_id")), None)
        files = layout.world_glob(ds.root, table) if key else []
        if not key or not files:
            continue
        rows = pl.concat([pl.read_parquet(p) for p in files]).filter(pl.col(key).is_not_null())
        if rows.height == 0:
            continue
        aggs = [pl.len().cast(pl.Float64).alias(f"{table}{ROWS_IN}")]
        dates = [c for c, t in rows.schema.items() if t == pl.Date or isinstance(t, pl.Datetime)]

        def age(col: pl.Expr) -> pl.Expr:
            return ((start - col.cast(pl.Date).min()).dt.total_days().clip(0) + 1).cast(pl.Float64).log10()

        for c in dates:
            aggs.append(pl.col(c).is_not_null().mean().cast(pl.Float64).alias(f"{table}.{c}.present"))
            if start is not None:
                aggs.append(age(pl.col(c)).alias(f"{table}.{c}.age"))
        if start is not None and len(dates) > 1:
            # the oldest row still open (its later dates empty: a key never rotated nor revoked), by its first date
            still = pl.all_horizontal(pl.col(c).is_null() for c in dates[1:])
            aggs.append(age(pl.col(dates[0]).filter(still)).alias(f"{table}.open.age"))
        part = rows.group_by(pl.col(key).alias("employee_id")).agg(aggs)
        if f"{table}.open.age" in part.columns:
            part = part.with_columns(pl.col(f"{table}.open.age").fill_null(0.0))
        out = part if out is None else out.join(part, on="employee_id", how="full", coalesce=True)
    return out


#: The suffix of a customer's count of rows in another world table keyed by customer (``orders.rows``).
ROWS_IN = ".rows"
#: The suffixes of a customer's figures from another world table keyed by customer (:func:`_with_related`): its rows,
#: a number column's mean over them (``orders.amount.mean``), a text column's share of them that has a value
#: (``addresses.entrance_code.present``), a time's distance from the dataset's first day (``orders.ts.recent``). Tested
#: as numbers.
RELATED = (ROWS_IN, ".mean", ".present", ".age", ".recent")


def _with_related(ds: Dataset, customers: pl.DataFrame) -> pl.DataFrame:
    """``customers`` with, per other world table keyed by customer (orders, addresses), the customer's number of rows
    in it (``<table>.rows``, 0 for none), and over those rows each number or yes/no column's mean
    (``<table>.<column>.mean``), each text column's share with a value (``<table>.<column>.present``) and, for each
    date or time, log10(1 + days) from its earliest and from its latest value to the dataset's first day
    (``<table>.<column>.age``, ``<table>.<column>.recent``; 0 for a value on or after it) and the latest value's weekday
    and local hour (``<table>.<column>.weekday``, ``.hour``: categories, whose shares of customers are profile
    features); ids aside. Whom an attack reads may differ in what the world holds of them: a red team's reads of
    customers who had ordered (100% of them against 65% of benign reads), of the top fifth by mean order amount (66%
    against 13%) and of customers whose own address has an entrance code (100% against 60%) each passed the audit;
    another's reads of customers who had ordered in the two weeks before the span were named only through their
    orders' number, and reads of customers whose latest order was placed at night (65% of attack reads against 5.5%),
    with as many orders as the drawn ones, passed."""
    start = pl.lit(ds.buckets[0], pl.Date) if ds.buckets else None

    def days(col: pl.Expr) -> pl.Expr:
        assert start is not None
        return ((start - col.cast(pl.Date)).dt.total_days().clip(0) + 1).cast(pl.Float64).log10()

    out = customers
    for table in WORLD_TABLES:
        if table == "customers" or "customer_id" not in WORLD_TABLES[table]:
            continue
        files = layout.world_glob(ds.root, table)
        if not files:
            continue
        rows = pl.concat([pl.read_parquet(p) for p in files])
        aggs = [pl.len().cast(pl.Int64).alias(f"{table}{ROWS_IN}")]
        for c, t in rows.schema.items():
            if c == "customer_id" or c.endswith("_id"):
                continue
            if t.is_numeric() or t == pl.Boolean:
                aggs.append(pl.col(c).cast(pl.Float64).mean().alias(f"{table}.{c}.mean"))
            elif t == pl.String:
                aggs.append(pl.col(c).is_not_null().cast(pl.Float64).mean().alias(f"{table}.{c}.present"))
            elif (t == pl.Date or isinstance(t, pl.Datetime)) and start is not None:
                aggs += [days(pl.col(c).min()).alias(f"{table}.{c}.age"), days(pl.col(c).max()).alias(f"{table}.{c}.recent")]
                # the latest one's weekday and (a time's) local hour, as categories: their shares of customers are
                # the profile's (:func:`_profile_columns`)
                last = pl.col(c).max()
                if isinstance(t, pl.Datetime):
                    last = (last if t.time_zone else last.dt.replace_time_zone("UTC")).dt.convert_time_zone(ds.timezone)
                    aggs.append(last.dt.hour().cast(pl.String).alias(f"{table}.{c}.hour"))
                aggs.append(last.dt.weekday().cast(pl.String).alias(f"{table}.{c}.weekday"))
        per = rows.group_by("customer_id").agg(aggs)
        out = out.join(per, on="customer_id", how="left").with_columns(pl.col(f"{table}{ROWS_IN}").fill_null(0))
    return out


def _usual(frames: dict[str, pl.DataFrame], customers: pl.DataFrame) -> pl.DataFrame:
    """``customers`` with, per stream of the customers' own rows (the gateway's), each text column's most common value
    among the customer's benign rows (``<stream>.<column>``; ties by value): their usual client, country, endpoint. A
    red team's takeover read only customers whose own client is an iPhone (62% of its reads against 17.5%), which no
    world table holds, and the audit passed it. As a category of the customer table it is judged as one
    (:func:`_profile_columns`: those with two values or more and few enough)."""
    out = customers
    for s, df in sorted(frames.items()):
        if "customer_id" not in ENTITY.get(s, ()) or not df.height or "_attack" not in df.columns:
            continue
        ben = df.filter(~pl.col("_attack") & pl.col("customer_id").is_not_null())
        cols = [c for c, t in ben.schema.items() if t == pl.String and not c.startswith(("_", "f:")) and c not in SKIP]
        for c in cols:
            usual = (
                ben.filter(pl.col(c).is_not_null())
                .group_by("customer_id", c)
                .len()
                .sort(["customer_id", "len", c], descending=[False, True, False])
                .group_by("customer_id", maintain_order=True)
                .first()
                .select("customer_id", pl.col(c).alias(f"{s}.{c}"))
            )
            out = out.join(usual, on="customer_id", how="left")
    return out


def _derived_profile(customers: pl.DataFrame, table: str = "customers") -> dict[str, pl.Expr]:
    """Categories derived from the customer table's columns that name one customer or a few (a name, an e-mail, a
    phone, a sign-up date): a string's shape (letters ``A``, digits ``9``), its first character and what follows its
    last ``@``, a date's weekday and month; those with two values or more and at most a tenth as many values as
    customers (as :func:`_profile_columns`). A red team read only customers of one e-mail domain (100% of attack reads
    against 20%), signed up on a Monday (100% against 14%), or sharing a surname's initial (100% against 13%): each
    column names one customer, so no category covered it, and the audit passed all three. ``table``: the world table
    ``customers`` is (the employees table's too: see :func:`_actor_features`)."""
    n = customers.height
    cands: dict[str, pl.Expr] = {}
    for c, t in customers.schema.items():
        if c.endswith("_id") or c not in WORLD_TABLES[table]:  # the table's own columns, ids aside
            continue
        col = pl.col(c)
        if t == pl.String:
            cands |= {
                f"{c}.shape": _shape(col),
                f"{c}.first": col.str.slice(0, 1).str.to_uppercase(),
                f"{c}.domain": col.str.extract(r"@([^@]*)$"),
            }
        elif t in (pl.Date, pl.Datetime):
            cands |= {
                f"{c}.weekday": col.dt.weekday().cast(pl.String),
                f"{c}.month": col.dt.month().cast(pl.String),
                f"{c}.day": col.dt.day().cast(pl.String),  # the day of the month: a monthly cohort (red team, 2026-12-07)
            }
    if not cands:
        return {}
    counts = customers.select(e.n_unique().alias(k) for k, e in cands.items()).row(0, named=True)
    return {k: e for k, e in cands.items() if 2 <= counts[k] <= max(2, n // 10)}


def _customer_features(df: pl.DataFrame, customers: pl.DataFrame) -> pl.DataFrame:
    """Whether the customer a row names exists, the days since their signup, their activity and tier; and per category
    of the customer table (:func:`_profile_columns`) the share of the world's customers with the named customer's value
    (``f:customer_id:profile:<c>``; none on a row naming no known customer), tested alone (see ALONE).

    Reads of customers of one home region or locale: each value is one benign reads carry (nothing unseen) and a region
    is one of too many values for the excess test, but the share of customers living there is one number on every
    attack row, where benign reads spread over every region's share.
    """
    profile = _profile_columns(customers) if "customer_id" in customers.columns else []
    derived = _derived_profile(customers) if "customer_id" in customers.columns else {}
    cust = customers.select(
        "customer_id",
        pl.col("signup_date").alias("_signup"),
        pl.col("activity").cast(pl.Float64).alias("f:customer_id:activity"),
        pl.col("tier").alias("f:customer_id:tier"),
        *((pl.len().over(c) / pl.len()).cast(pl.Float64).alias(f"f:customer_id:profile:{c}") for c in profile),
        *((pl.len().over(e) / pl.len()).cast(pl.Float64).alias(f"f:customer_id:profile:{k}") for k, e in derived.items()),
        *(pl.col(c).cast(pl.Float64).alias(f"f:customer_id:profile:{c}") for c in customers.columns if c.endswith(RELATED)),
    )
    df = (
        df.join(cust, on="customer_id", how="left")
        .with_columns(
            pl.col("_signup").is_null().and_(pl.col("customer_id").is_not_null()).cast(pl.Float64).alias("f:customer_id:unknown"),
            (pl.col("_day") - pl.col("_signup"))
            .dt.total_days()
            .cast(pl.Float64)
            .fill_null(-1e4)
            .alias("f:customer_id:days_since_signup"),
            pl.col("f:customer_id:activity").fill_null(-1.0),
            pl.col("f:customer_id:tier").fill_null("<null>"),
        )
        .drop("_signup")
    )
    return df


def _kin_features(df: pl.DataFrame, stream: str, customers: pl.DataFrame, employees: pl.DataFrame) -> pl.DataFrame:
    """On the rows of an employee that name a customer: whether the two share a string column's value, its shape or its
    first character, per column both tables have (a name): ``f:customer_id:profile:kin:<column>.<what>``, 1 or 0, none
    where either is missing. A red team's takeover read only customers whose surname began as the account holder's
    did (every attack read against 13% of benign reads); the customers' own categories could not show it, each
    actor's letter being another. Tested alone (see ALONE)."""
    if (
        "employee_id" not in ENTITY.get(stream, ())
        or "employee_id" not in df.columns
        or "customer_id" not in df.columns
        or "customer_id" not in customers.columns
        or employees.height == 0
    ):
        return df
    common = [
        c
        for c, t in customers.schema.items()
        if c != "customer_id" and t == pl.String and employees.schema.get(c) == pl.String and c != "employee_id"
    ]
    ways = {"value": lambda e: e, "shape": _shape, "first": lambda e: e.str.slice(0, 1).str.to_uppercase()}
    pairs = {
        f"{c}.{w}": f(pl.col(c))
        for c in common
        for w, f in ways.items()
        if customers.select(f(pl.col(c)).n_unique()).item() >= 2  # a category every customer shares tells nothing
    }
    if not pairs:
        return df
    cust = customers.select("customer_id", *(e.alias(f"_kc:{k}") for k, e in pairs.items()))
    emp = employees.select("employee_id", *(e.alias(f"_ke:{k}") for k, e in pairs.items()))
    return (
        df.join(cust, on="customer_id", how="left")
        .join(emp, on="employee_id", how="left")
        .with_columns(
            (pl.col(f"_kc:{k}") == pl.col(f"_ke:{k}")).cast(pl.Float64).alias(f"f:customer_id:profile:kin:{k}") for k in pairs
        )
        .drop(*(f"_kc:{k}" for k in pairs), *(f"_ke:{k}" for k in pairs))
    )


#: The actor's features (:func:`_actor_features`) that a premise signal declares: how the actors were picked.
ACTOR_AGG = {"actor:leaving": "leaving", "actor:team": "layoff_team"}


def _actor_features(
    df: pl.DataFrame,
    stream: str,
    employees: pl.DataFrame,
    roles: pl.DataFrame | None = None,
    related: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """On the rows whose entity is an employee: who the employee is, from the employees table. ``actor:tenure``,
    log10(1 + days since their hire) on the row's day; ``actor:leaving``, log10(1 + days until their departure), 10^4
    days for one who is not leaving; per category of the table (:func:`_profile_columns`: a team, a home office, a kind
    of contract; and those :func:`_derived_profile` derives: a hire date's weekday, month and day of the month, a
    name's shape) the share of the world's employees with the employee's value (``actor:team``); and from their role
    history (``roles``, the employee_roles table) the roles held up to the row's day (``actor:roles``) and
    log10(1 + days) in the current one (``actor:in_role``); and what the other world tables keyed by an employee hold of
    them (``related``, :func:`_employee_related`: ``actor:credentials.created.age``). None on other rows. Tested alone
    (see ALONE); ``leaving`` and ``team`` declared by the premise signals that pick actors so.

    A scenario chooses its actors, and a detector can read the employees table as well as the logs: actors picked
    among the newest hires, or the longest serving, or in one office, were rows no column of a log told apart; and so
    were actors picked among those who had changed role before (9 of 9 actors against 19% of their benign peers: a
    red team, 2026-12-07).
    """
    if "employee_id" not in ENTITY.get(stream, ()) or "employee_id" not in df.columns or employees.height == 0:
        return df
    cats = [c for c in _profile_columns(employees) if c != "employee_id"]
    # of the columns that are no category (dates, names): a category's initial or shape says what the category does
    derived = {k: e for k, e in _derived_profile(employees, "employees").items() if k.rsplit(".", 1)[0] not in cats}
    employees = employees.with_columns(e.alias(k) for k, e in derived.items())
    emp = employees.select(
        "employee_id",
        pl.col("hire_date").alias("_hire"),
        pl.col("termination_date").alias("_term"),
        *((pl.len().over(c) / pl.len()).cast(pl.Float64).alias(f"f:employee_id:actor:{c}") for c in [*cats, *derived]),
        # where the employee's number falls among those of their category (0 the lowest, 1 the highest): a red team's
        # snooping agents, each the lowest number of its team that fit the scenario, were 9 actors of ids 4-39 of 600
        *(
            ((pl.col("employee_id").rank("ordinal").over(c) - 1) / (pl.len().over(c) - 1).clip(1))
            .cast(pl.Float64)
            .alias(f"f:employee_id:actor:rank:{c}")
            for c in cats
        ),
    )
    never = 10_000  # days: one who is not leaving
    days_in = (pl.col("_day") - pl.col("_hire")).dt.total_days().clip(0)
    days_left = (pl.col("_term") - pl.col("_day")).dt.total_days().fill_null(never).clip(0, never)
    known = pl.col("_hire").is_not_null()
    out = (
        df.join(emp, on="employee_id", how="left", maintain_order="left")
        .with_columns(
            pl.when(known).then((days_in + 1).cast(pl.Float64).log10()).alias("f:employee_id:actor:tenure"),
            pl.when(known).then((days_left + 1).cast(pl.Float64).log10()).alias("f:employee_id:actor:leaving"),
        )
        .drop("_hire", "_term")
    )
    if related is not None and related.height:
        cols = [c for c in related.columns if c != "employee_id"]
        rel = related.select("employee_id", *(pl.col(c).alias(f"f:employee_id:actor:{c}") for c in cols))
        out = out.join(rel, on="employee_id", how="left", maintain_order="left").with_columns(
            # an employee in no row of a table: none of it (0 rows)
            *(
                pl.when(pl.col("f:employee_id:actor:tenure").is_not_null())  # a known employee
                .then(pl.col(f"f:employee_id:actor:{c}").fill_null(0.0))
                .otherwise(None)
                .alias(f"f:employee_id:actor:{c}")
                for c in cols
                if c.endswith((ROWS_IN, ".open.age"))  # no open row: 0 days
            )
        )
    if roles is None or roles.height == 0:
        return out
    held = (
        out.select("employee_id", "_day")
        .drop_nulls()
        .unique()
        .join(roles.select("employee_id", "start_date"), on="employee_id", how="inner")
        .filter(pl.col("start_date") <= pl.col("_day"))
        .group_by("employee_id", "_day")
        .agg(
            pl.len().cast(pl.Float64).alias("f:employee_id:actor:roles"),
            ((pl.col("_day") - pl.col("start_date").max()).dt.total_days().first() + 1)
            .cast(pl.Float64)
            .log10()
            .alias("f:employee_id:actor:in_role"),
        )
    )
    return out.join(held, on=["employee_id", "_day"], how="left", maintain_order="left")


def row_features(df: pl.DataFrame) -> list[Feature]:
    """The features of a row frame (columns ``f:<column>:<feature>``)."""
    out = []
    for c, t in df.schema.items():
        if not c.startswith("f:"):
            continue
        _, col, name = c.split(":", 2)
        # presence of the value in another stream is that cross-stream link (``in_auth``: the auth
        # rows of the entity's day carry it), which a signal may name (no issuance record: ``in_auth``)
        # the gap since the entity's previous row is the inverse of its rate of rows: rows added to an
        # entity's day shorten the gaps of all its rows, so volume explains it (as the distinct share)
        # the delay from an auth row to the first row after it (``after_auth``) is a link to auth as ``in_auth`` is
        agg = (
            name
            if name.startswith("in_")
            else "in_auth"
            if name in ("after_auth", "no_auth") or name.startswith("lifecycle:")
            else "rows"
            if c == "f:ts:gap"
            else "leaving"
            if name.startswith("actor:termination_date")  # the day of departure: a leaver's (declared as leaving)
            else ACTOR_AGG.get(name)
        )
        partial = c in PARTIAL or name in ("up", "uses") or name.startswith(("profile:", "lifecycle:", "actor:", "near:"))
        out.append(Feature(c, col, "cat" if t == pl.String else "num", agg, partial=partial))
    return out


# ---- entity-day aggregates -----------------------------------------------------------------------


def _groups(df: pl.DataFrame, keys: list[str], stream: str) -> tuple[pl.DataFrame, list[Feature]]:
    """One row per unit (entity-day or token): counts, distinct values, new values, means of numeric features."""
    raw = [c for c in df.columns if not c.startswith(("_", "f:")) and c not in SKIP and c != "ts" and c not in keys]
    num = [f for f in row_features(df) if f.kind == "num"]
    aggs: list[pl.Expr] = [
        pl.len().cast(pl.Float64).alias("a:rows"),
        pl.col("_attack").any().alias("_attack"),
        # the commonest (ties: the first by name; polars returns tied modes in no fixed order, which made a unit's group,
        # and with it the audit's figures, differ from one process to the next)
        pl.col("_phase").drop_nulls().mode().sort().first().alias("_phase"),
        pl.col("_group").mode().sort().first().alias("_group"),
        pl.col("_pattern").drop_nulls().first().alias("_pattern"),
    ]
    feats = [Feature("a:rows", "", "num", "rows")]
    rec = "row_count" if "row_count" in df.columns else "records_returned" if "records_returned" in df.columns else None
    if rec:
        aggs.append(pl.col(rec).sum().cast(pl.Float64).alias("a:records"))
        feats.append(Feature("a:records", rec, "num", "records"))
    for c in raw:
        aggs += [
            pl.col(c).drop_nulls().n_unique().cast(pl.Float64).alias(f"a:{c}:distinct"),
            (pl.col(c).drop_nulls().n_unique() / pl.len()).cast(pl.Float64).alias(f"a:{c}:distinct_share"),
        ]
        # a distinct share (distinct values over rows) moves with the unit's rows as much as with the values,
        # and so do distinct (and new) values (a busier day shows more of the role's actions, more of the
        # actor's addresses): volume explains them. The sticky test judges distinct and new values against
        # the group's benign units as busy (_Sticky), where volume explains nothing: a per-row redraw still shows
        feats += [
            Feature(f"a:{c}:distinct", c, "num", DISTINCT_AGG.get(c), volume=True),
            Feature(f"a:{c}:distinct_share", c, "num", "rows"),
        ]
        if f"_new:{c}" in df.columns:
            aggs.append(pl.col(c).filter(pl.col(f"_new:{c}")).n_unique().cast(pl.Float64).alias(f"a:{c}:new"))
            feats.append(Feature(f"a:{c}:new", c, "num", NEW_AGG.get(c), volume=True))

    places = [c for c in PLACES if c in raw]
    feats += [Feature(f"a:{c}:interleaved", "", "num", "interleaved") for c in places]

    # a row feature per unit: the value of one row of the unit picked at random (by a hash of its event
    # id). A day's mean would move with the unit's rows: its spread shrinks as rows are added (a day of
    # two logins has its mean sub-second near the middle, a day of one anywhere; a day of nine reads has
    # an active customer more often than a day of three), so the classifier read volume, or an actor's
    # habits, off any column; a picked row does not move with the rows, so a per-row difference in a
    # column still shows in the unit whatever is declared. Means stay for the named aggregates (the
    # night share, presence in another stream, gaps), flagged as moving with the rows
    # The classifier's draw d reads the row picked with seed d (columns ``...:pick~d``): with a handful of
    # attack units, the rows picked were one more fixed sample that no number of benign draws averaged out
    # The picked rows are found once per unit and draw (their row numbers), and their features gathered by
    # row number, not looked up feature by feature in every group
    picks: dict[str, tuple[int, str]] = {}  # unit column -> (draw, row feature)
    for f in num:
        if f.partial:
            continue
        agg = "night" if f.name == "f:ts:night" else f.aggregate
        picks[f"a:{f.name[2:]}:pick"] = (0, f.name)
        aggs.append(pl.lit(None).alias(f"a:{f.name[2:]}:pick"))  # a placeholder that keeps the column order
        for d in range(1, MAX_DRAWS):
            picks[f"a:{f.name[2:]}:pick~{d}"] = (d, f.name)
            aggs.append(pl.lit(None).alias(f"a:{f.name[2:]}:pick~{d}"))
        feats.append(Feature(f"a:{f.name[2:]}:pick", f.column, "num", agg))
        if agg is not None:
            aggs.append(pl.col(f.name).mean().alias(f"a:{f.name[2:]}:mean"))
            feats.append(Feature(f"a:{f.name[2:]}:mean", f.column, "num", agg, volume=True))
    if "customer_id" in df.columns and "customer_id" not in ENTITY[stream]:  # of its own id an entity has one: degenerate
        # sequential: share of customer ids that follow the previous one; repeat: reads per distinct customer.
        # Both over the rows that name a customer only: a pull (null customer) is neither a customer read
        # again nor a break in a sequence (counting null as one more distinct customer made ``repeat`` the
        # share of pulls among the day's rows, which the read/pull mix moves, not rereading)
        named = pl.col("customer_id").sort_by("ts").drop_nulls()
        aggs += [
            (named.diff() == 1).mean().fill_null(0).cast(pl.Float64).alias("a:customer_id:sequential"),
            (named.len() / named.n_unique()).cast(pl.Float64).fill_nan(None).alias("a:customer_id:repeat"),  # none read: null
        ]
        feats += [
            Feature("a:customer_id:sequential", "customer_id", "num", "sequential"),
            Feature("a:customer_id:repeat", "customer_id", "num", "repeat"),
        ]
    units = _with_picks(df, keys, aggs, picks)
    for c in places:
        units = units.join(_interleaved(df, keys, c), on=keys, how="left", nulls_equal=True).with_columns(
            pl.col(f"a:{c}:interleaved").fill_null(0.0)
        )
    return units, feats


def _interleaved(df: pl.DataFrame, keys: list[str], c: str) -> pl.DataFrame:
    """Per unit of ``keys``: 1.0 when the time ranges of two of its values of ``c`` overlap, else 0.0."""
    spans = (
        df.filter(pl.col(c).is_not_null())
        .group_by(*keys, c)
        .agg(pl.col("ts").min().alias("_lo"), pl.col("ts").max().alias("_hi"))
        .sort(*keys, "_lo", c, nulls_last=True)
    )
    # sorted by first row: a value whose first row comes before the latest last row of the values before it overlaps one
    before = pl.col("_hi").cum_max().shift(1).over(keys)
    return (
        spans.with_columns((pl.col("_lo") < before).fill_null(False).alias("_x"))
        .group_by(keys)
        .agg(pl.col("_x").any().cast(pl.Float64).alias(f"a:{c}:interleaved"))
    )


def _with_picks(df: pl.DataFrame, keys: list[str], aggs: list[pl.Expr], picks: dict[str, tuple[int, str]]) -> pl.DataFrame:
    """``df`` grouped by ``keys`` with ``aggs``, whose ``picks`` columns (placeholders there) hold the row feature's value
    at the unit's row picked for the draw: of the unit's rows of its own group (``_group``, the commonest), the one
    whose event id hashes lowest with the draw's seed (the first such row without event ids).

    A unit is compared with benign units of its group, and so is its picked row: a customer-day of issued tokens and
    one login picked the login row now and then, and a day without logins (a declared signal) never did, so the
    token columns of picked rows (null on a login) told the two apart beside the declared event column. Rows of
    other groups are judged by the row tests, among rows of their own group, and count in the unit's aggregates.
    """
    if not picks:
        return df.group_by(keys).agg(aggs)
    names = [e.meta.output_name() for e in aggs]
    units = df.group_by(keys).agg([e for e, n in zip(aggs, names, strict=True) if n not in picks])
    draws = sorted({d for d, _ in picks.values()})
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    own = units.select(*keys, pl.col("_group").alias("_unit_group")) if "_group" in units.columns else None
    rows = df.with_columns(_ri=row)
    if own is not None:
        # in the rows' order: without event ids the unit's first row is picked
        rows = rows.join(own, on=keys, how="left", nulls_equal=True, maintain_order="left").filter(
            pl.col("_group").eq_missing(pl.col("_unit_group"))
        )
    at = rows.group_by(keys).agg(
        pl.col("_ri").get(pl.col("event_id").hash(seed=11 + d).arg_min() if "event_id" in df.columns else 0).alias(f"_ri~{d}")
        for d in draws
    )
    for d in draws:
        cols = {n: f for n, (dd, f) in picks.items() if dd == d}
        got = df.select(pl.col(f).alias(n) for n, f in cols.items())[at[f"_ri~{d}"]]
        at = at.hstack(got)
    units = units.join(at.drop([f"_ri~{d}" for d in draws]), on=keys, how="left", nulls_equal=True)
    return units.select(*keys, *names)


def entity_days(df: pl.DataFrame, stream: str) -> tuple[pl.DataFrame, list[Feature]]:
    """Entity-day units (all rows of an entity's day; attack when any row is) with their aggregates."""
    first = df.group_by("_entity").agg(pl.col("_day").min().alias("_first"))
    news = []
    for c in df.columns:
        if c.startswith(("_", "f:")) or c in SKIP or c == "ts" or df.schema[c] != pl.String:
            continue
        seen = df.select("_entity", c, "_day").drop_nulls().group_by("_entity", c).agg(pl.col("_day").min().alias(f"_since:{c}"))
        news.append((c, seen))
    d = df.join(first, on="_entity", how="left")
    for c, seen in news:
        d = (
            d.join(seen, on=["_entity", c], how="left")
            .with_columns(
                ((pl.col(f"_since:{c}") == pl.col("_day")) & (pl.col("_day") > pl.col("_first")))
                .fill_null(False)
                .alias(f"_new:{c}")
            )
            .drop(f"_since:{c}")
        )
    return _groups(d.drop("_first"), ["_ds", "_entity", "_day"], stream)


def token_units(df: pl.DataFrame, stream: str) -> tuple[pl.DataFrame, list[Feature]] | None:
    """Token units (every row of a token; attack when any row is), or None when the stream has no token."""
    if TOKEN not in df.columns or df[TOKEN].null_count() == df.height:
        return None
    d = df.filter(pl.col(TOKEN).is_not_null())
    units, feats = _groups(d, ["_ds", TOKEN], stream)
    # the day of the token's first row: tokens are matched with benign tokens of the same days, as
    # entity-days are (without it a weekday attack was judged against every day's tokens, days off included)
    first = d.group_by("_ds", TOKEN).agg(pl.col("_day").min())
    units = units.join(first, on=["_ds", TOKEN], how="left")
    return units.with_columns(
        _entity=pl.concat_str([pl.col("_ds").cast(pl.String), pl.lit("/t"), pl.col(TOKEN).cast(pl.String)])
    ), feats


# ---- tests ---------------------------------------------------------------------------------------


def _declared_sets(names: Iterable[str], stream: str, unseen: bool = False) -> tuple[set[str], set[str]]:
    """(columns, aggregates) the named signals cover in ``stream``; ``unseen``: of the signals that explain values no
    comparable benign row has (``Signal.unseen``), for the unseen-value and unseen-prefix tests."""
    cols, aggs = set(), set()
    for n in names:
        sig = signals.VOCABULARY[n]
        if unseen and not sig.unseen:
            continue
        for c in sig.columns:
            s, _, col = c.rpartition(".")
            if not s or s == stream:
                cols.add(col)
        aggs |= set(sig.aggregates)
    return cols, aggs


def _family(name: str) -> str:
    """A feature's column and kind, ``column:kind``: ``ts:hour`` of ``f:ts:hour``, ``a:ts:hour:pick`` and
    ``f:ts:hour|channel``, ``customer_id:tier`` of the classifier's ``f:customer_id:tier.code``; ``""`` for a name
    with no kind (``a:rows``)."""
    parts = re.split(r"[:|]", name.split(":", 1)[1] if name[:2] in ("f:", "a:") else name)
    return f"{parts[0]}:{parts[1].removesuffix('.code')}" if len(parts) > 1 else ""


def _is_declared(f: Feature, cols: set[str], aggs: set[str]) -> bool:
    """Declared when a declared signal names the feature's column (or, as ``column:kind``, its column and kind: the
    off-hours signal names when rows come, not a delay a script repeats to the microsecond) or its aggregate
    (``rows``: the aggregate only), or ``rows`` when the feature moves with the unit's rows."""
    return (
        (f.aggregate is not None and f.aggregate in aggs)
        or (bool(f.column) and f.column in cols)
        or (bool(f.column) and _family(f.name) in cols)
        or (f.volume and "rows" in aggs)
        or (bool(f.given) and f.given in cols)
    )


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance (0 when a side is empty).

    The statistic of ``scipy.stats.ks_2samp`` (the largest gap between the two empirical CDFs),
    to the last bit, without its p-value, which the audit does not use and which costs most of
    the call. Like scipy's exact mode (samples of at most 10,000), the gap is rounded to a
    multiple of 1 / lcm(len(a), len(b)).
    """
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 0.0
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    gap = np.searchsorted(a, both, side="right") / n1 - np.searchsorted(b, both, side="right") / n2
    d = float(max(gap.max(), -gap.min()))
    g = math.gcd(n1, n2)
    if max(n1, n2) <= 10_000 and n1 // g < np.iinfo(np.int32).max / (n2 // g):
        lcm = (n1 // g) * n2
        d = round(d * lcm) / lcm
    return d


def _auc1(y: np.ndarray, x: np.ndarray) -> float:
    """AUC of one feature, either direction (0.5 = no separation)."""
    from scipy.stats import rankdata

    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return 0.5
    r = rankdata(x)
    auc = (r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return float(max(auc, 1 - auc))


def _order(df: pl.DataFrame) -> list[str]:
    """Columns that order a unit frame the same way on every run (random draws are assigned to rows in frame order)."""
    return [c for c in ("_group", "_entity", "_day", "event_id", "token_id") if c in df.columns] or df.columns


def _narrow(df: pl.DataFrame, *cols: str, rows: np.ndarray | None = None) -> pl.DataFrame:
    """The columns that order ``df`` (:func:`_order`) and ``cols``, with each row's index in ``df`` as ``_r``
    (``rows``: of ``df[rows]``, without gathering its other columns).

    The samplers below pick rows by joins, sorts and window ranks; on these few columns instead of
    a unit frame's hundred, with the picked rows gathered once at the end (``df[_r]``), they pick the
    same rows in the same order at a fraction of the cost (the gateway's 350k benign rows carry 82 columns).
    """
    keep = list(dict.fromkeys([*_order(df), *cols]))
    narrow = df.select(keep)
    return (narrow if rows is None else narrow[rows]).with_row_index("_r")


def _matched(
    ben: pl.DataFrame, att: pl.DataFrame, per: float, cap: int, seed: int, rows: np.ndarray | None = None
) -> pl.DataFrame:
    """Benign units sampled with the attack units' mix of groups and days, ``per`` of them per attack unit (at most ``cap``);
    ``rows``: from ``ben[rows]`` (the same units, without copying the rest of ``ben`` first).

    Same role (or kind) on the same days: an attack window covers some days only, and days differ
    (weekdays, holidays), so benign units of other days are not comparable.
    """
    keys = ["_group", "_day"] if "_day" in att.columns else ["_group"]
    idx = _narrow(ben, *keys, rows=rows)
    want = att.group_by(keys).len().rename({"len": "_want"})
    pool = idx.join(want, on=keys, how="inner")
    if pool.height == 0:  # no benign unit on those days: the groups alone
        keys = ["_group"]
        want = att.group_by(keys).len().rename({"len": "_want"})
        pool = idx.join(want, on=keys, how="inner")
    total = max(1, int(want["_want"].sum()))
    n = min(cap, int(per * total))
    r = np.random.default_rng(seed)
    pool = pool.sort(_order(ben)).with_columns(_u=pl.Series(r.random(pool.height)))  # a join's output order is not fixed
    # per (group, day): the first round(n * want / total) units in a random order
    quota = (pl.col("_want") * n / total).round().clip(1).cast(pl.Int64)
    out = pool.sort("_u").with_columns(_rank=pl.int_range(pl.len()).over(keys)).filter(pl.col("_rank") < quota)
    return ben[out["_r"]] if rows is None else ben[rows[out["_r"].to_numpy()]]


def _design(sample: pl.DataFrame, feats: list[Feature]) -> tuple[np.ndarray, list[Feature], np.ndarray]:
    """Matrix of numeric features and ordinal-coded categoricals (the 60 values most entities carry, of those at least
    two carry; none for features whose values name an entity).

    Ranked by entities, not rows: ranked by rows over the whole sample, an actor's own addresses (each carried by its
    rows alone) took codes of their own from the actor's many rows, while a benign entity's, a few rows each, fell in
    "other"; the classifier learnt "a coded address" and, through folds by entity, the held-out actors' too (a takeover
    at stealth 1 with three actors an incident: AUC 0.73 on rows, 0.45 without that feature, random benign actors up to
    0.53). A value one entity alone carries is "other" now, as a feature of such values is left out."""
    cols, out, cat = [], [], []
    nums = _nums(sample, [f.name for f in feats if f.kind == "num"])  # one pass for every numeric feature
    for f in feats:
        if f.kind == "num":
            cols.append(nums[f.name])
            out.append(f)
            cat.append(False)
            continue
        b = sample.filter(~pl.col("_attack"))
        per_entity = (
            b.height > 0
            and float(np.median(b.group_by(f.name).agg(pl.col("_entity").n_unique().alias("n"))["n"].to_numpy())) <= 1
        )
        if per_entity:
            continue  # values that name an entity (a laptop, a ticket) would let the classifier learn actors, not artefacts
        counts = sample.group_by(f.name).agg(pl.col("_entity").n_unique().alias("_ents"), pl.len().alias("_rows"))
        top = (
            counts.filter(pl.col("_ents") >= 2)
            .sort(["_ents", "_rows", f.name], descending=[True, True, False], nulls_last=True)
            .head(60)[f.name]
            .to_list()
        )  # ties by rows, then by value
        codes = sample[f.name].replace_strict({v: i for i, v in enumerate(top)}, default=len(top), return_dtype=pl.Int32)
        cols.append(codes.to_numpy().astype(np.float64))
        out.append(Feature(f.name + ".code", f.column, "num", f.aggregate, f.volume))
        cat.append(True)
    return (np.column_stack(cols) if cols else np.zeros((sample.height, 0))), out, np.array(cat, dtype=bool)


def _folds(y: np.ndarray, groups: np.ndarray, split: int = 0) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Stratified folds grouped by ``groups`` (shuffled by ``split``); None when fewer than two groups hold attack units.

    The folds of scikit-learn's ``StratifiedGroupKFold(k, shuffle=True, random_state=split)`` as
    of its version 1.8 (before it, shuffling left the groups' class counts and their samples out of
    step), so the audit's figures do not depend on the installed version: groups in a random order
    (NumPy's ``RandomState(split)``), stably sorted by the spread of their class counts, each put in
    the fold where the classes' shares over the folds spread least (ties within ``np.isclose``: the
    fold with fewer units). Its scoring loop, in plain floats in the same order of operations, is
    the one part kept from the library; its per-group NumPy calls were a tenth of a check-world audit.
    """
    k = min(FOLDS, len(set(groups[y == 1])))
    if k < 2:
        return None
    _, y_inv, y_cnt = np.unique(y, return_inverse=True, return_counts=True)
    _, g_inv = np.unique(groups, return_inverse=True)
    n_groups, n_classes = int(g_inv.max()) + 1, len(y_cnt)
    counts = np.zeros((n_groups, n_classes))
    np.add.at(counts, (g_inv, y_inv), 1)
    perm = np.arange(n_groups)
    np.random.RandomState(split).shuffle(perm)
    counts = counts[perm]  # row j: group perm[j]
    order = np.argsort(-np.std(counts, axis=1), kind="stable")
    per_fold = [[0.0] * n_classes for _ in range(k)]
    total = [float(c) for c in y_cnt]
    fold_of = np.empty(n_groups, dtype=np.int64)
    rows = counts.tolist()
    for j in order.tolist():
        add = rows[j]
        best, best_eval, best_n = 0, math.inf, math.inf
        for i in range(k):
            spread = 0.0
            for c in range(n_classes):
                shares = [(per_fold[f][c] + add[c] if f == i else per_fold[f][c]) / total[c] for f in range(k)]
                mean = _seq_sum(shares) / k
                spread += math.sqrt(_seq_sum([(s - mean) * (s - mean) for s in shares]) / k)
            ev = spread / n_classes
            n_in = _seq_sum(per_fold[i])
            if ev < best_eval or (abs(ev - best_eval) <= 1e-8 + 1e-5 * abs(best_eval) and n_in < best_n):
                best, best_eval, best_n = i, ev, n_in
        for c in range(n_classes):
            per_fold[best][c] += add[c]
        fold_of[perm[j]] = best
    test_of = fold_of[g_inv]
    idx = np.arange(len(y))
    return [(idx[test_of != i], idx[test_of == i]) for i in range(k)]


def _seq_sum(xs: list[float]) -> float:
    """Left-to-right sum, as NumPy adds a handful of values (``sum`` compensates from Python 3.12 on, ``math.fsum`` rounds once: both differ)."""
    s = 0.0
    for x in xs:
        s += x
    return s


def _binned(X: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """``X`` with each numeric column of more than :data:`MAX_BINS` distinct values replaced by its quantile bin.

    The classifier bins its features itself, but on every fit (three folds, two classifiers, up to
    five draws) and, with class weights, by weighted percentiles one at a time, which was 40% of its
    time. Binned once here, on the whole sample and without the labels, a column holds at most
    MAX_BINS values and the classifier keeps them as they are. The bins are the classifier's own
    (quantiles, a value in bin i when edge i-1 < value <= edge i); what changes is that they are
    drawn from all rows of the draw, unweighted, instead of from each fold's training rows.
    """
    out = X.copy()
    qs = np.linspace(0, 100, MAX_BINS + 1)[1:-1]
    for j in np.flatnonzero(~cat):
        col = X[:, j]
        if np.unique(col).size > MAX_BINS:
            out[:, j] = np.searchsorted(np.percentile(col, qs, method="averaged_inverted_cdf"), col, side="left")
    return out


def _cv_auc(
    X: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]] | None, cat: np.ndarray
) -> tuple[float | None, int]:
    """Mean AUC over ``folds`` (from :func:`_folds`); None without folds."""
    if X.shape[1] == 0:
        return 0.5, 0
    if folds is None:
        return None, 0
    with _one_openmp_thread():
        aucs = [_fit_auc(X, y, tr, te, cat) for tr, te in folds if len(set(y[te])) == 2 and len(set(y[tr])) == 2]
    return (float(np.mean(aucs)) if aucs else None), len(aucs)


def _one_openmp_thread() -> Any:
    """scikit-learn's OpenMP at one thread while the classifier fits.

    Its binning runs one thread per OpenMP thread, and each resets the process's warning filters while it
    works (scikit-learn's ``delayed``; Python's filters are one list for all threads), so with two threads
    the filters could end up empty and every later fit printed a warning per feature: 36,000 lines of
    stderr in one ``scenarios audit`` over the catalogue. On these small samples one thread is faster too
    (the fits of two full audits: 6.2 s against 11.6 s with two threads on two cores), and the AUCs are the
    same.
    """
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime, which the limit must find loaded)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _fit_auc(X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, cat: np.ndarray) -> float:
    """The classifier fitted on the rows ``tr`` and its AUC on the rows ``te``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    m = HistGradientBoostingClassifier(
        max_iter=40,
        learning_rate=0.15,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        max_bins=MAX_BINS,
        categorical_features=cat if cat.any() else None,
        class_weight="balanced",
        random_state=0,
    )
    m.fit(X[tr], y[tr])
    return float(roc_auc_score(y[te], m.predict_proba(X[te])[:, 1]))


def _pseudo(att: pl.DataFrame, ben: pl.DataFrame, seed: int) -> pl.DataFrame:
    """A null draw: random benign actors standing in for the attack's, each unit mirrored.

    For each attack entity a random benign entity of its group; rows: for each of the attack
    entity's days, the stand-in's rows of the same day, as large a share of them as the attack's
    rows are of the actor's rows that day; entity-day and token units: as many random units of
    the stand-in as the attack entity has. A random benign actor differs from its peers by its own
    habits (hours, rota, ids) too; the audit judges attack rows against what such draws reach, not
    against zero. Columnar: joins on random ranks, no loop over entities.
    """
    r = np.random.default_rng(seed)
    pool = (
        ben.select("_group", "_entity")
        .unique()
        .sort("_group", "_entity")
        .with_columns(_i=pl.int_range(pl.len()).over("_group"), _m=pl.len().over("_group"))
    )
    # the entity's commonest group (ties: the first by name); a join's output order is not fixed, so sort
    # before the random draws are assigned to rows
    per = att.group_by("_entity").agg(pl.col("_group").mode().sort().first())
    per = per.join(pool.select("_group", "_m").unique(), on="_group", how="inner").sort("_entity")
    if per.height == 0:
        return ben.head(0)
    per = per.with_columns(_i=(pl.Series(r.random(per.height)) * pl.col("_m")).floor().cast(pl.Int64))
    mapping = per.join(pool.select("_group", "_i", pl.col("_entity").alias("_stand")), on=["_group", "_i"]).select(
        "_entity", "_stand"
    )
    u = pl.Series("_u", r.random(ben.height))
    if "event_id" not in att.columns or "_day" not in att.columns:  # entity-days, tokens: whole units
        need = att.group_by("_entity").len().join(mapping, on="_entity").group_by("_stand").agg(pl.col("len").sum().alias("_k"))
        cand = _narrow(ben, "_entity").with_columns(u).join(need.rename({"_stand": "_entity"}), on="_entity", how="inner")
        cand = cand.with_columns(_rank=pl.col("_u").rank("ordinal").over("_entity") - 1)
        out = cand.filter(pl.col("_rank") < pl.col("_k"))
        return ben[out.sort(_order(ben))["_r"]]
    own = ben.group_by("_entity", "_day").len().rename({"len": "_own"})
    days = (
        att.group_by("_entity", "_day")
        .len()
        .join(own, on=["_entity", "_day"], how="left")
        .with_columns(_share=pl.col("len") / (pl.col("len") + pl.col("_own").fill_null(0)))
        .join(mapping, on="_entity")
        .group_by("_stand", "_day")
        .agg(pl.col("_share").max())
    )
    cand = (
        _narrow(ben, "_entity", "_day")
        .with_columns(u)
        .join(days.rename({"_stand": "_entity"}), on=["_entity", "_day"], how="inner")
    )
    cand = cand.with_columns(_rank=pl.col("_u").rank("ordinal").over("_entity", "_day") - 1, _n=pl.len().over("_entity", "_day"))
    k = (pl.col("_share") * pl.col("_n")).round().clip(1)
    out = cand.filter(pl.col("_rank") < k)
    return ben[out.sort(_order(ben))["_r"]]  # the joins' order is not fixed; the tests sample from it


def _unseen_shares(x: pl.DataFrame, ref: pl.DataFrame, feats: list[str]) -> dict[str, float]:
    """Per feature: the share of ``x``'s units whose value no ``ref`` unit of their group has on another entity-day
    (with ``_entity`` and ``_day`` in both; else no ``ref`` unit of their group at all). One query per feature, run together.

    Another entity-day, because a value shared by an actor's rows of one day says nothing: a ticket's opens
    are one agent's on one day, so a null draw (part of a benign actor's day) found most of its tickets among the
    rest of that day, while an attack's ticket of its own, all of whose opens are attack rows, was new; the same
    attack ticket against other days' rows is as new as any benign ticket is.
    """
    if x.height == 0 or not feats:
        return dict.fromkeys(feats, 0.0)
    xl, rl = x.lazy(), ref.lazy()
    day = {"_entity", "_day"} <= set(x.columns) & set(ref.columns)
    if day:  # one integer per entity-day, the same in both frames (only equality is asked of it below)
        code = pl.concat([x.select("_entity"), ref.select("_entity")]).unique().with_columns(_c=pl.int_range(pl.len()))
        # a date is a 32-bit day number: the entity's number above it, the day shifted to be non-negative below
        key = (pl.col("_c").cast(pl.Int64) * (1 << 32) + pl.col("_day").cast(pl.Int64) + (1 << 31)).alias("_k")
        # joined once here, not once in each feature's query below
        xl, rl = (
            d.select("_group", *feats, "_entity", "_day").join(code, on="_entity").select(pl.exclude("_c"), key).lazy()
            for d in (x, ref)
        )
    plans = []
    for f in feats:
        if day:  # per value: the least and the greatest entity-day that carry it; both a unit's own: only its own
            seen = rl.group_by("_group", f).agg(_k0=pl.col("_k").min(), _k1=pl.col("_k").max())
            k = pl.col("_k")
            unseen = xl.select("_group", f, "_k").join(seen, on=["_group", f], how="left")
            plans.append(unseen.select((pl.col("_k0").is_null() | ((pl.col("_k0") == k) & (pl.col("_k1") == k))).mean()))
        else:
            seen = rl.select("_group", f).unique().with_columns(_seen=pl.lit(True))
            plans.append(xl.select("_group", f).join(seen, on=["_group", f], how="left").select(pl.col("_seen").is_null().mean()))
    return {f: float(df.item()) for f, df in zip(feats, pl.collect_all(plans), strict=True)}


def _nums(df: pl.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """Columns as float arrays, a missing value (null or NaN) as -1e9; one pass over ``df``."""
    if not names:
        return {}
    m = df.select(pl.col(n).cast(pl.Float64).fill_null(-1e9).fill_nan(-1e9) for n in names)
    return {n: m[n].to_numpy() for n in names}


class _Sticky:
    """The sticky test's thresholds: per feature, the 99th percentile of benign units of the same group (role, kind of
    client) as busy as a unit (see STICKY_PEERS). Roles differ in volume and in variety at once (an administrator's
    day of 18 rows holds views and updates, a logistics clerk's of 40 only views), so units as busy from every role
    would judge one role's variety against another's; and within a role, a day of 14 rows shows more distinct values
    than one of 8, so units of a power of two of rows (8 to 15) put a busy day against quieter ones.

    Where the nearest peers are quieter than the unit (an attack day busier than any benign day of its group), each
    quieter peer's value is carried up to the unit's rows at the rate the feature grows with rows in the group (the
    slope of log(1 + value) on log(rows) over its benign units, between 0 and 1): an analyst's distinct row counts
    grow with their queries (slope near 1), a clerk's addresses do not (near 0). Without it, an analyst's takeover
    days of 21 to 32 rows (the outsider's reads run as routine queries), beyond every benign analyst day but one,
    were judged against days of about 15, and their distinct row counts, volume alone, looked sticky."""

    def __init__(self, ben: pl.DataFrame, names: list[str]) -> None:
        self.rows = np.maximum(ben["a:rows"].to_numpy(), 1.0)
        groups = ben["_group"].to_numpy()
        self.groups = {g: i for i, g in enumerate(sorted(set(groups.tolist())))}
        self.members = {i: np.flatnonzero(groups == g) for g, i in self.groups.items()}
        self.names = names
        self.vals = {n: ben[n].fill_null(0).to_numpy() for n in names}
        self.p99: dict[tuple[int, float], dict[str, float]] = {}  # (group, rows) -> feature -> p99, as asked
        self.slopes: dict[tuple[int, str], float] = {}

    def _slope(self, gi: int, name: str) -> float:
        """How fast the feature grows with rows in the group: the least-squares slope of log(1 + value) on log(rows), in [0, 1]."""
        if (gi, name) not in self.slopes:
            mine = self.members[gi]
            x, y = np.log(self.rows[mine]), np.log1p(np.maximum(self.vals[name][mine], 0.0))
            dx = x - x.mean() if x.size else x
            var = float(dx @ dx)
            self.slopes[(gi, name)] = float(np.clip((dx @ (y - y.mean())) / var, 0.0, 1.0)) if var > 0 else 0.0
        return self.slopes[(gi, name)]

    def __contains__(self, name: str) -> bool:
        return name in self.vals

    def _peers(self, gi: int, rows: float) -> dict[str, float]:
        """The p99 of every feature over the group's benign units with ``rows`` rows, or its STICKY_PEERS nearest in rows."""
        if (gi, rows) not in self.p99:
            mine = self.members[gi]
            peers = mine[self.rows[mine] == rows]
            if peers.size < STICKY_PEERS:  # nearest in rows by ratio; ties in frame order
                gap = np.abs(np.log2(self.rows[mine]) - np.log2(rows))
                peers = mine[np.argsort(gap, kind="stable")[:STICKY_PEERS]]
            up = np.log(np.maximum(rows / self.rows[peers], 1.0))  # quieter peers, carried up to ``rows`` (see the class)
            self.p99[(gi, rows)] = {
                n: float(np.quantile(self._carried(self.vals[n][peers], up, self._slope(gi, n)), 0.99)) if peers.size else 0.0
                for n in self.names
            }
        return self.p99[(gi, rows)]

    @staticmethod
    def _carried(vals: np.ndarray, up: np.ndarray, slope: float) -> np.ndarray:
        """``vals`` carried up by ``up`` (log of the rows' ratio) at ``slope``; unchanged where ``up`` is 0."""
        if slope == 0.0 or not up.any():
            return vals
        return np.where(up > 0, np.expm1(np.log1p(np.maximum(vals, 0.0)) + slope * up), vals)

    def threshold(self, units: pl.DataFrame, name: str) -> np.ndarray:
        """Per unit: the benign p99 of ``name`` in its group at its rows (a group with no benign unit: 0)."""
        rows = np.maximum(units["a:rows"].to_numpy(), 1.0)
        gi = units["_group"].replace_strict(self.groups, default=-1, return_dtype=pl.Int64).to_numpy()
        if not units.height:
            return np.zeros(0)
        pairs, back = np.unique(np.c_[gi.astype(np.float64), rows], axis=0, return_inverse=True)
        out = np.array([self._peers(int(g), float(r))[name] if g >= 0 else 0.0 for g, r in pairs])
        return out[back.ravel()]

    def above(self, units: pl.DataFrame, name: str) -> float:
        """Share of ``units`` above their threshold."""
        return float((units[name].fill_null(0).to_numpy() > self.threshold(units, name)).mean()) if units.height else 0.0

    def shown(self, units: pl.DataFrame, name: str) -> float:
        """The threshold at the units' median (for the report)."""
        return float(np.median(self.threshold(units, name))) if units.height else 0.0


def _deviance(ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
    """Per category (the last axis): the Poisson deviance of the attack's count ``ka`` from what the reference's counts
    ``kb`` (smoothed by half a row per category) expect of as many; signed, negative where the attack's count is lower.

    Its root is a z-score that stays finite where the reference never has the category: one attack row of a
    category unseen in 20,000 benign rows scores about 3, five of them about 6.6.
    """
    ka, kb = ka.astype(np.float64), kb.astype(np.float64)
    e = ka.sum(axis=-1, keepdims=True) * (kb + 0.5) / (kb.sum(axis=-1, keepdims=True) + 0.5 * kb.shape[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.maximum(2 * (np.where(ka > 0, ka * np.log(np.where(ka > 0, ka, 1) / e), 0.0) - (ka - e)), 0.0)
    return np.where(ka > e, g, -g)


def _g_to_z(g: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Chi-square figures ``g`` with ``df`` degrees of freedom as standard normal ones of the same tail (at least 0).

    From the tail's logarithm, so that far tails stay apart (Wilson and Hilferty's cube root does not: it rated
    a residue of 3 on every id below the residue of 15 it implies); where even that underflows, its leading term.
    """
    from scipy.special import gammaln, ndtri_exp
    from scipy.stats import chi2

    g, df = np.asarray(g, dtype=np.float64), np.asarray(df, dtype=np.float64)
    with np.errstate(divide="ignore"):
        tail = chi2.logsf(g, df)
    s, x = df / 2, np.maximum(g / 2, 1e-300)
    tail = np.where(np.isfinite(tail), tail, (s - 1) * np.log(x) - x - gammaln(s))
    return np.maximum(-ndtri_exp(np.minimum(tail, 0.0)), 0.0)


def _raw_features(df: pl.DataFrame) -> list[Feature]:
    """The excess test's whole-column features: residues of every integer and time column, bits of every integer column.

    The entity's own id too: attack rows that name only even customers (the victims of a sweep, the gateway's entity)
    or actors picked by a rule differ there as anywhere; counted over distinct values, a few actors' ids are a few
    values, and the null draws (random benign actors, as many) hold what so few values show by chance.
    """
    out = []
    for c, t in df.schema.items():
        if c.startswith(("_", "f:")) or c in SKIP:
            continue
        if t.is_integer():
            out += [Feature(f"f:{c}:residue", c, "raw"), Feature(f"f:{c}:bit", c, "raw")]
        elif isinstance(t, pl.Datetime):
            out.append(Feature(f"f:{c}:residue", c, "raw"))
    return out


def _given_features(feats: Sequence[Feature]) -> list[Feature]:
    """The conditional excess test's features: each 0/1 row feature (null, night, ...) within each value of a column
    (``f:customer_id:null|action``: a null customer among views, among queries, ...), another column's.

    The 0/1 test over all rows weighs a category's share of the rows: a sixth of an analyst's single views naming no
    customer moved the null share of all their rows less than their mix of views and pulls (pulls name none) does
    from day to day. Within views it is new. Declared when either column is.
    """
    strata = [f.column for f in feats if f.kind == "cat" and f.name.endswith(":value")]
    flags = [f for f in feats if f.kind == "num" and not f.partial]
    return [
        Feature(f"{b.name}|{c}", b.column, "raw", b.aggregate, b.volume, given=c) for c in strata for b in flags if b.column != c
    ]


def _distinct_ints(df: pl.DataFrame, c: str) -> np.ndarray:
    """The distinct values of column ``c`` as int64, without null (a time as microseconds since the epoch)."""
    col = pl.col(c).dt.epoch("us") if isinstance(df.schema[c], pl.Datetime) else pl.col(c).cast(pl.Int64)
    return df.select(col).to_series().drop_nulls().unique().sort().to_numpy()


def _excess_stats(
    x: pl.DataFrame,
    ref: pl.DataFrame,
    feats: list[Feature],
    raws: list[Feature],
    deficits: dict[str, tuple[float, str]] | None = None,
) -> dict[str, tuple[float, str]]:
    """Per feature: how far one of its categories is in excess in ``x`` against ``ref`` (a z-score), and the category
    with its shares in both; ``deficits``, where given, gets the same of the category most short of its count among
    the values counted over sessions (below).

    * Residues modulo EXCESS_MODULI and the bits of ``raws``, over the column's distinct values (a ticket read ten
      times is one ticket number): the deviance of each modulus' (each bit's) counts as a z-score, the highest.
    * Values of string features with at most EXCESS_LEVELS values in ``ref``, and 0 and 1 of features that take no
      other value, over sessions (a token's rows where they have one, else an entity-day's): a value counts once per
      session that carries it; the root deviance of the value in most excess. Over rows, one forged token's hundred
      pages with a rare user agent weighed as a hundred customers with it, where the null draws (benign customers, a
      few pages each) weighed a few.

    A generator that differs in one category (8% of calls answered 429 where benign calls see 0.4%, ids drawn even or
    a multiple of three, times cut to the millisecond, a fixed byte in a token id, a null or an action that comparable
    benign rows never carry on 5% of rows) moves a distribution's KS distance or a value's unseen share by only the
    category's share, below their lines; against that category's own expected count it stands far out.
    """
    out: dict[str, tuple[float, str]] = {}
    if x.height == 0 or ref.height == 0:
        return out

    def shares(ka: np.ndarray, kb: np.ndarray, k: int, what: str) -> str:
        return f"{ka[k] / max(ka.sum(), 1):.1%} of attack {what}, {kb[k] / max(kb.sum(), 1):.1%} of benign"

    for f in raws:
        if f.given:  # below
            continue
        a, b = _distinct_ints(x, f.column), _distinct_ints(ref, f.column)
        if not len(a) or not len(b):
            continue
        if f.name.endswith(":residue"):
            tests = [
                (f"{f.column} mod {m} = {{k}}", np.bincount(a % m, minlength=m), np.bincount(b % m, minlength=m))
                for m in EXCESS_MODULI
            ]
        else:
            shifts = np.arange(EXCESS_BITS, dtype=np.int64)
            sa = ((np.abs(a)[:, None] >> shifts) & 1).sum(axis=0)
            sb = ((np.abs(b)[:, None] >> shifts) & 1).sum(axis=0)
            tests = [
                (f"{f.column} bit {i} = {{k}}", np.array([len(a) - sa[i], sa[i]]), np.array([len(b) - sb[i], sb[i]]))
                for i in range(EXCESS_BITS)
            ]
        devs = [_deviance(ka, kb) for _, ka, kb in tests]
        zs = _g_to_z(np.array([np.abs(g).sum() for g in devs]), np.array([len(ka) - 1 for _, ka, _ in tests]))
        i = int(np.argmax(zs))  # the first of equals: the smallest modulus, the lowest bit
        (label, ka, kb), k = tests[i], int(np.argmax(devs[i]))
        out[f.name] = (float(zs[i]), f"{label.format(k=k)} on {shares(ka, kb, k, 'values')}")

    def session(d: pl.DataFrame) -> pl.DataFrame:
        day = (
            pl.concat_str([pl.col("_entity"), pl.col("_day").cast(pl.String)], separator="@")
            if "_day" in d.columns
            else pl.col("_entity")
        )
        sess = pl.coalesce(pl.col(TOKEN).cast(pl.String), day) if TOKEN in d.columns else day
        return d.with_columns(_sess=sess.rank("dense"))  # a number per session: the counts below only ask which rows share one

    xs, rs = session(x), session(ref)

    # per categorical feature (its values and a code per row): the sessions that carry each value, below
    coded: list[tuple[str, Sequence[Any], pl.Expr]] = []
    for f in feats:
        if f.kind != "cat" or (levels := ref[f.name].unique()).len() > EXCESS_LEVELS:
            continue
        values = pl.concat([levels, x[f.name].unique()]).unique().sort().to_list()
        coded.append((f.name, values, pl.col(f.name).replace_strict({v: i for i, v in enumerate(values)}, return_dtype=pl.Int64)))
    nums = _nums(x, [f.name for f in feats if f.kind == "num"])
    refn = _nums(ref, list(nums))
    flags = [name for name, a in nums.items() if np.isin(a, (0.0, 1.0)).all() and np.isin(refn[name], (0.0, 1.0)).all()]
    coded += [(name, (0, 1), pl.col(name).cast(pl.Int64)) for name in flags]
    # every feature's codes in one query per frame, each feature's offset past the ones before: the distinct (session,
    # code) pairs, counted per code
    offsets = np.cumsum([0, *(len(values) for _, values, _ in coded)])

    def carried(d: pl.DataFrame) -> np.ndarray:
        if not coded:
            return np.zeros(0, dtype=np.int64)
        codes = d.select(
            "_sess",
            *(code.add(int(o)).alias(f"{i}") for i, ((_, _, code), o) in enumerate(zip(coded, offsets[:-1], strict=True))),
        )
        pairs = codes.unpivot(index="_sess").select("_sess", "value").unique()
        return np.bincount(pairs["value"].to_numpy(), minlength=int(offsets[-1]))

    in_x, in_ref = carried(xs), carried(rs)
    for (name, labels, _), o0, o1 in zip(coded, offsets[:-1], offsets[1:], strict=True):
        ka, kb = in_x[o0:o1], in_ref[o0:o1]
        g = _deviance(ka, kb)
        k = int(np.argmax(g))
        out[name] = (math.sqrt(max(float(g[k]), 0.0)), f"{name[2:]} = {labels[k]!r} on {shares(ka, kb, k, 'sessions')}")
        if deficits is not None:  # and the value in most deficit (the first of equals): a category benign sessions carry
            k = int(np.argmin(g))  # and the attack's never do (no error status, no untied open), which no excess shows
            deficits[name] = (math.sqrt(max(-float(g[k]), 0.0)), f"{name[2:]} = {labels[k]!r} on {shares(ka, kb, k, 'sessions')}")
    given: dict[str, list[Feature]] = {}
    for f in raws:
        if f.given and f.name.split("|")[0] in flags:
            given.setdefault(f.given, []).append(f)
    for c, fs in given.items():
        out |= _given_excess(xs, rs, f"f:{c}:value", fs, shares)
    return out


def _tie_operands(df: pl.DataFrame, stream: str) -> dict[str, pl.Expr]:
    """The tie test's operands (see TIE_ALPHA), by label: every integer column but the entity's and the row id, the
    entity's number (``_eid``, labelled ``entity``) and the clock's fields (TIE_CLOCK: ``ts.second``..., from the row
    features), as int64 expressions."""
    ops = {
        c: pl.col(c).cast(pl.Int64)
        for c, t in df.schema.items()
        if t.is_integer() and not c.startswith(("_", "f:")) and c not in SKIP and c not in ENTITY[stream]
    }
    if "_eid" in df.columns:
        ops["entity"] = pl.col("_eid").cast(pl.Int64)
    for k in TIE_CLOCK:
        if f"f:ts:{k}" in df.columns:
            ops[f"ts.{k}"] = pl.col(f"f:ts:{k}").floor().cast(pl.Int64)
    return {label: e.alias(label) for label, e in ops.items()}


def _tie_features(df: pl.DataFrame, stream: str) -> list[Feature]:
    """The tie test's features: each operand (:func:`_tie_operands`) alone (``f:<a>:tie``) and every two together
    (``f:<a>:tie:<b>``, their difference). Declared when either column is (a clock field's column is ``ts``)."""
    labels = list(_tie_operands(df, stream))
    col = {a: "" if a == "entity" else a.split(".")[0] for a in labels}  # the entity's number: no column of its own
    out = [Feature(f"f:{a}:tie", col[a], "tie") for a in labels]
    out += [Feature(f"f:{a}:tie:{b}", col[a], "tie", given=col[b]) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    return out


def _tie_stats(x: pl.DataFrame, stream: str, feats: Sequence[Feature]) -> dict[str, tuple[float, str, int]]:
    """Per tie feature (:func:`_tie_features`): (bits, what the rows share, distinct values), over ``x``'s rows that
    have the operands. Bits: log2 of the greatest common divisor of the values' differences from the least (64
    where every row has the same value); none where fewer than MIN_ROWS rows have them."""
    if not feats:
        return {}
    ops = _tie_operands(x, stream)
    m = x.select(*(e.fill_null(0) for e in ops.values()), *(e.is_not_null().alias(f"{c}~has") for c, e in ops.items()))
    vals = {c: m[c].to_numpy() for c in ops}
    has = {c: m[f"{c}~has"].to_numpy() for c in ops}
    out: dict[str, tuple[float, str, int]] = {}
    for f in feats:
        parts = f.name[2:].split(":tie")
        a, b = parts[0], parts[1].removeprefix(":") or None
        if a not in vals or (b is not None and b not in vals):
            continue
        va = vals[a]
        ok = has[a] if b is None else has[a] & has[b]
        if int(ok.sum()) < MIN_ROWS:
            continue
        d = va[ok] if b is None else va[ok] - vals[b][ok]
        d = np.unique(d)
        what = a if b is None else f"{a} - {b}"
        if len(d) == 1:
            out[f.name] = (64.0, f"{what} = {int(d[0])} on every attack row", 1)
            continue
        u = d.astype(np.uint64)
        g = int(np.gcd.reduce(u - u[:1]))  # the differences from the least, exact (below 2^64) in wrapping uint64
        out[f.name] = (math.log2(g), f"{what} = {int(d[0] % g)} (mod {g}) on every attack row", len(d))
    return out


def _given_excess(
    xs: pl.DataFrame, rs: pl.DataFrame, stratum: str, fs: list[Feature], shares: Callable[..., str]
) -> dict[str, tuple[float, str]]:
    """The 0/1 features ``fs`` (``flag|column``) within each value of the ``stratum`` feature, over sessions (``_sess``):
    per value, the sessions whose rows of that value carry 0 and 1; the root deviance of the value and flag in most excess.

    A value judged needs GIVEN_MIN_SESSIONS benign sessions with it (fewer say little of what is usual there) and
    at most EXCESS_LEVELS values among them.
    """
    if stratum not in xs.columns or stratum not in rs.columns or rs[stratum].n_unique() > EXCESS_LEVELS:
        return {}
    flags = [f.name.split("|")[0] for f in fs]

    def counts(d: pl.DataFrame) -> pl.DataFrame:
        per = d.group_by("_sess", stratum).agg(
            *(pl.col(b).eq(v).any().alias(f"{i}~{v}") for i, b in enumerate(flags) for v in (0, 1))
        )
        return per.group_by(stratum).agg(pl.all().exclude("_sess", stratum).sum(), _n=pl.len())  # _n: sessions

    kb = counts(rs).filter(pl.col("_n") >= GIVEN_MIN_SESSIONS)
    both = counts(xs).join(kb, on=stratum, how="inner", suffix="~ref").sort(stratum)
    out: dict[str, tuple[float, str]] = {}
    if both.height == 0:
        return out
    values = both[stratum].to_list()
    for i, f in enumerate(fs):
        ka = np.stack([both[f"{i}~0"].to_numpy(), both[f"{i}~1"].to_numpy()], axis=-1)
        kr = np.stack([both[f"{i}~0~ref"].to_numpy(), both[f"{i}~1~ref"].to_numpy()], axis=-1)
        g = _deviance(ka, kr)
        j, k = np.unravel_index(int(np.argmax(g)), g.shape)  # the first of equals: the first value, flag 0
        where = f"{flags[i][2:]} = {k} where {stratum[2:].removesuffix(':value')} = {values[j]!r}"
        out[f.name] = (math.sqrt(max(float(g[j, k]), 0.0)), f"{where} on {shares(ka[j], kr[j], k, 'sessions')}")
    return out


def _day_codes(df: pl.DataFrame) -> np.ndarray:
    """A code per row of its entity-day (``_entity``, ``_day``; the entity alone without days)."""
    keys = [c for c in ("_entity", "_day") if c in df.columns]
    return df.select(pl.struct(keys).rank("dense")).to_series().to_numpy() if keys and df.height else np.zeros(df.height)


def _value_days(codes: np.ndarray, x: np.ndarray) -> tuple[int, int]:
    """(distinct (entity-day ``codes``, value) pairs, distinct entity-days): the values a feature holds when an
    entity-day's rows share theirs."""
    if not len(x):
        return 0, 0
    o = np.lexsort((x, codes))
    c, v = codes[o], x[o]
    return int(1 + np.count_nonzero((c[1:] != c[:-1]) | (v[1:] != v[:-1]))), int(1 + np.count_nonzero(c[1:] != c[:-1]))


def _shared_columns(ben: pl.DataFrame, feats: Sequence[Feature]) -> frozenset[str]:
    """Columns of ``feats`` whose values a benign entity-day's rows mostly share (at most SHARED_VALUES distinct
    values per entity-day on average: an address, a device, a country), not values each row draws."""
    keys = [c for c in ("_entity", "_day") if c in ben.columns]
    cols = sorted({f.column for f in feats if f.kind != "cat" and not f.partial and f.column in ben.columns})
    if not keys or not cols or ben.height == 0:
        return frozenset()
    n = ben.select(pl.struct(keys).n_unique().alias("_days"), *(pl.struct(*keys, c).n_unique().alias(c) for c in cols)).row(
        0, named=True
    )
    return frozenset(c for c in cols if n[c] <= SHARED_VALUES * n["_days"])


def _per_entity(values: np.ndarray, entities: np.ndarray) -> np.ndarray:
    """The value of each entity's first row, in the entities' sorted order (a value as it is: a mean of equal values
    is not always equal to them, and an actor's departure ten thousand days away stood out from its peers' by the
    last bit)."""
    _, first = np.unique(entities, return_index=True)
    return values[first]


def _pair_codes(df: pl.DataFrame) -> np.ndarray:
    """A code per row for its entity and the customer it names (0 where it names none): rows of one reader reading one
    customer share a code."""
    key = pl.concat_str([pl.col("_entity"), pl.col("customer_id").cast(pl.String)], separator="|")
    return df.select(key.rank("dense").fill_null(0)).to_series().to_numpy()


def _perm_lines(xa: np.ndarray, ra: np.ndarray, seed: int) -> tuple[float, float]:
    """The KS distance and one-feature AUC (either way round) that ``len(xa)`` values drawn at random from ``xa`` and
    ``ra`` pooled reach with probability at most KS_ALPHA: the lines of a permutation test, PERMUTATIONS draws, ties
    kept (just above the draws' (KS_ALPHA * PERMUTATIONS + 1)-th highest figure, so a figure at the highest a few
    draws reach stays under it).

    For a few values against a few dozen, with ties: three actors whose departure (most employees: none) or tenure
    is at one end of their peers happen by chance far more often than the asymptotic lines of continuous values say,
    and those lines exceed 1 below about ten values.
    """
    pool = np.r_[xa, ra]
    k, n = len(xa), len(pool)
    order = np.argsort(pool, kind="stable")
    v = pool[order]
    ends = np.r_[np.flatnonzero(v[1:] != v[:-1]), n - 1]  # the last position of each run of equal values
    ranks = np.empty(n)
    starts = np.r_[0, ends[:-1] + 1]
    ranks_sorted = np.repeat((starts + ends) / 2 + 1, ends - starts + 1)  # mid-ranks, in sorted order
    ranks[order] = ranks_sorted
    rng = np.random.default_rng(seed)
    ks, auc = [], []
    for left in range(PERMUTATIONS, 0, -PERM_BATCH):
        b = min(PERM_BATCH, left)
        pick = np.argpartition(rng.random((b, n)), k - 1, axis=1)[:, :k]  # k of the n at random (both sides hold values)
        mask = np.zeros((b, n), dtype=np.int32)
        np.put_along_axis(mask, pick, 1, axis=1)
        cs = np.cumsum(mask[:, order], axis=1)[:, ends]  # picked values at or below each distinct value
        fa, fb = cs / k, (ends + 1 - cs) / (n - k)
        ks.append(np.abs(fa - fb).max(axis=1))
        u = ((mask * ranks).sum(axis=1) - k * (k + 1) / 2) / (k * (n - k))
        auc.append(np.maximum(u, 1 - u))
    j = int(KS_ALPHA * PERMUTATIONS)

    def line(x: np.ndarray) -> float:
        return float(np.sort(x)[::-1][j]) + 1e-9

    return line(np.concatenate(ks)), line(np.concatenate(auc))


def _stats(
    att: pl.DataFrame,
    ben: pl.DataFrame,
    feats: list[Feature],
    unit: str,
    p99: _Sticky | None,
    seed: int,
    raws: Sequence[Feature] = (),
    details: dict[tuple[str, str], str] | None = None,
    sizes: dict[str, tuple[int, int]] | None = None,
    perm: dict[tuple[str, str], float] | None = None,
    rows: np.ndarray | None = None,
    ties: Sequence[Feature] = (),
    stream: str = "",
    shared: frozenset[str] = frozenset(),
) -> dict[tuple[str, str], float]:
    """Every test's figure for ``att`` against ``ben`` (``ben[rows]`` where given; it must not hold ``att``'s units);
    ``details``, where given, gets the excess, deficit and tie tests' categories (by feature and test), ``sizes`` the
    attack and benign values a partial feature's tests compared (a tie feature's: its distinct values; under
    :data:`COMPARED`, the units every other feature's tests compared; for a feature of a ``shared`` column, the
    entity-day and value pairs), ``perm`` the
    lines of an actor's feature's permutation test (by feature and test; see :func:`_perm_lines`)."""
    out: dict[tuple[str, str], float] = {}
    matched = _matched(ben, att, per=3.0, cap=MAX_KS_ROWS, seed=seed, rows=rows)
    ref = matched
    cats = ["_group", *(f.name for f in feats if f.kind == "cat")] if unit == "rows" else ["_group"]
    # the reference of the unseen tests: their columns and the entity-day alone (a sample draws the same rows)
    big = ben.select(*cats, *(c for c in ("_entity", "_day") if c in ben.columns))
    big = big if rows is None else big[rows]
    big = big.sample(MAX_REF_ROWS, seed=seed) if big.height > MAX_REF_ROWS else big
    xs = att.sample(MAX_KS_ROWS, seed=seed) if att.height > MAX_KS_ROWS else att
    y = np.r_[np.ones(xs.height, dtype=np.int8), np.zeros(matched.height, dtype=np.int8)]

    def row_tested(f: Feature) -> bool:
        # a day's mean of a row feature: the row tests judge it (and one actor's habits dominate it); so
        # too for a share of rows whose value shows in another stream, which moves with the unit's rows
        # (a day of nine reads has one read of an active customer more often than a day of three)
        return unit == "rows" or not (
            f.name.endswith(":pick") or (f.name.endswith(":mean") and (f.aggregate is None or f.aggregate.startswith("in_")))
        )

    tested = [f.name for f in feats if f.kind != "cat" and row_tested(f)]
    xn, refn = _nums(xs, tested), _nums(ref, tested)  # ref is the matched sample
    if sizes is not None:
        sizes[COMPARED] = (xs.height, ref.height)
    # the entity-days of the rows, for the number of distinct values a feature has within them (see below)
    days = (_day_codes(xs), _day_codes(ref)) if sizes is not None and shared else None
    # the rows' employees, for the actor's features (one value per employee)
    ents = (xs["_entity"].to_numpy(), ref["_entity"].to_numpy()) if any(":actor:" in f for f in tested) else None
    # the reader and the customer of each row, where the rows' entity reads other people's records (see _pair_codes)
    pairs = (
        (_pair_codes(xs), _pair_codes(ref))
        if "customer_id" not in ENTITY.get(stream, ("customer_id",)) and any(":profile:" in f for f in tested)
        else None
    )
    unseen = _unseen_shares(att, big, [f.name for f in feats if f.kind == "cat"]) if unit == "rows" else {}
    for f in feats:
        if f.kind == "cat":
            if unit == "rows":
                test = "shape" if f.name.endswith((":shape", ":prefix")) else "unseen"
                out[(f.name, test)] = unseen[f.name]
            continue
        if p99 is not None and f.name in p99:
            out[(f.name, "sticky")] = p99.above(att, f.name)
        if f.name not in xn:
            continue
        xa, ra, yy = xn[f.name], refn[f.name], y
        if f.partial:  # the rows that have a value (a missing one is -1e9, see _nums); too few: no figure
            has_a, has_r = xa > -1e8, ra > -1e8
            if min(has_a.sum(), has_r.sum()) < MIN_ROWS:  # a null draw of 2 values against 12 was at KS 1.0
                continue
            xa, ra, yy = xa[has_a], ra[has_r], y[np.r_[has_a, has_r]]
            if ":actor:" in f.name:
                # who the employee is: one value per employee (its first row's), each employee weighed once (three
                # actors' rows are three values, and one busy actor's rows are one; a random three of a team's offices
                # stood out at KS 0.8 over rows, against a critical value of as many rows)
                assert ents is not None
                xa, ra = _per_entity(xa, ents[0][has_a]), _per_entity(ra, ents[1][has_r])
                yy = np.r_[np.ones(len(xa), dtype=np.int8), np.zeros(len(ra), dtype=np.int8)]
                if perm is not None and min(len(xa), len(ra)) < PERM_BELOW:
                    perm[(f.name, "ks")], perm[(f.name, "single_auc")] = _perm_lines(xa, ra, seed)
            elif pairs is not None and ":profile:" in f.name:
                # whom the rows read: one value per reader and customer (the customer's, the same on each of the pair's
                # rows). A snooping agent reads 25 people again and again, and their profiles over its rows stood out
                # at KS 0.24 against a line of 0.20-0.24 (check world, seeds 5 and 6) as a sample of 25 weighed by
                # rows; weighed once each, a list of one home region still does (KS 0.98 over rows)
                xa, ra = _per_entity(xa, pairs[0][has_a]), _per_entity(ra, pairs[1][has_r])
                if min(len(xa), len(ra)) < MIN_ROWS:
                    continue
                yy = np.r_[np.ones(len(xa), dtype=np.int8), np.zeros(len(ra), dtype=np.int8)]
            if sizes is not None:
                sizes[f.name] = (len(xa), len(ra))
        elif days is not None and sizes is not None and f.column in shared:
            # a row feature of a column that a benign entity-day's rows share (its address, device, country) holds as
            # many values as there are entity-days, not rows: seven days' 25 rows from the office or a home address
            # stood at KS 0.61 by chance against a line of 0.58 set for 25 values (classic-after-hours-theft-v2 at
            # stealth 1, seeds 1-3). Judged on benign rows: an attack's ticket numbers all even share their parity
            sizes[f.name] = (_value_days(days[0], xa)[0], _value_days(days[1], ra)[0])
        out[(f.name, "ks")] = _ks(xa, ra)
        out[(f.name, "single_auc")] = _auc1(yy, np.r_[xa, ra])
    if unit == "rows":  # its own reference, larger: a category of 0.4% needs more benign rows than the KS test does
        eref = _matched(ben, att, per=EXCESS_PER, cap=EXCESS_REF_ROWS, seed=seed + 17, rows=rows)
        deficits: dict[str, tuple[float, str]] = {}
        for name, (r, detail) in _excess_stats(xs, eref, feats, list(raws), deficits).items():
            out[(name, "excess")] = r
            if details is not None:
                details[(name, "excess")] = detail
        for name, (r, detail) in deficits.items():
            out[(name, "deficit")] = r
            if details is not None:
                details[(name, "deficit")] = detail
        for name, (bits, detail, n_values) in _tie_stats(xs, stream, ties).items():
            out[(name, "tie")] = bits
            if details is not None:
                details[(name, "tie")] = detail
            if sizes is not None:
                sizes[name] = (n_values, 0)
    return out


def _orphans(att: pl.DataFrame, ben: pl.DataFrame, stream: str, phase: str) -> list[Finding]:
    """Attack rows of a group (the role that day and shift; the auth event kind) that no benign row has: an exact rule,
    however few they are, and no null draw to weigh it against (every benign row has a group with benign rows).

    A staff account outside its holder's employment has no role that day (group ``none``), and benign accounts have
    no rows then; such rows were one incident's in 240 once (a non-leaver who went on after leaving). The other
    tests compare rows within a group, so they never saw them.
    """
    stray = att.join(ben.select("_group").unique(), on="_group", how="anti").height
    if not stray:
        return []
    return [Finding(stream, phase, "", "group", "orphan", stray / att.height, 0.0, 0.0, att.height, True, False, "rows")]


@dataclass(frozen=True)
class _Case:
    """One unit kind (rows, entity-days or tokens) of one (stream, phase): its attack and benign units, features and declared sets."""

    stream: str
    phase: str
    unit: str
    att: pl.DataFrame
    ben: pl.DataFrame
    feats: list[Feature]
    cols: set[str]
    aggs: set[str]
    verdict_only: bool = False  # skip the classifier with every feature (information, not part of the verdict)
    classify: bool = True  # False: the per-feature tests alone (no classifier at all)
    shared: frozenset[str] = frozenset()  # columns a benign entity-day's rows share (see _shared_columns)
    new_cols: set[str] | None = None  # the columns of the signals that explain unseen values (None: those of cols)

    def declared(self, f: Feature, test: str = "") -> bool:
        """Whether a signal declared for the case's phase covers the feature (for the unseen-value and unseen-prefix
        ``test``, a signal that explains values no benign row has: one of the customers' own clients does not explain a
        version none sends)."""
        cols = self.new_cols if test in ("unseen", "shape") and self.new_cols is not None else self.cols
        return _is_declared(f, cols, self.aggs)


def _judge_unit(case: _Case, seed: int) -> tuple[list[Finding], ClassifierScore | None]:
    """Every test on one unit kind of one (stream, phase), against null draws of benign entities."""
    att, unit = case.att, case.unit
    if att.height < (MIN_ROWS if unit == "rows" else MIN_DAYS):
        return [], None
    ben = case.ben.filter(pl.col("_group").is_in(att["_group"].unique().implode()))
    if ben.height < 2 * MIN_ROWS:
        return [], None
    # every random draw below is assigned to rows in frame order: fix that order (joins and group-bys upstream do not)
    case = dataclasses.replace(case, att=att.sort(_order(att)), ben=ben.sort(_order(ben)))
    findings, real = _findings(case, seed)
    if unit == "tokens" or not case.classify:  # the per-token tests above; the classifiers run on rows and entity-days
        return findings, None
    return findings, _classify(case, real, seed)


def _null_draw(att: pl.DataFrame, ben: pl.DataFrame, unit: str, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """A null draw (:func:`_pseudo`) and the benign units without it: their rows in ``ben``, in ``ben``'s order
    (the tests take those rows' columns as they need them; a copy of the whole frame per draw cost more than they)."""
    ps = _pseudo(att, ben, seed)
    keys = ["event_id"] if unit == "rows" else ["_entity", "_day"] if "_day" in att.columns else ["_entity"]
    drawn = ben.select(keys).with_row_index("_r").join(ps.select(keys).unique(), on=keys, how="semi")["_r"].to_numpy()
    keep = np.ones(ben.height, dtype=bool)
    keep[drawn] = False
    return ps, np.flatnonzero(keep)


def _findings(case: _Case, seed: int) -> tuple[list[Finding], dict[tuple[str, str], float]]:
    """The per-feature tests of a case, each against the highest figure of the null draws; (findings, the attack's figures)."""
    att, ben, unit, feats = case.att, case.ben, case.unit, case.feats
    n = att.height
    p99 = _Sticky(ben, [f.name for f in feats if f.name.endswith((":distinct", ":new"))]) if unit != "rows" else None
    raws = [*_raw_features(att), *_given_features(feats)] if unit == "rows" else []
    ties = _tie_features(att, case.stream) if unit == "rows" else []
    details: dict[tuple[str, str], str] = {}
    sizes: dict[str, tuple[int, int]] = {}
    perm: dict[tuple[str, str], float] = {}
    shared = case.shared if unit == "rows" else frozenset()
    real = _stats(att, ben, feats, unit, p99, seed, raws, details, sizes, perm, ties=ties, stream=case.stream, shared=shared)
    nulls = []
    for i in range(NULL_DRAWS):
        ps, rest = _null_draw(att, ben, unit, seed + 101 * (i + 1))
        if ps.height == 0:
            continue
        nulls.append(_stats(ps, ben, feats, unit, p99, seed + i + 1, raws, rows=rest, ties=ties, stream=case.stream))
    few = att["_entity"].n_unique() < 3  # one or two actors: their own habits weigh more, so a wider margin
    margin = NULL_MARGIN_FEW if few else NULL_MARGIN

    def crit(na: int, nb: int) -> float:  # the KS distance two samples of these sizes exceed with probability KS_ALPHA
        na, nb = min(na, MAX_KS_ROWS), min(nb, MAX_KS_ROWS)
        return math.sqrt(-math.log(KS_ALPHA / 2) / 2) * math.sqrt((na + nb) / max(na * nb, 1))

    def auc_crit(na: int, nb: int) -> float:  # the same for a one-feature AUC (its spread under no difference)
        from scipy.special import ndtri

        return 0.5 + float(ndtri(1 - KS_ALPHA / 2)) * math.sqrt((na + nb + 1) / max(12 * na * nb, 1))

    by_name = {f.name: f for f in [*feats, *raws, *ties]}
    findings = []
    for (name, test), value in real.items():
        f = by_name[name]
        neutral = 0.0 if test != "single_auc" else 0.5
        base = max([nl.get((name, test), neutral) for nl in nulls], default=neutral)
        if test in ("unseen", "shape"):
            thr = base + UNSEEN_GAP
        elif test == "ks":
            # the critical value of the values compared: the attack's against its matched benign sample (three times as
            # many, not every benign unit: 18 rows against 54 is a line of 0.61, not 0.52); a partial feature's test
            # compares the rows that have a value (a few sessions' first rows); an actor's feature: its permutation test's
            # line (see _stats)
            line = perm[(name, test)] if (name, test) in perm else crit(*sizes.get(name, sizes[COMPARED]))
            thr = max(KS_FLOOR, base + margin, line)
        elif test == "sticky":
            thr = max(STICKY_SHARE, base + margin)
        elif test in ("excess", "deficit"):
            thr = max(EXCESS_MIN, EXCESS_RATIO * base)
        elif test == "tie":
            # no null draw with a figure (too few rows with the operands): nothing to tell a shared value from an actor's
            n_eff = sizes[name][0] if name in sizes else 0
            chance = math.log2(1 / TIE_ALPHA) / (n_eff - 1) if n_eff > 1 else 0.0
            seen = any((name, test) in nl for nl in nulls)
            thr = max(TIE_MIN_BITS, chance, base + TIE_MARGIN_BITS) if seen else math.inf
        else:
            # the critical value of the values compared (a partial feature's: those that have one): 18 attack rows
            # against 54 reach AUC 0.70 by chance (one hour of a job hunt's daily queries, seeds 4-6)
            line = perm[(name, test)] if (name, test) in perm else auc_crit(*sizes.get(name, sizes[COMPARED]))
            thr = max(SINGLE_AUC, base + margin, line)
        # sticky: the p99 (at the attack's median rows); otherwise the null draws' highest figure
        shown = p99.shown(att, name) if test == "sticky" and p99 is not None else base
        # the sticky test compares units as busy: volume does not explain what it finds; and no signal explains a value's
        # shape that no comparable benign row carries (a format: a signal's values come from benign traffic's generators)
        unseen_format = test == "shape" and name.endswith(":shape")
        declared = not unseen_format and case.declared(dataclasses.replace(f, volume=False) if test == "sticky" else f, test)
        findings.append(
            Finding(
                case.stream,
                case.phase,
                f.column,
                name[2:],
                test,
                value,
                shown,
                thr,
                n,
                value >= thr,
                declared,
                unit,
                details.get((name, test), ""),
            )
        )
    return findings, real


def _alone(name: str) -> bool:
    """Whether the feature ``name`` (``f:c:odd``, ``a:c:odd:pick``, or a finding's ``c:odd``) is one of ALONE."""
    return any(p in ALONE for p in name.split(":")[1:])


def _classify(case: _Case, real: dict[tuple[str, str], float], seed: int) -> ClassifierScore:
    """The adversarial classifier on matched samples, with every feature and without the declared ones.

    With few attack units, the mean over several draws (benign sample and folds) of the same attack units.
    Above CHANCE_AUC without the declared features, the same classifier on the feature tests' null draws
    (random benign actors standing in for the attack's, :func:`_pseudo`) sets the line (:attr:`ClassifierScore.line`):
    with three or four actors, folds by actor leave the classifier free to find that two of them keep like
    hours or days, which benign stand-ins do as often.
    """
    att, ben = case.att, case.ben
    a_s = att.sample(MAX_CLASS_ROWS // 4, seed=seed) if att.height > MAX_CLASS_ROWS // 4 else att
    run = _class_draws(case, a_s, ben, seed, with_all=not case.verdict_only)
    null = None
    und = float(np.mean(run.unds)) if run.unds else None
    verdict = run.entities >= MIN_ENTITIES  # folds by entity-day would let the classifier learn one actor's habits: no verdict
    if verdict and und is not None and und > CHANCE_AUC:
        highs = []
        for i in range(NULL_DRAWS):
            ps, rest = _null_draw(att, ben, case.unit, seed + 101 * (i + 1))
            p_s = ps.sample(MAX_CLASS_ROWS // 4, seed=seed) if ps.height > MAX_CLASS_ROWS // 4 else ps
            if p_s.height == 0:
                continue
            drawn = _class_draws(case, p_s.with_columns(_attack=pl.lit(True)), ben, seed + i + 1, with_all=False, rows=rest)
            highs += [float(np.mean(drawn.unds))] if drawn.unds else []
        null = max(highs, default=None)
    by_name = {f.name: f for f in case.feats}
    singles = sorted(
        ((v, k[0]) for k, v in real.items() if k[1] == "single_auc" and not case.declared(by_name[k[0]])), reverse=True
    )
    top = tuple(f"{name[2:]} ({v:.2f})" for v, name in singles if v > 0.55)[:4]
    return ClassifierScore(
        case.stream,
        case.phase,
        case.unit,
        float(np.mean(run.alls)) if run.alls else None,
        und,
        run.n_att,
        run.n_ben,
        run.folds,
        top,
        run.entities,
        verdict,
        run.draws,
        null,
    )


@dataclass
class _Draws:
    """What :func:`_class_draws` found: AUCs with every feature and without the declared ones, per draw."""

    alls: list[float] = field(default_factory=list)
    unds: list[float] = field(default_factory=list)
    folds: int = 0
    entities: int = 0
    n_att: int = 0
    n_ben: int = 0
    draws: int = 0


def _class_draws(
    case: _Case, a_s: pl.DataFrame, ben: pl.DataFrame, seed: int, *, with_all: bool, rows: np.ndarray | None = None
) -> _Draws:
    """The classifier's draws on attack units ``a_s`` (labelled ``_attack``) against benign units matched from ``ben``
    (from ``ben[rows]`` where given)."""
    out = _Draws(draws=int(np.clip(math.ceil(DRAW_UNITS / max(a_s.height, 1)), 1, MAX_DRAWS)))
    for d in range(out.draws):
        b_s = _matched(ben, a_s, per=3.0, cap=MAX_CLASS_ROWS, seed=seed + 7919 * d, rows=rows)
        sample = pl.concat([a_s, b_s], how="diagonal_relaxed")
        if d:  # this draw's picked rows
            sample = sample.with_columns(
                pl.col(f"{f.name}~{d}").alias(f.name)
                for f in case.feats
                if f.name.endswith(":pick") and f"{f.name}~{d}" in sample.columns
            )
        y = sample["_attack"].cast(pl.Int8).to_numpy()
        X, dfeats, cat = _design(sample, [f for f in case.feats if not _alone(f.name)])
        X = _binned(X, cat)
        keep = np.array([not case.declared(f) for f in dfeats], dtype=bool)
        out.entities = sample.filter(pl.col("_attack"))["_entity"].n_unique()
        groups = _groups_of(sample, by_day=out.entities < MIN_ENTITIES)
        parts = _folds(y, groups, split=d)  # the same folds for both classifiers
        a_all, k_all = _cv_auc(X, y, parts, cat) if with_all else (None, 0)
        a_und, k_und = _cv_auc(X[:, keep], y, parts, cat[keep])
        out.folds = max(out.folds, k_all, k_und)
        out.alls += [a_all] if a_all is not None else []
        out.unds += [a_und] if a_und is not None else []
        out.n_att, out.n_ben = int(y.sum()), int((1 - y).sum())
    return out


def _groups_of(sample: pl.DataFrame, by_day: bool) -> np.ndarray:
    """CV groups: the entity, or the entity-day when the attack has fewer than three entities."""
    if by_day and "_day" in sample.columns:
        key = sample.select(pl.concat_str([pl.col("_entity"), pl.lit("@"), pl.col("_day").cast(pl.String)])).to_series()
    else:
        key = sample["_entity"]
    return key.rank("dense").to_numpy()


def audit_datasets(
    datasets: Sequence[Dataset],
    declared: dict[str, Sequence[str]],
    *,
    scenario: str = "",
    knobs: str = "",
    entry: int = 0,
    seeds: Sequence[int] = (),
    progress: Callable[[str], None] | None = None,
    verdict_only: bool = False,
    classifier: bool = True,
) -> AuditResult:
    """Audit the attack rows of one scenario entry in ``datasets`` (pooled) against comparable benign rows.

    Args:
        datasets: generated datasets with the same scenario at the same knobs (e.g. several seeds).
        declared: phase -> declared signal names (``Scenario.signals(knobs)``).
        scenario: scenario id, for messages.
        knobs: the knobs as text, for messages.
        entry: index of the scenario entry in each dataset's config (its incidents' rows are the attack rows).
        seeds: the datasets' seeds, for the record.
        progress: called with one line per stream audited.
        verdict_only: skip the adversarial classifier with every feature (its AUC, ``auc_all``, is
            then None); the verdict rests on the one without the declared signals' features.
        classifier: False skips the adversarial classifier altogether (most of an audit's time with
            three or more actors): the result has the per-feature findings alone, and its verdict
            says that the classifier did not run (:attr:`AuditResult.problems`). For tests of the
            per-feature tests.

    Returns:
        The per-feature findings, the classifier scores and the verdict.
    """
    import time

    t0 = time.perf_counter()
    for phase, names in declared.items():
        signals.check(names, f"{scenario} phase {phase}")
    rows = load_rows(datasets, entry)
    return audit_rows(
        rows,
        declared,
        scenario=scenario,
        knobs=knobs,
        seeds=seeds,
        progress=progress,
        started=t0,
        verdict_only=verdict_only,
        classifier=classifier,
    )


def audit_rows(
    rows: dict[str, pl.DataFrame],
    declared: dict[str, Sequence[str]],
    *,
    scenario: str = "",
    knobs: str = "",
    seeds: Sequence[int] = (),
    progress: Callable[[str], None] | None = None,
    started: float | None = None,
    verdict_only: bool = False,
    classifier: bool = True,
) -> AuditResult:
    """Audit rows loaded by :func:`load_rows` (``_attack`` and ``_phase`` say which rows are attack rows;
    ``verdict_only`` and ``classifier``: as in :func:`audit_datasets`)."""
    import time

    t0 = started if started is not None else time.perf_counter()
    say = progress or (lambda _m: None)
    findings: list[Finding] = []
    scores: list[ClassifierScore] = []
    anomalies: dict[str, dict[str, int]] = {}
    attack_rows: dict[str, int] = {}
    for stream, df in rows.items():
        att_all = df.filter(pl.col("_attack"))
        attack_rows[stream] = att_all.height
        if att_all.height == 0:
            continue
        ben_all = df.filter(~pl.col("_attack"))
        tags = ben_all.filter(pl.col("_pattern").is_not_null()).group_by("_pattern").len()
        anomalies[stream] = {p: int(n) for p, n in tags.iter_rows()}
        units = [("rows", df, row_features(df))]
        shared = _shared_columns(ben_all, units[0][2])
        ed, ed_feats = entity_days(df, stream)
        units.append(("entity-days", ed, ed_feats))
        tok = token_units(df, stream)
        if tok is not None:
            units.append(("tokens", tok[0], tok[1]))
        for phase in sorted(att_all["_phase"].drop_nulls().unique().to_list()):
            names = declared.get(phase)
            if names is None:
                raise AuditError(f"{scenario}: rows of phase {phase!r} but signals() declares only {sorted(declared)}")
            cols, aggs = _declared_sets(names, stream)
            new_cols, _ = _declared_sets(names, stream, unseen=True)
            findings += _orphans(att_all.filter(pl.col("_phase") == phase), ben_all, stream, phase)
            for unit, frame, feats in units:
                att = frame.filter(pl.col("_attack") & (pl.col("_phase") == phase))
                ben = frame.filter(~pl.col("_attack"))
                # the case's draws are seeded by the findings before it, but for the ALONE features' and the excess,
                # deficit and tie tests' (added later): with them counted, every draw after the first integer column moved
                seed = sum(not _alone(x.feature) and x.test not in ("excess", "deficit", "tie") for x in findings)
                f, c = _judge_unit(
                    _Case(stream, phase, unit, att, ben, feats, cols, aggs, verdict_only, classifier, shared, new_cols),
                    seed=seed,
                )
                findings += f
                if c is not None and unit != "tokens":
                    scores.append(c)
            say(
                f"  {scenario} {knobs}: {stream} phase {phase}, {att_all.filter(pl.col('_phase') == phase).height} attack rows audited"
            )
    return AuditResult(
        scenario,
        knobs or "defaults",
        tuple(seeds),
        {k: tuple(v) for k, v in declared.items()},
        tuple(findings),
        tuple(scores),
        anomalies,
        attack_rows,
        time.perf_counter() - t0,
        classified=classifier,
    )


# ---- generating and auditing scenarios ------------------------------------------------------------

#: The audit world: small but not tiny; collection faults off (the audit is about generation).
AUDIT_WORLD: dict[str, Any] = {
    "world": {"customers": 20_000, "employees": 1000, "block_size": 10_000},
    "time": {"start": "2025-04-01", "end": "2025-04-25", "warmup_days": 4},
    "traffic": {"daily_active_fraction": 0.1},
    "logs": {"missing_rate": 0.0, "duplicate_rate": 0.0, "late_rate": 0.0},
}
#: A smaller world for ``scenarios check`` (three departed owners' unrevoked keys: one for each of
#: CHECK_AUDIT_INCIDENTS forged-token incidents).
CHECK_AUDIT_WORLD: dict[str, Any] = {
    "world": {"customers": 6000, "employees": 600, "block_size": 6000, "orphaned_keys": 3},
    "time": {"start": "2025-04-01", "end": "2025-04-19", "warmup_days": 4},
    "traffic": {"daily_active_fraction": 0.1},
    "logs": {"missing_rate": 0.0, "duplicate_rate": 0.0, "late_rate": 0.0},
}
DEFAULT_SEEDS = (1, 2, 3)
#: The audit of ``scenarios check``: CHECK_AUDIT_INCIDENTS incidents of the scenario, each with its own actors (three
#: actors at least, so that the classifier gives a verdict), in one dataset of the check world (seed CHECK_AUDIT_SEED);
#: a scenario the world cannot hold that many incidents of: one incident in each of CHECK_AUDIT_SEEDS, pooled. One
#: world instead of three: the same verdicts on the built-in scenarios at about 40% of the time.
CHECK_AUDIT_SEED = 5
CHECK_AUDIT_INCIDENTS = 3
CHECK_AUDIT_SEEDS = (5, 6, 7)


def _knob_text(knobs: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(knobs.items())) or "defaults"


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """(config overrides, scenario knobs) from ``--set`` assignments; ``knobs.<name>=value`` are knobs."""
    from breachbench.config import ConfigError, _parse_value

    config, knobs = [], {}
    for a in overrides:
        if "=" not in a:
            raise AuditError(f"--set {a!r}: expected dotted.key=value, e.g. knobs.stealth=1 or world.customers=50000")
        key, _, raw = a.partition("=")
        key = key.strip()
        if key.startswith("knobs."):
            name = key.removeprefix("knobs.")
            if not name or "." in name:
                raise AuditError(f"--set {key}: a knob is knobs.<name>, e.g. knobs.stealth=1")
            knobs[name] = _parse_value(raw.strip())
        elif key.split(".")[0] in ("scenarios", "seed", "name", "detection", "suite"):
            raise ConfigError(f"--set {key}: not settable in an audit (scenarios and seeds come from the IDs and --seeds)")
        else:
            config.append(a)
    return config, knobs


def audit_config(
    scenario: str,
    knobs: dict[str, Any],
    seed: int,
    overrides: Sequence[str] = (),
    world: dict[str, Any] | None = None,
    count: int = 1,
) -> Any:
    """The SimConfig of one audit dataset (the audit world, overrides applied, one scenario entry of ``count``
    incidents)."""
    import copy

    from breachbench.config import apply_override, validate

    data = copy.deepcopy(world or AUDIT_WORLD)
    data |= {"name": "audit", "seed": seed, "scenarios": [{"id": scenario, "knobs": dict(knobs), "count": count}]}
    for a in overrides:
        apply_override(data, a)
    return validate(data, "audit").sim()


def audit_scenarios(
    ids: Sequence[str],
    *,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    overrides: Sequence[str] = (),
    workdir: str | Path | None = None,
    world: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    on_result: Callable[[AuditResult], None] | None = None,
    verdict_only: bool = False,
    classifier: bool = True,
    count: int = 1,
) -> list[AuditResult]:
    """Generate every scenario x seed at the knobs of ``overrides`` and audit each scenario, seeds pooled.

    Args:
        ids: registered scenario ids or ``module:attr``.
        seeds: one dataset per seed, pooled before judging.
        overrides: ``--set`` assignments: ``knobs.<name>=v`` set scenario knobs (on the scenarios that have
            the knob), anything else a key of the audit world's config.
        workdir: the folder (made if missing) in which a temporary folder of the datasets is made and removed afterwards
            (by default, the system's temporary folder).
        world: the base world (default :data:`AUDIT_WORLD`).
        progress: called with one line per step.
        workers: generation workers.
        on_result: called with each scenario's result as soon as it is ready (to print as it goes).
        verdict_only: as in :func:`audit_datasets` (``scenarios check`` prints the verdict alone).
        classifier: as in :func:`audit_datasets`.
        count: incidents of the scenario in each dataset (each with its own actors), all audited.
    """
    from simulator.engine import generate
    from simulator.scenarios import load

    say = progress or (lambda _m: None)
    if not seeds or any((not isinstance(s, int)) or s < 0 for s in seeds):
        raise AuditError(f"--seeds: expected non-negative integers, got {list(seeds)}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise AuditError(f"count: expected a positive integer (incidents per dataset), got {count!r}")
    config, knobs = split_overrides(overrides)
    classes = {sid: load(sid) for sid in ids}
    for name in knobs:
        if not any(name in cls.Knobs.model_fields for cls in classes.values()):
            raise AuditError(
                f"--set knobs.{name}: no selected scenario has that knob; knobs: "
                f"{sorted({k for cls in classes.values() for k in cls.Knobs.model_fields})}"
            )
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)  # a folder of its own below it holds the datasets
    tmp = Path(tempfile.mkdtemp(prefix="artefact-audit-", dir=workdir))
    results: list[AuditResult] = []
    try:
        for sid, cls in classes.items():
            mine = {k: v for k, v in knobs.items() if k in cls.Knobs.model_fields}
            try:
                kn = cls.Knobs(**mine)
            except Exception as exc:  # pydantic: one line naming the knob
                raise AuditError(f"--set knobs ({sid}): {str(exc).splitlines()[0]}; {' '.join(str(exc).split())[:200]}") from None
            if not hasattr(cls(), "signals"):
                raise AuditError(f"{sid}: the scenario has no signals(knobs); declare its phases' signals (simulator/signals.py)")
            declared = cls().signals(kn)
            dsets = []
            for seed in seeds:
                cfg = audit_config(sid, mine, seed, config, world, count)
                say(f"generate {sid} {_knob_text(mine)} seed {seed}{f' ({count} incidents)' if count > 1 else ''}")
                out = generate(cfg, tmp / f"{len(results)}-{seed}", workers=workers)
                dsets.append(Dataset.open(out))
            say(f"audit {sid} {_knob_text(mine)} ({len(seeds)} seed(s){f', {count} incidents each' if count > 1 else ''})")
            results.append(
                audit_datasets(
                    dsets,
                    declared,
                    scenario=sid,
                    knobs=_knob_text(mine),
                    seeds=seeds,
                    progress=say,
                    verdict_only=verdict_only,
                    classifier=classifier,
                )
            )
            if on_result is not None:
                on_result(results[-1])
            for d in dsets:
                shutil.rmtree(d.root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def check_audit(
    scenario: str, *, workdir: str | Path | None = None, progress: Callable[[str], None] | None = None
) -> AuditResult:
    """The artefact audit of ``scenarios check`` (verdict only): CHECK_AUDIT_INCIDENTS incidents of ``scenario`` at its
    default knobs in one dataset of CHECK_AUDIT_WORLD; where the world cannot hold that many (a
    :class:`~simulator.errors.ScenarioError` while planning them), one incident on each of CHECK_AUDIT_SEEDS, pooled.
    ``workdir`` and ``progress``: as in :func:`audit_scenarios`."""
    from simulator.errors import ScenarioError

    say = progress or (lambda _m: None)
    common: dict[str, Any] = {"world": CHECK_AUDIT_WORLD, "workdir": workdir, "progress": progress, "verdict_only": True}
    try:
        (res,) = audit_scenarios([scenario], seeds=(CHECK_AUDIT_SEED,), count=CHECK_AUDIT_INCIDENTS, **common)
        return res
    except ScenarioError as exc:
        say(
            f"{scenario}: the check world does not hold {CHECK_AUDIT_INCIDENTS} incidents of it "
            f"({str(exc).splitlines()[0]}); one incident on each of seeds {', '.join(map(str, CHECK_AUDIT_SEEDS))} instead"
        )
    (res,) = audit_scenarios([scenario], seeds=CHECK_AUDIT_SEEDS, **common)
    return res


def artefact_audit(datasets: dict[str, Dataset] | Sequence[Dataset]) -> dict[str, Any]:
    """The audit section of ``results.json``: every (scenario entry, knobs) of the datasets, seeds pooled.

    Datasets whose config holds the same scenario at the same knobs are pooled. Returns
    ``{"passed": bool, "chance_auc": 0.6, "thresholds": {...}, "scenarios": [AuditResult.to_dict()...]}``.
    """
    from simulator.scenarios import load

    items = list(datasets.values()) if isinstance(datasets, dict) else list(datasets)
    groups: dict[tuple[str, str], list[tuple[Dataset, int]]] = {}
    for ds in items:
        for i, spec in enumerate(ds.manifest["config"]["scenarios"]):
            key = (spec["id"], json.dumps(spec.get("knobs", {}), sort_keys=True))
            groups.setdefault(key, []).append((ds, i))
    out: list[AuditResult] = []
    for (sid, kjson), members in groups.items():
        cls = load(sid)
        kn = json.loads(kjson)
        declared = cls().signals(cls.Knobs(**kn)) if hasattr(cls(), "signals") else {}
        by_entry: dict[int, list[Dataset]] = {}
        for ds, i in members:
            by_entry.setdefault(i, []).append(ds)
        for entry, dsets in by_entry.items():
            out.append(
                audit_datasets(
                    dsets, declared, scenario=sid, knobs=_knob_text(kn), entry=entry, seeds=[d.manifest["seed"] for d in dsets]
                )
            )
    return artefact_summary(out)


def artefact_summary(results: Sequence[AuditResult]) -> dict[str, Any]:
    """The JSON-able audit section: verdict, thresholds and each scenario's result."""
    return {
        "passed": all(r.passed for r in results),
        "thresholds": thresholds(),
        "problems": [p for r in results for p in r.problems],
        "scenarios": [r.to_dict() for r in results],
    }


def thresholds() -> dict[str, float]:
    """The audit's thresholds, for the record."""
    return {
        "unseen_gap": UNSEEN_GAP,
        "ks_floor": KS_FLOOR,
        "ks_alpha": KS_ALPHA,
        "sticky_share": STICKY_SHARE,
        "sticky_peers": STICKY_PEERS,
        "single_auc": SINGLE_AUC,
        "chance_auc": CHANCE_AUC,
        "null_draws": NULL_DRAWS,
        "null_margin": NULL_MARGIN,
        "null_margin_few": NULL_MARGIN_FEW,
        "min_entities": MIN_ENTITIES,
        "draw_units": DRAW_UNITS,
        "max_draws": MAX_DRAWS,
        "excess_min": EXCESS_MIN,
        "excess_ratio": EXCESS_RATIO,
        "excess_levels": EXCESS_LEVELS,
        "tie_alpha": TIE_ALPHA,
        "tie_min_bits": TIE_MIN_BITS,
        "tie_margin_bits": TIE_MARGIN_BITS,
    }


# ---- printing ------------------------------------------------------------------------------------


def table(result: AuditResult, *, all_rows: bool = False) -> list[tuple[str, ...]]:
    """Rows of the per-column table: stream, phase, unit, column, feature, test, attack, benign, threshold, verdict.

    Only differences (declared or not) unless ``all_rows``.
    """
    out: list[tuple[str, ...]] = []
    for f in sorted(result.findings, key=lambda f: (f.stream, f.phase, f.unit, f.column, f.feature, f.test)):
        if not (f.differs or all_rows):
            continue
        verdict = "UNDECLARED" if f.undeclared else "declared" if f.differs else "ok"
        fmt = (
            (lambda v: f"{v:.0%}")
            if f.test in ("unseen", "shape", "sticky")
            else (lambda v: f"{v:.1f}")
            if f.test in ("excess", "deficit", "tie")
            else (lambda v: f"{v:.2f}")
        )
        ben = f"p99 {f.benign:g}" if f.test == "sticky" else fmt(f.benign)
        out.append((f.stream, f.phase, f.unit, f.column, f.feature, f.test, fmt(f.attack), ben, fmt(f.threshold), verdict))
    return out


def classifier_lines(result: AuditResult) -> list[str]:
    """One line per (stream, phase, level): AUC with every feature and without the declared ones."""
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    return [
        f"{c.stream} phase {c.phase} {c.level}: AUC all {fmt(c.auc_all)}, without declared {fmt(c.auc_undeclared)} "
        f"({c.n_attack} attack / {c.n_benign} benign, {c.entities} attack entities, {c.folds} folds{f' x {c.draws} draws' if c.draws > 1 else ''})"
        f"{'' if c.null is None else f', null draws up to {c.null:.2f}'}"
        f"{'' if c.near_chance else f'  ABOVE {c.line:.2f}'}{'' if c.verdict else f'  (no verdict: fewer than {MIN_ENTITIES} attack entities)'}"
        for c in result.classifiers
    ]


__all__ = [
    "AuditError",
    "AuditResult",
    "ClassifierScore",
    "Finding",
    "artefact_audit",
    "artefact_summary",
    "audit_datasets",
    "audit_rows",
    "audit_scenarios",
    "check_audit",
    "classifier_lines",
    "load_rows",
    "table",
    "thresholds",
]
