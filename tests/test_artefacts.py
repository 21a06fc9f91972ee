"""The artefact audit (breachbench.artefacts): planted leaks are named by column, benign stand-ins pass.

Each planted scenario (tests/bad_scenarios.py) subclasses a built-in and adds one artefact; the
built-ins still have artefacts of their own (issue 12), so every test asserts that the planted
column is named among the undeclared differences, not that it is the only one. The plants share two
small worlds (``CHECK_AUDIT_WORLD``, each plant an entry of one or three incidents; see PLANT_WORLDS) and are audited
without the adversarial classifier: the per-column tests are what these tests check.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import shared
from polars.testing import assert_frame_equal

from breachbench.artefacts import (
    CHECK_AUDIT_WORLD,
    AuditError,
    AuditResult,
    Finding,
    _interleaved,
    _near_ref,
    _others_near,
    audit_config,
    audit_rows,
    audit_scenarios,
    entry_rows,
    load_rows,
    split_overrides,
)
from simulator.config import WorldConfig

TESTS = Path(__file__).resolve().parent
SEED = (5,)

#: The forged token's knobs on the small customer side of its plants: a short sweep, a few hundred pages a day.
FORGED_SMALL = {"probe_days": 2, "start_offset": 1, "bulk_days": 3, "daily_share": 0.003}

PLANTS: dict[str, tuple[Any, ...]] = {
    # plant -> (target, knobs[, incidents]): one world (seed 5), one incident unless given (each its own actors; as
    # many as three seeds held before, at a third of the generating and featurising); stealth 1 where it leaves the
    # planted column undeclared
    "agent": ("bad_scenarios:ConstantAgent", {"stealth": 1.0, **FORGED_SMALL}),
    # the forged token's default stealth, where one client version (uniform_client) is declared: it explains which
    # benign client every forged row carries, not a client whose shape no customer's has (until 2026-12-07 it did)
    "agent-default": ("bad_scenarios:ConstantAgent", FORGED_SMALL),
    # the forged token's default stealth, where unissued_token and page_mix are declared: they explain the missing
    # issuance and the pages, not the digits of the token ids or of the pages' sizes (until 2026-12-07 each named its
    # whole column); a hundredth of the customers a day: one token in two is even by chance, and a few dozen tokens put
    # all-even at the excess test's line
    "even-tokens": ("bad_scenarios:EvenTokensPaddedPages", {**FORGED_SMALL, "daily_share": 0.01}),
    "pages": ("bad_scenarios:EvenPages", {"stealth": 1.0, **FORGED_SMALL}),
    "tickets": ("bad_scenarios:PrivateTickets", {"stealth": 1.0}),
    "even": ("bad_scenarios:EvenTickets", {"stealth": 1.0, "actors": 3}),  # three actors: one alone is too few rows
    # the snooping agent's default stealth, where no_ticket is declared: it explains the numbers a missing ticket moves,
    # not the residues of the numbers the rows carry (until 2026-12-07 it named the whole column)
    "even-default": ("bad_scenarios:EvenTickets", {"actors": 3}),
    "ms": ("bad_scenarios:MillisecondTimes", {"stealth": 1.0, "actors": 3}),
    "nullviews": ("bad_scenarios:ViewsWithoutCustomer", {"stealth": 1.0, "actors": 3, "rate": 4}, 3),
    # three incidents: a day's first row after a login is one row a day, too few in one incident's fifteen actor-days
    "minute": ("bad_scenarios:RowsAMinuteAfterLogin", {"stealth": 1.0, "actors": 3}, 3),
    "spaced": ("bad_scenarios:EvenlySpacedTakeover", {"stealth": 1.0, "actors": 3}, 3),
    "whole-minute": ("bad_scenarios:WholeMinuteTimes", {"stealth": 1.0, "actors": 3}),
    "sorted": ("bad_scenarios:SortedCustomers", {"stealth": 1.0, "actors": 3}),
    "login-after": ("bad_scenarios:LoginAfterFirstRead", {"stealth": 1.0, "actors": 3}),
    # the takeover's default stealth, where bulk_pull is declared: it explains what a pull's missing customer moves, not
    # which customers the single reads name (until 2026-12-07 it named the whole column, and this plant passed there)
    "one-region": ("bad_scenarios:OneRegionReads", {"actors": 3}),
    # the snooping agent's default stealth, where repeat_targets is declared: it explains how often the few people's ids
    # come back, not whom they name (until 2026-12-07 it named the whole column, and this plant passed there)
    "mail-domain": ("bad_scenarios:SnoopingOneMailDomain", {"actors": 3}),
    # three incidents: a random benign reader's customers cluster on the busy ones, and one seed's null draws reached 0.26
    # (one incident)
    "orderers": ("bad_scenarios:OnlyOrderers", {"stealth": 1.0, "actors": 3}, 3),
    "monday": ("bad_scenarios:MondaySignups", {"stealth": 1.0, "actors": 3}),
    "early-month": ("bad_scenarios:EarlyMonthSignups", {"stealth": 1.0, "actors": 3}),
    "big-spenders": ("bad_scenarios:BigSpenders", {"stealth": 1.0, "actors": 3}),
    "entrance": ("bad_scenarios:EntranceCodes", {"stealth": 1.0, "actors": 3}),
    "iphone": ("bad_scenarios:IPhoneCustomers", {"stealth": 1.0, "actors": 3}),
    # the takeover's default stealth, where off-hours is declared: it names when rows come, not a script's delay or a
    # divisor every row's minute shares (until 2026-12-07 it named the whole time column, and both passed there)
    "fixed-delay": ("bad_scenarios:FixedDelay", {"actors": 3}),
    "initial": ("bad_scenarios:SameInitialReads", {"stealth": 1.0, "actors": 3}),
    # three incidents: the actor's features are judged over actors (see "newest")
    "lowest": ("bad_scenarios:LowestNumberOfTeam", {"stealth": 1.0, "actors": 3}, 3),
    "one-ticket": ("bad_scenarios:OneTicketADay", {"stealth": 1.0, "actors": 3}, 3),
    "concurrent": ("bad_scenarios:UndeclaredConcurrentUse", {"actors": 3}),
    "squeezed": ("bad_scenarios:SqueezedReads", {"stealth": 1.0, "actors": 3, "rate": 4.0}),
    "in-step": ("bad_scenarios:InStepWithColleagues", {"stealth": 1.0, "actors": 3}),
    "colleagues-customers": ("bad_scenarios:ColleaguesCustomers", {"stealth": 1.0, "actors": 3}),
    "echo": ("bad_scenarios:ColleagueEcho", {"stealth": 1.0, "actors": 3}),
    "jitter": ("bad_scenarios:JitteredRelay", {"stealth": 1.0, "actors": 3}),
    # three incidents: one seed's three actors (one incident) put the orders' recency at its line
    "recent-orderers": ("bad_scenarios:RecentOrderers", {"stealth": 1.0, "actors": 3}, 3),
    # three incidents: one row a day of a snooping agent's few
    "daily-clock": ("bad_scenarios:DailyClock", {"stealth": 1.0, "actors": 3}, 3),
    # three incidents: the actor's features are judged over actors (see "newest")
    "role-movers": ("bad_scenarios:RoleMovers", {"stealth": 1.0, "actors": 3}, 3),
    "stale-key": ("bad_scenarios:StaleKeyOwners", {"stealth": 1.0, "actors": 3}, 3),
    "congruent": ("bad_scenarios:CustomersCongruentToActor", {"stealth": 1.0, "actors": 3}),
    "even-minutes": ("bad_scenarios:EvenMinutes", {"actors": 3}),  # at the default stealth, as "fixed-delay"
    # three incidents: the actor's features are tested over actors, and three give a verdict only at the very end of
    # their peers (KS 1.00 against a line of 0.98 in one stream, one seed of one incident); nine are well past it
    # (the mail-out's default stealth, where impersonation is declared: it explains whose account and device the rows
    # are of, not who the actor is; until 2026-12-07 it named the whole employee column, and this plant passed there)
    "newest": ("bad_scenarios:MailoutNewestHires", {"actors": 3}, 3),
    # the forged token's default stealth again (uniform_client declared): a version of the shop's app no customer runs
    "new-version": ("bad_scenarios:UnseenAppVersion", FORGED_SMALL),
    # and where page_mix is declared: an endpoint no customer's session calls
    "new-endpoint": ("bad_scenarios:UnseenEndpoint", FORGED_SMALL),
    # ten times the forged pages of "agent": a careful token logs out now and then, and one seed needs ten that do
    "logout": ("bad_scenarios:LogoutBeforeLastPage", {"stealth": 1.0, **FORGED_SMALL, "daily_share": 0.03}),
}


#: Forged-token plants: the customer side is what costs, so a smaller, quieter one.
SMALL_CUSTOMER_SIDE = ("agent", "agent-default", "even-tokens", "pages", "logout", "new-version", "new-endpoint")


#: Plants whose actors are picked by who they are (the newest hires, the lowest numbers of a team, ...).
PICK_ACTORS = ("newest", "lowest", "role-movers", "stale-key")
#: The worlds the plants share, each plant a labelled entry of its world's config: the forged-token plants' (the small
#: customer side, an unrevoked key for each) and the staff plants' (the check world). An entry's actors are drawn
#: among the employees no earlier entry took, so the plants that pick their actors come first, and a new plant goes
#: last: the others keep theirs. The check world's support agents and logistics staff are nearly all taken; a plant
#: that does not fit (generation says so) goes into a world of its own here.
PLANT_WORLDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "small": (
        SMALL_CUSTOMER_SIDE,
        (
            "world.customers=3000",
            "world.block_size=3000",
            "traffic.daily_active_fraction=0.05",
            f"world.orphaned_keys={len(SMALL_CUSTOMER_SIDE)}",
            f"world.signing_keys={max(len(SMALL_CUSTOMER_SIDE), WorldConfig.model_fields['signing_keys'].default)}",
        ),
    ),
    "check": (tuple(sorted((n for n in PLANTS if n not in SMALL_CUSTOMER_SIDE), key=lambda n: n not in PICK_ACTORS)), ()),
}


@pytest.fixture(scope="session")
def plant_world(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, dict[str, pl.DataFrame]]]:
    """``plant_world(group)``: the dataset of that group of PLANT_WORLDS (seed 5) and its rows, every entry's.

    Generated once per test run (:func:`conftest.shared`), loaded and featurised once per worker that asks: one
    load for all the group's plants, where a world of their own each cost a generation and a load per plant (about
    60% of the plant tests' time).
    """
    import copy

    from breachbench.config import apply_override, validate
    from breachbench.dataset import Dataset
    from simulator.engine import generate

    sys.path.insert(0, str(TESTS))
    worlds: dict[str, tuple[Path, dict[str, pl.DataFrame]]] = {}

    def get(group: str) -> tuple[Path, dict[str, pl.DataFrame]]:
        if group not in worlds:
            names, sets = PLANT_WORLDS[group]
            data = copy.deepcopy(CHECK_AUDIT_WORLD) | {"name": f"plants-{group}", "seed": SEED[0]}
            data["scenarios"] = [
                {"id": PLANTS[n][0], "label": n, "knobs": dict(PLANTS[n][1]), "count": (PLANTS[n][2:] or (1,))[0]} for n in names
            ]
            for a in sets:
                apply_override(data, a)
            cfg = validate(data, f"plants-{group}").sim()
            root = shared(tmp_path_factory, f"plants-{group}", lambda folder: generate(cfg, folder / "dataset", workers=1))
            worlds[group] = (root, load_rows([Dataset.open(root)], entry=range(len(names))))
        return worlds[group]

    return get


@pytest.fixture(scope="session")
def planted(plant_world: Callable[[str], tuple[Path, dict[str, pl.DataFrame]]]) -> Callable[[str], AuditResult]:
    """``planted(name)``: that planted scenario audited once, on its own entry's rows of the world it shares.

    The other plants' rows are context there (their nearest rows, shared lags, ...), as in any dataset of several
    scenarios (:func:`breachbench.artefacts.load_rows`). Without the adversarial classifier: the tests read the
    per-feature findings, which do not depend on it (test_random_benign_actors_pass checks that), and with three
    actors it was two thirds of a plant's time.
    """
    from simulator.scenarios import load

    cache: dict[str, AuditResult] = {}

    def get(name: str) -> AuditResult:
        if name not in cache:
            group = next(g for g, (names, _) in PLANT_WORLDS.items() if name in names)
            target, knobs, *_ = PLANTS[name]
            cls = load(target)
            cache[name] = audit_rows(
                entry_rows(plant_world(group)[1], PLANT_WORLDS[group][0].index(name)),
                cls().signals(cls.Knobs(**knobs)),
                scenario=target,
                knobs=" ".join(f"{k}={v}" for k, v in sorted(knobs.items())),
                seeds=SEED,
                classifier=False,
            )
        return cache[name]

    return get


def test_each_plant_is_judged_on_its_own_rows(plant_world: Callable[[str], tuple[Path, dict[str, pl.DataFrame]]]) -> None:
    """In a world of several entries, an entry's rows are the benign rows and its own incidents' rows, the latter its
    attack rows; and an entry chosen alone loads as it does by its index."""
    from breachbench.dataset import Dataset

    root, rows = plant_world("small")
    ds = Dataset.open(root)
    names = PLANT_WORLDS["small"][0]
    events = ds.truth("malicious_events")
    entry_of = dict(
        enumerate(e for e, spec in enumerate(ds.manifest["config"]["scenarios"]) for _ in range(spec.get("count", 1)))
    )
    benign = {s: set(df.filter(pl.col("_entry").is_null())["event_id"].to_list()) for s, df in rows.items()}
    for i, name in enumerate(names):
        mine = entry_rows(rows, i)
        streams = events.filter(pl.col("incident_id").replace_strict(entry_of).eq(i))["stream"].unique()
        assert set(mine) == set(streams.to_list()), name
        for s, df in mine.items():
            own = events.filter((pl.col("stream") == s) & pl.col("incident_id").replace_strict(entry_of).eq(i))
            assert set(df.filter(pl.col("_attack"))["event_id"].to_list()) == set(own["event_id"].to_list()), (name, s)
            assert set(df.filter(~pl.col("_attack"))["event_id"].to_list()) == benign[s], (name, s)
            assert "_entry" not in df.columns
    alone = load_rows([ds], 2)
    chosen = entry_rows(load_rows([ds], [2]), 2)
    assert alone.keys() == chosen.keys()
    for s in alone:
        assert_frame_equal(alone[s], chosen[s])


def _named(res: AuditResult, stream: str, column: str, features: tuple[str, ...] = (), tests: tuple[str, ...] = ()) -> list:
    return [
        f
        for f in res.findings
        if f.undeclared
        and f.stream == stream
        and f.column == column
        and (not features or f.feature in features)
        and (not tests or f.test in tests)
    ]


def test_constant_user_agent_is_named(planted: Callable[[str], AuditResult]) -> None:
    res = planted("agent")
    assert not res.passed
    hits = _named(res, "gateway", "user_agent", tests=("unseen",))
    assert hits and max(f.attack for f in hits) > 0.9, res.problems
    assert any("gateway.user_agent" in p for p in res.problems)


def test_a_client_of_a_shape_no_customer_sends_is_named_where_one_client_is_declared(
    planted: Callable[[str], AuditResult],
) -> None:
    """The planted agent at the forged token's default knobs, where one client version on every forged row is declared
    (``uniform_client``): that explains which of the customers' clients the rows carry, not a format none of them has.
    Until 2026-12-07 a declared column covered its values' shapes too, and a scripted client passed there."""
    res = planted("agent-default")
    assert not res.passed
    hits = _named(res, "gateway", "user_agent", features=("user_agent:shape",), tests=("shape",))
    assert hits and max(f.attack for f in hits) > 0.9, res.problems
    # and the value no customer's client sends (see the next test)
    assert _named(res, "gateway", "user_agent", features=("user_agent:value",), tests=("unseen",))


def test_a_client_version_no_customer_runs_is_named_where_one_client_is_declared(
    planted: Callable[[str], AuditResult],
) -> None:
    """The forged tokens' app at a version no customer's app runs, in the shape of theirs: one client version
    (``uniform_client``) explains which of the customers' clients the rows carry, so the value is new to every
    comparable row (named), while its shape is the app's (no shape finding)."""
    res = planted("new-version")
    hits = _named(res, "gateway", "user_agent", features=("user_agent:value",), tests=("unseen",))
    assert hits and max(f.attack for f in hits) > 0.3, res.problems
    assert not [f for f in res.findings if f.feature == "user_agent:shape" and f.differs]


def test_a_page_no_customer_calls_is_named_where_a_mix_of_pages_is_declared(planted: Callable[[str], AuditResult]) -> None:
    """The forged tokens' address pages from an endpoint no customer's session calls: a mix of pages (``page_mix``)
    explains how often each of the customers' pages comes, not a page none of them calls (named); its shape is theirs."""
    res = planted("new-endpoint")
    hits = _named(res, "gateway", "endpoint", features=("endpoint:value",), tests=("unseen",))
    assert hits and max(f.attack for f in hits) > 0.1, res.problems
    assert not [f for f in res.findings if f.feature == "endpoint:shape" and f.differs]


def test_even_token_ids_are_named_where_tokens_without_issuance_are_declared(planted: Callable[[str], AuditResult]) -> None:
    """Forged tokens whose ids are all even, at the forged token's default knobs: no issuance record (declared there)
    explains why auth never shows the token, not how its id was drawn."""
    res = planted("even-tokens")
    hits = _named(res, "gateway", "token_id", features=("token_id:residue",), tests=("excess",))
    assert hits and max(f.attack for f in hits) > 8, res.problems
    assert not _named(res, "gateway", "token_id", features=("token_id:in_auth",))  # the missing issuance: declared


def test_padded_page_sizes_are_named_where_a_mix_of_pages_is_declared(planted: Callable[[str], AuditResult]) -> None:
    """The same forged tokens' pages each a multiple of 16 bytes: a mix of pages no customer produces (declared there)
    explains which pages and how large they are, not the digits of a size the server draws as it does for anyone."""
    res = planted("even-tokens")
    hits = _named(res, "gateway", "bytes", features=("bytes:residue",), tests=("excess",))
    assert hits and max(f.attack for f in hits) > 12, res.problems
    assert not _named(res, "gateway", "bytes", features=("bytes:num",))  # how large the pages are: declared


def test_evenly_spaced_pages_are_named(planted: Callable[[str], AuditResult]) -> None:
    """A token's pages a fixed delay apart: every gap a session's pages could have, but each the one before it."""
    res = planted("pages")
    hits = _named(res, "gateway", "ts", features=("ts:rhythm",), tests=("ks",))
    assert hits and min(f.attack for f in hits) > 0.9, res.problems
    assert any("gateway.ts" in p and "ts:rhythm" in p for p in res.problems)


def test_a_sessions_rhythm_is_its_tokens_and_even_spacing_is_zero() -> None:
    """|log10| of a gap over the gap before it, within a token (by time, ties by event id), from its third row on."""
    from breachbench.artefacts import _row_features

    t0 = 1_743_465_600_000_000
    ts = [t0, t0 + 10_000_000, t0 + 20_000_000, t0 + 30_000_000]  # token 1: a page every 10 s
    ts += [t0, t0 + 1_000_000, t0 + 101_000_000, t0 + 101_000_000]  # token 2: 1 s, 100 s, then a tie
    ts += [t0 + 5_000_000]  # no token (a login)
    df = pl.DataFrame(
        {
            "event_id": [4, 2, 3, 1, 5, 6, 8, 7, 9],
            "ts": ts,
            "token_id": [1, 1, 1, 1, 2, 2, 2, 2, None],
            "_entity": ["c:1"] * 9,
            "_eid": [1] * 9,
            "_day": [None] * 9,
        },
        schema_overrides={"_day": pl.Date},
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    perm = [8, 3, 0, 6, 1, 5, 2, 7, 4]
    out = _row_features(df[perm].with_columns(_day=pl.col("ts").dt.date()), "gateway", "UTC", pl.DataFrame())
    got = dict(zip(out["event_id"], out["f:ts:rhythm"], strict=True))
    assert got[4] is None and got[2] is None and got[3] == got[1] == pytest.approx(0.0, abs=1e-6)
    assert got[5] is None and got[6] is None and got[9] is None
    assert got[7] == pytest.approx(np.log10(100.001 / 1.001)) and got[8] == pytest.approx(np.log10(100.001 / 0.001))


def test_a_delay_repeated_by_many_actors_is_theirs_and_one_every_benign_entity_shows_is_the_systems() -> None:
    """``f:ts:again``: a gap repeated to the microsecond on another day of the entity counts where few benign entities
    show it, however many attack entities do (three incidents of six actors in one world are 18 of ~300 entities, and
    their script's 41 s delay had passed as a delay of the system's); a gap every benign entity shows counts on none."""
    from breachbench.artefacts import _row_features

    t0 = dt.datetime(2025, 4, 1, 1, tzinfo=dt.UTC)
    rows: list[tuple[str, dt.datetime, bool]] = []
    for e in range(25):
        attack = e >= 20  # five attack entities of 25: a fifth, over AGAIN_ENTITIES of all
        for day in (0, 1):
            start = t0 + dt.timedelta(days=day, seconds=e * 300)
            rows.append((f"e:{e}", start, attack))
            rows.append((f"e:{e}", start + dt.timedelta(seconds=5), attack))  # every entity's 5 s: the system's
            # the script's 41 s on attack entities; a drawn gap of its own on each benign one (and day)
            gap = dt.timedelta(seconds=41) if attack else dt.timedelta(seconds=50 + e, microseconds=day * 1000 + 1)
            rows.append((f"e:{e}", start + dt.timedelta(seconds=5) + gap, attack))
    df = pl.DataFrame(rows, schema=["_entity", "ts", "_attack"], orient="row").with_columns(
        event_id=pl.int_range(pl.len()), _eid=pl.lit(1), _day=pl.col("ts").dt.date()
    )
    out = _row_features(df, "admin", "UTC", pl.DataFrame()).sort("event_id")
    again = out["f:ts:again"].to_numpy().reshape(25, 2, 3)
    assert (again[20:, :, 2] == 1.0).all()  # the script's delay, on both days of each attack entity
    assert (again[:20, :, 2] == 0.0).all()  # a benign entity's own drawn gaps do not repeat
    assert (again[:, :, 1] == 0.0).all() and (again[:, :, 0] == 0.0).all()  # the system's 5 s; a day's first row
    # counted over every entity, as before, the five attack entities' delay was the system's
    assert (_row_features(df.drop("_attack"), "admin", "UTC", pl.DataFrame())["f:ts:again"] == 0.0).all()


def test_the_first_row_after_each_login_carries_its_delay_in_the_sessions_gaps() -> None:
    """log10((1 + seconds) / (1 + mean gap)) from the latest login from the row's address to its first row from there
    after it, the gap that of the rows the login opens (up to the next login); none on later rows, rows before any
    login from their address, a login that opens one row, or an entity that never logs in."""
    from breachbench.artefacts import _after_auth

    t0 = dt.datetime(2025, 4, 1, 1, tzinfo=dt.UTC)

    def at(*secs: float) -> list[dt.datetime]:
        return [t0 + dt.timedelta(seconds=x) for x in secs]

    a, b = "192.0.2.1", "198.51.100.7"
    auth = pl.DataFrame({"employee_id": [1, 1, 1, 2, 4], "src_ip": [a, a, b, a, a], "ts": at(0, 3600, 100, 10, 0)})
    # employee 1 from a: a row before the login, two after it, two after the relogin; from b (another place at once):
    # a row before b's login, two after it; 2: two rows after a login; 3: never logs in; 4: one row after its login
    admin = pl.DataFrame(
        {
            "event_id": [5, 7, 1, 8, 2, 3, 11, 12, 4, 9, 6, 10],
            "employee_id": [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4],
            "src_ip": [a, b, a, b, a, a, a, b, a, a, a, a],
            "ts": at(-5, 30, 60, 120, 90, 3602, 3700, 150, 20, 50, 30, 40),
        }
    )
    out = _after_auth({"auth": auth, "admin": admin}, {"admin", "auth"})
    assert out["auth"] is auth and out["admin"]["event_id"].to_list() == [5, 7, 1, 8, 2, 3, 11, 12, 4, 9, 6, 10]
    got = dict(zip(out["admin"]["event_id"], out["admin"]["f:ts:after_auth"], strict=True))
    assert all(got[k] is None for k in (5, 7, 2, 11, 12, 9, 6, 10))
    # per entity, b's row at 30 came between a's login and a's first row: that row was not first
    assert got[1] == pytest.approx(np.log10(61 / 31)) and got[3] == pytest.approx(np.log10(3 / 99))
    assert got[8] == pytest.approx(np.log10(21 / 31)) and got[4] == pytest.approx(np.log10(11 / 31))
    # a stream without addresses pairs by entity alone: b's row at 30 is the first after a's login, a's at 60 is not
    plain = _after_auth({"auth": auth.drop("src_ip"), "admin": admin.drop("src_ip")}, {"admin"})["admin"]
    got = dict(zip(plain["event_id"], plain["f:ts:after_auth"], strict=True))
    assert got[1] is None and got[7] is not None and got[8] is not None


def test_rows_a_minute_after_each_login_are_named(planted: Callable[[str], AuditResult]) -> None:
    """A taken-over account's first row of the day exactly a minute after its login: each admin column as benign, but
    the delay from the login to the first row is the same every day, where a person's varies."""
    res = planted("minute")
    hits = _named(res, "admin", "ts", features=("ts:after_auth",))
    assert {f.test for f in hits} == {"ks", "single_auc"}, res.problems
    assert min(f.attack - f.threshold for f in hits) > 0.1  # well past the line, which counts the few rows compared
    assert any("ts:after_auth" in p for p in res.problems)


def test_without_tokens_a_session_is_an_entitys_day_on_one_device_and_address() -> None:
    """Admin rows have no token: the rhythm runs over an employee's rows of a day from one device and address, so a
    taken-over account's rows (another device) and its holder's, interleaved, are two sessions."""
    from breachbench.artefacts import _row_features

    t0 = dt.datetime(2025, 4, 1, 9, tzinfo=dt.UTC)
    # the outsider (LT-9) every 30 s: rows 0, 2, 4, 6; the holder (LT-1) at 15, 30, 40 and 50 s: rows 1, 3, 5, 7
    dev = ["LT-9", "LT-1", "LT-9", "LT-1", "LT-9", "LT-1", "LT-9", "LT-1"]
    df = pl.DataFrame(
        {
            "event_id": list(range(8)),
            "ts": [t0 + dt.timedelta(seconds=x) for x in (0, 15, 30, 30, 60, 40, 90, 50)],
            "device": dev,
            "src_ip": ["198.51.100.7" if d == "LT-9" else "10.0.0.4" for d in dev],
            "_entity": ["e:1"] * 8,
            "_eid": [1] * 8,
        }
    ).with_columns(_day=pl.col("ts").dt.date())
    out = _row_features(df, "admin", "UTC", pl.DataFrame())
    got = dict(zip(out["event_id"], out["f:ts:rhythm"], strict=True))
    assert got[0] is None and got[2] is None and got[4] == pytest.approx(0.0, abs=1e-6) and got[6] == pytest.approx(0.0, abs=1e-6)
    assert got[1] is None and got[3] is None
    assert got[5] == pytest.approx(abs(np.log10(10.001 / 15.001))) and got[7] == pytest.approx(0.0, abs=1e-6)


def test_a_takeovers_evenly_spaced_rows_are_named(planted: Callable[[str], AuditResult]) -> None:
    """The outsider's rows two minutes apart on the taken-over account, its holder working the same day: the rhythm
    of the outsider's session (their device and address) is 0 on every row."""
    res = planted("spaced")
    hits = _named(res, "admin", "ts", features=("ts:rhythm",), tests=("ks",))
    assert hits and min(f.attack for f in hits) > 0.9, res.problems


def test_times_on_whole_minutes_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Every attack row at second :00: the hour moves by little and the microseconds' residues not at all; the clock's
    second, a feature of its own, is 0 on every attack row."""
    res = planted("whole-minute")
    hits = _named(res, "admin", "ts", features=("ts:second",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.9, res.problems


def test_customers_read_in_ascending_order_are_named(planted: Callable[[str], AuditResult]) -> None:
    """The same customers as the scenario reads, in ascending id order within the session: each read's id is above the
    session's last one, where a person's go up about half the time."""
    res = planted("sorted")
    hits = _named(res, "admin", "customer_id", features=("customer_id:up",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.3, res.problems


def test_a_login_logged_after_the_sessions_first_read_is_named(planted: Callable[[str], AuditResult]) -> None:
    """The session's first read comes before any login from that account and address that day."""
    res = planted("login-after")
    hits = _named(res, "admin", "ts", features=("ts:no_auth",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


def test_reads_of_one_home_region_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Every customer the outsider reads lives in the commonest home region: no value is unseen and there are too many
    regions to count, but the share of the world's customers living where the customer read lives is one number. At
    the takeover's default stealth: bulk pulls, declared there, do not explain which customers the single reads name."""
    res = planted("one-region")
    hits = _named(res, "admin", "customer_id", features=("customer_id:profile:home_region",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


@pytest.mark.parametrize(
    ("plant", "feature"),
    [
        ("mail-domain", "customer_id:profile:email.domain"),  # one e-mail provider (the snooping agent's few people)
        ("orderers", "customer_id:profile:orders.rows"),  # customers who have ordered
        ("monday", "customer_id:profile:signup_date.weekday"),  # signed up on a Monday
        ("early-month", "customer_id:profile:signup_date.day"),  # signed up on days 1-3 of a month
        ("big-spenders", "customer_id:profile:orders.amount.mean"),  # the top fifth by mean order amount
        ("entrance", "customer_id:profile:addresses.entrance_code.present"),  # an entrance code at their own address
        ("iphone", "customer_id:profile:gateway.user_agent"),  # their own client an iPhone (in the gateway's rows)
        ("initial", "customer_id:profile:kin:name.first"),  # the name's initial the account holder's
    ],
)
def test_what_the_world_tables_hold_of_the_customers_read_is_named(
    plant: str, feature: str, planted: Callable[[str], AuditResult]
) -> None:
    """Red teams' takeovers read only customers of one e-mail provider, who had ordered, who signed up on a Monday or
    on days 1-3 of a month, in the top fifth by mean order amount, with an entrance code at their own address, whose
    own client was an iPhone, or whose name began as the account holder's: every customer read was an ordinary one,
    and the audit passed all of them. Categories derived from the customer table's columns, what the customer's rows
    in the other world tables hold, their usual values in their own stream's rows and what the customer shares with
    the row's employee now name each."""
    res = planted(plant)
    hits = _named(res, "admin", "customer_id", features=(feature,))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.3, (plant, [(f.feature, f.test, f.attack) for f in hits])


def test_a_delay_repeated_to_the_microsecond_is_named(planted: Callable[[str], AuditResult]) -> None:
    """A red team's takeover put each day's second row exactly 41 s after its first (a script's sleep), every other
    time as drawn: one row a day, so no residue of the clock is shared, and the audit passed it. A gap the entity's
    rows show on another day too, to the microsecond, is in excess among the attack's rows. At the takeover's default
    stealth: off-hours, declared there, does not explain a delay repeated to the microsecond."""
    res = planted("fixed-delay")
    hits = _named(res, "admin", "ts", features=("ts:again",))
    assert hits and max(f.attack / f.threshold for f in hits) > 1.5, [(f.feature, f.test, f.attack, f.threshold) for f in hits]


def test_an_account_at_two_places_at_once_is_named(planted: Callable[[str], AuditResult]) -> None:
    """The takeover's outsider reads from a place of their own while the holder works from theirs, undeclared: every
    address is one a benign account uses and new addresses are declared, but the two take turns through the day,
    where a benign account's second address (a commute, a night at home) comes after the first."""
    res = planted("concurrent")
    hits = _named(res, "admin", "", features=("src_ip:interleaved",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


def test_reads_squeezed_into_ten_minutes_are_named(planted: Callable[[str], AuditResult]) -> None:
    """A day's reads run in ten minutes inside the agent's working session: each time one of the agent's hours, each
    gap one a busy day has, but far shorter than the session's mean gap, where rows added through the session keep it."""
    res = planted("squeezed")
    hits = _named(res, "admin", "ts", features=("ts:pace",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.3, res.problems


def test_rows_in_step_with_other_peoples_rows_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Each outsider row 50-300 ms after another employee's row: the hours and every gap of the account's own rows as
    drawn, but never far from someone else's row (a relay fired by a colleague's traffic)."""
    res = planted("in-step")
    hits = _named(res, "admin", "ts", features=("ts:near:admin",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


def test_reads_of_the_customer_a_colleague_just_read_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Each outsider read names the customer another employee read last before it: every customer one a benign read
    names, every time as drawn, but each read close behind another person's read of the same customer."""
    res = planted("colleagues-customers")
    hits = _named(res, "admin", "customer_id", features=("customer_id:near:admin",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


def test_rows_a_fixed_delay_after_other_peoples_rows_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Each outsider row exactly 45 s after another employee's row (a relay with a fixed delay): others' rows come in
    between, so the nearest row of another entity is not the colleague's; but the account's rows share one lag."""
    res = planted("echo")
    hits = _named(res, "admin", "ts", features=("ts:echo",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


def test_a_relay_whose_delay_varies_within_a_second_is_named(planted: Callable[[str], AuditResult]) -> None:
    """Each outsider row 17 s and up to 0.9 s after another employee's row: the delay spreads over the fine echo's bins,
    but its bins of a second hold many of the unit's rows, each after a reference row of its own."""
    res = planted("jitter")
    hits = _named(res, "admin", "ts", features=("ts:echo:wide",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.4, res.problems


def test_customers_picked_by_when_they_last_ordered_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Reads moved to customers with as many orders whose latest order fell in the two weeks before the span, at night:
    their number of orders is the drawn customers', but the orders table's times are not."""
    res = planted("recent-orderers")
    assert not _named(res, "admin", "customer_id", features=("customer_id:profile:orders.rows",)), res.problems
    for feature in ("customer_id:profile:orders.ts.recent", "customer_id:profile:orders.ts.hour"):
        hits = _named(res, "admin", "customer_id", features=(feature,), tests=("ks",))
        assert hits and max(f.attack for f in hits) > 0.3, (feature, res.problems)


def test_a_read_at_the_same_second_every_day_is_named(planted: Callable[[str], AuditResult]) -> None:
    """One read a day at the actor's own clock time, within half a second: every hour one of the actor's, every gap one
    a day has, but the row meets the actor's rows of the other days at the same second of the clock."""
    res = planted("daily-clock")
    hits = _named(res, "admin", "ts", features=("ts:daily",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.3, res.problems


def test_actors_picked_by_their_role_history_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Snooping agents each of whom held another role before: their team, office, tenure and number are their peers',
    but the employee_roles table holds more periods of theirs."""
    res = planted("role-movers")
    hits = _named(res, "admin", "employee_id", features=("employee_id:actor:roles",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


def test_actors_picked_by_a_stale_credential_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Takeovers of accounts whose owner holds an API key made over a year before, never rotated nor revoked: every row
    as drawn, but the credentials table holds an old open key of each actor's."""
    res = planted("stale-key")
    hits = _named(res, "admin", "employee_id", features=("employee_id:actor:credentials.open.age",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.5, res.problems


@pytest.mark.parametrize("dense", [True, False], ids=["counted", "sorted"])
def test_a_rows_shared_lag_and_its_clock_on_other_days_by_hand(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_echo_lags`` and ``_same_clock_days`` against every pair, counted by hand on small random inputs with planted
    echoes and repeated clock times (lags within the window and the row cap, bins of 10 ms; the clock round
    midnight). The bins' rows counted in one array (``dense``, the small inputs' way) and by sorting (a large chunk's)."""
    from breachbench import artefacts as A

    monkeypatch.setattr(A, "ECHO_DENSE_BINS", A.ECHO_DENSE_BINS if dense else 0)
    from simulator.units import DAY_US

    def echo_by_hand(qt, qe, qk, qu, rt, re_, rk):
        lags = []
        for i in range(len(qt)):
            mid, half = int(np.searchsorted(rt, qt[i])), A.ECHO_MAX_PAIRS // 2
            near = [j for j in range(len(rt)) if abs(qt[i] - rt[j]) <= A.ECHO_WINDOW_US and mid - half <= j < mid + half]
            lags.append([qt[i] - rt[j] for j in near if re_[j] != qe[i] and rk[j] != qk[i]])
        bins = [{(x + A.ECHO_WINDOW_US) // A.ECHO_BIN_US for x in lag} for lag in lags]
        shared = np.full(len(qt), np.nan)
        for i in range(len(qt)):
            others = [k for k in range(len(qt)) if qu[k] == qu[i] and k != i]
            if others:
                shared[i] = max([0, *(sum(b in bins[k] for k in others) for b in bins[i])])
        return shared, np.array([len(x) for x in lags])

    def clock_by_hand(e, d, t):
        out = np.full(len(t), np.nan)
        for i in range(len(t)):
            days = set(d[e == e[i]]) - {d[i]}
            if days:
                near = {
                    d[j]
                    for j in range(len(t))
                    if e[j] == e[i] and d[j] != d[i] and min(abs(t[j] - t[i]), DAY_US - abs(t[j] - t[i])) <= A.DAILY_US
                }
                out[i] = len(near) / len(days)
        return out

    r = np.random.default_rng(1)
    for trial in range(30):
        nr, nq = int(r.integers(0, 60)), int(r.integers(1, 40))
        rt = np.sort(r.integers(0, 10 * A.ECHO_WINDOW_US, nr))
        re_, rk = r.integers(0, 5, nr), r.integers(-2, 4, nr)
        qt, qe, qk, qu = (
            r.integers(0, 10 * A.ECHO_WINDOW_US, nq),
            r.integers(0, 5, nq),
            r.integers(-1, 4, nq),
            r.integers(0, 6, nq),
        )
        if nr and trial % 2:  # echoes: each query row a fixed lag after a reference row
            qt = rt[r.integers(0, nr, nq)] + A.ECHO_WINDOW_US // 2 + r.integers(0, 200, nq)
        (got, got_lags), (want, want_lags) = A._echo_lags(qt, qe, qk, qu, rt, re_, rk), echo_by_hand(qt, qe, qk, qu, rt, re_, rk)
        np.testing.assert_allclose(got, want, err_msg=str(trial))
        assert got_lags.tolist() == want_lags.tolist(), trial
        n = int(r.integers(1, 80))
        e, d, t = r.integers(1, 4, n), r.integers(0, 6, n), r.integers(0, DAY_US, n)
        if trial % 2:  # half the rows at one clock time, round midnight
            t[: n // 2] = (DAY_US - 300_000 + r.integers(0, 900_000, n // 2)) % DAY_US
        np.testing.assert_allclose(A._same_clock_days(e, d, t), clock_by_hand(e, d, t), err_msg=str(trial))
    # a planted echo: three rows of one unit each 17 s after another entity's row share the lag (each the two others)
    rt, re_, rk = np.array([0, 40_000_000, 90_000_000]), np.array([7, 8, 9]), np.array([-2, -2, -2])
    qt, unit = rt + 17_000_000, np.zeros(3, np.int64)
    shared, lags = A._echo_lags(qt, np.zeros(3, np.int64), np.full(3, -1), unit, rt, re_, rk)
    assert shared.tolist() == [2.0, 2.0, 2.0] and lags.tolist() == [3, 3, 3]  # each row: 3 lags
    # in odds: Poisson with the others' lags over the window's bins as the mean, for the best of the row's lags (times two,
    # a margin); 0 below the line (in bins of 2 s, two others among 6 lags in 120 bins would not be one in 1,000)
    from scipy.stats import poisson

    want = -np.log10(2 * 3 * poisson.sf(1, 6 / (2 * A.ECHO_WINDOW_US / A.ECHO_BIN_US)))
    assert want > A.ECHO_LINE > -np.log10(2 * 3 * poisson.sf(1, 6 / (2 * A.ECHO_WINDOW_US / 2_000_000)))  # wide: chance
    np.testing.assert_allclose(A._echo_surprise(shared, lags, unit), [want] * 3)
    # none shared: 0; a unit of one row: none
    got = A._echo_surprise(np.array([0.0, np.nan]), np.array([5, 5]), np.array([0, 1]))
    assert got[0] == 0.0 and np.isnan(got[1])


@pytest.mark.parametrize("dense", [True, False], ids=["counted", "sorted"])
def test_the_wide_echo_counts_distinct_reference_rows_by_hand(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``f:ts:echo:wide`` (bins of a second, laid twice): a bin's rows count only as many as the distinct reference rows
    their lags go to. Against every pair counted by hand on small random inputs (the odds past the line the same), a
    relay jittered within a second named, and a burst of a unit's rows after one colleague's row not. Both ways of
    counting a bin's rows (see the test above), and both bins from one set of lags as each alone."""
    from breachbench import artefacts as A

    monkeypatch.setattr(A, "ECHO_DENSE_BINS", A.ECHO_DENSE_BINS if dense else 0)

    wide, grids = A.ECHO_WIDE_US, A.ECHO_WIDE_GRIDS

    def by_hand(qt, qe, qk, qu, rt, re_, rk):
        pairs = []
        for i in range(len(qt)):
            mid, half = int(np.searchsorted(rt, qt[i])), A.ECHO_MAX_PAIRS // 2
            near = [j for j in range(len(rt)) if abs(qt[i] - rt[j]) <= A.ECHO_WINDOW_US and mid - half <= j < mid + half]
            pairs.append([(qt[i] - rt[j], j) for j in near if re_[j] != qe[i] and rk[j] != qk[i]])
        shared = np.full(len(qt), np.nan)
        for i in range(len(qt)):
            mine = [k for k in range(len(qt)) if qu[k] == qu[i]]
            if len(mine) < 2:
                continue
            best = 0
            for g in range(grids):

                def bins(k: int, g: int = g) -> dict[int, set[int]]:
                    out: dict[int, set[int]] = {}
                    for lag, j in pairs[k]:
                        out.setdefault((lag + A.ECHO_WINDOW_US + g * (wide // grids)) // wide, set()).add(j)
                    return out

                of = {k: bins(k) for k in mine}
                for b in of[i]:
                    rows = [k for k in mine if b in of[k]]
                    refs = set().union(*(of[k][b] for k in rows))
                    best = max(best, min(len(rows), len(refs)) - 1)
            shared[i] = best
        return shared, np.array([len(p) for p in pairs])

    def odds(shared, lags, unit):
        return A._echo_surprise(shared, lags, unit, wide, grids)

    r = np.random.default_rng(2)
    crossed = 0
    for trial in range(40):
        nr, nq = int(r.integers(1, 60)), int(r.integers(2, 40))
        rt = np.sort(r.integers(0, 10 * A.ECHO_WINDOW_US, nr))
        re_, rk = r.integers(0, 5, nr), np.full(nr, -2)
        qe, qk, qu = r.integers(0, 5, nq), np.full(nq, -1), r.integers(0, 3, nq)
        qt = r.integers(0, 10 * A.ECHO_WINDOW_US, nq)
        if trial % 2:  # a relay: each query row 17 s + up to 0.9 s after a reference row
            qt = rt[r.integers(0, nr, nq)] + 17_000_000 + r.integers(0, 900_000, nq)
        got, got_lags = A._echo_lags(qt, qe, qk, qu, rt, re_, rk, bin_us=wide, grids=grids)
        want, want_lags = by_hand(qt, qe, qk, qu, rt, re_, rk)
        both = A._echo_lags_binned((qt, qe, qk, qu), (rt, re_, rk), ((A.ECHO_BIN_US, 1), (wide, grids)))
        fine = A._echo_lags(qt, qe, qk, qu, rt, re_, rk)
        for (x, x_lags), (y, y_lags) in zip(both, (fine, (got, got_lags)), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=str(trial))
            assert x_lags.tolist() == y_lags.tolist(), trial
        assert got_lags.tolist() == want_lags.tolist(), trial
        np.testing.assert_allclose(odds(got, got_lags, qu), odds(want, want_lags, qu), err_msg=str(trial))
        crossed += int((odds(want, want_lags, qu) > 0).any())
    assert crossed >= 5  # the comparison saw rows past the line
    # a relay: twelve rows of one unit, each 17 s + up to 0.9 s after another entity's row (a minute apart)
    rt = np.arange(12) * 60_000_000
    qt = rt + 17_000_000 + np.linspace(0, 900_000, 12).astype(np.int64)
    ent, unit = np.arange(12) % 3 + 10, np.zeros(12, np.int64)
    shared, lags = A._echo_lags(qt, np.zeros(12, np.int64), np.full(12, -1), unit, rt, ent, np.full(12, -2), wide, grids)
    assert (odds(shared, lags, unit) > A.ECHO_LINE).all()
    fine, fine_lags = A._echo_lags(qt, np.zeros(12, np.int64), np.full(12, -1), unit, rt, ent, np.full(12, -2))
    assert (A._echo_surprise(fine, fine_lags, unit) == 0).all()  # the fine bins see no echo
    # a burst: the same twelve rows 0.1 s apart, all after one colleague's row: one reference row, no echo
    qt = 17_000_000 + np.arange(12) * 100_000
    one = (np.array([0]), np.array([10]), np.array([-2]))
    shared, lags = A._echo_lags(qt, np.zeros(12, np.int64), np.full(12, -1), unit, *one, wide, grids)
    # (a bin of fewer rows than could reach the line keeps its rows' count: two rows a grid puts in one bin)
    assert shared.max() <= 1 and (odds(shared, lags, unit) == 0).all()


def test_the_classifier_codes_the_values_entities_share_not_one_entitys_own() -> None:
    """An actor's own address on its many rows took a code of its own when values were ranked by rows, and the
    classifier learnt "a coded address" (the takeover at stealth 1, three actors: 0.73, 0.45 without it). A value one
    entity alone carries is "other"; values several carry keep their codes, ranked by entities."""
    from breachbench.artefacts import Feature, _design

    rows = [("a1", "own-a1", True)] * 50 + [("a2", "own-a2", True)] * 50  # two actors, each on an address of its own
    rows += [(f"b{i}", "office", False) for i in range(30)] + [(f"b{i}", "vpn", False) for i in range(5)]
    rows += [(f"b{i}", "cafe", False) for i in range(3)] * 20 + [("b0", "home-0", False)]  # 60 rows of three; one's own
    sample = pl.DataFrame(rows, schema=["_entity", "f:src_ip:value", "_attack"], orient="row")
    X, feats, cat = _design(sample, [Feature("f:src_ip:value", "src_ip", "cat")])
    assert [f.name for f in feats] == ["f:src_ip:value.code"] and cat.tolist() == [True]
    code = dict(zip(sample["f:src_ip:value"].to_list(), X[:, 0].tolist(), strict=True))
    assert code["office"] == 0 and code["vpn"] == 1 and code["cafe"] == 2  # by entities (30, 5, 3), not rows
    assert code["own-a1"] == code["own-a2"] == code["home-0"] == 3  # one entity's own: "other"


def test_the_nearest_row_of_another_entity_is_found_either_side() -> None:
    """``_others_near`` against every pair by hand: another entity's nearest row before or after, within the same
    customer where asked, none where there is none (one entity alone), whatever the rows' order."""
    rng = np.random.default_rng(46)

    def frame(n: int, entities: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ts": pl.Series(np.sort(rng.integers(0, 10**10, n))).cast(pl.Datetime("us", "UTC")),
                "_entity": [f"e{x}" for x in rng.integers(0, entities, n)],
                "customer_id": rng.integers(0, 7, n),
            }
        ).sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1000)))

    for nq, nt, entities in ((150, 300, 3), (80, 600, 2), (40, 40, 1)):
        q, t = frame(nq, entities), frame(nt, entities)
        tt, te, tc = t["ts"].dt.epoch("us").to_numpy(), t["_entity"].to_numpy(), t["customer_id"].to_numpy()
        for by in ([], ["customer_id"]):
            got = _others_near(q, _near_ref(t, by), by).to_numpy().astype(float)
            want = []
            for ts, e, c in zip(
                q["ts"].dt.epoch("us").to_numpy(), q["_entity"].to_numpy(), q["customer_id"].to_numpy(), strict=True
            ):
                m = (te != e) & ((tc == c) if by else True)
                want.append(math.log10(np.abs(tt[m] - ts).min() / 1e6 + 1) if m.any() else np.nan)
            np.testing.assert_allclose(got, np.array(want), equal_nan=True)
        assert entities > 1 or np.isnan(got).all()


def test_interleaved_places_need_two_values_whose_time_ranges_overlap() -> None:
    """A unit's values one after the other (A A B B) do not take turns; A B A does; nulls and single rows do not count."""
    df = pl.DataFrame(
        {
            "_u": [1, 1, 1, 1, 2, 2, 2, 3, 3, 4],
            "ts": [1, 2, 3, 4, 1, 2, 3, 1, 2, 1],
            "src_ip": ["a", "a", "b", "b", "a", "b", "a", None, "a", "a"],
        }
    )
    got = _interleaved(df, ["_u"], "src_ip").sort("_u")
    assert got.to_dict(as_series=False) == {"_u": [1, 2, 3, 4], "a:src_ip:interleaved": [0.0, 1.0, 0.0, 0.0]}


def test_one_ticket_for_a_whole_days_opens_is_named(planted: Callable[[str], AuditResult]) -> None:
    """Every ticketed open of the actor's day under one ticket: the ticket's number is an ordinary one and distinct
    tickets per day move with the day's opens, but the rows naming that ticket are many where a benign one has a few."""
    res = planted("one-ticket")
    hits = _named(res, "admin", "ticket_id", features=("ticket_id:uses",), tests=("ks",))
    assert hits and max(f.attack - f.threshold for f in hits) > 0.05, res.problems  # past its line, not at it


def test_customer_ids_tied_to_the_actors_id_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Every customer read congruent to the account's id plus 50 modulo 101: no value unseen, no residue the excess test
    counts (2 to 16) in excess, no aligned bit field holding the id; the difference of the two ids shares a divisor
    of 101 on every attack row, where a random benign actor's share none."""
    res = planted("congruent")
    hits = _named(res, "admin", "customer_id", features=("customer_id:tie:entity",), tests=("tie",))
    assert hits and "(mod 101)" in hits[0].detail and hits[0].attack >= np.log2(101) - 1e-9, res.problems


def test_rows_on_even_minutes_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Every attack row on an even minute: the minute's distribution moves by a sixtieth; every minute shares the
    divisor 2, which thirty distinct minutes share by chance once in half a billion. At the takeover's default stealth:
    off-hours, declared there, does not explain a divisor every minute shares."""
    res = planted("even-minutes")
    hits = _named(res, "admin", "ts", features=("ts.minute:tie",), tests=("tie",))
    assert hits and "(mod 2)" in hits[0].detail, res.problems


def test_a_shared_divisor_needs_as_many_distinct_values_as_chance_asks() -> None:
    """The tie test's figure and its line: a divisor shared by a few values is chance, by many is not; all one value is
    64 bits; an operand with too few rows gives no figure."""
    from breachbench.artefacts import TIE_ALPHA, Feature, _tie_stats

    feats = [Feature("f:customer_id:tie", "customer_id", "tie"), Feature("f:customer_id:tie:entity", "customer_id", "tie")]
    n = 40
    df = pl.DataFrame(
        {"customer_id": [6 * i + 4 for i in range(n)], "_eid": [7] * n}, schema={"customer_id": pl.Int64, "_eid": pl.Int64}
    )
    got = _tie_stats(df, "admin", feats)
    bits, detail, distinct = got["f:customer_id:tie"]
    assert bits == pytest.approx(np.log2(6)) and "= 4 (mod 6)" in detail and distinct == n
    assert got["f:customer_id:tie:entity"][0] == pytest.approx(np.log2(6))  # minus a constant: the same divisor
    const = _tie_stats(df.with_columns(customer_id=pl.lit(9, pl.Int64)), "admin", feats)
    assert const["f:customer_id:tie"][:2] == (64.0, "customer_id = 9 on every attack row")
    assert _tie_stats(df.head(5), "admin", feats) == {}  # fewer than MIN_ROWS rows
    gaps = df.with_columns(customer_id=pl.when(pl.int_range(n) == 3).then(None).otherwise(pl.col("customer_id") - 400))
    bits, detail, distinct = _tie_stats(gaps, "admin", feats)["f:customer_id:tie"]  # a null is no value; below 0 is one
    assert bits == pytest.approx(np.log2(6)) and "= 0 (mod 6)" in detail and distinct == n - 1
    # the chance line: n distinct values share a divisor of g bits with odds 2^(-g (n - 1)); at n = 40, 6 is far beyond
    assert np.log2(6) > np.log2(1 / TIE_ALPHA) / (n - 1)


def test_a_page_after_its_tokens_logout_is_named(planted: Callable[[str], AuditResult]) -> None:
    """A careful token's logout logged before its last page: every page and every auth row a benign one could be, but
    the token's row nearest its logout comes after it, where a benign session's last page comes 5 s before."""
    res = planted("logout")
    hits = _named(res, "gateway", "ts", features=("ts:lifecycle:logout",), tests=("ks",))
    assert hits and max(f.attack for f in hits) > 0.5, res.problems


def test_a_tokens_lifecycle_is_the_delay_of_its_nearest_row_from_each_kind_of_its_auth_rows() -> None:
    """On one row per token and kind: the row nearest the token's first auth row of that kind (the first of equals),
    sign(s) * log10(1 + |s|) for s seconds after it; none on the other rows, on rows without a token, nor for a token
    without an auth row of that kind."""
    from breachbench.artefacts import _lifecycle

    t0 = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
    s = dt.timedelta(seconds=1)
    auth = pl.DataFrame(
        {
            "ts": [t0, t0 + 100 * s, t0 + 200 * s, t0 + 50 * s],
            "token_id": [1, 1, 1, 2],
            "event": ["token_issued", "logout", "token_issued", "logout"],
        }
    )
    pages = [t0 + 1 * s, t0 + 40 * s, t0 + 95 * s, t0 + 60 * s, t0 + 40 * s, t0 + 60 * s, t0 + 10 * s]
    gateway = pl.DataFrame({"ts": pages, "token_id": [1, 1, 1, 2, 2, None, 3]})
    out = _lifecycle({"auth": auth, "gateway": gateway}, {"auth", "gateway"})
    g = out["gateway"]
    assert out["auth"] is auth and g.height == gateway.height
    issued, logout = g["f:ts:lifecycle:token_issued"].to_list(), g["f:ts:lifecycle:logout"].to_list()
    assert issued[0] == pytest.approx(np.log10(2)) and issued[1:] == [None] * 6  # from the token's first issuance
    assert logout[2] == pytest.approx(-np.log10(6)) and logout[0] is None and logout[1] is None
    # token 2: two rows 10 s from its logout, before and after it; the first of them in the rows' order
    assert logout[3] == pytest.approx(np.log10(11)) and logout[4] is None
    assert logout[5] is None and logout[6] is None  # no token; a token without auth rows


def test_actors_picked_among_the_newest_hires_are_named(planted: Callable[[str], AuditResult]) -> None:
    """The mail-out's actors are the newest hires that fit the scenario's rule: every row is one the scenario draws,
    but whose rows they are shows in the employees table, as days since the hire. At the scenario's default knobs,
    where another's device (impersonation) is declared."""
    res = planted("newest")
    hits = _named(res, "admin", "employee_id", features=("employee_id:actor:tenure",), tests=("ks",))
    assert hits and max(f.attack for f in hits) > 0.8, res.problems


def test_actors_picked_by_their_number_within_their_team_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Snooping agents each the lowest employee number of their team that fit: their tenure, team and office are their
    peers', but where their number falls within their team is not (0 for every actor)."""
    res = planted("lowest")
    hits = _named(res, "admin", "employee_id", features=("employee_id:actor:rank:team",))
    assert hits and max(f.attack for f in hits if f.test == "ks") > 0.8, res.problems


def test_the_actors_features_are_who_the_rows_employee_is_and_weigh_one_value_per_employee() -> None:
    """Tenure and days to departure on the row's day (10^4 for one not leaving), the share of employees in the same
    category; none on rows without an employee; the tests compare one value per employee (its first row's), against
    the lines of a permutation test over employees."""
    from scipy.stats import kstwo

    from breachbench.artefacts import KS_ALPHA, Feature, _actor_features, _ks, _perm_lines, _stats, row_features

    employees = pl.DataFrame(
        {
            "employee_id": [1, 2, 3, 4],
            "hire_date": [dt.date(2025, 3, 23), dt.date(2020, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 6, 1)],
            "termination_date": [None, dt.date(2025, 4, 10), None, None],
            "home_office": ["Seoul", "Seoul", "Busan", "Seoul"],
            "name": ["a", "b", "c", "d"],
        }
    )
    day = dt.date(2025, 4, 1)
    rows = pl.DataFrame({"employee_id": [1, 2, None, 9], "customer_id": [None, None, 5, None], "_day": [day] * 4})
    got = _actor_features(rows, "auth", employees)
    assert got["f:employee_id:actor:tenure"].to_list()[:3] == [pytest.approx(1.0), pytest.approx(np.log10(1918)), None]
    assert got["f:employee_id:actor:leaving"].to_list()[:2] == [pytest.approx(np.log10(10_001)), pytest.approx(1.0)]
    assert got["f:employee_id:actor:home_office"].to_list() == [0.75, 0.75, None, None]  # an unknown employee: none
    assert "f:employee_id:actor:name" not in got.columns  # a name is no category
    assert _actor_features(rows, "gateway", employees) is rows  # a customer's rows: no employee is their entity
    feats = {f.name: f for f in row_features(got)}
    assert feats["f:employee_id:actor:leaving"].aggregate == "leaving" and feats["f:employee_id:actor:tenure"].partial
    # three actors' 30 rows against 20 benign employees' 200: a difference of rows, but three values
    r = np.random.default_rng(0)
    att = pl.DataFrame(
        {"_entity": np.repeat(["a1", "a2", "a3"], 10), "f:employee_id:actor:tenure": np.repeat([0.5, 0.6, 0.7], 10)}
    )
    ben = pl.DataFrame(
        {"_entity": np.repeat([f"b{i}" for i in range(20)], 10), "f:employee_id:actor:tenure": np.repeat(r.uniform(1, 3, 20), 10)}
    )
    sizes: dict[str, tuple[int, int]] = {}
    perm: dict[tuple[str, str], float] = {}
    feat = Feature("f:employee_id:actor:tenure", "employee_id", "num", partial=True)
    g = pl.lit("g")
    out = _stats(att.with_columns(_group=g), ben.with_columns(_group=g), [feat], "rows", None, 0, sizes=sizes, perm=perm)
    assert out[(feat.name, "ks")] == 1.0 and out[(feat.name, "single_auc")] == 1.0 and sizes[feat.name] == (3, 20)
    # three actors at one end of twenty peers: once in about 900 draws, so no figure reaches the permutation's lines
    assert perm[(feat.name, "ks")] > 1.0 and perm[(feat.name, "single_auc")] > 1.0
    # a value as it is: the mean of seven equal departures is not always equal to them, and stood out by its last bit
    same = float(np.log10(10_001))
    att = att.with_columns(pl.lit(same).alias(feat.name), _group=g)  # ten rows an actor; one a peer below
    one = pl.DataFrame({"_entity": [f"b{i}" for i in range(20)], feat.name: [same] * 20}).with_columns(_group=g)
    assert _stats(att, one, [feat], "rows", None, 0)[(feat.name, "ks")] == 0.0
    # the lines, by permutation: for three distinct values among 200, near the one-sample KS distribution's of three
    # and three uniform ranks' mean (Irwin-Hall: 0.978); where most values are one, three actors at the other end are
    # no rarity, and no figure reaches the line
    ks_line, auc_line = _perm_lines(r.uniform(0, 1, 3), r.uniform(0, 1, 200), seed=1)
    assert kstwo.isf(KS_ALPHA, 3) - 0.06 < ks_line <= 1.0 and 0.95 < auc_line <= 1.0
    tied = np.r_[np.zeros(180), np.ones(20)]  # three actors among the twenty ones: once in about 800 draws
    assert _ks(np.ones(3), tied) == pytest.approx(0.9) and min(_perm_lines(np.ones(3), tied, seed=1)) > 0.9


def test_tickets_from_a_private_range_are_named(planted: Callable[[str], AuditResult]) -> None:
    res = planted("tickets")
    hits = _named(res, "admin", "ticket_id", features=("ticket_id:bits", "ticket_id:high"))
    assert hits, res.problems
    assert any("admin.ticket_id" in p for p in res.problems)


def test_even_ticket_numbers_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Every value a benign ticket could have, but all even: no value is unseen and the numbers' distribution is the
    benign one; the parity of the numbers gives it away."""
    res = planted("even")
    hits = _named(res, "admin", "ticket_id", features=("ticket_id:odd",))
    assert hits and max(f.attack for f in hits) > 0.3, res.problems
    assert not _named(res, "admin", "ticket_id", features=("ticket_id:bits", "ticket_id:high", "ticket_id:value"))


def test_even_ticket_numbers_are_named_where_opens_without_a_ticket_are_declared(
    planted: Callable[[str], AuditResult],
) -> None:
    """The same plant at the snooping agent's default stealth, which declares no_ticket: the parity's distribution moves
    with the missing numbers (declared), the residue of the numbers the rows carry does not."""
    res = planted("even-default")
    hits = _named(res, "admin", "ticket_id", features=("ticket_id:residue",), tests=("excess",))
    assert hits and "mod 2 = 0" in hits[0].detail, res.problems
    assert not _named(res, "admin", "ticket_id", features=("ticket_id:odd", "ticket_id:null"))


def test_a_null_within_one_action_is_named_where_the_null_share_is_not(planted: Callable[[str], AuditResult]) -> None:
    """Half an analyst's single views name no customer: pulls name none either, so the null share of all the
    attack's sessions stays within what the mix of views and pulls moves; among views, where benign rows always name
    one, it is new. Declared when either column is."""
    from breachbench.artefacts import Feature, _is_declared

    res = planted("nullviews")
    assert not res.passed
    hits = _named(res, "admin", "customer_id", tests=("excess",))
    assert [f for f in hits if f.feature == "customer_id:null|action"], res.problems
    assert not [f for f in hits if f.feature == "customer_id:null"]  # over all rows: no difference
    assert any("customer_id:null = 1 where action = 'view'" in p for p in res.problems)
    given = Feature("f:customer_id:null|action", "customer_id", "raw", given="action")
    assert _is_declared(given, {"action"}, set()) and _is_declared(given, {"customer_id"}, set())
    assert not _is_declared(given, {"channel"}, set())


def test_a_flag_is_judged_within_values_that_enough_benign_sessions_carry() -> None:
    """Within each value of the stratum, sessions (not rows) with each flag 0 and 1; a value fewer than
    GIVEN_MIN_SESSIONS benign sessions carry is not judged, however many rows they hold and however many of them
    carry a flag both ways."""
    from breachbench.artefacts import GIVEN_MIN_SESSIONS, Feature, _given_excess

    def frame(sessions: dict[str, list[tuple[str, float, float]]]) -> pl.DataFrame:
        rows = [(s, *r) for s, rs in sessions.items() for r in rs]
        return pl.DataFrame(rows, schema=["_sess", "f:action:value", "f:ts:night", "f:customer_id:null"], orient="row")

    n = GIVEN_MIN_SESSIONS
    # benign: n sessions of one view, none null; n // 2 sessions of a rare action, 50 rows each, by day and at night
    rare = [("rare", 0.0, 0.0), ("rare", 1.0, 0.0)] * 25
    ref = frame({f"b{i}": [("view", 0.0, 0.0)] for i in range(n)} | {f"r{i}": rare for i in range(n // 2)})
    att = frame({f"a{i}": [("view", 0.0, 1.0), ("view", 0.0, 0.0), ("rare", 0.0, 1.0)] for i in range(10)})
    flags = [
        Feature(f"{b}|action", c, "raw", given="action") for b, c in (("f:ts:night", "ts"), ("f:customer_id:null", "customer_id"))
    ]

    def null_flag(ref: pl.DataFrame) -> tuple[float, str]:
        return _given_excess(att, ref, "f:action:value", flags, lambda ka, kb, k, what: "")[flags[1].name]

    z, detail = null_flag(ref)
    assert detail.startswith("customer_id:null = 1 where action = 'view'") and z > 4  # half the sessions, none of n
    ref = ref.vstack(frame({f"r{i}": rare for i in range(n // 2, n)}))  # now n benign sessions carry the rare action
    z2, detail2 = null_flag(ref)
    assert detail2.startswith("customer_id:null = 1 where action = 'rare'") and z2 > z  # every attack session, not half


def test_digit_features_are_tested_one_by_one_and_not_given_to_the_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parity and trailing zeros (and a session's rhythm, the delay after a login) stay out of the classifier (two noise
    features per integer moved its AUCs on a few rows), and they and the excess, deficit and tie tests stay out of the
    draws' seeds: the other findings and the AUCs are those of an audit without them."""
    import breachbench.artefacts as art

    target, knobs = PLANTS["even"]
    sets = [f"knobs.{k}={v}" for k, v in knobs.items()]
    seen: list[str] = []
    design, columns = art._design, art._column_features

    def spy(sample: pl.DataFrame, feats: list[Any]) -> Any:
        seen.extend(f.name for f in feats)
        return design(sample, feats)

    monkeypatch.setattr(art, "_design", spy)
    (res,) = audit_scenarios([target], seeds=SEED, overrides=sets, world=CHECK_AUDIT_WORLD, verdict_only=True)
    assert seen and not [n for n in seen if art._alone(n)]
    assert [f for f in res.findings if art._alone(f.feature) and f.undeclared]  # tested one by one all the same
    assert [f for f in res.findings if f.test == "excess"]
    # an audit without them and without the excess tests (as before either was added): the same classifier figures
    # and other findings
    monkeypatch.setattr(
        art, "_column_features", lambda c, t, tz: [e for e in columns(c, t, tz) if not art._alone(e.meta.output_name())]
    )
    rows = art.row_features  # the rhythm and the delay after a login, which other steps add
    monkeypatch.setattr(art, "row_features", lambda df: [f for f in rows(df) if not art._alone(f.name)])
    monkeypatch.setattr(art, "_excess_stats", lambda *a: {})
    monkeypatch.setattr(art, "_tie_features", lambda df, stream: [])
    (ref,) = audit_scenarios([target], seeds=SEED, overrides=sets, world=CHECK_AUDIT_WORLD, verdict_only=True)
    later = ("excess", "deficit", "tie")
    assert not [f for f in ref.findings if art._alone(f.feature) or f.test in later]
    assert {f.test for f in res.findings} >= set(later)
    assert [(c.stream, c.phase, c.level, c.auc_undeclared) for c in ref.classifiers] == [
        (c.stream, c.phase, c.level, c.auc_undeclared) for c in res.classifiers
    ]
    assert [f for f in res.findings if not art._alone(f.feature) and f.test not in later] == list(ref.findings)


def test_integer_columns_show_their_parity_and_trailing_zeros() -> None:
    from breachbench.artefacts import _column_features

    df = pl.DataFrame({"x": [0, 1, 10, 200, -30, None, 7, 1000], "_eid": [1] * 8}, schema={"x": pl.Int64, "_eid": pl.Int64})
    for c in ("x", "x_id"):
        out = df.rename({"x": c}).with_columns(_column_features(c, pl.Int64, "UTC"))
        assert out[f"f:{c}:odd"].to_list() == [0.0, 1.0, 0.0, 0.0, 0.0, None, 1.0, 0.0]
        assert out[f"f:{c}:zeros"].to_list() == [0.0, 0.0, 1.0, 2.0, 1.0, None, 0.0, 3.0]


def test_times_cut_to_the_millisecond_are_named(planted: Callable[[str], AuditResult]) -> None:
    """Every time a benign row could have, on a whole millisecond: the hours, gaps and sub-second spread are the benign
    ones; the residues of the microseconds give it away."""
    res = planted("ms")
    hits = _named(res, "admin", "ts", tests=("excess",))
    assert hits and re.match(r"ts mod (2|4|5|8|10) = 0 on 100\.0% of attack values", hits[0].detail), res.problems
    assert any("admin.ts" in p and "in excess" in p for p in res.problems)


def test_the_excess_test_names_the_category_in_excess() -> None:
    """One category moved by a generator, in a column whose other figures barely move: a residue of ids, a byte of
    token ids, the microseconds of times, a rare status, a null benign rows never have. A sample of the reference's own
    generator stays below the line."""
    from breachbench.artefacts import EXCESS_MIN, Feature, _excess_stats, _raw_features

    r = np.random.default_rng(3)

    def frame(n: int, planted: bool) -> pl.DataFrame:
        tickets, tokens = r.integers(0, 1 << 20, n), r.integers(1 << 40, 1 << 50, n)
        ts = r.integers(1_743_465_600_000_000, 1_745_000_000_000_000, n)
        status, null = np.where(r.random(n) < 0.004, "429", "200"), np.zeros(n)
        if planted:
            tickets = tickets - tickets % 3
            tokens = np.where(r.random(n) < 0.9, (tokens & ~(0xFF << 24)) | (0x5A << 24), tokens)
            ts = ts - ts % 1000
            status = np.where(r.random(n) < 0.08, "429", status)
            null = (r.random(n) < 0.15).astype(np.float64)
        return pl.DataFrame(
            {"ticket_id": tickets, "token_id": tokens, "ts": ts, "f:status:value": status, "f:customer_id:null": null}
        ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")), _entity=pl.int_range(n).cast(pl.String))  # a session a row

    ref = frame(20_000, False)
    feats = [Feature("f:status:value", "status", "cat"), Feature("f:customer_id:null", "customer_id", "num")]
    raws = _raw_features(ref)
    assert [f.name for f in raws] == [f"f:{c}:{k}" for c in ("ticket_id", "token_id") for k in ("residue", "bit")] + [
        "f:ts:residue"
    ]
    benign = _excess_stats(frame(400, False), ref, feats, raws)
    assert set(benign) == {f.name for f in [*feats, *raws]}
    assert max(z for z, _ in benign.values()) < EXCESS_MIN, benign
    att = _excess_stats(frame(400, True), ref, feats, raws)
    expect = {
        "f:ticket_id:residue": r"ticket_id mod 3 = 0 on 100\.0% of attack values",
        "f:token_id:bit": r"token_id bit (2[4-9]|3[01]) = [01] on 9\d\.\d% of attack values",
        "f:ts:residue": r"ts mod (2|4|5|8|10) = 0 on 100\.0% of attack values",
        "f:status:value": r"status:value = '429' on \d\.\d% of attack sessions, 0\.\d% of benign",
        "f:customer_id:null": r"customer_id:null = 1 on 1\d\.\d% of attack sessions, 0\.0% of benign",
    }
    for name, text in expect.items():
        z, detail = att[name]
        assert z >= EXCESS_MIN and re.match(text, detail), (name, z, detail)
    assert att["f:token_id:residue"][0] < EXCESS_MIN  # its low bits are the benign ones


def test_fresh_ip_per_row_is_named(fresh_ip_cli: dict[str, Any]) -> None:
    """Read from the JSON of the CLI audit below (the same scenario, world and seed as ``planted`` would audit)."""
    (doc,) = fresh_ip_cli["doc"]["scenarios"]  # AuditResult.to_dict()
    findings = [Finding(**f) for f in doc["findings"]]  # every finding that differs, so every undeclared one
    res = AuditResult(doc["scenario"], doc["knobs"], tuple(doc["seeds"]), {}, tuple(findings), ())
    sticky = _named(res, "admin", "src_ip", tests=("sticky",))
    assert sticky and sticky[0].unit == "entity-days" and sticky[0].attack >= 0.5, doc["problems"]
    assert any("admin.src_ip" in p and "distinct" in p for p in doc["problems"])


def test_rows_outside_employment_are_an_orphan_group(tmp_path: Path) -> None:
    """Attack rows on an account whose holder is gone fall in a group no benign row has (role ``none``), which the
    audit names however few they are; the other tests compare rows within a group and never saw them."""
    from breachbench.artefacts import _orphans
    from breachbench.dataset import Dataset
    from simulator.config import SimConfig
    from simulator.engine import generate
    from simulator.scenarios.checks import CHECK_WORLD

    sys.path.insert(0, str(TESTS))
    cfg = SimConfig.model_validate(CHECK_WORLD | {"scenarios": [{"id": "bad_scenarios:ActsAfterLeaving"}]})
    rows = load_rows([Dataset.open(generate(cfg, tmp_path / "gone", workers=1))])["admin"]
    att, ben = rows.filter(pl.col("_attack")), rows.filter(~pl.col("_attack"))
    assert att["_group"].str.contains(":none/").all() and not ben["_group"].str.contains(":none/").any()
    (f,) = _orphans(att, ben, "admin", "snooping")
    assert f.undeclared and f.test == "orphan" and f.attack == 1.0
    assert "no benign row has" in f.describe()
    # and nothing when every attack row shares a group with benign rows
    assert _orphans(ben.head(20), ben, "admin", "snooping") == []


def test_reads_before_signup_fail_generation_naming_the_column(tmp_path: Path) -> None:
    """The engine, not the audit, guarantees that nobody reads a customer before signup."""
    from simulator.engine import generate
    from simulator.errors import ScenarioError

    sys.path.insert(0, str(TESTS))
    cfg = audit_config("bad_scenarios:ReadsBeforeSignup", {"stealth": 1.0}, SEED[0], world=CHECK_AUDIT_WORLD)
    with pytest.raises(ScenarioError, match=r"admin rows read customers \(customer_id"):
        generate(cfg, tmp_path / "unborn")
    assert not (tmp_path / "unborn").exists()


def test_wrong_column_name_fails_generation_naming_the_column(tmp_path: Path) -> None:
    from simulator.engine import generate
    from simulator.errors import ScenarioError

    sys.path.insert(0, str(TESTS))
    cfg = audit_config("bad_scenarios:WrongColumn", {}, SEED[0], world=CHECK_AUDIT_WORLD)
    with pytest.raises(ScenarioError, match=r"admin rows have unknown columns \['src_ip'\]"):
        generate(cfg, tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists()


def test_random_benign_actors_pass(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Negative control: rows of six benign support agents (a share of their rows on a week of days) relabelled as an attack.

    Six, not three: with three actors the grouped folds hold one actor each, and one agent's
    remote days alone move the classifier's AUC by about 0.05 around chance.
    """
    from breachbench.dataset import Dataset
    from simulator.engine import generate

    cfg = audit_config("snooping-agent-v2", {}, 11, world=CHECK_AUDIT_WORLD)
    cfg = cfg.model_copy(update={"scenarios": []})
    ds = Dataset.open(generate(cfg, tmp_path_factory.mktemp("benign") / "ds"))
    rows = load_rows([ds], streams=["admin"])
    adm = rows["admin"]
    days = sorted(adm["_day"].unique().to_list())[6:13]
    busy = (
        adm.filter(pl.col("_group").str.starts_with("admin:support_agent/day") & pl.col("_day").is_in(days))
        .group_by("_entity")
        .len()
        .sort("len", "_entity", descending=[True, False])
    )
    assert busy.height >= 14
    who = busy["_entity"].gather([1, 3, 5, 7, 9, 11]).implode()  # six agents who work that week, not the busiest
    adm = adm.sort(
        [c for c in ("_entity", "ts", "event_id", "customer_id") if c in adm.columns], nulls_last=True
    )  # a fixed order to draw from
    u = pl.Series(np.random.default_rng(3).random(adm.height))
    pick = pl.col("_entity").is_in(who) & pl.col("_day").is_in(days) & (u < 0.15)
    rows["admin"] = adm.with_columns(_attack=pick, _phase=pl.when(pick).then(pl.lit("p")))
    res = audit_rows(rows, {"p": ()}, scenario="benign-stand-ins")
    assert res.attack_rows["admin"] > 40
    assert res.passed, res.problems
    # without the classifier (as the plants are audited): the same findings, and no verdict
    alone = audit_rows(rows, {"p": ()}, scenario="benign-stand-ins", classifier=False)
    assert alone.findings == res.findings and not alone.classifiers and res.classifiers
    assert not alone.passed and alone.problems == [
        "benign-stand-ins defaults: the adversarial classifier did not run (classifier=False): no verdict"
    ]
    (row_level,) = [c for c in res.classifiers if c.level == "rows"]
    assert (
        row_level.verdict and row_level.entities == 6 and row_level.auc_undeclared is not None and row_level.auc_undeclared <= 0.6
    )


def test_whom_an_employee_reads_is_judged_once_per_reader_and_customer() -> None:
    """The customers' profiles over an employee's reads: one value per reader and customer, as the same few people
    read again and again are a sample of those few (a snooping agent's 25 crossed lines on rows, KS 0.24 against
    0.20-0.24); a customer's own rows (gateway: the entity is the customer) stay rows."""
    from breachbench.artefacts import Feature, _ks, _stats

    r = np.random.default_rng(0)
    prof = r.random(100_000)

    def rows(readers: list[str], reads: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame(
            {"_entity": readers, "customer_id": reads, "_group": "agent", "_day": 1, "f:customer_id:profile:x": prof[reads]}
        )

    targets = [r.choice(100_000, 25, replace=False) for _ in range(3)]
    times = [r.integers(1, 16, 25) for _ in range(3)]  # each target read 1 to 15 times
    att = rows(
        [f"a/{i}" for i in range(3) for n in times[i] for _ in range(n)],
        np.concatenate([np.repeat(t, n) for t, n in zip(targets, times, strict=True)]),
    )
    # each customer read once, fewer rows than the matched sample takes (three per attack row): all of them
    ben = rows([f"b/{i // 100}" for i in range(att.height)], r.choice(100_000, att.height, replace=False))
    feat = Feature("f:customer_id:profile:x", "customer_id", "num", partial=True)
    theirs = ben["f:customer_id:profile:x"].to_numpy()
    for stream, mine in (("admin", prof[np.concatenate(targets)]), ("gateway", att["f:customer_id:profile:x"].to_numpy())):
        sizes: dict[str, tuple[int, int]] = {}
        got = _stats(att, ben, [feat], "rows", None, 1, sizes=sizes, stream=stream)[(feat.name, "ks")]
        assert sizes[feat.name] == (len(mine), ben.height), (stream, sizes)
        assert got == _ks(mine, theirs), stream


def test_declared_signals_cover_their_columns() -> None:
    """A difference in a declared column is reported as declared, not as a problem (the planted agent, declared)."""
    from breachbench.artefacts import Feature, _declared_sets, _is_declared

    cols, aggs = _declared_sets(["uniform_client"], "gateway")
    assert _is_declared(Feature("f:user_agent:value", "user_agent", "cat"), cols, aggs)
    # which of the customers' clients, not a value none of them sends; a new address is one no benign row has
    assert not _declared_sets(["uniform_client", "page_mix"], "gateway", unseen=True)[0]
    assert _declared_sets(["new_origin", "uniform_client"], "gateway", unseen=True)[0] == {"src_ip", "asn"}
    assert _is_declared(Feature("a:user_agent:distinct", "user_agent", "num", "agents"), cols, aggs)
    assert not _is_declared(Feature("f:src_ip:value", "src_ip", "cat"), cols, aggs)
    cols, aggs = _declared_sets(["no_ticket"], "gateway")  # admin.ticket_id: another stream's column
    assert not any(c.startswith("ticket_id") for c in cols) and "tickets" in aggs
    cols, aggs = _declared_sets(["no_ticket"], "admin")  # what a missing number moves, not the numbers' residues
    for name in ("f:ticket_id:odd", "f:ticket_id:null|action", "a:ticket_id:bits:pick", "a:ticket_id:distinct_share"):
        assert _is_declared(Feature(name, "ticket_id", "num"), cols, aggs), name
    for name in ("f:ticket_id:residue", "f:ticket_id:tie"):
        assert not _is_declared(Feature(name, "ticket_id", "raw"), cols, aggs), name
    cols, aggs = _declared_sets(["bulk_pull"], "admin")  # what a pull's missing customer moves, not whom reads name
    for name in ("f:customer_id:null", "f:customer_id:tier.code", "a:customer_id:odd:pick", "f:row_count:num"):
        assert _is_declared(Feature(name, name.split(":")[1], "num"), cols, aggs), name
    for name in ("f:customer_id:profile:home_region", "f:customer_id:up", "f:customer_id:uses", "f:customer_id:residue"):
        assert not _is_declared(Feature(name, "customer_id", "num"), cols, aggs), name
    cols, aggs = _declared_sets(["repeat_targets"], "admin")  # how often the few ids come back, not whom they name
    for name in ("f:customer_id:uses", "a:customer_id:distinct", "a:customer_id:distinct_share", "a:customer_id:new"):
        assert _is_declared(Feature(name, "customer_id", "num"), cols, aggs), name
    assert "repeat" in aggs and "customers" in aggs
    cols, aggs = _declared_sets(["impersonation"], "admin")  # whose account and device, not who the actor is
    for name, col in (("a:employee_id:distinct", "employee_id"), ("f:device:value", "device"), ("f:src_ip:value", "src_ip")):
        assert _is_declared(Feature(name, col, "num"), cols, aggs), name
    for name in ("f:employee_id:actor:tenure", "f:employee_id:residue", "f:employee_id:tie"):
        assert not _is_declared(Feature(name, "employee_id", "num"), cols, aggs), name
    for name in ("f:customer_id:profile:email.domain", "f:customer_id:odd", "f:customer_id:up", "f:customer_id:tie"):
        assert not _is_declared(Feature(name, "customer_id", "num"), cols, aggs), name


def test_off_hours_names_when_rows_come_not_a_scripts_delay_rhythm_daily_clock_or_shared_divisor() -> None:
    """Off-hours work moves when rows come (the hour, the weekday, the night; the gap since the entity's last row, a
    session's pace, how near other people's rows are), not a delay repeated to the microsecond, a session's even rhythm,
    a daily clock or a divisor every row's clock fields share: declared, it covered the whole ``ts`` column, and a
    takeover at its default stealth passed with a fixed delay or even minutes planted (the two plants above)."""
    from breachbench.artefacts import Feature, _declared_sets, _is_declared

    cols, aggs = _declared_sets(["off_hours"], "admin")
    declared = [
        "f:ts:hour", "a:ts:hour:pick", "f:ts:weekday", "f:ts:night|channel", "f:ts:near:gateway", "f:ts:gap", "f:ts:pace",
        "f:ts:echo:wide", "f:ts:second",
    ]  # fmt: skip
    for name in declared:
        assert _is_declared(Feature(name, "ts", "num"), cols, aggs), name
    assert _is_declared(Feature("a:ts:night:mean", "ts", "num", "night"), cols, aggs)
    assert _is_declared(Feature("f:customer_id:near:admin", "customer_id", "num"), cols, aggs)
    assert _is_declared(Feature("f:src_ip:value", "src_ip", "cat"), cols, aggs)
    assert not _is_declared(Feature("f:customer_id:profile:orders.rows", "customer_id", "num"), cols, aggs)
    undeclared = ["f:ts:again", "f:ts:again|channel", "f:ts:daily", "f:ts:rhythm", "f:ts.minute:tie", "f:ts:hours"]
    for name in undeclared:
        assert not _is_declared(Feature(name, "ts", "num", given="channel" if "|" in name else ""), cols, aggs), name
    assert not _is_declared(Feature("f:entity:tie:ts.minute", "", "tie", given="ts"), cols, aggs)
    assert _is_declared(Feature("f:ts:daily", "ts", "num"), {"ts"}, set())  # a signal that names the column: all of it


def test_overrides_split_into_knobs_and_config() -> None:
    config, knobs = split_overrides(["knobs.stealth=1", "world.customers=50000"])
    assert knobs == {"stealth": 1} and config == ["world.customers=50000"]
    with pytest.raises(AuditError, match="knobs.<name>"):
        split_overrides(["knobs.=1"])
    with pytest.raises(AuditError, match="knobs.nope: no selected scenario has that knob"):
        audit_scenarios(["snooping-agent-v2"], seeds=(1,), overrides=["knobs.nope=1"])
    for bad in (0, True, 1.5):  # incidents a dataset: a positive integer, before anything is generated
        with pytest.raises(AuditError, match="count: expected a positive integer"):
            audit_scenarios(["snooping-agent-v2"], seeds=(1,), count=bad)  # type: ignore[arg-type]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "breachbench", "scenarios", "audit", *args], capture_output=True, text=True, check=False, env=env
    )


def test_cli_bad_input_is_one_line_and_exit_2() -> None:
    for args, needle in (
        (("--seeds", "one"), "--seeds"),
        (("snooping-agent-v2", "--set", "knobs.stealth=7"), "stealth"),
        (("snooping-agent-v2", "--set", "world.customers=-5"), "world.customers"),
        (("no-such-v1",), "no-such-v1"),
    ):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


@pytest.fixture(scope="session")
def fresh_ip_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`breachbench scenarios audit` of the fresh-IP plant on ``CHECK_AUDIT_WORLD`` (as ``--set``s), seed 5, with ``--json``.

    Shared by the CLI test and test_fresh_ip_per_row_is_named: one generation and audit, not two.
    """
    import json

    def make(folder: Path) -> dict[str, Any]:
        out = folder / "audit.json"
        proc = _cli(
            "bad_scenarios:FreshIpPerRow",
            "--seeds",
            "5",
            "--set",
            "world.customers=6000",
            "--set",
            "world.employees=600",
            "--set",
            "world.block_size=6000",
            "--set",
            "world.orphaned_keys=3",
            "--set",
            "time.end=2025-04-19",
            "--json",
            str(out),
        )
        doc = json.loads(out.read_text()) if out.is_file() else None
        return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "doc": doc}

    res = shared(tmp_path_factory, "fresh-ip-cli", make)
    assert res["doc"] is not None, res["stdout"] + res["stderr"]
    return res


def test_the_cli_audit_world_is_the_check_world() -> None:
    """The --sets of ``fresh_ip_cli`` turn the CLI's audit world into ``CHECK_AUDIT_WORLD``, the world ``planted`` uses."""
    from breachbench.artefacts import AUDIT_WORLD

    sets = [
        "world.customers=6000",
        "world.employees=600",
        "world.block_size=6000",
        "world.orphaned_keys=3",
        "time.end=2025-04-19",
    ]
    assert audit_config("snooping-agent-v2", {}, 5, sets) == audit_config("snooping-agent-v2", {}, 5, world=CHECK_AUDIT_WORLD)
    assert AUDIT_WORLD != CHECK_AUDIT_WORLD


def test_cli_names_the_planted_column_and_exits_1(fresh_ip_cli: dict[str, Any]) -> None:
    proc = fresh_ip_cli
    assert proc["returncode"] == 1, proc["stdout"] + proc["stderr"]
    assert "admin.src_ip" in proc["stdout"] and "UNDECLARED" in proc["stdout"] and "artefacts" in proc["stdout"]
    assert "generate bad_scenarios:FreshIpPerRow" in proc["stderr"]  # progress on stderr, also when piped
    doc = proc["doc"]
    assert doc["passed"] is False and any("admin.src_ip" in p for p in doc["problems"])


def test_run_writes_the_artefact_audit_into_results(tmp_path: Path, tiny_config) -> None:
    """`suite.artefact_audit = true`: results.json carries the audit of the run's datasets, valid against the schema."""
    import json

    import jsonschema

    from breachbench.config import load_config
    from breachbench.suite import run_suite

    root = Path(__file__).resolve().parent.parent
    cfg = load_config(
        root / "configs" / "tiny.toml",
        [
            "suite.artefact_audit=true",
            'detection.detectors=["null"]',
            "world.customers=1500",
            'scenarios=[{id = "snooping-agent-v2", knobs = {start_offset = 1}}]',
        ],
    )
    res = run_suite(cfg, tmp_path / "run", workers=1, log=lambda *a, **k: None)
    payload = json.loads(Path(res["results"]).read_text())
    audit = payload["artefact_audit"]
    assert [s["scenario"] for s in audit["scenarios"]] == ["snooping-agent-v2"]
    assert isinstance(audit["passed"], bool)
    schema = json.loads((root / "breachbench" / "data" / "results.schema.json").read_text())
    jsonschema.validate(payload, schema)


def _login_rows(rows: list[tuple[Any, ...]]) -> dict[str, pl.DataFrame]:
    """A synthetic auth stream of employee logins (event id, UTC time, employee, address, attack?) of one group, featurised."""
    from breachbench.artefacts import _row_features

    df = pl.DataFrame(rows, schema=["event_id", "ts", "employee_id", "ip", "_attack"], orient="row")
    df = df.with_columns(
        ts=pl.col("ts").dt.replace_time_zone("UTC"),
        event=pl.lit("employee_login"),
        _ds=pl.lit(0, pl.Int32),
        _entity=pl.concat_str([pl.lit("0/employee_id:"), pl.col("employee_id").cast(pl.String)]),
        _eid=pl.col("employee_id").cast(pl.Int64),
        _day=pl.col("ts").dt.date(),
        _phase=pl.when(pl.col("_attack")).then(pl.lit("p")),
        _pattern=pl.lit(None, pl.String),
        _group=pl.lit("employee_login:clerk/day"),
    )
    return {"auth": _row_features(df, "auth", "UTC", pl.DataFrame())}


def _logins(leak: bool) -> dict[str, pl.DataFrame]:
    """A synthetic auth stream: 60 employees log in once a working day; 6 of them are attacked on 4 days each,
    two more logins on those days drawn like their own (or, with ``leak``, at a fixed sub-second)."""
    import datetime as dt

    r = np.random.default_rng(0)
    rows = []
    for e in range(60):
        for d in range(10):
            attacked = e < 6 and d >= 6
            for k in range(3 if attacked else 1):
                sub = 0 if (leak and k) else int(r.integers(0, 1_000_000))
                ts = dt.datetime(2025, 4, 1 + d, 0, 0, tzinfo=dt.UTC) + dt.timedelta(
                    seconds=int(r.integers(0, 4 * 3600)), microseconds=sub
                )
                rows.append((len(rows), ts, e, 7, attacked and k > 0))  # one office address
    return _login_rows(rows)


def test_day_means_count_as_volume_and_a_picked_row_does_not() -> None:
    """Extra logins drawn like the actor's own: only volume differs; a day's mean sub-second of three logins sits
    near the middle, of one anywhere, so the mean moves with the rows (declared with volume) and the unit's
    picked row does not. A per-row artefact in the extra logins is still named."""
    from breachbench.artefacts import entity_days

    rows = _logins(False)["auth"]
    ed, feats = entity_days(rows, "auth")
    by = {f.name: f for f in feats}
    assert "a:ts:subsecond:mean" not in by and not by["a:ts:subsecond:pick"].volume and by["a:ts:subsecond:pick"].column == "ts"
    assert by["a:ts:night:mean"].volume and by["a:ts:night:mean"].aggregate == "night"  # a named aggregate keeps its mean
    seen = rows.group_by("_entity", "_day").agg(pl.col("f:ts:subsecond"))
    both = ed.join(seen, on=["_entity", "_day"])
    assert all(p in vals for p, vals in both.select("a:ts:subsecond:pick", "f:ts:subsecond").iter_rows())  # one of its rows
    res = audit_rows(_logins(False), {"p": ("volume",)}, scenario="extra-logins")
    assert res.passed, res.problems
    (days,) = [c for c in res.classifiers if c.level == "entity-days"]
    assert days.verdict and days.draws > 1 and days.auc_undeclared is not None and days.auc_undeclared <= 0.6
    leaky = audit_rows(_logins(True), {"p": ("volume",)}, scenario="extra-logins-leak")
    assert any("auth.ts" in p for p in leaky.problems), leaky.problems
    # verdict only (what `scenarios check` and the catalogue test run): the same verdict, findings and AUC
    # without the declared signals; the classifier with every feature is skipped
    quick = audit_rows(_logins(True), {"p": ("volume",)}, scenario="extra-logins-leak", verdict_only=True)
    assert quick.problems == [re.sub(r" \(with them [0-9.]+\)", "", p) for p in leaky.problems] and not quick.passed
    assert quick.findings == leaky.findings
    assert [c.auc_undeclared for c in quick.classifiers] == [c.auc_undeclared for c in leaky.classifiers]
    assert all(c.auc_all is None for c in quick.classifiers) and all(c.auc_all is not None for c in leaky.classifiers)


def _two_shifts(attack_hour: float | None) -> dict[str, pl.DataFrame]:
    """A synthetic auth stream: 60 employees log in once a working day, half of them at 8h, half at 10h (within 20
    minutes); three of the 10h starters get a second login on four days, at their own hour or at ``attack_hour``."""
    import datetime as dt

    r = np.random.default_rng(0)
    rows = []
    for e in range(60):
        for d in range(10):
            attacked = e in (0, 2, 4) and d >= 6
            for k in range(2 if attacked else 1):
                h = attack_hour if attacked and k and attack_hour is not None else 8.0 if e % 2 else 10.0
                ts = dt.datetime(2025, 4, 1 + d, tzinfo=dt.UTC) + dt.timedelta(
                    seconds=int(h * 3600 + r.integers(0, 1200)), microseconds=int(r.integers(0, 1_000_000))
                )
                rows.append((len(rows), ts, e, 7, attacked and k > 0))
    return _login_rows(rows)


def test_few_rows_are_judged_at_the_critical_values_of_the_rows_compared() -> None:
    """Twelve attack logins drawn as their actors' own are compared with a matched benign sample three times as large
    (36 rows), not with all 600 benign logins: each feature's KS and one-feature AUC lines are at least the critical
    values at 1e-4 of 12 against 36 (0.74 and 0.88), where those of 12 against 600 (0.65 and 0.83) let chance through."""
    from scipy.special import ndtri

    from breachbench.artefacts import KS_ALPHA

    rows = _two_shifts(None)
    n = rows["auth"]["_attack"].sum()
    res = audit_rows(rows, {"p": ("volume",)}, scenario="own-hours", classifier=False)
    ks_line = math.sqrt(-math.log(KS_ALPHA / 2) / 2) * math.sqrt((n + 3 * n) / (3 * n * n))
    auc_line = 0.5 + float(ndtri(1 - KS_ALPHA / 2)) * math.sqrt((4 * n + 1) / (12 * 3 * n * n))
    full = [f for f in res.findings if f.unit == "rows" and f.test in ("ks", "single_auc") and f.n_attack == n]
    partial = {"ts:rhythm", "ts:after_auth", "ts:no_auth"}
    judged = [f for f in full if f.feature not in partial and ":actor:" not in f.feature]
    assert n == 12 and len(judged) > 10
    assert all(f.threshold >= (ks_line if f.test == "ks" else auc_line) - 1e-9 for f in judged), [
        (f.feature, f.test, round(f.threshold, 3)) for f in judged if f.threshold < (ks_line if f.test == "ks" else auc_line)
    ]
    assert round(ks_line, 2) == 0.74 and round(auc_line, 2) == 0.88


def test_the_classifier_is_judged_against_its_null_draws() -> None:
    """Above 0.6 without the declared features, the classifier is run on the null draws too, and its line is their
    highest AUC + 0.1: with three actors whose hours are their own, the folds (one actor each) still let it learn
    the hours two of them share, and random benign actors standing in do as well. Below 0.6 no null is drawn."""
    from breachbench.artefacts import CHANCE_AUC, NULL_MARGIN

    own = audit_rows(_two_shifts(None), {"p": ("volume",)}, scenario="own-hours", verdict_only=True)
    days = next(c for c in own.classifiers if c.level == "entity-days")
    assert days.verdict and days.entities == 3 and days.auc_undeclared is not None and days.auc_undeclared > CHANCE_AUC
    assert days.null is not None and days.line == max(CHANCE_AUC, days.null + NULL_MARGIN) and days.near_chance
    assert not any("classifier on entity-days" in p for p in own.problems), own.problems
    # the same actors logging in at 3h: the rows' classifier is above its null draws' line, and the problem says so
    night = audit_rows(_two_shifts(3.0), {"p": ("volume",)}, scenario="night", verdict_only=True)
    rows = next(c for c in night.classifiers if c.level == "rows")
    assert rows.null is not None and rows.auc_undeclared is not None and rows.auc_undeclared > rows.line > CHANCE_AUC
    assert any(f"classifier on rows -> AUC {rows.auc_undeclared:.2f} > {rows.line:.2f}" in p for p in night.problems)
    # near chance: no null draws
    quiet = audit_rows(_logins(False), {"p": ("volume",)}, scenario="extra-logins", verdict_only=True)
    assert all(c.null is None and c.line == CHANCE_AUC for c in quiet.classifiers if c.auc_undeclared is not None)


def test_reads_per_customer_and_sequence_skip_pulls() -> None:
    """A pull names no customer: it is neither one more distinct customer (``repeat``) nor a break in a sequence."""
    from breachbench.artefacts import _groups

    df = pl.DataFrame(
        {
            "event_id": [1, 2, 3, 4, 5, 6],
            "ts": [1, 2, 3, 4, 5, 6],
            "customer_id": [10, None, 11, 11, None, None],
            "_ds": [0] * 6,
            "_entity": ["a", "a", "a", "a", "b", "b"],
            "_day": [0] * 6,
            "_attack": [False] * 6,
            "_phase": pl.Series([None] * 6, dtype=pl.String),
            "_group": ["g"] * 6,
            "_pattern": pl.Series([None] * 6, dtype=pl.String),
        }
    )
    units, _ = _groups(df, ["_ds", "_entity", "_day"], "admin")
    got = {
        e: (rep, seq) for e, rep, seq in units.select("_entity", "a:customer_id:repeat", "a:customer_id:sequential").iter_rows()
    }
    assert got["a"] == (1.5, 0.5)  # 10, 11, 11: three reads of two customers; 10 -> 11 follows, 11 -> 11 does not
    assert got["b"][0] is None  # no customer read: no figure


def test_null_draws_repeat() -> None:
    """The audit's random stand-ins are the same on every call: its figures do not depend on hashing or join order.

    Each attack actor has as many rows in two groups (a tie for its commonest group); twenty calls
    with one seed must draw the same rows.
    """
    from breachbench.artefacts import _pseudo

    rows = [(f"a{e}", g, k % 2, True, 100 * e + (g == "g2") * 10 + k) for e in range(6) for g in ("g1", "g2") for k in range(3)]
    rows += [(f"b{e:02d}", "g1" if e % 2 else "g2", k % 2, False, 10_000 + 100 * e + k) for e in range(40) for k in range(8)]
    df = pl.DataFrame(rows, schema=["_entity", "_group", "_day", "_attack", "event_id"], orient="row")
    att, ben = df.filter(pl.col("_attack")), df.filter(~pl.col("_attack"))
    first = _pseudo(att, ben, 3)
    assert first.height > 0
    for _ in range(19):
        assert_frame_equal(_pseudo(att, ben, 3), first)
    # units without days (the bench sorts the units it passes)
    a2, b2 = (x.group_by("_entity", "_group").len().sort("_entity", "_group") for x in (att, ben))
    whole = _pseudo(a2, b2, 3)
    assert whole.height > 0
    for _ in range(19):
        assert_frame_equal(_pseudo(a2, b2, 3), whole)


def test_a_units_group_and_phase_break_ties_by_name() -> None:
    """An entity-day with as many rows of two groups (phases) takes the first by name, in every process.

    Polars returns tied modes in no fixed order: a customer-day with one login and one issued token
    was a "login" unit in one run and a "token_issued" unit in the next, and the audit's figures moved.
    """
    code = (
        "import polars as pl\n"
        "from breachbench.artefacts import entity_days\n"
        "rows = [dict(event_id=10 * u + k, _ds=0, _entity=f'c{u}', _day=u % 3, _attack=u % 5 == 0, _pattern=None,\n"
        "             _phase=('probe', 'bulk')[k] if u % 5 == 0 else None, _group=('token_issued', 'login')[k], ts=u, event='x')\n"
        "        for u in range(300) for k in range(2)]\n"
        "units, _ = entity_days(pl.DataFrame(rows), 'auth')\n"
        "print(sorted(set(units['_group'])), sorted(set(units['_phase'].drop_nulls())))\n"
    )
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(3)}
    assert outs == {"['login'] ['bulk']\n"}, outs


def test_a_unit_picks_a_row_of_its_own_group() -> None:
    """A customer-day of issued tokens and a login is a token unit, and its picked row (every draw's) is a token row.

    Picking the login now and then, while an attack's days of tokens without logins (a declared signal) never
    did, let the token columns of the picked rows (null on a login) tell attack from benign undeclared.
    """
    from breachbench.artefacts import MAX_DRAWS, entity_days

    rows = [
        {
            "event_id": 100 * u + k,
            "_ds": 0,
            "_entity": f"c{u}",
            "_day": u % 4,
            "_attack": False,
            "_pattern": None,
            "_phase": None,
            "_group": "login" if k == 3 else "token_issued",
            "ts": 10 * u + k,
            "f:token_id:null": 1.0 if k == 3 else 0.0,
        }
        for u in range(200)
        for k in range(4)
    ]
    units, _ = entity_days(pl.DataFrame(rows), "auth")
    assert set(units["_group"]) == {"token_issued"}
    picks = ["a:token_id:null:pick", *(f"a:token_id:null:pick~{d}" for d in range(1, MAX_DRAWS))]
    assert units.select(pl.sum_horizontal(picks).sum()).item() == 0.0
    # without the group, any row may be picked: the same units then pick the login in about one draw in four
    loose, _ = entity_days(pl.DataFrame(rows).with_columns(_group=pl.lit("customer")), "auth")
    assert loose.select(pl.sum_horizontal(picks).sum()).item() > 0.1 * len(picks) * 200


def test_unseen_shares_count_values_no_benign_unit_of_the_group_has() -> None:
    """Per feature and group: a value the reference never shows in that group is unseen, and so is a null."""
    from breachbench.artefacts import _unseen_shares

    ref = pl.DataFrame({"_group": ["a", "a", "b"], "ua": ["x", "y", "x"], "ip": ["1", None, "2"]})
    x = pl.DataFrame({"_group": ["a", "a", "b", "b"], "ua": ["x", "z", "y", "x"], "ip": ["1", None, "1", "2"]})
    # ua: z (never in a) and y (never in b); ip: a null and 1 (never in b)
    assert _unseen_shares(x, ref, ["ua", "ip"]) == {"ua": 0.5, "ip": 0.5}
    assert _unseen_shares(x.clear(), ref, ["ua"]) == {"ua": 0.0}
    assert _unseen_shares(x, ref, []) == {}


def test_a_value_seen_only_on_the_units_own_entity_day_is_unseen() -> None:
    """A ticket whose other opens are the same agent's of the same day is new; one another agent or day carries is not.

    Without that, a null draw (part of a benign agent's day) found most of its tickets among the rest of the
    day, and an attack's ticket of its own (every open an attack row) counted as an artefact.
    """
    from breachbench.artefacts import _unseen_shares

    ref = pl.DataFrame(
        {
            "_group": ["a"] * 5,
            "_entity": ["e1", "e1", "e2", "e1", "e2"],
            "_day": [1, 1, 1, 1, 2],
            "ticket": ["T1", "T1", "T2", "T3", "T3"],
        }
    )
    x = pl.DataFrame({"_group": ["a"] * 4, "_entity": ["e1"] * 4, "_day": [1] * 4, "ticket": ["T1", "T2", "T3", "T9"]})
    assert _unseen_shares(x, ref, ["ticket"]) == {"ticket": 0.5}  # T1 (own day only) and T9 (nowhere)
    assert _unseen_shares(x.with_columns(_day=pl.lit(3)), ref, ["ticket"]) == {"ticket": 0.25}  # another day: T9 alone


def test_sticky_thresholds_come_from_peers_with_as_many_rows() -> None:
    """A unit's distinct values are judged against benign units of its group with its number of rows (or the
    STICKY_PEERS nearest in rows where fewer have that many), not against a power of two of rows: a day of 15 rows
    shows more distinct values than one of 8, and against the quieter days of its bucket it looked sticky."""
    from breachbench.artefacts import STICKY_PEERS, _Sticky

    # group g: 2000 quiet days (8 rows, 8 distinct), 100 busy ones (15 rows; 95 with 12 distinct, 5 with 15);
    # group h: 100 days of 2 rows and 100 of 4 rows (every value distinct), and 3 of 40
    rows = [8.0] * 2000 + [15.0] * 100 + [2.0] * 100 + [4.0] * 100 + [40.0] * 3
    distinct = [8.0] * 2000 + [12.0] * 95 + [15.0] * 5 + [2.0] * 100 + [4.0] * 100 + [40.0] * 3
    ben = pl.DataFrame({"_group": ["g"] * 2100 + ["h"] * 203, "a:rows": rows, "a:x:distinct": distinct})
    sticky = _Sticky(ben, ["a:x:distinct"])
    assert "a:x:distinct" in sticky and "a:y:distinct" not in sticky
    # the whole bucket of 8 to 15 rows has its p99 at 12: the busy days' 15 distinct lay above it
    assert np.quantile(ben.filter((pl.col("_group") == "g") & (pl.col("a:rows") >= 8))["a:x:distinct"], 0.99) == 12.0
    busy = pl.DataFrame({"_group": ["g", "g", "g"], "a:rows": [15.0, 15.0, 8.0], "a:x:distinct": [15.0, 14.0, 8.0]})
    assert sticky.threshold(busy, "a:x:distinct").tolist() == [15.0, 15.0, 8.0]
    assert sticky.above(busy, "a:x:distinct") == 0.0
    assert sticky.above(busy.with_columns(pl.col("a:x:distinct") + 2), "a:x:distinct") == 1.0
    # 40 rows: three benign days have that many, so the STICKY_PEERS nearest in rows (by ratio) judge it:
    # the three of 40 and 97 of the 4-row days (nearer than the 2-row ones): three at 40 among the 100
    assert STICKY_PEERS == 100
    far = pl.DataFrame({"_group": ["h", "unknown"], "a:rows": [40.0, 3.0], "a:x:distinct": [5.0, 1.0]})
    peers = np.r_[[40.0] * 3, [4.0] * 97]
    assert sticky.threshold(far, "a:x:distinct").tolist() == [float(np.quantile(peers, 0.99)), 0.0]
    assert sticky.shown(busy, "a:x:distinct") == 15.0 and sticky.above(busy.clear(), "a:x:distinct") == 0.0


def test_quieter_peers_are_carried_up_at_the_rate_the_feature_grows() -> None:
    """A day busier than every benign day of its group is judged against its nearest (quieter) peers carried up to its
    rows at the rate the feature grows with rows in the group: distinct row counts of queries (one each) grow with the
    rows, an address per day does not; a day as busy as its peers is judged as before."""
    from breachbench.artefacts import _Sticky

    r = np.random.default_rng(0)
    rows = r.integers(4, 17, 600).astype(float)  # benign days of 4 to 16 rows
    queries = rows - r.integers(0, 3, 600)  # nearly one distinct row count per row
    ben = pl.DataFrame(
        {"_group": ["analyst"] * 600, "a:rows": rows, "a:row_count:distinct": queries, "a:src_ip:distinct": np.ones(600)}
    )
    sticky = _Sticky(ben, ["a:row_count:distinct", "a:src_ip:distinct"])
    assert 0.9 < sticky._slope(0, "a:row_count:distinct") <= 1.0 and sticky._slope(0, "a:src_ip:distinct") == 0.0
    busy = pl.DataFrame(
        {"_group": ["analyst"] * 2, "a:rows": [24.0, 16.0], "a:row_count:distinct": [22.0, 16.0], "a:src_ip:distinct": [2.0, 1.0]}
    )
    t24, t16 = sticky.threshold(busy, "a:row_count:distinct").tolist()
    assert 16.0 <= t16 < 18.0  # its peers: the 16-row days and the nearest 15-row ones, carried up by 16/15
    assert t24 > 22.0  # the quieter peers' 14-16 distinct, carried up to 24 rows: volume, not stickiness
    assert sticky.above(busy, "a:row_count:distinct") == 0.0
    # a second address on the busy day stays above: addresses do not grow with rows
    assert sticky.threshold(busy, "a:src_ip:distinct").tolist() == [1.0, 1.0] and sticky.above(busy, "a:src_ip:distinct") == 0.5


def test_ks_distance_is_scipys_statistic() -> None:
    """The audit's own KS distance equals ``scipy.stats.ks_2samp``'s statistic bit for bit (ties, both modes)."""
    from scipy.stats import ks_2samp

    from breachbench.artefacts import _ks

    r = np.random.default_rng(0)
    for i in range(300):
        n1, n2 = (int(r.integers(9_000, 12_000)), int(r.integers(5_000, 20_000))) if i % 50 == 0 else r.integers(1, 3_000, 2)
        if i % 2:
            a, b = r.normal(size=n1), r.normal(0.1, size=n2)
        else:
            a, b = r.integers(0, 8, n1).astype(float), r.integers(1, 9, n2).astype(float)
        assert _ks(a, b) == float(ks_2samp(a, b).statistic), (n1, n2)
    assert _ks(np.array([]), np.array([1.0])) == 0.0


def _sample_folds_case(r: np.random.Generator, i: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels, CV groups and a split seed: attack units scattered or held by whole groups, as in an audit sample."""
    n = int(r.integers(6, 400))
    groups = r.integers(0, int(r.integers(2, max(3, n // 2))), n) + int(r.integers(0, 5))
    if i % 3:
        y = (r.random(n) < r.uniform(0.05, 0.6)).astype(np.int8)
    else:
        ug = np.unique(groups)
        y = np.isin(groups, r.choice(ug, size=max(1, len(ug) // 3), replace=False)).astype(np.int8)
    return y, groups, int(r.integers(0, 5))


def test_folds_are_scikit_learns_stratified_group_folds() -> None:
    """The audit's folds equal ``StratifiedGroupKFold(k, shuffle=True)``'s of scikit-learn 1.8 and later, index for index."""
    import sklearn
    from sklearn.model_selection import StratifiedGroupKFold

    from breachbench.artefacts import FOLDS, _folds

    if tuple(map(int, re.match(r"(\d+)\.(\d+)", sklearn.__version__).groups())) < (1, 8):  # type: ignore[union-attr]
        pytest.skip(f"scikit-learn {sklearn.__version__} shuffles groups out of step with their samples (fixed in 1.8)")
    r = np.random.default_rng(0)
    compared = 0
    for i in range(400):
        y, groups, split = _sample_folds_case(r, i)
        if y.min() == y.max():
            continue
        mine = _folds(y, groups, split)
        k = min(FOLDS, len(set(groups[y == 1])))
        if k < 2:
            assert mine is None
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a class smaller than k
            ref = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=split).split(np.zeros((len(y), 1)), y, groups))
        assert mine is not None and len(mine) == len(ref), i
        for (tr, te), (tr_ref, te_ref) in zip(mine, ref, strict=True):
            assert np.array_equal(tr, tr_ref) and np.array_equal(te, te_ref), i
        compared += 1
    assert compared > 300


def test_folds_partition_the_units_and_keep_groups_whole() -> None:
    """Whatever scikit-learn is installed: every unit is tested once, no group spans folds, each fold holds attack units."""
    from breachbench.artefacts import _folds

    r = np.random.default_rng(1)
    for i in range(200):
        y, groups, split = _sample_folds_case(r, i)
        folds = _folds(y, groups, split)
        if folds is None:
            assert len(set(groups[y == 1])) < 2
            continue
        tested = np.concatenate([te for _, te in folds])
        assert np.array_equal(np.sort(tested), np.arange(len(y)))
        for tr, te in folds:
            assert not set(groups[tr]) & set(groups[te])
            assert np.array_equal(np.sort(np.r_[tr, te]), np.arange(len(y)))
            assert y[te].any()
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, _folds(y, groups, split), strict=True))


def test_the_classifier_fits_on_one_openmp_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """With two OpenMP threads, scikit-learn's binning threads could leave the process's warning filters empty
    (each resets them while it works), and every later fit printed a warning per feature; one thread, whatever
    the caller set."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import breachbench.artefacts as art

    seen: list[set[int]] = []
    real = art._fit_auc

    def spy(*args: Any) -> float:
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"})
        return real(*args)

    monkeypatch.setattr(art, "_fit_auc", spy)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 3)), (rng.random(300) < 0.3).astype(np.int8)
    folds = art._folds(y, np.arange(300))
    assert folds
    art._cv_auc(X, y, folds, np.zeros(3, dtype=bool))  # the imports, which add filters of their own
    seen.clear()
    filters = list(warnings.filters)
    with threadpool_limits(limits=2, user_api="openmp"):
        auc, k = art._cv_auc(X, y, folds, np.zeros(3, dtype=bool))
        after = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
    assert auc is not None and k == len(seen) == len(folds)
    assert all(s == {1} for s in seen), seen
    assert after == {2} and warnings.filters == filters  # the caller's setting and filters come back


def test_unseen_share_is_the_share_of_values_no_other_entity_day_has() -> None:
    """The unseen test against its definition, row by row: a unit's value is unseen when no reference row of its group
    carries it on another entity-day (the audit computes it by group-bys on a code per entity-day)."""
    from breachbench.artefacts import _unseen_shares

    r = np.random.default_rng(3)

    def frame(n: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "_group": r.choice(["a", "b"], n),
                "f:x:value": r.choice([f"v{i}" for i in range(30)], n),
                "_entity": r.choice([f"0/e:{i}" for i in range(6)], n),
                "_day": [dt.date(2025, 4, int(d)) for d in r.integers(1, 4, n)],
            }
        )

    x, ref = frame(60), frame(40)
    rows = ref.rows()
    want = np.mean([not any(g == rg and v == rv and (e, d) != (re_, rd) for rg, rv, re_, rd in rows) for g, v, e, d in x.rows()])
    assert _unseen_shares(x, ref, ["f:x:value"])["f:x:value"] == pytest.approx(want)
    assert 0 < want < 1  # both kinds of rows are there
    # without entity and day: no reference row of the group has the value
    x2, ref2 = x.drop("_entity", "_day"), ref.drop("_entity", "_day")
    want2 = np.mean([not any(g == rg and v == rv for rg, rv in ref2.rows()) for g, v in x2.rows()])
    assert _unseen_shares(x2, ref2, ["f:x:value"])["f:x:value"] == pytest.approx(want2)


def test_a_null_draw_judged_in_place_gets_the_figures_of_its_copy(tmp_path: Path) -> None:
    """The tests of a null draw take the benign rows left as row numbers of the whole frame; the figures equal those of
    a copy of those rows (the forged-token case on the small world of the "agent" plant: a tenth of the tiny dataset's
    gateway rows, whose features took 10 s)."""
    from breachbench.artefacts import _null_draw, _stats, _tie_features, row_features
    from breachbench.dataset import Dataset
    from simulator.engine import generate

    knobs = {k: v for k, v in PLANTS["agent"][1].items() if k != "stealth"}
    small = ["world.customers=3000", "world.block_size=3000", "traffic.daily_active_fraction=0.05"]
    cfg = audit_config("coupang-forged-token-v3", knobs, SEED[0], small, world=CHECK_AUDIT_WORLD)
    df = load_rows([Dataset.open(generate(cfg, tmp_path / "ds", workers=1))], streams=["gateway"])["gateway"]
    assert df["_attack"].sum() > 100
    att, ben = df.filter(pl.col("_attack")), df.filter(~pl.col("_attack"))
    feats = row_features(df)
    ps, rest = _null_draw(att, ben, "rows", 11)
    assert ps.height and 0 < len(rest) < ben.height
    ties = _tie_features(att, "gateway")
    in_place = _stats(ps, ben, feats, "rows", None, 5, rows=rest, ties=ties, stream="gateway")
    copied = _stats(ps, ben[rest], feats, "rows", None, 5, ties=ties, stream="gateway")
    assert in_place == copied and len(in_place) > 20 and any(t == "tie" for _, t in in_place)


def test_string_features_per_distinct_value_equal_those_per_row() -> None:
    """Features of a string column alone are computed once per distinct value and joined back: the same frame, columns
    in the same order, as computing them on every row (nulls and features that read another column too)."""
    from breachbench.artefacts import _column_features, _with_value_features

    df = pl.DataFrame(
        {
            "agent": ["Mozilla/5.0 (X11)", None, "curl/8.4", "Mozilla/5.0 (X11)", "LT-00042", None, "curl/8.4"],
            "ip": ["203.0.113.7", "203.0.113.9", None, "198.51.100.42", "203.0.113.7", "10.0.0.1", "203.0.113.7"],
            "n": [1, 2, 3, None, 5, 6, 7],
            "_eid": [42, 7, 8, 42, 42, 1, 8],
            "_off": [False] * 7,
        }
    )
    exprs = [e for c, t in df.schema.items() if not c.startswith("_") for e in _column_features(c, t, "UTC")]
    assert any(set(e.meta.root_names()) == {"agent", "_eid"} for e in exprs)  # has_entity reads the entity's number
    assert_frame_equal(_with_value_features(df, exprs), df.with_columns(exprs))


def test_an_id_holds_the_entitys_number_in_a_field_only_where_that_field_is_not_zero() -> None:
    """``<id>:has_entity``: the id holds the row's entity's number in its lowest bits or in a higher field. The high
    fields of a small id are zero, so an actor numbered 0 "held" its number in every customer id it read: an audit
    grid's FAIL (41% of attack sessions against 0.4% of benign ones, the rows of employee 0) with nothing planted."""
    from breachbench.artefacts import _column_features

    df = pl.DataFrame(
        {
            "customer_id": [17, 0, 5 << 8, 17, (9 << 24) | 3, 4],
            "_eid": [0, 0, 5, 17, 9, 5],
            "_off": [False] * 6,
        }
    )
    got = df.with_columns(_column_features("customer_id", pl.Int64, "UTC"))["f:customer_id:has_entity"].to_list()
    assert got == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_a_category_the_attack_never_carries_is_in_deficit() -> None:
    """A status benign sessions carry now and then (one in five) and 200 attack sessions never do: no category is in
    excess (the attack's other statuses keep their benign proportions), the missing one is in deficit; where the
    attack carries it as often as benign sessions do, neither is."""
    from breachbench.artefacts import EXCESS_MIN, Feature, _excess_stats

    def frame(n: int, every: int) -> pl.DataFrame:  # n sessions of 5 rows: status 404 on one session in ``every``, if any
        s = np.repeat(np.arange(n), 5)
        st = np.where((s % 2) == 0, "200", "304")
        if every:
            st = np.where((s % every == 0) & (np.arange(5 * n) % 5 == 0), "404", st)
        return pl.DataFrame({"_entity": [f"e{i}" for i in s], "_day": [dt.date(2025, 4, 1)] * (5 * n), "f:status:value": st})

    feats = [Feature("f:status:value", "status", "cat")]
    ref = frame(2000, 5)
    deficits: dict[str, tuple[float, str]] = {}
    excess = _excess_stats(frame(200, 0), ref, feats, [], deficits)
    z, detail = deficits["f:status:value"]
    assert z > EXCESS_MIN and "'404' on 0.0% of attack sessions" in detail, (z, detail)
    assert excess["f:status:value"][0] < EXCESS_MIN, excess
    same: dict[str, tuple[float, str]] = {}
    _excess_stats(frame(200, 5), ref, feats, [], same)
    assert same["f:status:value"][0] < 2.0, same


def test_a_value_benign_entity_days_share_counts_once_per_entity_day() -> None:
    """A column whose values a benign entity-day's rows share (an address) counts once per entity-day and value in the
    critical values; one whose values each row draws (ticket numbers: a day of many tickets) counts per row, also where
    an attack's rows share a value (all even), which is what the tests are there to find."""
    from breachbench.artefacts import Feature, _shared_columns, _value_days

    days = np.repeat(np.arange(7), [5, 3, 4, 2, 6, 3, 2])  # 25 rows on 7 entity-days
    assert _value_days(days, days % 3.0) == (7, 7)
    second = days % 3.0
    second[0] = 9.0  # one day with a second address
    assert _value_days(days, second) == (8, 7)
    assert _value_days(days, np.random.default_rng(0).random(25)) == (25, 7)
    assert _value_days(days[:0], days[:0] * 1.0) == (0, 0)
    ben = pl.DataFrame(
        {
            "_entity": (days % 4).astype(str),
            "_day": days,
            "src_ip": (days * 7).astype(str),  # one address a day
            "ticket_id": np.arange(25),  # a ticket per row
        }
    )
    feats = [Feature(f"f:{c}:length", c, "num") for c in ("src_ip", "ticket_id")]
    assert _shared_columns(ben, feats) == frozenset({"src_ip"})
