"""Replay a dataset as one event stream, in delivery order, at N times real time or as fast as possible.

Events of every stream are merged by delivery time: a row's ``ts``, except late rows (a
``late-`` file), which are delivered at the start of the bucket whose partition holds them.
Ties break by stream (gateway, auth, admin, hr) then ``event_id``. Each delivery day is read
in time slices (parquet predicates on ``ts``), each slice formatted with polars (the export
mappings; RFC 5424 syslog wraps the JSON), and the lines go through a bounded queue to one
sender thread: memory holds at most one slice plus the queue, whatever the dataset's size.
Sending a line is the one per-event step (a socket write per event is what replay is).
"""

from __future__ import annotations

import datetime as dt
import io
import queue
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import polars as pl

from breachbench.dataset import Dataset
from breachbench.interop.export import convert
from breachbench.interop.mapping import load_mapping
from simulator import layout
from simulator.errors import BreachBenchError
from simulator.schema import LOG_STREAMS
from simulator.units import SEC

As = Literal["ecs", "ocsf", "syslog"]
#: RFC 5424 PRI of every line: facility local0 (16), severity informational (6).
SYSLOG_PRI = 16 * 8 + 6
_STREAM_ORDER = {s: i for i, s in enumerate(LOG_STREAMS)}
_END = object()


class ReplayError(BreachBenchError, ValueError):
    """A bad replay target, speed or window; the message says what is accepted."""


@dataclass(frozen=True)
class ReplayStats:
    """What a replay sent."""

    events: int
    wall_s: float
    first_us: int | None
    last_us: int | None


def _lines(frame: pl.DataFrame, stream: str, as_: As, bucket_start: dt.datetime) -> list[str]:
    """JSON lines of a frame of one stream (log schema), in its row order."""
    mapping = load_mapping("ocsf" if as_ == "ocsf" else "ecs")
    buf = io.BytesIO()
    convert(frame.lazy(), mapping, stream, bucket_start).collect().write_ndjson(buf)
    lines = buf.getvalue().decode().splitlines()
    if as_ == "syslog":
        ts = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_list()
        lines = [f"<{SYSLOG_PRI}>1 {t} breachbench {stream} - {stream} - {line}" for t, line in zip(ts, lines, strict=True)]
    return lines


def _bucket_start(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


def slices(
    ds: Dataset, as_: As = "ecs", *, start: dt.datetime | None = None, end: dt.datetime | None = None, slice_s: int = 3600
) -> Iterator[tuple[list[int], list[str]]]:
    """(delivery times in UTC microseconds, lines) of successive time slices, in delivery order."""
    for day in ds.buckets:
        b0 = _bucket_start(day, ds.timezone)
        b1 = _bucket_start(day + dt.timedelta(days=1), ds.timezone)
        if (end is not None and b0 >= end) or (start is not None and b1 <= start):
            continue
        t = b0
        while t < b1:
            t_next = min(t + dt.timedelta(seconds=slice_s), b1)
            if (end is None or t < end) and (start is None or t_next > start):
                yield _slice(ds, _Window(day, b0, t, t_next, start, end), as_)
            t = t_next


@dataclass(frozen=True)
class _Window:
    """One time slice of a bucket to replay: rows delivered in ``[t0, t1)`` of ``day`` (whose bucket starts at ``b0``),
    kept within the replay's ``[start, end)``. The first slice of a bucket also delivers its late rows."""

    day: dt.date
    b0: dt.datetime
    t0: dt.datetime
    t1: dt.datetime
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def first(self) -> bool:
        return self.t0 == self.b0


def _slice(ds: Dataset, w: _Window, as_: As) -> tuple[list[int], list[str]]:
    """(delivery times, lines) of every stream's rows delivered in ``w``, in delivery order."""
    parts = []
    for stream in LOG_STREAMS:
        df = _delivered(ds, stream, w)
        if df is None or df.height == 0:
            continue
        parts.append(
            pl.DataFrame(
                {
                    "_at": df["_at"],
                    "_s": [_STREAM_ORDER[stream]] * df.height,
                    "event_id": df["event_id"],
                    "_line": _lines(df.drop("_at"), stream, as_, w.b0),
                }
            )
        )
    if not parts:
        return [], []
    merged = pl.concat(parts).sort("_at", "_s", "event_id")
    return merged["_at"].to_list(), merged["_line"].to_list()


def _delivered(ds: Dataset, stream: str, w: _Window) -> pl.DataFrame | None:
    """``stream``'s rows delivered in ``w`` with their delivery time ``_at`` (UTC microseconds); None without files."""
    files = layout.log_files(ds.root, stream, [w.day])
    on_time = [f for f in files if not f.name.startswith("late-")]
    late = [f for f in files if f.name.startswith("late-")]
    frames = []
    if on_time:  # delivered at ts; rows before the bucket start (none expected) go with the late ones
        frames.append(
            pl.scan_parquet(on_time).filter((pl.col("ts") >= w.t0) & (pl.col("ts") < w.t1))
            if not w.first
            else pl.scan_parquet(on_time).filter(pl.col("ts") < w.t1)
        )
    if late and w.first:
        frames.append(pl.scan_parquet(late))
    if not frames:
        return None
    lazy = pl.concat(frames).with_columns(
        _at=pl.max_horizontal(pl.col("ts"), pl.lit(w.b0, pl.Datetime("us", "UTC"))).dt.epoch("us")
    )
    if w.start is not None:
        lazy = lazy.filter(pl.col("_at") >= int(w.start.timestamp() * SEC))
    if w.end is not None:
        lazy = lazy.filter(pl.col("_at") < int(w.end.timestamp() * SEC))
    return lazy.collect()


class _Sink:
    """Where lines go: stdout, a file, a TCP or UDP socket (loopback or not, the caller's choice)."""

    def __init__(self, to: str) -> None:
        self.to = to
        self._sock: socket.socket | None = None
        self._file: IO[str] | None = None
        self._udp: tuple[str, int] | None = None
        if to == "stdout":
            self._file = sys.stdout
        elif to.startswith(("tcp://", "udp://")):
            u = urlparse(to)
            if not u.hostname or not u.port:
                raise ReplayError(f"--to {to!r}: give host and port, e.g. tcp://127.0.0.1:5514")
            if u.scheme == "tcp":
                try:
                    self._sock = socket.create_connection((u.hostname, u.port), timeout=10)
                except OSError as exc:
                    raise ReplayError(f"--to {to!r}: cannot connect ({exc.strerror or exc}); is a listener there?") from None
            else:
                self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._udp = (u.hostname, u.port)
        elif to.startswith("file://") or "://" not in to:
            try:
                self._file = open(to.removeprefix("file://"), "w")  # closed in close()
            except OSError as exc:
                raise ReplayError(f"--to {to!r}: cannot write that file ({exc.strerror or exc})") from None
        else:
            raise ReplayError(f"--to {to!r}: accepted: stdout, a file path (or file://PATH), tcp://HOST:PORT, udp://HOST:PORT")

    def send(self, lines: list[str]) -> None:
        if self._file is not None:
            self._file.write("".join(line + "\n" for line in lines))
        elif self._udp is not None:
            for line in lines:  # one datagram per event, as syslog over UDP
                self._sock.sendto(line.encode(), self._udp)  # type: ignore[union-attr]
        else:
            self._sock.sendall("".join(line + "\n" for line in lines).encode())  # type: ignore[union-attr]

    def close(self) -> None:
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        elif self._file is sys.stdout:
            self._file.flush()
        if self._sock is not None:
            self._sock.close()


def replay(
    dataset: str | Path,
    to: str = "stdout",
    *,
    as_: As = "ecs",
    speed: float | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    buffer: int = 10_000,
    slice_s: int = 3600,
) -> ReplayStats:
    """Send every delivered event of ``dataset`` (or of ``[start, end)`` in delivery time) to ``to``.

    ``speed``: N times real time (delivery times are kept N times faster, from the first event
    on), or None for as fast as possible. ``buffer``: events the queue between reader and sender
    holds at most.
    """
    if speed is not None and speed <= 0:
        raise ReplayError(f"--speed {speed}: give a positive factor such as 1000, or max")
    if as_ not in ("ecs", "ocsf", "syslog"):
        raise ReplayError(f"--as {as_!r}: accepted: ecs, ocsf, syslog")
    ds = Dataset.open(dataset)
    sink = _Sink(to)
    q: queue.Queue = queue.Queue(maxsize=max(1, buffer // 1000))  # chunks of up to 1000 events
    failure: list[BaseException] = []
    chunks = slices(ds, as_, start=start, end=end, slice_s=slice_s)
    reader = threading.Thread(target=_produce, args=(chunks, q, failure), daemon=True)
    reader.start()
    wall0 = time.monotonic()
    try:
        n, first, last = _send_all(q, sink, speed, wall0)
    finally:
        sink.close()
    reader.join()
    if failure:
        raise failure[0]
    return ReplayStats(n, time.monotonic() - wall0, first, last)


def _produce(chunks: Iterator[tuple[list[int], list[str]]], q: queue.Queue, failure: list[BaseException]) -> None:
    """The reading thread: put the slices on ``q`` in chunks of up to 1000 events, then the end mark; an error goes
    to ``failure`` for the sending thread to raise."""
    try:
        for at, lines in chunks:
            for i in range(0, len(lines), 1000):
                q.put((at[i : i + 1000], lines[i : i + 1000]))
    except BaseException as exc:  # handed to the sending thread, which raises it
        failure.append(exc)
    finally:
        q.put(_END)


def _send_all(q: queue.Queue, sink: _Sink, speed: float | None, wall0: float) -> tuple[int, int | None, int | None]:
    """Send the chunks from ``q`` until the end mark, paced or not; (events sent, first and last delivery times)."""
    n, first, last = 0, None, None
    while (item := q.get()) is not _END:
        at, lines = item
        if first is None and at:
            first = at[0]
        if speed is None:
            sink.send(lines)
        else:
            _paced(sink, at, lines, first, wall0, speed)  # type: ignore[arg-type]
        n += len(lines)
        last = at[-1] if at else last
    return n, first, last


def _paced(sink: _Sink, at: list[int], lines: list[str], first: int, wall0: float, speed: float) -> None:
    """Send each line when its delivery time, N times faster, comes; lines due together go together."""
    i = 0
    while i < len(lines):
        due = wall0 + (at[i] - first) / 1e6 / speed
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        now_data = first + (time.monotonic() - wall0) * speed * 1e6
        j = i + 1
        while j < len(lines) and at[j] <= now_data:
            j += 1
        sink.send(lines[i:j])
        i = j
