"""Run a detector in its own sealed process with time and memory limits on its whole process tree.

The child (a ``spawn`` process) starts a session of its own, dies with the bench, moves to its
scratch folder, drops the bench's environment, applies the Landlock ruleset of
:mod:`breachbench.sealing` and only then loads the detector: it sees a private view of the
dataset's ``world/`` and ``logs/`` plus the shared feature tables, and may write only to its
``work/`` folder. The parent samples the resident memory of the slot's whole tree (double-forked
descendants included: the bench is a child subreaper meanwhile) every 50 ms and kills the tree
past ``memory_mb`` (status ``OOM``) or past ``timeout_s`` (``TIMEOUT``); a crash, an exception or
a broken contract is ``ERROR`` with the message, and so is a slot that writes more into its
``work/`` folders than :func:`scratch_limit` allows (no single file may pass it either: the child's
``RLIMIT_FSIZE``), so a plugin cannot fill the bench's disk. When the slot ends, every process of it is
killed. The run always ends with a row, and the other detectors are unaffected.

A slot can hold several datasets (:func:`run_isolated_many`): one warm process scores them in
turn, each with its own view, work folder and limits, and a fresh process takes over after a
dataset that killed the previous one.

Buckets are handed over one at a time (:class:`breachbench.sealing.Reveal`): a view starts with
the warm-up buckets; before it scores a bucket the child writes the alerts of the bucket before
(a file named for the bucket it asks for next, :data:`HANDOVER`); the bench copies those alerts out of
the child's reach, then shows the bucket. The alerts of a bucket are the ones committed before
any later bucket was in the view (the last bucket's come from the final alerts file).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import multiprocessing
import os
import pickle
import random
import secrets
import select
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import polars as pl

from breachbench import fstree, sealing, untrusted
from breachbench.runner import DetectorRun, Status, detector_text, exception_text, rate
from breachbench.untrusted import UntrustedFileError
from detectors.contract import empty_alerts
from simulator import plugins
from simulator.errors import BreachBenchError
from simulator.outdir import pid_alive
from simulator.schema import WORLD_TABLES

#: A slot may keep at most this many files in its work folders (a plugin that makes millions of empty files
#: exhausts the file system's inodes without using bytes).
SCRATCH_FILES = 100_000
#: Threads a slot's processes may run together. A bench run as root is exempt from RLIMIT_NPROC,
#: so without it a plugin held 21,745 threads (two thirds of the machine's process ids) with status
#: OK; the bench samples the count with the memory (every 50 ms) and ends the slot past it.
MAX_TASKS = 2048
#: Pipes a slot's processes may hold open together (each end counts; an honest detector's pool holds a few per worker).
#: Past it the slot ends: the bench looks into each one, whose capacity counts where bytes wait in it (:func:`_held_outside`).
MAX_PIPES = 4096
_F_GETPIPE_SZ = 1032  # fcntl: a pipe's capacity in bytes (Linux)
#: Descriptors and mapped files a slot's processes may hold together (each process's count; a Python process with polars
#: and scikit-learn loaded holds about 1,100). The bench reads each to find deleted files and pipes, and does not sample
#: the slot's memory meanwhile: a red-team plugin handed 19,000 descriptors to 400 helper processes, and in the seconds
#: the bench spent on their 7.6 million links it held 1.1 GiB against a 256 MiB limit, its row OK. Past it the slot ends.
MAX_DESCRIPTORS = 65_536
#: Memory mappings and epoll watches a slot's processes may hold together: kernel memory that neither a resident size nor
#: page tables show (a mapping costs the kernel about 300 bytes, a watch about 160). A red-team plugin's 100 helpers each
#: made 65,530 untouched mappings and held 1.4 GiB of kernel memory against a 256 MiB limit, and 2,000,000 epoll watches
#: held 400 MiB, their rows OK. A Python process with polars and scikit-learn loaded has about 1,250 mappings. The bench
#: counts them with the descriptors; past either the slot ends.
MAX_MAPPINGS = 131_072
MAX_WATCHES = 65_536
#: How often the bench measures the slot's work folders, on average: each wait is drawn anew between a quarter and
#: one and three quarters of it, from the system's randomness, so that a detector cannot tell when the next comes (a
#: red team's, which saw each measurement, held 6 GiB against a 2 GiB limit in the second between them; see
#: :func:`breachbench.fstree.walk` for how it saw them).
SCRATCH_EVERY_S = 1.0
_UNPREDICTABLE = random.SystemRandom()
#: Deepest folder a slot may make in its work folders (a temp folder of a library is a few levels deep).
SCRATCH_DEPTH = 64
#: The signal a process gets for a file past its RLIMIT_FSIZE (Python ignores it and sees EFBIG; a child it starts
#: does not).
_SIGXFSZ = int(getattr(signal, "SIGXFSZ", 25))


def _empty(folder: Path) -> None:
    """Remove what is in ``folder`` (never following links out of it, at any depth), keeping the folder."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        fstree.remove_tree(e.path)


def scratch_limit(memory_mb: int) -> int:
    """Bytes a slot may keep in its work folders: four times its memory limit, at least 256 MiB (temporary files
    of a detector that spills to disk included)."""
    return max(256, 4 * memory_mb) * 2**20


def _scratch_use(folders: list[Path], max_files: int) -> tuple[int, int, str | None]:
    """(bytes allocated, files, what hides from the count) under ``folders``, never following links.

    Stops counting past ``max_files``. The third item names a folder the bench cannot measure (one
    it may not list, or one more than :data:`SCRATCH_DEPTH` levels down, where paths outgrow what
    the kernel resolves): what lies in it would escape the limits, so the slot is stopped for it.
    """
    used = files = 0
    skipped: list[str] = []
    for folder in folders:
        for _path, st, depth in fstree.walk(folder, skipped):
            files += 1
            used += getattr(st, "st_blocks", 0) * 512 or st.st_size
            if stat.S_ISDIR(st.st_mode) and depth > SCRATCH_DEPTH:
                return used, files, f"folders more than {SCRATCH_DEPTH} levels deep"
            if skipped:
                return used, files, "a folder or file the bench cannot list or look at"
            if files > max_files:
                return used, files, None
    return used, files, "a folder or file the bench cannot list or look at" if skipped else None


@dataclass
class _Held:
    """What a slot's processes hold outside their folders (:func:`_held_outside`)."""

    bytes: int = 0  # deleted files kept open or mapped, and pipes with bytes waiting (at their capacity)
    pipes: int = 0
    entries: int = 0  # descriptors and mapped files
    mappings: int = 0
    watches: int = 0  # epoll watches

    def past(self) -> str | None:
        """What passes its limit, as the slot's error says it; None when nothing does."""
        if self.pipes > MAX_PIPES:
            return f"the detector's processes held more than {MAX_PIPES:,} pipes open"
        if self.entries > MAX_DESCRIPTORS:
            return f"the detector's processes held more than {MAX_DESCRIPTORS:,} descriptors and mapped files together"
        if self.mappings > MAX_MAPPINGS:
            return f"the detector's processes held more than {MAX_MAPPINGS:,} memory mappings together (kernel memory)"
        if self.watches > MAX_WATCHES:
            return f"the detector's processes held more than {MAX_WATCHES:,} epoll watches together (kernel memory)"
        return None


def _count_lines(path: str, prefix: bytes, cap: int) -> int:
    """Lines of ``path`` that start with ``prefix`` (every line for ``b""``), counted up to just past ``cap``; 0 when it
    cannot be read."""
    found = 0
    try:
        with open(path, "rb") as f:
            rest = b""
            while found <= cap and (chunk := f.read(1 << 20)):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                found += len(lines) if not prefix else sum(1 for line in lines if line.startswith(prefix))
            if rest and rest.startswith(prefix):
                found += 1
    except OSError:
        return 0
    return found


def _held_outside(pids: set[int]) -> _Held:
    """What processes ``pids`` hold outside any folder (:class:`_Held`), each file and pipe once, from one
    look at each process's descriptors, mapped files and mappings (it may: the slot is its child and runs as its user);
    stops counting past any of its limits (:meth:`_Held.past`).

    Deleted files (``memfd`` ones included) kept open or mapped: a detector could write a file in its work folder,
    delete it and keep it open, and the folder looks empty while the file holds its bytes; an unlinked ``memfd`` holds
    memory no resident-size sample shows. A mapping holds them as well as a descriptor does: a red-team plugin mapped
    two ``memfd``s of 992 MiB and three deleted work files of 496 MiB (through ``mmap`` from C, which keeps no
    descriptor), closed every descriptor and held 2 GiB of memory and 1.5 GiB of disk against a 300 MiB limit, its
    row OK.

    Pipes: a pipe's buffer is kernel memory that no process's resident size shows: a red-team plugin filled pipes,
    closed their write ends and handed the read ends to ``sleep`` processes it started, and held 1.2 GiB against a
    400 MiB limit, its row OK. The bench opens each pipe through ``/proc`` without blocking and asks whether bytes wait
    in it (FIONREAD) and, if so, counts its capacity (F_GETPIPE_SZ): each byte may hold a page of its own (spliced one
    byte a page; ``vmsplice``, which handed a pipe whole huge pages, is refused).
    """
    import fcntl
    import termios

    files: set[tuple[int, int]] = set()
    pipes: set[str] = set()
    held = _Held()
    buf = bytearray(4)
    for pid in pids:
        task = sealing.task_path(pid)  # a thread that has not exited: the memory and mappings of all
        held.mappings += _count_lines(f"{task}/maps", b"", MAX_MAPPINGS - held.mappings)
        if held.past():
            return held
        for folder in (*(f"{t}/fd" for t in sealing.descriptor_tables(pid)), f"{task}/map_files"):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            held.entries += len(names)
            if held.past():
                return held
            for name in names:
                link = f"{folder}/{name}"
                try:
                    target = os.readlink(link)
                except OSError:
                    continue
                if target == "anon_inode:[eventpoll]" and folder.endswith("/fd"):
                    # every descriptor of an instance counts (anonymous inodes share one number: none tells two apart)
                    held.watches += _count_lines(f"{folder[:-3]}/fdinfo/{name}", b"tfd:", MAX_WATCHES - held.watches)
                    if held.past():
                        return held
                    continue
                if target.endswith(" (deleted)"):
                    try:
                        st = os.stat(link)
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in files:
                        files.add((st.st_dev, st.st_ino))
                        held.bytes += getattr(st, "st_blocks", 0) * 512 or st.st_size
                    continue
                if not target.startswith("pipe:") or target in pipes:
                    continue
                pipes.add(target)
                held.pipes = len(pipes)
                if held.past():
                    return held
                try:
                    fd = os.open(link, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    if stat.S_ISFIFO(os.fstat(fd).st_mode):  # still a pipe (the slot may have put another file in its place)
                        fcntl.ioctl(fd, termios.FIONREAD, buf)
                        waiting = int.from_bytes(buf, sys.byteorder)
                        held.bytes += max(waiting, fcntl.fcntl(fd, _F_GETPIPE_SZ)) if waiting else 0
                except OSError:
                    pass
                finally:
                    os.close(fd)
    return held


#: Kinds of shared feature tables the bench computes for every bucket (``detectors.features``).
FEATURE_KINDS = ("customer", "ip", "key")
#: Most alert rows a detector may return per scored bucket before the bench refuses to read them.
MAX_ALERT_ROWS_PER_BUCKET = 1_000_000
#: Most bytes the bench reads of a child's status file, and of its alerts per scored bucket.
MAX_STATUS_BYTES = 1 << 20
MAX_ALERT_BYTES_PER_BUCKET = 64 << 20
#: In a child's work folder: its request for the next bucket (named for it), holding the alerts of the bucket scored last.
HANDOVER = "handover-{day}.parquet"
#: Alerts handed over up to this size stay in the bench's memory; larger ones go to its part of the scratch.
HANDOVER_IN_MEMORY = 256 << 10
#: The longest the bench waits for a child's signal before it looks at the slot anyway (its memory, its time, a
#: request the child did not signal). A child writes a byte into its wake pipe after each request for a bucket and
#: after each status file, and the bench writes one into the child's pipe after showing a bucket: both sleep until
#: then. Polling at 0.2 to 2 ms instead cost the default run some 60,000 context switches a second.
WAIT_S = 0.05
#: Wake-ups by a child's pipe that find nothing to do, beyond two per useful one, before the bench stops listening to
#: that pipe (a child that writes into it without end would otherwise keep the bench spinning until the slot ends).
IDLE_WAKES = 100


def read_child_file(folder: Path, name: str, max_bytes: int) -> bytes | None:
    """The bytes of ``folder/name`` as the child left it, or None when there is no such entry.

    The child owns its work folder, so the entry may be anything: a symbolic link to a file only
    the bench may read (the truth of another run), a FIFO that blocks whoever opens it, a device,
    a huge file. The folder and the entry are opened without following links and without
    blocking, and only a regular file of at most ``max_bytes`` is read, from that descriptor.

    Raises:
        UntrustedFileError: anything else.
    """
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UntrustedFileError(f"{folder.name}/ is not a plain folder: {exc.strerror}") from None
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link
            raise UntrustedFileError(f"{name} is not a plain file: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UntrustedFileError(f"{name} is not a plain file")
            if st.st_size > max_bytes:
                raise UntrustedFileError(f"{name} holds {st.st_size} bytes, more than the bench reads ({max_bytes})")
            chunks, left = [], max_bytes + 1
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
            if len(data) > max_bytes:
                raise UntrustedFileError(f"{name} grew past {max_bytes} bytes while the bench read it")
            return data
        finally:
            os.close(fd)
    finally:
        os.close(dfd)


def tree_rss(pid: int) -> int:
    """Summed resident memory (bytes) of ``pid`` and its descendants (Linux /proc)."""
    children, rss, _ = sealing.proc_table()
    return sum(rss.get(p, 0) for p in sealing.tree([pid], children))


def _page_tables(pid: int) -> int:
    """Bytes of the page tables of ``pid`` (``VmPTE``; 0 when it is gone or the kernel does not say).

    Kernel memory no resident size shows: a red-team plugin mapped 1.5 TiB read-only and private, touched one byte every
    2 MiB (each maps the shared zero page, no resident memory, but a page table) and held 3 GiB of page tables against a
    400 MiB limit, resident 72 MB, its row OK.
    """
    try:
        with open(sealing.task_path(pid) + "/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmPTE:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def shared_features(dataset_root: Path, cache: Path) -> dict[str, str]:
    """Compute the shared feature tables of a dataset into ``cache``; relative path -> sha256.

    Computed by the bench, never by a detector. A later run into the same folder keeps them only where
    every file still has the SHA-256 that this run's ``results.json`` records
    (:func:`breachbench.reuse.reusable_features`), so nothing a detector wrote can reach the next one.
    """
    from breachbench.dataset import Dataset
    from detectors.features import FEATURE_VERSION, gateway_feature_tables

    ds = Dataset.open(dataset_root)
    view = ds.view(ds.buckets[-1])
    base = f"v{FEATURE_VERSION}-{view.dataset_id}"
    out: dict[str, str] = {}
    for day in ds.buckets:  # the three kinds of a bucket from one pass over its rows
        gw = view.logs_of(stream="gateway", day=day)
        auth = pl.concat([view.logs_of(stream="auth", day=day - dt.timedelta(days=1)), view.logs_of(stream="auth", day=day)])
        for kind, table in gateway_feature_tables(gw, auth, view.timezone, FEATURE_KINDS).items():
            rel = f"{base}/{kind}/{day.isoformat()}.parquet"
            path = cache / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")  # threads of one bench too
            table.write_parquet(tmp)
            tmp.replace(path)
            out[rel] = sealing.sha256(path)
    return dict(sorted(out.items()))


def _tuning_view(dataset_root: Path, tslot: sealing.SealedSlot, *, link: bool) -> None:
    """A sealed view of a tuning dataset with its labels (:func:`breachbench.runner.tuning_labels`) beside it, read-only."""
    from breachbench.dataset import Dataset
    from breachbench.runner import tuning_labels

    sealing.build_view(dataset_root, tslot, link=link)
    labels = tuning_labels(Dataset.open(dataset_root))
    os.chmod(tslot.scratch, 0o755)
    labels.write_parquet(tslot.scratch / "labels.parquet")
    os.chmod(tslot.scratch / "labels.parquet", 0o444)
    tslot.work.rmdir()


def _tuned(detector_id: str, views: list[Path]) -> Any:
    """In the child: a fresh instance tuned on the slot's tuning views (None when there are none)."""
    from breachbench.dataset import Dataset
    from detectors.registry import load

    if not views:
        return None
    det = load(detector_id)()
    if callable(getattr(det, "tune", None)):
        for v in views:
            ds = Dataset.open(v / "view")
            det.tune(ds.view(ds.buckets[-1]), pl.read_parquet(v / "labels.parquet"))
    return det


def _import_roots(detector_id: str) -> list[str]:
    """Folders the child must read to import the bench and the detector (never executes it).

    The detector's module is looked up as the child's import will find it (:func:`simulator.plugins.code_of`), and only where its
    code lies is granted: never a folder that merely shares a name with it.
    """
    import breachbench
    import detectors
    import simulator
    from detectors.registry import registry

    roots = [m.__path__[0] for m in (breachbench, detectors, simulator)]  # each package's folder
    target = registry().get(detector_id, detector_id)
    code = plugins.code_of(target.partition(":")[0])
    # never a location reached through a link: a plugin folder's "up -> .." made the module a namespace package whose
    # folder resolved to the plugin folder's parent, and another run's truth there was granted
    if code is not None and os.path.realpath(code) == os.path.abspath(code):
        roots.append(code)
    return roots


def plugin_folders_of(detector_id: str) -> tuple[str, ...]:
    """The ``--plugin-path`` folders a detector's slot searches: the one that holds its module (the first that does, as
    the child's import finds it; every one holding a portion of a namespace package), none where the import path holds
    it (a built-in, an installed package) or no folder does.

    Every slot once searched every folder, after its import path: a red team's folder held a ``cython.py``, which
    scipy's optional ``import cython`` found in ``iforest-v1``'s slot (no cython installed); it negated the built-in's
    scores, and in another run exited its process (an ERROR row). A module another detector's library merely tries is
    found in no folder now, and a plugin's helpers go beside it, in its own folder.
    """
    import importlib.machinery

    from detectors.registry import registry

    top = registry().get(detector_id, detector_id).partition(":")[0].split(".")[0]
    if not top:
        return ()
    ahead = plugins._on_import_path(top)
    if ahead is not None and ahead.loader is not None and ahead.origin is not None:
        return ()  # a regular module or package on the import path: the import stops there
    portions = []  # (the import path's namespace portions, if any, do not stop it: a regular module later wins)
    for folder in plugins.plugin_path():
        try:
            spec = importlib.machinery.PathFinder.find_spec(top, [folder])
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.loader is not None and spec.origin is not None:  # a regular module or package: the import stops here
            return (folder,)
        portions.append(folder)
    return tuple(portions)


@dataclass(frozen=True)
class _Slot:
    """What a slot's child process is told (pickled to the ``spawn`` child)."""

    detector_id: str
    prototype: bytes | None  # a pickled tuned instance, or None: construct (and tune) in the child
    scratch: str  # the slot's top folder: d<i>/view, d<i>/work, tune-<i>/
    read: tuple[str, ...]  # folders the child may read besides its views
    parent: int  # the bench's pid: the child dies with it
    linked: bool  # views hold hard links to the bench's files (only safe under Landlock)
    count: int  # datasets in the slot
    roundtrip: bool = False  # score with a pickled copy of the fitted detector
    file_limit: int = 0  # bytes one file of the child may reach (RLIMIT_FSIZE; 0: none)
    hidden: tuple[str, ...] = ()  # the bench's folders, covered in the child's mount namespace (sealing.hide)
    plugin_path: tuple[str, ...] = ()  # the --plugin-path folders that hold the detector (plugin_folders_of), searched last
    listed: tuple[str, ...] = ()  # folders whose names alone it may read (a plugin folder that holds a hidden run)


#: In the child: the write end of its wake pipe to the bench and the read end of the bench's pipe to it (file numbers).
_PIPES: tuple[int, int] | None = None


def _signal(fd: int) -> None:
    """One byte into a wake pipe; nothing when it is full (the reader wakes on its own within :data:`WAIT_S`)."""
    with contextlib.suppress(OSError):
        os.write(fd, b".")


def _drain(fd: int) -> None:
    """Read what waits in a non-blocking wake pipe (the bytes mean nothing but "look now"): one read, never a loop, so
    a child that writes without end cannot keep the bench from its limits (what is left wakes the next wait at once)."""
    with contextlib.suppress(OSError):
        os.read(fd, 1 << 16)


def _child(plan: _Slot, start: int, wake: Any = None, shown: Any = None) -> None:
    """Child process body: seal itself, then run the detector on datasets ``start`` to ``count - 1`` of the slot in turn.

    Each dataset's alerts and status file go to its own ``work/`` folder (:func:`_dataset_slot`);
    the status file is written last, so the bench knows the dataset is done when it appears.
    ``wake`` and ``shown`` are the ends of the two wake pipes (:data:`WAIT_S`): the child signals
    the bench on ``wake`` and sleeps on ``shown``.
    """
    global _PIPES
    if wake is not None and shown is not None:
        _PIPES = (wake.fileno(), shown.fileno())
        for fd in _PIPES:
            os.set_blocking(fd, False)
    os.setsid()  # the slot's process group; the bench kills it whole
    sealing.die_with_parent(plan.parent)
    _detach_stdio()
    _close_inherited(set(_PIPES or ()))
    # before the capabilities go: it mounts. The temp folder, where every slot's folder lies, is covered but for this
    # slot's own and what the child may read there
    temp = Path(plan.scratch).parent
    hidden = sealing.hide(plan.hidden, temp=str(temp), keep=[plan.scratch, *plan.read])
    procs = sealing.private_proc()
    sealing.drop_capabilities()  # a root bench's capabilities are not the detector's (see there)
    top = Path(plan.scratch)
    slots = [_dataset_slot(top, i) for i in range(plan.count)]
    _enter(slots[start].work)
    plugins.use_plugin_path(plan.plugin_path)  # its variable went with the bench's others
    tune_views = sorted(top.glob("tune-*"), key=lambda p: int(p.name.split("-")[1]))  # listed before the scratch is closed
    # under the temp folder's cover, the folders that hold what it may read there are the cover's own, new to the
    # import system's caches, which list them: readable, with nothing in them but those entries
    skeleton = [Path(d) for d in _covered_parents(plan.read, temp)] if hidden is None else []
    # it writes into the work folders of its own datasets alone: an earlier process's (one that died on its dataset)
    # is no longer measured, and a red team's second process wrote 1.5 GiB into it past an 800 MiB scratch limit
    note = sealing.restrict(
        [Path(p) for p in plan.read] + skeleton + [s.view for s in slots] + tune_views,
        [*(s.work for s in slots[start:]), *(Path(d) for d in sealing.DEVICE_WRITE)],
        [Path(p) for p in plan.listed],
    )
    # Landlock does not cover chmod, chown, utime or attributes (the views' hard links would let them reach the bench's
    # files), nor UDP or Unix sockets
    note = "; ".join(n for n in (note, sealing.deny_calls()) if n) or None
    if plan.file_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (plan.file_limit, plan.file_limit))  # past it: SIGXFSZ, the slot's row
    if note and plan.linked:  # hard links to the bench's files are only safe under the kernel's restriction
        meta: dict[str, Any] = {
            "status": Status.ERROR,
            "error": f"sealing failed, the detector was not run: {note}",
            "note": note,
        }
        for slot in slots[start:]:
            (slot.work / "meta.json").write_text(json.dumps(meta))
        return
    proto: Any = None
    tune_error: dict[str, Any] | None = None
    try:
        proto = pickle.loads(plan.prototype) if plan.prototype else None
        if proto is None:
            proto = _tuned(plan.detector_id, tune_views)
    except MemoryError:
        tune_error = {"status": Status.OOM, "error": "MemoryError in the detector's process"}
    except BaseException as exc:  # a detector's bug in tune() is its row
        tune_error = {"status": Status.ERROR, "error": f"tune: {exception_text(exc)}"}
    for slot in slots[start:]:
        meta = tune_error or _run_one(plan, proto, slot)
        meta["note"] = "; ".join(n for n in (note, hidden, procs) if n) or None  # a note, not a stop
        part = slot.work / "meta.json.part"  # the bench reads meta.json as soon as it appears: whole or not at all
        part.write_text(json.dumps(meta))
        part.replace(slot.work / "meta.json")
        if _PIPES:
            _signal(_PIPES[0])


def _covered_parents(read: Iterable[str], temp: Path) -> list[str]:
    """The folders between ``temp`` (not itself) and each path of ``read`` below it (:func:`sealing.hide`'s ``temp``)."""
    root = os.path.realpath(temp)
    out: set[str] = set()
    for p in read:
        d = os.path.dirname(os.path.realpath(p))
        while d.startswith(root + "/") and d not in out:
            out.add(d)
            d = os.path.dirname(d)
    return sorted(out)


def _close_inherited(keep: set[int]) -> None:
    """In the child: close every pipe and socket it inherited from the bench, but ``keep`` (the wake pipes).

    A spawned process inherits the write end of ``multiprocessing``'s resource tracker, a process
    of the bench's outside the slot: through it a detector could have any shared-memory segment
    removed when the bench exits, or print lines of its choosing on the bench's standard error.
    Forgotten, the tracker is started again inside the slot if the detector needs one. The end of
    the pipe whose closing tells the bench the child exited goes too: the bench then stops waiting
    on it (it would wake at once, again and again) and sees the exit by the clock, within
    :data:`WAIT_S`.
    """
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = []
    for fd in fds:
        if fd <= 2 or fd in keep:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("pipe:", "socket:")):
            with contextlib.suppress(OSError):
                os.close(fd)
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_fd", None) is not None:
        tracker._fd = None  # closed above
        if hasattr(tracker, "_pid"):
            tracker._pid = None


def _detach_stdio() -> None:
    """In the child: standard input, output and error on /dev/null before any detector code runs.

    Inherited, they are the bench's terminal or log: a detector could inject keystrokes into the
    user's shell (TIOCSTI on a terminal), forge lines of the bench's log or truncate it.
    """
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _enter(work: Path) -> None:
    """In the child: move into ``work``, forget the bench's arguments and variables, keep temp files in ``work``."""
    os.chdir(work)
    sys.argv = ["breachbench-detector"]
    for k in [k for k in os.environ if k.startswith(sealing.BENCH_ENV_PREFIXES)]:
        del os.environ[k]
    # joblib's process pools need shared-memory semaphores the sealed slot does not give: serial, without its warning
    os.environ.update(
        TMPDIR=str(work),
        JOBLIB_TEMP_FOLDER=str(work),
        JOBLIB_MULTIPROCESSING="0",
        MPLCONFIGDIR=str(work),
        PYTHONDONTWRITEBYTECODE="1",
    )
    tempfile.tempdir = None


def _world_read(value: Any) -> list[str] | None:
    """The world tables a slot says its detector read (the detector could write anything there, which changes
    nothing but its own row's note): the known table names in it, or None."""
    if not isinstance(value, list):
        return None
    return sorted({t for t in value if isinstance(t, str) and t in WORLD_TABLES})


def _run_one(plan: _Slot, proto: Any, slot: sealing.SealedSlot) -> dict[str, Any]:
    """In the child: one dataset of the slot; the status to write (alerts written first)."""
    try:
        from breachbench.dataset import Dataset
        from breachbench.runner import run_detector

        ds = Dataset.open(slot.view, feature_cache=slot.features)
        run = run_detector(plan.detector_id, ds, prototype=proto, roundtrip=plan.roundtrip, before_bucket=_asker(ds, slot))
        run.alerts.write_parquet(slot.work / "alerts.parquet")
        return {
            "status": run.status,
            "error": run.error,
            "version": run.version,
            "fit_s": run.fit_s,
            "score_s": run.score_s,
            "events": run.events,
            "world_read": run.world_read,
        }
    except MemoryError:
        return {"status": Status.OOM, "error": "MemoryError in the detector's process"}
    except BaseException as exc:  # anything the child hits becomes its row
        return {"status": Status.ERROR, "error": exception_text(exc)}


def _asker(ds: Any, slot: sealing.SealedSlot) -> Callable[[dt.date, pl.DataFrame | None], None]:
    """In the child: before a scored bucket, hand over the previous bucket's alerts, ask for this one, wait until shown."""

    def ask(bucket: dt.date, previous: pl.DataFrame | None) -> None:
        part = slot.work / "handover.part"
        (previous if previous is not None else empty_alerts()).write_parquet(part)
        part.replace(slot.work / HANDOVER.format(day=bucket.isoformat()))  # the request: whole or not at all
        if _PIPES:
            _signal(_PIPES[0])
        shown = slot.view / sealing.shown(bucket)
        while not shown.exists():  # the supervisor's limits still run: a bench that never answers is a TIMEOUT
            try:  # the detector may have closed the pipe (or put another file on its number): then poll
                if not _PIPES:
                    raise OSError
                select.select([_PIPES[1]], [], [], WAIT_S)
                _drain(_PIPES[1])
            except (OSError, ValueError):
                time.sleep(0.001)
        ds.refresh(bucket)

    return ask


def _dataset_slot(top: Path, i: int) -> sealing.SealedSlot:
    """The sealed view and work folder of the ``i``-th dataset of a slot."""
    return sealing.SealedSlot(top / f"d{i}")


#: Variables that make a starting Python run code from outside its installation before ``_child`` seals anything: a
#: ``sitecustomize.py`` in a ``PYTHONPATH`` folder (a red-team plugin shipped one beside its module, and in every slot
#: it read truth as root, unsealed, and scored as the oracle), a start-up script, a warning category's module, a user
#: site folder with its ``.pth`` files. The child gets the bench's import path from ``spawn`` itself, not from these.
STARTUP_ENV = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONWARNINGS", "PYTHONUSERBASE", "PYTHONINSPECT", "PYTHONBREAKPOINT")


#: All a slot's process keeps of the bench's environment, by exact name: where programs and libraries are, the locale
#: and time zone, Python's hash seed and text encoding, and the thread settings of the numerical libraries. The rest is
#: the operator's (an API token, a cloud key), not the detector's: a red-team plugin put a variable's value into its
#: error, and so into the published leaderboard; kept by prefix, ``POLARS_CLOUD_CLIENT_SECRET`` (Polars Cloud's
#: credentials) went the same way. Removed before the process starts, so that ``/proc/self/environ`` (its start-up
#: block, which setting ``os.environ`` later does not change) holds none of it either.
SLOT_ENV = frozenset(
    {
        *("PATH", "HOME", "LD_LIBRARY_PATH", "TZ", "TERM", "LANG", "LANGUAGE"),
        *("PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8"),
        *(
            f"LC_{c}"
            for c in (
                "ALL", "CTYPE", "NUMERIC", "TIME", "COLLATE", "MONETARY", "MESSAGES", "PAPER", "NAME", "ADDRESS",
                "TELEPHONE", "MEASUREMENT", "IDENTIFICATION",
            )
        ),
        *("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS"),
        *("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS", "POLARS_MAX_THREADS"),
        *("RAYON_NUM_THREADS", "CUDA_VISIBLE_DEVICES"),
    }
)  # fmt: skip


def _clean_env(protected: list[Path]) -> dict[str, str]:
    """Remove (and return) every environment variable a slot's process does not keep (:data:`SLOT_ENV`), those that
    name the bench's folders, and Python's start-up ones."""
    saved = {}
    for k, v in list(os.environ.items()):
        if (
            k not in SLOT_ENV
            or k.startswith(sealing.BENCH_ENV_PREFIXES)
            or k in STARTUP_ENV
            or any(str(p) in v for p in protected)
        ):
            saved[k] = os.environ.pop(k)
    return saved


def run_isolated(
    detector_id: str,
    dataset_root: Path,
    *,
    timeout_s: float,
    memory_mb: int,
    prototype: Any = None,
    features: dict[str, str] | None = None,
    features_root: Path | None = None,
    protected: list[Path] | None = None,
    tuning: list[Path] | None = None,
    roundtrip: bool = False,
) -> DetectorRun:
    """Run one detector on one dataset in a sealed child process under the limits (:func:`run_isolated_many` of one)."""
    return run_isolated_many(
        detector_id,
        [dataset_root],
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        prototype=prototype,
        features=[features] if features is not None else None,
        features_root=features_root,
        protected=protected,
        tuning=tuning,
        roundtrip=roundtrip,
    )[0]


#: One sealed slot at a time in a process. The bench is its slot's subreaper and takes every new child of its own
#: process for an orphan of that slot, to count and kill: two slots in one process (threads of a Dask worker started
#: with ``--nthreads`` above 1) would count and kill each other's processes (a red-team plugin that finished at once
#: killed the honest slot beside it, reported OOM).
_ONE_SLOT = threading.Lock()
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_slot_at_a_time(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _ONE_SLOT:
            return fn(*args, **kwargs)

    return wrapper


@_one_slot_at_a_time
def run_isolated_many(
    detector_id: str,
    dataset_roots: list[Path],
    *,
    timeout_s: float,
    memory_mb: int,
    prototype: Any = None,
    features: list[dict[str, str]] | None = None,
    features_root: Path | None = None,
    protected: list[Path] | None = None,
    tuning: list[Path] | None = None,
    on_done: Callable[[int, DetectorRun], None] | None = None,
    roundtrip: bool = False,
    spent: Path | None = None,
) -> list[DetectorRun]:
    """Run one detector on several datasets in one warm sealed process; one row per dataset; never raises for its faults.

    The process is started once and scores the datasets in turn (a fresh instance for each, from
    the same tuned prototype), so the bench pays the start of a process and the detector's imports
    once instead of once per dataset. Limits apply per dataset: the clock restarts and the memory
    peak is taken per dataset. A dataset whose run crashes, hangs or passes the memory limit gets
    its own ERROR, TIMEOUT or OOM row; the process tree is killed and a fresh sealed process takes
    the remaining datasets, so their rows are those of a clean run.

    Args:
        detector_id: registered id or ``module:attr``.
        dataset_roots: the bench's datasets; the detector gets a private view of each one's world and logs.
        timeout_s: wall-clock limit per dataset.
        memory_mb: limit on the summed resident memory of the slot's process tree.
        prototype: a tuned instance to copy instead of constructing a fresh one.
        features: per dataset, shared feature tables (relative path -> sha256) handed over read-only.
        features_root: where those tables are.
        protected: further folders the detector must not read (the run's output folder).
        tuning: tuning datasets; a detector with ``tune(view, labels)`` is tuned on sealed views of
            them (their world and logs, and their positive units as labels) inside the slot.
        on_done: called with (index, row) as each dataset's row is known.
        roundtrip: score with a pickled and unpickled copy of each fitted detector (the
            conformance check ``pickle``).
        spent: a folder of the caller's (see :func:`set_aside`) where the slot's folder goes when the
            slot is over, to be removed with the others later; removed at once without it.

    The slot scores the datasets in an order drawn at random for it (the rows come back in the
    order given): a plugin that counts the datasets it has seen in its process would otherwise know
    which entry of a published config each one is, and so its scenario.

    (Past fifty lines with these documented arguments; the steps are :func:`_build_views`,
    :func:`_readable` and :class:`_Supervisor`.)
    """
    order = _order(len(dataset_roots))  # the slot's i-th dataset is dataset_roots[order[i]]
    dataset_roots = [dataset_roots[j] for j in order]
    features = [features[j] for j in order] if features else features
    on_done = _in_given_order_done(on_done, order)
    roots = [Path(r).resolve() for r in dataset_roots]
    runs = [DetectorRun(detector_id) for _ in roots]
    try:
        proto = pickle.dumps(prototype) if prototype is not None else None
    except Exception as exc:  # an unpicklable tuned detector cannot be isolated
        for run in runs:
            run.status, run.error = Status.ERROR, f"tuned detector does not pickle: {exception_text(exc)}"
        return _in_given_order(runs, order)
    # named before it exists and made inside the try: a SIGTERM or Ctrl-C at any point after mkdir still removes it
    top = Path(tempfile.gettempdir()) / f"bb-det-{os.getpid()}-{secrets.token_hex(8)}"
    guarded = [*roots, *(Path(p).resolve() for p in protected or []), *([Path(features_root).resolve()] if features_root else [])]
    enforced = sealing.landlock_abi() >= 1
    try:
        top.mkdir(mode=0o700)
        reveals = _build_views(top, roots, features, features_root, link=enforced)
        tuning = [Path(t).resolve() for t in tuning or []]
        guarded += tuning
        for i, t in enumerate(tuning):
            _tuning_view(t, sealing.SealedSlot(top / f"tune-{i}"), link=enforced)
        # never another slot's folder (a plugin's import path may hold the temp folder, which grants its entries)
        read, listed = _readable(detector_id, [*guarded, top, *top.parent.glob("bb-det-*")])
        plan = _Slot(
            detector_id,
            proto,
            str(top),
            read,
            os.getpid(),
            enforced,
            len(roots),
            roundtrip,
            scratch_limit(memory_mb),
            # the bench's folders (never the one holding the slot), and the slot's buckets not shown yet: Landlock refuses
            # opening them, not a stat by name, and their files' sizes would tell the volume still to come
            (
                *(d for d in sealing.outermost(guarded) if not str(top).startswith(d.rstrip("/") + "/")),
                *(str(_dataset_slot(top, i).stage) for i in range(len(roots))),
            ),
            plugin_folders_of(detector_id),
            listed,
        )
        supervisor = _Supervisor(runs, plan, guarded, reveals, timeout_s=timeout_s, memory_mb=memory_mb, on_done=on_done)
        start = 0
        while start < len(roots):  # one warm process; a fresh one after a dataset that killed it
            start = supervisor.run_from(start)
        if not enforced:  # nothing kept the detector from the bench's files: check they are still as written
            from breachbench.verify import check_dataset

            for root in roots:
                check_dataset(root)
        return _in_given_order(runs, order)
    except sealing.SealError as exc:  # raised while the views are built, before any process starts
        for i, run in enumerate(runs):
            run.status, run.error, run.alerts = Status.ERROR, f"sealing: {exc}", empty_alerts()
            if on_done:
                on_done(i, run)
        return _in_given_order(runs, order)
    finally:
        if not (spent is not None and enforced and set_aside(top, spent)):
            sealing.unseal(sealing.SealedSlot(top))


def _order(n: int) -> list[int]:
    """The order in which a slot scores its ``n`` datasets: drawn at random (``secrets``), unknown to the slot."""
    order = list(range(n))
    secrets.SystemRandom().shuffle(order)
    return order


def _in_given_order_done(
    on_done: Callable[[int, DetectorRun], None] | None, order: list[int]
) -> Callable[[int, DetectorRun], None] | None:
    """``on_done`` told the caller's index of the slot's ``i``-th dataset."""
    return (lambda i, run: on_done(order[i], run)) if on_done is not None else None


def _in_given_order(runs: list[DetectorRun], order: list[int]) -> list[DetectorRun]:
    """The slot's rows (in its order, :func:`_order`) in the order the caller gave the datasets."""
    back = list(runs)
    for i, j in enumerate(order):
        back[j] = runs[i]
    return back


#: Most bytes of copied files a spent slot folder may hold and still be set aside (the views' log
#: files are hard links; the feature tables are copies).
SPENT_MAX_BYTES = 256 * 2**20


def set_aside(top: Path, spent: Path) -> bool:
    """Move a finished slot's folder into ``spent`` instead of removing it now; False when it cannot (left in place).

    Removing a slot's folder frees thousands of inodes (its views' folders, markers and copies), and
    an ext4 file system without a journal skips every inode freed in the last half minute when it
    makes a new one: with a slot ending every few seconds, each folder the next slot makes cost a
    scan of the last slots' inodes (measured: building the views of 20 datasets took 3.6 s instead of
    0.5 s, nearly all of it in the kernel). A run sets its slots aside and removes them together at
    the end. Only under the kernel's restriction (views of hard links: little disk is held), and only
    while the copies in the folder stay under :data:`SPENT_MAX_BYTES`; its processes are dead by then.
    """
    held = 0
    skipped: list[str] = []
    for _path, st, _depth in fstree.walk(top, skipped):  # iterative: a detector's work folder may be any depth
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            held += st.st_size
            if held > SPENT_MAX_BYTES:
                return False
    if skipped:  # what it holds cannot be measured: removed now
        return False
    try:
        top.rename(Path(spent) / top.name)
    except OSError:  # another file system (a cluster's worker), or the folder is gone
        return False
    return True


def _build_views(
    top: Path, roots: list[Path], features: list[dict[str, str]] | None, features_root: Path | None, *, link: bool
) -> list[sealing.Reveal]:
    """The sealed view of each dataset of the slot, with its shared feature tables: its warm-up buckets, to start."""
    return [
        sealing.build_view(
            root,
            _dataset_slot(top, i),
            link=link,
            features=features[i] if features else None,
            features_root=features_root,
            stepwise=True,
        )
        for i, root in enumerate(roots)
    ]


#: At most this many entries of a folder granted to a detector besides the system's and Python's (a plugin folder, an
#: import path such as ``PYTHONPATH``) are searched for the bench's own files (:func:`bench_files`); a folder with more
#: is not granted (``--plugin-path`` refuses it at once).
SCAN_ENTRIES = 20_000


def bench_files(roots: Iterable[str | Path], limit: int | None = None, skip: Iterable[str] = ()) -> tuple[list[Path], list[Path]]:
    """The bench's own folders under ``roots`` and the roots too large to search (more than ``limit`` entries, by default
    :data:`SCAN_ENTRIES`).

    A bench folder is a dataset's ``truth``, a dataset (a ``manifest.json`` beside ``truth``), or a run's output folder
    (its ``results.json``, its ``secret``, or ``datasets`` beside ``alerts``: an oracle's alerts are the truth), staged
    (``.name.tmp-<pid>``) or not. A red team's plugin in a folder that held an earlier run (``--plugin-path .`` from
    the project, whose ``runs/`` it then read) found that run's truth and oracle alerts and scored as the oracle
    does. Links are not followed: Landlock judges a file by where it lies, not by the path that reached it. Folders
    ``skip`` (Python's installation in a project's ``.venv``) are not searched.
    """
    from breachbench.suite import SECRET_FILE

    limit = SCAN_ENTRIES if limit is None else limit
    passed = {os.path.realpath(p) for p in skip}
    found: list[Path] = []
    large: list[Path] = []
    for root in dict.fromkeys(os.path.realpath(r) for r in roots):
        if not os.path.isdir(root):
            continue
        seen, todo, mine = 0, [root], []
        while todo and seen <= limit:
            d = todo.pop()
            try:
                with os.scandir(d) as it:
                    entries = list(it)
            except OSError:
                continue
            seen += len(entries)
            dirs = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
            files = {e.name: e for e in entries if e.is_file(follow_symlinks=False)}
            secret = files.get(SECRET_FILE)
            try:  # a run's secret: 64 hex digits and a line's end (a file of that name and another size is not)
                secret_size = secret.stat(follow_symlinks=False).st_size if secret is not None else -1
            except OSError:
                secret_size = -1
            if (
                os.path.basename(d) == "truth"
                or ("manifest.json" in files and "truth" in dirs)
                or "results.json" in files
                or secret_size in (64, 65)
                or {"datasets", "alerts"} <= dirs
            ):
                mine.append(Path(d))
                continue
            todo += [x for n in sorted(dirs) if (x := os.path.join(d, n)) not in passed]
        if seen > limit:
            large.append(Path(root))
        else:
            found += mine
    return found, large


def python_and_system() -> list[str]:
    """The system's and Python's folders, granted to every detector and never searched for the bench's files."""
    return [os.path.realpath(p) for p in (*sealing.SYSTEM_READ, sys.prefix, sys.base_prefix, sys.exec_prefix)]


def _searched(paths: Iterable[str]) -> list[str]:
    """Of the folders granted to a detector, those :func:`bench_files` searches: all but the system's and Python's."""
    fixed = python_and_system()
    return [p for p in paths if p and not any(sealing._under(Path(os.path.realpath(p)), q) for q in fixed)]


def _readable(detector_id: str, denied: list[Path]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Folders the child may read besides its views: the system's, Python's and the detector's imports, less ``denied``,
    the bench's own folders within them (:func:`bench_files`) and the entries of the system's configuration folders
    that not every user may read.

    The current folder is not one of them, though ``python -m`` puts it on ``sys.path``: it is where
    runs are written (``runs/``), and another run of the same config holds the same truth. Only the
    detector's own module or package is granted from there.
    """
    here = {os.path.realpath(os.getcwd())}
    roots = [
        *sealing.SYSTEM_READ,
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *(p for p in sys.path if p and os.path.realpath(p) not in here),
        *plugin_folders_of(detector_id),
        *_import_roots(detector_id),
    ]
    searched = _searched([str(p) for p in roots])
    found, large = bench_files(searched, skip=python_and_system())
    # a folder too large to search is not granted (Python's installation inside it still is, as a root of its own)
    roots = [r for r in roots if Path(os.path.realpath(r)) not in large]
    split: list[Path] = []
    read = sealing.readable_roots(roots, [*denied, *found, *sealing.private_entries()], split)
    # a plugin folder that holds a hidden run: its names listed alone, so that the import system finds the plugin there
    kept = [os.path.realpath(r) for r in searched if Path(os.path.realpath(r)) not in large]
    listed = [p for p in split if any(sealing._under(p, r) for r in kept)]
    return tuple(str(p) for p in read), tuple(str(p) for p in listed)


@dataclass
class _Clock:
    """The bench's own clock of one dataset in a slot (a detector's process can make its own clock say anything: a
    red team's plugin patched ``time.perf_counter`` and its row showed 2.9e13 events/s)."""

    start: float  # when the dataset's turn began (the child started, or finished the dataset before)
    fit: float | None = None  # from the start to the child's first request for a scored bucket
    shown: float | None = None  # when the bucket it works on was shown
    busy: float = 0.0  # from each bucket shown to the child's next request, or to its status file after the last

    def asked(self, now: float) -> None:
        """The child asks for its next bucket: the one before is done (the first: fit is)."""
        if self.shown is None:
            self.fit = now - self.start
        else:
            self.busy += now - self.shown

    def stop(self, now: float) -> tuple[float, float]:
        """The dataset is done (its status file is there): (fit seconds, score seconds) as the bench saw them. Without a
        request for a bucket the bench cannot tell fit from scoring and counts it all as scoring, so that a row cannot
        look faster by writing its status file unasked."""
        if self.shown is None:
            return 0.0, now - self.start
        return (self.fit or 0.0), self.busy + now - self.shown


@dataclass
class _Supervisor:
    """The parent's side of a slot: starts children on the slot's datasets, watches their tree and
    fills ``runs`` as datasets finish.

    A dataset is finished when its status file appears. Past the time or memory limit on the
    current dataset, the tree is killed and that dataset gets TIMEOUT or OOM; a child that dies
    without a status file gives the current dataset ERROR (OOM if it was killed by signal 9).
    """

    runs: list[DetectorRun]
    plan: _Slot
    guarded: list[Path]  # folders the child's environment must not name
    reveals: list[sealing.Reveal]  # per dataset: the buckets its view shows
    timeout_s: float
    memory_mb: int
    on_done: Callable[[int, DetectorRun], None] | None
    #: per dataset and bucket: the alerts handed over (their bytes, or a copy in the bench's part of the scratch), or
    #: why they could not be taken
    committed: dict[int, dict[dt.date, bytes | Path | str]] = field(default_factory=dict)
    #: bytes of alerts handed over and kept (in memory or copied into the bench's part of the scratch) for datasets not
    #: yet finished: they count against the slot's scratch limit with its work folders
    handed: int = 0
    #: bytes of the alerts read back and kept for scoring, over the slot's finished datasets: at most its memory limit
    held: int = 0
    failure: str | None = None  # why the bench stopped the slot, when not for its limits
    spilled: bool = False  # the child was stopped for what it wrote: empty its work folders once it is dead
    pipes: tuple[int, int] | None = None  # while a child runs: the bench's ends of the wake pipes (read, write)
    poller: Any = None  # while a child runs: waits on its wake pipe and its exit
    clocks: dict[int, _Clock] = field(default_factory=dict)  # per dataset watched: the bench's clock of it

    def run_from(self, start: int) -> int:
        """Start a child on datasets ``start``.., watch it until it ends or is killed; returns where the next child starts."""
        n = len(self.runs)
        ctx = multiprocessing.get_context("spawn")
        wake_r, wake_w = ctx.Pipe(duplex=False)  # child -> bench: a request or a status file is there
        shown_r, shown_w = ctx.Pipe(duplex=False)  # bench -> child: the bucket asked for is shown
        proc = ctx.Process(target=_child, args=(self.plan, start, wake_w, shown_r), daemon=True)
        was_reaper = sealing.set_child_subreaper(True)
        try:
            before, t0 = self._start(proc)
            wake_w.close()  # the child's ends: only the child holds them now
            shown_r.close()
            for c in (wake_r, shown_w):
                os.set_blocking(c.fileno(), False)
            self.pipes = (wake_r.fileno(), shown_w.fileno())
            self.poller = select.poll()  # no limit on descriptor numbers, unlike select()
            for fd in (wake_r.fileno(), proc.sentinel):
                self.poller.register(fd, select.POLLIN)
            try:
                cur, peak, killed = self._watch(proc, before, start, t0)
            finally:
                _end_slot(proc, before)
        finally:
            for c in (wake_r, wake_w, shown_r, shown_w):
                c.close()
            self.pipes = self.poller = None
            if not was_reaper:
                sealing.set_child_subreaper(False)
        while cur < n and not killed and self._finished(cur):  # written just before the child exited
            self._finish(cur, peak)
            cur, peak = cur + 1, 0
        if cur >= n:
            return n
        if self.spilled or proc.exitcode == -_SIGXFSZ:  # the child is dead: free the disk it filled
            for i in range(start, n):
                _empty(_dataset_slot(Path(self.plan.scratch), i).work)
            self.spilled = False
        self._fail(cur, killed, proc.exitcode, peak)
        for i in range(start, cur + 1):  # read, or failed: the next child neither writes there nor is measured there
            _empty(_dataset_slot(Path(self.plan.scratch), i).work)
        return cur + 1

    def _start(self, proc: Any) -> tuple[set[int], float]:
        """Start the child with the bench's folders out of its environment; the bench's children before it and the
        clock of the first dataset (started just before the child)."""
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()  # a child of ours that spawn starts: not part of the slot
        untrusted.ensure_reader()  # another (it reads what the slot writes)
        before = set(sealing.proc_table()[0].get(os.getpid(), []))
        saved = _clean_env(self.guarded)
        t0 = time.perf_counter()
        try:
            proc.start()
        finally:
            os.environ.update(saved)
        assert proc.pid is not None  # started
        return before, t0

    def _finished(self, i: int) -> bool:
        # the child owns work/: lstat, never follow what it put there (a link or a FIFO is not a status file)
        try:
            return stat.S_ISREG(os.lstat(_dataset_slot(Path(self.plan.scratch), i).work / "meta.json").st_mode)
        except OSError:
            return False

    def _serve(self, i: int) -> bool:
        """Show dataset ``i``'s next bucket if its child asks for it, after taking the alerts of the bucket before;
        whether it did."""
        rv = self.reveals[i]
        nxt = rv.next_day()  # only the bench's own order: a request for any other bucket is never seen
        if nxt is None:
            return False
        work, name = _dataset_slot(Path(self.plan.scratch), i).work, HANDOVER.format(day=nxt.isoformat())
        kept: bytes | Path | str
        try:
            raw = read_child_file(work, name, MAX_ALERT_BYTES_PER_BUCKET)
        except (OSError, UntrustedFileError) as exc:
            kept = f"{type(exc).__name__}: {exc}"
        else:
            if raw is None:
                return False
            kept = raw
        clock = self.clocks.get(i)
        if clock is not None:
            clock.asked(time.perf_counter())
        with contextlib.suppress(OSError):
            os.unlink(work / name)
        if rv.shown is not None and rv.shown in rv.scored:  # the alerts of the bucket shown last, out of the child's reach
            if isinstance(kept, bytes):
                if self.handed + len(kept) > scratch_limit(self.memory_mb):
                    raise _Overrun(
                        f"the detector handed over {(self.handed + len(kept)) / 2**20:.0f} MiB of alerts, past the limit "
                        f"of its scratch folder ({scratch_limit(self.memory_mb) // 2**20} MiB)"
                    )
                self.handed += len(kept)
            if isinstance(kept, bytes) and len(kept) > HANDOVER_IN_MEMORY:
                dst = Path(self.plan.scratch) / "handed" / f"d{i}" / f"{rv.shown.isoformat()}.parquet"
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(kept)
                kept = dst
            self.committed.setdefault(i, {})[rv.shown] = kept
        rv.show(nxt)
        if clock is not None:
            clock.shown = time.perf_counter()
        return True

    def _finish(self, i: int, peak: int) -> None:
        clock = self.clocks.pop(i, None)
        _read_child(
            self.runs[i],
            _dataset_slot(Path(self.plan.scratch), i),
            self.reveals[i],
            self.committed.get(i, {}),
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            seen=clock.stop(time.perf_counter()) if clock is not None else (0.0, 0.0),
        )
        self._release(i)
        run = self.runs[i]
        if run.status == Status.OK:
            # each dataset's alerts are bounded on their own, but the bench keeps every dataset's until the slot is done:
            # a red team's plugin, within every per-dataset bound, had the bench hold 120 MiB more per dataset, past its
            # memory limit (about 20 GiB in the default grid at the default limit). In all they stay within it.
            size = int(run.alerts.estimated_size())
            if self.held + size > self.memory_mb * 2**20:
                run.status, run.alerts = Status.ERROR, empty_alerts()
                run.error = (
                    f"its alerts over the datasets so far hold {(self.held + size) / 2**20:.0f} MiB, more than its memory "
                    f"limit ({self.memory_mb} MiB) lets the bench keep for scoring"
                )
            else:
                self.held += size
        run.peak_mb = peak / 2**20
        if self.on_done:
            self.on_done(i, self.runs[i])

    def _release(self, i: int) -> None:
        """Forget the alerts dataset ``i`` handed over (read now, or never to be read)."""
        for kept in self.committed.pop(i, {}).values():
            if isinstance(kept, Path):
                with contextlib.suppress(OSError):
                    self.handed -= kept.stat().st_size
                    kept.unlink()
            elif isinstance(kept, bytes):
                self.handed -= len(kept)

    def _watch(self, proc: Any, before: set[int], cur: int, t0: float) -> tuple[int, int, Status | None]:
        """Serve the child's requests for buckets; sample the slot's tree every 50 ms while it runs; (current dataset,
        its memory peak, why it was killed)."""
        n, limit = len(self.runs), self.memory_mb * 2**20
        peak, sampled, measured = 0, 0.0, time.perf_counter()
        gap = SCRATCH_EVERY_S * _UNPREDICTABLE.uniform(0.25, 1.75)
        self.clocks = {cur: _Clock(t0)}
        works = [_dataset_slot(Path(self.plan.scratch), i).work for i in range(cur, n)]  # this child's datasets
        slot_pids = {proc.pid}
        woke, useful, idle = False, 0, 0  # wake-ups by the child's pipe: those that found work, and those that did not
        while True:
            done = cur
            while cur < n and self._finished(cur):
                with _frozen(proc, before):  # the child goes on to the next dataset: nothing of it runs unwatched
                    self._finish(cur, peak)
                cur, peak, t0 = cur + 1, 0, time.perf_counter()
                self.clocks[cur] = _Clock(t0)
            if cur >= n or not proc.is_alive():
                return cur, peak, None
            try:
                served = self._serve(cur)
                if served and self.pipes:
                    _signal(self.pipes[1])
            except _Overrun as exc:
                self.failure = str(exc)
                return cur, peak, Status.ERROR
            except Exception as exc:  # the child may have damaged its view (its folders' flags, say): its row, not our crash
                self.failure = f"the bench could not show the next bucket: {type(exc).__name__}: {exc}"
                return cur, peak, Status.ERROR
            if woke:
                useful, idle = (useful + 1, idle) if served or cur > done else (useful, idle + 1)
                if idle > IDLE_WAKES + 2 * useful and self.pipes and self.poller is not None and self.pipes[0] >= 0:
                    # the child writes into its wake pipe for nothing (an honest one wakes the bench about once a
                    # request): from now on the bench looks by the clock alone, every WAIT_S, instead of spinning
                    self.poller.unregister(self.pipes[0])
                    self.pipes = (-1, self.pipes[1])
            if time.perf_counter() - sampled >= 0.05:
                sampled = time.perf_counter()
                children, rss, threads = sealing.proc_table()
                orphans = _strays(children, before)
                slot_pids = sealing.tree([proc.pid, *orphans], children)
                peak = max(peak, sum(rss.get(p, 0) + _page_tables(p) for p in slot_pids))  # page tables are memory too
                if peak > limit:
                    return cur, peak, Status.OOM
                tasks = sum(threads.get(p, 0) for p in slot_pids)
                if tasks > MAX_TASKS:
                    self.failure = f"the detector's processes ran {tasks:,} threads, past the limit of {MAX_TASKS:,}"
                    return cur, peak, Status.ERROR
                if time.perf_counter() - t0 > self.timeout_s:
                    return cur, peak, Status.TIMEOUT
            if time.perf_counter() - measured >= gap:
                gap = SCRATCH_EVERY_S * _UNPREDICTABLE.uniform(0.25, 1.75)
                used, files, hidden = _scratch_use(works, SCRATCH_FILES)
                # deleted files kept open or mapped, and pipes, hold disk or memory too; mappings and watches, kernel memory
                held = _held_outside(slot_pids)
                used += held.bytes
                if (past := held.past()) is not None:
                    self.failure = past
                    return cur, peak, Status.ERROR
                used += self.handed  # and the alerts it handed over, kept until its dataset is done
                measured = time.perf_counter()
                if hidden is not None:
                    self.failure = f"the detector made {hidden} in its scratch folder, which the bench could not measure"
                    self.spilled = True
                    return cur, peak, Status.ERROR
                if used > scratch_limit(self.memory_mb) or files > SCRATCH_FILES:
                    self.failure = (
                        f"the detector wrote past the limit of its scratch folder ({scratch_limit(self.memory_mb) // 2**20} MiB "
                        f"and {SCRATCH_FILES:,} files; seen {used / 2**20:.0f} MiB in {files:,} files, deleted files kept open "
                        "or mapped, bytes waiting in its pipes and alerts handed over)"
                    )
                    self.spilled = True
                    return cur, peak, Status.ERROR
            # until the child signals, exits, or it is time to look at its memory
            wait = max(0.0, min(WAIT_S, sampled + 0.05 - time.perf_counter()))
            if self.pipes and self.poller is not None:
                woke = False
                for fd, _event in self.poller.poll(wait * 1000):
                    if fd == proc.sentinel and proc.is_alive():
                        # its exit pipe speaks while it runs (the child closed or wrote into its end, see _close_inherited):
                        # waiting on it would return at once from now on, so its exit is seen by the clock instead
                        self.poller.unregister(fd)
                    woke = woke or fd == self.pipes[0]
                if self.pipes[0] >= 0:
                    _drain(self.pipes[0])
            else:
                proc.join(wait)

    def _fail(self, cur: int, killed: Status | None, code: int | None, peak: int) -> None:
        """The row of the dataset the child was on when it was killed or died."""
        run = self.runs[cur]
        if killed == Status.OOM:
            run.status, run.error = (
                Status.OOM,
                f"resident memory of the detector's processes passed the limit of {self.memory_mb} MiB (peak seen {peak / 2**20:.0f} MiB)",
            )
        elif killed == Status.TIMEOUT:
            run.status, run.error = Status.TIMEOUT, f"still running after the limit of {self.timeout_s:g} s"
        elif killed == Status.ERROR:
            run.status, run.error, self.failure = Status.ERROR, self.failure, None
        elif code == -_SIGXFSZ:
            run.status = Status.ERROR
            run.error = f"the detector wrote a file past the limit of {scratch_limit(self.memory_mb) // 2**20} MiB (SIGXFSZ)"
        else:
            run.status = Status.OOM if code == -9 else Status.ERROR
            run.error = f"the detector's process died (exit code {code})" + (
                " - killed, likely out of memory" if code == -9 else ""
            )
        run.alerts = empty_alerts()
        run.peak_mb = peak / 2**20
        self._release(cur)
        if self.on_done:
            self.on_done(cur, run)


def _strays(children: dict[int, list[int]], before: set[int]) -> set[int]:
    """The bench's children that were not there before the slot started (orphans of the slot handed to the bench as
    its subreaper), never the bench's alerts reader."""
    return set(children.get(os.getpid(), [])) - before - untrusted.reader_pids()


@contextlib.contextmanager
def _frozen(proc: Any, before: set[int]) -> Iterator[None]:
    """Stop every process of the slot (SIGSTOP, which no process can catch) while the bench does something that keeps
    it from watching them, and let them go on after.

    Reading a dataset's alerts (:func:`breachbench.untrusted.read_alerts`) takes up to the slot's time limit, while
    the warm child goes on to its next dataset: a red-team plugin waited for the reader to work, held twice its memory
    limit for 1.5 s and freed it before the read ended, and its rows were OK. The tree is taken again until no new
    process shows, so a process forked just before the stop is stopped too.
    """
    stopped: set[int] = set()
    try:
        for _ in range(20):
            children, _, _ = sealing.proc_table()
            orphans = _strays(children, before)
            fresh = sealing.tree([proc.pid, *orphans], children) - stopped
            if not fresh:
                break
            for p in fresh:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGSTOP)
            stopped |= fresh
        _until_stopped(stopped, 1.0)  # a signal is delivered when the process next runs
        yield
    finally:
        for p in stopped:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGCONT)


def _until_stopped(pids: set[int], wait_s: float) -> None:
    """Wait until every one of ``pids`` shows as stopped (or is gone), for at most ``wait_s`` seconds."""
    deadline = time.perf_counter() + wait_s
    left = set(pids)
    while left and time.perf_counter() < deadline:
        for p in list(left):
            try:
                with open(f"/proc/{p}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                state = "gone"
            if state in ("T", "t", "Z", "X", "gone"):
                left.discard(p)
        if left:
            time.sleep(0.001)


class _Overrun(BreachBenchError, RuntimeError):
    """A slot handed over more alerts than its scratch limit."""


def _end_slot(proc: Any, before: set[int]) -> None:
    """Kill every process of the slot (its group, its tree, orphans handed to us) and reap them."""
    for k in range(50):
        children, _, _ = sealing.proc_table()
        orphans = _strays(children, before)
        pids = sealing.tree([proc.pid, *orphans], children) if proc.pid else set()
        live = {p for p in pids if pid_alive(p)}  # a process whose first thread exited but others run on is alive
        if not live and k:
            break
        sealing.kill_all(pids, group=proc.pid)  # the group too, always: it may hold what the tree no longer shows
        sealing.reap(orphans - {proc.pid})
        time.sleep(0.01)
    proc.join(5)
    sealing.reap(_strays(sealing.proc_table()[0], before) - {proc.pid})


def _seconds(meta: dict[str, Any], key: str, limit: float) -> float:
    """A timing from a child's status file: a non-negative number of seconds within the dataset's time limit, with a
    margin (anything else is a forged file: a slot past its limit is stopped; two forged ones of 1.7e308 summed to
    infinity in the leaderboard)."""
    value = meta.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2 * limit + 60:
        raise ValueError(f"{key} is {str(value)[:40]!r}, not a number of seconds from 0 to the time limit ({limit:g} s)")
    return float(value)


def _read_child(
    run: DetectorRun,
    slot: sealing.SealedSlot,
    rv: sealing.Reveal,
    committed: dict[dt.date, bytes | Path | str],
    *,
    memory_mb: int,
    timeout_s: float,
    seen: tuple[float, float],
) -> None:
    """Fill ``run`` from the child's status file and alerts, bounding what the bench loads.

    ``seen``: fit and score seconds by the bench's clock (:class:`_Clock`), which the row shows; the child's own
    figures are checked (a forged status file is an ``ERROR`` row) and not used.

    A bucket's alerts are those the child committed before the next bucket was shown
    (``committed``); the final alerts file gives the last bucket's alone. The event count comes
    from the bench's manifest. The alerts are parsed in the bench's reader process
    (:mod:`breachbench.untrusted`), never here, under the slot's memory and time limits.
    """
    run.events = rv.events()
    try:
        raw = read_child_file(slot.work, "meta.json", MAX_STATUS_BYTES)
        if raw is None:
            raise UntrustedFileError("no status file")
        meta = json.loads(raw)
        run.status, run.error, run.version = Status(meta["status"]), meta.get("error"), meta.get("version")
        run.error = None if run.error is None else detector_text(run.error)
        run.version = None if run.version is None else detector_text(run.version, 200)
        for key in ("fit_s", "score_s"):  # checked, not shown: the row shows the bench's own clock
            _seconds(meta, key, timeout_s)
        run.fit_s, run.score_s = seen
        run.world_read = _world_read(meta.get("world_read"))
    except Exception as exc:  # the child owns that file: anything in it is untrusted
        run.status, run.error = Status.ERROR, f"unreadable status file from the detector's process: {type(exc).__name__}: {exc}"
        return
    run.events_per_s = rate(run.events, run.score_s)
    if meta.get("note"):
        run.note = detector_text(meta["note"])
    if run.status != Status.OK:
        return
    from breachbench.dataset import Dataset

    try:
        buckets = max(1, len(Dataset.open(slot.view).scored))
        # what the reader gets is the handed-over files and the final one, all in memory at once (in the bench, then
        # in the reader): bounded by the detector's memory limit before any is read. Sparse files of zeros cost the
        # slot no disk and no memory; read whole, a red team's made the bench hold 15 times the limit.
        limit = memory_mb * 2**20
        handed = sum(len(v) if isinstance(v, (bytes, str)) else os.stat(v).st_size for v in committed.values())
        if handed > limit:
            raise UntrustedFileError(
                f"the alerts it handed over hold {handed / 2**20:.0f} MiB, more than its memory limit ({memory_mb} MiB) lets the bench read"
            )
        raw = read_child_file(slot.work, "alerts.parquet", min(MAX_ALERT_BYTES_PER_BUCKET * buckets, limit - handed))
        if raw is None:
            raise UntrustedFileError("no alerts file")
        run.alerts = untrusted.read_alerts(
            raw,
            committed,
            list(rv.scored),
            run.detector,
            buckets=buckets,
            max_rows=MAX_ALERT_ROWS_PER_BUCKET,
            memory_mb=memory_mb,
            timeout_s=timeout_s,
        )
    except untrusted.TooManyAlerts as exc:
        run.status, run.error = Status.ERROR, str(exc)
    except Exception as exc:  # the child wrote it: anything in it is untrusted
        # the message may quote what the detector wrote (a column's name, a value): one printable line, as its own texts
        run.status, run.error = (
            Status.ERROR,
            detector_text(f"alerts from the detector's process cannot be read: {type(exc).__name__}: {exc}"),
        )
