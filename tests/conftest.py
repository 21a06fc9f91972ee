"""Session fixtures: the tiny config, one generated tiny dataset and one completed tiny run.

Generation (~1 s) and a full run (~5 s) happen at most once per session; every test that
only reads them shares them. Tests must not write into these directories.

Under pytest-xdist (``make test`` runs ``-n auto``) the expensive ones are built once for the
whole run, not once per worker: the first worker that needs one builds it under a lock in the
run's shared temp folder, the others wait and reuse it (see :func:`shared`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def shared(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Any]) -> Any:
    """``make(folder)`` once per test run, in a fresh ``folder``; its (picklable) value is shared by every xdist worker.

    Without xdist this is ``make(tmp_path_factory.mktemp(name))``. Under xdist the folder lies
    in the run's base temp folder, which all workers share; the first worker to ask builds it
    while holding a lock and pickles the value beside it, the others wait on the lock and load
    the pickle. A failed build leaves nothing, so the next worker that asks tries again.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent
    folder, value = root / f"shared-{name}", root / f"shared-{name}.pickle"
    with _flock(root / f"shared-{name}.lock"):
        if value.is_file():
            return pickle.loads(value.read_bytes())
        if folder.exists():  # a worker failed half-way
            import shutil

            shutil.rmtree(folder)
        folder.mkdir()
        result = make(folder)
        value.write_bytes(pickle.dumps(result))
        return result


REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = REPO_ROOT / "configs" / "tiny.toml"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the directory holding pyproject.toml)."""
    assert (REPO_ROOT / "pyproject.toml").is_file()
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_config_path() -> Path:
    """Path of configs/tiny.toml."""
    return TINY


@pytest.fixture(scope="session")
def tiny_config():
    """The validated tiny bench config."""
    from breachbench.config import load_config

    return load_config(TINY)


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the session's tiny run; its dataset lives in ``dataset/`` below it."""
    return shared(tmp_path_factory, "tinyrun", lambda folder: folder)


@pytest.fixture(scope="session")
def tiny_dataset(tiny_config, tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset, generated once with one worker."""
    from simulator.engine import generate

    return shared(tmp_path_factory, "tinydataset", lambda _: generate(tiny_config.sim(), tiny_run_dir / "dataset", workers=1))


@pytest.fixture(scope="session")
def tiny_ds(tiny_dataset: Path):
    """The tiny dataset opened bench-side."""
    from breachbench.dataset import Dataset

    return Dataset.open(tiny_dataset)


@pytest.fixture(scope="session")
def tiny_truth(tiny_ds):
    """Scoring truth of the tiny dataset."""
    from breachbench.scoring import Truth

    return Truth.of(tiny_ds)


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tiny_dataset: Path, tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A completed run of every registered detector (plus the oracle) on the tiny dataset.

    The dataset fixture sits where the suite looks for it, so the run reuses it.
    """
    from breachbench.suite import run_suite

    def make(_: Path) -> dict[str, Any]:
        messages: list[str] = []
        result = run_suite(tiny_config, tiny_run_dir, workers=1, log=lambda *a, **k: messages.append(" ".join(map(str, a))))
        assert any("reused" in m for m in messages), f"the run regenerated the session dataset: {messages}"
        return result

    return shared(tmp_path_factory, "tinyrunresult", make)


@pytest.fixture(scope="session")
def tiny_rows(tiny_run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Result rows of the tiny run by detector id."""
    return {row["detector"]: row for row in tiny_run["rows"]}


@pytest.fixture(scope="session")
def tiny_logs(tiny_dataset: Path):
    """All gateway and auth rows of the tiny dataset, with the partition date of each file."""
    import datetime as dt

    import polars as pl

    from simulator import layout

    out = {}
    for stream in ("gateway", "auth"):
        frames = []
        for day_dir in sorted((tiny_dataset / "logs" / stream).iterdir()):
            day = dt.date.fromisoformat(day_dir.name.removeprefix("date="))
            for f in layout.log_files(tiny_dataset, stream, [day]):
                frames.append(pl.read_parquet(f).with_columns(partition=pl.lit(day, pl.Date)))
        out[stream] = pl.concat(frames)
    return out


@pytest.fixture(scope="session")
def tiny_clean_config(tiny_config):
    """The tiny generation config with perfect collection (no missing, duplicated or late rows)."""
    sim = tiny_config.sim()
    perfect = {"missing_rate": 0.0, "duplicate_rate": 0.0, "late_rate": 0.0}
    return sim.model_copy(update={"logs": sim.logs.model_copy(update=perfect)})


@pytest.fixture(scope="session")
def tiny_clean_dataset(tiny_clean_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset with clean logs: same seed, so the same rows and event ids as ``tiny_dataset`` before its faults."""
    from simulator.engine import generate

    return shared(tmp_path_factory, "tinyclean", lambda folder: generate(tiny_clean_config, folder / "dataset", workers=1))


@pytest.fixture(scope="session")
def tiny_clean_ds(tiny_clean_dataset: Path):
    """The clean tiny dataset opened bench-side."""
    from breachbench.dataset import Dataset

    return Dataset.open(tiny_clean_dataset)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, keep the tests that share a module-scoped fixture on one worker.

    A module fixture (a generated world, a suite run) is built once per worker that runs one of
    its tests, so those tests go together (group: the module); tests that use only session
    fixtures (shared through :func:`shared`) or none spread over the workers one by one.
    """
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(d and d[-1].scope == "module" for d in defs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
