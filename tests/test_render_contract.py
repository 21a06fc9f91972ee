"""The contract of rendered rows: strict schema, customers who exist, ids in signup order, and helpers that draw like benign traffic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from simulator import layout, schema
from simulator.errors import ScenarioError
from simulator.scenarios import registry
from simulator.scenarios.checks import CHECK_WORLD
from simulator.scenarios.insiders import SnoopingAgent
from simulator.staff_traffic import ticket_numbers, ticket_ordinal, ticket_starts


def _admin_row(**over: object) -> pl.DataFrame:
    row = {
        "ts": [1_743_465_600_000_000],
        "employee_id": [3],
        "customer_id": [5],
        "row_count": [1],
        "action": ["view"],
        "channel": ["console"],
        "ticket_id": [None],
        "ip": [0xCB007105],
        "country": ["KR"],
        "device": ["LT-00003"],
        "phase": ["p"],
    }
    row.update(over)
    return pl.DataFrame(row)


def test_check_rendered_accepts_a_complete_row() -> None:
    out = schema.check_rendered("admin", _admin_row(), "test")
    assert out.schema["employee_id"] == pl.Int64 and out.schema["row_count"] == pl.Int64


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        (_admin_row().rename({"ip": "src_ip"}).with_columns(pl.lit("203.0.113.5").alias("src_ip")), "src_ip"),
        (_admin_row().drop("device"), "device"),
        (_admin_row(employee_id=["emp-3"]), "admin.employee_id"),
        (_admin_row(country=[None]), "country"),
        (_admin_row().with_columns(pl.lit(1).alias("user_agent")), "user_agent"),
    ],
    ids=["src_ip-text", "missing-device", "text-for-id", "null-required", "unknown-column"],
)
def test_check_rendered_names_the_bad_column(frame: pl.DataFrame, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        schema.check_rendered("admin", frame, "test")


def _sim(dataset):
    import json

    from simulator import layout
    from simulator.config import SimConfig

    return SimConfig.model_validate(json.loads((dataset / layout.MANIFEST).read_text())["config"])


def test_customer_ids_follow_signup_order(tiny_dataset) -> None:
    from simulator import layout
    from simulator.world import signed_up

    cust = pl.read_parquet(layout.world_glob(tiny_dataset, "customers")).sort("customer_id")
    assert (cust["signup_date"].diff().drop_nulls().dt.total_days() >= 0).all()
    sim = _sim(tiny_dataset)
    assert cust["signup_date"].max() > sim.time.start, "some customers sign up during the span"
    for day in (0, sim.time.days // 2, sim.time.days - 1):
        date = sim.time.start + dt.timedelta(days=day)
        assert signed_up(sim, day) == cust.filter(pl.col("signup_date") <= date).height


class ReadsTheUnborn(SnoopingAgent):
    """Reads customers who have not signed up yet: the engine must refuse it."""

    id = "bad-reads-unborn-v1"

    def render_staff(self, plan, cfg, day_index, sd):
        out = super().render_staff(plan, cfg, day_index, sd)
        if "admin" in out:
            out["admin"] = out["admin"].with_columns(pl.lit(cfg.world.customers - 1, pl.Int64).alias("customer_id"))
        return out


def test_engine_refuses_reads_before_signup(tmp_path, tiny_config) -> None:
    from simulator.config import ScenarioSpec
    from simulator.engine import generate
    from simulator.world import signed_up

    sim = tiny_config.sim()
    sim = sim.model_copy(
        update={"scenarios": [ScenarioSpec(id="test_render_contract:ReadsTheUnborn", knobs={"start_offset": 0})]}
    )
    assert signed_up(sim, sim.time.warmup_days) < sim.world.customers, "the tiny world must have customers who sign up later"
    with pytest.raises(ScenarioError, match="do not exist on that day"):
        generate(sim, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


class PastMidnight(SnoopingAgent):
    """Moves its rows a day on (a night session rendered past midnight, left in the day it was rendered for): the engine
    must refuse it."""

    id = "bad-past-midnight-v1"

    def render_staff(self, plan, cfg, day_index, sd):
        out = super().render_staff(plan, cfg, day_index, sd)
        if "admin" in out and out["admin"].height:
            out["admin"] = out["admin"].with_columns(pl.col("ts").cast(pl.Int64) + 86_400_000_000)
        return out


class BeforeMidnight(SnoopingAgent):
    """Puts its first row of a day one microsecond before the day's local midnight: the engine must refuse it."""

    id = "bad-before-midnight-v1"

    def render_staff(self, plan, cfg, day_index, sd):
        out = super().render_staff(plan, cfg, day_index, sd)
        if "admin" in out and out["admin"].height:
            first = pl.int_range(pl.len()) == 0
            out["admin"] = out["admin"].with_columns(ts=pl.when(first).then(pl.lit(sd.t0 - 1, pl.Int64)).otherwise("ts"))
        return out


@pytest.mark.parametrize("name", ["PastMidnight", "BeforeMidnight"])
def test_engine_refuses_rows_outside_the_day_they_were_rendered_for(tmp_path, tiny_config, name: str) -> None:
    """A row of another date would sit in the partition of the day it was rendered for, where no benign row lies (a red
    team's night rows a day on: a rule "local date is not the partition's" flagged 76% of them and no benign row)."""
    from simulator.config import ScenarioSpec
    from simulator.engine import generate

    sim = tiny_config.sim().model_copy(
        update={"scenarios": [ScenarioSpec(id=f"test_render_contract:{name}", knobs={"start_offset": 0})]}
    )
    with pytest.raises(ScenarioError, match=r"admin rows have a ts outside 20\d\d-\d\d-\d\d \(.*\), the day they were rendered"):
        generate(sim, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_staff_day_helpers_draw_like_benign(tiny_dataset) -> None:
    """Session, tickets and customers of a scenario's helpers carry what the same employee's benign rows carry."""
    from simulator import layout
    from simulator.benign import plan_benign
    from simulator.engine import staff_day_context, staff_tables
    from simulator.pools import ip_strings

    sim = _sim(tiny_dataset)
    day = sim.time.warmup_days + 1
    sd = staff_day_context(sim, tiny_dataset, day, plan_benign(sim, staff_tables(tiny_dataset)))
    date = sim.time.start + dt.timedelta(days=day)
    admin = pl.read_parquet(layout.log_file(tiny_dataset, "admin", date, schema.STAFF_BLOCK))
    agents = (
        admin.filter(pl.col("ticket_id").is_not_null() & (pl.col("channel") == "console"))
        .group_by("employee_id")
        .len()
        .sort("len", descending=True)
    )
    emp = int(agents["employee_id"][0])
    mine = admin.filter(pl.col("employee_id") == emp)
    r = np.random.default_rng(0)
    s = sd.session(emp, r)
    assert ip_strings(np.array([s.ip]))[0] in set(mine["src_ip"])  # the same address as their reads of the day
    assert s.device in set(mine["device"])
    own = mine.filter(pl.col("ticket_id").is_not_null())
    routine = sorted(set(ticket_ordinal(own["ticket_id"].to_numpy(), sim.root).tolist()))
    reads = int(sd.work.reads[sd._at_work(emp)])
    everyone = np.full(reads + 50, emp)
    whole = ticket_numbers(ticket_starts(sim.root, sd.day_index, everyone, np.arange(reads + 50)), everyone)
    assert whole[reads - 1] >= max(routine)  # the routine's last ticket (untied opens use up their place too)
    # from another session: new tickets, numbered on after the agent's routine tickets of the day (no gap, no reuse)
    added = sd.tickets(emp, [50], [False])
    got = ticket_ordinal(added, sim.root)
    assert got[0] == whole[reads - 1] + 1 and set(np.diff(got).tolist()) <= {0, 1}
    assert not set(added.tolist()) & set(own["ticket_id"].to_list())
    assert {int(t) >> 16 for t in added} == {int(t) >> 16 for t in own["ticket_id"]}  # the agent's kind, day and id
    # from the routine session: the tickets a day with 50 more routine opens has (the first may join the last one)
    cont = ticket_ordinal(sd.tickets(emp, [50], [True]), sim.root)
    assert cont.tolist() == whole[reads:].tolist()
    # sessions in any order: the routine session's opens go on from the routine, each other session starts its own
    mixed = ticket_ordinal(sd.tickets(emp, [7, 5, 9], [False, True, False]), sim.root)
    assert mixed[7:12].tolist() == whole[reads : reads + 5].tolist()
    assert mixed[0] > mixed[11] and mixed[12] > mixed[6]  # no ticket spans two sessions
    sizes = own.group_by("ticket_id").len()["len"]
    assert sizes.min() == 1 and sizes.max() >= 3  # tickets of one, two, three or more opens, as contacts come
    assert (sd.customers(1000, r) < sd.customers_signed_up).all()


def test_added_opens_do_not_go_on_with_a_ticket_late_work_moved(tiny_dataset) -> None:
    """When late work moved the routine's last ticket to a night session (another address), the routine session's
    added opens start a ticket of their own: going on with it made a ticket of two places, which no benign ticket is
    (a red team found 2 such tickets in 480 incidents, precision 1)."""
    import dataclasses

    from simulator.benign import plan_benign
    from simulator.engine import staff_day_context, staff_tables
    from simulator.staff_traffic import ticket_ids

    sim = _sim(tiny_dataset)
    day = sim.time.warmup_days + 1
    sd = staff_day_context(sim, tiny_dataset, day, plan_benign(sim, staff_tables(tiny_dataset)))
    goes_on = 0
    for k in range(len(sd.work.who)):
        emp, reads = int(sd.staff.ids[sd.work.who[k]]), int(sd.work.reads[k])
        if reads == 0:
            continue
        everyone = np.full(reads, emp)
        last = ticket_numbers(ticket_starts(sim.root, day, everyone, np.arange(reads)), everyone)[-1:]
        tid = int(ticket_ids("contact", day, emp, last, sim.root)[0])
        before = sd.tickets(emp, [6], [True])
        if int(before[0]) != tid:  # the process starts a new ticket here anyway
            continue
        goes_on += 1
        after = dataclasses.replace(sd, late_tickets=frozenset({tid})).tickets(emp, [6], [True])
        assert tid not in set(after.tolist()), (emp, before, after)
        # the ticket count of the day stays that of a day with as many routine opens where it can (the next start dropped)
        assert len(set(after.tolist())) <= len(set(before.tolist())) + 1
        assert dataclasses.replace(sd, late_tickets=frozenset({tid + 1})).tickets(emp, [6], [True]).tolist() == before.tolist()
    assert goes_on >= 3


def test_customer_world_for_plans(tiny_dataset) -> None:
    from simulator.errors import SimulationError
    from simulator.world import CustomerWorld

    sim = _sim(tiny_dataset)
    w = CustomerWorld(sim, tiny_dataset)
    assert w.signed_up(0) <= w.signed_up(sim.time.days - 1) <= sim.world.customers
    addr = w.table("addresses").collect()
    shared = (
        addr.group_by("address")
        .agg(pl.col("customer_id").n_unique().alias("n"))
        .sort("n", "address", descending=[True, False])
        .row(0)[0]
    )
    residents = w.residents(shared, sim.time.days - 1)
    assert set(residents.tolist()) == set(addr.filter(pl.col("address") == shared)["customer_id"].to_list())
    with pytest.raises(SimulationError, match="unknown table 'truth'"):
        w.table("truth")


STAFF_SCENARIOS = sorted(k for k, v in registry().items() if v.startswith("simulator.scenarios.insiders:"))


@pytest.fixture(scope="module")
def every_staff_scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """One clean check world with every staff scenario at its default knobs, and again at stealth 0 and 1: the logs."""
    from simulator.config import SimConfig
    from simulator.engine import generate

    frames: dict[str, list[pl.DataFrame]] = {"admin": [], "auth": []}
    for stealth in (None, 0.0, 1.0):
        knobs = {} if stealth is None else {"stealth": stealth}
        world = CHECK_WORLD | {"world": CHECK_WORLD["world"] | {"employees": 900}}
        cfg = SimConfig.model_validate(world | {"scenarios": [{"id": sid, "knobs": knobs} for sid in STAFF_SCENARIOS]})
        out = generate(cfg, tmp_path_factory.mktemp("staff") / "ds", workers=1)
        mal = pl.read_parquet(layout.truth_file(out, "malicious_events")).select("event_id", attack=pl.lit(True))
        for stream in frames:
            logs = pl.concat([pl.read_parquet(f) for f in sorted((out / "logs" / stream).rglob("*.parquet"))])
            frames[stream].append(
                logs.join(mal, on="event_id", how="left").with_columns(
                    pl.col("attack").fill_null(False), world=pl.lit(-1.0 if stealth is None else stealth)
                )
            )
    return {s: pl.concat(v) for s, v in frames.items()}


def test_attack_tickets_are_ticketed_as_routine_reads(every_staff_scenario: dict[str, pl.DataFrame]) -> None:
    """Contact tickets with attack opens have the sizes routine ones have, no export ticket serves two pulls, and an
    attack day has the tickets a routine day with as many opens has."""
    admin = every_staff_scenario["admin"].filter(pl.col("ticket_id").is_not_null())
    assert admin.filter(pl.col("attack")).height > 200
    kind = pl.col("ticket_id") // (1 << 56)
    per = admin.group_by("world", "ticket_id").agg(rows=pl.len(), attack=pl.col("attack").any(), kind=kind.first())
    contact, export = per.filter(pl.col("kind") == 0), per.filter(pl.col("kind") == 1)
    att, ben = contact.filter(pl.col("attack"))["rows"], contact.filter(~pl.col("attack"))["rows"]
    assert att.len() > 100 and att.max() <= ben.max(), (att.describe(), ben.describe())
    # sizes at stealth 1, where no scenario declares a ticket signal: below it, opens left without a ticket (declared
    # no_ticket) keep their place in the count, and an attack ticket holds fewer ticketed opens (1.34 against 1.73 at
    # default knobs, where the pooled means stood 0.29 and then 0.31 apart as the actors drawn changed)
    quiet = contact.filter(pl.col("world") == 1.0)
    att1, ben1 = quiet.filter(pl.col("attack"))["rows"], quiet.filter(~pl.col("attack"))["rows"]
    assert att1.len() > 60 and abs(att1.mean() - ben1.mean()) < 0.3, (att1.describe(), ben1.describe())
    assert export.filter(pl.col("attack")).height > 0 and export["rows"].max() == 1, export.sort("rows").tail(5)
    # Per employee-day at stealth 1 (no ticket signal declared): contact tickets per ticketed open. Added opens once
    # paired on fresh tickets after the routine's, so a day could hold more tickets than its opens allow a routine
    # day (a red-team rule on that ranked actors at AUC up to 0.93). On this world's 23 attack days the z-test alone
    # does not tell the old numbering from the new (the size comparison above does: with the old one attack tickets
    # averaged 1.35 opens, benign ones 1.88); on the artefact audit's check world at stealth 1, tickets per open gave
    # AUC 0.50 over six seeds (0.61 over three seeds with the old one).
    day = (pl.col("ticket_id") // (1 << 40)) % (1 << 16)
    days = (
        admin.filter((kind == 0) & (pl.col("world") == 1.0))
        .group_by("employee_id", day.alias("day"))
        .agg(n=pl.len(), t=pl.col("ticket_id").n_unique(), attack=pl.col("attack").any())
        .filter(pl.col("n") >= 10)
        .with_columns(rate=(pl.col("t") - 1) / (pl.col("n") - 1))
    )
    a, b = days.filter(pl.col("attack"))["rate"].to_numpy(), days.filter(~pl.col("attack"))["rate"].to_numpy()
    z = (a.mean() - b.mean()) / (b.std() / np.sqrt(len(a)))
    assert len(a) >= 20 and abs(z) < 3, (len(a), z)
    # a contact ticket's opens come from one session: one address, one device
    spread = (
        admin.filter(kind == 0)
        .group_by("world", "ticket_id")
        .agg(pl.col("src_ip").n_unique().alias("ips"), pl.col("device").n_unique().alias("devs"))
    )
    assert spread["ips"].max() == 1 and spread["devs"].max() == 1, spread.filter((pl.col("ips") > 1) | (pl.col("devs") > 1))
    # an employee's export tickets of a day are numbered 0, 1, ... whoever made them: no gap, no number past the count
    ex = admin.filter(kind == 1)
    ex = ex.with_columns(
        seq=pl.Series(ticket_ordinal(ex["ticket_id"].to_numpy(), CHECK_WORLD["seed"])),  # the shuffle undone
        day=pl.col("ticket_id") // (1 << 40) % (1 << 16),
    )
    dense = ex.group_by("world", "employee_id", "day").agg(n=pl.len(), top=pl.col("seq").max(), attack=pl.col("attack").any())
    assert dense.filter(pl.col("attack")).height > 0 and (dense["top"] == dense["n"] - 1).all(), dense.filter(
        pl.col("top") != pl.col("n") - 1
    )


def test_attack_logins_are_timed_as_routine_logins(every_staff_scenario: dict[str, pl.DataFrame]) -> None:
    """No two logins at the same microsecond, and no login at a fixed offset before a row of its account."""
    auth, admin = every_staff_scenario["auth"], every_staff_scenario["admin"]
    logins = auth.filter(pl.col("event") == "employee_login")
    assert logins.filter(pl.col("attack")).height > 20
    same = logins.group_by("world", "ts").len().filter(pl.col("len") > 1)
    assert same.height == 0, same
    # a login opens a session whose rows fall anywhere in it: none lies exactly a minute (or a second, or
    # the same microsecond) after its login
    for gap_s in (0, 1, 60):
        at = logins.select("world", "employee_id", ts=pl.col("ts") + pl.duration(seconds=gap_s))
        hit = admin.join(at, on=["world", "employee_id", "ts"], how="semi")
        assert hit.height == 0, (gap_s, hit.select("world", "employee_id", "ts", "attack"))


def test_a_second_login_of_the_day_is_routine(every_staff_scenario: dict[str, pl.DataFrame]) -> None:
    """Employees log in again later in the day now and then, so a second login does not mark an attack's account
    (until data version 9 no benign employee ever logged in twice a day): among employee-days with more than one
    login, the benign ones far outnumber those with attack rows."""
    logins = every_staff_scenario["auth"].filter(pl.col("event") == "employee_login")
    day = pl.col("ts").dt.convert_time_zone("Asia/Seoul").dt.date().alias("day")
    per = logins.group_by("world", "employee_id", day).agg(n=pl.len(), attack=pl.col("attack").any())
    multi = per.filter(pl.col("n") > 1)
    attack, benign = multi.filter(pl.col("attack")).height, multi.filter(~pl.col("attack")).height
    assert attack > 0 and benign > 3 * attack, (attack, benign)


def test_a_night_login_before_night_reads_is_routine(every_staff_scenario: dict[str, pl.DataFrame]) -> None:
    """An attack's night session opens with a login in the small hours; so do the on-call engineer's (since data
    version 10: before, the on-call reads came without one, and benign nights like that were 40 to the attacks' 24)
    and night-shift relogins. Among employee-nights whose small-hours reads follow a login of that night, the benign
    ones outnumber those with attack rows at least twice in every world."""
    auth, admin = every_staff_scenario["auth"], every_staff_scenario["admin"]
    local = pl.col("ts").dt.convert_time_zone("Asia/Seoul")
    night = [local.dt.date().alias("day"), (local.dt.hour() < 6).alias("night")]
    logins = auth.filter(pl.col("event") == "employee_login").with_columns(night).filter("night")
    reads = admin.filter(pl.col("employee_id").is_not_null()).with_columns(night).filter("night")
    per = reads.group_by("world", "employee_id", "day").agg(pl.col("attack").any(), first=pl.col("ts").min())
    opened = per.join(
        logins.select("world", "employee_id", "day", login=pl.col("ts")), on=["world", "employee_id", "day"]
    ).filter(pl.col("login") < pl.col("first"))
    counts = (
        opened.unique(["world", "employee_id", "day"])
        .group_by("world")
        .agg(attack=pl.col("attack").sum(), benign=(~pl.col("attack")).sum())
    )
    assert counts["attack"].sum() > 0, counts
    assert (counts["benign"] >= 2 * counts["attack"]).all(), counts
