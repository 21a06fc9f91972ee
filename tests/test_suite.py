"""The suite runner end to end: the grid, intervals, anchors, results schema, compare, report, audit, tuning, budgets.

Multi-seed runs use a cheap world (1,500 customers, 19 daily buckets) and share their
datasets: the two-seed run generates seeds 1 and 2, and the five-seed and tuning runs reuse
copies of those, so each dataset is generated once per module.
"""

from __future__ import annotations

import base64
import copy
import io
import itertools
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import types
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest
import report_browser

import detectors.registry
from breachbench.audit import LEAK_SHARE, SHORTCUTS, audit
from breachbench.config import ConfigError, load_config
from breachbench.dataset import Dataset
from breachbench.runner import ORACLE, oracle_alerts
from breachbench.scoring import cost_profiles, op_score, score_alerts
from breachbench.stats import BOUNDS, METRICS, aggregate, bootstrap
from breachbench.suite import grid, run_suite
from detectors.contract import empty_alerts
from detectors.registry import registry

# in-process detectors: a spawned process per detector and dataset would triple the cost, and a
# registry monkeypatched here does not reach a spawned child
CHEAP = ["world.customers=1500", "time.end=2025-04-20", "suite.bootstrap=500", "detection.isolate=false"]
SCENARIO = "coupang-forged-token-v3"
FAST_DETECTORS = '["null", "random", "unissued-token-v1"]'
PROFILES = sorted(cost_profiles()["profiles"])
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UNITS = ["bucket", "entity_kind", "entity_id"]


def _cheap(config_path: Path, *overrides: str):
    return load_config(config_path, [*CHEAP, *overrides])


def _run(cfg, out: Path) -> dict[str, Any]:
    """run_suite with the log captured; adds the config, the parsed results.json and the log."""
    messages: list[str] = []
    result = run_suite(cfg, out, workers=1, log=lambda *a, **k: messages.append(" ".join(map(str, a))))
    return result | {
        "config": cfg,
        "out": out,
        "payload": json.loads(Path(result["results"]).read_text()),
        "log": messages,
        "by_id": {r["detector"]: r for r in result["rows"]},
    }


def _seed_datasets(src: Path, dst: Path, labels: list[str]) -> None:
    """Copy already generated grid datasets so that run_suite finds (and reuses) them."""
    for label in labels:
        shutil.copytree(src / "datasets" / label, dst / "datasets" / label)


def _label(seed: int, tuning: bool = False) -> str:
    return f"{'tune-' if tuning else ''}seed{seed}-0-{SCENARIO}"


# ---------------------------------------------------------------- module fixtures: cheap multi-seed runs


@pytest.fixture(scope="module")
def two_seed_run(tiny_config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Seeds 1 and 2 of the cheap world, generated here; the fast built-ins and the oracle."""
    cfg = _cheap(tiny_config_path, "suite.seeds=[1, 2]", f"detection.detectors={FAST_DETECTORS}")
    return _run(cfg, tmp_path_factory.mktemp("two_seeds"))


@pytest.fixture(scope="module")
def five_seed_run(
    two_seed_run: dict[str, Any], tiny_config_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Seeds 1..5 (1 and 2 reused from the two-seed run); detection.budget 10 is not among suite.budgets."""
    out = tmp_path_factory.mktemp("five_seeds")
    _seed_datasets(two_seed_run["out"], out, [_label(1), _label(2)])
    cfg = _cheap(
        tiny_config_path, "suite.seeds=[1, 2, 3, 4, 5]", "suite.budgets=[20, 2, 5]", f"detection.detectors={FAST_DETECTORS}"
    )
    run = _run(cfg, out)
    assert sum("reused" in m for m in run["log"]) == 2, run["log"]
    return run


class _Tunable:
    """Records what tune() receives; refuses to fit untuned, so an untuned copy becomes an ERROR row."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def tune(self, view, labels: pl.DataFrame) -> None:
        files = {p for days in view._logs.values() for paths in days.values() for p in paths}
        files |= {p for paths in view._world.values() for p in paths}
        _Tunable.calls.append({"labels": labels, "files": files})
        self.tuned_on_ = labels.height

    def fit(self, view):
        if not hasattr(self, "tuned_on_"):
            raise RuntimeError("fit before tune")
        return self

    def score(self, view) -> pl.DataFrame:
        return empty_alerts()


@pytest.fixture(scope="module")
def tuned_run(two_seed_run: dict[str, Any], tiny_config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Test seeds 1 and 2 (reused), tuning seed 11 (generated), a registered detector with tune()."""
    out = tmp_path_factory.mktemp("tuned")
    _seed_datasets(two_seed_run["out"], out, [_label(1), _label(2)])
    mod = types.ModuleType("bb_tunable_detectors")
    mod.Tunable = _Tunable
    fake = {**registry(), "tunable-test": "bb_tunable_detectors:Tunable"}
    _Tunable.calls.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, mod.__name__, mod)
        mp.setattr(detectors.registry, "registry", lambda: fake)
        cfg = _cheap(tiny_config_path, "suite.seeds=[1, 2]", "suite.tuning_seeds=[11]", 'detection.detectors=["tunable-test"]')
        run = _run(cfg, out)
    return run | {"calls": list(_Tunable.calls)}


# ---------------------------------------------------------------- 1. the grid


def test_grid_makes_one_dataset_per_seed_and_one_run_per_seed(two_seed_run: dict[str, Any]) -> None:
    out, payload = two_seed_run["out"], two_seed_run["payload"]
    labels = [_label(1), _label(2)]
    assert [d["label"] for d in payload["datasets"]] == labels
    assert [d["seed"] for d in payload["datasets"]] == [1, 2]
    assert not any(d["tuning"] for d in payload["datasets"])
    for d in payload["datasets"]:
        assert Path(d["path"]) == out / "datasets" / d["label"]
        assert Dataset.open(d["path"]).manifest["config"]["seed"] == d["seed"]
    assert sorted(p.name for p in (out / "datasets").iterdir()) == labels
    assert not (out / "dataset").exists()
    assert payload["datasets"][0]["config_hash"] != payload["datasets"][1]["config_hash"]  # different worlds
    assert payload["seeds"] == {"test": [1, 2], "tuning": [], "sealed": False}
    assert {r["detector"] for r in payload["results"]} == {"null", "random", "unissued-token-v1", ORACLE}
    for row in payload["results"]:
        assert row["status"] == "OK", row["error"]
        assert row["runs_total"] == row["runs_ok"] == 2
        assert sorted(r["seed"] for r in row["runs"]) == [1, 2]
        assert sorted(r["dataset"] for r in row["runs"]) == labels
        assert len(row["incidents"]) == sum(len(r["incidents"]) for r in row["runs"])
        assert {i["seed"] for i in row["incidents"]} == {1, 2}
        for label in labels:
            assert (out / "alerts" / label / f"{row['detector']}.parquet").is_file()


def test_single_seed_uses_out_dataset(tiny_config, tiny_run: dict[str, Any], tiny_run_dir: Path, tmp_path: Path) -> None:
    payload = json.loads(Path(tiny_run["results"]).read_text())
    assert [Path(d["path"]) for d in payload["datasets"]] == [tiny_run_dir / "dataset"]
    assert not (tiny_run_dir / "datasets").exists()
    assert all(row["runs_total"] == 1 for row in payload["results"])
    # an explicit single seed is a single point too; any tuning seed moves every dataset under datasets/
    one = tiny_config.model_copy(update={"suite": tiny_config.suite.model_copy(update={"seeds": [3]})})
    assert [(p.seed, p.path) for p in grid(one, tmp_path)] == [(3, tmp_path / "dataset")]
    tuned = tiny_config.model_copy(update={"suite": tiny_config.suite.model_copy(update={"tuning_seeds": [9]})})
    points = grid(tuned, tmp_path)
    assert [(p.label, p.tuning) for p in points] == [(_label(7), False), (_label(9, True), True)]
    assert all(p.path == tmp_path / "datasets" / p.label for p in points)


# ---------------------------------------------------------------- 2. confidence intervals


def _incident(before: float, total: float = 100, perfect: float = 10, ttd: int | None = 1) -> dict[str, Any]:
    """A synthetic incident entry: harm and records alike (one record, one unit of harm)."""
    detected = ttd is not None
    return {
        "exposed_before_detection": before,
        "exposed_total": total,
        "exposed_perfect": perfect,
        "harm_before_detection": float(before),
        "harm_total": float(total),
        "harm_perfect": float(perfect),
        "detected": detected,
        "detectable": True,
        "ttd_buckets": ttd,
        "timeliness": 1 - ttd / 10 if detected else 0.0,
        "scenario": SCENARIO,
    }


def _run_of(incidents: list[dict[str, Any]], false: int, auprc: float = 0.5) -> dict[str, Any]:
    harm = [sum(i[k] for i in incidents) for k in ("harm_before_detection", "harm_total", "harm_perfect")]
    return {
        "overall": {
            "auprc": auprc,
            "chance_auprc": auprc / 20,
            "lift": 20.0,
            "prevalence": 0.01,
            "false_alerts_read": int(false),
            "scored_buckets": 10,
            "harm_by_profile": {p: harm for p in PROFILES},
        },
        "incidents": incidents,
    }


def _synthetic_runs(n: int) -> list[dict[str, Any]]:
    """``n`` runs whose exposure and false alerts sit at evenly spaced quantiles: the same spread for every n."""
    q = (np.arange(n) + 0.5) / n
    before = np.round(10 + 90 * q).astype(int)  # 10..100 of 100 records exposed (100: missed)
    false = np.round(40 * np.roll(q, n // 3)).astype(int)  # uncorrelated with exposure
    return [
        _run_of([_incident(int(b), ttd=None if b >= 100 else int(b // 10))], int(f), 0.2 + 0.6 * float(q[(i + 1) % n]))
        for i, (b, f) in enumerate(zip(before, false, strict=True))
    ]


def _width(ci: dict[str, list], m: str) -> float:
    lo, hi = ci[m]
    return hi - lo


def test_bootstrap_width_shrinks_like_one_over_sqrt_n() -> None:
    sizes = (4, 16, 64)
    cis = {n: bootstrap(_synthetic_runs(n), resamples=1000, seed=3) for n in sizes}
    from scipy.stats import t as student_t

    # intervals are t-quantile x bootstrap standard error: width ~ t(n-1) / sqrt(n), clipped to the metric's range
    for m in ("op_score", "exposure_prevented", "false_alerts_per_bucket", "auprc"):
        w = [_width(cis[n], m) for n in sizes]
        assert w[0] > w[1] > w[2] > 0, (m, w)
        scaled = [wi * math.sqrt(n) / student_t.ppf(0.975, n - 1) for wi, n in zip(w[1:], sizes[1:], strict=True)]
        assert max(scaled) / min(scaled) < 1.5, (m, scaled)  # 16 and 64 runs: nothing clipped
        assert w[1] / w[2] > 1.5, (m, w)
    for n in sizes:
        runs = _synthetic_runs(n)
        point = aggregate(runs)
        ci = cis[n]
        assert bootstrap(runs, resamples=1000, seed=3) == ci  # deterministic for a fixed seed
        other = bootstrap(runs, resamples=1000, seed=4)
        assert _width(other, "op_score") == pytest.approx(_width(ci, "op_score"), rel=0.25)
        if n == sizes[-1]:
            assert other != ci  # the seed does drive the resampling
        for m in METRICS:
            lo, hi = ci[m]
            if point[m] is not None and lo is not None and hi is not None:
                assert lo <= point[m] <= hi, (n, m, lo, point[m], hi)
    one = _synthetic_runs(1)
    assert bootstrap(one) == {m: [aggregate(one)[m]] * 2 for m in METRICS}


def test_two_run_interval_covers_the_true_value_at_close_to_its_level() -> None:
    rng = np.random.default_rng(11)
    true = (100 - 55) / (100 - 10)  # exposure prevented (perfect = 1) when before ~ Uniform(10, 100) of 100 records
    covered = 0
    trials = 40
    for t in range(trials):
        runs = [_run_of([_incident(float(b))], 0) for b in rng.uniform(10, 100, 2)]
        lo, hi = bootstrap(runs, resamples=100, confidence=0.95, seed=t)["exposure_prevented"]
        covered += lo <= true <= hi
    assert covered / trials >= 0.8


def _records(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in row["runs"] if "overall" in r]


def test_suite_intervals_are_the_run_bootstrap_and_tighten_with_seeds(
    two_seed_run: dict[str, Any], five_seed_run: dict[str, Any]
) -> None:
    """Row intervals are the bootstrap over that row's runs; relative to the per-seed spread they tighten from 2 to 5 seeds."""
    ratios: dict[int, dict[tuple[str, str], float]] = {}
    for run in (two_seed_run, five_seed_run):
        suite = run["config"].suite
        n = len(suite.seeds)
        ratios[n] = {}
        for row in run["rows"]:
            recs = _records(row)
            assert len(recs) == n
            pooled_ci = {m: v for m, v in row["ci"].items() if m != "detection_score"}  # the headline resamples incidents
            assert pooled_ci == bootstrap(recs, run["config"].detection.cost_profile, suite.bootstrap, suite.confidence)
            assert row["by_scenario"][SCENARIO]["ci"] == pooled_ci  # one scenario: the same runs
            for m in METRICS:
                lo, hi = row["ci"][m]
                if row[m] is not None and lo is not None and hi is not None:
                    assert lo <= row[m] <= hi, (row["detector"], m, lo, row[m], hi)
            for m in ("op_score", "exposure_prevented", "recall_at_k", "auprc"):
                per_seed = [aggregate([r])[m] for r in recs]
                spread = max(per_seed) - min(per_seed)
                clipped = tuple(row["ci"][m]) == BOUNDS.get(m)  # the interval is the metric's whole range: nothing to tighten
                if spread > 1e-12 and not clipped:
                    ratios[n][(row["detector"], m)] = _width(row["ci"], m) / spread
    both = sorted(set(ratios[2]) & set(ratios[5]))
    assert len(both) >= 2, (ratios, "too few metrics with spread to compare")
    for key in both:
        assert ratios[5][key] < 0.95 * ratios[2][key], (key, ratios[2][key], ratios[5][key])


# ---------------------------------------------------------------- 3. anchors


def test_op_score_is_zero_for_null_and_100_for_perfect_under_every_profile() -> None:
    for name in PROFILES:
        cost = cost_profiles()["profiles"][name]["false_alert"]
        assert op_score(500, 500, 40, 0, cost) == 0.0
        assert op_score(40, 500, 40, 0, cost) == 100.0
        assert op_score(40, 500, 40, 3, cost) < 100.0  # false alerts cost something in every profile


@pytest.mark.parametrize("which", ["tiny", "five_seeds"])
def test_null_scores_0_and_oracle_100_under_every_profile(
    which: str, tiny_rows: dict[str, Any], five_seed_run: dict[str, Any]
) -> None:
    rows = tiny_rows if which == "tiny" else five_seed_run["by_id"]
    null, oracle = rows["null"], rows[ORACLE]
    assert set(null["op_score_profiles"]) == set(oracle["op_score_profiles"]) == set(PROFILES)
    for name in PROFILES:
        assert null["op_score_profiles"][name] == 0.0
        assert oracle["op_score_profiles"][name] == pytest.approx(100.0)
    assert null["op_score"] == 0.0 and oracle["op_score"] == pytest.approx(100.0)
    # the headline: none here, the tiny world's forged-token case has no score above chance (its six token-signing keys,
    # fewer than the budget, are what the blind ranking of that class alerts on in every draw); the anchors at 0 and
    # 100 where a scenario has one: tests/test_metrics.py
    assert null["detection_score"] is None and oracle["detection_score"] is None
    assert all(s["point"]["detection_score"] is None for r in (null, oracle) for s in r["by_scenario"].values())
    assert oracle["ci"]["op_score"] == [100.0, 100.0] and null["ci"]["op_score"] == [0.0, 0.0]
    for scen in oracle["by_scenario"].values():
        assert scen["point"]["op_score"] == 100.0 and scen["ci"]["op_score"] == [100.0, 100.0]
    for run in oracle["runs"]:
        for at_k in run["by_budget"].values():
            assert at_k["op_score_profiles"] == {name: 100.0 for name in PROFILES}
    for run in null["runs"]:
        for at_k in run["by_budget"].values():
            assert at_k["op_score_profiles"] == {name: 0.0 for name in PROFILES}
    assert len(oracle["runs"]) == (1 if which == "tiny" else 5)


# ---------------------------------------------------------------- 4. results.json schema


@pytest.fixture(scope="module")
def results_validator(repo_root: Path):
    import jsonschema

    schema = json.loads((repo_root / "breachbench" / "data" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_results_json_validates_against_schema(
    results_validator, tiny_run: dict[str, Any], five_seed_run: dict[str, Any], tuned_run: dict[str, Any]
) -> None:
    for payload in (json.loads(Path(tiny_run["results"]).read_text()), five_seed_run["payload"], tuned_run["payload"]):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in results_validator.iter_errors(payload)]
        assert errors == []


def test_schema_rejects_broken_payloads(results_validator, tiny_run: dict[str, Any]) -> None:
    good = json.loads(Path(tiny_run["results"]).read_text())

    def errors(mutate) -> list[str]:
        bad = copy.deepcopy(good)
        mutate(bad)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in results_validator.iter_errors(bad)]

    assert any("'results' is a required property" in e for e in errors(lambda p: p.pop("results")))
    assert any("'datasets' is a required property" in e for e in errors(lambda p: p.pop("datasets")))
    assert any("'op_score' is a required property" in e for e in errors(lambda p: p["results"][0].pop("op_score")))
    assert any(e.startswith("results/0/status") for e in errors(lambda p: p["results"][0].update(status="FAILED")))
    assert any(e.startswith("schema_version") for e in errors(lambda p: p.update(schema_version=1)))
    assert any(e.startswith("results/0/ci/op_score") for e in errors(lambda p: p["results"][0]["ci"].update(op_score=[1.0])))
    assert any("Additional properties" in e for e in errors(lambda p: p.update(surprise=1)))


# ---------------------------------------------------------------- 5. breachbench compare


def _compare(tmp: Path, old: dict, new: dict, *args: str) -> subprocess.CompletedProcess[str]:
    a, b = tmp / "old.json", tmp / "new.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    return subprocess.run(
        [sys.executable, "-m", "breachbench", "compare", str(a), str(b), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_compare_identical_passes_and_planted_op_score_drop_fails(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    old = json.loads(Path(tiny_run["results"]).read_text())
    same = _compare(tmp_path, old, old)
    assert same.returncode == 0, same.stderr
    victim = "unissued-token-v1"
    new = copy.deepcopy(old)
    row = next(r for r in new["results"] if r["detector"] == victim)
    assert row["op_score"] is not None
    row["op_score"] -= 5
    bad = _compare(tmp_path, old, new, "--tolerance", "1")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert victim in bad.stderr
    assert not [r["detector"] for r in old["results"] if r["detector"] != victim and r["detector"] in bad.stderr.split()]
    assert "REGRESSED" in bad.stdout
    ok = _compare(tmp_path, old, new, "--tolerance", "10")
    assert ok.returncode == 0, ok.stderr


def test_compare_ttd_rise_is_a_regression(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    old = json.loads(Path(tiny_run["results"]).read_text())
    new = copy.deepcopy(old)
    row = next(r for r in new["results"] if r["detector"] == ORACLE)
    assert row["ttd_median_buckets"] is not None
    row["ttd_median_buckets"] += 3
    rise = _compare(tmp_path, old, new, "--metric", "ttd_median_buckets", "--tolerance", "1")
    assert rise.returncode == 1 and ORACLE in rise.stderr, rise.stdout + rise.stderr
    assert _compare(tmp_path, new, old, "--metric", "ttd_median_buckets", "--tolerance", "1").returncode == 0  # a fall is better
    assert _compare(tmp_path, old, new, "--metric", "op_score").returncode == 0  # only --metric gates


def test_compare_bad_input_is_a_one_line_error(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    old = json.loads(Path(tiny_run["results"]).read_text())
    unknown = _compare(tmp_path, old, old, "--metric", "bogus_metric")
    assert unknown.returncode == 2
    assert len(unknown.stderr.strip().splitlines()) == 1 and "bogus_metric" in unknown.stderr and "op_score" in unknown.stderr
    other = copy.deepcopy(old) | {"schema_version": 1}
    version = _compare(tmp_path, old, other)
    assert version.returncode == 2
    assert len(version.stderr.strip().splitlines()) == 1 and "schema_version" in version.stderr and "new.json" in version.stderr
    assert "Traceback" not in unknown.stderr + version.stderr


# ---------------------------------------------------------------- 6. report.html


PLOT_HEADINGS = ["Records exposed over time", "Budget curves", "Precision-recall", "Time to detect", "What fooled each detector"]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def _png_pixels(data: bytes) -> bytes:
    """Inflate the IDAT chunks (checks each chunk's CRC on the way)."""
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
        if kind == b"IEND":
            break
    return zlib.decompress(idat)


def test_report_is_self_contained_with_every_plot(tiny_run: dict[str, Any]) -> None:
    import matplotlib.image

    doc = Path(tiny_run["report"]).read_text(encoding="utf-8")
    attrs = re.findall(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", doc, flags=re.IGNORECASE | re.DOTALL)
    assert attrs, "no src attributes at all"
    assert not [v for _, _, v in attrs if re.match(r"\s*(https?:)?//", v, re.IGNORECASE)]
    assert not [a for a, _, _ in attrs if a.lower() == "href"]
    assert not re.search(r"<script[^>]*\bsrc", doc, re.IGNORECASE)
    assert not re.search(r"<link\b", doc, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", doc, re.IGNORECASE)
    srcs = [v for a, _, v in attrs if a.lower() == "src"]
    assert len(srcs) == len(re.findall(r"<img\b", doc))
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        w, h = _png_size(data)
        assert w > 50 and h > 50, (w, h)
        assert len(_png_pixels(data)) >= h * (1 + w * 3)  # at least RGB scanlines
        img = matplotlib.image.imread(io.BytesIO(data), format="png")
        assert img.shape[:2] == (h, w) and float(img.std()) > 0.01  # not a blank canvas
    plots = re.findall(r"<h3>(.*?)</h3><img alt='[^']*' src='data:image/png;base64,", doc)
    for heading in PLOT_HEADINGS:
        assert any(p.startswith(heading) for p in plots), (heading, plots)
    headings = re.findall(r"<h[23]>(.*?)</h[23]>", doc)
    for heading in [*PLOT_HEADINGS, "Leakage audit"]:
        assert any(h.startswith(heading) for h in headings), heading


@pytest.mark.skipif(
    report_browser.chromium() is None, reason="no chromium on PATH or at /usr/bin/chromium: cannot render report.html headless"
)
def test_report_renders_offline_in_headless_chromium(tiny_run: dict[str, Any]) -> None:
    """As a security lead opens it: 1,400 px wide, no network; nothing overflows, no script error, the answer on the first screen."""
    seen = report_browser.probe(Path(tiny_run["report"]))
    assert seen["viewport"] == report_browser.WIDTH and seen["scroll_width"] <= report_browser.WIDTH, seen["scroll_width"]
    assert seen["wide"] == []  # no element wider than the window
    assert seen["errors"] == [] and seen["outside_requests"] == []
    first_screen = report_browser.HEIGHT
    assert seen["verdict_top"] is not None and seen["verdict_top"] < first_screen / 3
    assert seen["matrix_top"] is not None and seen["matrix_table_top"] is not None
    assert seen["matrix_top"] < seen["matrix_table_top"] < first_screen - 100  # the matrix table starts on the first screen
    doc = Path(tiny_run["report"]).read_text(encoding="utf-8")
    assert len(seen["images"]) == doc.count("<img") and min(seen["images"]) > 50  # every plot decoded in the browser


# ---------------------------------------------------------------- 7. leakage audit


def test_audit_rows_and_leak_line(tiny_ds, tiny_truth, tiny_config, tiny_run: dict[str, Any]) -> None:
    rows = audit(tiny_ds, tiny_truth, tiny_config.detection.budget, tiny_config.detection.cost_profile)
    assert [r["shortcut"] for r in rows] == list(SHORTCUTS)
    for r in rows:
        assert isinstance(r["op_score"], float) and math.isfinite(r["op_score"]), r
        assert r["leaks"] == (r["op_score"] >= LEAK_SHARE * 100), r
        assert 0.0 <= r["auprc"] <= 1.0 and 0.0 <= r["recall_at_k"] <= 1.0
    doc = Path(tiny_run["report"]).read_text(encoding="utf-8")
    section = doc.split("<h2>Leakage audit</h2>", 1)[1]
    pooled_table, per_dataset = section.split("Per dataset", 1)
    # one dataset: the pooled verdict is that dataset's; the tiny world's forged-token case is declared easy
    scen = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>(?:<td>[^<]*</td>){3}<td>(.*?)</td></tr>", pooled_table)
    assert all(r["declared_easy"] and r["declared_easy"].startswith("coupang-forged-token-v3: ") for r in rows)
    assert [(name, verdict) for _, name, verdict in scen] == [
        (r["shortcut"], "declared easy" if r["leaks"] else "no") for r in rows
    ]
    assert {s for s, _, _ in scen} == {"coupang-forged-token-v3"}
    table = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>(?:<td>[^<]*</td>){4}<td>(.*?)</td></tr>", per_dataset)
    assert [(name, verdict) for _, name, verdict in table] == [
        (r["shortcut"], "at or above the line on this seed" if r["leaks"] else "no") for r in rows
    ]
    assert {label for label, _, _ in table} == {_label(tiny_config.seed)}
    assert any(r["leaks"] for r in rows)  # the departed-owner key gives the case away
    assert "solved by a one-line shortcut" not in section and "No shortcut reaches the leak line" in section
    assert "is easy on purpose (coupang-forged-token-v3: the case as it happened" in section
    # results.json carries the same audit, for CI
    leak = json.loads(Path(tiny_run["results"]).read_text())["leakage_audit"]
    assert leak["line"] == LEAK_SHARE * 100 and leak["shortcuts"] == list(SHORTCUTS)
    assert leak["leaking"] == [] and list(leak["declared_easy"]) == ["coupang-forged-token-v3"]
    assert [(r["shortcut"], r["leaks"]) for r in leak["scenarios"]] == [(r["shortcut"], r["leaks"]) for r in rows]
    assert [r["op_score"] for r in leak["datasets"]] == pytest.approx([r["op_score"] for r in rows])


def test_pooled_audit_sums_costs_over_seeds() -> None:
    from breachbench.audit import pooled

    def row(before: float, total: float, perfect: float, false: float, easy: str | None = None) -> dict[str, Any]:
        return {
            "shortcut": "s",
            "op_score": None,
            "declared_easy": easy,
            "parts": {1: (before, total, perfect, false), 10: (total, total, perfect, 0.0)},
        }

    # a chance catch on one seed (op 100 there) and misses on two: pooled well under the line
    out = pooled([[row(10, 100, 10, 0)], [row(100, 100, 10, 0)], [row(100, 100, 10, 0)]])[0]
    assert out["op_score"] == pytest.approx(100 * (300 - 210) / (300 - 30)) and not out["leaks"] and out["datasets"] == 3
    # caught on the first bucket of every seed: a leak
    out = pooled([[row(10, 100, 10, 0)]] * 3)[0]
    assert out["op_score"] == pytest.approx(100.0) and out["leaks"] and out["budget"] == 1


def test_audit_flags_a_planted_perfect_shortcut(tiny_ds, tiny_truth, monkeypatch: pytest.MonkeyPatch) -> None:
    perfect = oracle_alerts(tiny_ds)  # a "shortcut" that knows the answer: it must reach the leak line
    planted = {
        "planted-oracle": lambda view: perfect.filter(pl.col("bucket") == view.bucket),
        "planted-nothing": lambda view: empty_alerts(),
    }
    monkeypatch.setattr("breachbench.audit.SHORTCUTS", planted)
    rows = {r["shortcut"]: r for r in audit(tiny_ds, tiny_truth, 10)}
    assert rows["planted-oracle"]["op_score"] == pytest.approx(100.0) and rows["planted-oracle"]["leaks"] is True
    assert rows["planted-nothing"]["op_score"] == 0.0 and rows["planted-nothing"]["leaks"] is False


# ---------------------------------------------------------------- 8. tuning seeds


def test_tune_sees_only_tuning_labels(tuned_run: dict[str, Any]) -> None:
    out, payload = tuned_run["out"], tuned_run["payload"]
    row = tuned_run["by_id"]["tunable-test"]
    assert row["status"] == "OK", row["error"]  # the tuned instance (not a fresh one) was fitted on each test dataset
    assert row["runs_total"] == 2 and sorted(r["seed"] for r in row["runs"]) == [1, 2]
    assert payload["seeds"] == {"test": [1, 2], "tuning": [11], "sealed": False}
    assert [(d["label"], d["tuning"]) for d in payload["datasets"]] == [
        (_label(1), False),
        (_label(2), False),
        (_label(11, True), True),
    ]
    calls = tuned_run["calls"]
    assert len(calls) == 1  # once per tuning dataset, not once per test dataset
    tune_root = out / "datasets" / _label(11, True)
    assert calls[0]["files"] and all(Path(f).is_relative_to(tune_root) for f in calls[0]["files"])

    def units(ds: Dataset) -> set[tuple]:
        return set(
            ds.positive_units.filter(pl.col("role") == "actor").select(UNITS).unique().iter_rows()
        )  # the labels are actor units

    given = set(calls[0]["labels"].select(UNITS).iter_rows())
    assert calls[0]["labels"].height == len(given)
    assert given == units(Dataset.open(tune_root))
    for seed in (1, 2):
        test_units = units(Dataset.open(out / "datasets" / _label(seed)))
        assert test_units and given != test_units and not test_units <= given, seed
    assert tuned_run["by_id"][ORACLE]["op_score"] == pytest.approx(100.0)


def test_overlapping_test_and_tuning_seeds_is_a_config_error(tiny_config_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tiny_config_path, ["suite.seeds=[1, 2]", "suite.tuning_seeds=[2, 3]"])
    msg = str(err.value)
    assert str(tiny_config_path) in msg and "suite" in msg
    assert re.search(r"\bseeds\b", msg) and "tuning" in msg
    assert re.findall(r"\[[\d, ]*\]", msg) == ["[2]"]  # names the shared seed, not the others
    assert load_config(tiny_config_path, ["suite.seeds=[1, 2]", "suite.tuning_seeds=[3]"]).suite.tuning_seeds == [3]


# ---------------------------------------------------------------- 9. budgets


def test_by_budget_keys_are_suite_budgets_and_the_detection_budget(
    tiny_config, tiny_run: dict[str, Any], five_seed_run: dict[str, Any], tiny_ds, tiny_truth
) -> None:
    for cfg, payload in (
        (tiny_config, json.loads(Path(tiny_run["results"]).read_text())),
        (five_seed_run["config"], five_seed_run["payload"]),
    ):
        ks = sorted(set(cfg.suite.budgets) | {cfg.detection.budget})
        assert payload["budgets"] == ks
        for row in payload["results"]:
            assert sorted(map(int, row["by_budget"])) == ks, row["detector"]
            for run in row["runs"]:
                assert sorted(map(int, run["by_budget"])) == ks
    assert five_seed_run["payload"]["budgets"] == [2, 5, 10, 20]  # 10 is detection.budget only
    s = score_alerts(oracle_alerts(tiny_ds), tiny_truth, budget=3, budgets=(20, 1, 5, 1))
    assert list(s["by_budget"]) == ["1", "3", "5", "20"]
    assert s["by_budget"]["3"]["op_score"] == s["overall"]["op_score"] and len(s["curves"]["budget"]) == 20


def test_oracle_is_perfect_at_every_budget(tiny_rows: dict[str, Any], five_seed_run: dict[str, Any]) -> None:
    for oracle in (tiny_rows[ORACLE], five_seed_run["by_id"][ORACLE]):
        for k, at_k in oracle["by_budget"].items():
            assert at_k["recall_at_k"] == 1.0 and at_k["op_score"] == pytest.approx(100.0), k
            assert at_k["false_alerts_per_bucket"] == 0.0
        for run in oracle["runs"]:
            for k, at_k in run["by_budget"].items():
                assert at_k["recall_at_k"] == 1.0 and at_k["op_score"] == pytest.approx(100.0), (run["dataset"], k)
            assert run["curves"]["budget"] == [1.0] * len(run["curves"]["budget"])


def test_budget_curves_are_non_decreasing_and_match_recall_at_k(tiny_run: dict[str, Any], five_seed_run: dict[str, Any]) -> None:
    checked = 0
    for rows in (tiny_run["rows"], five_seed_run["rows"]):
        for row in rows:
            for run in _records(row):
                curve = run["curves"]["budget"]
                assert len(curve) == max(map(int, run["by_budget"]))
                assert all(b >= a for a, b in itertools.pairwise(curve)), (row["detector"], run["dataset"], curve)
                for k, at_k in run["by_budget"].items():
                    assert curve[int(k) - 1] == pytest.approx(at_k["recall_at_k"]), (row["detector"], k)
                checked += 1
    assert checked >= 5 + 4 * 5
