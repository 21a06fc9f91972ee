"""Hostile plugins against the sealed detector slots: truth seekers, writers, forkers, memory in a grandchild.

Each slot gets a private, read-only view of ``world/`` and ``logs/`` and the shared features
(Landlock where the kernel has it), a process group of its own, and the bench kills its whole
tree when the slot ends. These tests assert what a plugin could not do: find truth, change a byte
outside its scratch, leave a process behind, or escape the memory limit through a grandchild.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import bad_detectors
import polars as pl
import pytest

from breachbench import sealing
from breachbench.config import load_config
from breachbench.dataset import Dataset
from breachbench.isolation import run_isolated, shared_features
from breachbench.runner import run_detector
from breachbench.suite import run_suite

REPO = Path(__file__).resolve().parent.parent
SMALL = ["world.customers=1500", "time.end=2025-04-18"]
LANDLOCK = sealing.landlock_abi() >= 1
#: One xdist worker for the whole module: its tests look for the forkers' and hogs' processes by
#: name machine-wide, so no other worker may be running one of them at the same time.
pytestmark = pytest.mark.xdist_group("sealing")


def _hashes(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _named(names: tuple[bytes, ...]) -> list[int]:
    """Pids of live (non-zombie) processes whose comm is one of ``names``."""
    want = {n.decode() for n in names}
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                comm = Path(f"/proc/{e}/comm").read_text().strip()
                state = Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if comm in want and state != "Z":
                out.append(int(e))
    return out


def test_truth_seeker_finds_truth_when_not_sealed(tiny_ds) -> None:
    """The seeker is real: in the bench's own process it finds truth and flags attackers."""
    r = run_detector("bad_detectors:TruthSeeker", tiny_ds)
    assert r.status == "OK", r.error
    assert r.alerts.height > 0 and r.alerts["score"].max() > 0


def test_sealed_view_has_no_truth_and_no_scenarios(tiny_dataset: Path, tmp_path: Path) -> None:
    slot = sealing.SealedSlot(tmp_path / "slot")
    sealing.build_view(tiny_dataset, slot, link=False)
    tops = {p.name for p in slot.view.iterdir()}
    assert tops == {"world", "logs", "manifest.json"}, tops
    m = json.loads((slot.view / "manifest.json").read_text())
    assert set(m["config"]) == {"time"} and "truth" not in m
    assert all(f["path"].startswith(("world/", "logs/")) for f in m["files"])
    ds = Dataset.open(slot.view)
    assert ds.scored == Dataset.open(tiny_dataset).scored
    sealing.unseal(slot)
    assert not slot.scratch.exists()


def test_readable_roots_leave_out_protected_subtrees(tmp_path: Path) -> None:
    (tmp_path / "repo" / "pkg").mkdir(parents=True)
    (tmp_path / "repo" / "runs" / "x" / "dataset").mkdir(parents=True)
    (tmp_path / "repo" / "runs" / "y").mkdir(parents=True)
    roots = sealing.readable_roots([tmp_path / "repo", "/"], [tmp_path / "repo" / "runs" / "x"])
    assert tmp_path / "repo" / "pkg" in roots and tmp_path / "repo" / "runs" / "y" in roots
    assert not any(r == Path("/") or (tmp_path / "repo" / "runs" / "x").is_relative_to(r) for r in roots), roots


def test_a_sitecustomize_on_pythonpath_does_not_run_in_a_slot(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python imports ``sitecustomize`` from its import path as it starts, before any of the bench's code: a red-team
    plugin shipped one in its folder on ``PYTHONPATH``, and each slot's child ran it unsealed, read truth and scored as
    the oracle. The child starts without Python's start-up variables (the import path still reaches it)."""
    from multiprocessing import resource_tracker

    from breachbench import untrusted

    plug, marker = tmp_path / "plug", tmp_path / "ran"
    plug.mkdir()
    (plug / "sitecustomize.py").write_text(f"import os\nopen({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n")
    resource_tracker.ensure_running()  # the bench's own helpers, started before the variable is set
    untrusted.ensure_reader()
    monkeypatch.setenv("PYTHONPATH", str(plug))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    r = run_isolated("null", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK", r.error
    assert not marker.exists(), marker.read_text()
    assert os.environ["PYTHONPATH"] == str(plug)  # the bench's own environment is put back


def test_a_detector_in_a_plugin_folder_runs_sealed_and_never_on_the_bench_import_path(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--plugin-path: a module:Class found in the folder is imported in its sealed process alone; the folder's
    ``sitecustomize.py`` never runs (it is on no process's import path as Python starts)."""
    from breachbench.reuse import detector_fingerprint
    from breachbench.runner import preflight_detectors
    from detectors.registry import DetectorLoadError
    from simulator.plugins import PLUGIN_PATH_ENV

    plug, marker = tmp_path / "plug", tmp_path / "ran"
    plug.mkdir()
    (plug / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'a').write('ran')\n")
    (plug / "plugdet.py").write_text(
        "from detectors.builtin import UnissuedTokenRule\n\n\nclass Det(UnissuedTokenRule):\n    pass\n"
    )
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)
    with pytest.raises(DetectorLoadError, match="plugdet:Det"):
        preflight_detectors(["plugdet:Det"])
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plug))
    preflight_detectors(["plugdet:Det"])
    assert detector_fingerprint("plugdet:Det") is not None
    r = run_isolated("plugdet:Det", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK" and r.alerts.height > 0, r.error
    assert str(plug) not in sys.path and "plugdet" not in sys.modules and not marker.exists()


@pytest.mark.parametrize(
    ("module", "file"),
    [
        ("runs.evil", "runs/evil.py"),  # a namespace package of every runs/ folder on the search path
        ("runs", "runs.py"),  # a module the child imports ahead of the namespace folder ./runs the bench found by name
        ("runs.prev", "runs/prev/__init__.py"),  # a package named as the other run's folder: ./runs holds a prev/ too
    ],
)
def test_a_plugin_named_as_a_folder_of_the_current_folder_is_granted_only_its_own_code(
    module: str, file: str, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``python -m`` the current folder leads the import path, and its ``runs/`` (other runs' truth) is a
    namespace package there. A plugin ``runs.evil`` had it granted whole as a portion of its namespace package; a red
    team's ``runs`` and ``runs.old`` (a plain module, and a package named as another run's folder) had it granted as
    the folder found by name, where the child imports the plugin's own code, and scored as the oracle."""
    import tempfile

    from simulator.plugins import PLUGIN_PATH_ENV

    ws, plug = tmp_path / "ws", tmp_path / "plug"
    (ws / "runs" / "prev").mkdir(parents=True)
    secret = ws / "runs" / "prev" / "truth.txt"
    secret.write_text("the other run's truth")
    (plug / file).parent.mkdir(parents=True, exist_ok=True)
    (plug / file).write_text(
        "from pathlib import Path\nfrom detectors.builtin import UnissuedTokenRule\n\n\nclass Det(UnissuedTokenRule):\n"
        "    def fit(self, view):\n        try:\n"
        f"            text = Path({str(secret)!r}).read_text()\n"
        "        except OSError:\n            return super().fit(view)\n"
        "        raise RuntimeError('read: ' + text)\n"
    )
    monkeypatch.chdir(ws)
    monkeypatch.syspath_prepend(str(ws))  # the bench's current folder, as `python -m breachbench` puts it first
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plug))
    # the temp folder is covered in a slot's mount namespace (where the bench runs as root): move it off ws's path
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    r = run_isolated(f"{module}:Det", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK" and r.alerts.height > 0, r.error


@pytest.mark.skipif(
    not LANDLOCK, reason="the kernel has no Landlock: a sealed slot runs on copies but can read the bench's files"
)
def test_a_plugin_folder_that_holds_runs_and_datasets_shows_the_detector_none_of_them(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red team's plugin walked its own ``--plugin-path`` folder, which held an earlier run of the same config, and
    returned that run's oracle alerts: it scored as the oracle. A run's output folder (finished, or staged before its
    results), a dataset and a loose ``truth`` folder inside a plugin folder are now hidden from every detector; the
    plugin's own package beside them is not."""
    import tempfile

    from breachbench.isolation import bench_files
    from simulator.plugins import PLUGIN_PATH_ENV

    plug = tmp_path / "plug"
    bench = {
        "out1/alerts/oracle.parquet": "alerts",  # a finished run
        "out1/results.json": "{}",
        "out1/datasets/d/manifest.json": "{}",
        "out1/datasets/d/truth/incidents.parquet": "truth",
        ".out2.tmp-123/alerts/oracle.parquet": "alerts",  # a run still writing (no results.json yet)
        ".out2.tmp-123/datasets/d/logs/x.parquet": "logs",
        "ds/manifest.json": "{}",  # a dataset generated into the folder
        "ds/truth/actors.parquet": "truth",
        "loose/truth/actors.parquet": "truth",  # a truth folder copied out of its dataset
        "sealed/secret": "a" * 64 + "\n",  # a run's secret (its datasets' seeds)
    }
    for rel, text in bench.items():
        (plug / rel).parent.mkdir(parents=True, exist_ok=True)
        (plug / rel).write_text(text)
    (plug / "helpers").mkdir()
    (plug / "helpers" / "__init__.py").write_text("WORD = 'mine'\n")
    (plug / "thief.py").write_text(
        "from pathlib import Path\nfrom detectors.builtin import UnissuedTokenRule\nfrom helpers import WORD\n\n\n"
        "class Det(UnissuedTokenRule):\n    def fit(self, view):\n"
        f"        for rel in {sorted(bench)!r}:\n"
        "            try:\n"
        f"                text = (Path({str(plug)!r}) / rel).read_text()\n"
        "            except OSError:\n                continue\n"
        "            raise RuntimeError('read ' + rel + ': ' + text[:20])\n"
        "        return super().fit(view)\n"
    )
    found, large = bench_files([plug])
    assert sorted(p.relative_to(plug).as_posix() for p in found) == [".out2.tmp-123", "ds", "loose/truth", "out1", "sealed"]
    assert large == [] and bench_files([plug], limit=5) == ([], [plug.resolve()])  # too many to search: none granted
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plug))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the slot's scratch off the plugin folder's path
    (tmp_path / "tmp").mkdir()
    r = run_isolated("thief:Det", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK" and r.alerts.height > 0, r.error


def test_a_plugin_folder_too_large_to_search_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from breachbench import isolation
    from breachbench.cli import app

    for i in range(12):
        (tmp_path / "big" / f"d{i}").mkdir(parents=True)
    monkeypatch.setattr(isolation, "SCAN_ENTRIES", 10)
    r = CliRunner().invoke(app, ["run", str(tmp_path / "none.toml"), "--plugin-path", str(tmp_path / "big")])
    assert r.exit_code == 2 and "more than 10 files and folders" in " ".join(r.output.replace("│", " ").split()), r.output


def test_forked_descendants_die_with_the_slot(tiny_dataset: Path) -> None:
    r = run_isolated("bad_detectors:Forker", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK", r.error
    assert r.alerts.height > 0
    time.sleep(0.2)
    assert _named(bad_detectors.FORK_NAMES) == []


def test_no_block_device_opens_in_a_slot(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disks' block devices, which a root bench's child (root, its capabilities dropped) could still open as their
    owner, are not readable in a slot: a raw disk holds the truth files' bytes."""
    devices = [str(p) for p in sorted(Path("/dev").iterdir()) if p.is_block_device()]
    opened_here = []
    for d in devices:
        try:
            os.close(os.open(d, os.O_RDONLY))
            opened_here.append(d)
        except OSError:
            continue
    if not opened_here or not LANDLOCK:
        pytest.skip("no block device this bench can open, or no Landlock")
    (tmp_path / "opens_devices.py").write_text(OPENS_DEVICES.format(devices=opened_here))
    monkeypatch.syspath_prepend(str(tmp_path))
    r = run_isolated("opens_devices:OpensDevices", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK", r.error
    assert set(r.alerts["entity_id"].to_list()) == {"opened:0"}, (opened_here, r.alerts["entity_id"].to_list())


OPENS_DEVICES = """
import os
from bad_detectors import Reports

DEVICES = {devices!r}


class OpensDevices(Reports):
    def found(self, view):
        n = 0
        for d in DEVICES:
            try:
                os.close(os.open(d, os.O_RDONLY))
                n += 1
            except OSError:
                continue
        return f"opened:{{n}}"
"""


def test_the_slot_is_stopped_while_the_bench_reads_its_alerts() -> None:
    """Reading a dataset's alerts keeps the bench from watching the slot, whose warm child goes on to its next
    dataset: every process of the slot's tree (a grandchild too) is stopped meanwhile, and goes on after."""
    import subprocess
    import sys

    from breachbench import isolation, sealing

    before = set(sealing.proc_table()[0].get(os.getpid(), []))
    child = subprocess.Popen([sys.executable, "-c", "import os, time; os.fork(); time.sleep(60)"])
    try:
        for _ in range(100):
            tree = sealing.tree([child.pid], sealing.proc_table()[0])
            if len(tree) == 2:
                break
            time.sleep(0.05)
        assert len(tree) == 2

        def states() -> set[str]:
            return {Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] for p in tree}

        with isolation._frozen(type("Proc", (), {"pid": child.pid})(), before):
            assert states() == {"T"}
        assert "T" not in states()
    finally:
        sealing.kill_all(tree)
        child.wait()


def test_a_slot_cannot_watch_files(tiny_dataset: Path) -> None:
    """Landlock does not cover inotify or fanotify: the seccomp filter refuses them."""
    r = run_isolated("bad_detectors:WatchesFiles", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK", r.error
    assert set(r.alerts["entity_id"]) == {"watch:"}


def test_a_slot_cannot_share_memory_queue_messages_or_lease_files(tiny_dataset: Path) -> None:
    """System V and POSIX message queue IPC, key rings, file leases and directory notices: the seccomp filter refuses them (a
    red-team plugin held 2 GiB of shared memory under a 512 MiB limit, and stalled other processes' opens with a lease);
    fcntl's other commands still work."""
    r = run_isolated("bad_detectors:SharesMemory", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK", r.error
    assert set(r.alerts["entity_id"]) == {"ipc:fcntl"}


def test_two_slots_started_from_threads_of_one_process_do_not_kill_each_other(tiny_dataset: Path) -> None:
    """The bench takes every new child of its process for one of its slot's: slots from two threads of one process (a
    Dask worker with several threads) take turns, so one that ends at once kills nothing of the other's."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as ex:
        quick = ex.submit(run_isolated, "null", tiny_dataset, timeout_s=120, memory_mb=1024)
        time.sleep(0.2)  # the quick slot has begun; the slow one starts its child while it runs, and outlives it
        slow = ex.submit(run_isolated, "bad_detectors:Slow", tiny_dataset, timeout_s=120, memory_mb=1024)
        runs = slow.result(), quick.result()
    assert [r.status for r in runs] == ["OK", "OK"], [(r.status, r.error) for r in runs]


def test_a_thread_bomb_ends_its_slot(tiny_dataset: Path) -> None:
    """Threads are counted over the slot's tree with its memory: past MAX_TASKS the slot ends with an ERROR row that says so."""
    from breachbench.isolation import MAX_TASKS

    r = run_isolated("bad_detectors:ThreadBomb", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "ERROR" and f"past the limit of {MAX_TASKS:,}" in (r.error or ""), (r.status, r.error)
    assert r.alerts.height == 0


def test_memory_of_a_grandchild_counts_against_the_limit(tiny_dataset: Path) -> None:
    t = time.perf_counter()
    r = run_isolated("bad_detectors:GrandchildHog", tiny_dataset, timeout_s=60, memory_mb=400)
    assert r.status == "OOM", (r.status, r.error)
    assert "limit of 400 MiB" in r.error and r.peak_mb > 400
    assert time.perf_counter() - t < 30
    time.sleep(0.2)
    assert _named((bad_detectors.HOG_NAME,)) == []


def test_a_detector_that_fills_its_scratch_is_stopped(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin cannot fill the bench's disk: past its scratch limit (four times its memory limit, 256 MiB at least;
    32 MiB here, which the bench side reads) in its work folders the slot is killed with an ERROR row naming it."""
    from breachbench import isolation

    assert isolation.scratch_limit(4096) == 16 * 2**30 and isolation.scratch_limit(10) == 256 * 2**20
    monkeypatch.setattr(isolation, "scratch_limit", lambda memory_mb: 32 * 2**20)
    t = time.perf_counter()
    r = run_isolated("bad_detectors:DiskFiller", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "scratch folder" in r.error and "32 MiB" in r.error, (r.status, r.error)
    assert time.perf_counter() - t < 60


def test_a_detector_cannot_see_when_the_bench_measures_its_scratch(tiny_dataset: Path) -> None:
    """The bench's listing of a slot's work folders leaves their access times, and its measurements come at random:
    a red team's plugin watched a folder's access time, saw each measurement and held 6 GiB against a 2 GiB limit in
    the second between two (its row OK)."""
    from breachbench import fstree

    r = run_isolated("bad_detectors:SeesTheChecks", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK", r.error
    assert fstree._NOATIME  # Linux


def test_alerts_handed_over_count_against_the_scratch_limit(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench keeps each bucket's handed-over alerts (copied out of the slot's reach) until the dataset is done. A
    red-team plugin handed over 64 MiB per bucket and held 1.2 GiB of the bench's disk against a 400 MiB limit; now they
    count with its work folders."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, "scratch_limit", lambda memory_mb: 8 * 2**20)
    r = run_isolated("bad_detectors:HandsOverJunk", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "handed over 9 MiB of alerts, past the limit of its scratch folder (8 MiB)" in r.error, (
        r.status,
        r.error,
    )


def test_a_work_folder_too_deep_to_walk_ends_the_slot_and_goes(tiny_dataset: Path) -> None:
    """1,500 nested folders once made the bench's clean-up recurse past Python's limit: the run died and the folder
    stayed for every later run to trip on. Now the slot is stopped (the bench cannot measure such a folder) and its
    folder removed."""
    import tempfile

    mine = lambda: set(Path(tempfile.gettempdir()).glob(f"bb-det-{os.getpid()}-*"))  # noqa: E731
    before = mine()
    r = run_isolated("bad_detectors:DeepScratch", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "levels deep" in r.error, (r.status, r.error)
    assert mine() <= before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run the clean-up as another user")
def test_remove_tree_takes_folders_of_mode_0_as_their_owner() -> None:
    """A bench not run as root could neither list nor remove a folder its detector gave mode 0 (root reads past modes)."""
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp())
    base.chmod(0o777)
    code = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from breachbench import fstree
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody, from here on
top = {str(base / "slot")!r}
os.makedirs(top + "/a/b/c")
open(top + "/a/b/c/f", "w").write("x")
for d, mode in (("/a/b/c", 0), ("/a/b", 0), ("/a", 0o500)):
    os.chmod(top + d, mode)
print(fstree.remove_tree(top), os.path.exists(top))
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.stdout.split() == ["True", "False"], (out.stdout, out.stderr)
    finally:
        from breachbench import fstree

        fstree.remove_tree(base)


def test_a_leftover_deep_slot_folder_is_swept(tmp_path: Path) -> None:
    """What a killed bench left (a slot folder 3,000 levels deep, read-only folders in it) goes on the next run."""
    from breachbench import fstree
    from breachbench.safety import sweep_scratch

    dead = tmp_path / "bb-det-999999999-x"  # no such process
    (dead / "work").mkdir(parents=True)
    _deep(dead / "work", 3000)
    (dead / "view").mkdir()
    (dead / "view").chmod(0o500)
    try:
        assert sweep_scratch(tmp_path) == [dead] and not dead.exists()
    finally:  # pytest's own clean-up of tmp_path recurses (shutil.rmtree on Python 3.11)
        fstree.remove_tree(dead)


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock: the child is not sealed")
def test_a_sealed_child_has_no_sockets_no_bench_pipes_and_no_voice(tiny_dataset: Path, tmp_path: Path) -> None:
    """No UDP, IPv6 or Unix socket (Landlock refuses TCP alone) and no datagram from a socket pair to a named or abstract
    Unix socket (a pair still works), no pipe of the bench's but its two wake pipes (the
    resource tracker's was one: it unlinks what it is told to when the bench exits), and its error text reaches the
    leaderboard and the terminal as one inert line."""
    import io
    import socket

    import bad_detectors
    from rich.console import Console

    from breachbench.report import leaderboard_markdown, print_leaderboard

    # datagram sockets outside the slot, one named (where the red team's listened) and one abstract
    listeners, bound = [], []
    names = [*bad_detectors.PROBE_LISTENERS, "\0" + os.path.basename(bad_detectors.PROBE_LISTENERS[0])]
    for addr in names:
        if len(bound) == 1 and not addr.startswith("\0"):
            continue  # one named listener is enough
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.bind(addr)  # taken: another run's test listens there
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        listeners.append(s)
        bound.append(addr)
    try:
        r = run_isolated("bad_detectors:Prober", tiny_dataset, timeout_s=120, memory_mb=1024)
        got = []
        for s in listeners:
            with contextlib.suppress(BlockingIOError):
                got.append(s.recv(100))
    finally:
        for s in listeners:
            s.close()
        for addr in bound:
            if not addr.startswith("\0"):
                Path(addr).unlink(missing_ok=True)
    assert r.status == "ERROR" and "sockets opened=[] sent=[] pair=ok pipes=" in r.error and "tracker=None" in r.error, r.error
    assert any(not a.startswith("\0") for a in bound) and not got, (bound, got)
    assert int(r.error.split("pipes=")[1].split()[0]) <= 2, r.error
    assert not any(c in r.error for c in "\n\x1b\x07\u202e"), repr(r.error)
    row = {"detector": "bad_detectors:Prober", "status": r.status, "error": bad_detectors.PROBE_NOISE}
    board = leaderboard_markdown([row], "t", 10)
    assert not any(ln.startswith(("# Leaderboard: forged", "| x |")) for ln in board.splitlines()) and "\x1b" not in board
    (line,) = [ln for ln in board.splitlines() if ln.startswith("- `bad_detectors:Prober`")]
    assert line.count("`") == 4, line  # the error in one code span
    out = io.StringIO()
    print_leaderboard([row], "t", console=Console(file=out, width=200, force_terminal=True, color_system="standard"))
    shown = out.getvalue().split("bad_detectors:Prober", 1)[1]
    assert "[bold green]OK[/bold green]" in shown and "\x1b]0;" not in shown, repr(shown)


def test_forged_timings_in_a_status_file_are_an_error() -> None:
    """A timing is a number of seconds the slot's time limit allows; a red-team plugin's 1.7e308 s, finite, summed to
    infinity over two datasets, and its 5e-324 s gave infinite events per second."""
    from breachbench.isolation import _seconds
    from breachbench.report import finite_json
    from breachbench.runner import rate

    assert _seconds({"fit_s": 1.5}, "fit_s", 60) == 1.5 and _seconds({}, "score_s", 60) == 0.0
    for bad in (float("nan"), float("inf"), -1.0, "3", True, None, 1.7e308, 10_000.0):
        with pytest.raises(ValueError, match="fit_s"):
            _seconds({"fit_s": bad}, "fit_s", 60)
    assert rate(10, 5e-324) is None and rate(10, 0.0) is None and rate(10, 2.0) == 5.0
    assert finite_json({"a": [1.0, float("inf")], "b": float("nan"), "c": "x"}) == {"a": [1.0, None], "b": None, "c": "x"}


def test_deleted_files_kept_open_count_against_the_scratch_limit(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A red-team pass held 500 MiB in deleted files against a 400 MiB limit: the folder looked empty."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, "scratch_limit", lambda memory_mb: 32 * 2**20)
    r = run_isolated("bad_detectors:HoldsDeleted", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "scratch folder" in r.error and "kept open" in r.error, (r.status, r.error)


def test_deleted_files_kept_mapped_count_against_the_scratch_limit(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A red-team pass mapped deleted work files and memfds from C, closed every descriptor, and held 2 GiB against a
    300 MiB limit, its row OK: neither a folder, a descriptor nor the resident size showed them."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, "scratch_limit", lambda memory_mb: 32 * 2**20)
    r = run_isolated("bad_detectors:MapsDeleted", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "scratch folder" in r.error and "mapped" in r.error, (r.status, r.error)


def test_bytes_waiting_in_a_slots_pipes_count_against_the_scratch_limit(
    tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red-team pass filled pipes and kept their read ends open in helper processes: 1.2 GiB of kernel memory
    against a 400 MiB limit, its row OK. A slot that holds too many pipes for the bench to look into ends too."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, "scratch_limit", lambda memory_mb: 32 * 2**20)
    r = run_isolated("bad_detectors:FillsPipes", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "scratch folder" in r.error and "pipes" in r.error, (r.status, r.error)
    monkeypatch.setattr(isolation, "MAX_PIPES", 200)
    r = run_isolated("bad_detectors:ManyPipes", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "more than 200 pipes" in r.error, (r.status, r.error)


def test_a_slot_holding_too_many_descriptors_for_the_bench_to_read_ends(
    tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red-team plugin handed 19,000 descriptors to each of 400 helpers: the bench read 7.6 million links a second,
    sampled no memory meanwhile, and the plugin held 1.1 GiB against a 256 MiB limit, its row OK. Past
    MAX_DESCRIPTORS (3,000 of them in four helpers here, against a line of 8,000) the slot ends."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, "MAX_DESCRIPTORS", 8_000)
    r = run_isolated("bad_detectors:ManyDescriptors", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "more than 8,000 descriptors and mapped files" in r.error, (r.status, r.error)


@pytest.mark.parametrize(
    ("plugin", "limit", "words"),
    [("ManyMappings", "MAX_MAPPINGS", "memory mappings"), ("ManyWatches", "MAX_WATCHES", "epoll watches")],
)
def test_a_slots_mappings_and_epoll_watches_are_limited(
    tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch, plugin: str, limit: str, words: str
) -> None:
    """Kernel memory no resident size shows: a red-team plugin held 1.4 GiB in 6.5 million untouched mappings and 400 MiB
    in 2,000,000 epoll watches against a 256 MiB limit, its rows OK. Here 20,000 mappings and 10,000 watches against
    lines of 10,000 and 5,000."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, limit, {"MAX_MAPPINGS": 10_000, "MAX_WATCHES": 5_000}[limit])
    r = run_isolated(f"bad_detectors:{plugin}", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and words in r.error and "more than" in r.error, (r.status, r.error)


def _marked_threads(mark: str) -> list[str]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/task/[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == mark:
                found.append(str(comm.parent))
    return found


def test_a_process_whose_first_thread_exited_is_measured_and_killed(tiny_dataset: Path) -> None:
    """A red-team plugin's helpers let their first thread exit while another held the memory: /proc/PID showed a zombie
    (no memory, no descriptors), the bench saw 169 MB against 256 MiB while they held 2.9 GiB, and they outlived the
    slot and the run (OK). Two helpers of 300 MiB against 256 MiB here: OOM, and none left once the slot is done."""
    from bad_detectors import ZOMBIE_LEADER_MARK

    r = run_isolated("bad_detectors:ZombieLeader", tiny_dataset, timeout_s=120, memory_mb=256)
    assert r.status == "OOM", (r.status, r.error)
    deadline = time.monotonic() + 10
    while _marked_threads(ZOMBIE_LEADER_MARK) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _marked_threads(ZOMBIE_LEADER_MARK)


def test_a_threads_own_descriptor_table_is_counted(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A red-team plugin's threads took tables of their own (unshare(CLONE_FILES)) and held 95,031 descriptors and an
    800 MiB memfd that /proc/PID/fd does not list, row OK. 3,000 in a thread's table against a line of 2,500 here."""
    from breachbench import isolation

    monkeypatch.setattr(isolation, "MAX_DESCRIPTORS", 2_500)
    r = run_isolated("bad_detectors:PrivateTable", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "more than 2,500 descriptors" in r.error, (r.status, r.error)


def test_an_honest_detector_may_start_a_helper_with_its_input_on_dev_null(tiny_dataset: Path) -> None:
    """``subprocess`` opens ``/dev/null`` for reading and writing; read-only, a red team's honest helper failed (ERROR)."""
    r = run_isolated("bad_detectors:StartsAHelper", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK", (r.status, r.error)


def test_page_tables_count_against_the_memory_limit(tiny_dataset: Path) -> None:
    """A red-team plugin held 3 GiB of page tables (reads of an untouched mapping: no resident memory) against a 400 MiB
    limit, its row OK; 256 GiB mapped this way make 512 MiB of page tables."""
    r = run_isolated("bad_detectors:PageTables", tiny_dataset, timeout_s=120, memory_mb=400)
    assert r.status == "OOM", (r.status, r.error)


def test_one_file_past_the_scratch_limit_is_refused(tiny_dataset: Path) -> None:
    r = run_isolated("bad_detectors:BigFile", tiny_dataset, timeout_s=60, memory_mb=1024)
    assert r.status == "ERROR" and "File too large" in r.error, (r.status, r.error)


def test_scratch_use_counts_bytes_and_files_without_following_links(tmp_path: Path) -> None:
    from breachbench.isolation import _scratch_use

    (tmp_path / "w" / "sub").mkdir(parents=True)
    for i in range(30):
        (tmp_path / "w" / "sub" / f"f{i}").write_bytes(b"x" * 10_000)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "big").write_bytes(b"y" * 1_000_000)
    (tmp_path / "w" / "link").symlink_to(tmp_path / "outside")
    used, files, hidden = _scratch_use([tmp_path / "w"], max_files=1000)
    assert files == 32 and 300_000 <= used < 1_000_000 and hidden is None, (used, files)  # 30 files, the folder, the link
    assert _scratch_use([tmp_path / "w"], max_files=5)[1] > 5  # stops counting past the cap, above it


def _deep(root: Path, depth: int, name: str = "d") -> Path:
    """``depth`` nested folders under ``root`` (made through descriptors: the path may outgrow PATH_MAX), a file at the bottom."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        new = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = new
    os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    return root


def test_scratch_use_stops_a_tree_it_cannot_measure(tmp_path: Path) -> None:
    """Folders past SCRATCH_DEPTH levels (paths the kernel may not resolve), or one the bench may not list, hide bytes."""
    from breachbench import fstree
    from breachbench.isolation import SCRATCH_DEPTH, _scratch_use

    try:
        for name in ("ok", "deep", "long"):
            (tmp_path / name).mkdir()
        assert _scratch_use([_deep(tmp_path / "ok", SCRATCH_DEPTH - 1)], 10_000)[2] is None
        hidden = _scratch_use([_deep(tmp_path / "deep", 300)], 10_000)[2]
        assert hidden is not None and f"{SCRATCH_DEPTH} levels" in hidden
        hidden = _scratch_use([_deep(tmp_path / "long", 30, "x" * 250)], 10_000)[2]  # past PATH_MAX before 64 levels
        assert hidden is not None and "cannot" in hidden, hidden
    finally:  # pytest's own clean-up of tmp_path recurses (shutil.rmtree on Python 3.11)
        fstree.remove_tree(tmp_path / "long")
        fstree.remove_tree(tmp_path / "deep")


def test_remove_tree_takes_any_depth_and_never_follows_links(tmp_path: Path) -> None:
    """A detector's work folder may be 3,000 folders deep with paths past PATH_MAX, read-only, or hold links out:
    the bench's clean-up removes it all without recursion and leaves what the links point to."""
    from breachbench import fstree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("bench file")
    top = tmp_path / "slot"
    (top / "work").mkdir(parents=True)
    _deep(top / "work", 3000)
    _deep(top / "work", 40, "y" * 250)  # 10,000 characters of path
    (top / "work" / "out").symlink_to(outside)
    (top / "work" / "ro").mkdir()
    (top / "work" / "ro" / "f").write_text("x")
    (top / "work" / "ro").chmod(0o500)
    skipped: list[str] = []
    assert sum(1 for _ in fstree.walk(top, skipped)) > 2000 and skipped  # no recursion; past PATH_MAX: said, not raised
    try:
        assert fstree.remove_tree(top) and not top.exists()
    finally:  # pytest's own clean-up of tmp_path recurses (shutil.rmtree on Python 3.11)
        fstree.remove_tree(top)
    assert (outside / "keep").read_text() == "bench file"
    assert fstree.remove_tree(top)  # gone already: nothing to do


@pytest.mark.parametrize("how", ["beside", "killed", "no-process"])
def test_remove_later_takes_the_tree_in_another_process_and_what_is_left_on_the_wait(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's spent slot folders go in a process of their own beside the report; the wait leaves nothing, even when
    that process was killed before it began or never started (then here, Ctrl-C still the bench's), and a link out
    keeps what it points to."""
    import multiprocessing
    import signal

    from breachbench import fstree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("bench file")
    top = tmp_path / "spent"
    for i in range(20):
        d = top / f"slot-{i}" / "view"
        d.mkdir(parents=True)
        for j in range(50):
            (d / f"f{j}").write_text("x")
        (d / "out").symlink_to(outside)
        d.chmod(0o500)
    if how == "no-process":

        def refuse(self: object) -> None:
            raise OSError("no process")

        monkeypatch.setattr(multiprocessing.get_context("spawn").Process, "start", refuse)
        handler = signal.getsignal(signal.SIGINT)
        fstree.remove_later(top)()
        assert not top.exists() and signal.getsignal(signal.SIGINT) == handler
    else:
        wait = fstree.remove_later(top)
        (proc,) = [c for c in multiprocessing.active_children() if c.name == "breachbench-remove"]
        assert proc.pid != os.getpid()
        if how == "killed":
            proc.kill()
        wait()
        assert not top.exists() and not proc.is_alive()
    assert (outside / "keep").read_text() == "bench file"


def test_sys_exit_in_process_is_an_error_row(tiny_ds) -> None:
    r = run_detector("bad_detectors:Exits", tiny_ds)
    assert r.status == "ERROR" and "SystemExit" in r.error


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock")
def test_landlock_blocks_reads_outside_the_view(tmp_path: Path) -> None:
    """A restricted child cannot read a file outside its read roots, and can write only its work folder."""
    import subprocess
    import sys

    secret = tmp_path / "secret.txt"
    secret.write_text("truth")
    work = tmp_path / "work"
    work.mkdir()
    code = f"""
import sys
from pathlib import Path
from breachbench import sealing
note = sealing.restrict([Path(p) for p in sys.path if p and Path(p).exists()] + [Path(sys.base_prefix)], [Path({str(work)!r})])
assert note is None, note
try:
    open({str(secret)!r}).read(); print("read")
except PermissionError:
    print("denied")
Path({str(work)!r}, "ok").write_text("1")
try:
    Path({str(tmp_path)!r}, "x").write_text("1"); print("wrote")
except PermissionError:
    print("denied")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["denied", "denied"]
    assert (work / "ok").read_text() == "1" and not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def hostile_suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small sealed run: an honest rule, then a truth seeker, a writer and a forker."""
    out = tmp_path_factory.mktemp(bad_detectors.DAMAGE_MARKER + "suite")
    dets = json.dumps(["unissued-token-v1", "bad_detectors:TruthSeeker", "bad_detectors:Writer", "bad_detectors:Forker", "null"])
    cfg = load_config(
        REPO / "configs" / "tiny.toml",
        [*SMALL, f"detection.detectors={dets}", "detection.timeout_s=120", "detection.memory_mb=4096"],
    )
    from simulator.engine import generate

    generate(cfg.sim(), out / "dataset", workers=1)
    before = _hashes(out / "dataset")
    result = run_suite(cfg, out, workers=1, log=lambda *a, **k: None)
    # hashed as the suite left it: the eraser tests below run their plugin unsealed in this process, on purpose, and it
    # finds this dataset among the process's objects (under xdist without --dist loadgroup they may run first)
    after = _hashes(out / "dataset")
    return {"out": out, "before": before, "after": after, "result": result, "rows": {r["detector"]: r for r in result["rows"]}}


@pytest.mark.skipif(
    not LANDLOCK, reason="the kernel has no Landlock: a sealed slot runs on copies but can read the bench's files"
)
def test_truth_seeker_finds_nothing_when_sealed(hostile_suite: dict[str, Any]) -> None:
    row = hostile_suite["rows"]["bad_detectors:TruthSeeker"]
    assert row["status"] == "OK", row["error"]
    assert row["op_score"] == 0, row["op_score"]
    alerts = pl.read_parquet(hostile_suite["out"] / "alerts" / "bad_detectors:TruthSeeker.parquet")
    assert alerts.height == 0
    notes = [r["note"] for r in row["runs"] if "note" in r]  # a bench that is not root says its folders stay visible to stat
    assert not notes or (os.geteuid() != 0 and all("visible to stat" in n for n in notes)), notes


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock")
def test_writer_changes_nothing_outside_its_scratch(hostile_suite: dict[str, Any], tiny_config) -> None:
    out = hostile_suite["out"]
    assert hostile_suite["after"] == hostile_suite["before"]
    row = hostile_suite["rows"]["bad_detectors:Writer"]
    assert row["status"] == "OK", row["error"]
    # the honest rule's alerts (written before the writer ran) are what it computes in process
    honest = pl.read_parquet(out / "alerts" / "unissued-token-v1.parquet")
    ref = run_detector("unissued-token-v1", Dataset.open(out / "dataset")).alerts
    assert honest.equals(ref)
    # the shared features are what the bench computes afresh
    feats = out / "features"
    got = {
        rel: hashlib.sha256((feats / rel).read_bytes()).hexdigest() for rel in shared_features(out / "dataset", out / "features2")
    }
    again = {rel: hashlib.sha256((out / "features2" / rel).read_bytes()).hexdigest() for rel in got}
    assert got == again
    # the writer scored what the honest rule scores: it hurt nobody, itself included
    rows = hostile_suite["rows"]
    assert rows["bad_detectors:Writer"]["op_score"] == rows["unissued-token-v1"]["op_score"]


def test_forker_leaves_no_process_after_the_suite(hostile_suite: dict[str, Any]) -> None:
    assert hostile_suite["rows"]["bad_detectors:Forker"]["status"] == "OK"
    assert _named(bad_detectors.FORK_NAMES) == []


def test_no_scratch_left_in_the_temp_folder(hostile_suite: dict[str, Any]) -> None:
    import tempfile

    left = list(Path(tempfile.gettempdir()).glob(f"bb-det-{os.getpid()}-*"))
    assert left == []


@pytest.mark.parametrize("at", ["landlock_abi", "_build_views"])
def test_an_interrupt_while_a_slot_is_prepared_leaves_no_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    # Ctrl-C or SIGTERM (both exceptions in the bench) can land between any two statements: CI once
    # found a slot's scratch folder left after a SIGTERM that came just as the folder was made
    import tempfile

    from breachbench import isolation

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sealing if at == "landlock_abi" else isolation, at, interrupt)
    with pytest.raises(KeyboardInterrupt):
        isolation.run_isolated_many("null-v1", [tmp_path / "dataset"], timeout_s=10, memory_mb=512)
    assert list(Path(tempfile.gettempdir()).glob(f"bb-det-{os.getpid()}-*")) == []


# ---- conformance checks that mean it ----------------------------------------------------------


def test_a_checked_eraser_cannot_empty_the_cached_check_world(tmp_path_factory: pytest.TempPathFactory) -> None:
    from detectors.checks import _intact, _positives, check_dataset, check_detector

    cache = tmp_path_factory.mktemp(
        bad_detectors.DAMAGE_MARKER + "checks"
    )  # private: the shared cache is never exposed to the eraser
    before = _positives(check_dataset(cache))
    assert before.height > 0
    results = {
        r.check: r.passed
        for r in check_detector(
            "bad_detectors:TruthEraser", checks=("schema", "direction"), cache_dir=cache, raise_on_failure=False
        )
    }
    assert results == {"schema": True, "direction": True}
    hit = [p for p in cache.iterdir() if p.name.startswith("check-") and not _intact(p)]
    assert hit, "the eraser did not reach the cached check world: the test proves nothing"
    root = check_dataset(cache)  # verified again, regenerated because the eraser reached it
    assert _intact(root)
    assert _positives(root).sort(pl.all()).equals(before.sort(pl.all()))


def _check_world(factory: pytest.TempPathFactory, name: str) -> Path:
    """A private check-world cache the hostile writers may damage (never the shared one)."""
    from detectors.checks import check_dataset

    cache = factory.mktemp(bad_detectors.DAMAGE_MARKER + name)
    check_dataset(cache)
    return cache


def _tell(monkeypatch: pytest.MonkeyPatch, factory: pytest.TempPathFactory, *paths: Path) -> None:
    """Tell the hostile plugins where the data is: a ``hostile_hint`` module on the import path (seen by sealed children too)."""
    hint = factory.mktemp("hint")
    (hint / "hostile_hint.py").write_text(f"PATHS = {[str(p) for p in paths]!r}\n")
    monkeypatch.syspath_prepend(str(hint))
    monkeypatch.delitem(sys.modules, "hostile_hint", raising=False)


def _verdicts(target: str, cache: Path, **kw: Any) -> dict[str, tuple[bool, str]]:
    from detectors.checks import check_detector

    return {r.check: (r.passed, r.message) for r in check_detector(target, cache_dir=cache, raise_on_failure=False, **kw)}


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock")
def test_sealed_check_finds_no_truth_and_writes_nothing(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _check_world(tmp_path_factory, "sealedcheck")
    world = next(cache.glob("check-*"))
    _tell(monkeypatch, tmp_path_factory, world)  # the plugins know the cached check world's path
    before = _hashes(cache)
    sealed = _verdicts("bad_detectors:TruthSeeker", cache, sealed=True)
    assert sealed["direction"] == (True, "no alerts (nothing to rank)")  # it found no truth anywhere
    assert all(ok for ok, _ in sealed.values()), sealed
    for hostile in ("bad_detectors:Writer", "bad_detectors:TruthEraser"):
        got = _verdicts(hostile, cache, sealed=True, checks=("schema", "direction"))
        assert got["schema"][0], got
    assert _hashes(cache) == before  # not a byte of the cached check world changed
    # the same eraser, run in the calling process, does reach it: the seal is what stopped it
    _verdicts("bad_detectors:TruthEraser", cache, checks=("schema",))
    assert _hashes(cache) != before


def test_sealed_check_cannot_rewrite_the_harness(tmp_path_factory: pytest.TempPathFactory) -> None:
    import detectors.checks

    cache = _check_world(tmp_path_factory, "patch")
    honest = detectors.checks._same
    try:  # in process, the plugin rewrites the comparison and its random scores pass determinism
        assert _verdicts("bad_detectors:PatchesChecks", cache, checks=("schema", "determinism"))["determinism"][0] is True
    finally:
        detectors.checks._same = honest
    sealed = _verdicts("bad_detectors:PatchesChecks", cache, sealed=True, checks=("schema", "determinism"))
    assert sealed["determinism"] == (False, "two fresh instances gave different alerts")


def test_sealed_check_kills_descendants_and_limits_the_tree(tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = _check_world(tmp_path_factory, "tree")
    forked = _verdicts("bad_detectors:Forker", cache, sealed=True, checks=("schema",))
    assert forked["schema"][0], forked
    hog = _verdicts("bad_detectors:GrandchildHog", cache, sealed=True, checks=("schema",), memory_mb=400, timeout_s=60)
    assert hog["schema"][0] is False and hog["schema"][1].startswith("DetectorCheckError: OOM:"), hog
    time.sleep(0.2)
    assert _named((*bad_detectors.FORK_NAMES, bad_detectors.HOG_NAME)) == []


def test_cli_check_seals_module_class_detectors(tmp_path_factory: pytest.TempPathFactory) -> None:
    import subprocess

    cache = _check_world(tmp_path_factory, "cli")
    env = {**os.environ, "BREACHBENCH_CACHE": str(cache), "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
    p = subprocess.run(
        [sys.executable, "-m", "breachbench", "detectors", "check", "bad_detectors:PatchesChecks", "bad_detectors:PeeksAhead"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    rows = {tuple(line.split()[:3]) for line in p.stdout.splitlines()}
    assert p.returncode == 1, p.stderr
    assert ("bad_detectors:PatchesChecks", "determinism", "FAIL") in rows
    # sealed, the next bucket's partition is not in its folder yet: nothing to peek at (unsealed, prefix fails:
    # tests/test_checks_isolation.py)
    assert ("bad_detectors:PeeksAhead", "prefix", "ok") in rows and ("bad_detectors:PeeksAhead", "schema", "ok") in rows
    bad = subprocess.run(
        [sys.executable, "-m", "breachbench", "detectors", "check", "nosuchmodule:Thing"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "'nosuchmodule:Thing'" in bad.stderr and "Traceback" not in bad.stderr


def test_score_comparisons_tolerate_float_noise() -> None:
    import datetime as dt

    from detectors.checks import _same

    a = pl.DataFrame(
        {"bucket": [dt.date(2025, 4, 1)] * 2, "entity_kind": ["ip", "ip"], "entity_id": ["a", "b"], "score": [0.3, 1.0]}
    )
    assert _same(a, a.with_columns(score=pl.col("score") + 1.8e-15))
    assert not _same(a, a.with_columns(score=pl.col("score") + 1e-6))
    assert not _same(a, a.with_columns(entity_id=pl.Series(["a", "c"])))


def test_tune_runs_sealed_with_labels_and_no_truth(tmp_path: Path) -> None:
    cfg = load_config(
        REPO / "configs" / "tiny.toml",
        [
            *SMALL,
            "suite.tuning_seeds=[11]",
            'detection.detectors=["bad_detectors:TunesOnTruth"]',
            "detection.timeout_s=120",
            "detection.memory_mb=4096",
        ],
    )
    rows = {r["detector"]: r for r in run_suite(cfg, tmp_path, workers=1, log=lambda *a, **k: None)["rows"]}
    row = rows["bad_detectors:TunesOnTruth"]
    assert row["status"] == "OK", row["error"]
    labels, truth = row["version"].split()
    # the actors' units alone, as in the bench's process: the slot's copy once held the victims' and shared units too
    tuning = Dataset.open(next(p for p in (tmp_path / "datasets").iterdir() if "tune" in p.name))
    actors = tuning.positive_units.filter(pl.col("role") == "actor").select("bucket", "entity_kind", "entity_id").unique()
    assert 0 < actors.height < tuning.positive_units.select("bucket", "entity_kind", "entity_id").unique().height
    assert int(labels.removeprefix("labels=")) == actors.height
    if LANDLOCK:
        assert truth == "truth_in_tune=False" and row["op_score"] == 0


# ---- what the bench reads back from a slot, and what a slot inherits ------------------------------


@pytest.mark.parametrize("name", ["LinksAlerts", "FifoAlerts"])
def test_alerts_left_as_a_link_or_a_fifo_are_not_read(tiny_dataset: Path, name: str) -> None:
    """The bench reads the child's files without following links or blocking: a link to a file only the bench may
    read (another run's oracle alerts) would score as that file; a FIFO would hang the bench."""
    t = time.perf_counter()
    r = run_isolated(f"bad_detectors:{name}", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "ERROR" and "not a plain file" in (r.error or ""), (r.status, r.error)
    assert r.alerts.height == 0 and time.perf_counter() - t < 60


def test_a_slot_does_not_inherit_the_bench_terminal(tiny_dataset: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Standard input, output and error of the child are /dev/null: a plugin cannot forge the bench's log lines,
    truncate its log, or push keystrokes into the user's shell through a terminal it inherited."""
    r = run_isolated("bad_detectors:TalksToTheTerminal", tiny_dataset, timeout_s=120, memory_mb=4096)
    out, err = capfd.readouterr()
    assert r.status == "OK", r.error
    assert "forged-by-a-plugin" not in out + err


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock")
def test_the_current_folder_is_not_readable_from_a_slot(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m breachbench`` puts the current folder on ``sys.path``; that is where runs (and the truth of another
    run of the same config) lie, so the slot is not granted it."""
    here = tmp_path / "project"
    here.mkdir()
    secret = here / "secret.txt"
    secret.write_text("the truth of an earlier run")
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "reads_here.py").write_text(
        f"from bad_detectors import ReadsTheCurrentFolder\n\n\nclass Det(ReadsTheCurrentFolder):\n    SECRET = {str(secret)!r}\n"
    )
    monkeypatch.chdir(here)
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.syspath_prepend(str(here))
    r = run_isolated("reads_here:Det", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK" and r.alerts.height > 0, r.error


def test_a_slot_keeps_none_of_the_operators_variables(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the locale, the paths, Python's hash seed and encoding and the numerical libraries' thread settings reach a
    slot (SLOT_ENV); an operator's token in any other variable is in neither its ``os.environ`` nor its start-up block."""
    from breachbench.isolation import SLOT_ENV

    # kept by prefix once, Polars Cloud's credentials (and any LC_, OMP_ or CUDA_ name) reached the leaderboard too
    for name in ("MY_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "POLARS_CLOUD_CLIENT_SECRET", "LC_DEPLOY_TOKEN", "OMP_TOKEN"):
        monkeypatch.setenv(name, bad_detectors.OPERATOR_TOKEN)
    r = run_isolated("bad_detectors:ReadsTheEnvironment", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK" and r.alerts.height > 0, r.error
    assert os.environ["MY_API_TOKEN"] == bad_detectors.OPERATOR_TOKEN  # the bench's own variables are put back
    monkeypatch.setenv("LANG", bad_detectors.OPERATOR_TOKEN)  # a kept one does reach it: the test can fail
    r = run_isolated("bad_detectors:ReadsTheEnvironment", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert "LANG" in SLOT_ENV and r.status == "ERROR" and "LANG" in (r.error or ""), r.error


def test_private_entries_are_the_files_and_folders_others_may_not_read(tmp_path: Path) -> None:
    """Files without read for others and folders others may not list and enter; links are not followed (Landlock
    judges a link's target where it lies) and nothing below a private folder is looked at."""
    (tmp_path / "conf").mkdir()
    for name, mode in (("open", 0o644), ("shadow", 0o640), ("none", 0o000), ("group", 0o660), ("conf/open", 0o444)):
        (tmp_path / name).write_text(name)
        (tmp_path / name).chmod(mode)
    for name, mode in (("keys", 0o700), ("listless", 0o711), ("seen", 0o755)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "inner").write_text("x")
        (tmp_path / name).chmod(mode)
    (tmp_path / "conf" / "link").symlink_to(tmp_path / "shadow")
    try:
        found = sealing.private_entries((str(tmp_path),))
        assert found == tuple(str(tmp_path / n) for n in ("group", "keys", "listless", "none", "shadow")), found
        # past the limit on entries, the rest is granted as it is: the first folder's 8 entries are all it looks at
        assert len(sealing.private_entries((str(tmp_path),), 3)) == 5
        assert sealing.private_entries((str(tmp_path / "seen"),)) == ()
    finally:
        for name in ("keys", "listless", "seen"):
            (tmp_path / name).chmod(0o755)


def test_a_slot_reads_no_system_file_others_may_not(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench run as root keeps user id 0 in its slots, and a red-team plugin read ``/etc/shadow``. The test lists,
    with its own walk, the files under ``/etc`` and ``/opt`` that others may not read but this process can; the
    plugin reads none of them, by path or through links it makes. Without the exclusion it does (where the test runs
    as root and such a file exists: the only case where the exclusion matters)."""
    import stat as st

    targets = []
    for root in sealing.CONFIG_READ:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                mode = os.lstat(path).st_mode
                if st.S_ISREG(mode) and not mode & 0o004 and os.access(path, os.R_OK):
                    targets.append(path)
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "reads_private.py").write_text(
        f"from bad_detectors import ReadsPrivateSystemFiles\n\n\nclass Det(ReadsPrivateSystemFiles):\n"
        f"    TARGETS = {tuple(targets[:50])!r}\n"
    )
    monkeypatch.syspath_prepend(str(mods))
    r = run_isolated("reads_private:Det", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK" and r.alerts.height > 0, r.error
    if targets and os.geteuid() == 0:
        monkeypatch.setattr(sealing, "private_entries", lambda *a: ())
        r = run_isolated("reads_private:Det", tiny_dataset, timeout_s=120, memory_mb=4096)
        assert r.status == "ERROR" and targets[0] in (r.error or ""), r.error


def test_a_slot_sees_no_other_process_command_line(tiny_dataset: Path) -> None:
    """A process of the operator's holds a token on its command line; the plugin that looks through every process's
    ``/proc/PID/cmdline`` finds it when run in the bench's process, and not in its slot (a ``/proc`` of its own that
    lists only its processes). Where the bench is not root the slot's note says the command lines stay readable."""
    import subprocess

    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", f"--token={bad_detectors.COMMAND_LINE_TOKEN}"]
    )
    try:
        bare = run_detector("bad_detectors:ReadsCommandLines", Dataset.open(tiny_dataset))
        assert bare.status == "ERROR" and "other processes' command lines" in str(bare.error), bare.error  # there to find
        r = run_isolated("bad_detectors:ReadsCommandLines", tiny_dataset, timeout_s=120, memory_mb=4096)
        if os.geteuid() == 0:
            assert r.status == "OK" and r.alerts.height > 0, r.error
            assert "command lines" not in str(r.note), r.note
        else:
            assert "command lines are readable" in str(r.note), r.note
    finally:
        other.kill()
        other.wait()


def test_an_exception_whose_text_raises_is_its_detectors_error_row(tiny_dataset: Path) -> None:
    for isolated in (True, False):
        r = (
            run_isolated("bad_detectors:RaisesAnUnprintableError", tiny_dataset, timeout_s=120, memory_mb=4096)
            if isolated
            else run_detector("bad_detectors:RaisesAnUnprintableError", Dataset.open(tiny_dataset))
        )
        assert r.status == "ERROR" and "_Unprintable: (its message could not be shown" in str(r.error), (isolated, r.error)


def test_a_slots_processes_stay_in_its_session(tiny_dataset: Path) -> None:
    """No new session or process group in a slot: each session is scheduled as a group of its own, and a red-team
    plugin's 46 busy children, one session each, left the other slot 2% of the CPU and its detector a TIMEOUT row. In
    the bench's own process the same plugin does leave (the test can fail)."""
    bare = run_detector("bad_detectors:LeavesItsSession", Dataset.open(tiny_dataset))
    assert bare.status == "ERROR" and "setsid" in str(bare.error), bare.error
    r = run_isolated("bad_detectors:LeavesItsSession", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK" and r.alerts.height > 0, r.error


def test_a_run_on_a_dataset_folder_keeps_its_output_folder_out_of_the_slots_reach(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``breachbench run DATASET`` writes every detector's alerts into its --out as it goes; a red team's plugin, whose
    folder held that --out, copied the built-ins' alerts there and scored as they did."""
    from breachbench.interop.dataset_run import run_dataset

    mods = tmp_path / "mods"  # on the import path (granted whole), as a --plugin-path folder is
    out = mods / "runs" / "dataset"  # the default --out, ./runs/<dataset>, run from the plugin's folder
    mods.mkdir()
    (mods / "copycat.py").write_text(
        "from pathlib import Path\nfrom detectors.builtin import UnissuedTokenRule\n\n\nclass Det(UnissuedTokenRule):\n"
        "    def fit(self, view):\n        try:\n"
        f"            seen = sorted(p.name for p in Path({str(out / 'alerts')!r}).iterdir())\n"
        "        except OSError:\n            return super().fit(view)\n"
        "        raise RuntimeError(f'read the output folder: {seen}')\n"
    )
    monkeypatch.syspath_prepend(str(mods))
    res = run_dataset(tiny_dataset, out, detectors=["null", "copycat:Det"], log=lambda *a: None)
    assert [r["status"] for r in res["rows"]] == ["OK", "OK"], res["rows"]


def test_ids_that_would_name_a_path_outside_alerts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution may declare any entry-point name; ids name files (``alerts/<id>.parquet``), so one
    with a '/' or '..' is never registered, and a config naming one is a clear error."""
    from breachbench.config import ConfigError, validate
    from detectors.registry import registry

    dist = tmp_path / "evil-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[breachbench.detectors]\n../dataset/truth/malicious_events = bad_detectors:Raiser\n"
        "x/../stat-own-history-v1 = bad_detectors:Raiser\nfine-one-v1 = bad_detectors:Raiser\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ids = registry()
    assert "fine-one-v1" in ids and not [i for i in ids if "/" in i or ".." in i]
    for bad in ("../../escape", "a/b:C"):
        with pytest.raises(ConfigError, match="is not a detector id"):
            validate({"name": "x", "detection": {"detectors": [bad]}})


def _published_plugin(folder: Path, cfg: Any) -> str:
    """A plugin module whose source holds the config a run used, seed and all but its secret (a published config)."""
    folder.mkdir(parents=True)
    published = cfg.sim().model_dump(mode="json", exclude={"secret"})
    (folder / "regen_plugin.py").write_text(
        f"from bad_detectors import Regenerates\n\n\nclass Published(Regenerates):\n    CONFIG = {published!r}\n"
    )
    return "regen_plugin:Published"


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed-seeds", "public-seeds"])
def test_a_plugin_cannot_generate_the_datasets_again(
    sealed: bool, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator is public and deterministic: with a run's config and seeds (published, or guessed among a few) a
    plugin generates the same datasets and reads their truth. With sealed seeds (the default) the run mixes a secret
    kept in its folder into every seed: the plugin generates another world and cannot even confirm its guess."""
    base = tmp_path_factory.mktemp(bad_detectors.DAMAGE_MARKER + "regen")
    cfg = load_config(
        REPO / "configs" / "tiny.toml",
        [*SMALL, f"suite.seal_seeds={str(sealed).lower()}", "detection.timeout_s=300", 'detection.detectors=["null"]'],
    )
    target = _published_plugin(base / "plugin", cfg)
    monkeypatch.syspath_prepend(str(base / "plugin"))
    cfg = cfg.model_copy(update={"detection": cfg.detection.model_copy(update={"detectors": [target]})})
    rows = {r["detector"]: r for r in run_suite(cfg, base / "run", workers=1, log=lambda *a, **k: None)["rows"]}
    row, oracle = rows[target], rows["oracle"]
    assert row["status"] == "OK", row["error"]
    reasons = set(pl.read_parquet(base / "run" / "alerts" / f"{target}.parquet")["reason"])
    assert (base / "run" / "secret").is_file() == sealed
    if sealed:
        assert reasons <= {"unconfirmed"}
        assert row["op_score"] < 0.5 * oracle["op_score"], (row["op_score"], oracle["op_score"])
    else:  # what the seal prevents: the oracle's score, from the published config alone
        assert reasons == {"confirmed"}
        assert row["op_score"] == pytest.approx(oracle["op_score"]), (row["op_score"], oracle["op_score"])


def test_a_slot_cannot_match_its_view_to_a_published_dataset(tiny_dataset: Path, tiny_ds) -> None:
    """``results.json`` lists each dataset's config hash beside its label (the scenario): a red-team plugin read the
    hash's first 16 digits as its view's dataset id (the whole hash in its view's manifest), matched a finished run's
    table and named 6 of 6 scenarios. The slot sees an id of its own, the same for the bench's shared feature tables."""
    from detectors.view import View

    published = tiny_ds.manifest["config_hash"]
    r = run_isolated("bad_detectors:NamesItsViews", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "OK", r.error
    seen = " ".join(r.alerts["reason"].unique().to_list())
    assert published[:16] not in seen and published[:8] not in seen, seen[:300]
    assert tiny_ds.view_id in seen and "breachbench-view" in seen, seen[:300]  # the id, and the view's manifest read
    last = tiny_ds.buckets[-1]
    assert tiny_ds.view(last).dataset_id == View.open(tiny_dataset, last).dataset_id == tiny_ds.view_id


def test_a_slot_sees_nothing_ahead_of_the_bucket_it_scores(tiny_dataset: Path, tiny_ds, tmp_path: Path) -> None:
    """The bench hands a slot its buckets one at a time: later log partitions and feature tables are not in its folder
    yet, the manifest lists no log file, and the staff's world tables are as known at the end of the bucket (the raw
    files hold every future termination, rotation and revocation). In the bench's own process, without the seal, the
    same detector finds all of these."""
    feats = shared_features(tiny_dataset, tmp_path)
    sealed = run_isolated(
        "bad_detectors:ReadsAhead", tiny_dataset, timeout_s=120, memory_mb=4096, features=feats, features_root=tmp_path
    )
    assert sealed.status == "OK", sealed.error
    assert sealed.alerts.height == 0, sealed.alerts["reason"].head(5).to_list()
    loose = run_detector("bad_detectors:ReadsAhead", Dataset.open(tiny_dataset, feature_cache=tmp_path))
    reasons = " ".join(loose.alerts["reason"])
    assert loose.status == "OK", loose.error
    assert all(w in reasons for w in ("date=", "listed logs/", "termination of", "revoked", "created")), reasons[:300]


@pytest.mark.skipif(os.geteuid() != 0, reason="the bench's folders are hidden from stat in a mount namespace, which needs root")
def test_a_slot_cannot_stat_the_buckets_still_ahead(tiny_dataset: Path) -> None:
    """The buckets not shown yet wait beside the view; Landlock refuses opening them, not looking them up by name, and
    their sizes tell the volume to come: the slot's mount namespace covers them."""
    r = run_isolated("bad_detectors:StatsAhead", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK", r.error
    assert set(r.alerts["entity_id"]) == {"staged:0"}, r.alerts["entity_id"].to_list()


@pytest.mark.skipif(os.geteuid() != 0, reason="the temp folder is covered in a mount namespace, which needs root")
@pytest.mark.parametrize("import_path", ["", "temp"])
def test_a_slot_cannot_reach_another_slots_folder(tiny_dataset: Path, import_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every slot's folder lies in the bench's temp folder: the slot sees its own there and what it may read, nothing
    else, even with the temp folder on the import path (whose entries are granted then)."""
    import shutil
    import tempfile

    other = Path(tempfile.gettempdir()) / bad_detectors.OTHER_SLOT.format(pid=os.getpid())
    (other / "d0" / "stage").mkdir(parents=True)
    (other / "d0" / "stage" / "ahead.txt").write_text("a bucket still ahead")
    if import_path:
        monkeypatch.syspath_prepend(tempfile.gettempdir())
    try:
        r = run_isolated("bad_detectors:LooksAtOtherSlots", tiny_dataset, timeout_s=120, memory_mb=1024)
    finally:
        shutil.rmtree(other)
    assert r.status == "OK", r.error
    assert set(r.alerts["entity_id"]) == {"other:"}


def test_alerts_count_as_handed_over_bucket_by_bucket(tiny_dataset: Path) -> None:
    """A slot's final alerts file cannot add to buckets it scored before: each bucket's alerts are those the child
    handed over before the next bucket was shown (the last bucket's come from the final file)."""
    honest = run_isolated("unissued-token-v1", tiny_dataset, timeout_s=120, memory_mb=4096)
    rewritten = run_isolated("bad_detectors:RewritesHistory", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert honest.status == rewritten.status == "OK", (honest.error, rewritten.error)
    assert honest.alerts.height > 0 and rewritten.alerts.equals(honest.alerts)
    assert rewritten.events == honest.events == tiny_ds_events(tiny_dataset)


def tiny_ds_events(dataset: Path) -> int:
    """Log rows of the scored buckets, from the dataset's own manifest."""
    return Dataset.open(dataset).event_count(Dataset.open(dataset).scored)


def test_a_fifo_handed_over_as_a_bucket_s_alerts_is_an_error(tiny_dataset: Path) -> None:
    t = time.perf_counter()
    r = run_isolated("bad_detectors:HandsOverAFifo", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "ERROR" and "not a plain file" in (r.error or ""), (r.status, r.error)
    assert r.alerts.height == 0 and time.perf_counter() - t < 60


def test_a_slot_holds_no_capabilities(tiny_dataset: Path) -> None:
    """Run as root, the bench would pass its capabilities on: CAP_LINUX_IMMUTABLE let a plugin make its view's folders
    immutable (Landlock does not cover that ioctl), so that the bench could not show the next bucket and the run died.
    (Where the bench does not run as root, there is nothing to drop and this passes either way.)"""
    r = run_isolated("bad_detectors:HasCapabilities", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK", r.error


def test_a_slot_cannot_set_limits_priorities_or_cpus_of_other_processes(tiny_dataset: Path) -> None:
    """``prlimit``, ``sched_setaffinity``, ``setpriority`` and ``sched_setscheduler`` on its parent or its user's processes
    are refused (a red-team plugin set RLIMIT_CPU on the bench and killed the run); on itself they still work."""
    r = run_isolated("bad_detectors:TouchesOtherProcesses", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "OK", r.error


def test_alerts_bigger_than_the_memory_limit_are_refused_before_the_bench_reads_them(tiny_dataset: Path) -> None:
    """Sparse alerts files (zeros: no disk, no memory in the slot) of more than the detector's memory limit in all are an
    ERROR row named before the bench reads a byte of them, not after it held them all (and the reader twice over)."""
    r = run_isolated("bad_detectors:SparseAlerts", tiny_dataset, timeout_s=120, memory_mb=256)
    assert r.status == "ERROR" and "memory limit (256 MiB) lets the bench read" in (r.error or ""), r.error


def test_a_bucket_the_bench_cannot_show_is_that_dataset_s_error_row(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a slot did to its view, a bucket the bench fails to show gives that dataset an ERROR row; the other
    datasets of the slot are scored by a fresh process, and the run goes on."""
    show, calls = sealing.Reveal.show, {"n": 0}

    def failing(self: sealing.Reveal, day: Any) -> None:
        calls["n"] += 1
        if self.ds.root == tiny_dataset.resolve() and calls["n"] == 4 and day in self.scored:
            raise PermissionError("planted: the folder became immutable")
        show(self, day)

    monkeypatch.setattr(sealing.Reveal, "show", failing)
    from breachbench.isolation import run_isolated_many

    runs = run_isolated_many("unissued-token-v1", [tiny_dataset, tiny_dataset], timeout_s=120, memory_mb=4096)
    (first,) = [r for r in runs if r.status == "ERROR"]  # the first the slot scored: the order is drawn at random
    (second,) = [r for r in runs if r.status == "OK"]
    assert "could not show the next bucket" in (first.error or ""), first.error
    assert second.alerts.height > 0, second.error


def _metadata(root: Path) -> dict[str, tuple[int, int, int, int, tuple[str, ...]]]:
    """Relative path -> (mode, owner, group, modification time, extended attribute names) of everything under ``root``."""
    out = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, tuple(sorted(os.listxattr(p))))
    return out


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock: views are copies")
def test_a_plugin_cannot_change_the_bench_files_metadata(tiny_dataset: Path, tmp_path: Path) -> None:
    """Landlock does not cover chmod, chown, utime or attributes, and the views hold hard links to the dataset's files:
    a plugin that tries them all (raw and x32 system calls too) changes nothing, and the next detector reads the
    dataset as before."""
    import shutil

    from breachbench.isolation import run_isolated_many

    ds = tmp_path / "dataset"
    shutil.copytree(tiny_dataset, ds)
    before = _metadata(ds)
    clean = run_isolated("unissued-token-v1", tiny_dataset, timeout_s=300, memory_mb=4096)
    hostile = run_isolated_many("bad_detectors:MetadataChanger", [ds], timeout_s=300, memory_mb=4096)
    assert hostile[0].status == "OK", hostile[0].error
    assert _metadata(ds) == before
    after = run_isolated("unissued-token-v1", ds, timeout_s=300, memory_mb=4096)
    assert after.status == "OK", after.error
    assert after.alerts.equals(clean.alerts) and hostile[0].alerts.equals(clean.alerts)


STATS_THE_BENCH = '''
import os
from bad_detectors import Reports

TARGETS = {targets!r}


class StatsTheBench(Reports):
    """Stats the bench's dataset paths (Landlock does not cover stat) and matches its view's inodes against them."""

    def found(self, view):
        mine = os.stat(next(iter(view._logs["gateway"].values()))[0])  # a hard link of the bench's file
        seen, same = 0, 0
        bench = os.getppid()  # its mount namespace, through /proc, where nothing is covered
        for t in [*TARGETS, *(f"/proc/{{bench}}/root{{t}}" for t in TARGETS), *(f"/proc/{{bench}}/cwd/{{t}}" for t in TARGETS)]:
            try:
                st = os.stat(t)
            except OSError:
                continue
            seen += 1
            same += (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev)
        return f"seen:{{seen}} same:{{same}}"
'''


@pytest.mark.skipif(not LANDLOCK, reason="the kernel has no Landlock: a sealed slot runs on copies")
def test_the_bench_folders_do_not_resolve_in_a_slot(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin that knows where the bench keeps a dataset (its run folder is on the bench's command line, its labels in the
    config) finds nothing there: no path under the folder resolves (the folder is an empty cover), so no inode or size
    ties its view to a label. A red-team plugin that did tie them scored as the oracle. A bench that cannot hide them (not root) says so on the row."""
    from breachbench.isolation import run_isolated_many

    root = tiny_dataset.resolve()
    gateway = sorted((root / "logs" / "gateway").rglob("*.parquet"))
    targets = [str(root / "manifest.json"), str(root / "truth" / "malicious_events.parquet"), *map(str, gateway)]
    (tmp_path / "stats_the_bench.py").write_text(STATS_THE_BENCH.format(targets=targets))
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned children get the bench's sys.path
    (run,) = run_isolated_many("stats_the_bench:StatsTheBench", [tiny_dataset], timeout_s=120, memory_mb=4096)
    assert run.status == "OK", run.error
    found = set(run.alerts["entity_id"].to_list())
    if os.geteuid() != 0:  # no mount namespace without CAP_SYS_ADMIN: the row says the folders stay visible
        assert run.note and "visible to stat" in run.note, run.note
        return
    assert run.note is None, run.note
    assert found == {"seen:0 same:0"}, found
