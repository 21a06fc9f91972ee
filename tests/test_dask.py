"""Generation on Dask (``--executor dask``): the same bytes as serial and the process pool, a lost worker included.

A small world (2,000 customers in four blocks, 16 days) keeps each test to seconds of work; the
Dask clusters are local, on free ports, without a dashboard, so the tests run side by side.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_safety import _alive

from breachbench import sealing
from breachbench.config import ConfigError, load_config
from breachbench.verify import verify_dataset
from simulator.engine import generate, make_executor
from simulator.errors import SimulationError

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs" / "tiny.toml"
SMALL = ["world.customers=2000", "world.block_size=500", "time.end=2025-04-17"]
PROGRESS_LINE = re.compile(r"^\[ *[0-9.]+ s\] ")  # generate's progress lines off a terminal

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="needs the dask extra: pip install 'breachbench[dask]'"
)


def _small():
    return load_config(TINY, SMALL).sim()


def _hashes(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file the manifest lists (world, logs, truth)."""
    m = json.loads((root / "manifest.json").read_text())
    return {f["path"]: f["sha256"] for f in [*m["files"], *m["truth"]]}


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(_small(), tmp_path_factory.mktemp("ref") / "serial", executor="serial")


@needs_dask
@pytest.mark.distributed
@pytest.mark.parametrize("executor", ["process", "dask"])
def test_executors_give_identical_bytes(serial_reference: Path, tmp_path: Path, executor: str) -> None:
    out = generate(_small(), tmp_path / executor, workers=2, executor=executor)
    ref, got = _hashes(serial_reference), _hashes(out)
    assert len(ref) > 100 and ref.keys() == got.keys()
    assert [p for p in ref if ref[p] != got[p]] == []
    assert (out / "manifest.json").read_bytes() == (serial_reference / "manifest.json").read_bytes()
    assert verify_dataset(out, full=True) == []  # no leftover temporary file, every byte as listed


@needs_dask
@pytest.mark.distributed
def test_lost_dask_worker_gives_identical_bytes(serial_reference: Path, tmp_path: Path) -> None:
    """Kill one worker (SIGKILL) while it runs a log shard: its tasks run again, the dataset is the same."""
    import distributed

    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        killed: list[int] = []

        def progress(stage: str, done: int, total: int) -> None:
            if stage != "logs" or killed or done < 3:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            assert busy, "no worker was running a shard"
            pids = client.run(os.getpid, workers=[busy[0]])
            killed.append(pids[busy[0]])
            os.kill(killed[0], signal.SIGKILL)

        out = generate(_small(), tmp_path / "lost", executor="dask", scheduler=cluster.scheduler_address, progress=progress)
        assert killed, "no worker was killed"
    ref, got = _hashes(serial_reference), _hashes(out)
    assert ref.keys() == got.keys()
    assert [p for p in ref if ref[p] != got[p]] == []
    assert verify_dataset(out, full=True) == []
    assert not list(out.rglob("*.part"))


@needs_dask
@pytest.mark.distributed
def test_dask_workers_get_polars_threads_and_the_cluster_closes() -> None:
    with make_executor(2, "dask") as ex:
        threads = list(ex.map(os.environ.get, ["POLARS_MAX_THREADS"] * 2))
        client = ex._client
    assert threads == [str(max(1, (os.cpu_count() or 1) // 2))] * 2
    assert client.status == "closed"


@needs_dask
@pytest.mark.distributed
def test_error_in_a_dask_shard_is_raised_and_closes_the_cluster() -> None:
    with pytest.raises(ZeroDivisionError), make_executor(1, "dask") as ex:
        client = ex._client
        list(ex.map(divmod, [1, 2], [1, 0]))
    assert client.status == "closed"


def test_bad_executor_and_scheduler_without_dask(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="unknown; accepted: serial, process, dask"):
        generate(_small(), tmp_path / "a", executor="ray")
    with pytest.raises(SimulationError, match="--executor dask too"):
        generate(_small(), tmp_path / "b", scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(ConfigError, match="execution.scheduler|execution"):
        load_config(TINY, ["execution.scheduler=tcp://127.0.0.1:1"])
    assert load_config(TINY, ["execution.executor=dask"]).execution.executor == "dask"


def test_the_detector_pool_leaves_dask_config_whole() -> None:
    """Setting distributed.worker.daemon for the detector pool must not drop distributed's other settings on exit
    (dask's config drops a whole missing parent when a set ends), which broke every later cluster in the process."""
    code = (
        "import dask; from breachbench.suite import _ClusterPool; p = _ClusterPool(1, None); p.shutdown(); "
        "print(dask.config.get('distributed.comm.timeouts.connect'), dask.config.get('distributed.worker.daemon'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["30s", "True"], proc.stdout  # distributed's defaults, the daemon one restored


def _cli_without_dask(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a Python where ``distributed`` cannot be imported."""
    code = "import sys; sys.modules['distributed'] = None; from breachbench.cli import main; sys.argv = ['breachbench', *sys.argv[1:]]; main()"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["generate", "run"])
def test_executor_dask_without_dask_names_the_extra(tmp_path: Path, command: str) -> None:
    proc = _cli_without_dask(command, str(TINY), "--out", str(tmp_path / "out"), "--executor", "dask")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'breachbench[dask]'" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


# ---- interrupts and a killed bench: the local cluster goes with it -----------------------------


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "breachbench", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (the dask workers, and what they started)."""
    return sorted(sealing.tree([pid], sealing.proc_table()[0]) - {pid})


def _wait_for_logs(p: subprocess.Popen[str], tmp_path: Path) -> None:
    t0 = time.monotonic()
    while not (tmp_path / f".ds.tmp-{p.pid}" / "logs").is_dir() and p.poll() is None and time.monotonic() - t0 < 90:
        time.sleep(0.01)
    assert p.poll() is None, p.communicate()


@needs_dask
@pytest.mark.distributed
@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_signal_during_dask_generate_is_one_line(tmp_path: Path, sig: int, code: int, name: str) -> None:
    p = _popen(
        "generate",
        str(TINY),
        "--out",
        str(tmp_path / "ds"),
        "--executor",
        "dask",
        "--workers",
        "2",
        *[a for kv in SMALL for a in ("--set", kv)],
    )
    _wait_for_logs(p, tmp_path)
    workers = _descendants(p.pid)
    os.killpg(p.pid, sig)  # the whole group, as a terminal's Ctrl-C does
    _, err = p.communicate(timeout=90)
    lines = [line for line in err.strip().splitlines() if not PROGRESS_LINE.match(line)]  # after 30 s, under load
    assert p.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith(f"interrupted ({name})"), err
    assert list(tmp_path.iterdir()) == [], "left behind"
    t0 = time.monotonic()  # workers close asynchronously once the command is gone: a few seconds' grace, no more
    while any(_alive(w) for w in workers) and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "dask workers outlived the command by more than 10 s"


@needs_dask
@pytest.mark.distributed
def test_kill_9_during_dask_generate_takes_the_workers(tmp_path: Path) -> None:
    p = _popen(
        "generate",
        str(TINY),
        "--out",
        str(tmp_path / "ds"),
        "--executor",
        "dask",
        "--workers",
        "2",
        *[a for kv in SMALL for a in ("--set", kv)],
    )
    _wait_for_logs(p, tmp_path)
    workers = _descendants(p.pid)
    assert workers
    p.kill()
    p.wait()
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "dask workers outlived their killed bench"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "breachbench",
            "generate",
            str(TINY),
            "--out",
            str(tmp_path / "ds"),
            "--executor",
            "serial",
            *[a for kv in SMALL for a in ("--set", kv)],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ds"], "temp dirs left"


@needs_dask
def test_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    import dask
    import distributed  # noqa: F401  (its config defaults first: a set on a missing parent drops it on exit)

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(SimulationError, match="cannot connect to a Dask scheduler"),
    ):
        generate(_small(), tmp_path / "ds", executor="dask", scheduler="tcp://127.0.0.1:1")
    assert list(tmp_path.iterdir()) == []


def _results(out: Path) -> dict:
    """results.json without what may differ between executors: timings, dataset paths, the execution table."""
    timing = {"fit_s", "score_s", "events_per_s", "peak_mb", "path"}

    def strip(x: object) -> object:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in timing}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    payload = json.loads((out / "results.json").read_text())
    payload["config"].pop("execution")
    return strip(payload)  # type: ignore[return-value]


SUITE_DETECTORS = 'detection.detectors=["unissued-token-v1", "stat-own-history-v1", "random", "bad_detectors:Slow"]'


def _suite(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "breachbench", "run", str(TINY), "--set", SMALL[0], "--set", SMALL[2]] + [
        "--set",
        SUITE_DETECTORS,
        "--out",
        str(out),
        *extra,
    ]


def _suite_env() -> dict[str, str]:
    """The bench's environment: the tests folder importable (``bad_detectors``), and workers that may start child processes."""
    return os.environ | {"PYTHONPATH": str(REPO / "tests"), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


@pytest.fixture(scope="module")
def serial_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suite") / "serial"
    res = subprocess.run(_suite(out, "--executor", "serial"), capture_output=True, text=True, check=False, env=_suite_env())
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def _same_run(got: Path, ref: Path) -> None:
    """The same results (apart from timings, paths and the execution table) and the same alerts, byte for byte."""
    assert _results(got) == _results(ref)
    alerts = sorted(p.relative_to(ref) for p in (ref / "alerts").rglob("*.parquet"))
    assert len(alerts) == 5  # the four and the oracle
    for rel in alerts:
        assert (got / rel).read_bytes() == (ref / rel).read_bytes(), rel


@needs_dask
@pytest.mark.distributed
def test_suite_on_dask_gives_the_serial_results(serial_suite: Path, tmp_path: Path) -> None:
    """Datasets and detector slots as tasks on a LocalCluster of 2 workers: the same results, alerts byte for byte."""
    dask = subprocess.run(
        _suite(tmp_path / "dask", "--executor", "dask", "--workers", "2"),
        capture_output=True,
        text=True,
        check=False,
        env=_suite_env(),
    )
    assert dask.returncode == 0, dask.stderr[-2000:]
    assert "detectors: 4 sealed slot(s) as tasks on the Dask cluster" in dask.stdout + dask.stderr
    _same_run(tmp_path / "dask", serial_suite)


@needs_dask
@pytest.mark.distributed
def test_lost_dask_worker_during_detection_gives_the_serial_results(
    serial_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill (SIGKILL) the worker that runs a detector's slot: the scheduler runs the slot again elsewhere, and the
    run's results and alerts are those of a serial run, none lost or doubled."""
    import dask
    import distributed

    for k, v in _suite_env().items():
        monkeypatch.setenv(k, v)  # the cluster's workers, and the slots they start, inherit them
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        bench = subprocess.Popen(
            _suite(tmp_path / "lost", "--scheduler", cluster.scheduler_address),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_suite_env(),
        )
        killed: list[int] = []
        deadline = time.monotonic() + 300
        while bench.poll() is None and time.monotonic() < deadline and not killed:
            for worker, keys in client.processing().items():
                if any(str(k).startswith("run_isolated_many") for k in keys):
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)
        out, _ = bench.communicate(timeout=300)
    assert killed, "no worker was running a detector slot"
    assert bench.returncode == 0, out[-2000:]
    _same_run(tmp_path / "lost", serial_suite)
