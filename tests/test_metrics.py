"""Scores that only detection earns: unit roles, chance lines, the detection score, harm, stability, schema v3.

A small multi-scenario suite (the default suite's scenario entries in a cheap world, two
seeds) is generated once for the module; everything else reuses the session's tiny run.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from test_suite import _compare

from breachbench.chance import (
    ANY,
    BLIND_KINDS,
    POOL,
    POOL_OF,
    ROTATING,
    ChanceDraws,
    above_chance_draws,
    actor_class_unions,
    best_kind,
    blind_kinds,
    chance_bar,
    chance_draws,
    chance_draws_by_kind,
    chance_lines,
    pool,
    rotating_kinds,
    summary,
)
from breachbench.config import load_config
from breachbench.dataset import Dataset, in_company_nets, unit_roles
from breachbench.report import print_leaderboard
from breachbench.runner import oracle_alerts, run_detector
from breachbench.scoring import (
    KEYS,
    DetectionParts,
    Truth,
    _cost_profiles,
    above_chance,
    chance_average_precision,
    cost_profiles,
    detection_score,
    harm_weights,
    score_alerts,
)
from breachbench.stats import headline, split_half
from breachbench.suite import ensure_dataset, grid
from detectors.builtin import RandomDetector
from detectors.contract import ALERTS, empty_alerts
from simulator.schema import ENTITY_KINDS, EXPOSURE_KINDS

REPO = Path(__file__).resolve().parents[1]
#: The default suite's scenario entries in a world small enough for a test (a few seconds a dataset).
SMALL = [
    "world.customers=1000",
    "world.employees=300",
    "time.end=2025-04-23",
    "time.warmup_days=7",
    "suite.seeds=[1, 2]",
    "suite.chance_draws=400",
]
STAFF = ("bulk-export-before-departure-v2", "snooping-agent-v2")
FORGED = "coupang-forged-token-v3"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """configs/default.toml's forged-token and two staff entries in a cheap world, two seeds: label -> (point, dataset, truth)."""
    cfg = load_config(REPO / "configs" / "default.toml", SMALL)
    out = tmp_path_factory.mktemp("small_suite")
    points = [p for p in grid(cfg, out) if not p.tuning and p.scenario in (FORGED, *STAFF)]
    assert {p.scenario for p in points} == {FORGED, *STAFF}, "the default suite lost one of the scenarios these tests need"
    found = {}
    for p in points:
        sim = cfg.model_copy(update={"seed": p.seed, "scenarios": [cfg.scenarios[p.index]]})
        ds, _ = ensure_dataset(sim, p.path, workers=1)
        found[p.label] = (p, ds, Truth.of(ds))
    return {"config": cfg, "points": found}


@pytest.fixture(scope="module")
def small_chance_kinds(small_suite: dict[str, Any]) -> dict[str, dict[str, ChanceDraws]]:
    """Per scenario of the small suite and blind kind: its chance line at budget 10, pooled over seeds as the suite pools them."""
    per: dict[str, dict[str, list[ChanceDraws]]] = {}
    unions = {s: actor_class_unions(truth for _, _, truth in _of(small_suite, s)) for s in (FORGED, *STAFF)}
    for p, _, truth in small_suite["points"].values():
        for kind, by_k in chance_draws_by_kind(truth, [10], draws=1000, seed=p.seed, unions=unions[p.scenario]).items():
            per.setdefault(p.scenario, {}).setdefault(kind, []).append(by_k[10])
    return {s: {kind: pool(v) for kind, v in kinds.items()} for s, kinds in per.items()}


@pytest.fixture(scope="module")
def small_chance(small_chance_kinds: dict[str, dict[str, ChanceDraws]]) -> dict[str, ChanceDraws]:
    """Per scenario of the small suite: its chance line at budget 10 (the blind kind that reaches highest)."""
    return {s: kinds[best_kind(kinds)] for s, kinds in small_chance_kinds.items()}


def _bars(lines: dict[str, ChanceDraws]) -> dict[str, float]:
    """Per scenario: the top of its chance line (the raw score the headline counts from)."""
    return {s: chance_bar(d.detection_parts()[3]) for s, d in lines.items()}


def _of(small_suite: dict[str, Any], scenario: str) -> list[tuple[Any, Dataset, Truth]]:
    return [v for v in small_suite["points"].values() if v[0].scenario == scenario]


def _frame(rows: pl.DataFrame, score: float = 1.0) -> pl.DataFrame:
    return (
        rows.select(KEYS)
        .unique()
        .with_columns(score=pl.lit(score), reason=pl.lit(None, pl.String))
        .select(ALERTS.names())
        .cast(ALERTS)
    )


def _lottery(ds: Dataset, kind: str, n: int = 10, seed: int = 0) -> pl.DataFrame:
    """``n`` random entities a day: customers seen in the bucket, office/VPN addresses (shared by several employees),
    (``unit:KIND``) units of one entity kind that the bucket's rows carry, or (``class:CLASS``) units of one public
    class (``class:employee:analyst``: analysts; :attr:`Dataset.unit_classes`)."""
    if kind.startswith(("unit:", "class:")):  # a uniform n-subset of each bucket's units of the kind or class, in random order
        what = kind.partition(":")[2]
        units = ds.universe_units.filter(pl.col("entity_kind") == what) if kind.startswith("unit:") else _class_units(ds, what)
        picked = (
            units.filter(pl.col("bucket").is_in(ds.scored))
            .with_columns(score=pl.concat_str(pl.col("bucket").cast(pl.String), "entity_id").hash(seed).cast(pl.Float64))
            .filter(pl.col("score").rank("ordinal", descending=True).over("bucket") <= n)
        )  # a hash of (bucket, unit) as the score: independent draws from bucket to bucket
        return picked.with_columns(reason=pl.lit(None, pl.String)).select(ALERTS.names()).cast(ALERTS)
    r = np.random.default_rng(seed)
    parts = []
    for day in ds.scored:
        v = ds.view(day, day)
        if kind == "customer":
            pool_ = v.logs("gateway", current_only=True).select(pl.col("customer_id").cast(pl.String).alias("entity_id"))
        else:  # office and VPN egress: staff addresses that several employees use in the bucket
            staff = pl.concat(
                [v.logs(s, current_only=True).select("employee_id", "src_ip") for s in ("admin", "auth")]
            ).drop_nulls()
            pool_ = (
                staff.group_by("src_ip")
                .agg(pl.col("employee_id").n_unique().alias("n"))
                .filter(pl.col("n") >= 2)
                .select(pl.col("src_ip").alias("entity_id"))
            )
        ids = pool_.drop_nulls().unique().collect().sort("entity_id")["entity_id"]
        if ids.len() == 0:
            continue
        pick = ids.gather(r.choice(ids.len(), size=min(n, ids.len()), replace=False))
        parts.append(
            pl.DataFrame(
                {
                    "bucket": [day] * pick.len(),
                    "entity_kind": [kind.rpartition(":")[2]] * pick.len(),
                    "entity_id": pick,
                    "score": r.random(pick.len()),
                    "reason": [None] * pick.len(),
                },
                schema=ALERTS,
            )
        )
    return pl.concat(parts)


def _headline_of(results: list[tuple[str, dict[str, Any]]], chance: dict[str, float] | None = None) -> dict[str, Any]:
    """The suite's headline from (scenario, score_alerts result) pairs, above ``chance`` (scenario -> mean raw score)."""
    return headline([i | {"scenario": scen} for scen, res in results for i in res["incidents"]], resamples=300, chance=chance)


# ---------------------------------------------------------------- 1. roles


def test_unit_roles_rule() -> None:
    d = dt.date(2025, 4, 10)
    ids = ["7", "k1", "99", "123", "10.0.0.1", "192.0.2.9", "203.0.113.9", "198.51.100.77", "198.51.101.77"]
    units = pl.DataFrame(
        {
            "bucket": [d] * len(ids),
            "entity_kind": ["employee", "key", "token", "customer", "ip", "ip", "ip", "ip", "ip"],
            "entity_id": ids,
            "incident_id": [0] * len(ids),
        }
    )
    # an address others use; a customer id never matters
    benign = pl.DataFrame({"entity_kind": ["ip", "customer"], "entity_id": ["10.0.0.1", "123"]})
    roles = dict(unit_roles(units, benign).select("entity_id", "role").iter_rows())
    assert roles == {
        **{"7": "actor", "k1": "actor", "99": "actor", "123": "victim", "10.0.0.1": "shared", "192.0.2.9": "actor"},
        # the office's and the VPN's egress addresses are other people's too, though no benign row carries these two;
        # the address next to the VPN's range is not the company's
        **{"203.0.113.9": "shared", "198.51.100.77": "shared", "198.51.101.77": "actor"},
    }
    other = units.with_columns(entity_kind=pl.lit("printer"))
    assert set(unit_roles(other, benign)["role"]) == {"shared"}  # a kind nobody declared never detects
    # a key others' events carry too is the actor's only when an actor of the incident owns it: the auth
    # service's key that signed a token it issued to him is shared, his own signing key is his
    keys = pl.DataFrame(
        {"bucket": [d] * 3, "entity_kind": ["key"] * 3, "entity_id": ["k-service", "k-his", "k-stolen"], "incident_id": [0] * 3}
    )
    used = pl.DataFrame({"entity_kind": ["key", "key", "ip"], "entity_id": ["k-service", "k-his", "k-stolen"]})
    owned = pl.DataFrame({"incident_id": [0, 1], "entity_kind": ["key", "key"], "entity_id": ["k-his", "k-service"]})
    roles = dict(unit_roles(keys, used, owned).select("entity_id", "role").iter_rows())
    assert roles == {"k-service": "shared", "k-his": "actor", "k-stolen": "actor"}  # k-service: owned in another incident
    # an address that only the benign rows of an account the incident operates carry is theirs (an insider's home
    # broadband on his ordinary remote days too), in that incident; one that another employee's rows carry, or a
    # customer's (alone: null), is shared
    homes = pl.DataFrame(
        {
            "bucket": [d] * 5,
            "entity_kind": ["employee", "ip", "ip", "ip", "ip"],
            "entity_id": ["7", "121.128.0.7", "121.128.0.8", "121.128.0.9", "198.51.100.7"],
            "incident_id": [0] * 5,
        }
    )
    carried = pl.DataFrame(
        {
            "entity_kind": ["ip"] * 4,
            "entity_id": ["121.128.0.7", "121.128.0.8", "121.128.0.9", "198.51.100.7"],
            "alone": ["7", "8", None, "7"],
        }
    )
    roles = dict(unit_roles(homes, carried).select("entity_id", "role").iter_rows())
    assert roles == {
        "7": "actor",
        "121.128.0.7": "actor",
        "121.128.0.8": "shared",
        "121.128.0.9": "shared",
        "198.51.100.7": "shared",
    }
    other_incident = homes.with_columns(incident_id=pl.when(pl.col("entity_kind") == "ip").then(1).otherwise(0))
    assert dict(unit_roles(other_incident, carried).select("entity_id", "role").iter_rows())["121.128.0.7"] == "shared"
    with pytest.raises(ValueError, match="one 'alone' per"):  # two answers to whose rows alone carry an address
        unit_roles(homes, carried.vstack(carried.head(1).with_columns(alone=pl.lit("8"))))


def test_roles_in_datasets(tiny_ds: Dataset, small_suite: dict[str, Any]) -> None:
    homes = unused_company = 0  # how many units each address rule below decided, over the datasets
    for ds in [tiny_ds, *(v[1] for v in small_suite["points"].values())]:
        pos = ds.positive_units
        assert set(pos["role"].unique()) <= {"actor", "victim", "shared"}
        assert (pos.filter(pl.col("entity_kind") == "customer")["role"] == "victim").all()
        assert (pos.filter(pl.col("entity_kind").is_in(["employee", "token"]))["role"] == "actor").all()
        keys = pos.filter(pl.col("entity_kind") == "key")
        mine = keys.join(ds.actor_keys, on=["incident_id", "entity_kind", "entity_id"], how="semi")
        assert (mine["role"] == "actor").all()  # his own key, however many others' tokens it signs
        others = keys.join(ds.actor_keys, on=["incident_id", "entity_kind", "entity_id"], how="anti")
        used = others.join(ds.benign_keys, on="entity_id", how="semi")
        assert (used["role"] == "shared").all() and (others.join(used, on="entity_id", how="anti")["role"] == "actor").all()
        ips = pos.filter(pl.col("entity_kind") == "ip").join(ds.benign_carried, on=["entity_kind", "entity_id"], how="left")
        accounts = pos.filter(pl.col("entity_kind") == "employee").select("incident_id", pl.col("entity_id").alias("alone"))
        theirs = ips.join(accounts, on=["incident_id", "alone"], how="semi").select("incident_id", "entity_id")
        company = in_company_nets(pl.col("entity_id"))
        shared = ips.filter(pl.col("role") == "shared").select("incident_id", "entity_id", "alone").unique()
        # shared: someone benign uses it other than the accounts the incident operates, or it is the office's or the
        # VPN's (in this small suite's worlds, a few of the VPN's 256 addresses carry attack rows and no benign one)
        assert shared.filter(~company).join(theirs, on=["incident_id", "entity_id"], how="semi").height == 0
        assert shared.filter(pl.col("alone").is_null() & ~company).join(ds.benign_ips, on="entity_id", how="anti").height == 0
        actor = ips.filter(pl.col("role") == "actor").select("incident_id", "entity_id").unique()
        # actor: nobody else's benign rows carry it (an operated account's own may), and it is not the office's or the VPN's
        assert (ips.join(theirs, on=["incident_id", "entity_id"], how="semi").filter(~company)["role"] == "actor").all()
        assert (
            actor.join(theirs, on=["incident_id", "entity_id"], how="anti").join(ds.benign_ips, on="entity_id", how="semi").height
            == 0
        )
        assert not actor.select(company.any()).item()
        homes += ips.join(theirs, on=["incident_id", "entity_id"], how="semi").filter(~company).height
        unused_company += shared.filter(company).join(ds.benign_ips, on="entity_id", how="anti").height
        assert pos.filter(pl.col("role") == "actor").height > 0, ds.root
        # the oracle alerts actor units only
        oracle = oracle_alerts(ds).select(KEYS)
        actors = pos.filter(pl.col("role") == "actor", pl.col("bucket").is_in(ds.scored)).select(KEYS).unique()
        assert oracle.join(actors, on=KEYS, how="anti").height == 0 and oracle.height == actors.height
    # both address rules had units to decide (insiders' home addresses; VPN addresses no benign row carries)
    assert homes > 0 and unused_company > 0, (homes, unused_company)


def test_victims_and_shared_units_never_detect(tiny_truth: Truth) -> None:
    victims = _frame(tiny_truth.victims)
    res = score_alerts(victims, tiny_truth, budget=10_000)["overall"]
    assert res["recall_at_k"] == 0.0 and res["detection_score"] == 0.0 and res["auprc"] == 0.0
    assert res["victims_flagged_share"] == pytest.approx(1.0) and res["auprc_victims"] == pytest.approx(1.0)
    assert res["false_alerts_read"] == victims.height  # reading a victim is not a detection
    shared = tiny_truth.positives.filter(pl.col("role") == "shared")
    if shared.height:
        assert score_alerts(_frame(shared), tiny_truth, budget=10_000)["overall"]["recall_at_k"] == 0.0


# ---------------------------------------------------------------- 2. anchors on the detection score


def test_the_oracle_reads_incidents_not_yet_caught_first_at_every_budget(small_suite: dict[str, Any]) -> None:
    """One ranking for every budget ``k``: each bucket, the top ``k`` units cover as many incidents not yet caught at that
    budget as ``k`` can (all of them if fewer), so the oracle reads each incident as early as any ranking could. Ranked
    by incident alone, it caught 17% to 40% of a dataset's incidents at budget 1 on a red team's run (now 60% to 100%)."""
    for p, ds, truth in small_suite["points"].values():
        alerts = oracle_alerts(ds).join(truth.actors, on=KEYS)  # each unit with the incidents it belongs to
        assert alerts["incident_id"].n_unique() == truth.actors["incident_id"].n_unique()
        by_bucket = {b: g for (b,), g in alerts.group_by(["bucket"])}
        for k in (1, 2, 3):
            caught: set[int] = set()
            for bucket in sorted(by_bucket):
                g = by_bucket[bucket]
                open_ = set(g["incident_id"].to_list()) - caught
                units = g.select(*KEYS, "score").unique(KEYS).sort("score", "entity_kind", "entity_id", descending=True)
                read = g.join(units.head(k).select(KEYS), on=KEYS, how="semi")
                got = set(read["incident_id"].to_list())
                assert len(got & open_) >= min(k, len(open_)), (p.label, k, bucket, sorted(open_), sorted(got))
                caught |= got
            if k == 3:
                assert caught == set(truth.actors["incident_id"].to_list()), p.label


def test_a_run_notes_where_the_oracle_cannot_reach_100() -> None:
    from breachbench.suite import _oracle_note

    def oracle(raw: dict[str, float | None]) -> dict[str, Any]:
        by = {s: {"point": {"detection_score_raw": x}} for s, x in raw.items()}
        return {"detector": "oracle", "status": "OK", "by_scenario": by}

    said: list[str] = []
    _oracle_note([oracle({"a": 100.0, "b": 60.5, "c": None})], 1, said.append)
    assert len(said) == 1 and "budget 1" in said[0] and "b (60.5)" in said[0] and "a (" not in said[0]
    said.clear()
    _oracle_note([oracle({"a": 100.0})], 10, said.append)
    assert said == []


def test_null_0_and_oracle_100_on_every_scenario(small_suite: dict[str, Any], small_chance: dict[str, ChanceDraws]) -> None:
    by_scen: dict[str, list] = {}
    for p, ds, truth in small_suite["points"].values():
        null = score_alerts(empty_alerts(), truth)
        oracle = score_alerts(oracle_alerts(ds), truth)
        by_scen.setdefault(p.scenario, []).append((null, oracle))
        for name in cost_profiles()["profiles"]:
            assert null["overall"]["op_score_profiles"][name] == 0.0
            assert oracle["overall"]["op_score_profiles"][name] == pytest.approx(100.0)
        assert null["overall"]["detection_score"] == 0.0 and oracle["overall"]["detection_score"] == pytest.approx(100.0)
    assert len(by_scen) >= 3
    nulls = _headline_of([(s, n) for s, v in by_scen.items() for n, _ in v], _bars(small_chance))
    oracles = _headline_of([(s, o) for s, v in by_scen.items() for _, o in v], _bars(small_chance))
    assert nulls["point"] == 0.0 and nulls["ci"] == [0.0, 0.0]
    assert oracles["point"] == pytest.approx(100.0) and oracles["ci"] == pytest.approx([100.0, 100.0])
    # per scenario 100 (null 0), or no score above chance at all where a blind ranking is perfect in some draws
    bars = _bars(small_chance)
    for res, anchor in ((oracles, 100.0), (nulls, 0.0)):
        for s, v in res["by_scenario"].items():
            assert (v is None) == (bars[s] >= 100.0 - 1e-9) and (v is None or v == pytest.approx(anchor)), (s, v, bars[s])


# ---------------------------------------------------------------- 3. chance lines


def test_chance_auprc_is_exact() -> None:
    r = np.random.default_rng(5)
    n, p = 400, 12
    sims = []
    for _ in range(4000):
        y = np.zeros(n, bool)
        y[r.choice(n, p, replace=False)] = True
        pos = np.flatnonzero(y) + 1
        sims.append(np.sum(np.arange(1, p + 1) / pos) / p)
    assert chance_average_precision(n, p, p) == pytest.approx(np.mean(sims), rel=0.03)
    assert chance_average_precision(n, 2 * p, p) == pytest.approx(np.mean(sims) / 2, rel=0.03)  # half the positives out of reach
    assert chance_average_precision(n, p, 0) == 0.0


def test_random_sits_inside_its_chance_line(tiny_ds: Dataset, tiny_truth: Truth, tiny_run_dir: Path, tiny_rows) -> None:
    random = pl.read_parquet(tiny_run_dir / "alerts" / "random.parquet")
    draws = chance_draws(tiny_truth, [1, 5, 10, 20], draws=1000, seed=3)
    for k, d in draws.items():
        got = score_alerts(random, tiny_truth, budget=k)["overall"]
        per_draw = d.metrics()
        for m in ("detection_score", "recall_at_k", "false_alerts_per_bucket", "op_score:standard", "auprc"):
            # one blind draw is one draw of the line: anywhere the line's draws reach (a single draw falls outside the
            # 2.5-97.5 percentiles one time in twenty, and this checks twenty figures)
            lo, hi = float(np.nanmin(per_draw[m])), float(np.nanmax(per_draw[m]))
            assert lo - 1e-9 <= got[m.split(":")[0]] <= hi + 1e-9, (k, m, got[m.split(":")[0]], summary(per_draw[m]), lo, hi)
    assert tiny_rows["random"]["chance_auprc"] == pytest.approx(summary(draws[10].auprc)["mean"], rel=0.1)


def test_lotteries_and_random_score_chance_on_every_scenario(
    small_suite: dict[str, Any], small_chance: dict[str, ChanceDraws], small_chance_kinds: dict[str, dict[str, ChanceDraws]]
) -> None:
    """Blind players score chance on every scenario, at most 5 points above it: random, 10 random units a day of each
    entity kind (ten random employees a day know only that staff scenarios have employee actors) and of each public
    class (an employee's role, a key's credential kind), 10 random customers a day and 10 random office/VPN addresses
    a day.

    The forged-token case is included: its forged tokens are actor units, so a blind ranking
    lands on one now and then (a raw score near 30); the headline counts above that line.
    """
    bars = _bars(small_chance)
    assert (
        summary(small_chance[FORGED].detection_parts()[3])["mean"] > 10.0
    )  # the case this is about: blind luck earns raw points here
    # the case the kinds are about: ten random employees a day reach higher than a ranking of every unit
    assert any(
        chance_bar(small_chance_kinds[s]["employee"].detection_parts()[3])
        > chance_bar(small_chance_kinds[s][ANY].detection_parts()[3]) + 5.0
        for s in STAFF
    )
    seeds = (0, 1, 2, 3)
    families = {ANY: [f"random:{i}" for i in seeds]} | {k: [f"unit:{k}:{i}" for i in seeds] for k in ENTITY_KINDS}
    # and ten random units of one public class a day (analysts, token-signing keys): knowing who tends to act is no detection
    classes = set.intersection(*(set(blind_kinds(truth)) - set(BLIND_KINDS) for _, _, truth in small_suite["points"].values()))
    assert {"employee:analyst", "key:token-signing"} <= classes
    families |= {c: [f"class:{c}:{i}" for i in seeds] for c in sorted(classes)}
    for scen in (*STAFF, FORGED):
        points = _of(small_suite, scen)
        line = small_chance[scen]
        if bars[scen] >= 100.0 - 1e-9:  # a blind ranking is perfect in some draws: no score above chance, for anyone
            assert np.isnan(above_chance_draws(line)).all()
            for _, ds, truth in points:
                head = _headline_of([(scen, score_alerts(run_detector("random", ds).alerts, truth, budget=10))], bars)
                assert head["point"] is None and head["by_scenario"][scen] is None
            continue
        above_line = summary(above_chance_draws(line))
        assert above_line["mean"] <= 5.0 and above_line["lo"] == 0.0, (scen, above_line)
        most = float(np.nanmax(above_chance_draws(line)))  # the most blind luck reached in any chance draw
        for family, players in [*families.items(), ("lottery", ["customer", "ip"])]:
            raws, heads = [], []
            for who in players:
                results = []
                for p, ds, truth in points:
                    name, _, seed = who.rpartition(":")
                    if name == "random":  # the built-in with one seed: one blind draw
                        alerts = run_detector("random", ds, prototype=RandomDetector(seed=int(seed))).alerts
                    elif name:
                        alerts = _lottery(ds, name, seed=p.seed * 10 + int(seed))
                    else:
                        alerts = _lottery(ds, who, seed=p.seed)
                    results.append((scen, score_alerts(alerts, truth, budget=10)))
                head = _headline_of(results, bars)
                raw = head["by_scenario_raw"][scen]
                assert head["point"] == pytest.approx(above_chance(raw, bars[scen]))
                # one blind draw is one draw of a line below the scenario's: anywhere blind luck reaches (the
                # forged-token case's line has a long thin tail: most draws score 0 above chance, one in forty about 10)
                assert 0.0 <= head["point"] <= most + 1e-9, (scen, who, head["point"], most, above_line)
                raws.append(raw)
                heads.append(head["point"])
                if family == "lottery":  # victims and shared addresses never detect
                    assert head["point"] == 0.0 and raw == 0.0
                    assert all(r["overall"]["recall_at_k"] == 0.0 for _, r in results)
            if family == "lottery":
                continue
            # one blind draw may fall anywhere in its line (seed 0 sits in its lower tail on the forged-token case);
            # the mean of four lies inside its own kind's line, at most one of the four above the scenario line's upper
            # end (each has at most a 2.5% chance; two or more, under 0.4%), and blind luck is worth at most 5 points
            own = summary(small_chance_kinds[scen][family].detection_parts()[3])
            assert own["lo"] - 1e-9 <= float(np.mean(raws)) <= own["hi"] + 1e-9, (scen, family, raws, own)
            assert sum(h > above_line["hi"] + 1e-9 for h in heads) <= 1, (scen, family, heads, above_line)
            assert float(np.mean(heads)) <= 5.0, (scen, family, heads, bars[scen])


def _class_units(ds: Dataset, what: str) -> pl.DataFrame:
    """Each bucket's units of a public class or union of classes (``employee:analyst+employee:administrator``), or of
    the employees the incidents' picking rules allowed (``pool``; ``pool:<classes>``: of those classes), read here
    from the truth's incidents."""
    if what == POOL or what.startswith(POOL_OF):
        ids = ds.truth("incidents")["pool"].explode().drop_nulls().cast(pl.String).unique()
        base = ds.universe_units if what == POOL else _class_units(ds, what.removeprefix(POOL_OF))
        return base.filter((pl.col("entity_kind") == "employee") & pl.col("entity_id").is_in(ids.implode())).select(KEYS)
    return ds.unit_classes.filter(pl.col("class").is_in(what.split("+"))).select(KEYS)


def _rotation(ds: Dataset, kind: str, n: int = 10, seed: int = 0) -> pl.DataFrame:
    """A blind rotation: each bucket, the ``n`` units of one entity kind (``unit:KIND``) or public class, union of
    classes or pool (``class:CLASS``, :func:`_class_units`) alerted least recently (never first; ties in a hashed
    order): through them all before any comes round again."""
    what = kind.partition(":")[2]
    units = (
        ds.universe_units.filter(pl.col("entity_kind") == what) if kind.startswith("unit:") else _class_units(ds, what)
    ).filter(pl.col("bucket").is_in(ds.scored))
    units = units.with_columns(_h=pl.concat_str("entity_kind", "entity_id").hash(seed))
    last: dict[tuple[str, str], int] = {}
    parts = []
    for b, day in enumerate(ds.scored):
        today = units.filter(pl.col("bucket") == day)
        ranked = sorted(
            zip(today["entity_kind"].to_list(), today["entity_id"].to_list(), today["_h"].to_list(), strict=True),
            key=lambda u: (last.get((u[0], u[1]), -1), u[2]),
        )[:n]
        for kind_, id_, _ in ranked:
            last[(kind_, id_)] = b
        parts.append(
            pl.DataFrame(
                {"bucket": [day] * len(ranked), "entity_kind": [u[0] for u in ranked], "entity_id": [u[1] for u in ranked]}
            )
        )
    return _frame(pl.concat(parts)) if parts else empty_alerts()


def test_blind_rotations_score_chance_on_every_scenario(
    small_suite: dict[str, Any], small_chance: dict[str, ChanceDraws], small_chance_kinds: dict[str, dict[str, ChanceDraws]]
) -> None:
    """A red team's blind detector went through the bucket's support agents and logistics staff ten a day, never one
    twice before all had had a turn, and scored 24 on the headline against a chance line of 0.1: uniform draws forget
    whom they read the day before. Rotations through each entity kind and public class now have lines of their own;
    such a rotation scores inside its own line and at most 5 points above the scenario's, as the uniform players do."""
    bars = _bars(small_chance)
    for scen in STAFF:
        points = _of(small_suite, scen)
        line = small_chance[scen]
        above_line = summary(above_chance_draws(line))
        kinds = set.intersection(*(set(rotating_kinds(truth, 10)) for _, _, truth in points))
        assert ROTATING + "employee" in kinds and ROTATING + ANY not in kinds, kinds  # thousands of units: no rotation
        for kind in sorted(kinds):
            base = kind.removeprefix(ROTATING)
            who = f"unit:{base}" if base in ENTITY_KINDS else f"class:{base}"
            raws, heads = [], []
            for seed in range(4):
                results = [
                    (scen, score_alerts(_rotation(ds, who, seed=p.seed * 10 + seed), truth, budget=10)) for p, ds, truth in points
                ]
                head = _headline_of(results, bars)
                raws.append(head["by_scenario_raw"][scen])
                heads.append(head["point"])
            own = summary(small_chance_kinds[scen][kind].detection_parts()[3])
            assert own["lo"] - 1e-9 <= float(np.mean(raws)) <= own["hi"] + 1e-9, (scen, kind, raws, own)
            assert sum(h > above_line["hi"] + 1e-9 for h in heads) <= 1, (scen, kind, heads, above_line)
            assert float(np.mean(heads)) <= 5.0, (scen, kind, heads, bars[scen])


def test_the_truth_names_the_employees_each_incidents_picking_rule_allowed(small_suite: dict[str, Any]) -> None:
    """Each staff incident's ``pool`` holds its actors and only employees its scenario could pick from the public world
    tables (one of its roles, hired a month before the span, not an earlier incident's actor; a leaver's, not only those
    leaving, which no detector sees before); the chance lines rank the pool (the forged token, which picks keys, has
    none)."""
    from simulator.scenarios import load

    for scen in (*STAFF, FORGED):
        for _p, ds, truth in _of(small_suite, scen):
            inc = ds.truth("incidents").sort("incident_id")
            emp = ds.world_table("employees")
            assert emp is not None
            start = dt.date.fromisoformat(ds.manifest["config"]["time"]["start"])
            earlier: set[int] = set()
            for row in inc.iter_rows(named=True):
                pool = set(row["pool"])
                if scen == FORGED:
                    assert not pool
                    continue
                members = emp.filter(pl.col("employee_id").is_in(sorted(pool)))
                assert set(row["actors"]) <= pool and members.height == len(pool) > len(row["actors"]), row["incident_id"]
                assert members["role"].is_in(list(load(scen).roles)).all()
                assert (members["hire_date"] < start - dt.timedelta(days=30)).all()
                assert not pool & earlier, row["incident_id"]  # nobody acts in two incidents
                earlier |= set(row["actors"])
                if load(scen).leaver:  # not the departures to come, which no detector sees: the role fit
                    assert members["termination_date"].is_null().any(), row["incident_id"]
            assert (POOL in blind_kinds(truth)) == (scen != FORGED)
            assert truth.pool.height == (0 if scen == FORGED else len(set(inc["pool"].explode().drop_nulls())))


def test_a_rotation_through_the_roles_a_scenario_draws_its_actors_from_scores_chance(
    small_suite: dict[str, Any], small_chance: dict[str, ChanceDraws], small_chance_kinds: dict[str, dict[str, ChanceDraws]]
) -> None:
    """A scenario draws its actors from a few roles (its code says which). A red team's rotation through two of them at
    once, ten a day, scored 5.4 above a chance line of 0.0 that had each role's rotation alone. The union of the classes
    that hold a scenario's actors (in any of its datasets) has lines of its own, and such a rotation scores inside them."""
    bars = _bars(small_chance)
    for scen in STAFF:
        points = _of(small_suite, scen)
        kinds = actor_class_unions(truth for _, _, truth in points)
        unions = [k for k in kinds if not k.startswith(POOL_OF)]  # the staff scenarios' actors hold two roles or more
        union = max(unions, key=lambda k: k.count("+"))
        assert union.count("+") >= 1 and {f"{union}", ROTATING + union} <= set(small_chance_kinds[scen]), union
        # every union of the roles, alone and among the employees the picking rule allowed
        roles = union.split("+")
        assert len(unions) == 2 ** len(roles) - 1 - len(roles), unions
        assert {POOL_OF + u for u in (*roles, *unions)} == set(kinds) - set(unions), kinds
        above_line = summary(above_chance_draws(small_chance[scen]))
        # the whole union, and the red team's: two of the roles among the employees the rule allowed
        for kind in (union, POOL_OF + "+".join(roles[:2])):
            raws, heads = [], []
            for seed in range(4):
                results = [
                    (scen, score_alerts(_rotation(ds, f"class:{kind}", seed=p.seed * 10 + seed), truth, budget=10))
                    for p, ds, truth in points
                ]
                head = _headline_of(results, bars)
                raws.append(head["by_scenario_raw"][scen])
                heads.append(head["point"] or 0.0)
            own = summary(small_chance_kinds[scen][ROTATING + kind].detection_parts()[3])
            assert own["lo"] - 1e-9 <= float(np.mean(raws)) <= own["hi"] + 1e-9, (scen, kind, raws, own)
            assert sum(h > above_line["hi"] + 1e-9 for h in heads) <= 1, (scen, kind, heads, above_line)
            assert float(np.mean(heads)) <= 5.0, (scen, kind, heads, bars[scen])


def test_a_rotation_reaches_a_unit_present_every_bucket_within_its_turn() -> None:
    """The simulated rotation, exactly: ``n`` units on every bucket, one of them the actor's, ``k`` read a bucket. Each
    draw reads the actor's unit in the bucket of its turn (its place in that draw's order over ``k``), never later than
    bucket ``ceil(n / k) - 1``, each of those buckets about equally often; every other read is a false alert."""
    from breachbench.chance import _Rotation

    n, k, buckets, draws = 37, 5, 12, 4000
    units = np.arange(n)
    rot = _Rotation(n, 1, [(units, np.array([0]), np.ones((1, 1)), np.zeros(0, np.int64))] * buckets)
    det, false, vflag = rot.draw(k, draws, np.random.default_rng(1))
    turns = -(-n // k)
    assert det.min() == 0 and det.max() == turns - 1
    share = np.bincount(det[:, 0], minlength=turns) / draws
    assert np.allclose(share[:-1], k / n, atol=0.025) and share[-1] == pytest.approx((n - k * (turns - 1)) / n, abs=0.025)
    # from its turn on it is read once a round (every turns - 1 or turns buckets): the false alerts are the rest
    assert (false <= buckets * k - 1).all() and (false >= buckets * k - buckets).all() and (vflag == 0).all()


def test_each_scenario_counts_above_its_highest_blind_line(small_suite: dict[str, Any]) -> None:
    """The suite's chance line per scenario is the blind ranking that reaches highest; staff scenarios: random employees."""
    per = {
        label: chance_draws_by_kind(truth, [10], draws=400, seed=p.seed) for label, (p, _, truth) in small_suite["points"].items()
    }
    scen_of = {label: p.scenario for label, (p, _, _) in small_suite["points"].items()}
    lines = chance_lines(per, scen_of, 10)["by_budget"]["10"]["by_scenario"]
    assert set(lines) == {FORGED, *STAFF}
    for s, line in lines.items():
        his = {k: v["hi"] for k, v in line["raw_by_kind"].items()}
        assert set(his) == {k for p, _, truth in _of(small_suite, s) for k in (*blind_kinds(truth), *rotating_kinds(truth, 10))}
        assert {ANY, *ENTITY_KINDS, "employee:analyst", "key:token-signing"} <= set(his)
        assert ROTATING + ("employee" if s in STAFF else "key") in his, (s, sorted(his))
        assert line["detection_score_raw"]["hi"] == max(his.values()) == his[line["kind"]], (s, line["kind"], his)
    # staff scenarios: random employees, or random employees of one role (or a rotation through them), reach higher than
    # a ranking of every unit
    assert all(
        lines[s]["kind"].removeprefix(ROTATING).partition(":")[0] in ("employee", POOL)
        and lines[s]["raw_by_kind"][ANY]["hi"]
        < lines[s]["raw_by_kind"]["employee"]["hi"]
        <= lines[s]["detection_score_raw"]["hi"]
        for s in STAFF
    )
    # one ranking's draws per budget, as chance_draws gives them, are the ranking of every unit
    plain = chance_lines({label: d[ANY] for label, d in per.items()}, scen_of, 10)["by_budget"]["10"]["by_scenario"]
    assert all(line["kind"] == ANY and set(line["raw_by_kind"]) == {ANY} for line in plain.values())
    assert plain[STAFF[0]]["detection_score_raw"] == lines[STAFF[0]]["raw_by_kind"][ANY]


def test_every_unit_of_a_class_no_bigger_than_the_budget_scores_nothing_above_chance(
    small_suite: dict[str, Any], small_chance: dict[str, ChanceDraws]
) -> None:
    """Alerting every unit of a public class each day (every token-signing key, where a world has no more of them than
    the budget) is what that class's blind ranking does in every draw: it may catch an incident at once, never above chance."""
    bars = _bars(small_chance)
    swept = []
    for scen in (*STAFF, FORGED):
        points = _of(small_suite, scen)
        for c in sorted(set.intersection(*(set(blind_kinds(t)) - set(BLIND_KINDS) for _, _, t in points))):
            units = [ds.unit_classes.filter(pl.col("class") == c, pl.col("bucket").is_in(ds.scored)) for _, ds, _ in points]
            if any(u.height == 0 or u.group_by("bucket").len()["len"].max() > 10 for u in units):
                continue
            results = [(scen, score_alerts(_frame(u), truth, budget=10)) for u, (_, _, truth) in zip(units, points, strict=True)]
            head = _headline_of(results, bars)
            swept.append((scen, c, head["by_scenario_raw"][scen]))
            # nothing above chance: 0, or no score at all where the class's blind ranking is perfect in some draws
            assert head["point"] in (0.0, None) and head["by_scenario"][scen] in (0.0, None), (scen, c, head, bars[scen])
    # the sweep a red team found: every signing key a day catches the forged-token case at once, and earns nothing
    assert any(s == FORGED and c == "key:token-signing" and raw >= 90.0 for s, c, raw in swept), swept


def test_unit_classes_are_each_days_role_and_each_keys_kind(small_suite: dict[str, Any]) -> None:
    """An employee unit's class is the role held that day (employee_roles: from start_date, until end_date), a key's its kind."""
    _, ds, _ = next(iter(small_suite["points"].values()))
    cls = ds.unit_classes
    emp = cls.filter(pl.col("entity_kind") == "employee").with_columns(employee_id=pl.col("entity_id").cast(pl.Int64))
    roles = ds.world_table("employee_roles")
    assert roles is not None
    held = emp.join(roles, on="employee_id").filter(
        (pl.col("start_date") <= pl.col("bucket")) & (pl.col("end_date").is_null() | (pl.col("bucket") < pl.col("end_date")))
    )
    assert emp.height > 100 and held.height == emp.height  # one role held that day each, and it is the class
    assert (held["class"] == "employee:" + held["role"]).all()
    keys = cls.filter(pl.col("entity_kind") == "key").join(ds.world_table("credentials"), left_on="entity_id", right_on="key_id")
    assert keys.height and (keys["class"] == "key:" + keys["kind"]).all()
    uni = ds.universe_units.filter(pl.col("entity_kind").is_in(["employee", "key"]))
    assert uni.join(cls, on=KEYS, how="anti").is_empty()  # every employee and key unit has its class


def test_above_chance_anchors() -> None:
    assert (
        above_chance(0.0, 30.0) == 0.0 and above_chance(30.0, 30.0) == 0.0 and above_chance(100.0, 30.0) == pytest.approx(100.0)
    )
    assert above_chance(65.0, 30.0) == pytest.approx(50.0)  # half the way from chance to perfect
    assert above_chance(40.0, None) == 40.0 and above_chance(None, 30.0) is None
    # where chance is already perfect, a perfect score is no more than luck: there is no score above chance
    assert above_chance(99.0, 100.0) is None and above_chance(100.0, 100.0) is None
    assert np.isnan(above_chance(np.array([100.0, 50.0, np.nan]), 100.0)).all()
    # and the headline leaves such a scenario out (the oracle stays at 100)
    perfect = DetectionParts(2, 2, 2.0, 10.0, 10.0)
    assert detection_score({"a": perfect, "b": perfect}, {"a": 100.0, "b": 30.0}) == 100.0
    assert detection_score({"a": perfect}, {"a": 100.0}) is None
    arr = above_chance(np.array([0.0, 30.0, 65.0, np.nan]), 30.0)
    assert arr[:3] == pytest.approx([0.0, 0.0, 50.0]) and np.isnan(arr[3])


def test_lotteries_never_detect_the_forged_token_case(small_suite: dict[str, Any]) -> None:
    for p, ds, truth in _of(small_suite, FORGED):
        for who in ("customer", "ip"):
            res = score_alerts(_lottery(ds, who, seed=p.seed), truth, budget=10)["overall"]
            assert res["recall_at_k"] == 0.0 and res["detection_score"] == 0.0, (p.label, who)
        if who == "customer":
            assert res["victims_flagged"] > 0  # customers it flags are victims: counted apart


# ---------------------------------------------------------------- 4. scenarios weigh equally


def test_catching_only_the_biggest_scenario_does_not_win(
    small_suite: dict[str, Any], small_chance: dict[str, ChanceDraws], tmp_path: Path
) -> None:
    """Detector A is perfect on the forged-token case only; B on both staff scenarios in every seed. (B caught them a fifth
    of the way in, until the chance lines ranked the union of the roles a scenario draws its actors from: in this world
    of 300 employees a blind rotation through them reaches 94 and 91, and catching a fifth of the way in is below it.)"""
    a_res, b_res = [], []
    for p, ds, truth in small_suite["points"].values():
        a = oracle_alerts(ds) if p.scenario == FORGED else empty_alerts()
        b = oracle_alerts(ds) if p.scenario in STAFF else empty_alerts()
        for name, alerts, into in (("a", a, a_res), ("b", b, b_res)):  # alert files, scored as `breachbench score` would
            path = tmp_path / f"{name}-{p.label}.parquet"
            alerts.write_parquet(path)
            into.append((p.scenario, score_alerts(pl.read_parquet(path), truth, budget=10)))
    bars = _bars(small_chance)
    ha, hb = _headline_of(a_res, bars), _headline_of(b_res, bars)
    assert all(r["overall"]["recall_at_k"] == 1.0 for s, r in b_res if s in STAFF)  # every seed
    assert hb["point"] > 0.0
    if bars[FORGED] >= 100.0 - 1e-9:  # every signing key a day catches the case at once: no score above chance at all
        assert ha["by_scenario"][FORGED] is None and ha["point"] == 0.0, ha  # the other scenarios: 0 above chance
    else:
        assert ha["by_scenario"][FORGED] == pytest.approx(100.0) and hb["point"] > ha["point"], (ha, hb)
    # perfect on one scenario alone counts as one scenario of those with a score above chance, however many records
    one = [(s, r) for s, r in b_res if s == STAFF[0]] + [(s, r) for s, r in a_res if s != STAFF[0]]
    h1 = _headline_of(one, bars)
    scored = [s for s, v in h1["by_scenario"].items() if v is not None]
    assert h1["by_scenario"][STAFF[0]] > 0 and h1["point"] == pytest.approx(h1["by_scenario"][STAFF[0]] / len(scored))


# ---------------------------------------------------------------- 5. harm


def test_cost_profiles_weigh_every_kind_and_are_read_once() -> None:
    profiles = cost_profiles()
    assert profiles["version"] == 2
    for name in profiles["profiles"]:
        assert set(harm_weights(name)) >= set(EXPOSURE_KINDS)
    w = harm_weights("standard")
    assert w["targeted"] > w["address_edit"] > w["address_book"] > w["my_info"] == 1.0
    before = _cost_profiles.cache_info().misses
    for _ in range(50):
        cost_profiles()
    assert _cost_profiles.cache_info().misses == before  # parsed once per process
    text = (REPO / "breachbench" / "data" / "cost_profiles.toml").read_text()
    assert "IBM Cost of a Data Breach" in text and "Driver's Privacy Protection Act" in text


def _only(truth: Truth, iid: int) -> Truth:
    """The truth of one incident of a dataset (synthetic: the dataset as if it had only that one)."""
    import dataclasses

    keep = pl.col("incident_id") == iid
    return dataclasses.replace(
        truth,
        positives=truth.positives.filter(keep),
        incidents=truth.incidents.filter(keep),
        exposure=truth.exposure.filter(keep),
        exposure_kinds=truth.exposure_kinds.filter(keep),
        reads=truth.reads.filter(keep),
    )


def test_catching_the_snooping_agent_in_its_first_week_beats_null(small_suite: dict[str, Any]) -> None:
    """One snooping agent, flagged on the seventh day of its snooping, with a full budget of false alerts every bucket: op score > 0."""
    checked = 0
    for p, ds, truth in _of(small_suite, "snooping-agent-v2"):
        noise = (
            run_detector("random", ds)
            .alerts.join(truth.actors.select(KEYS), on=KEYS, how="anti")
            .with_columns(score=pl.col("score") + 1.0)
        )
        for iid in truth.incidents["incident_id"].to_list()[:3]:
            one = _only(truth, iid)
            assert one.frame.detectable.all() and len(one.frame.ids) == 1
            lo = one.scored[int(one.frame.first[0])]
            late = one.actors.filter(pl.col("bucket") >= lo + dt.timedelta(days=6))
            res = score_alerts(pl.concat([_frame(late, score=10.0), noise]), one, budget=10, profile="standard")
            o = res["overall"]
            assert o["recall_at_k"] == 1.0 and o["false_alerts_per_bucket"] >= 9.0, o
            assert res["incidents"][0]["ttd_buckets"] <= 7
            assert o["op_score"] > 0, (p.label, iid, o["op_score"], o["harm_total"], o["false_alerts_read"])
            checked += 1
    assert checked >= 6


# ---------------------------------------------------------------- 6. stability and the printed headline


def _row(name: str, by_seed: dict[int, float], scen: str = "s") -> dict[str, Any]:
    inc = [
        {
            "scenario": scen,
            "seed": s,
            "detected": v > 0,
            "detectable": True,
            "timeliness": v,
            "harm_total": 10.0,
            "harm_perfect": 0.0,
            "harm_before_detection": 10.0 * (1 - v),
        }
        for s, v in by_seed.items()
    ]
    return {"detector": name, "status": "OK", "incidents": inc}


def test_the_detection_score_interval_resamples_datasets_then_their_incidents() -> None:
    """Two runs of one procedure that differ only in which worlds it works on (caught everything on 3 of 8 datasets, and on
    6 of 8) are not significantly apart: resampling incidents alone treated one world's incidents as independent, and a
    red team's copies of one rule, each silent on a random half of the datasets, got intervals that did not overlap. One
    dataset: its incidents resampled, as before."""
    from breachbench.stats import _incident_arrays, _score_of_sums

    def incidents(works: set[int], n: int = 6) -> list[dict[str, Any]]:
        return [
            {
                "scenario": "s",
                "seed": seed,
                "detectable": True,
                "detected": seed in works,
                "timeliness": 0.8 if seed in works else 0.0,
                "harm_total": 10.0,
                "harm_perfect": 0.0,
                "harm_before_detection": 2.0 if seed in works else 10.0,
            }
            for seed in range(1, 9)
            for _ in range(n)
        ]

    few, many = headline(incidents({1, 2, 3}), resamples=2000), headline(incidents({1, 2, 3, 4, 5, 6}), resamples=2000)
    assert few["point"] < many["point"] and few["ci"][1] > many["ci"][0], (few["ci"], many["ci"])
    flat = [{**i, "seed": 0} for i in incidents({1, 2, 3})], [{**i, "seed": 0} for i in incidents({1, 2, 3, 4, 5, 6})]
    apart = [headline(x, resamples=2000)["ci"] for x in flat]  # the same incidents as one dataset: incidents alone
    assert apart[0][1] < apart[1][0], apart
    # one dataset: exactly the incidents' own resampling
    one = [i for i in incidents({1, 2, 3}) if i["seed"] in (1, 4)]
    for i in one:
        i["seed"] = 7
    a = _incident_arrays(one)
    draws = _score_of_sums(a[np.random.default_rng(0).integers(0, len(a), (500, len(a)))].sum(axis=1))
    want = np.percentile(draws, [2.5, 97.5])
    got = headline(one, resamples=500)
    assert got["ci"] == [float(min(want[0], got["point"])), float(max(want[1], got["point"]))]


def test_split_half_rank_correlation() -> None:
    seeds = [1, 2, 3, 4]
    agree = [_row(f"d{j}", {s: j / 10 for s in seeds}) for j in range(1, 6)]
    out = split_half([*agree, _row("oracle", {s: 1.0 for s in seeds})], seeds)
    assert out["halves"] == [[1, 3], [2, 4]] and out["rho"] == pytest.approx(1.0) and "oracle" not in out["detectors"]
    flip = [_row(f"d{j}", {s: (j if s % 2 else 6 - j) / 10 for s in seeds}) for j in range(1, 6)]
    assert split_half(flip, seeds)["rho"] == pytest.approx(-1.0)
    assert split_half(agree, [1])["rho"] is None
    # detectors less than the resolution apart tie: a 0.1-point wobble is not a ranking
    wobble = [_row(f"d{j}", {s: 0.5 + (0.0002 * j if s % 2 else -0.0002 * j) for s in seeds}) for j in range(1, 6)]
    wobble += [_row("low", {s: 0.1 for s in seeds}), _row("high", {s: 0.9 for s in seeds})]
    out = split_half(wobble, seeds)
    assert out["rho_exact"] < 0.5 and out["rho"] == pytest.approx(1.0) and out["resolution"] == 1.0


def test_split_half_ranks_only_detectors_above_chance_in_a_half_each_half_above_its_own_bars() -> None:
    """A red team's thirteen blind detectors, scored against the whole run's chance bars, got 2.3 to 2.9 in one half
    (a half's blind luck reaches higher) and moved rho from 0.95 to 0.66; at 0 in both halves they would raise it."""
    seeds = [1, 2, 3, 4]
    real = [_row(f"d{j}", {s: j / 10 if s % 2 else j / 10 + (0.02 if j == 3 else 0) for s in seeds}) for j in range(3, 8)]
    base = split_half(real, seeds)
    idle = [_row(f"blind{j}", {s: 0.0 for s in seeds}) for j in range(20)]
    out = split_half([*real, *idle], seeds)
    assert out["ranked"] == [r["detector"] for r in real] and len(out["detectors"]) == 25
    assert out["rho"] == base["rho"] and out["rho_exact"] == base["rho_exact"]
    # the bars of each half: a detector at 53.3 raw in one half and 46.7 in the other is above a bar of 50 in the first only
    lucky = [_row(f"l{j}", {s: (0.3 if s % 2 else 0.2) for s in seeds}) for j in range(3)]
    per_half = split_half(lucky, seeds, chance={"s": 0.0}, half_chance=[{"s": 50.0}, {"s": 50.0}])
    assert all(x > 0 for x in per_half["scores"][0]) and all(x == 0 for x in per_half["scores"][1])
    assert split_half(lucky, seeds, chance={"s": 50.0})["scores"] == per_half["scores"]
    from breachbench.report import stability_lines

    two = split_half([*real[:2], *idle], seeds)
    assert two["rho"] is None and two["ranked"] == ["d3", "d4"]
    assert "n/a (fewer than three detectors above chance in a half)" in stability_lines({"stability": two})[0]


def test_results_v3_carry_chance_stability_and_headline(tiny_run: dict[str, Any], repo_root: Path) -> None:
    import jsonschema

    payload = json.loads(Path(tiny_run["results"]).read_text())
    schema = json.loads((repo_root / "breachbench" / "data" / "results.schema.json").read_text())
    jsonschema.validate(payload, schema)
    assert payload["schema_version"] == 3
    line = payload["chance"]["by_budget"][str(payload["budget"])]["overall"]
    spread = line["detection_score"]
    # the tiny run's one scenario has no score above chance (chance bar 100), so neither has its chance line
    assert spread["lo"] <= spread["mean"] <= spread["hi"] if spread["mean"] is not None else set(spread.values()) == {None}
    assert payload["chance"]["draws"] >= 200 and set(payload["chance"]["by_budget"]) == {str(k) for k in payload["budgets"]}
    assert set(payload["stability"]) == {"halves", "detectors", "scores", "ranked", "resolution", "rho", "rho_exact"}
    scored = [r for r in payload["results"] if r["status"] == "OK" and r["detection_score"] is not None]
    assert bool(payload["headline"]["top"]) == bool(scored) and len(payload["headline"]["widths"]) == len(
        payload["headline"]["top"]
    )
    for row in payload["results"]:
        if row["status"] == "OK" and row["detection_score"] is not None:
            lo, hi = row["ci"]["detection_score"]
            assert lo <= row["detection_score"] <= hi
    bad = copy.deepcopy(payload)
    bad.pop("chance")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


def test_printed_leaderboard_has_headline_chance_and_stability(tiny_run: dict[str, Any]) -> None:
    from rich.console import Console

    payload = json.loads(Path(tiny_run["results"]).read_text())
    payload["stability"]["rho"] = 0.9  # the tiny run has one seed; the line must show a value when there is one
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # a wide terminal: the table must not need it
    print_leaderboard(payload["results"], "tiny", console, payload)
    text = console.export_text()
    assert "detection score" in text and "chance (blind)" in text
    assert "split-half rank correlation" in text and "0.90" in text
    # the tiny run's one scenario has no score above chance (its chance bar is 100): the table says why, not a ranking
    assert "detection score: none (-) at this budget" in text and "interval widths" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    order = [
        line.split()[0]
        for line in text.splitlines()
        if line.strip() and line.split()[0] in {r["detector"] for r in payload["results"]}
    ]
    assert order[0] == "oracle" and order.index("unissued-token-v1") < order.index("null")
    from breachbench.report import stability_lines

    scored = copy.deepcopy(payload)
    scored["headline"] |= {"top": ["a-v1", "b-v1", "c-v1"], "widths": [4.2, None, 7.7]}
    lines = stability_lines(scored)
    assert "detection score 95% interval widths, top 3 (target: at most 10 points):" in lines
    assert "  a-v1: 4.2" in lines and "  b-v1: -" in lines


# ---------------------------------------------------------------- 7. compare reads v2 and v3


def test_compare_reads_v2_and_v3(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    v3 = json.loads(Path(tiny_run["results"]).read_text())
    same = _compare(tmp_path, v3, v3, "--metric", "detection_score")
    assert same.returncode == 0, same.stderr
    assert "detection_score" in same.stdout
    # the tiny run has no score above chance (its one scenario's chance bar is 100: the compare above read nulls);
    # give the compared row one, and take five points off it
    next(r for r in v3["results"] if r["detector"] == "unissued-token-v1")["detection_score"] = 40.0
    worse = copy.deepcopy(v3)
    row = next(r for r in worse["results"] if r["detector"] == "unissued-token-v1")
    row["detection_score"] -= 5
    bad = _compare(tmp_path, v3, worse, "--metric", "detection_score", "--tolerance", "1")
    assert bad.returncode == 1 and "unissued-token-v1" in bad.stderr
    v2 = copy.deepcopy(v3) | {"schema_version": 2}
    assert _compare(tmp_path, v2, v2).returncode == 0  # two v2 files still compare
    mixed = _compare(tmp_path, v2, v3)
    assert mixed.returncode == 2 and "Traceback" not in mixed.stderr
    assert len(mixed.stderr.strip().splitlines()) == 1 and "schema_version" in mixed.stderr and "actor units" in mixed.stderr
    v2_metric = _compare(tmp_path, v2, v2, "--metric", "detection_score")
    assert v2_metric.returncode == 2 and "detection_score" in v2_metric.stderr


def test_a_blind_ranking_of_the_actors_classes_has_no_lift(small_suite: dict[str, Any]) -> None:
    """Lift divides by the blind ranking that reaches highest, not by a ranking of every unit: random scores for every
    unit of a public class, of the classes that hold a scenario's actors, or of one entity kind know nothing about the
    attack, and their pooled lift stays near 1 or below (a red team's random scores for the four staff roles' employees
    had a lift of 3.3 against a ranking of every unit, above the honest rule-off-hours-bulk-v1's 2.8)."""
    from breachbench.chance import _ranked_units
    from breachbench.stats import aggregate

    unions = {s: actor_class_unions(truth for _, _, truth in _of(small_suite, s)) for s in (FORGED, *STAFF)}
    players = {
        "union": lambda p, truth: unions[p.scenario][0] if unions[p.scenario] else "employee",
        "analysts": lambda p, truth: "employee:analyst",
        "employees": lambda p, truth: "employee",
        "signing keys": lambda p, truth: "key:token-signing",
    }
    against_every_unit = {}
    for name, kind_of in players.items():
        runs = []
        for i, (p, _, truth) in enumerate(small_suite["points"].values()):
            units = _ranked_units(truth, kind_of(p, truth)).select(KEYS).unique()
            alerts = units.with_columns(
                score=pl.concat_str(pl.col("bucket").cast(pl.String), "entity_id").hash(i).cast(pl.Float64),
                reason=pl.lit(None, pl.String),
            ).select(ALERTS.names())
            runs.append(score_alerts(alerts.cast(ALERTS), truth, budget=10))
        pooled = aggregate(runs)
        assert pooled["lift"] == pytest.approx(pooled["auprc"] / pooled["chance_auprc_blind"]), name
        assert pooled["lift"] < 1.3, (name, pooled["lift"])
        against_every_unit[name] = pooled["auprc"] / pooled["chance_auprc"]
    assert max(against_every_unit.values()) > 2.0, against_every_unit  # what a ranking of every unit would have given them
