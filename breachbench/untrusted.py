"""Read the alerts a detector's sealed process wrote, in a sealed process of the bench's own.

A slot's alerts file is the detector's: any bytes at all. Parsed in the bench's process, a
malformed Parquet file can make polars panic (a ``PanicException``, which is not an
``Exception``), abort the process (an allocation that fails) or expand a few kilobytes into more
memory than the machine has: one hostile plugin would end the whole run and the other detectors'
rows with it. So the bench never parses them itself. A reader process (started once per bench
process, before any slot, and again after one that died) takes the raw bytes over a pipe, reads and
validates them (:func:`detectors.contract.validate_alerts`, bucket by bucket as they were handed
over) and sends back the validated frame as Arrow IPC, which polars wrote. The bench waits for it
with the slot's own limits: past the detector's memory limit (over what the reader holds as the read starts) or
its time limit, the reader is killed and the row is an ERROR naming why; a reader that dies
(abort, signal) gives an ERROR row too, and the next read starts a fresh one.

The reader is sealed like a slot: no capabilities, Landlock with read access to the system's and
Python's folders only and no write access, and the calls a slot may not make. Every module a read
needs is imported, and one read is done, before the seal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

from breachbench import sealing
from simulator.errors import BreachBenchError

#: How often the bench looks at the reader's memory while it reads.
WATCH_S = 0.05
#: The first byte of the reader's answers: the alerts (Arrow IPC follows), too many alert rows, any other
#: failure to read them (the text follows, UTF-8), and the one message a fresh reader sends when it is sealed.
_OK, _ROWS, _READ, _READY = b"K", b"R", b"E", b"S"
ANSWERS = (_OK, _ROWS, _READ, _READY)
#: The most bytes of error text the bench takes from the reader.
MAX_TEXT = 4096


class UntrustedFileError(BreachBenchError, OSError):
    """A file the child wrote is not a plain file in its work folder, is too large, or does not read as alerts."""


class AlertsOrderError(BreachBenchError, ValueError):
    """A slot's alerts that did not come bucket by bucket, or not within the bench's bounds."""


class TooManyAlerts(BreachBenchError, ValueError):
    """More alert rows than the bench reads."""


# ---- in the reader ---------------------------------------------------------------------------------------------


def parse(
    final: bytes, committed: dict[dt.date, bytes | str], scored: list[dt.date], detector: str, buckets: int, max_rows: int
) -> pl.DataFrame:
    """A dataset's alerts from the slot's final alerts file and the alerts handed over before each later bucket.

    Raises:
        TooManyAlerts: more rows than ``max_rows`` per scored bucket (of ``buckets``).
        AlertsOrderError: a bucket never handed over, or handed over with rows of another bucket.
        detectors.contract.AlertsError: rows that break the alerts contract.
        Exception: anything polars raises on the bytes.
    """
    from detectors.contract import validate_alerts

    src = f"detector {detector!r}"
    rows = pl.scan_parquet(io.BytesIO(final)).select(pl.len()).collect().item()
    if rows > max_rows * buckets:
        raise TooManyAlerts(f"returned {rows} alert rows, more than the bench reads ({max_rows} per scored bucket)")
    whole = validate_alerts(pl.read_parquet(io.BytesIO(final)), source=src)
    return validate_alerts(_bucketwise(whole, scored, committed, detector, max_rows), source=src)


def _bucketwise(
    final: pl.DataFrame, scored: list[dt.date], committed: dict[dt.date, bytes | str], detector: str, max_rows: int
) -> pl.DataFrame:
    """A dataset's alerts, bucket by bucket as the bench took them: the committed ones, then the last bucket's from
    ``final``. (Checked together: every committed row is for the bucket it was handed over with; the caller validates
    the whole.)"""
    if not scored:
        return final
    parts = []
    for day in scored[:-1]:
        if day not in committed:
            raise AlertsOrderError(f"bucket {day} was never handed over before the next one was asked for")
        kept = committed[day]
        if isinstance(kept, str):
            raise UntrustedFileError(f"bucket {day}'s alerts cannot be read: {kept}")
        if pl.scan_parquet(io.BytesIO(kept)).select(pl.len()).collect().item() > max_rows:
            raise AlertsOrderError(f"bucket {day}: more alert rows than the bench reads ({max_rows})")
        parts.append(pl.read_parquet(io.BytesIO(kept)).with_columns(handed=pl.lit(day, pl.Date)))
    if parts:
        early = pl.concat(parts, how="vertical_relaxed")
        if "bucket" not in early.columns or not (early["bucket"].cast(pl.Date) == early["handed"]).fill_null(False).all():
            raise AlertsOrderError(f"detector {detector!r}: alerts handed over with a bucket for another bucket")
        return pl.concat([early.drop("handed"), final.filter(pl.col("bucket") == scored[-1])], how="vertical_relaxed")
    return final.filter(pl.col("bucket") == scored[-1])


def _package_roots() -> list[str]:
    """Python's folders and those of the bench's own packages (read-only under the seal)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for name in ("breachbench", "detectors", "simulator"):
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None):
            roots.add(str(Path(mod.__file__).resolve().parent))  # type: ignore[arg-type]
    return sorted(roots)


def _serve(conn: Any, parent: int, private: tuple[str, ...]) -> None:
    """The reader's body: seal itself (``private``: the system's files it may not read, :func:`sealing.private_entries`
    of the bench), then answer requests until the bench closes its end of the pipe.

    A request is a pickled ``(final, committed, scored, detector, buckets, max_rows, max_bytes)`` (see
    :func:`parse`; ``max_bytes`` bounds the answer), which only the bench writes. The answer is plain
    bytes, never a pickle, since the reader has parsed a detector's bytes by then: one byte of
    :data:`ANSWERS` and its payload, the Arrow IPC of the alerts or the error's text in UTF-8.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle; it ends the reader by closing the pipe
    sealing.die_with_parent(parent)
    null = os.open(os.devnull, os.O_RDWR)  # a panic's backtrace must not land in the bench's log or terminal
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    from detectors.contract import empty_alerts

    warm = io.BytesIO()
    empty_alerts().write_parquet(warm)
    parse(warm.getvalue(), {}, [], "warm-up", 1, 1).write_ipc(io.BytesIO())  # every lazy import of a read, before the seal
    sealing.drop_capabilities()
    roots = sealing.readable_roots([*sealing.SYSTEM_READ, *_package_roots()], private)
    sealing.restrict(roots, [])
    sealing.deny_calls()
    conn.send_bytes(_READY)
    while True:
        try:
            final, committed, scored, detector, buckets, max_rows, max_bytes = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            df = parse(final, committed, scored, detector, buckets, max_rows)
            # polars keeps strings as views: a million rows can share one long value, which costs nothing here and in
            # the answer, and rows x its length wherever the frame is copied (a red-team file of 3.4 MB held 64 GiB)
            text = sum(int(df[c].str.len_bytes().sum() or 0) for c, t in df.schema.items() if t == pl.String)
            out = io.BytesIO()
            if text <= max_bytes:
                df.write_ipc(out)
            if text > max_bytes or out.tell() > max_bytes:
                size = max(text, out.tell())
                answer = _READ + f"the alerts take {size:,} bytes read, more than {max_bytes:,}".encode()
            else:
                answer = _OK + out.getvalue()
        except TooManyAlerts as exc:
            answer = _ROWS + str(exc).encode()[:MAX_TEXT]
        except BaseException as exc:  # a panic in polars is a BaseException; the bytes are untrusted
            answer = _READ + f"{type(exc).__name__}: {exc}".encode(errors="replace")[:MAX_TEXT]
        try:
            conn.send_bytes(answer)
        except (OSError, ValueError):
            return


# ---- in the bench ----------------------------------------------------------------------------------------------


class _Reader:
    """The bench process's reader: its process and the bench's end of the pipe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: Any = None
        self.conn: Any = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def start(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_serve, args=(theirs, os.getpid(), sealing.private_entries()), daemon=True, name="breachbench-alerts-reader"
        )
        proc.start()
        theirs.close()
        try:
            ready = mine.poll(120) and mine.recv_bytes(len(_READY)) == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            proc.kill()
            proc.join(5)
            mine.close()
            raise UntrustedFileError(f"the bench's alerts reader did not start (exit code {proc.exitcode})")
        self.proc, self.conn = proc, mine

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(5)
        self.proc = self.conn = None


_READER = _Reader()


def _rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def ensure_reader() -> None:
    """Start this process's reader if it is not running (before a slot starts: it is not one of the slot's processes).
    One that does not start is tried again at the first read, whose row then says so."""
    with _READER.lock:
        if not _READER.alive():
            _READER.stop()
            with contextlib.suppress(UntrustedFileError):
                _READER.start()


def reader_pids() -> set[int]:
    """The pid of this process's reader, when it runs (never counted as one of a slot's processes)."""
    proc = _READER.proc
    return {proc.pid} if proc is not None and proc.pid is not None else set()


def read_alerts(
    final: bytes,
    committed: dict[dt.date, bytes | Path | str],
    scored: list[dt.date],
    detector: str,
    *,
    buckets: int,
    max_rows: int,
    memory_mb: int,
    timeout_s: float,
) -> pl.DataFrame:
    """The validated alerts of one dataset of a slot (see :func:`parse`), read in the reader process.

    Raises:
        TooManyAlerts: more rows than the bench reads.
        UntrustedFileError: anything else: the bytes do not read as alerts, the read took more than
            ``memory_mb`` MiB over the reader's memory as it started or more than ``timeout_s`` seconds, or the
            reader died on them.
    """
    given = {day: (Path(v).read_bytes() if isinstance(v, Path) else v) for day, v in committed.items()}
    request = pickle.dumps((final, given, list(scored), detector, buckets, max_rows, memory_mb * 2**20))
    with _READER.lock:
        if not _READER.alive():
            _READER.stop()
            _READER.start()
        kind, payload = _ask(request, memory_mb, timeout_s)
    if kind == _OK:
        return pl.read_ipc(io.BytesIO(payload))
    text = payload[:MAX_TEXT].decode(errors="replace")
    if kind == _ROWS:
        raise TooManyAlerts(text)
    raise UntrustedFileError(text)


def _ask(request: bytes, memory_mb: int, timeout_s: float) -> tuple[bytes, bytes]:
    """Send one request to the reader and wait for its answer under the limits (the caller holds the lock):
    (the answer's kind, its payload). The answer is read as bytes, at most what the request allows, and never
    unpickled: the reader has parsed a detector's bytes, and a pickle from it could run code in the bench."""
    proc, conn = _READER.proc, _READER.conn
    # over what the reader holds as the read starts (its allocator may keep memory of an earlier, larger read)
    limit = _rss(proc.pid) + memory_mb * 2**20
    t0 = time.perf_counter()
    why = None
    try:
        conn.send_bytes(request)
        while not conn.poll(WATCH_S):
            if not proc.is_alive():
                why = f"the bench's alerts reader died on them (exit code {proc.exitcode})"
                break
            if _rss(proc.pid) > limit:
                why = f"reading them took more than {memory_mb} MiB, the detector's memory limit"
                break
            if time.perf_counter() - t0 > timeout_s:
                why = f"reading them took more than {timeout_s:g} s, the detector's time limit"
                break
        else:
            answer = conn.recv_bytes(memory_mb * 2**20 + 1)  # the reader bounds its answer by the same
            if answer[:1] in (_OK, _ROWS, _READ):
                return answer[:1], answer[1:]
            why = "the bench's alerts reader sent an answer that is not one"
    except (EOFError, OSError) as exc:
        why = f"the bench's alerts reader died on them ({type(exc).__name__})"
    except BaseException:  # Ctrl-C while it reads: its answer would be the next request's
        _READER.stop()
        raise
    _READER.stop()  # killed, dead or unknown: the next read starts a fresh one
    return _READ, (why or "").encode()
