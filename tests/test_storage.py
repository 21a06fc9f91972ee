"""Datasets at fsspec URLs (simulator/storage.py): the same bytes as at a path, the manifest last, nothing left on a failure."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from breachbench.dataset import Dataset, DatasetError
from simulator.engine import generate
from simulator.storage import StorageError, Store

REPO = Path(__file__).resolve().parent.parent
CLI_ARGS = ("--set", "world.customers=1000", "--set", "world.employees=100", "--set", "time.end=2025-04-11")
CLI_ARGS += ("--set", "time.warmup_days=3")


@pytest.fixture(scope="module")
def small(tiny_config):
    """The tiny world, smaller: 1,000 customers, 100 employees, 10 days (about 2 s to generate)."""
    cfg = tiny_config.sim()
    return cfg.model_copy(
        update={
            "time": cfg.time.model_copy(update={"end": dt.date(2025, 4, 11), "warmup_days": 3}),
            "world": cfg.world.model_copy(update={"customers": 1000, "employees": 100}),
        }
    )


@pytest.fixture(scope="module")
def local(small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small dataset at a local path (the reference bytes)."""
    return generate(small, tmp_path_factory.mktemp("storage") / "local", workers=1)


@pytest.fixture
def mem() -> Iterator[str]:
    """A fresh ``memory://`` prefix, removed afterwards (the memory file system is global to the process)."""
    prefix = f"/bb-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{prefix}"
    fs = fsspec.filesystem("memory")
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)


def local_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def url_hashes(url: str) -> dict[str, str]:
    store = Store.of(url)
    return {
        f[len(store.root) + 1 :]: hashlib.sha256(store.fs.cat_file(f)).hexdigest()
        for f in store.fs.find(store.root)
        if store.fs.isfile(f)
    }


def test_memory_url_same_bytes_and_rows(small, local: Path, mem: str) -> None:
    assert generate(small, mem, workers=1) == mem
    assert url_hashes(mem) == local_hashes(local)  # every file, the manifest included
    remote, here = Dataset.open(mem), Dataset.open(local)
    assert remote.store is not None and remote.manifest == here.manifest
    assert remote.scan("gateway").collect().equals(here.scan("gateway").collect())
    assert remote.scan("gateway").collect().height > 0
    assert remote.truth("malicious_events").equals(here.truth("malicious_events"))
    assert remote.event_count(remote.scored) == here.event_count(here.scored)
    with pytest.raises(DatasetError, match="detector views need a local dataset"):
        remote.view(remote.scored[0])


def test_file_url_is_the_local_path(small, local: Path, tmp_path: Path) -> None:
    out = generate(small, f"file://{tmp_path}/ds", workers=1)
    assert out == tmp_path / "ds"
    assert local_hashes(out) == local_hashes(local)
    assert Dataset.open(f"file://{tmp_path}/ds").scan("gateway").collect().equals(Dataset.open(local).scan("gateway").collect())


@pytest.mark.parametrize("error", [ConnectionError, KeyboardInterrupt], ids=["error", "ctrl-c"])
def test_failed_upload_leaves_nothing(small, mem: str, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]) -> None:
    calls = {"n": 0}
    real = MemoryFileSystem.put_file

    def flaky(self, lpath, rpath, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise error("upload failed (simulated)")
        return real(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "put_file", flaky)
    with pytest.raises(error, match="simulated"):
        generate(small, mem, workers=1)
    assert calls["n"] == 3
    store = Store.of(mem)
    assert store.manifest() is None and not store.fs.exists(store.root)  # the partial upload is removed
    with pytest.raises(DatasetError, match=f"{mem}: incomplete or not a dataset"):
        Dataset.open(mem)


def test_partial_upload_is_refused(local: Path, mem: str) -> None:
    """What a killed upload leaves (files, no manifest) is no dataset, and --force does not replace it."""
    store = Store.of(mem)
    part = next(p for p in local.rglob("*.parquet"))
    store.fs.put_file(str(part), store.path(part.relative_to(local).as_posix()))
    with pytest.raises(DatasetError, match=f"{mem}: incomplete or not a dataset"):
        Dataset.open(mem)
    with pytest.raises(StorageError, match="not empty; pass --force"):
        store.check_replace(force=False)
    with pytest.raises(StorageError, match="not a dataset written by breachbench"):
        store.check_replace(force=True)


def test_overwrite_needs_force(small, local: Path, mem: str) -> None:
    generate(small, mem, workers=1, only="world")
    with pytest.raises(StorageError, match=f"--out: {mem} exists and is not empty; pass --force"):
        generate(small, mem, workers=1)
    assert Store.of(mem).manifest()["only"] == "world"  # untouched
    generate(small, mem, workers=1, force=True)
    assert url_hashes(mem) == local_hashes(local)  # the world-only dataset's files are gone


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "breachbench", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_cli_generate_to_url(local: Path, tmp_path: Path) -> None:
    proc = cli("generate", REPO / "configs" / "tiny.toml", "--out", f"file://{tmp_path}/ds", *CLI_ARGS)
    assert proc.returncode == 0, proc.stderr
    assert local_hashes(tmp_path / "ds") == local_hashes(local)


def test_cli_unknown_scheme() -> None:
    line = one_line_error(cli("generate", REPO / "configs" / "tiny.toml", "--out", "nosuch://bucket/ds"))
    assert "nosuch://bucket/ds" in line and "unknown storage scheme 'nosuch'" in line


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_cli_missing_backend() -> None:
    line = one_line_error(cli("generate", REPO / "configs" / "tiny.toml", "--out", "gs://bucket/ds"))
    assert "gs://bucket/ds" in line and "gcsfs" in line
