"""The researcher's loop: a run into a finished run's folder reuses what did not change.

One copy of the session's tiny run is the finished run; every test works on its own copy of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from breachbench.reuse import detector_fingerprint, reusable
from breachbench.suite import run_suite

EXTRA = "bad_detectors:Inverted"  # a detector the tiny config does not list: a researcher's new one


def _hashes(out: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(out).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted((out / "alerts").rglob("*.parquet"))
    }


@pytest.fixture
def finished(tiny_run: dict[str, Any], tiny_run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's finished tiny run (dataset included)."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir, out, ignore=shutil.ignore_patterns("features"))
    return out


def _run(cfg: Any, out: Path, **kw: Any) -> tuple[dict[str, Any], list[str]]:
    messages: list[str] = []
    res = run_suite(cfg, out, workers=1, log=lambda *a, **k: messages.append(" ".join(map(str, a))), **kw)
    return {r["detector"]: r for r in res["rows"]}, messages


def test_fingerprint_follows_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mydet_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("class D:\n    version = '1'\n")
    (pkg / "helpers.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    a = detector_fingerprint("mydet_pkg:D")
    assert a and a == detector_fingerprint("mydet_pkg:D")
    (pkg / "helpers.py").write_text("X = 2\n")  # a helper of the same package changed
    b = detector_fingerprint("mydet_pkg:D")
    assert b and b != a
    assert "mydet_pkg" not in sys.modules  # found on disk, never imported
    assert detector_fingerprint("no_such_pkg_anywhere:D") is None


def test_adding_a_detector_to_a_finished_run(
    finished: Path, tiny_config: Any, tiny_rows: dict[str, dict[str, Any]], tiny_run: dict[str, Any]
) -> None:
    before = _hashes(finished)
    cfg = tiny_config.model_copy(
        update={"detection": tiny_config.detection.model_copy(update={"detectors": [*tiny_config.detection.detectors, EXTRA]})}
    )
    rows, messages = _run(cfg, finished)
    assert rows[EXTRA]["status"] == "OK" and rows[EXTRA]["reused"] is False
    earlier = [d for d in rows if d not in (EXTRA, "oracle")]
    assert earlier and all(rows[d]["reused"] is True for d in earlier), [d for d in earlier if not rows[d]["reused"]]
    after = _hashes(finished)
    # other detectors' files untouched (bytes and mtime); the oracle anchor is written afresh, same bytes
    assert {k: v for k, v in after.items() if EXTRA not in k and "oracle" not in k} == {
        k: v for k, v in before.items() if "oracle" not in k
    }
    assert {k: v[0] for k, v in after.items() if "oracle" in k} == {k: v[0] for k, v in before.items() if "oracle" in k}
    assert any(EXTRA in k for k in after)
    assert any("reusing the verified alerts" in m for m in messages)
    for det in earlier:  # re-scored from the files: the figures of the run that wrote them
        assert rows[det]["detection_score"] == pytest.approx(tiny_rows[det]["detection_score"], nan_ok=True), det
    res = json.loads((finished / "results.json").read_text())
    assert set(res["alerts"]) == set(after)
    # the leakage audit depends on the datasets, the budget and the bench's code, none changed: reused as it was
    assert any("leakage audit: the earlier run's, reused" in m for m in messages)
    then = json.loads(Path(tiny_run["results"]).read_text())
    assert res["leakage_audit"] == then["leakage_audit"]
    # so do the chance lines (the same datasets, budgets, draws, cost profile and bench code): the earlier run's, whole
    assert any("chance lines: the earlier run's, reused" in m for m in messages)
    assert not any("blind draws per public ranking" in m for m in messages)
    assert "chance_key" in then and res["chance_key"] == then["chance_key"]
    assert (res["chance"], res["chance_halves"]) == (then["chance"], then["chance_halves"])
    board = (finished / "leaderboard.md").read_text()
    assert EXTRA in board and "unissued-token-v1" in board


def test_what_changed_runs_again(finished: Path, tiny_config: Any, tiny_rows: dict[str, dict[str, Any]]) -> None:
    res = json.loads((finished / "results.json").read_text())
    tampered_file = next(k for k in res["alerts"] if "random" in k)
    path = finished / tampered_file
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)  # a file that no longer matches its recorded hash
    for row in res["results"]:
        if row["detector"] == "null":
            row["fingerprint"] = "0" * 64  # as if null's code had changed since
    res["leakage_audit_key"]["bench"] = "0" * 64  # as if the bench's code had changed since
    fresh = json.loads(json.dumps(res["chance"]))
    res["chance_key"]["bench"] = "0" * 64
    res["chance"]["by_budget"][str(tiny_config.detection.budget)]["overall"]["detection_score"]["hi"] = 99.0  # stale
    (finished / "results.json").write_text(json.dumps(res))
    rows, messages = _run(tiny_config, finished)
    assert any("leakage audit: one-line shortcuts" in m for m in messages)  # computed afresh
    assert any("blind draws per public ranking" in m for m in messages)  # and the chance lines: the draws' own figures
    assert json.loads((finished / "results.json").read_text())["chance"] == fresh
    assert rows["random"]["reused"] is False and rows["null"]["reused"] is False
    assert rows["unissued-token-v1"]["reused"] is True
    for det in ("random", "unissued-token-v1"):  # re-run or re-scored: the same figures as the session's run
        assert rows[det]["detection_score"] == pytest.approx(tiny_rows[det]["detection_score"])
        assert rows[det]["op_score"] == pytest.approx(tiny_rows[det]["op_score"])


def test_changed_inputs_reuse_nothing(tiny_run: dict[str, Any], tiny_run_dir: Path, tiny_config: Any) -> None:
    res = json.loads(Path(tiny_run["results"]).read_text())
    datasets = {d["label"]: d["config_hash"] for d in res["datasets"]}
    detection = tiny_config.detection.model_dump(mode="json")
    ids = [r["detector"] for r in res["results"] if r["detector"] != "oracle"]
    fps = {d: detector_fingerprint(d) for d in ids}
    paths = {d: {lab: f"alerts/{d}.parquet" for lab in datasets} for d in ids}
    assert set(reusable(tiny_run_dir, datasets, detection, res["schema_version"], fps, paths)) == set(
        ids
    )  # as it stands: all of them
    for changed in (
        (tiny_run_dir, {k: "0" * 16 for k in datasets}, detection, res["schema_version"]),  # another world
        (tiny_run_dir, datasets, detection | {"timeout_s": detection["timeout_s"] + 1}, res["schema_version"]),  # other limits
        (tiny_run_dir, datasets, detection | {"isolate": not detection["isolate"]}, res["schema_version"]),
        (tiny_run_dir, datasets, detection, res["schema_version"] + 1),  # results of another schema
        (tiny_run_dir / "dataset", datasets, detection, res["schema_version"]),  # no results.json there
    ):
        assert reusable(*changed, fps, paths) == {}
    budget_only = detection | {
        "budget": detection["budget"] + 5,
        "cost_profile": "low_misses",
    }  # scoring settings: files still good
    assert set(reusable(tiny_run_dir, datasets, budget_only, res["schema_version"], fps, paths)) == set(ids)


def test_cli_detectors_option(finished: Path, repo_root: Path) -> None:
    """The added detector's module is found through --plugin-path (not on the bench's import path)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "breachbench", "run", str(repo_root / "configs" / "tiny.toml"), "--out", str(finished)]
    cmd += ["--plugin-path", str(repo_root / "tests")]
    done = subprocess.run([*cmd, "--detectors", EXTRA], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "reusing the verified alerts" in done.stderr and EXTRA in done.stdout
    bad = subprocess.run(
        [*cmd, "--detectors", "unissued-token-v1,,x"], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert bad.returncode == 2 and "--detectors" in bad.stderr and "Traceback" not in bad.stderr


def test_chance_lines_are_recorded_for_reuse_only_where_results_json_holds_them_exactly() -> None:
    """A number that is not finite is written as null, and a tuple comes back a list: lines with either would come back
    as something else, so the run records no ``chance_key`` for them and the next run draws again."""
    from breachbench.suite import _exact_in_json

    assert _exact_in_json([{"by_budget": {"10": {"hi": 2.5, "n": 3, "kind": None}}}, None])
    assert _exact_in_json([{"a": [1.0, 2.0]}, [{"s": 1.5}]])
    assert not _exact_in_json([{"hi": float("nan")}, None])
    assert not _exact_in_json([{"hi": float("inf")}, None])
    assert not _exact_in_json([{"spread": (2.5, 97.5)}, None])
    assert not _exact_in_json([{10: 1.0}, None])


def test_unchanged_rows_stand_whole(finished: Path, tiny_config: Any) -> None:
    """Nothing a reused detector's row depends on changed: the earlier row stands whole, and every file of the run is
    what re-scoring the same alerts gives."""
    res = json.loads((finished / "results.json").read_text())
    ok = {r["detector"] for r in res["results"] if r["status"] == "OK"}
    assert res["rows_key"]["exact"] and set(res["rows_key"]["exact"]) == ok  # the tiny run's rows are held exactly
    del res["rows_key"]  # as a run that recorded no key: the reused alerts are re-scored
    (finished / "results.json").write_text(json.dumps(res))
    outputs = ("results.json", "leaderboard.md", "report.html", "incidents.csv")
    rows, messages = _run(tiny_config, finished)
    rescored = {name: (finished / name).read_bytes() for name in outputs}
    assert not any("reused alerts and scores" in m for m in messages)
    assert sum("reused alerts, re-scored" in m for m in messages) == len(rows) - 1  # every detector but the oracle
    rows, messages = _run(tiny_config, finished)  # the run above recorded the key
    assert sum("reused alerts and scores" in m for m in messages) == len(rows) - 1
    assert not any("re-scored" in m for m in messages)
    for name in outputs:
        assert (finished / name).read_bytes() == rescored[name], name


def test_rows_are_reused_only_under_their_key() -> None:
    from breachbench.reuse import reusable_rows, rows_key

    key = rows_key({"bench": "a" * 64, "budget": 10}, 1000, 0.95)
    prev = {"rows_key": {"key": key, "exact": ["a-v1", "b-v1"]}}
    assert reusable_rows(prev, key) == {"a-v1", "b-v1"}
    assert reusable_rows(prev, rows_key({"bench": "a" * 64, "budget": 10}, 2000, 0.95)) == set()  # other resamples
    assert reusable_rows(prev, rows_key({"bench": "a" * 64, "budget": 10}, 1000, 0.9)) == set()  # another confidence
    assert reusable_rows(prev, rows_key({"bench": "b" * 64, "budget": 10}, 1000, 0.95)) == set()  # the chance key
    assert reusable_rows(None, key) == set() and reusable_rows({}, key) == set()
    assert reusable_rows({"rows_key": {"key": key, "exact": "a-v1"}}, key) == set()
    assert reusable_rows({"rows_key": {"key": key, "exact": ["a-v1", 3]}}, key) == {"a-v1"}


def test_feature_tables_are_reused_where_they_verify(
    tiny_run: dict[str, Any], tiny_run_dir: Path, tiny_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new detector's sealed slot is handed the earlier run's shared feature tables where each file still has the
    SHA-256 that run recorded; a table that changed since is computed again, and nothing else stays in the folder."""
    from breachbench import sealing, suite

    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir, out)  # its feature tables included
    record = json.loads((out / "results.json").read_text())["features"]
    [(label, entry)] = record["datasets"].items()
    files = entry["files"]
    assert files and all(sealing.sha256(out / "features" / rel) == sha for rel, sha in files.items())
    computed: list[Any] = []
    real = suite.shared_features
    monkeypatch.setattr(suite, "shared_features", lambda *a, **k: computed.append(a) or real(*a, **k))
    stray = out / "features" / next(iter(files)).split("/")[0] / "stray" / "x.parquet"
    stray.parent.mkdir()
    stray.write_bytes(b"not the bench's")

    def plus(det: str) -> Any:
        detection = tiny_config.detection.model_copy(update={"detectors": [*tiny_config.detection.detectors, det]})
        return tiny_config.model_copy(update={"detection": detection})

    rows, _ = _run(plus(EXTRA), out)
    assert rows[EXTRA]["status"] == "OK" and rows[EXTRA]["reused"] is False
    assert computed == [] and not stray.parent.exists()
    assert json.loads((out / "results.json").read_text())["features"] == record
    rows, _ = _run(tiny_config, out)  # no detector to run: the tables stay, and so does their record
    assert computed == [] and json.loads((out / "results.json").read_text())["features"] == record
    victim = out / "features" / sorted(files)[0]
    victim.write_bytes(victim.read_bytes()[:-8] + b"\0" * 8)  # no longer what the record says
    rows, _ = _run(plus("bad_detectors:MarkupReasons"), out)
    assert rows["bad_detectors:MarkupReasons"]["status"] == "OK" and len(computed) == 1
    assert sealing.sha256(victim) == files[sorted(files)[0]]  # computed again: the bench's bytes
    assert json.loads((out / "results.json").read_text())["features"] == record


def test_feature_records_name_only_the_benchs_files(tmp_path: Path) -> None:
    from breachbench import sealing
    from breachbench.reuse import reusable_features

    rel = "v3-0123456789abcdef/customer/2025-04-09.parquet"
    f = tmp_path / "features" / rel
    f.parent.mkdir(parents=True)
    f.write_bytes(b"table")
    sha = sealing.sha256(f)
    prev = {"features": {"key": "k", "datasets": {"a": {"config_hash": "h", "files": {rel: sha}}}}}
    assert reusable_features(prev, tmp_path, {"a": "h"}, "k") == {"a": {rel: sha}}
    assert reusable_features(prev, tmp_path, {"a": "other"}, "k") == {}  # another world
    assert reusable_features(prev, tmp_path, {"a": "h"}, "other") == {}  # other code
    assert reusable_features({"features": {"key": "k", "datasets": {"a": "h"}}}, tmp_path, {"a": "h"}, "k") == {}
    outside = tmp_path / "secret.parquet"
    outside.write_bytes(b"table")
    for bad in ("../secret.parquet", "/etc/passwd", "v3-0123456789abcdef/../../secret.parquet"):
        forged = {"features": {"key": "k", "datasets": {"a": {"config_hash": "h", "files": {bad: sha}}}}}
        assert reusable_features(forged, tmp_path, {"a": "h"}, "k") == {}, bad
    f.unlink()
    f.symlink_to(outside)  # the same bytes, through a link
    assert reusable_features(prev, tmp_path, {"a": "h"}, "k") == {}
