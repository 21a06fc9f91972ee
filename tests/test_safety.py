"""Safe operations: --force only over our datasets, one writer per --out, kill -9 and signals leave nothing half-done."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from breachbench import sealing
from breachbench.safety import (
    STAGING,
    begin_run_outputs,
    clear_run_outputs,
    earlier_results_hold,
    publish_run_outputs,
    sweep_scratch,
)
from breachbench.verify import verify_run
from simulator import layout
from simulator.engine import generate
from simulator.errors import SimulationError
from simulator.outdir import locked

REPO = Path(__file__).resolve().parent.parent
TINY = str(REPO / "configs" / "tiny.toml")


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "breachbench", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "breachbench", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _files(root: Path) -> dict[str, str]:
    m = json.loads((root / layout.MANIFEST).read_text())
    return {f["path"]: f["sha256"] for f in [*m["files"], *m["truth"]]}


def test_force_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    p = _cli("generate", TINY, "--out", ".", "--force", cwd=tmp_path)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "not a dataset written by breachbench" in lines[0], p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["thesis.tex"] and (tmp_path / "thesis.tex").read_text() == "precious"


def test_run_does_not_delete_a_foreign_dataset_folder(tmp_path: Path, tiny_config) -> None:
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "notes.txt").write_text("mine")
    p = _cli("run", TINY, "--out", str(tmp_path))
    assert p.returncode == 2 and "not a dataset written by breachbench" in p.stderr, p.stderr
    assert (tmp_path / "dataset" / "notes.txt").read_text() == "mine"


def test_a_held_lock_refuses_a_second_writer(tmp_path: Path, tiny_config) -> None:
    out = tmp_path / "ds"
    with locked(out):
        with pytest.raises(SimulationError, match=r"being written by another breachbench process \(pid \d+\)"):
            generate(tiny_config.sim(), out, only="world")
        p = _cli("generate", TINY, "--out", str(out))
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and f"pid {os.getpid()}" in p.stderr
    assert not out.exists() and [x.name for x in tmp_path.iterdir()] == []


def test_two_concurrent_generates_one_wins(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    procs = [_popen("generate", TINY, "--out", str(out)) for _ in range(2)]
    res = [(p.wait(60), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in res)
    assert codes == [0, 2], res
    loser = next(r for r in res if r[0] == 2)
    assert len(loser[2].strip().splitlines()) == 1 and ("another breachbench process" in loser[2] or "not empty" in loser[2]), (
        loser
    )
    assert sum("dataset written" in r[1] for r in res) == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ds"]


def test_stale_temp_dirs_are_swept(tmp_path: Path, tiny_config) -> None:
    dead = 2**22 + 12345  # above the default pid_max of small machines, and checked below
    assert not Path(f"/proc/{dead}").exists()
    (tmp_path / f".ds.tmp-{dead}" / "logs").mkdir(parents=True)
    (tmp_path / f".other.old-{dead}").mkdir()
    (tmp_path / f".ds.tmp-{os.getpid()}-not-a-pid").mkdir()
    generate(tiny_config.sim(), tmp_path / "ds", only="world")
    assert sorted(x.name for x in tmp_path.iterdir()) == [f".ds.tmp-{os.getpid()}-not-a-pid", "ds"]
    scratch = Path(tempfile.mkdtemp(prefix=f"bb-det-{dead}-"))
    (scratch / "view").mkdir()
    os.chmod(scratch / "view", 0o555)
    assert scratch in sweep_scratch() and not scratch.exists()


def _children(pid: int) -> list[int]:
    return sealing.proc_table()[0].get(pid, [])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["temp-dir", "first-logs", "late"])
def test_kill_9_during_generate_then_rerun(tmp_path: Path, tiny_dataset: Path, moment: str) -> None:
    out = tmp_path / "ds"
    p = _popen("generate", TINY, "--out", str(out), "--workers", "2")
    t0 = time.monotonic()
    tmp = tmp_path / f".ds.tmp-{p.pid}"
    while time.monotonic() - t0 < 30 and p.poll() is None:
        if moment == "temp-dir" and tmp.is_dir():
            break
        if moment == "first-logs" and (tmp / "logs").is_dir():
            break
        if moment == "late" and (tmp / "truth").is_dir():
            break
        time.sleep(0.005)
    workers = _children(p.pid)
    p.kill()
    p.wait()
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "pool workers outlived their killed parent"
    r = _cli("generate", TINY, "--out", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert _files(out) == _files(tiny_dataset)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ds"], "temp dirs left"


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_signal_during_generate_is_one_line(tmp_path: Path, sig: int, code: int, name: str) -> None:
    out = tmp_path / "ds"
    p = _popen("generate", TINY, "--out", str(out), "--workers", "2")
    t0 = time.monotonic()
    while not (tmp_path / f".ds.tmp-{p.pid}" / "logs").is_dir() and time.monotonic() - t0 < 30:
        time.sleep(0.005)
    os.killpg(p.pid, sig)  # the whole group, as a terminal's Ctrl-C does
    _, err = p.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert p.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith(f"interrupted ({name})") and "nothing was written" in lines[0], err
    assert list(tmp_path.iterdir()) == [], "left behind"


def test_clear_run_outputs_only_touches_ours(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("not ours")
    (tmp_path / "alerts" / "x").mkdir(parents=True)
    (tmp_path / "alerts" / "x" / "a.parquet").write_bytes(b"")
    assert clear_run_outputs(tmp_path) == ["alerts/x/a.parquet"]
    assert (tmp_path / "results.json").read_text() == "not ours"
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 2, "results": []}))
    assert clear_run_outputs(tmp_path) == ["results.json"]


RUN_SET = [
    "--set",
    "world.customers=1500",
    "--set",
    "time.end=2025-04-18",
    "--set",
    'detection.detectors=["null", "unissued-token-v1"]',
]


@pytest.fixture(scope="module")
def run_results() -> list[dict]:
    """results.json of each rerun after a kill -9 (filled by the parametrized test below)."""
    return []


def _slots(scratch_glob: str) -> list[Path]:
    """The run's sealed slot folders (not the folder where finished ones wait to be removed)."""
    return [p for p in Path(tempfile.gettempdir()).glob(scratch_glob) if "-spent-" not in p.name]


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["generating", "detector-slot", "alerts-written"])
def test_kill_9_during_run_then_rerun(tmp_path: Path, moment: str, run_results: list[dict]) -> None:
    out = tmp_path / "run"
    p = _popen("run", TINY, "--out", str(out), "--workers", "1", *RUN_SET)
    scratch_glob = f"bb-det-{p.pid}-*"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 90 and p.poll() is None:
        if moment == "generating" and (out / f".dataset.tmp-{p.pid}" / "logs").is_dir():
            break
        if moment == "detector-slot" and _slots(scratch_glob):
            break
        if moment == "alerts-written" and list((out / STAGING).rglob("*.parquet")) if (out / STAGING).is_dir() else False:
            break
        time.sleep(0.005)
    assert p.poll() is None, "the run finished before the kill"
    kids = _children(p.pid)
    p.kill()
    p.wait()
    deadline = time.monotonic() + 5
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(k) for k in kids), "a child of the killed run outlived it"
    assert not (out / "results.json").exists()
    r = _cli("run", TINY, "--out", str(out), "--workers", "1", *RUN_SET)
    assert r.returncode == 0, r.stderr
    assert _cli("verify", str(out)).returncode == 0
    assert sorted(x.name for x in out.iterdir() if x.name.startswith(".")) == []
    assert list(Path(tempfile.gettempdir()).glob(scratch_glob)) == [], "scratch of the killed run left"
    res = json.loads((out / "results.json").read_text())
    run_results.append(res)
    assert all(x["alerts"] == run_results[0]["alerts"] for x in run_results), "reruns differ in their alert bytes"
    assert len(res["alerts"]) == 3  # null, the rule, the oracle


def _results_bytes(out: Path) -> dict[str, bytes]:
    """A run's results files and alerts files (relative path -> bytes)."""
    files = [out / name for name in ("results.json", "leaderboard.md", "report.html", "incidents.csv")]
    files += sorted((out / "alerts").rglob("*.parquet")) if (out / "alerts").is_dir() else []
    return {f.relative_to(out).as_posix(): f.read_bytes() for f in files if f.is_file()}


def _until_a_slot(p: subprocess.Popen) -> None:
    scratch_glob = f"bb-det-{p.pid}-*"
    t0 = time.monotonic()
    while not _slots(scratch_glob) and time.monotonic() - t0 < 90 and p.poll() is None:
        time.sleep(0.005)
    assert p.poll() is None, "the run finished before the interrupt"


@pytest.mark.slow
def test_an_interrupted_or_killed_rerun_keeps_the_finished_runs_results(tmp_path: Path) -> None:
    """A run into a finished run's folder that is stopped (SIGTERM, kill -9) in its detector phase leaves the earlier
    results, reports and alerts byte for byte, still verifying; the next run sweeps what the killed one left."""
    out = tmp_path / "run"
    assert _cli("run", TINY, "--out", str(out), "--workers", "1", *RUN_SET).returncode == 0
    finished = _results_bytes(out)
    assert {"results.json", "leaderboard.md", "report.html", "incidents.csv"} <= set(finished) and len(finished) == 7
    p = _popen("run", TINY, "--out", str(out), "--workers", "1", "--rerun", *RUN_SET)
    _until_a_slot(p)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "Traceback" not in err, err
    assert "the earlier run's results.json, reports and alerts stay as they were" in err.strip().splitlines()[-1], err
    assert _results_bytes(out) == finished and not (out / STAGING).exists()
    assert _cli("verify", str(out)).returncode == 0
    p = _popen("run", TINY, "--out", str(out), "--workers", "1", "--rerun", *RUN_SET)
    _until_a_slot(p)
    p.kill()
    p.wait()
    assert _results_bytes(out) == finished
    assert _cli("verify", str(out)).returncode == 0
    r = _cli("run", TINY, "--out", str(out), "--workers", "1", *RUN_SET)  # reuses the kept alerts
    assert r.returncode == 0 and "reusing the verified alerts of 2 detector(s)" in r.stderr, r.stderr
    assert sorted(x.name for x in out.iterdir() if x.name.startswith(".")) == []
    again = _results_bytes(out)
    assert {k: v for k, v in again.items() if k.startswith("alerts/")} == {
        k: v for k, v in finished.items() if k.startswith("alerts/")
    }


def test_a_run_publishes_its_alerts_only_when_done(tiny_run: dict, tiny_run_dir: Path, tmp_path: Path) -> None:
    """The steps of a run into a finished run's folder: the earlier results stay through begin, go at publish (but the kept
    alerts), and alerts left without their results.json (a run killed while it published) go at the next begin."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir, out, ignore=shutil.ignore_patterns("features"))
    before = _results_bytes(out)
    alerts = sorted(k for k in before if k.startswith("alerts/"))
    assert earlier_results_hold(out) and len(alerts) >= 3
    stage = begin_run_outputs(out)
    assert stage == out / STAGING and stage.is_dir() and _results_bytes(out) == before
    (stage / "alerts").mkdir()
    (stage / "alerts" / "new-v1.parquet").write_bytes(b"new")
    publish_run_outputs(out, keep={alerts[0]})
    assert sorted(_results_bytes(out)) == sorted([alerts[0], "alerts/new-v1.parquet"]) and not stage.exists()
    assert not earlier_results_hold(out)  # no results.json: the caller writes it next
    begin_run_outputs(out, keep={alerts[0]})
    assert sorted(_results_bytes(out)) == [alerts[0]]
    # results whose alerts or datasets changed since no longer hold, so a begin removes them
    shutil.rmtree(out)
    shutil.copytree(tiny_run_dir, out, ignore=shutil.ignore_patterns("features"))
    res = json.loads((out / "results.json").read_text())
    res["datasets"][0]["config_hash"] = "0" * len(res["datasets"][0]["config_hash"])
    (out / "results.json").write_text(json.dumps(res))
    assert not earlier_results_hold(out)
    assert any("config_hash differs from results.json" in p.what for p in verify_run(out))
    begin_run_outputs(out)
    assert _results_bytes(out) == {}


def test_after_a_failed_run_the_earlier_results_stay_and_its_own_go(tiny_run: dict, tiny_run_dir: Path, tmp_path: Path) -> None:
    """What the command line does after an error or an interrupt: results older than the run stay whole; results the run
    wrote itself (its report then failed) go, with its staged alerts."""
    from breachbench.cli import _kept_of_run

    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir, out, ignore=shutil.ignore_patterns("features"))
    before = _results_bytes(out)
    (out / STAGING / "alerts").mkdir(parents=True)
    (out / STAGING / "alerts" / "x.parquet").write_bytes(b"x")
    said = _kept_of_run(out, time.time() + 60)
    assert "the earlier run's results.json, reports and alerts stay as they were; removed 1 alerts file(s)" in said, said
    assert _results_bytes(out) == before and not (out / STAGING).exists()
    said = _kept_of_run(out, 0.0)  # results.json written after the run started: the run's own
    assert "results.json not written" in said and _results_bytes(out) == {}, said


@pytest.mark.slow
def test_sigterm_in_the_detector_phase_says_what_was_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = _popen("run", TINY, "--out", str(out), "--workers", "1", *RUN_SET)
    scratch_glob = f"bb-det-{p.pid}-*"
    t0 = time.monotonic()
    while not _slots(scratch_glob) and time.monotonic() - t0 < 90 and p.poll() is None:
        time.sleep(0.005)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert p.returncode == 143, err
    assert (
        lines[-1].startswith("interrupted (SIGTERM): kept 1 complete dataset(s) that verify")
        and "results.json not written" in lines[-1]
    ), err
    assert "Traceback" not in err
    assert not (out / "results.json").exists()
    assert not (out / "alerts").exists() or not list((out / "alerts").rglob("*.parquet"))
    assert list(Path(tempfile.gettempdir()).glob(scratch_glob)) == []
    assert _cli("verify", str(out / "dataset")).returncode == 0
