"""Safe output directories: one writer at a time, ``--force`` only over what this tool wrote, no stale temp dirs.

* :func:`locked` holds an exclusive ``flock`` on ``.<name>.lock`` next to the output directory
  for as long as it is being written; a second writer is refused at once with a one-line error.
* :func:`check_replace` refuses to replace a non-empty directory unless it holds a manifest of a
  dataset this tool wrote (``format = "breachbench-dataset"``), whatever ``--force`` says.
* :func:`sweep` removes ``.<name>.tmp-<pid>`` and ``.<name>.old-<pid>`` folders left by a
  process that is gone (``kill -9``, power loss).
* :func:`staged` gives a temporary folder beside the output directory to write into, moved in whole
  (:func:`replace`) when done and removed on a failure, so nothing half-written is left.
* :func:`die_with_parent` is the initializer of pool workers: SIGKILL when the parent dies,
  SIGINT ignored (the parent alone reports an interrupt).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from simulator.errors import SimulationError

DATASET_FORMAT = "breachbench-dataset"
_STALE = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as gone, unless only its first thread exited and others run on)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            return fields[0] != "Z" or int(fields[17]) > 1
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@contextlib.contextmanager
def locked(out: Path, what: str = "--out") -> Iterator[None]:
    """Hold the exclusive lock of output directory ``out`` (created next to it).

    Raises:
        SimulationError: another process holds it.
    """
    out = Path(out)
    path = out.parent / f".{out.name}.lock"
    while True:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:  # a folder of the kernel's (/proc), one of another user's, a file in the way
            raise SimulationError(
                f"{what}: cannot write into {out.parent} ({exc.strerror or type(exc).__name__}); choose a folder you can write in"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise SimulationError(
                f"{what}: {out} is being written by another breachbench process (pid {holder}); "
                "wait for it to finish or choose another directory"
            ) from None
        try:  # the file may have been removed by the holder between our open and our lock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def is_ours(out: Path) -> bool:
    """Whether ``out`` holds a manifest of a dataset this tool wrote."""
    try:
        m = json.loads((Path(out) / "manifest.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(m, dict) and m.get("format") == DATASET_FORMAT


def check_replace(out: Path, force: bool, what: str = "--out") -> None:
    """Refuse to write over ``out`` unless it is absent, empty, or (with ``force``) a dataset of ours.

    Raises:
        SimulationError: with the reason in one line.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SimulationError(f"{what}: {out} exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return
    if not force:
        raise SimulationError(f"{what}: directory {out} exists and is not empty; pass --force to replace it")
    if not is_ours(out):
        raise SimulationError(
            f"{what}: {out} is not a dataset written by breachbench (no {DATASET_FORMAT} manifest.json); "
            "--force replaces only datasets this tool wrote: remove it yourself or choose another directory"
        )
    cwd = Path.cwd().resolve()
    if cwd == out.resolve() or out.resolve() in cwd.parents:
        raise SimulationError(f"{what}: {out} contains the current directory; refusing to replace it")


def sweep(parent: Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID`` / ``.NAME.old-PID`` folders in ``parent`` whose process is gone; returns them."""
    gone: list[Path] = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return gone
    for p in entries:
        m = _STALE.match(p.name)
        if m and p.is_dir() and not p.is_symlink() and not pid_alive(int(m["pid"])):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone


def replace(new: Path, out: Path) -> None:
    """Put the finished folder ``new`` (a sibling of ``out``) at ``out``, in place of whatever folder is there, by renames."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(trash)
        new.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        new.rename(out)


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh ``.<name>.tmp-<pid>`` folder beside ``out`` to write into: at ``out`` once the block ends (:func:`replace`),
    removed if it raises."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def die_with_parent(parent: int) -> None:
    """Pool-worker initializer: die with the parent, leave interrupts to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
