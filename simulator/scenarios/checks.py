"""Conformance checks for scenarios (gymnasium's ``check_env``, for attacks).

``check_scenario(target)`` generates a small world with the scenario at its default knobs (or
the knobs given), with collection faults off so that every rendered row reaches the logs, and
checks that:

* ``interface``: a versioned ``id`` (``name-vN``), a one-line ``summary``, a ``Knobs`` model
  that builds with no arguments, and ``plan``, ``render``, ``window``, ``phases``;
* ``determinism``: a second generation with another worker count and shard size gives the
  same bytes (every log file and every truth table);
* ``truth_complete``: every malicious row the scenario renders is in the truth, once, and every
  event of the truth is in the logs;
* ``exposure``: exposure is consistent with the events: one row per (incident, customer), each
  first read at the time of one of the incident's events; every customer a malicious row
  read (a page that returned records, a single-record admin read) is exposed no later than it;
  and its reads add up to the records the malicious rows read (bulk pulls: their row counts);
* ``window``: no malicious event before the day the scenario says it starts, nor after its end;
* ``incidents``: one incident per planned one, with its actors and phases, and every event's
  phase among them;
* ``employment``: every malicious row that carries an employee's account (admin rows, employee
  logins) falls on a day its holder is employed, hired and not yet gone: benign accounts have no
  rows outside their holder's employment, so such a row would be a rule no scenario declares.

``target`` is a registered id, ``"module:attr"``, or a class. Failures raise
:class:`ScenarioCheckError` listing every failed check.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from concurrent.futures import Executor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from simulator import layout, schema
from simulator.config import SimConfig
from simulator.plugins import CheckResult
from simulator.scenarios import load, registry

CHECKS = ("interface", "determinism", "truth_complete", "exposure", "window", "incidents", "employment")

#: The check world: small, quick, faults off, enough staff for every role to have people.
CHECK_WORLD: dict[str, Any] = {
    "seed": 5,
    "world": {"customers": 1500, "employees": 400, "block_size": 1000},
    "time": {"start": "2025-04-01", "end": "2025-04-15", "warmup_days": 4},
    "logs": {"missing_rate": 0.0, "duplicate_rate": 0.0, "late_rate": 0.0},
}

VERSIONED = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-v[0-9]+$")


class ScenarioCheckError(AssertionError):
    """A scenario failed one or more conformance checks; the message lists them, ``results`` holds every check's result."""

    def __init__(self, message: str, results: list[CheckResult] | None = None) -> None:
        super().__init__(message)
        self.results: list[CheckResult] = list(results or [])


def _target(target: str | type) -> tuple[str, type[Any]]:  # any class with the scenario interface
    """(scenario id for the config, class)."""
    if isinstance(target, str):
        return target, load(target)
    return f"{target.__module__}:{target.__qualname__}", target


def check_scenario(
    target: str | type,
    *,
    knobs: dict[str, Any] | None = None,
    count: int = 1,
    checks: tuple[str, ...] = CHECKS,
    workdir: str | Path | None = None,
    raise_on_failure: bool = True,
    pool: Executor | None = None,
) -> list[CheckResult]:
    """Run the conformance checks on one scenario; see the module docstring.

    Args:
        target: registered id, ``"module:attr"``, or the class itself.
        knobs: knobs for the check world (default: the scenario's defaults).
        count: incidents of the scenario in the check world.
        checks: which checks to run (all by default).
        workdir: where the two check datasets go (a temporary directory by default).
        raise_on_failure: raise :class:`ScenarioCheckError` when any check fails.
        pool: an open two-worker executor (``simulator.engine.make_executor(2)``) for the second
            generation of the determinism check, instead of starting two processes for it (checking
            many scenarios in one process starts them once).
    """
    from simulator.engine import generate, plan_incidents, staff_tables  # the engine imports this package
    from simulator.world import CustomerWorld

    sid, cls = _target(target)
    results: list[CheckResult] = []
    if "interface" in checks:
        results.append(_interface(cls))
        if not results[-1].passed:
            return _finish(results, raise_on_failure)
    cfg = SimConfig.model_validate(CHECK_WORLD | {"scenarios": [{"id": sid, "knobs": knobs or {}, "count": count}]})
    tmp = Path(tempfile.mkdtemp(prefix="scenario-check-", dir=workdir))
    try:
        try:
            a = generate(cfg, tmp / "a", workers=1)
        except Exception as exc:  # report, do not crash the check run
            results.append(CheckResult("generate", False, f"generation failed: {type(exc).__name__}: {exc}"))
            return _finish(results, raise_on_failure)
        staff: dict[str, Any] = staff_tables(a)
        plans = plan_incidents(
            cfg, staff | {"customers": CustomerWorld(cfg, a)}, [(cfg.scenarios[0], cls, cls.Knobs(**(knobs or {})))]
        )
        truth = {t: pl.read_parquet(layout.truth_file(a, t)) for t in ("incidents", "malicious_events", "exposure")}
        logs = {s: _logs(a, s) for s in schema.LOG_STREAMS}
        if "determinism" in checks:
            b = generate(cfg, tmp / "b", workers=2, shard_size=cfg.world.block_size, pool=pool)
            results.append(_determinism(a, b))
        if "truth_complete" in checks:
            results.append(_truth_complete(cfg, a, cls, plans, truth["malicious_events"], logs))
        if "exposure" in checks:
            results.append(_exposure(truth, logs))
        if "window" in checks:
            results.append(_window(cfg, cls, plans, truth["malicious_events"]))
        if "incidents" in checks:
            results.append(_incidents(cls, plans, truth))
        if "employment" in checks:
            results.append(_employment(cfg, staff["employees"], truth["malicious_events"], logs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _finish(results, raise_on_failure)


def _finish(results: list[CheckResult], raise_on_failure: bool) -> list[CheckResult]:
    failed = [r for r in results if not r.passed]
    if failed and raise_on_failure:
        raise ScenarioCheckError("; ".join(f"{r.check}: {r.message}" for r in failed), results)
    return results


def _logs(root: Path, stream: str) -> pl.DataFrame:
    files = sorted((root / "logs" / stream).rglob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame(schema=schema.LOG_STREAMS[stream])


def _interface(cls: type[Any]) -> CheckResult:
    problems = []
    sid = getattr(cls, "id", None)
    if not isinstance(sid, str) or not VERSIONED.match(sid):
        problems.append(f"id {sid!r} is not a versioned id like 'name-v1'")
    summary = getattr(cls, "summary", None)
    if not isinstance(summary, str) or not summary.strip() or "\n" in summary:
        problems.append("summary must be one non-empty line")
    try:
        cls.Knobs()
    except Exception as exc:
        problems.append(f"Knobs() does not build with its defaults: {exc}")
    for name in ("plan", "render", "window", "phases"):
        if not callable(getattr(cls, name, None)):
            problems.append(f"no {name}() method")
    return CheckResult("interface", not problems, "; ".join(problems))


def _determinism(a: Path, b: Path) -> CheckResult:
    ma, mb = (json.loads((p / layout.MANIFEST).read_text()) for p in (a, b))
    diff = [f["path"] for f, g in zip(ma["files"] + ma["truth"], mb["files"] + mb["truth"], strict=False) if f != g]
    if len(ma["files"]) + len(ma["truth"]) != len(mb["files"]) + len(mb["truth"]):
        diff.append("(different file lists)")
    return CheckResult(
        "determinism", not diff, f"output differs between runs with 1 and 2 workers: {', '.join(diff[:5])}" if diff else ""
    )


def _rendered_counts(cfg: SimConfig, root: Path, cls: type, plans: list[tuple[str, Any]]) -> dict[tuple[int, str], int]:
    """Rows the scenario renders, per (incident, stream), rendered again from the plans."""
    from simulator.benign import plan_benign
    from simulator.engine import customer_block, staff_day_context, staff_tables
    from simulator.world import block_count

    out: dict[tuple[int, str], int] = {}
    scen = cls()
    benign = plan_benign(cfg, staff_tables(root))
    for _, plan in plans:
        for day in range(cfg.time.days):
            frames = []
            for block in range(block_count(cfg)):
                frames.append(scen.render(plan, cfg, day, block, customer_block(cfg, root, block)))
            if hasattr(scen, "render_staff"):
                frames.append(scen.render_staff(plan, cfg, day, staff_day_context(cfg, root, day, benign)))
            for f in frames:
                for stream, df in f.items():
                    if df is not None:
                        out[(plan.incident_id, stream)] = out.get((plan.incident_id, stream), 0) + df.height
    return out


def _truth_complete(
    cfg: SimConfig, root: Path, cls: type, plans: list, events: pl.DataFrame, logs: dict[str, pl.DataFrame]
) -> CheckResult:
    problems = []
    want = {k: v for k, v in _rendered_counts(cfg, root, cls, plans).items() if v}
    got = {(int(i), s): int(n) for i, s, n in events.group_by("incident_id", "stream").len().iter_rows()}
    if want != got:
        problems.append(
            f"rendered rows per (incident, stream) {dict(sorted(want.items()))} but truth has {dict(sorted(got.items()))}"
        )
    if events["event_id"].n_unique() != events.height:
        problems.append("an event id appears twice in the truth")
    for stream, df in logs.items():
        ids = events.filter(pl.col("stream") == stream).select("event_id")
        missing = ids.join(df.select("event_id"), on="event_id", how="anti").height
        if missing:
            problems.append(f"{missing} {stream} events of the truth are not in the logs")
    return CheckResult("truth_complete", not problems, "; ".join(problems))


def _exposure(truth: dict[str, pl.DataFrame], logs: dict[str, pl.DataFrame]) -> CheckResult:
    problems = []
    expo, events = truth["exposure"], truth["malicious_events"]
    if expo.select("incident_id", "customer_id", "kind").n_unique() != expo.height:
        problems.append("a customer's record of one kind is exposed twice by one incident")
    bad_kind = sorted(set(expo["kind"].unique().to_list()) - set(schema.EXPOSURE_KINDS))
    if bad_kind:
        problems.append(f"exposure kinds {bad_kind} are not among {list(schema.EXPOSURE_KINDS)}")
    if expo.filter(pl.col("reads") < 1).height:
        problems.append("an exposure row has no reads")
    unknown = expo.join(truth["incidents"].select("incident_id"), on="incident_id", how="anti").height
    if unknown:
        problems.append(f"{unknown} exposure rows name no incident")
    times = events.select("incident_id", pl.col("ts").alias("first_ts")).unique()
    orphan = expo.join(times, on=["incident_id", "first_ts"], how="anti").height
    if orphan:
        problems.append(f"{orphan} exposure rows were first read at a time when the incident had no event")
    ev = events.select("event_id", "incident_id")
    g = (
        logs["gateway"]
        .filter((pl.col("records_returned") > 0) & (pl.col("status") == 200))
        .join(ev, on="event_id")
        .select("incident_id", "customer_id", "ts")
    )
    a = (
        logs["admin"]
        .filter(pl.col("customer_id").is_not_null())
        .join(ev, on="event_id")
        .select("incident_id", "customer_id", "ts")
    )
    read = pl.concat([g, a]).group_by("incident_id", "customer_id").agg(pl.col("ts").min())
    first = expo.group_by("incident_id", "customer_id").agg(pl.col("first_ts").min())
    joined = read.join(first, on=["incident_id", "customer_id"], how="left")
    not_exposed = joined.filter(pl.col("first_ts").is_null()).height
    late = joined.filter(pl.col("first_ts") > pl.col("ts")).height
    # every read counted: a page that returned records, a single-record admin read, each row of a bulk pull
    pulls = (
        logs["admin"]
        .filter(pl.col("customer_id").is_null())
        .join(ev, on="event_id")
        .group_by("incident_id")
        .agg(pl.col("row_count").sum().alias("n"))
    )
    single = pl.concat([g, a]).group_by("incident_id").len().rename({"len": "n"})
    want = pl.concat([pulls, single.cast({"n": pulls.schema["n"]})]).group_by("incident_id").agg(pl.col("n").sum())
    got = expo.group_by("incident_id").agg(pl.col("reads").sum().cast(want.schema["n"]).alias("got"))
    off = want.join(got, on="incident_id", how="full", coalesce=True).fill_null(0).filter(pl.col("n") != pl.col("got"))
    if off.height:
        problems.append(f"reads in exposure differ from the records the malicious rows read: {off.sort('incident_id').rows()}")
    if not_exposed:
        problems.append(f"{not_exposed} customers read by malicious rows are missing from exposure")
    if late:
        problems.append(f"{late} customers are exposed later than a malicious row read them")
    return CheckResult("exposure", not problems, "; ".join(problems))


def _window(cfg: SimConfig, cls: type, plans: list, events: pl.DataFrame) -> CheckResult:
    problems = []
    tz = ZoneInfo(cfg.time.timezone)
    for _, plan in plans:
        first, end = cls().window(plan)
        t_first = dt.datetime.combine(cfg.time.start + dt.timedelta(days=first), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        t_end = dt.datetime.combine(cfg.time.start + dt.timedelta(days=end), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        mine = events.filter(pl.col("incident_id") == plan.incident_id)
        early = mine.filter(pl.col("ts") < t_first).height
        after = mine.filter(pl.col("ts") >= t_end).height
        if early:
            problems.append(f"incident {plan.incident_id}: {early} events before its start (day {first}, {t_first:%Y-%m-%d})")
        if after:
            problems.append(f"incident {plan.incident_id}: {after} events after its end (day {end})")
        if first < cfg.time.warmup_days:
            problems.append(f"incident {plan.incident_id} starts in the warm-up (day {first} < {cfg.time.warmup_days})")
    return CheckResult("window", not problems, "; ".join(problems))


def _incidents(cls: type, plans: list, truth: dict[str, pl.DataFrame]) -> CheckResult:
    problems = []
    inc = truth["incidents"]
    if sorted(inc["incident_id"].to_list()) != sorted(p.incident_id for _, p in plans):
        problems.append(f"incidents {inc['incident_id'].to_list()} but {len(plans)} planned")
    for row in inc.iter_rows(named=True):
        if not row["actors"]:
            problems.append(f"incident {row['incident_id']} has no actors")
        names = {part.split(":", 1)[0] for part in (row["phases"] or "").split(";") if part}
        used = set(truth["malicious_events"].filter(pl.col("incident_id") == row["incident_id"])["phase"].unique().to_list())
        if not used:
            problems.append(f"incident {row['incident_id']} has no events in the check world")
        if used - names:
            problems.append(
                f"incident {row['incident_id']}: event phases {sorted(used - names)} are not in its phases {row['phases']!r}"
            )
    return CheckResult("incidents", not problems, "; ".join(problems))


def _employment(cfg: SimConfig, employees: pl.DataFrame, events: pl.DataFrame, logs: dict[str, pl.DataFrame]) -> CheckResult:
    problems = []
    emp = employees.select("employee_id", "hire_date", "termination_date")
    for stream, rows in logs.items():
        if "employee_id" not in rows.columns:
            continue
        mine = (
            rows.filter(pl.col("employee_id").is_not_null())
            .join(events.filter(pl.col("stream") == stream).select("event_id", "incident_id"), on="event_id")
            .with_columns(_day=pl.col("ts").dt.convert_time_zone(cfg.time.timezone).dt.date())
            .join(emp, on="employee_id", how="left")
        )
        unknown = mine.filter(pl.col("hire_date").is_null())
        outside = mine.filter(
            (pl.col("_day") < pl.col("hire_date"))
            | (pl.col("termination_date").is_not_null() & (pl.col("_day") >= pl.col("termination_date")))
        )
        if unknown.height:
            problems.append(
                f"{stream}: {unknown.height} malicious rows carry accounts no employee holds ({sorted(set(unknown['employee_id'].to_list()))[:5]})"
            )
        for key, g in outside.group_by("incident_id", "employee_id", maintain_order=True):
            inc, who = key
            r = g.row(0, named=True)
            problems.append(
                f"incident {inc}: {g.height} {stream} rows on employee {who}'s account outside their employment "
                f"(hired {r['hire_date']}, gone {r['termination_date']}; first such row on {min(g['_day'].to_list())})"
            )
    return CheckResult("employment", not problems, "; ".join(problems))


def scenario_ids() -> list[str]:
    """Every registered scenario id (for parametrising tests)."""
    return list(registry())
