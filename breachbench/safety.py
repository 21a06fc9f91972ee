"""Interruption-safe runs: a lock per run directory, stale scratch swept, stale results removed, signals as one line.

``kill -9`` cannot be cleaned up after, so every start cleans up after earlier deaths: dataset
temp folders (``.NAME.tmp-PID``, swept by the generator) and detector scratch folders
(``bb-det-PID-*`` in the system temp folder) whose process is gone. A run writes its alerts into
a staging folder (:data:`STAGING`) and moves them into ``alerts/`` only when its detectors are
done (:func:`publish_run_outputs`): an earlier run's results stay whole until then, through a
crash or an interrupt, and results.json never sits beside alerts it did not score. SIGTERM is
turned into an exception like SIGINT, so both leave through the same cleanup and the command
line reports them in one line (exit 143 and 130).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from breachbench import fstree
from simulator.outdir import pid_alive

_SCRATCH = re.compile(r"^bb-det-(?P<pid>\d+)-")
_FEATURES = re.compile(r"^v\d+-[0-9a-f]{16}$")
RUN_FILES = ("results.json", "leaderboard.md", "report.html", "incidents.csv")
#: Where a run's alerts wait, in the run folder (``STAGING/alerts/...``), until its detectors are done.
STAGING = ".alerts.new"


class Terminated(BaseException):  # named like KeyboardInterrupt, its sibling
    """SIGTERM received (raised in the main thread by :func:`signals_as_exceptions`)."""


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Raise :class:`Terminated` on SIGTERM for the duration (SIGINT already raises KeyboardInterrupt)."""

    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def sweep_scratch(base: Path | None = None) -> list[Path]:
    """Remove detector scratch folders whose bench process is gone; returns them."""
    gone = []
    base = Path(base or tempfile.gettempdir())
    for p in base.glob("bb-det-*"):
        m = _SCRATCH.match(p.name)
        if m and p.is_dir() and not p.is_symlink() and not pid_alive(int(m["pid"])):
            fstree.remove_tree(p)  # iterative and never raising: a detector shaped what is inside
            gone.append(p)
    return gone


def our_results(path: Path) -> dict[str, Any] | None:
    """The results.json at ``path``, read once, when it is one this tool wrote; else None."""
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    ours = isinstance(res, dict) and isinstance(res.get("schema_version"), int) and isinstance(res.get("results"), list)
    return res if ours else None


def is_our_results(path: Path) -> bool:
    """Whether ``path`` is a results.json this tool wrote."""
    return our_results(path) is not None


def clear_run_outputs(out: Path, keep: set[str] | frozenset[str] = frozenset(), *, features: bool = True) -> list[str]:
    """Remove an earlier run's results, alerts and (with ``features``) feature tables from ``out`` (only files of ours); returns what went.

    ``keep``: alerts files (paths relative to ``out``) that stay. results.json goes first, so that
    no results.json describes a folder half cleared.
    """
    out = Path(out)
    removed = []
    if is_our_results(out / "results.json"):
        for name in RUN_FILES:
            if (out / name).is_file():
                (out / name).unlink()
                removed.append(name)
    alerts = out / "alerts"
    if alerts.is_dir():
        for f in sorted(alerts.rglob("*.parquet")):
            if f.relative_to(out).as_posix() in keep:
                continue
            f.unlink()
            removed.append(f.relative_to(out).as_posix())
        for d in sorted((d for d in alerts.rglob("*") if d.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
    return removed + (_clear_features(out) if features else [])


def _clear_features(out: Path, keep: frozenset[str] = frozenset()) -> list[str]:
    """Remove the shared feature tables (a cache of the bench's) from ``out``, but the files ``keep`` names (paths
    relative to ``out/features``: an earlier run's verified tables, :func:`breachbench.reuse.reusable_features`);
    returns what went."""
    removed = []
    feats = out / "features"
    if feats.is_dir():
        for d in sorted(feats.iterdir()):
            if not (d.is_dir() and not d.is_symlink() and _FEATURES.match(d.name)):
                continue
            if not any(rel.startswith(d.name + "/") for rel in keep):
                shutil.rmtree(d)
                removed.append(d.relative_to(out).as_posix())
                continue
            for f in sorted(d.rglob("*"), reverse=True):  # deepest first: a folder after its files
                rel = f.relative_to(feats).as_posix()
                if f.is_dir() and not f.is_symlink():
                    if not any(k.startswith(rel + "/") for k in keep):
                        shutil.rmtree(f)
                elif rel not in keep:
                    f.unlink()
    return removed


def earlier_results_hold(out: Path) -> bool:
    """Whether ``out`` holds a finished run whose results still describe it.

    Its results.json is ours, every alerts file matches the SHA-256 it recorded (and none is
    extra), and every dataset it scored is still there with the config hash it recorded and the
    files its manifest lists (sizes).
    """
    from breachbench.verify import verify_run

    return is_our_results(Path(out) / "results.json") and not verify_run(out)


def drop_staging(out: Path) -> int:
    """Remove the staging folder an unfinished run left in ``out``; returns how many alerts files it held."""
    stage = Path(out) / STAGING
    if not stage.is_dir() or stage.is_symlink():
        return 0
    n = sum(1 for _ in stage.rglob("*.parquet"))
    fstree.remove_tree(stage)
    return n


def begin_run_outputs(
    out: Path, keep: set[str] | frozenset[str] = frozenset(), keep_features: frozenset[str] = frozenset()
) -> Path:
    """Before a run's detectors: an empty staging folder for their alerts, returned.

    An earlier run's results that still hold (:func:`earlier_results_hold`) stay as they are until
    :func:`publish_run_outputs`; results that do not (alerts files without their results.json,
    say, from a run killed while it published) go now, but for the alerts in ``keep``. Feature
    tables (a cache) go in both cases, but for the earlier run's verified ones in ``keep_features``
    while its results hold.
    """
    out = Path(out)
    drop_staging(out)
    if earlier_results_hold(out):
        _clear_features(out, keep_features)
    else:
        clear_run_outputs(out, keep)
    stage = out / STAGING
    stage.mkdir(parents=True)
    return stage


def publish_run_outputs(out: Path, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """This run's alerts from the staging folder into ``alerts/``, in place of the earlier run's (but ``keep``).

    The earlier results files go first, then its alerts, then the new ones move in (a rename
    each, same file system); the caller writes results.json after. A crash in between leaves
    alerts without a results.json, which no later run mistakes for finished.
    """
    out = Path(out)
    stage = out / STAGING
    clear_run_outputs(out, keep, features=False)
    if stage.is_dir():
        for f in sorted(stage.rglob("*.parquet")):
            target = out / f.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, target)
        fstree.remove_tree(stage)
