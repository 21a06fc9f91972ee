"""Run a detector in its own process with time and memory limits.

The child (a ``spawn`` process) loads the detector, fits and scores it over the dataset and
writes its alerts and timings to a scratch directory. The parent samples the child's resident
memory (its whole process tree) every 20 ms and kills it past ``memory_mb`` (status ``OOM``) or
past ``timeout_s`` (``TIMEOUT``); a crash, an exception or a broken contract is ``ERROR`` with
the message. The run always ends with a row, and the other detectors are unaffected.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from breachbench.runner import DetectorRun
from detectors.contract import empty_alerts


def tree_rss(pid: int) -> int:
    """Summed resident memory (bytes) of ``pid`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * page
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def _child(detector_id: str, root: str, prototype: bytes | None, scratch: str) -> None:
    """Child process body: run the detector, write alerts and a status file."""
    from breachbench.dataset import Dataset
    from breachbench.runner import run_detector

    meta: dict[str, Any] = {"status": "ERROR", "error": "did not finish"}
    try:
        proto = pickle.loads(prototype) if prototype else None
        run = run_detector(detector_id, Dataset.open(root), prototype=proto)
        run.alerts.write_parquet(Path(scratch) / "alerts.parquet")
        meta = {"status": run.status, "error": run.error, "version": run.version, "fit_s": run.fit_s, "score_s": run.score_s, "events": run.events}
        if run.error and run.error.startswith("MemoryError"):
            meta["status"] = "OOM"
    except MemoryError:
        meta = {"status": "OOM", "error": "MemoryError in the detector's process"}
    except BaseException as exc:  # noqa: BLE001 - anything the child hits becomes its row
        meta = {"status": "ERROR", "error": f"{type(exc).__name__}: {exc}"}
    (Path(scratch) / "meta.json").write_text(json.dumps(meta))


def run_isolated(detector_id: str, dataset_root: Path, *, timeout_s: float, memory_mb: int, prototype: Any = None) -> DetectorRun:
    """Run one detector on one dataset in a child process under the limits; never raises for its faults."""
    scratch = Path(tempfile.mkdtemp(prefix="bb-det-"))
    run = DetectorRun(detector_id)
    try:
        proto = pickle.dumps(prototype) if prototype is not None else None
    except Exception as exc:  # an unpicklable tuned detector cannot be isolated
        run.status, run.error = "ERROR", f"tuned detector does not pickle: {type(exc).__name__}: {exc}"
        return run
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_child, args=(detector_id, str(dataset_root), proto, str(scratch)), daemon=True)
    limit = memory_mb * 2**20
    peak = 0
    t0 = time.perf_counter()
    proc.start()
    killed = None
    try:
        while proc.is_alive():
            peak = max(peak, tree_rss(proc.pid))
            if peak > limit:
                killed = "OOM"
            elif time.perf_counter() - t0 > timeout_s:
                killed = "TIMEOUT"
            if killed:
                proc.kill()
                break
            proc.join(0.02)
        proc.join()
        meta_path = scratch / "meta.json"
        if killed == "OOM":
            run.status, run.error = "OOM", f"resident memory passed the limit of {memory_mb} MiB (peak seen {peak / 2**20:.0f} MiB)"
        elif killed == "TIMEOUT":
            run.status, run.error = "TIMEOUT", f"still running after the limit of {timeout_s:g} s"
        elif not meta_path.is_file():
            code = proc.exitcode
            run.status = "OOM" if code == -9 else "ERROR"
            run.error = f"the detector's process died (exit code {code})" + (" - killed, likely out of memory" if code == -9 else "")
        else:
            meta = json.loads(meta_path.read_text())
            run.status, run.error, run.version = meta["status"], meta.get("error"), meta.get("version")
            run.fit_s, run.score_s, run.events = meta.get("fit_s", 0.0), meta.get("score_s", 0.0), meta.get("events", 0)
            run.events_per_s = run.events / run.score_s if run.score_s else None
            if run.status == "OK":
                run.alerts = pl.read_parquet(scratch / "alerts.parquet")
        if run.status != "OK":
            run.alerts = empty_alerts()
        run.peak_mb = peak / 2**20
    finally:
        if proc.is_alive():
            proc.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    return run
