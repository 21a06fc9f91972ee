"""Walk and remove folder trees a detector may have shaped: no recursion, no links followed, no path too long.

A sealed detector owns its work folders and can make them as deep as it likes (1,500 nested
folders take a fraction of a second). ``Path.rglob``, ``os.walk`` and ``shutil.rmtree`` recurse
on Python 3.11, so such a tree raised ``RecursionError`` in the bench (``ignore_errors`` does not
cover it) and left the folder behind for every later run to trip on; a path past ``PATH_MAX``
cannot even be opened by name. These helpers work one folder at a time through file descriptors
and never raise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)  # Linux: reading a folder so opened leaves its access time
#: At most this many passes over a tree's top folder before :func:`remove_tree` gives up (each pass empties
#: every folder it moved up and moves their sub-folders up in turn; a process still writing could keep it busy).
MAX_PASSES = 100_000


def walk(top: Path | str, skipped: list[str] | None = None) -> Iterator[tuple[str, os.stat_result, int]]:
    """``(path, lstat, depth)`` of every entry under ``top`` (depth 1: ``top``'s own entries), folders before what
    they hold; links are not followed.

    Iterative: any depth. What cannot be listed or looked at (a path past ``PATH_MAX``, a folder
    without read access) is left out and its path appended to ``skipped``; what vanished meanwhile
    is left out alone.
    """
    todo = [(os.fspath(top), 0)]
    while todo:
        path, depth = todo.pop()
        try:
            entries = _listing(path, follow=depth == 0)
        except FileNotFoundError:
            continue
        except OSError:
            if skipped is not None:
                skipped.append(path)
            continue
        for name, st in entries:
            if isinstance(st, FileNotFoundError):
                continue
            if isinstance(st, OSError):
                if skipped is not None:
                    skipped.append(os.path.join(path, name))
                continue
            yield os.path.join(path, name), st, depth + 1
            if stat.S_ISDIR(st.st_mode):
                todo.append((os.path.join(path, name), depth + 1))


def _listing(path: str, follow: bool = False) -> list[tuple[str, os.stat_result | OSError]]:
    """``(name, lstat or the error)`` of a folder's entries, read without moving the folder's access time.

    A detector that watched its work folder's access time saw each of the bench's measurements of its scratch (a
    listing moves it, on a file system mounted ``relatime``) and held 6 GiB against a 2 GiB limit between them. The
    folder is opened with ``O_NOATIME`` where the bench may (it owns the folder, or runs as root), else as before;
    ``follow``: the top folder may be a link (a folder given by the caller), a folder found inside never is.
    """
    flags = _DIR_FLAGS if not follow else _DIR_FLAGS & ~os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | _NOATIME)
    except PermissionError as exc:
        if not _NOATIME or exc.errno != errno.EPERM:  # EPERM: O_NOATIME on a folder of another owner
            raise
        fd = os.open(path, flags)
    try:
        with os.scandir(fd) as it:
            entries = list(it)
        out: list[tuple[str, os.stat_result | OSError]] = []
        for e in entries:
            try:
                out.append((e.name, e.stat(follow_symlinks=False)))
            except OSError as exc:
                out.append((e.name, exc))
        return out
    finally:
        os.close(fd)


def _open_dir(name: str, dir_fd: int | None) -> int | None:
    """A descriptor of folder ``name`` (relative to ``dir_fd``), made readable and writable for its owner; None when not a folder."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # a folder of mode 0 (a bench not run as root): open it as a path, give it a mode, again
        try:
            handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except (OSError, AttributeError):
            return None
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)  # the folder itself: O_NOFOLLOW made sure it is no link
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
        finally:
            os.close(handle)
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.chmod(fd, 0o700)
    return fd


def remove_tree(top: Path | str) -> bool:
    """Remove ``top`` and everything under it; True when it is gone. Never raises, never follows a link out.

    Every folder below ``top``'s own entries is first moved up to sit directly in ``top`` (a rename
    through descriptors), so no path grows with the tree's depth; then each emptied folder goes.
    Read-only folders (a slot's views) are made writable through their descriptors first.
    """
    top = os.fspath(top)
    try:
        if not stat.S_ISDIR(os.lstat(top).st_mode):
            os.unlink(top)
            return True
    except FileNotFoundError:
        return True
    except OSError:
        return False
    root = _open_dir(top, None)
    if root is None:
        return False
    moved = 0
    try:
        for _ in range(MAX_PASSES):
            try:
                with os.scandir(root) as it:
                    names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            except OSError:
                break
            if not names:
                break
            progress = False
            for name, is_dir in names:
                if not is_dir:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=root)
                        progress = True
                    continue
                fd = _open_dir(name, root)
                if fd is None:
                    continue
                try:
                    with os.scandir(fd) as it:
                        inner = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                    for child, child_is_dir in inner:
                        if child_is_dir:
                            moved += 1
                            sub = _open_dir(child, fd)  # its own mode must let the rename update its '..'
                            if sub is not None:
                                os.close(sub)
                            with contextlib.suppress(OSError):
                                os.rename(child, f".bb-rm-{moved}", src_dir_fd=fd, dst_dir_fd=root)
                                progress = True
                        else:
                            with contextlib.suppress(OSError):
                                os.unlink(child, dir_fd=fd)
                                progress = True
                except OSError:
                    pass
                finally:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=root)
                    progress = True
            if not progress:
                break
    finally:
        os.close(root)
    with contextlib.suppress(OSError):
        os.rmdir(top)
    return not os.path.lexists(top)


def remove_settled(top: Path | str) -> None:
    """:func:`remove_tree` up to three times (a child of a slot that is still dying may add a file while the tree goes)."""
    for _ in range(3):
        if remove_tree(top):
            return


def _remove_quietly(top: str) -> None:
    """The removing process's body: :func:`remove_settled`, ignoring Ctrl-C (the bench that started it waits for it on its way
    out)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    remove_settled(top)


def remove_later(top: Path | str) -> Callable[[], None]:
    """Start removing ``top`` (as :func:`remove_tree`) in a process of its own; returns what waits until it is gone.

    The spent slot folders of a run are tens of thousands of files, about ten seconds of the kernel's time
    to remove on this project's 2-core machine: done beside the report, not before it. Should the
    process not start, the tree is removed here and now.
    """
    import multiprocessing

    try:
        proc = multiprocessing.get_context("spawn").Process(
            target=_remove_quietly, args=(os.fspath(top),), name="breachbench-remove", daemon=False
        )
        proc.start()
    except Exception:  # no process (out of them, or a main module that cannot be spawned): remove it here
        remove_settled(top)
        return lambda: None

    def wait() -> None:
        proc.join()
        if os.path.lexists(top):  # the process died (killed): what is left goes here
            remove_settled(top)

    return wait
