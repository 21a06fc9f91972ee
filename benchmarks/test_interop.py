"""Throughput of the interop paths on the tiny config (about 860k events over 28 days): OCSF and
ECS export (NDJSON and Parquet), replay as fast as possible to a file and to a loopback TCP
socket, and import of an OCSF export. Events per second and peak memory go to ``extra_info``.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from benchmarks.conftest import CACHE, bench_config, peak_rss
from breachbench.interop.export import export_dataset
from breachbench.interop.importer import import_logs
from breachbench.interop.mapping import MAPPINGS_DIR
from breachbench.interop.replay import replay
from breachbench.testing import cached_dataset


@pytest.fixture(scope="module")
def tiny_bench_dataset() -> Path:
    """configs/tiny.toml, cached."""
    return cached_dataset(bench_config().sim(), CACHE)


def _events(dataset: Path) -> int:
    import json

    return sum(f["rows"] for f in json.loads((dataset / "manifest.json").read_text())["files"] if f["path"].startswith("logs/"))


@pytest.mark.parametrize(("fmt", "as_"), [("ocsf", "ndjson"), ("ecs", "ndjson"), ("ocsf", "parquet")])
def test_export(benchmark, tiny_bench_dataset: Path, tmp_path: Path, fmt: str, as_: str) -> None:
    out = tmp_path / "out"
    with peak_rss() as mem:
        benchmark.pedantic(
            export_dataset,
            args=(tiny_bench_dataset, out, fmt),
            kwargs={"as_": as_},
            setup=lambda: shutil.rmtree(out, ignore_errors=True),
            rounds=2,
            iterations=1,
        )
    n = _events(tiny_bench_dataset)
    benchmark.extra_info.update(format=fmt, file_format=as_, events=n, events_per_s=n / benchmark.stats.stats.mean, **mem)


def test_replay_to_file(benchmark, tiny_bench_dataset: Path, tmp_path: Path) -> None:
    """ECS JSON lines, no pacing."""
    with peak_rss() as mem:
        stats = benchmark.pedantic(replay, args=(tiny_bench_dataset, str(tmp_path / "r.ndjson")), rounds=2, iterations=1)
    benchmark.extra_info.update(events=stats.events, events_per_s=stats.events / benchmark.stats.stats.mean, **mem)


def test_replay_to_tcp(benchmark, tiny_bench_dataset: Path) -> None:
    """RFC 5424 syslog lines into a loopback TCP listener that discards them, no pacing."""

    def once() -> int:
        srv = socket.create_server(("127.0.0.1", 0))
        srv.settimeout(60)

        def drain() -> None:
            conn, _ = srv.accept()
            with conn:
                while conn.recv(1 << 20):
                    pass
            srv.close()

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        n = replay(tiny_bench_dataset, f"tcp://127.0.0.1:{srv.getsockname()[1]}", as_="syslog").events
        t.join(60)
        return n

    n = benchmark.pedantic(once, rounds=2, iterations=1)
    benchmark.extra_info.update(events=n, events_per_s=n / benchmark.stats.stats.mean)


@pytest.mark.parametrize("as_", ["parquet", "ndjson"])
def test_import(benchmark, tiny_bench_dataset: Path, tmp_path: Path, as_: str) -> None:
    """An OCSF export read back with the example mapping."""
    export_dataset(tiny_bench_dataset, tmp_path / "export", "ocsf", as_=as_)  # type: ignore[arg-type]
    out = tmp_path / "imported"
    with peak_rss() as mem:
        benchmark.pedantic(
            import_logs,
            args=(MAPPINGS_DIR / "import-ocsf-1.3.0.toml", out, [tmp_path / "export"]),
            setup=lambda: shutil.rmtree(out, ignore_errors=True),
            rounds=1,
            iterations=1,
        )
    n = _events(tiny_bench_dataset)
    benchmark.extra_info.update(file_format=as_, events=n, events_per_s=n / benchmark.stats.stats.mean, **mem)
