"""Replay: every delivered row once, in delivery order, at the requested pace, into a loopback listener."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from breachbench.interop.replay import SYSLOG_PRI, ReplayError, replay
from simulator import layout
from simulator.schema import LOG_STREAMS


class Listener:
    """A one-connection TCP listener on 127.0.0.1 that collects what it receives (bounded by a timeout)."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(timeout_s)
        self.port = self.server.getsockname()[1]
        self.data = bytearray()
        self.arrivals: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        conn.settimeout(30.0)
        with conn:
            while chunk := conn.recv(1 << 16):
                self.data.extend(chunk)
                self.arrivals.append(time.monotonic())
        self.server.close()

    def lines(self) -> list[str]:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "listener still reading"
        return self.data.decode().splitlines()


def _expected(dataset: Path, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """(event_id, stream, at) of every delivered row in [start, end), computed independently, in delivery order."""
    man = json.loads((dataset / "manifest.json").read_text())["config"]["time"]
    tz = ZoneInfo(man["timezone"])
    day0 = dt.date.fromisoformat(str(man["start"]))
    frames = []
    for i, stream in enumerate(LOG_STREAMS):
        for d in range((dt.date.fromisoformat(str(man["end"])) - day0).days):
            day = day0 + dt.timedelta(days=d)
            b0 = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
            for f in layout.log_files(dataset, stream, [day]):
                df = pl.read_parquet(f, columns=["event_id", "ts"])
                at = df["ts"] if not f.name.startswith("late-") else pl.Series([b0] * df.height, dtype=pl.Datetime("us", "UTC"))
                frames.append(df.select("event_id", pl.lit(i).alias("s"), at.alias("at")))
    all_rows = pl.concat(frames)
    return all_rows.filter((pl.col("at") >= start) & (pl.col("at") < end)).sort("at", "s", "event_id")


def test_replay_into_a_loopback_listener_at_1000x(tiny_dataset: Path) -> None:
    """30 minutes of traffic at 1000x: about 1.8 s, every row once, in order, never faster than asked."""
    start = dt.datetime(2025, 4, 10, 0, 0, tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=30)
    want = _expected(tiny_dataset, start, end)
    assert want.height > 300
    lst = Listener()
    t0 = time.monotonic()
    stats = replay(tiny_dataset, f"tcp://127.0.0.1:{lst.port}", as_="ecs", speed=1000, start=start, end=end, buffer=2000)
    lines = lst.lines()
    got = [int(json.loads(line)["event"]["id"]) for line in lines]
    assert stats.events == len(lines) == want.height
    assert got == want["event_id"].to_list()  # every row once (duplicates delivered twice stay twice), in delivery order
    span_s = (want["at"][-1] - want["at"][0]).total_seconds()
    assert stats.wall_s >= 0.95 * span_s / 1000  # not faster than 1000x
    assert time.monotonic() - t0 < span_s / 1000 + 20  # and not stuck (a generous bound on a shared machine)
    # paced, not in one burst: data arrives over a good part of the window (a burst takes milliseconds; a loaded machine
    # can delay the first send and let the sender catch up, so not "most of" it)
    assert lst.arrivals[-1] - lst.arrivals[0] >= 0.25 * span_s / 1000


def test_late_rows_are_sent_when_they_were_delivered(tiny_dataset: Path, tmp_path: Path) -> None:
    """A day's late rows (yesterday's ts) come first in that day, at the bucket's start, as syslog lines."""
    late = sorted((tiny_dataset / "logs" / "gateway").glob("date=*/late-*.parquet"))
    assert late, "the tiny dataset has late rows"
    day = dt.date.fromisoformat(late[0].parent.name.removeprefix("date="))
    b0 = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo("Asia/Seoul")).astimezone(dt.UTC)
    out = tmp_path / "r.log"
    stats = replay(tiny_dataset, str(out), as_="syslog", start=b0, end=b0 + dt.timedelta(minutes=5))
    lines = out.read_text().splitlines()
    assert stats.events == len(lines) > 0 and all(line.startswith(f"<{SYSLOG_PRI}>1 ") for line in lines)
    late_ids = set(pl.read_parquet(late[0])["event_id"].to_list())
    sent = [int(json.loads(line.split(" - ", 2)[2])["event"]["id"]) for line in lines]
    assert late_ids <= set(sent)
    assert max(sent.index(e) for e in late_ids) < len(late_ids) + 50  # at the front (other streams' late rows interleave)


def test_every_row_once_as_fast_as_possible(tiny_dataset: Path, tmp_path: Path) -> None:
    """A whole day, no pacing, OCSF: the multiset of event ids equals the day's delivered rows."""
    start = dt.datetime(2025, 4, 11, 15, 0, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    want = _expected(tiny_dataset, start, end)
    out = tmp_path / "day.ndjson"
    replay(tiny_dataset, f"file://{out}", as_="ocsf", start=start, end=end)
    got = [int(json.loads(line)["metadata"]["uid"]) for line in out.read_text().splitlines()]
    assert Counter(got) == Counter(want["event_id"].to_list()) and got == want["event_id"].to_list()


def test_udp_datagrams(tiny_dataset: Path) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    start = dt.datetime(2025, 4, 10, 3, 0, tzinfo=dt.UTC)
    stats = replay(
        tiny_dataset, f"udp://127.0.0.1:{rx.getsockname()[1]}", as_="syslog", start=start, end=start + dt.timedelta(seconds=20)
    )
    got = []
    for _ in range(stats.events):
        got.append(rx.recv(65536).decode())
    rx.close()
    assert stats.events > 0 and all(g.startswith(f"<{SYSLOG_PRI}>1 ") for g in got)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"to": "ftp://x"}, "accepted"),
        ({"speed": 0}, "positive"),
        ({"as_": "cef"}, "ecs, ocsf, syslog"),
        ({"to": "/proc/breachbench-replay"}, "cannot write that file"),  # was a bare errno line
        ({"to": "tcp://127.0.0.1:1"}, "cannot connect"),  # nothing listens on port 1
    ],
)
def test_bad_arguments(tiny_dataset: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ReplayError, match=match):
        replay(tiny_dataset, **{"to": "stdout", **kwargs})


def test_cli_replay(tiny_dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from breachbench.cli import app

    out = tmp_path / "c.ndjson"
    r = CliRunner().invoke(
        app,
        [
            "replay",
            str(tiny_dataset),
            "--to",
            str(out),
            "--speed",
            "max",
            "--start",
            "2025-04-10T00:00:00Z",
            "--end",
            "2025-04-10T00:01:00Z",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "replayed" in r.output and len(out.read_text().splitlines()) > 0
    r = CliRunner().invoke(app, ["replay", str(tiny_dataset), "--speed", "fast"])
    assert r.exit_code == 2 and "Nx or max" in r.output
