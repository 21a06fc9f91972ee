"""Seal a detector's process off from everything but its own view of one dataset.

A detector slot gets a scratch directory with two parts:

* ``view/``: a dataset of ``world/`` and ``logs/`` only (hard links when the kernel enforces
  read-only access, copies otherwise), a reduced manifest (time span, time zone, config hash and
  the world files' names; no scenarios, no truth) and ``features/``, the shared feature tables
  the bench computed, checked against the hashes it recorded when it wrote them; a detector's
  view shows one more bucket at a time (:class:`Reveal`);
* ``work/``: the only place the detector may write (its temp folder, its alerts, its status).

In the child, before any plugin code is imported, :func:`restrict` applies a Landlock ruleset
(Linux 5.13+, here through the raw system calls: no binding is needed): read-only access to
``view/``, the Python installation, the import path and system folders, minus the bench's own
dataset and output folders; read-write access to ``work/`` alone; no TCP; no signals to
processes outside the slot (Landlock ABI 6+). Where the kernel has no Landlock the slot still
runs on copies, and its status row carries a note saying the kernel did not restrict it. Landlock
does not cover ``stat``: a bench run as root also covers its own folders in the child's mount
namespace (:func:`hide`), so that no path under them resolves there.

Processes: the child starts its own session (so its process group is the slot) and dies with
the bench (``PR_SET_PDEATHSIG``); the bench is a child subreaper while a slot runs, so even a
double-forked grandchild stays in the slot's tree, is counted against its memory limit and is
killed when the slot ends.
"""

from __future__ import annotations

import collections
import ctypes
import datetime as dt
import errno
import functools
import hashlib
import json
import os
import shutil
import signal
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from breachbench import fstree
from detectors.view import view_id
from simulator.errors import BreachBenchError

# ---- Landlock (linux/landlock.h) ---------------------------------------------------------------

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_O_PATH = getattr(os, "O_PATH", 0o10000000)

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM, REFER, TRUNCATE = 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
READ = EXECUTE | READ_FILE | READ_DIR
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

#: Environment variables a slot's process never inherits (they name the bench's folders).
BENCH_ENV_PREFIXES = ("BREACHBENCH_",)
#: What a slot may read of the system. Of ``/dev`` only the character devices every process uses
#: (``/dev/fd`` and ``/dev/std*`` are links into ``/proc``): a bench run as root left its disks'
#: block devices readable by their owner, root, so a detector could have read truth off the raw disk.
SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc",
    "/opt",
    "/proc",
    "/sys",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
)
#: Of those, the devices a slot may also write into, which keep nothing (``subprocess.Popen(..., stdin=DEVNULL)`` opens
#: ``/dev/null`` for reading and writing: read-only, an honest detector that started a helper that way failed).
DEVICE_WRITE = ("/dev/null", "/dev/zero", "/dev/full")
#: The system folders of configuration, where a machine keeps its secrets (``/etc/shadow``, SSH host keys, a
#: database's passwords, an add-on's credentials under ``/opt``): a slot gets only the entries of these that every
#: user may read (:func:`private_entries`). A bench run as root keeps user id 0 in its slots (Python itself may lie
#: under ``/root``), so the owner's bits alone would have let a detector read root's files (a red-team plugin printed
#: ``/etc/shadow``'s first line into the leaderboard). The other system folders hold software (``/usr``, ``/lib``),
#: or are the kernel's (``/proc``, ``/sys``), and are granted whole.
CONFIG_READ = ("/etc", "/opt")
#: Entries :func:`private_entries` looks at under one folder, level by level; past them the rest of it is granted as it
#: is (a system's ``/etc`` holds one to three thousand; a build machine's ``/opt`` may hold a million).
MAX_SCAN_ENTRIES = 20_000


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _Ruleset(ctypes.Structure):
    _fields_ = (("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or it is disabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        v = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(v), 0)


def _prctl(option: int, arg: int) -> int:
    return _libc().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def set_child_subreaper(on: bool) -> bool:
    """Make this process a child subreaper (Linux), returning the previous setting."""
    if not sys.platform.startswith("linux"):
        return False
    old = ctypes.c_int(0)
    _libc().prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(old), 0, 0, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, int(on))
    return bool(old.value)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> str | None:
    """Clear this process's capabilities (effective, permitted, inheritable); None when done, else why not.

    A bench run as root would otherwise hand them to the detector: CAP_LINUX_IMMUTABLE lets it
    make its view's folders (or, through hard links, the bench's dataset files) immutable, which
    Landlock does not cover, and CAP_DAC_OVERRIDE reads past file modes. With no_new_privs set
    (:func:`restrict`) nothing gives them back.
    """
    if not sys.platform.startswith("linux"):
        return "not Linux: capabilities not dropped"
    data = (_CapData * 2)()
    if _libc().capset(ctypes.byref(_CapHeader(0x20080522, 0)), data) != 0:  # _LINUX_CAPABILITY_VERSION_3
        return f"capset failed: {os.strerror(ctypes.get_errno())}"
    return None


# ---- a mount namespace that hides the bench's folders ---------------------------------------------

_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 1, 2, 4, 8, 0x4000, 1 << 18
_MS_REMOUNT, _MS_BIND = 32, 4096


def outermost(paths: Iterable[Path | str]) -> list[str]:
    """The real paths of the existing folders among ``paths``, less those inside another of them, sorted."""
    real = sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})
    out: list[str] = []
    for p in real:
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def _cover_temp(libc: Any, temp: str, keep: Iterable[Path | str]) -> str | None:
    """Cover the temp folder ``temp`` with an empty file system, then bind what of ``keep`` lies below it back at the same
    paths (through descriptors opened before the cover), read-only; None when done, else why not.

    Every slot's folder lies in the bench's temp folder: another slot's, present or made later, would otherwise resolve
    for ``stat`` (Landlock does not restrict it), and its name shows in that slot's ``/proc/PID/mountinfo``. A red-team
    plugin read the sizes of every bucket still ahead from another slot's stage of the same dataset.
    """
    temp = os.path.realpath(temp)
    held: list[tuple[str, int, bool]] = []
    try:
        for k in sorted({os.path.realpath(k) for k in keep}):
            if _under(k, temp) and k != temp and (os.path.isdir(k) or os.path.isfile(k)):
                held.append((k, os.open(k, os.O_PATH | os.O_CLOEXEC), os.path.isdir(k)))
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        if libc.mount(b"none", os.fsencode(temp), b"tmpfs", flags, b"size=1m,mode=0755") != 0:
            return f"could not cover {temp} ({os.strerror(ctypes.get_errno())}): other slots' folders are visible to stat"
        for path, fd, is_dir in held:
            if is_dir:
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
            if libc.mount(os.fsencode(f"/proc/self/fd/{fd}"), os.fsencode(path), None, _MS_BIND | _MS_REC, None) != 0:
                return f"could not keep {path} ({os.strerror(ctypes.get_errno())}) under the temp folder's cover"
        if libc.mount(None, os.fsencode(temp), None, _MS_REMOUNT | _MS_RDONLY | flags, None) != 0:
            return f"could not make the cover of {temp} read-only ({os.strerror(ctypes.get_errno())})"
        return None
    finally:
        for _, fd, _ in held:
            os.close(fd)


def hide(folders: Iterable[Path | str], temp: str | None = None, keep: Iterable[Path | str] = ()) -> str | None:
    """Cover ``folders`` with empty read-only file systems in a mount namespace of this process; None when done, else why not.

    With ``temp``, the temp folder is covered first, all but ``keep`` (:func:`_cover_temp`); ``folders`` that no
    longer resolve under that cover are hidden already.

    Landlock keeps the detector from opening the bench's files, not from ``stat``-ing them, and
    the view's log files are hard links of the dataset's: a plugin that read the run folder off the
    bench's command line matched their inodes against ``OUT/datasets/<label>/...`` for every label
    a config can make, learned each dataset's scenario and scored as the oracle. Under the covers
    those paths do not exist for the detector. Needs ``CAP_SYS_ADMIN`` (a bench run as root; call it
    before :func:`drop_capabilities`): a user namespace would do it without, but the child already
    runs polars' threads and ``unshare`` takes a user namespace for a single-threaded process only.
    """
    if not sys.platform.startswith("linux"):
        return "not Linux: the bench's folders are not hidden from stat"
    if not outermost(folders) and temp is None:
        return None
    global _OWN_MOUNTS
    libc = _libc()
    if libc.unshare(_CLONE_NEWNS) != 0:
        why = "the bench is not root" if os.geteuid() != 0 else os.strerror(ctypes.get_errno())
        return f"no mount namespace ({why}): the bench's folders are visible to stat, not to reading"
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:  # nothing below propagates to the bench's mounts
        return f"mount namespace not private ({os.strerror(ctypes.get_errno())}): the bench's folders are visible to stat"
    _OWN_MOUNTS = True
    failed = _cover_temp(libc, temp, keep) if temp is not None else None  # on failure, the folders below are still covered
    for d in outermost(folders):  # after the temp folder's cover: those under it no longer resolve
        if (
            libc.mount(b"none", os.fsencode(d), b"tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"size=4k,mode=0555")
            != 0
        ):
            return f"could not cover {d} ({os.strerror(ctypes.get_errno())}): the bench's folders are visible to stat"
    return failed


#: Set by :func:`hide` once this process has a private mount namespace of its own: only then may it mount ``/proc``.
_OWN_MOUNTS = False


def private_proc() -> str | None:
    """Mount a ``/proc`` of this process's own that lists only the processes it may trace; None when done, else why not.

    ``/proc/PID/cmdline`` is readable by anyone for any process, without the checks that keep ``environ`` and the
    descriptors private: a red-team plugin printed an operator's ``--api-token=...`` from another process's command
    line, and the bench's own ``--set`` values, into the leaderboard. With ``hidepid=invisible`` a process that may not
    trace another does not see its folder at all; a slot's process has no capabilities and a Landlock domain of its
    own, so it sees its own processes alone. ``gid=`` names a group the process is not in (group 0, the default, would
    exempt a bench run as root). Call after :func:`hide` (in that mount namespace) and before :func:`restrict` (whose
    rules name this ``/proc``) and :func:`drop_capabilities`.
    """
    if not _OWN_MOUNTS:
        return "no mount namespace of its own: other processes' command lines are readable"
    mine = {os.getgid(), os.getegid(), *os.getgroups()}
    gid = next(g for g in range(65534, 0, -1) if g not in mine)
    libc = _libc()
    opts = f"hidepid=invisible,gid={gid}".encode()
    if libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, opts) != 0:
        # kernels before 5.8 know the option by number only
        if libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, f"hidepid=2,gid={gid}".encode()) != 0:
            return f"could not mount a /proc of its own ({os.strerror(ctypes.get_errno())}): other processes' command lines are readable"
    return None


# ---- seccomp (linux/seccomp.h, linux/filter.h) -------------------------------------------------

_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_ABS_W, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
#: Per architecture (``uname -m``): its AUDIT_ARCH value, and the system calls that change a file's mode, owner,
#: times, extended attributes or attribute flags (``ioctl`` is checked for the two set-flags requests only).
_METADATA_CALLS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "x86_64": (
        0xC000003E,
        (90, 91, 92, 93, 94, 132, 188, 189, 190, 197, 198, 199, 235, 260, 261, 268, 280, 452, 463, 466, 469),
        16,
    ),
    "aarch64": (0xC00000B7, (5, 6, 7, 14, 15, 16, 52, 53, 54, 55, 88, 452, 463, 466, 469), 29),
}
#: Per architecture: ``socket`` and the three io_uring calls (which can open and connect sockets without ``socket``).
#: Landlock (ABI 7) refuses TCP alone: UDP, raw and named Unix sockets outside the slot (an agent's, a database's)
#: stay open to it, and a detector needs none. ``socketpair`` stays (``multiprocessing`` and asyncio use it).
_SOCKET_CALLS: dict[str, tuple[int, ...]] = {"x86_64": (41, 425, 426, 427), "aarch64": (198, 425, 426, 427)}
#: Per architecture: ``connect``, ``sendmsg`` and ``sendmmsg``, refused, and ``sendto``, allowed without an address only
#: (its fifth argument, both halves, 0). A datagram socket of a pair could otherwise send to, or be connected to, any
#: named Unix socket the slot could name by path (a red-team plugin's datagrams reached a listener in /dev/shm); a
#: socket of a pair needs none of them (``send`` is ``sendto`` without an address).
_SEND_CALLS: dict[str, tuple[tuple[int, ...], tuple[int, tuple[tuple[int, int], ...]]]] = {
    "x86_64": ((42, 46, 307), (44, ((48, 0), (52, 0)))),
    "aarch64": ((203, 211, 269), (206, ((48, 0), (52, 0)))),
}
#: Per architecture: ``inotify_init``, ``inotify_init1``, ``inotify_add_watch``, ``fanotify_init`` and ``fanotify_mark``.
#: Landlock does not cover watches: through one on the hard-linked files of its views a detector saw when other
#: processes (other slots, the bench's audits) opened or read the bench's dataset files, and the names of entries made
#: in any folder it could reach; a detector needs none.
_WATCH_CALLS: dict[str, tuple[int, ...]] = {"x86_64": (253, 254, 294, 300, 301), "aarch64": (26, 27, 262, 263)}
#: ``ioctl`` requests that set a file's attribute flags (FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR).
_SET_FLAGS = (0x40086602, 0x401C5820)
#: Per architecture: System V shared memory, semaphores and message queues, and POSIX message queues. Neither Landlock
#: nor the slot's memory watch covers them: a red-team plugin under a 512 MiB limit held 2 GiB of shared memory with a
#: resident size of 52 MB, and its segments outlived the slot and the run; a queue is also a channel between slots and
#: between runs. The kernel's key rings too (``add_key``, ``request_key``, ``keyctl``): the user's ring is shared by
#: every process of the bench's user and outlives the slot, and a slot could read what other software keeps there.
#: A detector needs none (Python's and joblib's locks are POSIX semaphores, files Landlock governs).
_IPC_CALLS: dict[str, tuple[int, ...]] = {
    "x86_64": (29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 220, 240, 241, 242, 243, 244, 245, 248, 249, 250),
    "aarch64": (*range(180, 198), 217, 218, 219),
}
#: Per architecture: ``vmsplice``. It hands a pipe a process's own pages: a red-team plugin put one byte of each 2 MiB
#: huge page into pipes, unmapped the pages and held 1.5 GiB that way, while the bytes waiting in the pipes (what the
#: bench counts, see ``breachbench.isolation._held_outside``) came to 768; a detector needs none.
_PIN_CALLS: dict[str, tuple[int, ...]] = {"x86_64": (278,), "aarch64": (75,)}
#: Per architecture: ``setpgid`` and ``setsid``, refused once the slot's process has made its own session. The kernel
#: schedules each session as one group where autogroups are on (most desktop and server kernels): a red-team plugin
#: forked 46 busy children, each into a session of its own, and the other slot, one group among 47, got 2% of the CPU
#: and its detector a TIMEOUT row. In the slot's session its processes share one group's time; they also stay in the
#: slot's process group, which the bench kills whole.
_SESSION_CALLS: dict[str, tuple[int, ...]] = {"x86_64": (109, 112), "aarch64": (154, 157)}
#: Per architecture: ``fcntl``, refused for two commands only, F_SETLEASE and F_NOTIFY. A lease on a view's log file (a
#: hard link of the dataset's, which a root bench's slot owns) told the detector whenever another process opened that
#: file, as the refused watches would, and held every such open for up to 45 s: another worker's detectors waited.
_FCNTL: dict[str, int] = {"x86_64": 72, "aarch64": 25}
_FCNTL_REFUSED = (1024, 1026)
#: Per architecture: calls that act on another process named by its id, allowed on the caller alone (each argument,
#: by its offset in seccomp_data, must hold the value given: pid 0, or PRIO_PROCESS/IOPRIO_WHO_PROCESS and 0).
#: Landlock has no hook for them and the kernel lets any process of the same user call them without a capability: a
#: red-team plugin set RLIMIT_CPU on the bench's own process (``prlimit``), which killed the run, and RLIMIT_AS on
#: the other slots, whose detectors failed; it moved other slots onto one busy core at idle priority
#: (``sched_setaffinity``, ``sched_setscheduler``, ``setpriority``), whose detectors timed out.
_OTHERS_CALLS: dict[str, tuple[tuple[int, tuple[tuple[int, int], ...]], ...]] = {
    "x86_64": (
        (141, ((16, 0), (24, 0))),  # setpriority(PRIO_PROCESS, 0, ...)
        (142, ((16, 0),)),  # sched_setparam
        (144, ((16, 0),)),  # sched_setscheduler
        (203, ((16, 0),)),  # sched_setaffinity
        (251, ((16, 1), (24, 0))),  # ioprio_set(IOPRIO_WHO_PROCESS, 0, ...)
        (256, ((16, 0),)),  # migrate_pages
        (279, ((16, 0),)),  # move_pages
        (302, ((16, 0),)),  # prlimit64
        (314, ((16, 0),)),  # sched_setattr
    ),
    "aarch64": (
        (140, ((16, 0), (24, 0))),
        (118, ((16, 0),)),
        (119, ((16, 0),)),
        (122, ((16, 0),)),
        (30, ((16, 1), (24, 0))),
        (238, ((16, 0),)),
        (239, ((16, 0),)),
        (261, ((16, 0),)),
        (274, ((16, 0),)),
    ),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def deny_calls() -> str | None:
    """Refuse this process (and its children) every change of a file's mode, owner, times or attributes, every
    socket and every datagram sent to an address (:data:`_SEND_CALLS`), every file watch (:data:`_WATCH_CALLS`),
    lease and directory notice (:data:`_FCNTL_REFUSED`), System V and POSIX message queue IPC and the key rings (:data:`_IPC_CALLS`), and limits, priorities, CPUs and memory
    placement set on any process but itself (:data:`_OTHERS_CALLS`), and a new session or process group
    (:data:`_SESSION_CALLS`); None when done, else why not.

    Landlock does not cover them. A slot's views hold hard links to the bench's dataset files:
    without this a detector could ``chmod 000`` the bench's logs, and every other detector's sealed
    process (without capabilities) would fail to read them. Landlock refuses TCP alone: a detector
    could send what it read over UDP, or talk to a service's Unix socket outside its slot
    (:data:`_SOCKET_CALLS`). The calls return EPERM; so does every call made through another
    architecture's numbering (x32, i386), which could otherwise slip past.
    """
    import platform

    if not sys.platform.startswith("linux"):
        return "not Linux: file metadata changes and sockets not refused"
    spec = _METADATA_CALLS.get(platform.machine())
    if spec is None:
        return f"no seccomp filter for {platform.machine()}: file metadata changes and sockets not refused"
    arch, calls, ioctl = spec
    machine = platform.machine()
    calls = (
        calls
        + _SOCKET_CALLS[machine]
        + _SEND_CALLS[machine][0]
        + _WATCH_CALLS[machine]
        + _IPC_CALLS[machine]
        + _SESSION_CALLS[machine]
        + _PIN_CALLS[machine]
    )
    deny = _RET_ERRNO | errno.EPERM
    prog: list[tuple[int, int, int, int]] = [(_LD_ABS_W, 0, 0, 4)]  # seccomp_data.arch
    prog += [(_JEQ_K, 1, 0, arch), (_RET_K, 0, 0, deny), (_LD_ABS_W, 0, 0, 0)]  # another architecture: refused
    if arch == 0xC000003E:
        prog += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, deny)]  # x32 numbers
    for nr in calls:
        prog += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, deny)]
    # calls on another process: allowed only with the arguments that name the caller (else refused); sendto only
    # without an address
    for nr, need in (*_OTHERS_CALLS[machine], _SEND_CALLS[machine][1]):
        m = len(need)
        prog += [(_JEQ_K, 0, 2 * m + 2, nr)]
        for k, (off, value) in enumerate(need):
            prog += [(_LD_ABS_W, 0, 0, off), (_JEQ_K, 0, 2 * m - 2 * k - 1, value)]
        prog += [(_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, deny)]
    # ioctl and fcntl: refused for some requests (the low half of the second argument) only
    for nr, refused in ((ioctl, _SET_FLAGS), (_FCNTL[machine], _FCNTL_REFUSED)):
        prog += [(_JEQ_K, 0, 2 * len(refused) + 2, nr), (_LD_ABS_W, 0, 0, 24)]
        for req in refused:
            prog += [(_JEQ_K, 0, 1, req), (_RET_K, 0, 0, deny)]
        prog += [(_RET_K, 0, 0, _RET_ALLOW)]
    prog += [(_RET_K, 0, 0, _RET_ALLOW)]
    filters = (_SockFilter * len(prog))(*(_SockFilter(*f) for f in prog))
    fprog = _SockFprog(len(prog), filters)
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1) != 0:
        return "PR_SET_NO_NEW_PRIVS refused: file metadata changes and sockets not refused"
    if _libc().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"seccomp filter refused ({os.strerror(ctypes.get_errno())}): file metadata changes and sockets not refused"
    return None


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when ``parent`` exits (and now, if it already has)."""
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _under(path: Path | str, root: Path | str) -> bool:
    """Whether ``path`` is ``root`` or inside it (both absolute and normalised, as :func:`os.path.realpath` gives them)."""
    p, r = str(path), str(root)
    return p == r or p.startswith(r if r.endswith("/") else r + "/")


@functools.cache
def private_entries(roots: tuple[str, ...] = CONFIG_READ, max_entries: int = MAX_SCAN_ENTRIES) -> tuple[str, ...]:
    """The files under ``roots`` that others may not read and the folders they may not list and enter, as real paths.

    Passed to :func:`readable_roots` as protected, they leave a folder that holds one granted entry by entry. Links
    are not followed: Landlock judges the file a link resolves to where it lies. Folders are looked into level by level,
    nearest first, and no further once ``max_entries`` entries under one root are seen (the rest is granted as it is).
    Found once per process: a few milliseconds for a system's ``/etc``.
    """
    found: list[str] = []
    for root in roots:
        seen, queue = 0, collections.deque([os.path.realpath(root)])
        while queue and seen < max_entries:
            try:
                with os.scandir(queue.popleft()) as it:
                    entries = list(it)
            except OSError:
                continue
            seen += len(entries)
            for e in entries:
                try:
                    mode = e.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue
                if stat.S_ISDIR(mode):
                    if mode & 0o005 != 0o005:
                        found.append(e.path)
                    else:
                        queue.append(e.path)
                elif not stat.S_ISLNK(mode) and not mode & 0o004:
                    found.append(e.path)
    return tuple(sorted(found))


def readable_roots(
    candidates: Iterable[str | Path], protected: Iterable[str | Path], split: list[Path] | None = None
) -> list[Path]:
    """Folders (and files) to grant read access to: ``candidates``, minus every protected subtree.

    A candidate that holds a protected path is replaced by its entries, recursively, leaving out
    the protected one (and added to ``split``, where given: a folder to grant listing alone, which
    Python's import system needs to find a module among its entries); a candidate inside a protected
    path is dropped; ``/`` is never granted.
    """
    prot = [os.path.realpath(p) for p in protected]
    out: list[Path] = []

    def add(p: Path) -> None:
        if not p.exists() or any(_under(p, q) for q in prot):
            return
        if any(_under(q, p) for q in prot) and p.is_dir():
            try:
                entries = list(p.iterdir())
            except OSError:
                return
            for e in entries:
                if not e.is_symlink():
                    add(e)
            if split is not None and p not in split:
                split.append(p)
            return
        if p not in out:
            out.append(p)

    for c in candidates:
        p = Path(os.path.realpath(c))
        if p != Path("/"):
            add(p)
    return out


def restrict(read: Iterable[Path], write: Iterable[Path], listed: Iterable[Path] = ()) -> str | None:
    """Landlock this process: read-only ``read``, read-write ``write``, the names in the folders ``listed`` (and
    below them: Landlock's rights hold for a folder's whole tree) and nothing else of them; no TCP.

    Returns None when the kernel enforces it, else a note saying why it does not.
    """
    abi = landlock_abi()
    if abi < 1:
        return "Landlock unavailable on this kernel: file access not restricted by the OS (the slot runs on private copies)"
    handled = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        handled |= REFER
    if abi >= 3:
        handled |= TRUNCATE
    attr = _Ruleset(
        handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    )
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    libc = _libc()
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return f"Landlock ruleset refused ({os.strerror(ctypes.get_errno())}): file access not restricted by the OS"
    try:
        rules = [(p, READ) for p in read] + [(p, handled) for p in write] + [(p, READ_DIR) for p in listed]
        for path, access in rules:
            try:
                pfd = os.open(path, _O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    access &= FILE_RIGHTS
                rule = _PathBeneath(access & handled, pfd)
                if (
                    libc.syscall(
                        _SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)
                    )
                    < 0
                ):
                    e = ctypes.get_errno()
                    if e != errno.EINVAL:
                        return f"Landlock rule for {path} refused ({os.strerror(e)}): file access not restricted by the OS"
            finally:
                os.close(pfd)
        if _prctl(_PR_SET_NO_NEW_PRIVS, 1) != 0:
            return "PR_SET_NO_NEW_PRIVS refused: file access not restricted by the OS"
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) < 0:
            return f"Landlock restrict_self refused ({os.strerror(ctypes.get_errno())}): file access not restricted by the OS"
    finally:
        os.close(fd)
    return None


# ---- the sealed view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedSlot:
    """Paths of one detector slot's scratch directory."""

    scratch: Path

    @property
    def view(self) -> Path:
        """The sealed dataset (read-only for the detector)."""
        return self.scratch / "view"

    @property
    def features(self) -> Path:
        """The shared feature tables (read-only for the detector)."""
        return self.scratch / "view" / "features"

    @property
    def work(self) -> Path:
        """The detector's only writable folder."""
        return self.scratch / "work"

    @property
    def stage(self) -> Path:
        """Buckets of the view not shown yet (the bench's; never granted to the detector)."""
        return self.scratch / "stage"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def view_manifest(manifest: dict) -> dict:
    """What a detector may know of a manifest: the time span, the dataset's view id (in place of its config hash, which
    ``results.json`` publishes beside each dataset's label: see :func:`detectors.view.view_id`) and the world files'
    names.

    No log files: their row counts and hashes would tell the volume of buckets still ahead (the
    slot finds a bucket's files in its folder once the bench shows it).
    """
    return {
        "format": "breachbench-view",
        "data_version": manifest.get("data_version"),
        "config": {"time": manifest["config"]["time"]},
        "config_hash": view_id(manifest),
        "only": None,
        "files": [{"path": f["path"]} for f in manifest["files"] if f["path"].startswith("world/")],
    }


def _place(src: Path, dst: Path, link: bool, made: set[Path] | None = None) -> None:
    """Hard-link (``link``) or copy ``src`` to ``dst``; ``made``: folders known to exist (one ``mkdir`` per folder)."""
    if made is None or dst.parent not in made:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if made is not None:
            made.add(dst.parent)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o444)


def build_view(
    dataset: Path,
    slot: SealedSlot,
    *,
    link: bool,
    features: dict[str, str] | None = None,
    features_root: Path | None = None,
    stepwise: bool = False,
) -> Reveal:
    """Fill ``slot.view`` with the world and log files of ``dataset`` and the verified feature tables.

    Args:
        dataset: the bench's dataset directory (never handed to the detector).
        slot: the slot to fill.
        link: hard-link files (only when the kernel makes them read-only for the detector).
        features: relative path -> sha256 of every shared feature table, as the bench wrote them.
        features_root: where those tables are.
        stepwise: show the warm-up buckets only, with the staff's world tables as known at their
            end; the later buckets wait in ``slot.stage`` (beside the view, out of the detector's
            reach) until the returned :class:`Reveal` shows them. Otherwise every bucket and the
            whole world tables (a tuning view), in read-only folders.

    Raises:
        SealError: a feature table that no longer matches its recorded hash.
    """
    from breachbench.dataset import Dataset

    rv = Reveal(slot, Dataset(dataset), stepwise)
    manifest = rv.ds.manifest
    slot.view.mkdir(parents=True)
    slot.work.mkdir(parents=True)
    vm = view_manifest(manifest)
    (slot.view / "manifest.json").write_text(json.dumps(vm))
    horizon = rv.warmup[-1] if stepwise and rv.warmup else None
    made: set[Path] = set()

    def where(rel: str, root: Path) -> Path:  # in the view, or staged until its bucket is shown
        d = _day_of(rel)
        return (slot.stage if horizon is not None and d is not None and d > horizon else slot.view) / root / rel

    for f in vm["files"]:
        if not (stepwise and _table_of(f["path"]) in STAFF_TABLES):
            _place(dataset / f["path"], slot.view / f["path"], link, made)
    for f in manifest["files"]:
        if f["path"].startswith("logs/"):
            _place(dataset / f["path"], where(f["path"], Path()), link, made)
    for rel, digest in (features or {}).items():
        src = Path(features_root or "") / rel
        if sha256(src) != digest:
            raise SealError(f"shared feature table {src} changed after the bench wrote it (sha256 mismatch)")
        _place(src, where(rel, Path("features")), False, made)  # a copy: a hard link could be chmod-ed back by its owner
    rv.staged(made)
    if horizon is not None:
        rv.show(horizon)
    else:  # everything is in place: read-only folders
        for d in [slot.view, *(p for p in slot.view.rglob("*") if p.is_dir())]:
            os.chmod(d, 0o555)
    return rv


#: World tables of the staff a stepwise view holds as known at the end of its latest bucket (the
#: files carry every future termination, role change, key rotation and revocation).
STAFF_TABLES = ("employees", "employee_roles", "credentials")


def shown(day: dt.date) -> str:
    """In a stepwise view: the marker of bucket ``day``, moved in last when the bench shows it."""
    return f".shown-{day.isoformat()}"


def _table_of(rel: str) -> str:
    """The world table of ``world/<table>-BBBBB.parquet``."""
    return rel.removeprefix("world/").rsplit("-", 1)[0]


def _day_of(rel: str) -> dt.date | None:
    """The bucket of a log file (``logs/<stream>/date=D/...``) or feature table (``.../<kind>/D.parquet``)."""
    for part in reversed(rel.split("/")):
        text = part.removeprefix("date=").removesuffix(".parquet")
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            continue
    return None


@dataclass
class Reveal:
    """The bench's side of a slot's view: which buckets it shows, and showing the next one.

    A stepwise view starts with the warm-up buckets (what ``fit`` sees); :meth:`show` moves a
    scored bucket's log partitions and feature tables from the stage into the view (renames) and
    rewrites the staff's world tables as known at its end. The bench shows a bucket only after
    it has taken the detector's alerts for the one before, so no alert can draw on a later
    bucket, however the detector reads its folder.
    """

    slot: SealedSlot
    ds: Any  # the bench's Dataset (never handed to the detector)
    stepwise: bool
    shown: dt.date | None = None

    def __post_init__(self) -> None:
        self.warmup, self.scored = self.ds.warmup, self.ds.scored
        files = self.ds.manifest["files"]
        self._staff = [
            f["path"] for f in files if self.stepwise and f["path"].startswith("world/") and _table_of(f["path"]) in STAFF_TABLES
        ]
        self._digests = {f["path"]: f["sha256"] for f in files}
        self._written: dict[str, dt.date | None] = {}
        self._moves: dict[dt.date, list[Path]] = {}  # per staged bucket: its folders and files, relative to the stage

    def staged(self, made: set[Path]) -> None:
        """List what waits on the stage, per bucket: each stream's partition folder, each feature table (and make
        their parent folders in the view, so that showing is a rename)."""
        stage = self.slot.stage
        if self.stepwise:
            stage.mkdir(exist_ok=True)
            for scored in self.scored:  # made now, moved in when the bucket is shown (one rename)
                (stage / shown(scored)).touch()
        if not stage.is_dir():
            return
        found = [*stage.glob("logs/*/date=*"), *(p for p in stage.glob("features/**/*.parquet") if p.is_file())]
        for p in sorted(found):
            rel = p.relative_to(stage)
            day = _day_of(rel.as_posix())
            if day is not None:
                self._moves.setdefault(day, []).append(rel)
                if (self.slot.view / rel).parent not in made:
                    (self.slot.view / rel).parent.mkdir(parents=True, exist_ok=True)
                    made.add((self.slot.view / rel).parent)

    def next_day(self) -> dt.date | None:
        """The scored bucket to show next, or None when every one is shown."""
        return next((d for d in self.scored if self.shown is None or d > self.shown), None)

    def show(self, day: dt.date) -> None:
        """Show every bucket up to ``day`` and the staff tables as known at its end (the marker :func:`shown` last)."""
        for d in sorted(d for d in self._moves if d <= day):
            for rel in self._moves.pop(d):
                (self.slot.stage / rel).rename(self.slot.view / rel)
        for rel in self._staff:
            key, known = _known(self.ds.root / rel, self._digests[rel], self.ds.timezone, day)
            if rel not in self._written or self._written[rel] != key:
                dst = self.slot.view / rel
                tmp = dst.with_name(f".{dst.name}.part")
                tmp.write_bytes(known)
                os.chmod(tmp, 0o444)
                tmp.replace(dst)
                self._written[rel] = key
        marker = self.slot.stage / shown(day)
        if marker.exists():
            marker.rename(self.slot.view / shown(day))
        self.shown = day

    def events(self) -> int:
        """Log rows of the scored buckets (from the bench's manifest, not from the detector)."""
        return int(self.ds.event_count(self.scored))


#: Per world file (by SHA-256): the days its as-of table changes on, and its bytes as known after each
#: (the bench shows the same dataset to every detector: each table is masked and written once per process).
_KNOWN: dict[str, tuple[list[dt.date], dict[dt.date | None, bytes]]] = {}


def _known(path: Path, digest: str, timezone: str, day: dt.date) -> tuple[dt.date | None, bytes]:
    """World file ``path`` (of SHA-256 ``digest``) as known at the end of ``day``: (its last change day up to it, the
    Parquet bytes)."""
    import bisect
    import io

    from detectors.view import as_of, change_days

    table = _table_of(f"world/{path.name}")
    if digest not in _KNOWN:
        if len(_KNOWN) >= 64:
            _KNOWN.pop(next(iter(_KNOWN)))
        _KNOWN[digest] = (change_days(table, pl.read_parquet(path), timezone), {})
    days, versions = _KNOWN[digest]
    i = bisect.bisect_right(days, day)
    key = days[i - 1] if i else None
    if key not in versions:
        buf = io.BytesIO()
        as_of(table, pl.read_parquet(path), day, timezone).write_parquet(buf)
        versions[key] = buf.getvalue()
    return key, versions[key]


def unseal(slot: SealedSlot) -> None:
    """Remove a slot's scratch directory (making its read-only folders writable first).

    Tried three times: a child of the slot that is still dying may add a file while the tree goes.
    Never raises, whatever the detector left in its work folder (:func:`breachbench.fstree.remove_tree`).
    """
    fstree.remove_settled(slot.scratch)


class SealError(BreachBenchError, RuntimeError):
    """The material of a slot could not be prepared as the bench wrote it."""


# ---- processes -----------------------------------------------------------------------------------


def _stat_fields(path: str) -> list[str] | None:
    """The fields of a ``/proc/.../stat`` file after the command's name (state first), or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def live_tasks(pid: int) -> list[int]:
    """The threads of process ``pid`` that have not exited (its leader first where it has not), from /proc (Linux).

    A process whose first thread exits while another runs on is a zombie to ``/proc/PID``: no resident memory, no
    descriptors, no mappings there, though its other threads hold them all. A red-team plugin's helpers did that and
    held 2.9 GiB against a 256 MiB limit unseen, then outlived the slot and the run.
    """
    try:
        tids = sorted((int(t) for t in os.listdir(f"/proc/{pid}/task") if t.isdigit()), key=lambda t: (t != pid, t))
    except OSError:
        return []
    return [t for t in tids if (f := _stat_fields(f"/proc/{pid}/task/{t}/stat")) is not None and f[0] not in ("Z", "X")]


def task_path(pid: int) -> str:
    """``/proc/PID``, or the folder of a thread of ``pid`` that has not exited where its first thread has (its memory,
    mappings and, unless a thread took a table of its own, descriptors are every thread's)."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    if fields is None or fields[0] != "Z" or int(fields[17]) <= 1:
        return f"/proc/{pid}"
    tids = live_tasks(pid)
    return f"/proc/{pid}/task/{tids[0]}" if tids else f"/proc/{pid}"


def proc_table() -> tuple[dict[int, list[int]], dict[int, int], dict[int, int]]:
    """(parent pid -> child pids, pid -> resident bytes, pid -> threads) from /proc (Linux); a process whose first thread
    exited while others run on is measured through one of those (see :func:`live_tasks`)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    threads: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(f"/proc/{entry}/stat")
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * page
        threads[int(entry)] = int(fields[17])
        if fields[0] == "Z" and threads[int(entry)] > 1:
            live = _stat_fields(task_path(int(entry)) + "/stat")
            rss[int(entry)] = int(live[21]) * page if live is not None else 0
    return children, rss, threads


_SYS_KCMP = {"x86_64": 312, "aarch64": 272}
_KCMP_FILES = 2


def descriptor_tables(pid: int) -> list[str]:
    """The ``/proc`` folders of process ``pid``'s threads that hold descriptor tables of their own: one per table (its
    first live thread's). A thread may take a table of its own (``unshare(CLONE_FILES)``): a red-team plugin's five
    threads held 95,031 descriptors and an 800 MiB ``memfd`` in theirs, which ``/proc/PID/fd`` does not list."""
    import platform

    tids = live_tasks(pid)
    if len(tids) <= 1:
        return [task_path(pid)]
    nr = _SYS_KCMP.get(platform.machine())
    if nr is None:
        return [f"/proc/{pid}/task/{t}" for t in tids]
    libc = _libc()
    heads: list[int] = []
    for t in tids:
        # kcmp: 0 when the two threads share their descriptor table (an error: counted as a table of its own)
        if not any(libc.syscall(nr, ctypes.c_int(h), ctypes.c_int(t), ctypes.c_int(_KCMP_FILES), 0, 0) == 0 for h in heads):
            heads.append(t)
    return [f"/proc/{pid}/task/{t}" for t in heads]


def tree(roots: Iterable[int], children: dict[int, list[int]]) -> set[int]:
    """Every pid in the subtrees of ``roots``."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(children.get(p, []))
    return seen


def kill_all(pids: Iterable[int], group: int | None = None) -> None:
    """SIGKILL ``pids`` and the process group ``group``; never raises."""
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def reap(pids: Iterable[int]) -> None:
    """Collect the exit status of any of ``pids`` that are this process's children."""
    for p in pids:
        try:
            os.waitpid(p, os.WNOHANG)
        except OSError:
            pass
