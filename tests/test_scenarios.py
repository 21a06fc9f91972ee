"""The attack library: every scenario's conformance, truth, knobs, prevalence, leakage and stealth.

The leakage and stealth-ladder tests generate one dataset per (scenario, stealth, seed) in the
world of ``configs/stealth-ladder.toml`` made smaller (:data:`LADDER_WORLD`: 6,000 customers and 800
employees instead of 20,000 and 2,000; 19 days), two at a time in spawned processes (the function
below is importable from here because pytest puts the tests directory on ``sys.path``, which spawned
children inherit). Each rung holds :data:`RUNG_INCIDENTS` incidents of its scenario (``count``), where the config
has one per seed: more incidents from fewer worlds, since a world, not an incident, is what costs. The leak verdict
audits a scenario's default knobs on :data:`AUDIT_SEEDS`, as many incidents each; on the rungs' seed that is the rung
at the default stealth (44 worlds in all; 55 when the audit had worlds of its own, two incidents each). Both
properties hold on the full ladder world too; the smaller one takes 40% less time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from simulator import layout
from simulator.config import SimConfig
from simulator.errors import SimulationError
from simulator.scenarios import load, registry
from simulator.scenarios.checks import CHECK_WORLD, ScenarioCheckError, check_scenario

REPO = Path(__file__).resolve().parent.parent
LADDER = REPO / "configs" / "stealth-ladder.toml"
LADDER_WORLD = ["world.customers=6000", "world.employees=800"]  # the ladder's world, smaller (see the docstring)
CATALOGUE = [
    "coupang-forged-token-v3",
    "bulk-export-before-departure-v2",
    "snooping-agent-v2",
    "compromised-employee-v3",
    "slow-drip-analyst-v2",
    "privilege-misuse-v3",
    "classic-after-hours-theft-v2",
    "classic-job-hunt-theft-v2",
    "classic-admin-impersonation-v3",
    "classic-colleague-mailout-v3",
    "classic-layoff-survivor-upload-v2",
]
RULES_AND_STATS = [
    "rule-departed-owner-key-v1",
    "rule-stale-key-v1",
    "rule-new-country-v1",
    "rule-after-termination-v1",
    "rule-no-ticket-reads-v1",
    "rule-off-hours-bulk-v1",
    "stat-own-history-v1",
    "stat-peer-group-v1",
    "stat-sequential-sweep-v1",
    "stat-ip-rotation-v1",
]
STEALTH = (0.0, 0.5, 1.0)
LADDER_SEEDS = (1,)  # the rungs' seed
# the leak verdict pools a scenario's seeds, as the report does. In this smaller world one seed is not enough: the job
# hunt's biggest pull reached 89-99% of the oracle on four of seeds 1-6 and 17-55% on the other two (four incidents
# each; pooled over the six: 81%), where the full ladder world's 2,000 employees pull more (two incidents each, seeds
# 1-4: 93, 47, 54, 64%)
AUDIT_SEEDS = (1, 2)
# incidents per rung: with two, one scenario's mean over the ten detectors moved by 0.05 from one draw of actors to the
# next (the job hunt's stealth 0 over seeds 1-4: 0.17, 0.25, 0.15, 0.12), as much as the ladder's step, and a new data
# version's actors had its middle rung 0.06 above its bottom one; a world, not an incident, is what costs
RUNG_INCIDENTS = 4
FORGED_INCIDENTS = 2  # the forged-token case's: the ladder world has two orphaned signing keys


def test_catalogue_is_registered() -> None:
    assert set(CATALOGUE) <= set(registry())


def test_scenarios_list_shows_every_id_with_knobs_and_summary() -> None:
    proc = subprocess.run([sys.executable, "-m", "breachbench", "scenarios", "list"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for sid in CATALOGUE:
        cls = load(sid)
        block = proc.stdout.split(sid, 1)[1].split("\n\n", 1)[0]
        assert cls.summary.split()[0] in block, sid
        for knob in cls.Knobs.model_fields:
            assert knob in block, (sid, knob)
    assert "stealth" in proc.stdout and "easy on purpose" in proc.stdout


# ---- conformance ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def check_pool() -> Iterator[Executor]:
    """One two-process pool for the determinism checks of the registered scenarios (started once, not per check)."""
    from simulator.engine import make_executor

    with make_executor(2) as pool:
        yield pool


@pytest.mark.slow
@pytest.mark.parametrize("sid", sorted(set(CATALOGUE) | set(registry())))
def test_check_scenario_passes_for_every_registered_scenario(sid: str, tmp_path: Path, check_pool: Executor) -> None:
    results = check_scenario(sid, workdir=tmp_path, pool=check_pool)
    assert {r.check for r in results} == {
        "interface",
        "determinism",
        "truth_complete",
        "exposure",
        "window",
        "incidents",
        "employment",
    }


def test_check_scenario_passes_with_extortion_and_prevalence(tmp_path: Path, check_pool: Executor) -> None:
    check_scenario(
        "coupang-forged-token-v3",
        knobs={"extortion": True, "bulk_days": 3, "start_offset": 1, "probe_days": 1},
        workdir=tmp_path,
        pool=check_pool,
    )
    check_scenario("snooping-agent-v2", knobs={"actors": 2}, count=3, workdir=tmp_path, pool=check_pool)


@pytest.mark.parametrize(
    ("name", "failing"),
    [
        ("StartsEarly", "window"),
        ("Nondeterministic", "determinism"),
        ("UnexposedPulls", "exposure"),
        ("ActsAfterLeaving", "employment"),
        ("BadId", "interface"),
    ],
)
def test_check_scenario_fails_a_broken_scenario(name: str, failing: str, tmp_path: Path) -> None:
    import bad_scenarios

    cls = getattr(bad_scenarios, name)
    with pytest.raises(ScenarioCheckError, match=failing) as err:
        check_scenario(cls, workdir=tmp_path)
    failed = {r.check for r in err.value.results if not r.passed}
    assert failing in failed, err.value.results


def test_check_scenario_without_raising_returns_the_failures(tmp_path: Path) -> None:
    import bad_scenarios

    results = check_scenario(bad_scenarios.BadId, workdir=tmp_path, raise_on_failure=False)
    assert [(r.check, r.passed) for r in results] == [("interface", False)]


# ---- truth, knobs and prevalence -------------------------------------------------------------


def _small(scenarios: list[dict[str, Any]], **over: Any) -> SimConfig:
    return SimConfig.model_validate(CHECK_WORLD | {"scenarios": scenarios} | over)


@pytest.fixture(scope="module")
def prevalence_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.engine import generate

    cfg = _small(
        [
            {"id": "slow-drip-analyst-v2", "count": 2},
            {"id": "snooping-agent-v2", "count": 3, "knobs": {"actors": 2}},
            {"id": "coupang-forged-token-v3", "knobs": {"start_offset": 1, "probe_days": 1, "bulk_days": 4, "extortion": True}},
        ]
    )
    return generate(cfg, tmp_path_factory.mktemp("prev") / "ds")


def _network(col: str) -> pl.Expr:
    """The address block each address of ``col`` is drawn from (an office, VPN, broadband, mobile, residential or cloud range)."""
    from simulator import pools
    from simulator.staff_traffic import OFFICE_NET, VPN_NET

    blocks = [("office", OFFICE_NET[0], OFFICE_NET[1]), ("vpn", VPN_NET[0], VPN_NET[1])]
    for name in ("KR_FIXED", "KR_MOBILE", "FOREIGN_RESIDENTIAL", "FOREIGN_CLOUD"):
        p = getattr(pools, name)
        blocks += [(f"{name}:{i}", int(b), int(n)) for i, (b, n) in enumerate(zip(p.base, p.size, strict=True))]
    o = pl.col(col).str.split(".").list.eval(pl.element().cast(pl.Int64))
    ip = o.list.get(0) * 2**24 + o.list.get(1) * 2**16 + o.list.get(2) * 2**8 + o.list.get(3)
    expr = pl.lit("other")
    for name, base, size in reversed(blocks):
        expr = pl.when((ip >= base) & (ip < base + size)).then(pl.lit(name)).otherwise(expr)
    return expr


def test_attack_rows_carry_no_country_benign_rows_lack_where_no_origin_is_declared(tmp_path: Path) -> None:
    """At stealth 1 no scenario declares a foreign origin: every country on an attack row shows on benign rows of its
    stream too, also in a world outside Korea (the forged-token case's domestic proxies said "KR" in a New York
    world: precision 1 for the rule country == "KR")."""
    from simulator.engine import generate

    knobs = {"stealth": 1.0}
    cfg = _small(
        [
            {"id": "coupang-forged-token-v3", "knobs": {**knobs, "start_offset": 1, "probe_days": 2}},
            {"id": "compromised-employee-v3", "knobs": knobs},
        ],
        time=CHECK_WORLD["time"] | {"timezone": "America/New_York"},
    )
    out = generate(cfg, tmp_path / "ny")
    mal = pl.read_parquet(layout.truth_file(out, "malicious_events")).select("event_id", attack=pl.lit(True))
    for stream in ("gateway", "auth", "admin"):
        logs = pl.concat([pl.read_parquet(f) for f in (out / "logs" / stream).rglob("*.parquet")]).join(
            mal, on="event_id", how="left"
        )
        if "country" not in logs.columns:
            continue
        att = set(logs.filter(pl.col("attack").is_not_null())["country"].drop_nulls().unique().to_list())
        ben = set(logs.filter(pl.col("attack").is_null())["country"].drop_nulls().unique().to_list())
        assert att and att <= ben, (stream, att - ben)


def test_staff_attack_rows_come_from_networks_benign_staff_use(tmp_path: Path) -> None:
    """Every network a staff scenario's domestic rows come from (at stealth 0.5, every registered staff scenario),
    benign staff rows come from too: a takeover's domestic mobile address was on a network no employee used, and a red
    team's rule "an employee on a network outside the office's and the VPN's" scored 100 on compromised-employee-v3.
    Rows abroad are a declared origin."""
    from simulator.engine import generate

    staff_ids = sorted(sid for sid in set(CATALOGUE) | set(registry()) if sid != "coupang-forged-token-v3")
    cfg = _small([{"id": sid, "knobs": {"stealth": 0.5}} for sid in staff_ids])
    out = generate(cfg, tmp_path / "ds")
    mal = pl.read_parquet(layout.truth_file(out, "malicious_events")).select("event_id", attack=pl.lit(True))
    for stream in ("auth", "admin"):
        logs = pl.concat([pl.read_parquet(f) for f in (out / "logs" / stream).rglob("*.parquet")]).join(
            mal, on="event_id", how="left"
        )
        staff = logs.filter(pl.col("employee_id").is_not_null() & (pl.col("country") == "KR"))
        staff = staff.with_columns(_net=_network("src_ip"))
        att = set(staff.filter(pl.col("attack").is_not_null())["_net"].unique().to_list())
        ben = set(staff.filter(pl.col("attack").is_null())["_net"].unique().to_list())
        assert att and att <= ben, (stream, att - ben)
        assert any(n.startswith("KR_MOBILE") for n in att), att  # the takeover's hotspot days: the case in point


def test_prevalence_gives_many_incidents_with_distinct_actors(prevalence_ds: Path) -> None:
    inc = pl.read_parquet(layout.truth_file(prevalence_ds, "incidents")).sort("incident_id")
    assert inc["scenario"].to_list() == ["slow-drip-analyst-v2"] * 2 + ["snooping-agent-v2"] * 3 + ["coupang-forged-token-v3"]
    assert inc["incident_id"].to_list() == list(range(6))
    actors = [a for row in inc["actors"].to_list() for a in row]
    assert len(actors) == 2 + 3 * 2 + 1 and len(set(actors)) == len(actors)  # nobody acts in two incidents
    ev = pl.read_parquet(layout.truth_file(prevalence_ds, "malicious_events"))
    assert sorted(ev["incident_id"].unique().to_list()) == list(range(6))
    # each snooping actor's rows are in the admin stream under their own id
    admin = pl.concat([pl.read_parquet(f) for f in (prevalence_ds / "logs" / "admin").rglob("*.parquet")])
    snoop = admin.join(ev.filter(pl.col("incident_id").is_between(2, 4)).select("event_id", "incident_id"), on="event_id")
    for row in inc.filter(pl.col("scenario") == "snooping-agent-v2").iter_rows(named=True):
        who = set(snoop.filter(pl.col("incident_id") == row["incident_id"])["employee_id"].unique().to_list())
        assert who == set(row["actors"]), row


def test_extortion_mail_ends_the_forged_token_incident(prevalence_ds: Path) -> None:
    ev = pl.read_parquet(layout.truth_file(prevalence_ds, "malicious_events")).filter(pl.col("incident_id") == 5)
    inc = pl.read_parquet(layout.truth_file(prevalence_ds, "incidents")).filter(pl.col("incident_id") == 5).row(0, named=True)
    mail = ev.filter(pl.col("phase") == "extortion")
    assert mail.height == 1 and mail["stream"].item() == "hr"
    assert mail["ts"].item() == ev["ts"].max() == inc["end"]  # nothing after the e-mail
    first = CHECK_WORLD["time"]["warmup_days"] + 1  # start_offset 1, then 1 day of probing and 4 of bulk
    assert inc["phases"] == f"probe:{first}-{first + 1};bulk:{first + 1}-{first + 5};extortion:{first + 5}-{first + 6}"
    hr = pl.concat([pl.read_parquet(f) for f in (prevalence_ds / "logs" / "hr").rglob("*.parquet")])
    assert hr.join(mail.select("event_id"), on="event_id")["event"].to_list() == ["extortion_email"]
    assert set(ev["phase"].unique().to_list()) == {"probe", "bulk", "extortion"}


def test_bulk_pulls_expose_customers_the_logs_do_not_name(prevalence_ds: Path) -> None:
    ev = pl.read_parquet(layout.truth_file(prevalence_ds, "malicious_events"))
    expo = pl.read_parquet(layout.truth_file(prevalence_ds, "exposure"))
    admin = pl.concat([pl.read_parquet(f) for f in (prevalence_ds / "logs" / "admin").rglob("*.parquet")])
    assert not [c for c in admin.columns if c.startswith("_")]  # hidden columns never reach the logs
    drip = admin.join(ev.filter(pl.col("incident_id") < 2).select("event_id", "incident_id"), on="event_id")
    pulls = drip.filter(pl.col("customer_id").is_null())
    assert pulls.height > 0 and pulls["row_count"].min() >= 1
    # a pull's rows are exposed: at least as many customers as the largest pull, first read at a pull's time, or at
    # a single read's for the customers the drip also opened one by one (a stealthy analyst's odd single read)
    mine = expo.filter(pl.col("incident_id") < 2)
    assert mine.height >= pulls.group_by("incident_id").agg(pl.col("row_count").max())["row_count"].min()
    singles = drip.filter(pl.col("customer_id").is_not_null())
    by_pull = mine.join(singles.select("incident_id", "customer_id").unique(), on=["incident_id", "customer_id"], how="anti")
    assert by_pull.height > 0 and set(by_pull["first_ts"].unique().to_list()) <= set(pulls["ts"].to_list())
    assert set(mine["first_ts"].unique().to_list()) <= set(drip["ts"].to_list())
    # each exposed customer is counted once per incident and kind of record (one read singly and in a pull: twice)
    assert mine.select("incident_id", "customer_id", "kind").n_unique() == mine.height


def test_attack_rows_come_from_people_whose_role_does_that_work_that_day(tmp_path: Path) -> None:
    """Every staff scenario's rows (admin, auth) name people in one role through the span, the role their
    benign rows carry, and only roles whose benign people have rows in that stream on the span's days.

    An actor picked by ``employees.role`` (the role at the span's start) who moved to the legal team
    mid-span read records as a role that never does: a shortcut with precision 1. Role changes are
    made a hundred times as common here (eight a person-year), so that about one person in eight
    changes role during the span and the rule is tested, not met by luck.
    """
    from simulator.engine import generate

    staff_ids = [sid for sid in CATALOGUE if sid != "coupang-forged-token-v3"]
    cfg = _small(
        [{"id": sid, "count": 2} for sid in staff_ids],
        world=CHECK_WORLD["world"] | {"employees": 800, "role_change_rate": 8.0},
    )
    out = generate(cfg, tmp_path / "ds")
    tz = ZoneInfo(cfg.time.timezone)
    roles = pl.read_parquet(layout.world_file(out, "employee_roles", 0))
    record = pl.read_parquet(layout.world_file(out, "employees", 0)).select("employee_id", pl.col("role").alias("of_record"))
    span = (pl.col("start_date") < cfg.time.end) & (pl.col("end_date").is_null() | (pl.col("end_date") > cfg.time.start))
    changed = roles.filter(span).group_by("employee_id").len().filter(pl.col("len") > 1).height
    assert changed > 60, changed  # the rule has people to refuse
    ev = pl.read_parquet(layout.truth_file(out, "malicious_events")).select("event_id")
    for stream in ("admin", "auth"):
        rows = pl.concat([pl.read_parquet(f) for f in (out / "logs" / stream).rglob("*.parquet")]).filter(
            pl.col("employee_id").is_not_null()
        )
        rows = rows.with_columns(
            _day=pl.col("ts").dt.convert_time_zone(str(tz)).dt.date(), _attack=pl.col("event_id").is_in(ev["event_id"].implode())
        )
        day_role = (
            rows.select("employee_id", "_day")
            .unique()
            .join(roles, on="employee_id")
            .filter(
                (pl.col("start_date") <= pl.col("_day")) & (pl.col("end_date").is_null() | (pl.col("_day") < pl.col("end_date")))
            )
            .select("employee_id", "_day", "role")
        )
        rows = rows.join(day_role, on=["employee_id", "_day"], how="left").join(record, on="employee_id", how="left")
        att, ben = rows.filter(pl.col("_attack")), rows.filter(~pl.col("_attack"))
        assert att.height > 20, stream
        moved = att.filter(pl.col("role").is_null() | (pl.col("role") != pl.col("of_record")))
        assert moved.height == 0, (stream, moved.select("employee_id", "_day", "role", "of_record").unique().head(5))
        unseen = set(att["role"].unique().to_list()) - set(ben["role"].drop_nulls().unique().to_list())
        assert not unseen, (stream, unseen)


def test_no_ticket_comes_from_two_places_when_incidents_crowd_the_staff(tmp_path: Path) -> None:
    """An employee's ticket's rows come from one address and device, also where many incidents share a small staff.

    Two incidents that used one colleague's account (or one's colleague the other's actor) numbered the account's
    tickets of a day each on their own: one ticket id came from the impersonator's session and from the colleague's
    own, an exact rule no benign ticket meets (a red team flagged 12 of 48 impersonation incidents at default knobs).
    Here every staff scenario, six incidents of each scenario with colleagues (three of two actors) and two of each other, in a staff of 800."""
    from simulator.engine import generate

    staff_ids = sorted(sid for sid in set(CATALOGUE) | set(registry()) if sid != "coupang-forged-token-v3")
    pairs = {sid for sid in staff_ids if getattr(load(sid)(), "_needs_colleague", lambda: False)()}
    assert len(pairs) >= 2
    # six incidents of each with colleagues (two actors in half of them), two of the others
    entries = [{"id": sid, "count": 3, "knobs": {"actors": 2}} for sid in sorted(pairs)]
    entries += [{"id": sid, "count": 3 if sid in pairs else 2} for sid in staff_ids]
    out = generate(_small(entries, world=CHECK_WORLD["world"] | {"employees": 800}), tmp_path / "ds")
    admin = pl.concat([pl.read_parquet(f) for f in (out / "logs" / "admin").rglob("*.parquet")])
    mal = pl.read_parquet(layout.truth_file(out, "malicious_events")).select("event_id", "incident_id")
    from simulator.staff_traffic import TICKET_KINDS

    # an employee's own tickets (a contact's opens, an export); a migration or campaign ticket is many people's
    own = pl.col("ticket_id") // (1 << 56) <= max(TICKET_KINDS["contact"], TICKET_KINDS["export"])
    places = (
        admin.filter(pl.col("ticket_id").is_not_null() & own)
        .join(mal, on="event_id", how="left")
        .group_by("ticket_id")
        .agg(pl.struct("src_ip", "device").n_unique().alias("places"), pl.col("incident_id").unique().drop_nulls())
    )
    assert places.height > 1000, places.height
    spread = places.filter(pl.col("places") > 1)
    assert spread.is_empty(), spread.head(5)


def test_stealth_changes_the_rows_and_defaults_are_the_declared_ones(tmp_path: Path) -> None:
    from simulator.engine import generate

    def admin_rows(stealth: float) -> pl.DataFrame:
        out = generate(_small([{"id": "compromised-employee-v3", "knobs": {"stealth": stealth}}]), tmp_path / f"s{stealth}")
        ev = pl.read_parquet(layout.truth_file(out, "malicious_events"))
        admin = pl.concat([pl.read_parquet(f) for f in (out / "logs" / "admin").rglob("*.parquet")])
        return admin.join(ev.select("event_id"), on="event_id")

    blatant, quiet = admin_rows(0.0), admin_rows(1.0)
    assert blatant.height > 2 * quiet.height  # fewer reads
    assert (blatant["country"] != "KR").all() and (quiet["country"] == "KR").all()  # abroad from day one vs a domestic address
    assert blatant["ticket_id"].null_count() == blatant.height and quiet["ticket_id"].null_count() < quiet.height / 2
    assert load("compromised-employee-v3").Knobs().stealth == 0.5


def test_bad_knob_and_impossible_prevalence_are_clear_errors(tmp_path: Path) -> None:
    from breachbench.config import ConfigError, validate
    from simulator.engine import generate

    with pytest.raises(ConfigError, match=r"scenarios\.0\.knobs\.stealth.*1\.5"):
        validate({"name": "x", "scenarios": [{"id": "snooping-agent-v2", "knobs": {"stealth": 1.5}}]})
    cfg = _small([{"id": "classic-admin-impersonation-v3", "count": 500}])
    with pytest.raises(
        SimulationError, match=r"classic-admin-impersonation-v3.*actors=1.*only 0 active employees fit.*count=500.*lower count"
    ):
        generate(cfg, tmp_path / "too-many")
    assert not (tmp_path / "too-many").exists()


def test_a_colleague_stays_employed_through_the_window() -> None:
    """The colleague whose account or machine a scenario uses is employed on every day of the window.

    Benign employees have no rows from their last day on, so rows on a departed colleague's account were an
    exact rule (a red team found one such day in 240 incidents). Here a world where people leave at four
    times a year, so that a colleague drawn regardless would often be leaving.
    """
    import datetime as dt

    from breachbench.config import load_config
    from simulator.world import staff

    cfg = load_config(LADDER, ["world.attrition={default = 4.0}"]).sim()
    st = staff(cfg)
    term = dict(zip(st["employees"]["employee_id"].to_list(), st["employees"]["termination_date"].to_list(), strict=True))
    window_end = cfg.time.start + dt.timedelta(days=cfg.time.days)
    leaving = sum(1 for d in term.values() if d is not None and cfg.time.start <= d < window_end)
    assert leaving > 10  # leavers to draw by mistake
    with_colleagues = [sid for sid in sorted(registry()) if getattr(load(sid)(), "_needs_colleague", lambda: False)()]
    assert len(with_colleagues) >= 2
    for sid in with_colleagues:
        cls = load(sid)
        knobs = cls.Knobs(duration_days=12)
        for inc in range(150):
            plan = cls().plan(cfg, st, inc, knobs)
            last = cfg.time.start + dt.timedelta(days=plan.end_day)
            gone = [c for c in plan.colleagues if term[c] is not None and term[c] < last]
            assert not gone, (sid, inc, gone, [term[c] for c in gone], last)


def test_scenarios_of_one_world_pick_their_actors_apart() -> None:
    """Two scenarios whose actors come from one pool (support agents and logistics staff) pick them on their own.

    Actor picks were keyed by the incident's number alone: in one world (the datasets of a seed, public seeds) the
    snooping agent's and the privilege misuser's incidents had the very same actors, and a detector that remembered
    the employees flagged in one dataset caught the other's incidents (14 of 30, above chance) from memory alone."""
    from breachbench.config import load_config
    from simulator.world import staff

    cfg = load_config(LADDER).sim()
    st = staff(cfg)
    picks = {}
    for sid in sorted(registry()):
        cls = load(sid)
        if sid == "coupang-forged-token-v3" or cls.leaver or cls.layoff_team:
            continue
        picks[sid] = [cls().plan(cfg, st, inc, cls.Knobs()).actors for inc in range(12)]
    same = {
        (a, b): sum(x == y for x, y in zip(picks[a], picks[b], strict=True))
        for a in picks
        for b in picks
        if a < b and set(load(a).roles) & set(load(b).roles)
    }
    assert len(same) >= 2 and max(same.values()) <= 2, same


def test_no_attack_row_falls_outside_its_accounts_employment(tmp_path: Path) -> None:
    """No attack row on an account, or by an actor, from the day its holder is gone (or before the hire).

    Benign employees have no rows from their last day on, so such a row is an exact rule that no scenario outside
    the leavers declares. A non-leaver actor may leave during the window; blatant actors also come in on days off,
    and did on the days after leaving. Here every non-leaver staff scenario at stealth 0 in a world where people
    leave at 4.5 times a year, with at least one actor leaving during the window.
    """
    from breachbench.config import load_config
    from breachbench.dataset import Dataset
    from simulator.engine import generate

    # 3,000 staff: an incident's colleague acts in no other, and the few analysts that fit ran out at 2,000
    cfg = load_config(
        LADDER,
        ["world.attrition={default = 4.5}", "world.customers=3000", "world.employees=3000", "traffic.daily_active_fraction=0.02"],
    )
    entries = []
    for sid in sorted(registry()):
        cls = load(sid)
        if sid == "coupang-forged-token-v3" or cls.leaver:
            continue
        knobs: dict[str, Any] = {"stealth": 0.0, "start_offset": 1}
        if "duration_days" in cls.Knobs.model_fields:
            knobs["duration_days"] = 13
        entries.append(
            cfg.scenarios[0].model_copy(update={"id": sid, "label": sid, "knobs": knobs, "count": 1 if "admin" in sid else 3})
        )
    assert len(entries) >= 5
    ds = Dataset.open(generate(cfg.sim().model_copy(update={"seed": 2, "scenarios": entries}), tmp_path / "ds", workers=1))
    emp = pl.read_parquet(layout.world_glob(ds.root, "employees")).select("employee_id", "hire_date", "termination_date")
    # the window's end from the phase layout ("name:first-end;..." in day indices): the truth's end is the last row
    inc = ds.truth("incidents").with_columns(
        _end=pl.lit(cfg.time.start)
        + pl.duration(
            days=pl.col("phases").str.extract_all(r"-(\d+)").list.eval(pl.element().str.slice(1).cast(pl.Int64)).list.max()
        )
    )
    actors = inc.select("incident_id", "_end", pl.col("actors").alias("_actor")).explode("_actor")
    left = actors.join(emp, left_on="_actor", right_on="employee_id").filter(pl.col("termination_date") < pl.col("_end"))
    assert left.height, "no actor leaves during the window: the test would prove nothing"
    mal = ds.truth("malicious_events")
    for stream in ("admin", "auth"):
        rows = (
            ds.scan(stream)
            .select("event_id", "ts", "employee_id")
            .collect()
            .join(mal.filter(pl.col("stream") == stream).select("event_id", "incident_id"), on="event_id")
            .with_columns(_date=pl.col("ts").dt.convert_time_zone(ds.timezone).dt.date())
            .join(actors.select("incident_id", "_actor"), on="incident_id")
        )
        assert rows.height
        for who in ("employee_id", "_actor"):
            gone = rows.join(emp, left_on=who, right_on="employee_id").filter(
                (pl.col("_date") < pl.col("hire_date")) | (pl.col("_date") >= pl.col("termination_date"))
            )
            assert gone.is_empty(), (stream, who, gone.head(3))


# ---- leakage and the stealth ladder -------------------------------------------------------------


def _case(args: tuple[str, float, int, str, bool, bool]) -> dict[str, Any]:
    """Generate one (scenario, stealth, seed) rung of the ladder world (:data:`RUNG_INCIDENTS` incidents); audit it
    (``do_audit``), score the rules and statistics on it (``do_detect``) or both."""
    sid, stealth, seed, root, do_audit, do_detect = args
    from breachbench.audit import audit
    from breachbench.config import load_config
    from breachbench.dataset import Dataset
    from breachbench.runner import run_detector
    from breachbench.scoring import Truth, score_alerts
    from simulator.engine import generate

    cfg = load_config(LADDER, LADDER_WORLD)
    spec = next(s for s in cfg.scenarios if s.id == sid)
    knobs = dict(spec.knobs)
    if stealth < 0:
        knobs.pop("stealth", None)  # the scenario's default
    else:
        knobs["stealth"] = stealth
    count = FORGED_INCIDENTS if sid == "coupang-forged-token-v3" else RUNG_INCIDENTS
    entry = spec.model_copy(update={"knobs": knobs, "count": count})
    sim = cfg.sim().model_copy(update={"seed": seed, "scenarios": [entry]})
    ds = Dataset.open(generate(sim, Path(root) / f"{sid}-{stealth}-{seed}-{int(do_audit)}", workers=1))
    truth = Truth.of(ds)
    out: dict[str, Any] = {"sid": sid, "stealth": stealth, "seed": seed}
    if do_audit:
        out["audit"] = audit(ds, truth, cfg.detection.budget)
    if do_detect:
        out["detect"] = {}
        for det in RULES_AND_STATS:
            run = run_detector(det, ds)
            assert run.status == "OK", (det, run.error)
            m = score_alerts(run.alerts, truth, budget=cfg.detection.budget)["overall"]
            out["detect"][det] = m["exposure_prevented"] or 0.0
    return out


def _default_stealth(sid: str) -> float:
    return float(load(sid).Knobs().stealth)


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every rung of the ladder on its seeds (scored), and default knobs on the audit seeds (audited): on a rungs' seed,
    the rung at the default stealth is both."""
    root = str(tmp_path_factory.mktemp("ladder"))
    cases = []
    for seed in LADDER_SEEDS:
        for sid in CATALOGUE:
            default = _default_stealth(sid)
            assert default in STEALTH, (sid, default)  # else the audit would need a world of its own on this seed
            cases += [(sid, -1.0 if s == default else s, seed, root, seed in AUDIT_SEEDS and s == default, True) for s in STEALTH]
    cases += [(sid, -1.0, seed, root, True, False) for seed in AUDIT_SEEDS if seed not in LADDER_SEEDS for sid in CATALOGUE]
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as ex:
        out = list(ex.map(_case, cases))
    for c in out:
        if c["stealth"] < 0:
            c["stealth"] = _default_stealth(c["sid"])
    return out


@pytest.mark.slow
def test_no_shortcut_reaches_the_leak_line_at_default_knobs(ladder: list[dict[str, Any]]) -> None:
    from breachbench.audit import LEAK_SHARE, pooled

    audited = [c for c in ladder if "audit" in c]
    assert len(audited) == len(AUDIT_SEEDS) * len(CATALOGUE)
    leaks, easy = [], set()
    for sid in CATALOGUE:
        cls = load(sid)
        reason = cls().declared_easy(cls.Knobs())
        runs = [c["audit"] for c in audited if c["sid"] == sid]
        for row in pooled(runs):
            assert row["declared_easy"] == (f"{sid}: {reason}" if reason else None)
            if row["leaks"]:
                (easy.add(sid) if reason else leaks.append((sid, row["shortcut"], round(row["op_score"], 1), row["per_dataset"])))
    assert not leaks, f"shortcuts at >= {LEAK_SHARE:.0%} of the oracle, pooled over seeds {AUDIT_SEEDS}: {leaks}"
    assert easy == {"coupang-forged-token-v3"}  # the declared-easy case does leak, as declared


@pytest.mark.slow
def test_rule_and_stat_detectors_lose_detection_as_stealth_rises(ladder: list[dict[str, Any]]) -> None:
    scored = [c for c in ladder if "detect" in c]
    assert len(scored) == len(LADDER_SEEDS) * len(CATALOGUE) * len(STEALTH)

    def mean(cases: list[dict[str, Any]]) -> float:
        return float(np.mean([v for c in cases for v in c["detect"].values()]))

    # the trend over the ladder, pooled over scenarios, seeds and detectors: strictly falling
    pooled = {s: mean([c for c in scored if c["stealth"] == s]) for s in STEALTH}
    assert pooled[0.0] > pooled[0.5] > pooled[1.0], pooled
    assert pooled[1.0] < 0.7 * pooled[0.0], (
        pooled
    )  # most of these detectors watch the gateway, so the means are low; the fall is not
    # per staff scenario (four incidents): the detectors catch less at the top of the ladder, and no more in
    # the middle than at the bottom (within 0.05: a few incidents are noisy there)
    staff = [sid for sid in CATALOGUE if sid != "coupang-forged-token-v3"]  # the case is declared easy: its key gives it away
    per = {sid: {s: mean([c for c in scored if c["sid"] == sid and c["stealth"] == s]) for s in STEALTH} for sid in staff}
    rising = [
        sid for sid in staff if not (per[sid][1.0] < per[sid][0.5] <= per[sid][0.0] + 0.05 and per[sid][1.0] < per[sid][0.0])
    ]
    assert not rising, {sid: per[sid] for sid in rising}
    # and at stealth 0 some rule or statistic catches every staff scenario before most of its records are out
    best = {
        sid: float(np.mean([max(c["detect"].values()) for c in scored if c["sid"] == sid and c["stealth"] == 0.0]))
        for sid in staff
    }
    assert min(best.values()) > 0.5, best


# ---- alerts from any program, scored against this truth ------------------------------------------


def test_external_alerts_are_scored_against_staff_truth(prevalence_ds: Path, tmp_path: Path) -> None:
    """Alerts written by another program (plain polars here) naming the snooping actors, through `breachbench score`."""
    inc = pl.read_parquet(layout.truth_file(prevalence_ds, "incidents"))
    snoopers = inc.filter(pl.col("scenario") == "snooping-agent-v2")
    first = snoopers.sort("start").row(0, named=True)
    start_day = first["start"].astimezone(ZoneInfo(CHECK_WORLD.get("time", {}).get("timezone", "Asia/Seoul"))).date()
    alerts = pl.DataFrame(
        {
            "bucket": [start_day] * len(first["actors"]),
            "entity_kind": ["employee"] * len(first["actors"]),
            "entity_id": [str(a) for a in first["actors"]],
            "score": [1.0] * len(first["actors"]),
        }
    )
    path = tmp_path / "alerts.parquet"
    alerts.write_parquet(path)
    proc = subprocess.run(
        [sys.executable, "-m", "breachbench", "score", str(prevalence_ds), str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    by_id = {i["incident_id"]: i for i in res["incidents"]}
    assert len(by_id) == inc.height
    caught = by_id[first["incident_id"]]
    assert caught["detected"] and caught["ttd_buckets"] == 0 and caught["exposed_before_detection"] == caught["exposed_perfect"]
    assert sum(i["detected"] for i in res["incidents"]) == 1  # the other incidents' actors were not named
    # a file another program got wrong: the error names the column
    alerts.drop("entity_kind").write_parquet(path)
    bad = subprocess.run(
        [sys.executable, "-m", "breachbench", "score", str(prevalence_ds), str(path)], capture_output=True, text=True, check=False
    )
    assert (
        bad.returncode == 2 and "missing column" in bad.stderr and "entity_kind" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_scenarios_check_cli_names_the_failed_check() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # --no-audit: the artefact audit (three incidents in one check world, a few seconds of CPU) is not what this
    # test is about; test_artefact_audit_passes_for_every_registered_scenario runs the same audit on every scenario
    proc = subprocess.run(
        [sys.executable, "-m", "breachbench", "scenarios", "check", "bad_scenarios:StartsEarly", "--no-audit"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"window\s+FAIL", proc.stdout) and "before its start" in proc.stdout
    assert re.search(r"determinism\s+ok", proc.stdout)
    assert "artefacts" not in proc.stdout  # --no-audit is honoured
    unknown = subprocess.run(
        [sys.executable, "-m", "breachbench", "scenarios", "check", "no-such-v1"], capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 2 and "unknown scenario 'no-such-v1'" in unknown.stderr and "Traceback" not in unknown.stderr


# ---- the artefact audit over the catalogue (issue 12) --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sid", sorted(set(CATALOGUE) | set(registry())))
def test_artefact_audit_passes_for_every_registered_scenario(sid: str, tmp_path: Path) -> None:
    """No undeclared difference and the classifier near chance without the declared signals (small world, three
    incidents)."""
    from breachbench.artefacts import CHECK_AUDIT_INCIDENTS, CHECK_AUDIT_SEED, check_audit

    lines: list[str] = []
    res = check_audit(sid, workdir=tmp_path, progress=lines.append)
    assert res.passed, "\n".join(res.problems)
    # the built-in scenarios fit three incidents in one world: no fallback to three seeds
    assert res.seeds == (CHECK_AUDIT_SEED,) and not [x for x in lines if "instead" in x], lines
    assert any(f"({CHECK_AUDIT_INCIDENTS} incidents)" in x for x in lines), lines


def test_the_check_audit_takes_one_incident_a_seed_where_the_world_holds_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A scenario whose second incident cannot be planned in the check world is audited one incident on each of three
    seeds, and the progress says so (the pooled audit itself is the one every scenario gets, not run again here)."""
    import breachbench.artefacts as art

    calls: list[tuple[Any, int]] = []
    real = art.audit_scenarios

    def spy(ids: list[str], **kw: Any) -> Any:
        calls.append((tuple(kw["seeds"]), kw.get("count", 1)))
        return real(ids, **kw) if kw.get("count", 1) > 1 else ["pooled"]

    monkeypatch.setattr(art, "audit_scenarios", spy)
    lines: list[str] = []
    assert art.check_audit("bad_scenarios:OneAWorld", workdir=tmp_path, progress=lines.append) == "pooled"
    assert calls == [((art.CHECK_AUDIT_SEED,), art.CHECK_AUDIT_INCIDENTS), (art.CHECK_AUDIT_SEEDS, 1)]
    assert [x for x in lines if "does not hold 3 incidents" in x and "one incident a world" in x and "seeds 5, 6, 7 instead" in x]
    assert not list(tmp_path.iterdir())  # the failed generation left nothing
