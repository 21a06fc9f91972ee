"""Interruption-safe runs: a lock per run directory, stale scratch swept, stale results removed, signals as one line.

``kill -9`` cannot be cleaned up after, so every start cleans up after earlier deaths: dataset
temp folders (``.NAME.tmp-PID``, swept by the generator) and detector scratch folders
(``bb-det-PID-*`` in the system temp folder) whose process is gone. A run removes the results of
an earlier run in the same directory before it writes alerts, so results.json never sits beside
alerts it did not score. SIGTERM is turned into an exception like SIGINT, so both leave through
the same cleanup and the command line reports them in one line (exit 143 and 130).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from breachbench import fstree
from simulator.outdir import pid_alive

_SCRATCH = re.compile(r"^bb-det-(?P<pid>\d+)-")
_FEATURES = re.compile(r"^v\d+-[0-9a-f]{16}$")
RUN_FILES = ("results.json", "leaderboard.md", "report.html", "incidents.csv")


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


def is_our_results(path: Path) -> bool:
    """Whether ``path`` is a results.json this tool wrote."""
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(res, dict) and isinstance(res.get("schema_version"), int) and isinstance(res.get("results"), list)


def clear_run_outputs(out: Path, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Remove an earlier run's results, alerts and feature tables from ``out`` (only files of ours); returns what went.

    ``keep``: alerts files (paths relative to ``out``) that stay.
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
    feats = out / "features"
    if feats.is_dir():
        for d in feats.iterdir():
            if d.is_dir() and _FEATURES.match(d.name):
                shutil.rmtree(d)
                removed.append(d.relative_to(out).as_posix())
    return removed
