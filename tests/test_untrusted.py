"""The bench's alerts reader: what a detector's process wrote is parsed in a sealed process of its own."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from pathlib import Path

import bad_detectors
import polars as pl
import pytest

from breachbench import untrusted
from detectors.contract import validate_alerts

DAY = dt.date(2025, 4, 10)


def _alerts(n: int, width: int = 8) -> pl.DataFrame:
    return validate_alerts(
        pl.DataFrame(
            {
                "bucket": [DAY] * n,
                "entity_kind": ["ip"] * n,
                "entity_id": [f"{i:0{width}d}" for i in range(n)],
                "score": [float(i) for i in range(n)],
            }
        )
    )


def _bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def _read(raw: bytes, memory_mb: int = 1024) -> pl.DataFrame:
    return untrusted.read_alerts(raw, {}, [DAY], "probe", buckets=1, max_rows=1_000_000, memory_mb=memory_mb, timeout_s=60)


def test_a_file_that_makes_polars_panic_is_an_error_and_the_reader_goes_on() -> None:
    with pytest.raises(untrusted.UntrustedFileError):  # in the bench's process: a PanicException, past `except Exception`
        _read(bad_detectors.PANIC_PARQUET)
    good = _alerts(5)
    assert _read(_bytes(good)).equals(good)


def test_a_read_past_the_memory_limit_kills_the_reader_and_the_next_read_gets_a_fresh_one() -> None:
    untrusted.ensure_reader()
    (first,) = untrusted.reader_pids()
    big = _alerts(400_000, width=64)  # about 30 MB of entity ids once read, from a file of a few MB
    with pytest.raises(untrusted.UntrustedFileError, match="more than 1 MiB, the detector's memory limit"):
        _read(_bytes(big), memory_mb=1)
    assert not untrusted.reader_pids() or untrusted.reader_pids() != {first}
    assert _read(_bytes(big)).equals(big)
    assert untrusted.reader_pids() != {first}


def test_text_that_only_views_share_counts_at_its_full_size() -> None:
    """polars keeps strings as views: 100,000 rows sharing one 5,000-byte reason (a dictionary page read as plain
    text) cost the reader little and the answer 64 KB, and 500 MB wherever the bench copied the frame (a red-team file
    of 3.4 MB held 64 GiB and aborted the bench)."""
    n = 100_000
    one = _alerts(1).with_columns(reason=pl.lit("x" * 5000))
    df = one.select(pl.all().gather([0] * n)).with_columns(
        entity_id=pl.format("10.0.{}.{}", pl.int_range(n) // 256, pl.int_range(n) % 256),
        reason=pl.col("reason").cast(pl.Categorical),
    )
    raw = _bytes(df).replace(b"ARROW:schema", b"ARROW:schemX")  # no schema in the footer: the reason reads as text
    assert len(raw) < 100_000
    with pytest.raises(untrusted.UntrustedFileError, match=r"the alerts take 50\d,\d{3},\d{3} bytes read, more than 209,715,200"):
        _read(raw, memory_mb=200)


def test_too_many_rows_is_its_own_error() -> None:
    with pytest.raises(
        untrusted.TooManyAlerts, match=r"returned 11 alert rows, more than the bench reads \(10 per scored bucket\)"
    ):
        untrusted.read_alerts(_bytes(_alerts(11)), {}, [DAY], "probe", buckets=1, max_rows=10, memory_mb=1024, timeout_s=60)


def test_the_reader_is_sealed() -> None:
    untrusted.ensure_reader()
    (pid,) = untrusted.reader_pids()
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    assert status["NoNewPrivs"].strip() == "1"  # set by the Landlock ruleset
    assert status["Seccomp"].strip() == "2"  # the calls a slot may not make
    assert int(status["CapEff"].strip(), 16) == 0


def test_an_error_quoting_the_alerts_is_one_printable_line(tiny_dataset: Path) -> None:
    from breachbench.isolation import run_isolated

    r = run_isolated("bad_detectors:InjectsLines", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert r.status == "ERROR" and "unexpected column" in (r.error or ""), (r.status, r.error)
    assert "\n" not in r.error and "\x1b" not in r.error and "Injected heading" in r.error


class _Planted:
    """Unpickled, it creates a file: what a reader that a crafted file took over could send the bench."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


class _StandIn:
    """A reader process as the bench sees one: alive, with a pid whose memory it can look up (this process)."""

    pid = os.getpid()

    def is_alive(self) -> bool:
        return True

    def kill(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.mark.parametrize("answer", ["pickle", "huge", "unknown"])
def test_the_bench_takes_the_readers_answer_as_bytes_and_never_unpickles_it(
    answer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader has parsed a detector's bytes: its answer is bytes of a known form, bounded, or an error."""
    import multiprocessing
    import pickle
    import threading

    marker = tmp_path / "ran-in-the-bench"
    ours, theirs = multiprocessing.Pipe()
    payload = {
        "pickle": pickle.dumps(("ok", _Planted(marker))),
        "huge": untrusted.ANSWERS[0] + b"\0" * (2 * 2**20),  # more than the 1 MiB the request allows
        "unknown": b"Z" + _bytes(_alerts(3)),
    }[answer]

    def reply() -> None:
        theirs.recv_bytes()
        with contextlib.suppress(OSError):  # the bench stops reading past what it allows
            theirs.send_bytes(payload)

    monkeypatch.setattr(untrusted._READER, "proc", _StandIn())
    monkeypatch.setattr(untrusted._READER, "conn", ours)
    t = threading.Thread(target=reply)
    t.start()
    with pytest.raises(untrusted.UntrustedFileError, match="reader"):
        untrusted.read_alerts(_bytes(_alerts(3)), {}, [DAY], "probe", buckets=1, max_rows=10, memory_mb=1, timeout_s=30)
    t.join(10)
    assert not marker.exists()
    assert untrusted._READER.proc is None  # a reader that answered so is not asked again
