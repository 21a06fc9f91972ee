"""Conformance checks, process isolation, the estimator adapter and the baseline zoo on planted cases.

The faulty detectors live in ``bad_detectors.py`` next to this file: pytest puts the tests
directory on ``sys.path`` (no ``__init__.py``, default import mode), and a ``spawn`` child gets
its parent's ``sys.path``, so ``"bad_detectors:Raiser"`` loads in the isolated processes too.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bad_detectors
import numpy as np
import polars as pl
import pytest

from breachbench.config import load_config
from breachbench.dataset import Dataset
from breachbench.isolation import run_isolated
from breachbench.runner import run_detector
from breachbench.stats import METRICS
from breachbench.suite import run_suite
from detectors.adapters import anomaly_scores, feature_matrix, from_estimator, higher_is_anomalous
from detectors.checks import CHECKS, DetectorCheckError, check_detector, parametrize_with_checks
from detectors.features import feature_table
from detectors.registry import load, registry
from simulator import layout
from simulator.schema import ADMIN, AUTH

REPO = Path(__file__).resolve().parent.parent
BUILTINS = sorted(name for name, target in registry().items() if target.startswith("detectors."))


def _failed(target: Any) -> dict[str, str]:
    """check -> message of every failed check."""
    return {r.check: r.message for r in check_detector(target, raise_on_failure=False) if not r.passed}


# ---- conformance checks --------------------------------------------------------------------


def _one_worker_per_detector(mark: Any) -> Any:
    """``mark``'s cases, those of one detector in one xdist group: the checks of a detector run once per
    process (the first case runs them all), so cases spread over two workers ran them twice."""
    names, cases = mark.args
    return pytest.mark.parametrize(
        names,
        [pytest.param(*c.values, id=c.id, marks=[*c.marks, pytest.mark.xdist_group(f"checks-{c.values[0]}")]) for c in cases],
    )


@_one_worker_per_detector(parametrize_with_checks(ids=BUILTINS))
def test_builtin_passes_every_check(detector_id: str, check) -> None:
    check(detector_id)


def test_parametrize_covers_registry_times_checks() -> None:
    mark = parametrize_with_checks()
    names, cases = mark.args
    assert names == ("detector_id", "check")
    got = {(c.values[0], c.values[1].__name__) for c in cases}
    assert got == {(d, f"check_{c}") for d in registry() for c in CHECKS}
    assert len(cases) == len(registry()) * len(CHECKS)


def test_parametrize_case_raises_for_its_own_failed_check() -> None:
    target = "bad_detectors:HoldsGenerator"
    cases = {c.values[1].__name__: c.values[1] for c in parametrize_with_checks(ids=[target]).args[1]}
    cases["check_schema"](target)  # passes
    cases["check_determinism"](target)
    with pytest.raises(DetectorCheckError, match=r"pickle: .*generator"):
        cases["check_pickle"](target)


def test_check_detector_raises_listing_failures() -> None:
    with pytest.raises(DetectorCheckError, match=r"^pickle: .*lambda"):
        check_detector(bad_detectors.HoldsLambda)
    with pytest.raises(ValueError, match="accepted: schema"):
        check_detector("null", checks=("schema", "speed"))


def test_lookahead_fails_prefix() -> None:
    failed = _failed("bad_detectors:PeeksAhead")
    assert set(failed) == {"prefix"}, failed
    assert "looks ahead" in failed["prefix"]


def test_truth_reader_fails_no_truth() -> None:
    failed = _failed("bad_detectors:ReadsTruth")
    assert "reads truth" in failed.get("no_truth", ""), failed
    # the prefix copy has no truth either, so a truth reader fails it too; nothing else fails
    assert set(failed) <= {"no_truth", "prefix"}, failed


@pytest.mark.parametrize(
    ("target", "check"),
    [
        ("bad_detectors:PeeksAheadResolved", "prefix"),
        ("bad_detectors:ReadsTruthResolved", "no_truth"),
    ],
)
def test_symlink_resolving_cheats_are_caught(target: str, check: str) -> None:
    assert check in _failed(target)


@pytest.mark.parametrize(
    "target",
    [
        "bad_detectors:RawScoreSamples",
        "bad_detectors:Inverted",
    ],
)
def test_inverted_scores_fail_direction(target: str) -> None:
    failed = _failed(target)
    assert set(failed) == {"direction"}, failed
    assert "higher scores must mean more suspicious" in failed["direction"]


def test_nondeterministic_fails_determinism() -> None:
    failed = _failed(bad_detectors.Nondeterministic)
    assert failed.get("determinism") == "two fresh instances gave different alerts", failed
    assert "schema" not in failed and "direction" not in failed


@pytest.mark.parametrize(("cls", "needle"), [(bad_detectors.HoldsLambda, "lambda"), (bad_detectors.HoldsGenerator, "generator")])
def test_unpicklable_state_fails_pickle(cls: type, needle: str) -> None:
    failed = _failed(cls)
    assert set(failed) == {"pickle"}, failed
    assert needle in failed["pickle"]


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        (bad_detectors.OtherBucket, "returned rows for bucket"),
        (bad_detectors.NoScoreColumn, "missing column(s) score"),
    ],
)
def test_broken_frames_fail_schema(cls: type, needle: str) -> None:
    results = check_detector(cls, raise_on_failure=False)
    assert [(r.check, r.passed) for r in results] == [("schema", False)]  # nothing else can run
    assert "AlertsError" in results[0].message and needle in results[0].message


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "breachbench", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_check_passes_a_builtin() -> None:
    p = _cli("detectors", "check", "unissued-token-v1")
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in p.stdout.splitlines() if line.strip()]
    assert [(r[0], r[2]) for r in rows] == [("unissued-token-v1", "ok")] * len(CHECKS)
    assert [r[1] for r in rows] == list(CHECKS)


def test_cli_check_unknown_id() -> None:
    p = _cli("detectors", "check", "nope-v9")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    assert "'nope-v9'" in lines[0] and "unissued-token-v1" in lines[0]
    assert p.stdout == ""


# ---- isolation -----------------------------------------------------------------------------


def test_isolated_exception_is_error(tiny_dataset: Path) -> None:
    r = run_isolated("bad_detectors:Raiser", tiny_dataset, timeout_s=60, memory_mb=2048)
    assert r.status == "ERROR"
    assert f"RuntimeError: {bad_detectors.RAISER_MESSAGE}" in r.error
    assert r.alerts.height == 0


def test_isolated_timeout(tiny_dataset: Path) -> None:
    import resource

    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731 - the bench's own CPU seconds
    t, c = time.perf_counter(), cpu()
    r = run_isolated("bad_detectors:Sleeper", tiny_dataset, timeout_s=3, memory_mb=2048)
    took = time.perf_counter() - t
    assert r.status == "TIMEOUT", r.error
    assert "limit of 3 s" in r.error
    assert 3 <= took < 6, took
    assert r.alerts.height == 0
    # the bench sleeps while the child does: its wait on the child's exit pipe, which the child closes (it keeps no
    # pipe of the bench's), once returned at once again and again, a core's worth of CPU for the slot's whole time
    assert cpu() - c < 0.6 * took, (cpu() - c, took)


def test_the_bench_times_a_slot_by_its_own_clock(tiny_dataset: Path, tiny_ds) -> None:
    """A detector that stops its process's clock reported no time at all (a red team's plugin: 2.9e13 events/s in its
    row); its row shows the time the bench saw it score: a tenth of a second a bucket at least, and no more than the
    slot took."""
    t = time.perf_counter()
    r = run_isolated("bad_detectors:StoppedClock", tiny_dataset, timeout_s=120, memory_mb=1024)
    took = time.perf_counter() - t
    assert r.status == "OK", r.error
    buckets = len(tiny_ds.scored)
    assert 0.1 * buckets <= r.score_s and r.fit_s + r.score_s < took, (r.fit_s, r.score_s, took, buckets)
    assert r.events_per_s is not None and r.events_per_s <= r.events / (0.1 * buckets)


def test_isolated_memory_limit(tiny_dataset: Path) -> None:
    r = run_isolated("bad_detectors:Hog", tiny_dataset, timeout_s=60, memory_mb=400)
    assert r.status == "OOM", r.error
    assert "limit of 400 MiB" in r.error
    assert 400 < r.peak_mb < bad_detectors.HOG_BYTES / 2**20 + 400
    assert r.alerts.height == 0


def test_isolated_ok_matches_in_process(tiny_dataset: Path, tiny_ds) -> None:
    r = run_isolated("unissued-token-v1", tiny_dataset, timeout_s=60, memory_mb=2048)
    assert r.status == "OK", r.error
    ref = run_detector("unissued-token-v1", tiny_ds)
    assert ref.status == "OK" and ref.alerts.height > 0
    assert r.alerts.schema == ref.alerts.schema and r.alerts.equals(ref.alerts)
    assert r.fit_s > 0 and r.score_s > 0 and r.peak_mb > 0
    assert r.version == ref.version == "1" and r.events == ref.events > 0


SMALL = ["world.customers=1500", "time.end=2025-04-18"]
BAD = ["bad_detectors:Raiser", "bad_detectors:Sleeper", "bad_detectors:Hog", "bad_detectors:PanicAlerts"]


def _suite(out: Path, overrides: list[str]) -> dict[str, Any]:
    cfg = load_config(REPO / "configs" / "tiny.toml", [*SMALL, *overrides])
    return run_suite(cfg, out, workers=1, log=lambda *a, **k: None)


@pytest.fixture(scope="module")
def bad_suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small run with four faulty detectors among two good ones, under tight limits."""
    dets = json.dumps(["null", *BAD, "unissued-token-v1"])
    limits = ["detection.timeout_s=15", "detection.memory_mb=400"]  # room for the hog to reach its limit on a busy machine
    return _suite(tmp_path_factory.mktemp("badsuite"), [f"detection.detectors={dets}", *limits])


@pytest.fixture(scope="module")
def good_suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same small run with the good detectors alone (and both IsolationForests), generous limits."""
    dets = json.dumps(["null", "unissued-token-v1", "iforest-v1", "iforest-adapter-v1"])
    limits = ["detection.timeout_s=300", "detection.memory_mb=8192"]
    return _suite(tmp_path_factory.mktemp("goodsuite"), [f"detection.detectors={dets}", *limits])


def test_suite_survives_faulty_detectors(bad_suite: dict[str, Any]) -> None:
    rows = {r["detector"]: r for r in bad_suite["rows"]}
    assert set(rows) == {"null", *BAD, "unissued-token-v1", "oracle"}
    expected = {
        "bad_detectors:Raiser": ("ERROR", bad_detectors.RAISER_MESSAGE),
        "bad_detectors:Sleeper": ("TIMEOUT", "limit of 15 s"),
        "bad_detectors:Hog": ("OOM", "limit of 400 MiB"),
        "bad_detectors:PanicAlerts": ("ERROR", "alerts from the detector's process cannot be read"),  # the run goes on
    }
    for det, (status, needle) in expected.items():
        assert rows[det]["status"] == status, rows[det]["error"]
        assert needle in rows[det]["error"]
        assert rows[det]["op_score"] is None
    board = bad_suite["leaderboard"].read_text()
    assert "## Errors" in board and all(f"`{d}`" in board for d in BAD)
    saved = {r["detector"]: r["status"] for r in json.loads(bad_suite["results"].read_text())["results"]}
    assert saved == {d: r["status"] for d, r in rows.items()}


@pytest.mark.parametrize("detector", ["null", "unissued-token-v1"])
def test_good_rows_unchanged_by_faulty_neighbours(bad_suite: dict[str, Any], good_suite: dict[str, Any], detector: str) -> None:
    bad = next(r for r in bad_suite["rows"] if r["detector"] == detector)
    good = next(r for r in good_suite["rows"] if r["detector"] == detector)
    assert bad["status"] == good["status"] == "OK", (bad["error"], good["error"])
    assert {m: bad[m] for m in METRICS} == {m: good[m] for m in METRICS}
    assert bad["incidents"] == good["incidents"] and bad["by_budget"] == good["by_budget"]
    assert bad["peak_mb"] > 0


def test_both_iforests_side_by_side(good_suite: dict[str, Any]) -> None:
    rows = {r["detector"]: r for r in good_suite["rows"]}
    hand, adapter = rows["iforest-v1"], rows["iforest-adapter-v1"]
    assert hand["status"] == adapter["status"] == "OK", (hand["error"], adapter["error"])
    # the adapter is the same forest on the same features: its ranking, hence every metric, is the same
    assert {m: hand[m] for m in METRICS} == {m: adapter[m] for m in METRICS}
    lines = [line for line in good_suite["leaderboard"].read_text().splitlines() if line.startswith("| iforest")]
    assert sorted(line.split("|")[1].strip() for line in lines) == ["iforest-adapter-v1", "iforest-v1"]
    assert all(line.split("|")[2].strip() == "OK" for line in lines)


# ---- the estimator adapter -----------------------------------------------------------------


def _features(view, kind: str):
    """The shared feature table the adapter reads (all visible buckets when fitting) and its matrix."""
    f = feature_table(view, kind, current_only=view.bucket is not None)
    return f, feature_matrix(f)


def test_adapter_negates_sklearn_scores(tiny_ds) -> None:
    from sklearn.ensemble import IsolationForest

    Forest = from_estimator(lambda: IsolationForest(n_estimators=50, random_state=0), name="t-forest-v1", kinds=("ip",))
    fit_view, day = tiny_ds.view(tiny_ds.warmup[-1]), tiny_ds.scored[8]
    det = Forest().fit(fit_view)
    out = det.score(tiny_ds.view(day, day))
    f, x = _features(tiny_ds.view(day, day), "ip")
    assert out["entity_id"].to_list() == f["entity_id"].to_list() and out["entity_kind"].unique().to_list() == ["ip"]
    ref = IsolationForest(n_estimators=50, random_state=0).fit(_features(fit_view, "ip")[1])
    got = out["score"].to_numpy()
    np.testing.assert_allclose(got, -ref.decision_function(x), rtol=0, atol=1e-12)
    # decision_function = score_samples - offset_: the negated score_samples up to a constant,
    # so the ranking is exactly that of -score_samples
    shift = got - (-ref.score_samples(x))
    np.testing.assert_allclose(shift, shift[0], rtol=0, atol=1e-12)
    assert np.array_equal(np.argsort(-got, kind="stable"), np.argsort(ref.score_samples(x), kind="stable"))
    assert not higher_is_anomalous(ref)


def _fake_estimator(module: str) -> type:
    class Fake:
        """Decision function = the first feature: higher is more anomalous under PyOD's convention."""

        def fit(self, x):
            return self

        def decision_function(self, x):
            return np.asarray(x)[:, 0] * 2.0

    Fake.__module__ = module
    return Fake


@pytest.mark.parametrize(("module", "sign"), [("pyod.models.fake", 1.0), ("sklearn.fake", -1.0), ("my_lab.models", -1.0)])
def test_adapter_keeps_pyod_sign(tiny_ds, module: str, sign: float) -> None:
    fake = _fake_estimator(module)
    assert higher_is_anomalous(fake()) is (sign > 0)
    x = np.array([[1.0, 5.0], [3.0, 0.0]])
    np.testing.assert_array_equal(anomaly_scores(fake(), x), sign * np.array([2.0, 6.0]))
    Det = from_estimator(fake, name="fake-v1", kinds=("customer",))
    day = tiny_ds.scored[3]
    out = Det().fit(tiny_ds.view(tiny_ds.warmup[-1])).score(tiny_ds.view(day, day))
    f, xs = _features(tiny_ds.view(day, day), "customer")
    assert out.height == f.height > 0
    np.testing.assert_array_equal(out["score"].to_numpy(), sign * 2.0 * xs[:, 0])


def test_adapter_rejects_estimator_without_scores() -> None:
    class Blank:
        def fit(self, x):
            return self

    with pytest.raises(TypeError, match="Blank has neither decision_function nor score_samples"):
        anomaly_scores(Blank(), np.zeros((2, 3)))


# ---- the zoo on planted cases --------------------------------------------------------------


@pytest.fixture(scope="module")
def malicious_gateway(tiny_ds) -> pl.DataFrame:
    """Delivered malicious gateway rows of the tiny dataset, with bucket and phase (bench side)."""
    mal = tiny_ds.truth("malicious_events").filter(pl.col("stream") == "gateway").select("event_id", "phase")
    return tiny_ds.scan("gateway").join(mal.lazy(), on="event_id").collect()


def _score(tiny_ds, detector_id: str, buckets: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
    det = load(detector_id)().fit(tiny_ds.view(tiny_ds.warmup[-1]))
    return {b: det.score(tiny_ds.view(b, b)) for b in buckets}


def test_departed_owner_key_flags_the_scenario_key(tiny_ds, malicious_gateway: pl.DataFrame) -> None:
    actors = tiny_ds.truth("incidents")["actors"].explode().to_list()
    creds = pl.read_parquet(layout.world_glob(tiny_ds.root, "credentials"))
    actor_keys = set(creds.filter(pl.col("owner_employee_id").is_in(actors) & (pl.col("kind") == "token-signing"))["key_id"])
    used = set(malicious_gateway["key_id"])
    assert len(used) == 1 and used <= actor_keys, (used, actor_keys)
    key = used.pop()
    days = sorted(set(malicious_gateway["bucket"]) & set(tiny_ds.scored))
    assert len(days) >= 5
    for day, out in _score(tiny_ds, "rule-departed-owner-key-v1", days).items():
        hit = out.filter((pl.col("entity_kind") == "key") & (pl.col("entity_id") == key))
        forged = malicious_gateway.filter(pl.col("bucket") == day)["token_id"].n_unique()
        assert hit.height == 1, f"{day}: {key} not flagged"
        assert hit["score"][0] >= forged + 1, (day, hit["score"][0], forged)


def test_sequential_sweep_top_ip_is_the_crawler(tiny_ds, malicious_gateway: pl.DataFrame) -> None:
    knobs = {"rotation_hours": 2.0} | tiny_ds.manifest["config"]["scenarios"][0]["knobs"]
    slot_us = int(knobs["rotation_hours"] * 3600 * 1_000_000)
    tz = ZoneInfo(tiny_ds.timezone)
    bulk = sorted(set(malicious_gateway.filter(pl.col("phase") == "bulk")["bucket"]) & set(tiny_ds.scored))
    assert len(bulk) >= 5
    for day, out in _score(tiny_ds, "stat-sequential-sweep-v1", bulk).items():
        t0 = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        rows = malicious_gateway.filter((pl.col("bucket") == day) & (pl.col("ts") >= t0))
        # each swept customer belongs to the address of its first request's time slot; a run of
        # consecutive ids is one address's customers over its consecutive slots
        first = (
            rows.sort("ts")
            .group_by("customer_id", maintain_order=True)
            .first()
            .with_columns(slot=((pl.col("ts") - pl.lit(t0)).dt.total_microseconds() // slot_us))
        )
        blocks = (
            first.select("src_ip", "slot")
            .unique()
            .sort("src_ip", "slot")
            .with_columns(block=(pl.col("slot").diff().over("src_ip") != 1).fill_null(True).cum_sum().over("src_ip"))
        )
        swept = (
            first.join(blocks, on=["src_ip", "slot"])
            .group_by("src_ip", "block")
            .agg(n=pl.len())
            .group_by("src_ip")
            .agg(pl.col("n").max())
        )
        expected = dict(swept.iter_rows())
        ips = out.filter(pl.col("entity_kind") == "ip")
        top = ips.filter(pl.col("score") == pl.col("score").max())
        assert top.height > 0, day
        for ip, run in zip(top["entity_id"], top["score"], strict=True):
            assert ip in expected, f"{day}: top sweep IP {ip} is not an attacker address"
            assert abs(run - expected[ip]) <= 1, (day, ip, run, expected[ip])


def test_no_ticket_reads_counts_untied_reads(tiny_ds) -> None:
    admin = tiny_ds.scan("admin").filter(pl.col("ticket_id").is_null() & pl.col("customer_id").is_not_null()).collect()
    total = 0
    for day, out in _score(tiny_ds, "rule-no-ticket-reads-v1", tiny_ds.scored).items():
        want = admin.filter(pl.col("bucket") == day).group_by("employee_id").agg(n=pl.len())
        expected = {str(e): float(n) for e, n in want.iter_rows()}
        assert set(out["entity_kind"]) <= {"employee"}
        assert dict(zip(out["entity_id"], out["score"], strict=True)) == expected, day
        total += len(expected)
    assert total > 0


def _after_termination(root: Path, buckets: list[dt.date]) -> dict[dt.date, dict[str, float]]:
    """Employees with admin or auth rows delivered in a bucket after their (real) termination date."""
    emp = pl.read_parquet(layout.world_glob(root, "employees")).select("employee_id", "termination_date")
    out = {}
    for day in buckets:
        acts = pl.concat(
            [pl.read_parquet(layout.log_files(root, s, [day])).select("employee_id") for s in ("admin", "auth")]
        ).drop_nulls()
        hit = acts.join(emp, on="employee_id").filter(pl.col("termination_date") < day).group_by("employee_id").agg(n=pl.len())
        out[day] = {str(e): float(n) for e, n in hit.iter_rows()}
    return out


def _with_planted_rows(src: Path, dst: Path, day: dt.date, admin: list[tuple[int, dt.date]], auth: list[int]) -> Path:
    """A symlinked copy of ``src`` with extra admin rows (employee, bucket) and auth logins in ``day``."""
    for f in src.rglob("*"):
        if f.is_file():
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.relative_to(src)).symlink_to(f)
    for i, (emp, b) in enumerate(admin):
        ts = dt.datetime.combine(b, dt.time(12), tzinfo=dt.UTC)
        row = {
            "event_id": 9_000_000 + i,
            "ts": ts,
            "employee_id": emp,
            "customer_id": 1,
            "row_count": 1,
            "action": "view",
            "channel": "console",
            "ticket_id": None,
            "src_ip": "10.0.0.1",
            "country": "KR",
            "device": "laptop",
        }
        path = layout.log_dir(dst, "admin", b) / f"planted-{i}.parquet"
        pl.DataFrame([row], schema=ADMIN).write_parquet(path)
    rows = [
        {
            "event_id": 9_100_000 + i,
            "ts": dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC),
            "event": "login",
            "customer_id": None,
            "employee_id": e,
            "token_id": None,
            "key_id": None,
            "src_ip": "10.0.0.2",
            "country": "KR",
        }
        for i, e in enumerate(auth)
    ]
    pl.DataFrame(rows, schema=AUTH).write_parquet(layout.log_dir(dst, "auth", day) / "planted.parquet")
    return dst


def test_after_termination_alerts_exactly_the_departed(tiny_ds, tmp_path: Path) -> None:
    scored = tiny_ds.scored
    emp = pl.read_parquet(layout.world_glob(tiny_ds.root, "employees")).filter(pl.col("termination_date").is_not_null())
    gone = emp.filter(pl.col("termination_date") < scored[0]).sort("employee_id")["employee_id"][0]
    leaving = emp.filter(pl.col("termination_date").is_between(scored[0], scored[-2])).sort("termination_date")
    assert leaving.height > 0, "no employee leaves during the scored span"
    late_id, late_day = leaving.row(0)[0], leaving["termination_date"][0]
    plant = scored[3] if scored[3] != late_day else scored[4]
    # gone: two admin reads and a login on `plant`; late_id: a read on the day of leaving (allowed) and one the day after
    admin = [(gone, plant), (gone, plant), (late_id, late_day), (late_id, late_day + dt.timedelta(days=1))]
    copy = _with_planted_rows(tiny_ds.root, tmp_path / "planted", plant, admin, [gone])
    for root in (tiny_ds.root, copy):
        ds = Dataset.open(root)
        expected = _after_termination(root, scored)
        alerts = _score(ds, "rule-after-termination-v1", scored)
        got = {day: dict(zip(out["entity_id"], out["score"], strict=True)) for day, out in alerts.items()}
        assert got == expected, root
    assert expected[plant][str(gone)] >= 3
    assert str(late_id) not in expected[late_day]
    assert expected[late_day + dt.timedelta(days=1)].get(str(late_id), 0) >= 1


def test_the_bench_clock_counts_a_dataset_done_unasked_as_scoring() -> None:
    """A dataset whose status file comes without a single bucket request: the bench cannot tell fit from scoring and
    counts all of it as scoring (a row that skipped its requests showed 0 score seconds, and an events/s to match)."""
    from breachbench.isolation import _Clock

    unasked = _Clock(start=10.0)
    assert unasked.stop(12.5) == (0.0, 2.5)
    asked = _Clock(start=10.0)
    asked.asked(11.0)  # fit done: the first bucket asked for
    asked.shown = 11.1
    asked.asked(11.6)  # the next one
    asked.shown = 11.7
    assert asked.stop(12.0) == pytest.approx((1.0, 0.8))
