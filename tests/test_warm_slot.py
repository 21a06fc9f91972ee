"""One warm sealed process per detector scores several datasets; each dataset keeps its own limits and row."""

from __future__ import annotations

from pathlib import Path

import pytest

from breachbench import isolation
from breachbench.isolation import run_isolated, run_isolated_many
from breachbench.runner import DetectorRun


@pytest.fixture
def in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slots score their datasets in the order given (they draw a random one: see the last tests)."""
    monkeypatch.setattr(isolation, "_order", lambda n: list(range(n)))


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
        ("SecondSleeps", "TIMEOUT", 6, 4096),  # the others take about 1 s each (the first with its start)
        ("SecondHogs", "OOM", 300, 1200),
    ],
)
def test_a_dataset_that_fails_spoils_nothing_else(
    tiny_dataset: Path, clean: DetectorRun, name: str, status: str, timeout_s: int, memory_mb: int, in_order: None
) -> None:
    seen: list[int] = []
    runs = run_isolated_many(  # in the order given (in_order): the second dataset is the one the process scores second
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


def test_a_detector_that_closes_the_wake_pipes_still_gets_every_bucket(tiny_dataset: Path, clean: DetectorRun) -> None:
    """The pipes only wake the two sides: a child without them is served when the bench looks anyway (every 50 ms)."""
    runs = run_isolated_many("warm_detectors:ClosesPipes", [tiny_dataset] * 2, timeout_s=300, memory_mb=4096)
    assert [r.status for r in runs] == ["OK", "OK"], [(r.status, r.error) for r in runs]
    assert all(r.alerts.equals(clean.alerts) for r in runs)


def test_a_detector_that_floods_the_wake_pipe_still_meets_its_time_limit(tiny_dataset: Path) -> None:
    """A child that floods its wake pipe with bytes that are no message still gets its TIMEOUT: the bench takes them as
    "look now" and nothing more (read as length-prefixed messages, they would hang it), and not for long."""
    import resource

    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731 - the bench's own CPU seconds
    before = cpu()
    runs = run_isolated_many("warm_detectors:FloodsPipes", [tiny_dataset], timeout_s=4, memory_mb=4096)
    assert [r.status for r in runs] == ["TIMEOUT"], [(r.status, r.error) for r in runs]
    # and the bench stops listening to a pipe that wakes it for nothing: it looks by the clock instead of spinning (it
    # once spent 3.8 s of CPU in those 4 s)
    assert cpu() - before < 2.0, cpu() - before


def test_one_process_scores_every_dataset(tiny_dataset: Path, clean: DetectorRun, in_order: None) -> None:
    """SecondRaises raises on the second dataset its process scores: the third is the process's third (no restart after an exception)."""
    runs = run_isolated_many("warm_detectors:SecondRaises", [tiny_dataset] * 4, timeout_s=300, memory_mb=4096)
    assert [r.status for r in runs] == ["OK", "ERROR", "OK", "OK"]
    assert "second dataset" in (runs[1].error or "")
    assert all(r.alerts.equals(clean.alerts) for r in (runs[0], runs[2], runs[3]))


def test_the_slot_scores_the_datasets_in_an_order_it_cannot_know(tiny_dataset: Path, clean: DetectorRun, monkeypatch) -> None:
    """A plugin that counts the datasets its process has seen learns nothing: the order is drawn at random for each slot
    (else the k-th dataset is the k-th entry of a published config, and so its scenario); rows come back in the order given.
    """
    runs = run_isolated_many("warm_detectors:SecondRaises", [tiny_dataset] * 4, timeout_s=300, memory_mb=4096)
    assert sorted(r.status for r in runs) == ["ERROR", "OK", "OK", "OK"]
    assert all(r.alerts.equals(clean.alerts) for r in runs if r.status == "OK")
    # in a known order (reversed), the process's second dataset is the caller's third, and on_done says so
    monkeypatch.setattr(isolation, "_order", lambda n: list(range(n))[::-1])
    seen: list[int] = []
    runs = run_isolated_many(
        "warm_detectors:SecondRaises", [tiny_dataset] * 4, timeout_s=300, memory_mb=4096, on_done=lambda i, _: seen.append(i)
    )
    assert [r.status for r in runs] == ["OK", "OK", "ERROR", "OK"]
    assert seen == [3, 2, 1, 0]
    monkeypatch.undo()
    assert len({tuple(isolation._order(8)) for _ in range(10)}) > 1  # ten draws of 8! orders: one ten times is fixed


def test_two_detectors_at_once_give_the_same_alerts(tiny_config, tiny_run, tiny_run_dir: Path, tmp_path: Path) -> None:
    """--workers 2 runs two detectors' slots at once (each supervised in its own process): same alerts and scores as one at a time."""
    import hashlib
    import shutil

    from breachbench.suite import run_suite

    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir / "dataset", out / "dataset")
    dets = ["unissued-token-v1", "random", "stat-own-history-v1", "null"]
    cfg = tiny_config.model_copy(update={"detection": tiny_config.detection.model_copy(update={"detectors": dets})})
    res = run_suite(cfg, out, workers=2, log=lambda *a, **k: None, reuse=False)
    rows = {r["detector"]: r for r in res["rows"]}
    session = {r["detector"]: r for r in tiny_run["rows"]}
    for det in dets:
        assert rows[det]["status"] == "OK", rows[det]["error"]
        a, b = (hashlib.sha256((d / "alerts" / f"{det}.parquet").read_bytes()).hexdigest() for d in (out, tiny_run_dir))
        assert a == b, det
        assert (
            rows[det]["detection_score"] == session[det]["detection_score"] and rows[det]["op_score"] == session[det]["op_score"]
        )


def test_a_finished_slot_is_set_aside_whole_or_removed(
    tiny_dataset: Path, clean: DetectorRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``spent``, a finished slot's folder (views of hard links) waits there to be removed with the others; a slot
    whose copies pass the limit, or one without the kernel's restriction, is removed at once. The rows are the same."""
    import os
    import tempfile

    from breachbench import isolation, sealing

    spent = Path(tempfile.mkdtemp(prefix=f"bb-det-{os.getpid()}-spent-"))
    try:
        runs = run_isolated_many("unissued-token-v1", [tiny_dataset], timeout_s=300, memory_mb=4096, spent=spent)
        assert runs[0].status == "OK" and runs[0].alerts.equals(clean.alerts)
        kept = list(spent.iterdir())
        if sealing.landlock_abi() >= 1:
            (slot,) = kept
            view = sealing.SealedSlot(slot / "d0").view
            assert (view / "manifest.json").is_file() and list(view.glob("logs/*/date=*/*.parquet"))
            assert not list(slot.rglob("truth"))  # only what the detector was shown
        else:
            assert kept == []  # views of copies are not kept
        monkeypatch.setattr(isolation, "SPENT_MAX_BYTES", 0)  # the manifest and staff tables are copies: past the limit
        before = set(spent.iterdir())
        runs = run_isolated_many("unissued-token-v1", [tiny_dataset], timeout_s=300, memory_mb=4096, spent=spent)
        assert runs[0].status == "OK" and set(spent.iterdir()) == before
    finally:
        sealing.unseal(sealing.SealedSlot(spent))
    assert list(Path(tempfile.gettempdir()).glob(f"bb-det-{os.getpid()}-*")) == []


def test_the_process_after_a_failure_writes_only_into_its_own_datasets_folders(
    tiny_dataset: Path, clean: DetectorRun, in_order: None
) -> None:
    runs = run_isolated_many("warm_detectors:WritesIntoAnEarlierFolder", [tiny_dataset] * 2, timeout_s=300, memory_mb=4096)
    assert [r.status for r in runs] == ["ERROR", "OK"], [(r.status, r.error) for r in runs]
    assert "died" in (runs[0].error or "") and runs[1].alerts.equals(clean.alerts), runs[1].error


def test_the_alerts_a_slot_keeps_over_its_datasets_stay_within_its_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each dataset's alerts are bounded on their own, and the bench keeps every dataset's until the slot is done: a red
    team's plugin stayed within every per-dataset bound and had the bench hold 120 MiB more per dataset, past the
    detector's memory limit. The dataset whose alerts would take the kept total past the limit is an ERROR row."""
    import types

    import polars as pl

    sizes = {0: 0.4, 1: 0.4, 2: 0.4}  # MiB of alerts per dataset, against a limit of 1 MiB

    def read(run: DetectorRun, slot: object, rv: object, committed: object, **_: object) -> None:
        n = int(sizes[int(run.detector)] * 2**20 / 16)
        run.alerts = pl.DataFrame({"a": pl.arange(0, n, eager=True, dtype=pl.Int64), "b": pl.zeros(n, pl.Float64, eager=True)})

    monkeypatch.setattr(isolation, "_read_child", read)
    done: list[int] = []
    sup = types.SimpleNamespace(
        runs=[DetectorRun(str(i)) for i in range(3)],
        plan=types.SimpleNamespace(scratch="/nonexistent"),
        reveals=[None] * 3,
        committed={},
        memory_mb=1,
        timeout_s=10.0,
        held=0,
        clocks={},
        on_done=lambda i, _run: done.append(i),
        _release=lambda i: None,
    )
    for i in range(3):
        isolation._Supervisor._finish(sup, i, 0)
    assert [r.status for r in sup.runs] == ["OK", "OK", "ERROR"] and done == [0, 1, 2]
    assert "memory limit (1 MiB)" in (sup.runs[2].error or "") and sup.runs[2].alerts.height == 0
    assert sup.held == sup.runs[0].alerts.estimated_size() + sup.runs[1].alerts.estimated_size() <= 2**20
