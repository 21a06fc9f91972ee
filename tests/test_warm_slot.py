"""One warm sealed process per detector scores several datasets; each dataset keeps its own limits and row."""

from __future__ import annotations

from pathlib import Path

import pytest

from breachbench.isolation import run_isolated, run_isolated_many
from breachbench.runner import DetectorRun


@pytest.fixture(scope="module")
def clean(tiny_dataset: Path) -> DetectorRun:
    """The base rule on the tiny dataset, alone in its own slot."""
    r = run_isolated("unissued-token-v1", tiny_dataset, timeout_s=300, memory_mb=4096)
    assert r.status == "OK" and r.alerts.height > 0
    return r


@pytest.mark.parametrize(
    ("name", "status", "timeout_s", "memory_mb"),
    [
        ("SecondRaises", "ERROR", 300, 4096),
        ("SecondWrongSchema", "ERROR", 300, 4096),
        ("SecondExits", "ERROR", 300, 4096),
        ("SecondSleeps", "TIMEOUT", 15, 4096),
        ("SecondHogs", "OOM", 300, 1200),
    ],
)
def test_a_dataset_that_fails_spoils_nothing_else(
    tiny_dataset: Path, clean: DetectorRun, name: str, status: str, timeout_s: int, memory_mb: int
) -> None:
    seen: list[int] = []
    runs = run_isolated_many(
        f"warm_detectors:{name}",
        [tiny_dataset] * 3,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        on_done=lambda i, _: seen.append(i),
    )
    assert [r.status for r in runs] == ["OK", status, "OK"], [(r.status, r.error) for r in runs]
    assert seen == [0, 1, 2]
    assert runs[1].alerts.height == 0 and runs[1].error
    for r in (runs[0], runs[2]):  # before and after the failure: the rows of a clean run
        assert r.alerts.equals(clean.alerts)
        assert r.version == clean.version


def test_one_process_scores_every_dataset(tiny_dataset: Path, clean: DetectorRun) -> None:
    """SecondRaises raises on the second dataset its process scores: the third is the process's third (no restart after an exception)."""
    runs = run_isolated_many("warm_detectors:SecondRaises", [tiny_dataset] * 4, timeout_s=300, memory_mb=4096)
    assert [r.status for r in runs] == ["OK", "ERROR", "OK", "OK"]
    assert "second dataset" in (runs[1].error or "")
    assert all(r.alerts.equals(clean.alerts) for r in (runs[0], runs[2], runs[3]))
