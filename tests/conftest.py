"""Session fixtures: the tiny config, one generated tiny dataset and one completed tiny run.

Generation (~1 s) and a full run (~5 s) happen at most once per session; every test that
only reads them shares them. Tests must not write into these directories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
    return tmp_path_factory.mktemp("tinyrun")


@pytest.fixture(scope="session")
def tiny_dataset(tiny_config, tiny_run_dir: Path) -> Path:
    """The tiny dataset, generated once with one worker."""
    from simulator.engine import generate

    return generate(tiny_config.sim(), tiny_run_dir / "dataset", workers=1)


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
def tiny_run(tiny_config, tiny_dataset: Path, tiny_run_dir: Path) -> dict[str, Any]:
    """A completed run of every registered detector (plus the oracle) on the tiny dataset.

    The dataset fixture sits where the suite looks for it, so the run reuses it.
    """
    from breachbench.suite import run_suite

    messages: list[str] = []
    result = run_suite(tiny_config, tiny_run_dir, workers=1, log=lambda *a, **k: messages.append(" ".join(map(str, a))))
    assert any("reused" in m for m in messages), f"the run regenerated the session dataset: {messages}"
    return result


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

    return generate(tiny_clean_config, tmp_path_factory.mktemp("tinyclean") / "dataset", workers=1)


@pytest.fixture(scope="session")
def tiny_clean_ds(tiny_clean_dataset: Path):
    """The clean tiny dataset opened bench-side."""
    from breachbench.dataset import Dataset

    return Dataset.open(tiny_clean_dataset)
