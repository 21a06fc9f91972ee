"""A benchmark run end to end: the grid of datasets, detectors, anchors, scores and reports.

The grid is every test seed (``suite.seeds``, or the top-level seed) times every scenario
entry of the config: each point is its own dataset with that one scenario, so per-scenario
metrics never mix. With one seed and at most one scenario the dataset is ``OUT/dataset``;
otherwise ``OUT/datasets/seed<S>-<i>``. A dataset whose manifest matches is reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breachbench import fstree
from breachbench.chance import actor_class_unions, chance_draws_by_kind, chance_lines
from breachbench.config import BenchConfig, ConfigError
from breachbench.dataset import Dataset
from breachbench.isolation import run_isolated_many, shared_features
from breachbench.report import SCHEMA_VERSION, write_results
from breachbench.reuse import detector_fingerprint, reusable
from breachbench.runner import (
    ORACLE,
    DetectorRun,
    detector_text,
    oracle_alerts,
    preflight_detectors,
    rate,
    resolve_detectors,
    run_detector,
    tuned_prototype,
)
from breachbench.safety import STAGING, begin_run_outputs, our_results, publish_run_outputs, sweep_scratch
from breachbench.scoring import (
    DetectionParts,
    Truth,
    above_chance,
    cost_profiles,
    detection_score,
    false_alert_cost,
    op_score,
    profile_names,
    score_alerts,
)
from breachbench.stats import METRICS, aggregate, bootstrap, headline, same_results, split_half
from breachbench.verify import alerts_hashes, check_dataset
from simulator import layout
from simulator.config import ScenarioSpec
from simulator.engine import DATA_VERSION, config_hash, generate, package_versions, polars_threads
from simulator.plugins import safe_id


@dataclass
class GridPoint:
    """One dataset of the grid."""

    seed: int
    index: int  # scenario entry, -1 when the config has none
    scenario: str  # the entry's label (default: its id), or "none"
    label: str
    path: Path
    tuning: bool = False


def ensure_dataset(
    cfg: BenchConfig,
    path: Path,
    *,
    workers: int,
    progress: Callable[[str, int, int], None] | None = None,
    verify: bool = False,
    pool: Callable[[], Any] | None = None,
) -> tuple[Dataset, bool]:
    """Reuse the dataset at ``path`` when its manifest matches the config, else (re)generate it.

    A dataset is reused only when its files match its manifest (sizes; SHA-256 with ``verify``).
    ``pool``: called for an open executor to generate on (see :func:`simulator.engine.generate`).
    Returns the dataset and whether it was reused.

    Raises:
        VerifyError: the dataset at ``path`` matches the config but not its own manifest.
    """
    sim = cfg.sim()
    manifest = path / layout.MANIFEST
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        if m.get("config_hash") == config_hash(sim) and m.get("data_version") == DATA_VERSION and not m.get("only"):
            check_dataset(path, full=verify)
            return Dataset.open(path), True
    generate(
        sim,
        path,
        workers=workers,
        force=True,
        progress=progress,
        executor=cfg.execution.executor,
        scheduler=cfg.execution.scheduler,
        pool=pool() if pool is not None else None,
    )
    return Dataset.open(path), False


SECRET_FILE = "secret"


def sealed_seeds(cfg: BenchConfig, out: Path) -> BenchConfig:
    """``cfg`` with the secret its datasets' seeds are mixed with: its own ``secret`` when it sets one, else, with
    ``suite.seal_seeds``, the run's (``OUT/secret``, made now when absent); without either, ``cfg`` as it is.

    A sealed detector knows the config and could guess the seeds, but not the secret, so it cannot
    generate the datasets and their truth again. Keeping the secret in ``out`` keeps a run's
    datasets reusable by later runs into it (``--detectors``); copying it into another folder
    before a run there gives the same datasets.

    Raises:
        ConfigError: ``OUT/secret`` is not 64 hex digits.
    """
    if cfg.secret or not cfg.suite.seal_seeds:
        return cfg
    path = out / SECRET_FILE
    if not path.exists():
        import secrets

        out.mkdir(parents=True, exist_ok=True)
        part = out / f".{SECRET_FILE}.{os.getpid()}"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # whole or not at all; a secret made meanwhile wins
            os.link(part, path)
        part.unlink()
    try:
        text = path.read_text(encoding="ascii").strip() if path.is_file() and not path.is_symlink() else None
    except (OSError, UnicodeDecodeError):
        text = None
    if text is None or len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(
            f"{path}: not a run secret (64 lowercase hex digits on one line); remove it to have a new one made "
            "(the run's datasets are then generated again), or set suite.seal_seeds = false"
        )
    return cfg.model_copy(update={"secret": text})


def grid(cfg: BenchConfig, out: Path) -> list[GridPoint]:
    """The datasets of a run: test seeds x scenario entries, then tuning seeds x entries."""
    entries: list[tuple[int, ScenarioSpec | None]] = [*enumerate(cfg.scenarios)] or [(-1, None)]
    single = len(cfg.test_seeds) == 1 and len(entries) == 1 and not cfg.suite.tuning_seeds
    points = []
    for tuning, seeds in ((False, cfg.test_seeds), (True, cfg.suite.tuning_seeds)):
        for seed in seeds:
            for i, spec in entries:
                sid = spec.id if spec is not None else "none"
                label = f"{'tune-' if tuning else ''}seed{seed}-{max(i, 0)}-{sid}"
                path = out / "dataset" if single else out / "datasets" / label
                name = (spec.label or spec.id) if spec is not None else "none"
                points.append(GridPoint(seed, i, name, label, path, tuning))
    return points


def grid_bytes(cfg: BenchConfig, points: list[GridPoint] | None = None) -> int:
    """Upper estimate of the disk space of the grid's datasets (``points``, default every one: test and tuning seeds)."""
    from simulator.engine import estimated_bytes

    return sum(estimated_bytes(_point_config(cfg, p).sim()) for p in (grid(cfg, Path(".")) if points is None else points))


def _check_grid_space(cfg: BenchConfig, out: Path, points: list[GridPoint]) -> None:
    """Refuse a grid whose datasets to generate cannot fit on the disk under ``out``, before the first one."""
    import shutil

    from simulator.errors import SimulationError
    from simulator.units import size_text

    todo = [p for p in points if not (p.path / layout.MANIFEST).is_file()]
    need = grid_bytes(cfg, todo)
    probe = next((q for q in (out, *out.parents) if q.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    if need > free:
        raise SimulationError(
            f"suite: {len(todo)} dataset(s) to generate ({len(cfg.test_seeds) + len(cfg.suite.tuning_seeds)} seed(s) x "
            f"{max(1, len(cfg.scenarios))} scenario entr(ies)) would need about {size_text(need)}, more than the "
            f"{size_text(free)} free on {probe}; fewer seeds or scenarios, a smaller world, or another --out"
        )


def _point_config(cfg: BenchConfig, p: GridPoint) -> BenchConfig:
    """The config of grid point ``p``: its seed and scenario entry; in a sealed run, a secret of its own.

    Derived from the run's secret and the point's label, the secret gives every dataset of a
    sealed run a world of its own: datasets of one seed would otherwise share their world and
    benign traffic, and a slot that reads two of them (one detector scores a run's datasets in
    turn) could take the difference, which is the attack.
    """
    import hashlib

    update: dict[str, Any] = {"seed": p.seed, "scenarios": [cfg.scenarios[p.index]] if p.index >= 0 else []}
    if cfg.secret:
        update["secret"] = hashlib.sha256(f"{cfg.secret}:{p.label}".encode()).hexdigest()
    return cfg.model_copy(update=update)


def chance_bars(chance: dict[str, Any] | None, budget: int | str) -> dict[str, float]:
    """Per scenario: the top of its chance line at ``budget``, the raw score the headline counts from (empty without chance lines)."""
    by_scen = ((chance or {}).get("by_budget", {}).get(str(budget)) or {}).get("by_scenario", {})
    return {s: float(hi) for s, line in by_scen.items() if (hi := (line.get("detection_score_raw") or {}).get("hi")) is not None}


def chance_kinds(chance: dict[str, Any] | None, budget: int | str) -> dict[str, str]:
    """Per scenario: which blind ranking its chance line at ``budget`` is (``any`` or an entity kind; empty without one)."""
    by_scen = ((chance or {}).get("by_budget", {}).get(str(budget)) or {}).get("by_scenario", {})
    return {s: str(line["kind"]) for s, line in by_scen.items() if line.get("kind")}


def _pooled_by_budget(runs: list[dict[str, Any]], k: str, profile: str, chance: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = [r["by_budget"][k] for r in runs]
    n_inc = [len(r["incidents"]) for r in runs]
    false = sum(x["false_alerts_read"] for x in rows)
    buckets = sum(r["overall"]["scored_buckets"] for r in runs)
    detected = sum((x["recall_at_k"] or 0) * n for x, n in zip(rows, n_inc, strict=True))
    per_scen: dict[str, DetectionParts] = {}
    for r, x in zip(runs, rows, strict=True):
        per_scen[r["scenario"]] = per_scen.get(r["scenario"], DetectionParts()).plus(DetectionParts(*x["parts"]))
    allp = DetectionParts()
    for p in per_scen.values():
        allp = allp.plus(p)
    ops = {}
    for name in profile_names():
        before, total, perfect = (sum(x["harm_by_profile"][name][j] for x in rows) for j in range(3))
        ops[name] = op_score(before, total, perfect, false, false_alert_cost(name)) if sum(n_inc) else None
    v_total = sum(r["overall"].get("victim_units", 0) for r in runs)
    bars = chance_bars(chance, k)
    return {
        "detection_score": detection_score(per_scen, bars),
        "recall_at_k": detected / sum(n_inc) if sum(n_inc) else None,
        "timeliness": allp.components()["timeliness"],
        "exposure_prevented": allp.components()["prevented"],
        "false_alerts_per_bucket": false / buckets if buckets else 0.0,
        "victims_flagged_share": sum(x.get("victims_flagged", 0) for x in rows) / v_total if v_total else None,
        "op_score": ops.get(profile),
        "op_score_profiles": ops,
        "by_scenario": {
            s: {
                "detection_score": above_chance(p.score(), bars.get(s)),
                "detection_score_raw": p.score(),
                **p.components(),
            }
            for s, p in sorted(per_scen.items())
        },
    }


def summarise(
    detector: str,
    runs: list[tuple[GridPoint, DetectorRun, dict[str, Any] | None]],
    cfg: BenchConfig,
    chance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One leaderboard row: status, timings, pooled metrics with intervals, per scenario and budget.

    ``chance`` is the run's chance lines (:func:`breachbench.chance.chance_lines`): detection
    scores count above them.
    """
    bad = [(p, r) for p, r, _ in runs if r.status != "OK"]
    scored = [s | {"seed": p.seed, "scenario": p.scenario} for p, r, s in runs if s is not None]
    fit_s = sum(r.fit_s for _, r, _ in runs)
    score_s = sum(r.score_s for _, r, _ in runs)
    events = sum(r.events for _, r, _ in runs)
    row: dict[str, Any] = {
        "detector": detector,
        "version": _text(next((r.version for _, r, _ in runs if r.version), None)),
        "status": bad[0][1].status if bad else "OK",
        "error": _text(f"{bad[0][0].label}: {bad[0][1].error}") if bad else None,
        "fit_s": round(fit_s, 4),
        "score_s": round(score_s, 4),
        "events_per_s": round(per_s, 1) if events and (per_s := rate(events, score_s)) is not None else None,
        "peak_mb": round(max((r.peak_mb or 0.0) for _, r, _ in runs), 1) if any(r.peak_mb for _, r, _ in runs) else None,
        "runs_ok": len(scored),
        "runs_total": len(runs),
    }
    if bad:
        row.update({m: None for m in METRICS})
        row.update(detection_score=None, ci={})
    else:
        _pooled_metrics(row, scored, cfg, chance)
    row["runs"] = [_run_entry(p, r, s) for p, r, s in runs]
    return row


def _pooled_metrics(row: dict[str, Any], scored: list[dict[str, Any]], cfg: BenchConfig, chance: dict[str, Any] | None) -> None:
    """Add to ``row`` the metrics pooled over every scored run: points, intervals, per scenario, per budget, incidents."""
    profile = cfg.detection.cost_profile
    point = aggregate(scored, profile)
    row.update(point)
    row["prevalence"] = sum(s["overall"]["prevalence"] for s in scored) / len(scored)
    row["ci"] = bootstrap(scored, profile, cfg.suite.bootstrap, cfg.suite.confidence)
    head = headline(
        [i | {"scenario": s["scenario"], "seed": s["seed"]} for s in scored for i in s["incidents"]],  # seed: the dataset
        cfg.suite.bootstrap,
        cfg.suite.confidence,
        chance=chance_bars(chance, cfg.detection.budget),
    )
    row["detection_score"] = head["point"]
    row["ci"]["detection_score"] = head["ci"]
    row["by_scenario"] = {
        sid: {"point": aggregate(group, profile), "ci": bootstrap(group, profile, cfg.suite.bootstrap, cfg.suite.confidence)}
        for sid in sorted({s["scenario"] for s in scored})
        if (group := [s for s in scored if s["scenario"] == sid])
    }
    for sid, h in head["by_scenario"].items():
        if sid in row["by_scenario"]:
            row["by_scenario"][sid]["point"]["detection_score"] = h
            row["by_scenario"][sid]["point"]["detection_score_raw"] = head["by_scenario_raw"][sid]
    row["by_budget"] = {k: _pooled_by_budget(scored, k, profile, chance) for k in scored[0]["by_budget"]}
    row["incidents"] = [i | {"seed": s["seed"], "scenario": s["scenario"]} for s in scored for i in s["incidents"]]


def _text(value: str | None) -> str | None:
    """A detector's own text (error, note, version) as rows keep it: one printable line (:func:`detector_text`)."""
    return None if value is None else detector_text(value)


def _run_entry(p: GridPoint, r: DetectorRun, s: dict[str, Any] | None) -> dict[str, Any]:
    """One dataset's entry of a row's ``runs``: status, timings and, when scored, its metrics."""
    return {
        "dataset": p.label,
        "seed": p.seed,
        "scenario": p.scenario,
        "status": r.status,
        "error": _text(r.error),
        "fit_s": round(r.fit_s, 4),
        "score_s": round(r.score_s, 4),
        "peak_mb": None if r.peak_mb is None else round(r.peak_mb, 1),
        **({"note": _text(r.note)} if r.note else {}),
        **(
            {"overall": s["overall"], "by_budget": s["by_budget"], "incidents": s["incidents"], "curves": s["curves"]}
            if s
            else {}
        ),
    }


def headline_summary(rows: list[dict[str, Any]], top: int = 3) -> dict[str, Any]:
    """The detection score's leaders (the oracle and ``null``, which alerts on nothing, aside, and each detector once:
    rows marked ``same_results_as`` another are left out) and the width of their intervals."""
    ok = [
        r
        for r in rows
        if r["status"] == "OK"
        and r["detector"] not in (ORACLE, "null")
        and r.get("detection_score") is not None
        and not r.get("same_results_as")  # the same detector once more (see breachbench.stats.same_results)
    ]
    best = sorted(ok, key=lambda r: (-r["detection_score"], r["detector"]))[:top]
    widths = []
    for r in best:
        lo, hi = r["ci"].get("detection_score", [None, None])
        widths.append(None if lo is None or hi is None else hi - lo)
    return {
        "metric": "detection_score",
        "top": [r["detector"] for r in best],
        "widths": widths,
        "max_width": max((w for w in widths if w is not None), default=None),
    }


def _detector_pool(cfg: BenchConfig, ids: list[str], reused: dict[str, Any], workers: int) -> tuple[Any, dict[str, Any]]:
    """A pool that runs the sealed slots of ``workers`` detectors at once, and the detectors it will run (None: one at a time).

    Each pool process supervises one detector's warm slot (:func:`breachbench.isolation.run_isolated_many`)
    and is the child subreaper of that slot alone, so the limits and the clean-up of one slot never
    see another slot's processes. Results are read in the configured order: the output does not
    depend on which detector finishes first. With ``execution.executor = "dask"`` the slots are
    tasks on the Dask cluster (:class:`_ClusterPool`), whatever ``workers`` is.
    """
    todo = [d for d in ids if d not in reused]
    if not cfg.detection.isolate or not todo:
        return None, {}
    if cfg.execution.executor == "dask":
        return _ClusterPool(workers, cfg.execution.scheduler), dict.fromkeys(todo)
    if workers < 2 or len(todo) < 2:
        return None, {}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from simulator import outdir

    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=outdir.die_with_parent,
        initargs=(os.getpid(),),
    )
    return pool, dict.fromkeys(todo)


class _ClusterPool:
    """The detector stage on Dask: each detector's warm sealed slot is one task on a worker.

    A task lost with its worker is run again by the scheduler; its rows come back once, from the
    run that finished, and the bench writes the alerts. The workers must be allowed to start child
    processes (``distributed.worker.daemon: false``): it is set here for our own ``LocalCluster``,
    and must be set on the workers of a cluster joined with ``--scheduler``.
    """

    def __init__(self, workers: int, scheduler: str | None) -> None:
        import dask

        from simulator.engine import check_executor, make_executor

        check_executor("dask", scheduler)  # a missing package: one line
        import distributed  # noqa: F401  (loads its config defaults, before one of them is set below)

        self._stack = contextlib.ExitStack()
        try:
            # (set on a key whose parent is missing, dask's config drops the whole parent on exit: every later
            # cluster in this process would find no distributed.comm settings)
            self._stack.enter_context(dask.config.set({"distributed.worker.daemon": False}))
            self._ex = self._stack.enter_context(make_executor(workers, "dask", scheduler))
        except BaseException:
            self._stack.close()
            raise

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._ex.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        try:
            self._ex.shutdown(wait=wait and not cancel_futures)
        finally:
            self._stack.close()  # the client, and our own cluster with its workers


def _kill_pool(pool: Any) -> None:
    """On an interrupt or error: stop the detector pool without waiting for queued or running slots."""
    import threading
    from concurrent.futures import InvalidStateError

    hook = threading.excepthook  # the pool's manager thread trips over futures already cancelled: keep that quiet
    threading.excepthook = lambda a: None if issubclass(a.exc_type, InvalidStateError) else hook(a)
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.kill()  # its slot's processes die with it (they watch their parent)
    pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Bars:
    """The run's "detect" and "score" progress bars; without a progress display every call does nothing."""

    progress: Any
    detect: Any = None
    score: Any = None

    @classmethod
    def start(cls, progress: Any, detect_total: int, score_total: int) -> _Bars:
        if progress is None:
            return cls(None)
        return cls(progress, progress.add_task("detect", total=detect_total), progress.add_task("score", total=score_total))

    def name(self, det: str) -> None:
        """The bar (or the plain log line) names the detector now running."""
        if self.progress is not None:
            self.progress.update(self.detect, description=f"detect {det}")

    def tick(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.detect)

    def scored(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.score)


@dataclass
class _Run:
    """What the detector loop of :func:`run_suite` reads: the grid, its datasets and truths, the chance lines."""

    cfg: BenchConfig
    out: Path
    points: list[GridPoint]
    datasets: dict[str, Dataset]
    truths: dict[str, Truth]
    chance: dict[str, Any]
    bars: _Bars
    fingerprints: dict[str, Any]
    half_bars: list[dict[str, float]] | None = None  # per half of the test seeds: its datasets' chance bars (split_half)
    chance_key: dict[str, Any] | None = None  # what the chance lines depend on (recorded where results.json holds them exactly)
    rows_key: dict[str, Any] | None = None  # what a reused detector's row depends on besides its alerts (reuse.rows_key)
    rows_then: frozenset[str] = frozenset()  # reused detectors whose earlier rows stand whole (the key matched)
    leak_key: dict[str, Any] | None = None
    leak_then: dict[str, Any] | None = None  # the earlier run's leakage audit, when its key matches
    leak_ahead: Any = None  # the leakage audit running in the detector pool (a future), queued before the slots
    leak_now: dict[str, Any] | None = None  # its result, taken before the pool shuts down
    spent: Path | None = None  # where finished slots' folders wait to be removed together (isolation.set_aside)
    spent_gone: Callable[[], None] = lambda: None  # waits until the spent folder, removed beside the report, is gone
    feats_ahead: dict[str, Any] = field(default_factory=dict)  # dataset label -> its shared feature tables (a future)
    feats_key: str | None = None  # what the shared feature tables depend on besides the datasets (reuse.features_key)
    feats_then: dict[str, dict[str, str]] = field(default_factory=dict)  # the earlier run's verified tables, by label
    feats: dict[str, dict[str, str]] = field(default_factory=dict)  # this run's tables (computed or the earlier ones)
    kept: frozenset[str] = frozenset()  # the reused detectors' alerts files (relative to out), which stay where they are

    def leakage_audit(self) -> dict[str, Any]:
        """The leakage audit of the run's test datasets (:func:`breachbench.audit.leakage_audit`)."""
        from breachbench.audit import leakage_audit

        return leakage_audit(*self._leak_args(), truths=self.truths)

    def _leak_args(self) -> tuple[dict[str, Dataset], dict[str, str], int, str]:
        tests = self.tests
        return (
            {p.label: self.datasets[p.label] for p in tests},
            {p.label: p.scenario for p in tests},
            self.cfg.detection.budget,
            self.cfg.detection.cost_profile,
        )

    @property
    def tests(self) -> list[GridPoint]:
        return [p for p in self.points if not p.tuning]

    @property
    def tuning(self) -> list[Dataset]:
        return [self.datasets[p.label] for p in self.points if p.tuning]

    def rel(self, det: str, p: GridPoint) -> str:
        """Where ``det``'s alerts on ``p`` go, relative to the run's folder (always inside ``alerts/``)."""
        rel = f"alerts/{det}.parquet" if len(self.tests) == 1 else f"alerts/{p.label}/{det}.parquet"
        if not safe_id(det) or "\0" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
            raise ConfigError(
                f"detector {det!r} on {p.label!r}: its alerts file {rel!r} would leave the run's alerts/ folder; "
                "detector ids may not hold '/' or '..', scenario labels may not hold '..', '//' or start with '/'"
            )
        return rel

    def score(self, alerts: Any, p: GridPoint) -> dict[str, Any]:
        """``alerts`` scored against the truth of ``p`` at the run's budgets and cost profile."""
        return score_alerts(
            alerts,
            self.truths[p.label],
            budget=self.cfg.detection.budget,
            profile=self.cfg.detection.cost_profile,
            budgets=tuple(self.cfg.suite.budgets),
        )

    def tick_dataset(self, p: GridPoint) -> None:
        """The detect bar moves on by the scored buckets of ``p``."""
        for _b in self.datasets[p.label].scored:
            self.bars.tick()


def _ensure_datasets(
    cfg: BenchConfig, points: list[GridPoint], *, workers: int, gen_progress: Any, verify: bool, log: Callable[..., None]
) -> dict[str, Dataset]:
    """Every dataset of the grid, reused or generated, in grid order; the generation workers start once, at the first
    dataset to generate, and serve every dataset after it.

    The datasets are made in an order drawn at random for each run (:func:`generation_order`), not in grid order: a
    dataset's files keep the inode numbers and times of their making, and a slot's views are hard links to them, so a
    plugin that ranks its views by inode or modification time would otherwise know each one's place in the published
    grid, and so its scenario (a red-team plugin did, and doubled the best honest detection score).
    """
    from simulator.engine import make_executor

    made: dict[str, Dataset] = {}
    with contextlib.ExitStack() as stack:
        opened: list[Any] = []

        def pool() -> Any:
            if not opened:
                opened.append(stack.enter_context(make_executor(workers, cfg.execution.executor, cfg.execution.scheduler)))
            return opened[0]

        for p in generation_order(points):
            ds, kept = ensure_dataset(
                _point_config(cfg, p), p.path, workers=workers, progress=gen_progress, verify=verify, pool=pool
            )
            made[p.label] = ds
            log(f"dataset {p.label}: {ds.root} ({'reused, manifest matches' if kept else 'generated'})")
    return {p.label: made[p.label] for p in points}


def generation_order(points: list[GridPoint]) -> list[GridPoint]:
    """``points`` in an order drawn at random (from the operating system's randomness, never from a seed)."""
    out = list(points)
    secrets.SystemRandom().shuffle(out)
    return out


def _truths_and_chance(
    cfg: BenchConfig, tests: list[GridPoint], datasets: dict[str, Dataset], workers: int
) -> tuple[dict[str, Truth], dict[str, Any], list[dict[str, float]] | None]:
    """Each test dataset's truth, the run's chance lines at every budget (:func:`breachbench.chance.chance_lines`), and
    the chance bars of each half of the test seeds at the headline budget (:func:`half_bars`; None with one seed).

    A dataset's truth and its chance draws (from its own seed) are computed together, in ``workers``
    threads: polars and numpy's multivariate hypergeometric draws work outside the GIL, and one
    after another they were 11 s of the default run. The lines do not depend on the threads. On the
    way out (an error, Ctrl-C) the datasets not begun are dropped.
    """
    budgets_all = _budgets_all(cfg)
    truths: dict[str, Truth] = {}
    unions: dict[str, tuple[str, ...]] = {}

    def draw(p: GridPoint) -> dict[str, Any]:
        return chance_draws_by_kind(
            truths[p.label],
            budgets_all,
            cfg.suite.chance_draws,
            seed=p.seed,
            profile=cfg.detection.cost_profile,
            unions=unions[p.scenario],
        )

    ex = ThreadPoolExecutor(max_workers=max(1, min(workers, len(tests))), thread_name_prefix="bb-truth")
    try:
        truths = _truths(tests, datasets, ex)
        # the classes a scenario's actors come from, over all of its datasets (the union's line pools over them)
        for s in {p.scenario for p in tests}:
            unions[s] = actor_class_unions(truths[p.label] for p in tests if p.scenario == s)
        done = dict(zip([p.label for p in tests], ex.map(draw, tests), strict=True))
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    lines = chance_lines(done, {p.label: p.scenario for p in tests}, cfg.detection.budget)
    return truths, lines, half_bars(done, tests, cfg.test_seeds, cfg.detection.budget)


def _budgets_all(cfg: BenchConfig) -> list[int]:
    """Every budget the run scores at: the suite's and the headline one."""
    return sorted(set(cfg.suite.budgets) | {cfg.detection.budget})


def _truths(tests: list[GridPoint], datasets: dict[str, Dataset], ex: ThreadPoolExecutor) -> dict[str, Truth]:
    """Each test dataset's truth, computed in the threads of ``ex``."""
    return dict(zip([p.label for p in tests], ex.map(lambda p: Truth.of(datasets[p.label]), tests), strict=True))


def _truths_alone(tests: list[GridPoint], datasets: dict[str, Dataset], workers: int) -> dict[str, Truth]:
    """:func:`_truths` in ``workers`` threads of its own (the chance lines reused); on the way out, as
    :func:`_truths_and_chance`, the datasets not begun are dropped."""
    ex = ThreadPoolExecutor(max_workers=max(1, min(workers, len(tests))), thread_name_prefix="bb-truth")
    try:
        return _truths(tests, datasets, ex)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _exact_in_json(value: Any) -> bool:
    """Whether ``value`` comes back from ``results.json`` as it is (:func:`breachbench.report.finite_json`, then JSON):
    no number that is not finite, no tuple, no key that is not a string."""
    from breachbench.report import finite_json

    try:
        return json.loads(json.dumps(finite_json(value), allow_nan=False)) == value
    except (TypeError, ValueError):
        return False


def half_bars(done: dict[str, Any], tests: list[GridPoint], seeds: list[int], budget: int) -> list[dict[str, float]] | None:
    """Per half of the seeds (as :func:`breachbench.stats.split_half` splits them): the chance bars at ``budget`` of that
    half's datasets alone, pooled as the run's are. A half pools half the incidents, so its blind luck reaches higher
    than the whole run's: scored against the run's bars, a red team's blind detectors got 2.3 to 2.9 in one half, above
    the honest rule-off-hours-bulk-v1's 2.2, and the split-half correlation fell from 0.95 to 0.66."""
    s = sorted(seeds)
    if len(s) < 2:
        return None
    out = []
    for half in (s[0::2], s[1::2]):
        part = {
            p.label: {kind: {budget: by_k[budget]} for kind, by_k in done[p.label].items() if budget in by_k}
            for p in tests
            if p.seed in half
        }
        lines = chance_lines(part, {p.label: p.scenario for p in tests if p.seed in half}, budget)
        out.append(chance_bars(lines, budget))
    return out


def _reusable(run: _Run, ids: list[str], fingerprints: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    """The detectors whose verified alerts in the run's folder can be scored again (:func:`breachbench.reuse.reusable`;
    ``prev``: the folder's results.json, read once)."""
    return reusable(
        run.out,
        {p.label: run.datasets[p.label].manifest["config_hash"] for p in run.points},
        run.cfg.detection.model_dump(mode="json"),
        SCHEMA_VERSION,
        fingerprints,
        {d: {p.label: run.rel(d, p) for p in run.tests} for d in ids},
        prev,
    )


@contextlib.contextmanager
def _features_ahead(run: _Run, todo: list[str], workers: int) -> Iterator[dict[str, Any]]:
    """The shared feature tables of the test datasets, computed in ``workers`` threads while the bench does the rest.

    The bench hands them to the sealed slots (:func:`breachbench.isolation.shared_features`); they took
    10 s of the default run's 20 s between the last dataset and the first detector, one dataset after
    another, beside the truths and the chance lines. Polars works outside the GIL, so threads overlap
    them. Started only when a sealed detector is to run; on the way out (an error, Ctrl-C) the
    datasets not begun are dropped and the ones under way finish.
    """
    if not todo or not run.cfg.detection.isolate:
        yield {}
        return
    ex = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bb-features")
    try:
        ahead: dict[str, Any] = {}
        for p in run.tests:
            if p.label in run.feats_then:  # the earlier run's, verified: not computed again
                ahead[p.label] = Future()
                ahead[p.label].set_result(run.feats_then[p.label])
            else:
                ahead[p.label] = ex.submit(shared_features, run.datasets[p.label].root, run.out / "features")
        yield ahead
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _features_of(run: _Run, p: GridPoint, feats: dict[str, dict[str, str]]) -> dict[str, str]:
    """The shared feature tables of ``p`` into ``feats`` (from :func:`_features_ahead`: computed, or the earlier run's
    verified ones; else computed here): computed by the bench, handed to the sealed slots read-only."""
    if p.label not in feats:
        ahead = run.feats_ahead.get(p.label)
        feats[p.label] = (
            ahead.result() if ahead is not None else shared_features(run.datasets[p.label].root, run.out / "features")
        )
    return feats[p.label]


def _submit_ahead(run: _Run, pool: Any, ahead: dict[str, Any], feats: dict[str, dict[str, str]]) -> None:
    """Start every detector of ``ahead`` in ``pool``: sealed slots of several detectors at once."""
    tests, out = run.tests, run.out
    for p in tests:
        _features_of(run, p, feats)
    for det in ahead:
        ahead[det] = pool.submit(
            run_isolated_many,
            det,
            [run.datasets[p.label].root for p in tests],
            timeout_s=run.cfg.detection.timeout_s,
            memory_mb=run.cfg.detection.memory_mb,
            features=[feats[p.label] for p in tests],
            features_root=out / "features",
            protected=[out],
            tuning=[d.root for d in run.tuning],
            spent=None if isinstance(pool, _ClusterPool) else run.spent,
        )


Runs = list[tuple[GridPoint, DetectorRun, dict[str, Any] | None]]


def _reused_runs(run: _Run, det: str, reused: dict[str, Any]) -> Runs:
    """The runs of a reused detector: its earlier alerts and timings, scored afresh."""
    runs: Runs = []
    earlier = reused["row"]
    for p in run.tests:
        ds = run.datasets[p.label]
        was: dict[str, Any] = next((x for x in earlier.get("runs", []) if x.get("dataset") == p.label), {})
        r = DetectorRun(
            det,
            version=earlier.get("version"),
            alerts=reused["alerts"][p.label],
            fit_s=was.get("fit_s") or 0.0,
            score_s=was.get("score_s") or 0.0,
            peak_mb=was.get("peak_mb"),
            events=ds.event_count(ds.scored),
            note=was.get("note"),
        )
        runs.append((p, r, run.score(r.alerts, p)))
        run.tick_dataset(p)
        run.bars.scored()
    return runs


def _prototype(run: _Run, det: str) -> tuple[Any, str | None]:
    """``det`` tuned on the tuning datasets, in this process (isolated runs tune inside the sealed slot); (prototype, error)."""
    if det != ORACLE and run.tuning and not run.cfg.detection.isolate:
        try:
            return tuned_prototype(det, run.tuning), None
        except Exception as exc:  # a detector's bug is its result
            return None, f"tune: {type(exc).__name__}: {exc}"
    return None, None


def _warm_runs(run: _Run, det: str, proto: Any, ahead: dict[str, Any], feats: dict[str, dict[str, str]]) -> list[DetectorRun]:
    """``det``'s runs from a warm sealed slot: the pool's (``ahead``), or one started here; empty when not isolated."""
    tests = run.tests
    if det in ahead:  # running (or done) in the pool
        warm: list[DetectorRun] = ahead[det].result()
        for p in tests:
            run.tick_dataset(p)
        return warm
    for p in tests:
        _features_of(run, p, feats)

    def done(i: int, _: DetectorRun) -> None:
        run.tick_dataset(tests[i])

    # one warm sealed process scores every dataset in turn (a fresh one after a dataset that kills it)
    return run_isolated_many(
        det,
        [run.datasets[p.label].root for p in tests],
        timeout_s=run.cfg.detection.timeout_s,
        memory_mb=run.cfg.detection.memory_mb,
        prototype=proto,
        features=[feats[p.label] for p in tests],
        features_root=run.out / "features",
        protected=[run.out],
        tuning=[d.root for d in run.tuning],
        on_done=done,
        spent=run.spent,
    )


def _detector_runs(run: _Run, det: str, ahead: dict[str, Any], feats: dict[str, dict[str, str]]) -> Runs:
    """Run (or collect from the pool) ``det`` on every test dataset, score it and write its alerts."""
    proto, proto_err = _prototype(run, det)
    warm: list[DetectorRun] = []
    if det in ahead or (det != ORACLE and not proto_err and run.cfg.detection.isolate):
        warm = _warm_runs(run, det, proto, ahead, feats)
    runs: Runs = []
    for j, p in enumerate(run.tests):
        ds = run.datasets[p.label]
        if det == ORACLE:
            r = DetectorRun(ORACLE, version="1", alerts=oracle_alerts(ds))
        elif proto_err:
            r = DetectorRun(det, status="ERROR", error=proto_err)
        elif warm:
            r = warm[j]
        else:  # in process (isolate = false): the shared feature tables, computed once per dataset bucket
            r = run_detector(
                det, dataclasses.replace(ds, feature_cache=run.out / "features"), on_bucket=run.bars.tick, prototype=proto
            )
        s = run.score(r.alerts, p) if r.status == "OK" else None
        if r.status == "OK":
            target = run.out / STAGING / run.rel(det, p)  # into alerts/ once every detector is done (_report)
            target.parent.mkdir(parents=True, exist_ok=True)
            r.alerts.rechunk().write_parquet(target)  # one chunk: the same bytes however the frame was assembled
        runs.append((p, r, s))
        run.bars.scored()
    return runs


def _detector_row(
    run: _Run, det: str, reused: dict[str, Any], ahead: dict[str, Any], feats: dict[str, dict[str, str]], log: Callable[..., None]
) -> dict[str, Any]:
    """The leaderboard row of ``det`` (or of the oracle): reused alerts re-scored, or a fresh run."""
    started = time.perf_counter()
    fingerprint = {"fingerprint": run.fingerprints.get(det)}
    run.bars.name(det)
    if det in reused and det in run.rows_then:  # the same alerts, truth, chance lines and settings: the same figures
        for p in run.tests:
            run.tick_dataset(p)
            run.bars.scored()
        log(f"detector {det}: reused alerts and scores (nothing they depend on changed)")
        return dict(reused[det]["row"]) | fingerprint | {"reused": True}
    if det in reused:
        row = summarise(det, _reused_runs(run, det, reused[det]), run.cfg, run.chance) | fingerprint | {"reused": True}
        log(f"detector {det}: reused alerts, re-scored on {len(run.tests)} dataset(s) in {time.perf_counter() - started:.1f} s")
        return row
    row = summarise(det, _detector_runs(run, det, ahead, feats), run.cfg, run.chance)
    log(
        f"detector {det}: {row['status']} on {row['runs_ok']}/{row['runs_total']} dataset(s) in {time.perf_counter() - started:.1f} s"
    )
    return row if det == ORACLE else row | fingerprint | {"reused": False}


def run_suite(
    cfg: BenchConfig,
    out: Path,
    *,
    workers: int = 1,
    progress: Any = None,
    gen_progress: Any = None,
    log: Callable[..., None] = print,
    verify: bool = False,
    reuse: bool = True,
) -> dict[str, Any]:
    """Run the whole grid of ``cfg`` into ``out``; returns rows and file paths.

    With ``reuse``, a detector whose alerts an earlier run wrote into ``out`` is not run again
    while nothing it depends on changed (:mod:`breachbench.reuse`); its verified files are
    scored afresh with the rest.
    """
    out = Path(out)
    preflight_detectors(resolve_detectors(cfg.detection.detectors))  # before the first dataset
    sweep_scratch()  # detector scratch of benches killed earlier
    cfg = sealed_seeds(cfg, out)
    points = grid(cfg, out)
    _check_grid_space(cfg, out, points)
    datasets = _ensure_datasets(cfg, points, workers=workers, gen_progress=gen_progress, verify=verify, log=log)
    tests = [p for p in points if not p.tuning]
    ids = resolve_detectors(cfg.detection.detectors)
    fingerprints = {d: detector_fingerprint(d) for d in ids}
    run = _Run(cfg, out, points, datasets, {}, {}, _Bars(None), fingerprints)
    prev = our_results(out / "results.json") if reuse else None  # the earlier run's, read once for all below
    reused = _reusable(run, ids, fingerprints, prev) if reuse else {}
    from breachbench.reuse import (
        bench_fingerprint,
        chance_key,
        features_key,
        leakage_key,
        reusable_chance,
        reusable_features,
        reusable_leakage_audit,
        reusable_rows,
        rows_key,
    )

    hashes, bench = {p.label: datasets[p.label].manifest["config_hash"] for p in tests}, bench_fingerprint()
    run.leak_key = leakage_key(hashes, cfg.detection.budget, cfg.detection.cost_profile, bench)
    run.leak_then = reusable_leakage_audit(prev, run.leak_key)
    run.chance_key = chance_key(
        hashes,
        {p.label: (p.seed, p.scenario) for p in tests},
        _budgets_all(cfg),
        cfg.detection.budget,
        cfg.suite.chance_draws,
        cfg.detection.cost_profile,
        cfg.test_seeds,
        bench,
    )
    chance_then = reusable_chance(prev, run.chance_key)
    run.rows_key = rows_key(run.chance_key, cfg.suite.bootstrap, cfg.suite.confidence)
    run.rows_then = reusable_rows(prev, run.rows_key) & set(reused) if chance_then is not None else frozenset()
    run.feats_key = features_key(bench)
    run.feats_then = reusable_features(prev, out, hashes, run.feats_key) if reuse else {}
    del prev  # about 10 MB parsed for a default run: not held while the detectors run
    # this run's alerts wait in a staging folder; the earlier run's results stay whole until they are all there
    # (_report), so a crash or an interrupt keeps them; reused alerts stay where they are (verified above)
    run.kept = frozenset(run.rel(d, p) for d in reused for p in tests)
    begin_run_outputs(out, keep=run.kept, keep_features=frozenset(rel for fs in run.feats_then.values() for rel in fs))
    try:
        with _features_ahead(run, [d for d in ids if d not in reused], workers) as run.feats_ahead:
            t0 = time.perf_counter()
            if chance_then is not None:
                log(
                    "chance lines: the earlier run's, reused (same datasets, budgets, draws, cost profile and bench code);"
                    f" truth of {len(tests)} test dataset(s)"
                )
                run.truths, (run.chance, run.half_bars) = _truths_alone(tests, datasets, workers), chance_then
            else:
                log(
                    f"chance lines: truth and {cfg.suite.chance_draws} blind draws per public ranking of {len(tests)} test dataset(s)"
                )
                run.truths, run.chance, run.half_bars = _truths_and_chance(cfg, tests, datasets, workers)
            log(f"chance lines: done in {time.perf_counter() - t0:.1f} s")
            if reused:
                log(
                    f"reusing the verified alerts of {len(reused)} detector(s) whose code and inputs are unchanged: {', '.join(sorted(reused))}"
                )
            run.bars = _Bars.start(
                progress, len(ids) * sum(len(datasets[p.label].scored) for p in tests), (len(ids) + 1) * len(tests)
            )
            rows = _detect(run, ids, reused, workers, log)
        return _report(run, rows, log)
    finally:
        run.spent_gone()  # the finished slots' folders, removed beside the report


def _detect(run: _Run, ids: list[str], reused: dict[str, Any], workers: int, log: Callable[..., None]) -> list[dict[str, Any]]:
    """Every detector's row, then the oracle's, in the configured order; sealed slots run in a pool when they can
    (the leakage audit too, queued first, when it is not reused)."""
    cfg = run.cfg
    rows = []
    feats = run.feats
    pool, ahead = _detector_pool(cfg, ids, reused, workers)
    # finished slots' folders are removed together at the end (isolation.set_aside); named as a scratch
    # folder of this process, so a later bench sweeps it if this one is killed
    run.spent = Path(tempfile.gettempdir()) / f"bb-det-{os.getpid()}-spent-{secrets.token_hex(4)}"
    run.spent.mkdir(mode=0o700)
    if isinstance(pool, _ClusterPool):
        log(f"detectors: {len(ahead)} sealed slot(s) as tasks on the Dask cluster")
    try:
        if pool is not None:  # sealed slots of several detectors at once, each supervised in its own process
            # the pool's processes start at these submits and pass it on to their slots: one polars thread each with
            # two slots on two cores (more only contend: a slot's CPU time fell by 15-25%, its wall time by 10-20%)
            local = not isinstance(pool, _ClusterPool)
            with polars_threads(str(max(1, (os.cpu_count() or 1) // workers))) if local else contextlib.nullcontext():
                if run.leak_then is None:  # one of the longest tasks: queued first, beside the first detector's slot
                    from breachbench.audit import leakage_audit

                    run.leak_ahead = pool.submit(leakage_audit, *run._leak_args(), truths=run.truths)
                _submit_ahead(run, pool, ahead, feats)
        for det in [*ids, ORACLE]:
            rows.append(_detector_row(run, det, reused, ahead, feats, log))
        if run.leak_ahead is not None:
            log("leakage audit: one-line shortcuts on every test dataset (run in the detector pool)")
            run.leak_now = run.leak_ahead.result()
    except BaseException:
        if pool is not None:
            _kill_pool(pool)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        run.spent_gone = fstree.remove_later(run.spent)  # seconds of the kernel's time: beside the report
    return rows


def mark_same_results(rows: list[dict[str, Any]]) -> None:
    """Set ``same_results_as`` on each row whose results equal an earlier one's (the earlier row's detector; see
    :func:`breachbench.stats.same_results`), None on the others. A built-in stands for the others, then the one entered
    first (``rows`` in the run's order: the config's detectors, then those a later ``--detectors`` added): a plugin
    whose id sorts first (``detectors = ["*"]`` runs the registry in id order) must not take a built-in's place."""
    from detectors.registry import registry

    builtin = {d for d, target in registry().items() if target.startswith("detectors.")}
    copies = same_results(sorted(rows, key=lambda r: r["detector"] not in builtin))  # stable: the run's order within
    for r in rows:
        r["same_results_as"] = copies.get(r["detector"])


def _payload(run: _Run, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json's body before the audits: the run's settings, datasets, versions, alert hashes and rows."""
    cfg, datasets, chance = run.cfg, run.datasets, run.chance
    budget = cfg.detection.budget
    mark_same_results(rows)
    # a later run into this folder reuses the chance lines only where this file holds them exactly, and with them the
    # rows of the detectors it holds exactly
    held = bool(run.chance_key) and _exact_in_json([chance, run.half_bars])
    exact = (  # a row taken whole from the earlier results.json came back from it exactly
        [r["detector"] for r in rows if r["status"] == "OK" and (r["detector"] in run.rows_then or _exact_in_json(r))]
        if held and run.rows_key
        else []
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name,
        "config": cfg.model_dump(mode="json", exclude={"secret"}),  # results are shared; the secret is not
        "config_hash": config_hash(cfg.sim()),
        "seeds": {"test": cfg.test_seeds, "tuning": list(cfg.suite.tuning_seeds), "sealed": bool(cfg.secret)},
        "budget": budget,
        "budgets": sorted(set(cfg.suite.budgets) | {budget}),
        "cost_profile": cfg.detection.cost_profile,
        "cost_profiles": cost_profiles(),
        "confidence": cfg.suite.confidence,
        "datasets": [
            {
                "label": p.label,
                "seed": p.seed,
                "scenario": p.scenario,
                "tuning": p.tuning,
                "path": str(p.path),
                "config_hash": datasets[p.label].manifest["config_hash"],
                "data_version": datasets[p.label].manifest["data_version"],
            }
            for p in run.points
        ],
        "versions": package_versions(),
        "alerts": alerts_hashes(run.out),
        "results": rows,
        "chance": chance,
        "chance_halves": run.half_bars,
        **({"chance_key": run.chance_key} if held else {}),
        **({"rows_key": {"key": run.rows_key, "exact": exact}} if held and run.rows_key else {}),
        # the shared feature tables in out/features, which a later run into this folder reuses where they verify
        **({"features": _features_record(run)} if run.feats_key and (run.feats or run.feats_then) else {}),
        "stability": split_half(rows, cfg.test_seeds, chance=chance_bars(chance, budget), half_chance=run.half_bars),
        "headline": headline_summary(rows),
    }


def _features_record(run: _Run) -> dict[str, Any]:
    """The shared feature tables that ``out/features`` holds at the run's end, for :func:`breachbench.reuse.reusable_features`:
    this run's, or the earlier run's verified ones that it kept but did not need."""
    tables = run.feats_then | run.feats
    return {
        "key": run.feats_key,
        "datasets": {
            p.label: {"config_hash": run.datasets[p.label].manifest["config_hash"], "files": tables[p.label]}
            for p in run.tests
            if p.label in tables
        },
    }


def _oracle_note(rows: list[dict[str, Any]], budget: int, log: Callable[..., None]) -> None:
    """Say where the oracle's raw score is below 100: more incidents begin together than ``budget`` units a day read,
    so no detector can catch each on its first day there, and 100 is out of reach (a red team's run at budget 1)."""
    oracle = next((r for r in rows if r["detector"] == ORACLE and r["status"] == "OK"), None)
    raw = {s: v["point"].get("detection_score_raw") for s, v in ((oracle or {}).get("by_scenario") or {}).items()}
    short = {s: x for s, x in sorted(raw.items()) if x is not None and x < 100.0 - 1e-6}
    if short:
        log(
            f"note: at budget {budget} the oracle's raw score is below 100 on "
            + ", ".join(f"{s} ({x:.1f})" for s, x in short.items())
            + f": more of their incidents run at once than {budget} unit(s) a day can read, so no detector reaches 100 there"
        )


def _report(run: _Run, rows: list[dict[str, Any]], log: Callable[..., None]) -> dict[str, Any]:
    """results.json, the leaderboard and the HTML report of a finished run, with its audits; returns what :func:`run_suite` does."""
    cfg, out, datasets, tests, chance = run.cfg, run.out, run.datasets, run.tests, run.chance
    budget = cfg.detection.budget
    audits: dict[str, Any] = {}
    if run.leak_then is not None:
        log("leakage audit: the earlier run's, reused (same datasets, budget, cost profile and bench code)")
        audits["leakage_audit"] = run.leak_then
    elif run.leak_now is not None:
        audits["leakage_audit"] = run.leak_now
    else:
        log("leakage audit: one-line shortcuts on every test dataset")
        audits["leakage_audit"] = run.leakage_audit()
    audits["leakage_audit_key"] = run.leak_key
    if cfg.suite.artefact_audit:
        from breachbench.artefacts import artefact_audit

        log("artefact audit: attack rows against comparable benign rows, seeds pooled per scenario")
        audits["artefact_audit"] = artefact_audit([datasets[p.label] for p in tests])
    _oracle_note(rows, budget, log)
    # every figure is ready: the earlier run's results give way to this run's alerts, then its results are written
    publish_run_outputs(out, keep=run.kept)
    payload = _payload(run, rows) | audits
    res, board = write_results(out, payload, rows, cfg.name, budget)
    from breachbench.html import write_report

    report = write_report(out, payload, {p.label: datasets[p.label] for p in tests}, log=log, truths=run.truths)
    return {
        "rows": rows,
        "results": res,
        "leaderboard": board,
        "report": report,
        "leakage_audit": payload["leakage_audit"],
        "chance": chance,
        "stability": payload["stability"],
        "headline": payload["headline"],
    }
