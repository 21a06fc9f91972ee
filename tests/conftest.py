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


def _share_the_cores() -> None:
    """Under pytest-xdist, give each worker (and the processes it starts) its share of the cores.

    polars and scikit-learn's OpenMP start a thread per core in every process; with one xdist
    worker per core, each worker's threads fight the others' (OpenMP spins while it waits), which
    made the artefact audit's classifier five times slower. Set before polars or scikit-learn is
    imported; a value the user exported wins.
    """
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not os.environ.get("PYTEST_XDIST_WORKER") or not count:
        return
    threads = str(max(1, (os.cpu_count() or 1) // max(1, int(count))))
    for name in ("POLARS_MAX_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, threads)


_share_the_cores()


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
def tiny_export(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """``tiny_export(fmt, as_)``: the tiny dataset exported as ``fmt`` (``ocsf``, ``ecs``) ``as_`` (``ndjson``, ``parquet``), truth included.

    Each export is made once per test run (the export tests validate it, the import tests read it back);
    tests must not write into it.
    """
    from breachbench.interop.export import export_dataset

    def get(fmt: str, as_: str) -> Path:
        def make(folder: Path) -> Path:
            export_dataset(tiny_dataset, folder / "out", fmt, as_=as_, truth=True)  # type: ignore[arg-type]
            return folder / "out"

        return shared(tmp_path_factory, f"export-{fmt}-{as_}", make)

    return get


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


#: Module fixtures whose tests go first under xdist: the longest work units of the run (the stealth
#: ladder: 44 generated worlds). Started first, they run beside the rest instead of alone at the end.
FIRST = ("ladder",)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, keep the tests that share a module-scoped fixture on one worker; longest first.

    A module fixture (a generated world, a suite run) is built once per worker that runs one of
    its tests, so those tests go together: one group per set of tests linked through the module
    fixtures they use (two fixtures of one module that no test uses together are two groups, which
    two workers can build at once). Tests that use only session fixtures (shared through
    :func:`shared`) or none spread over the workers one by one.

    On a worker, the tests of :data:`FIRST` fixtures, then the other ``slow`` ones, come first in
    the collection (the same order on every worker); with ``--no-loadscope-reorder`` (``make test``)
    xdist hands out the groups in that order, so the longest start first and the short ones fill in.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    uses: dict[int, list[str]] = {}
    for i, item in enumerate(items):
        if item.get_closest_marker("xdist_group"):
            continue
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        keys = sorted(f"{item.module.__name__}:{name}" for name, d in defs.items() if d and d[-1].scope == "module")
        if keys:
            uses[i] = keys
            for k in keys:
                parent[find(k)] = find(keys[0])
    members: dict[str, list[str]] = {}
    for k in list(parent):
        members.setdefault(find(k), []).append(k)
    for i, keys in uses.items():
        items[i].add_marker(pytest.mark.xdist_group(min(members[find(keys[0])])))  # a name that does not depend on order
    if os.environ.get("PYTEST_XDIST_WORKER"):
        first = {f"{item.module.__name__}:{name}" for item in items for name in FIRST}

        def rank(i: int) -> int:
            if first & set(uses.get(i, ())):
                return 0
            return 1 if items[i].get_closest_marker("slow") else 2

        order = sorted(range(len(items)), key=rank)  # stable: the collection order within a rank
        items[:] = [items[i] for i in order]


class _GroupIds:
    """Gives each grouped test its ``@group`` node id suffix on an xdist worker, where xdist's own hook did not.

    pytest-xdist's loadgroup marks a test's group by appending ``@group`` to ``item._nodeid``;
    pytest 9 keeps the node id elsewhere (``item._id``), so the suffix never reached the controller
    and every test ran ungrouped (each worker built every module fixture it met). This runs after
    xdist's hook and sets the suffix where it is missing; with a pytest where xdist's works, it
    finds the suffix there and does nothing.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not getattr(config.option, "loadgroup", False):  # set by xdist on its workers only
            return
        for item in items:
            names = sorted(
                {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
            )
            if not names:
                continue
            suffix = "@" + "_".join(names)
            if item.nodeid.endswith(suffix):
                continue
            if hasattr(item, "_id"):
                from _pytest.nodeid import coerce_node_id

                item._id = coerce_node_id(item.nodeid + suffix)
            else:
                item._nodeid = item.nodeid + suffix
            assert item.nodeid.endswith(suffix), item.nodeid


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(_GroupIds(), "breachbench-xdist-group-ids")
