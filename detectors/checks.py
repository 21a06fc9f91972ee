"""Conformance checks for detectors (scikit-learn's ``check_estimator``, gymnasium's ``check_env``).

``check_detector(target)`` runs a detector over a small cached dataset and checks that:

* ``schema``: it is constructible without arguments, has ``fit`` and ``score``, and every
  ``score`` returns a valid alerts frame for exactly the bucket asked (no NaN or infinite scores);
* ``direction``: higher means more suspicious, i.e. within each bucket and entity kind its alerts
  do not rank the planted incident's units below the others (pair-weighted AUC under 0.25);
* ``determinism``: two fresh instances give identical alerts;
* ``prefix``: the alerts of past buckets do not change when later buckets are removed from the
  dataset (no look-ahead, whatever way the detector reads files);
* ``no_truth``: the alerts do not change when the dataset's truth is removed;
* ``pickle``: a fitted detector pickles, and the copy scores identically.

``target`` is a registered id, a class, or a zero-argument factory. Failures raise
:class:`DetectorCheckError` listing every failed check; :func:`parametrize_with_checks` turns the
registry into pytest cases.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from detectors.contract import validate_alerts
from detectors.registry import load, registry
from detectors.view import View
from simulator import layout
from simulator.config import SimConfig
from simulator.plugins import CheckResult

CHECKS = ("schema", "direction", "determinism", "prefix", "no_truth", "pickle")

#: The check world: small and quick, one blatant forged-token incident and two staff ones (an
#: analyst's bulk export before leaving, a support agent snooping), so that ``direction`` sees
#: the units of customer-side and staff-side attacks alike.
CHECK_WORLD = {
    "seed": 11,
    "world": {"customers": 2000, "employees": 150},
    "time": {"start": "2025-04-01", "end": "2025-04-15", "warmup_days": 5},
    "scenarios": [
        {"id": "coupang-forged-token-v3", "knobs": {"start_offset": 1, "probe_days": 2, "daily_share": 0.02}},
        {"id": "bulk-export-before-departure-v2", "knobs": {"start_offset": 1}},
        {"id": "snooping-agent-v2", "knobs": {"start_offset": 1}},
    ],
}
N_SCORED = 4  # buckets scored in each run
PREFIX = 2  # buckets kept in the truncated copy for the prefix check


class DetectorCheckError(AssertionError):
    """A detector failed one or more conformance checks; the message lists them."""


def _factory(target: str | type | Callable[[], Any]) -> Callable[[], Any]:
    return (lambda: load(target)()) if isinstance(target, str) else target


def check_dataset(cache_dir: str | Path | None = None) -> Path:
    """The cached check dataset (generated on first use)."""
    from simulator.engine import config_hash, generate

    cfg = SimConfig.model_validate(CHECK_WORLD)
    base = Path(cache_dir or os.environ.get("BREACHBENCH_CACHE") or Path(tempfile.gettempdir()) / "breachbench-datasets")
    path = base / f"check-{config_hash(cfg)[:16]}"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f".{path.name}.wait", "a") as lock:  # checks in parallel processes wait for one generation
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and not _intact(path):  # a detector checked earlier may have written into it
            shutil.rmtree(path)
        if not (path / layout.MANIFEST).is_file():
            generate(cfg, path, workers=1, force=True)
    return path


def _intact(root: Path) -> bool:
    """Whether every file of a dataset matches the SHA-256 in its manifest, and nothing is added."""
    import hashlib

    try:
        m = json.loads((root / layout.MANIFEST).read_text())
        listed = {f["path"]: f["sha256"] for f in [*m["files"], *m["truth"]]}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    present = {
        p.relative_to(root).as_posix() for d in ("world", "logs", "truth") for p in (root / d).rglob("*") if not p.is_dir()
    }
    if present != set(listed):
        return False
    for rel, digest in listed.items():
        with open(root / rel, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != digest:
                return False
    return True


def _copy(src: Path, dst: Path, *, keep_days: int | None = None, truth: bool = True) -> Path:
    """A copy of a dataset, optionally truncated to its first days or without truth; its manifest lists what was copied."""
    manifest = json.loads((src / layout.MANIFEST).read_text())
    t = manifest["config"]["time"]
    start = dt.date.fromisoformat(t["start"])
    if keep_days is not None:
        t["end"] = (start + dt.timedelta(days=keep_days)).isoformat()
    last = dt.date.fromisoformat(t["end"])

    def kept(rel: str) -> bool:
        parts = rel.split("/")
        if parts[0] == "truth":
            return truth
        return parts[0] != "logs" or dt.date.fromisoformat(parts[2].removeprefix("date=")) < last

    dst.mkdir(parents=True)
    for key in ("files", "truth"):
        manifest[key] = [f for f in manifest.get(key, []) if kept(f["path"])]
    for f in [*manifest["files"], *manifest["truth"]]:
        (dst / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f["path"], dst / f["path"])  # a copy: neither a link to resolve nor a shared file to write into
    (dst / layout.MANIFEST).write_text(json.dumps(manifest))
    return dst


def _buckets(root: Path) -> tuple[list[dt.date], int]:
    t = json.loads((root / layout.MANIFEST).read_text())["config"]["time"]
    start, end = dt.date.fromisoformat(t["start"]), dt.date.fromisoformat(t["end"])
    return [start + dt.timedelta(days=i) for i in range((end - start).days)], t["warmup_days"]


def _run(det: Any, root: Path, *, roundtrip: bool = False) -> pl.DataFrame:
    """Fit on the warm-up, score every later bucket of the copy, validating each frame.

    ``roundtrip``: score with a pickled and unpickled copy of the fitted detector.
    """
    for m in ("fit", "score"):
        if not callable(getattr(det, m, None)):
            raise DetectorCheckError(f"no {m}() method")
    days, warm = _buckets(root)
    det.fit(View.open(root, days[warm - 1]))
    if roundtrip:
        det = pickle.loads(pickle.dumps(det))
    frames = [validate_alerts(det.score(View.open(root, day, day)), bucket=day, source=type(det).__name__) for day in days[warm:]]
    return pl.concat(frames)


def _sealed(target: str, *, timeout_s: float, memory_mb: int, protected: list[Path]) -> Callable[..., pl.DataFrame]:
    """Runs of ``target`` each in a fresh sealed process (:func:`breachbench.isolation.run_isolated`)."""

    def run(root: Path, *, roundtrip: bool = False) -> pl.DataFrame:
        from breachbench.isolation import run_isolated

        r = run_isolated(target, root, timeout_s=timeout_s, memory_mb=memory_mb, protected=protected, roundtrip=roundtrip)
        if r.status != "OK":
            raise DetectorCheckError(f"{r.status}: {r.error}")
        return r.alerts

    return run


def _checked(alerts: pl.DataFrame) -> pl.DataFrame:
    """Alerts in a fixed order; infinite scores are a schema failure."""
    bad = alerts.filter(~pl.col("score").is_finite())
    if bad.height:
        raise DetectorCheckError(f"{bad.height} infinite score(s) in bucket(s) {sorted(set(bad['bucket'].to_list()))}")
    return alerts.sort("bucket", "entity_kind", "entity_id")


#: Scores that differ by less than this (relative, and absolute near zero) are the same: polars'
#: parallel group-by sums in a different order from run to run (seen: 1.8e-15 apart).
RTOL, ATOL = 1e-9, 1e-12


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Same alert units and reasons in the same order, scores equal up to :data:`RTOL` / :data:`ATOL`."""
    if a.shape != b.shape or a.columns != b.columns:
        return False
    keys = [c for c in a.columns if c != "score"]
    if not a.select(keys).equals(b.select(keys)):
        return False
    x, y = a["score"].to_numpy(), b["score"].to_numpy()
    return bool(np.allclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True) and np.array_equal(np.isinf(x), np.isinf(y)))


def _positives(root: Path) -> pl.DataFrame:
    """Actor units of the check world's incidents, every stream (the harness may read truth; scoring counts these)."""
    from breachbench.dataset import Dataset  # the bench's own rule of roles, so the check and the score agree

    pos = Dataset.open(root).positive_units
    return pos.filter(pl.col("role") == "actor").select("bucket", "entity_kind", "entity_id").unique()


@dataclass(frozen=True)
class _Copies:
    """Private copies of the check world, made before any detector code runs."""

    full: Path  # the first N_SCORED scored buckets, with truth
    prefix: Path | None  # only the first PREFIX scored buckets, no truth
    blind: Path | None  # as ``full``, without truth


def check_detector(
    target: str | type | Callable[[], Any],
    *,
    checks: tuple[str, ...] = CHECKS,
    cache_dir: str | Path | None = None,
    raise_on_failure: bool = True,
    sealed: bool = False,
    timeout_s: float = 300.0,
    memory_mb: int = 4096,
) -> list[CheckResult]:
    """Run the conformance checks on a detector (see the module docstring).

    With ``sealed``, ``target`` (a registered id or ``module:Class``) runs as ``breachbench run``
    runs it: every run of every check in its own sealed process under ``timeout_s`` and
    ``memory_mb``, on a view without truth; this process only compares what the runs return.
    Without it, the detector runs in this process (for a detector's own test suite).

    Raises:
        DetectorCheckError: when any check fails and ``raise_on_failure``.
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; accepted: {', '.join(CHECKS)}")
    if sealed and not isinstance(target, str):
        raise ValueError(f"a sealed check needs a registered id or 'module:Class', not {target!r}")
    cached = check_dataset(cache_dir)
    positives = _positives(cached)  # read before any detector code runs
    work = Path(tempfile.mkdtemp(prefix="bb-check-"))
    try:
        warm = _buckets(cached)[1]
        copies = _Copies(
            _copy(cached, work / "full", keep_days=warm + N_SCORED),
            _copy(cached, work / "prefix", keep_days=warm + PREFIX, truth=False) if "prefix" in checks else None,
            _copy(cached, work / "blind", keep_days=warm + N_SCORED, truth=False) if "no_truth" in checks else None,
        )
        if sealed:
            assert isinstance(target, str)
            run = _sealed(target, timeout_s=timeout_s, memory_mb=memory_mb, protected=[cached.parent, work])
        else:
            make = _factory(target)

            def run(root: Path, *, roundtrip: bool = False) -> pl.DataFrame:
                return _run(make(), root, roundtrip=roundtrip)

        return _finish(_checks(run, copies, positives, checks), raise_on_failure)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _checks(
    run: Callable[..., pl.DataFrame], copies: _Copies, positives: pl.DataFrame, checks: tuple[str, ...]
) -> list[CheckResult]:
    """The checks of :func:`check_detector`; ``run(root, roundtrip=...)`` gives one fresh detector's alerts on a copy."""

    days, warm = _buckets(copies.full)  # read once: the copies' spans do not change

    def outcome(
        name: str, root: Path, differs: str, fails: str, *, roundtrip: bool = False, upto: int | None = None
    ) -> CheckResult:
        try:
            other = _checked(run(root, roundtrip=roundtrip))
        except Exception as exc:
            return CheckResult(name, False, f"{fails} ({type(exc).__name__}: {exc})")
        want = ref if upto is None else ref.filter(pl.col("bucket") < days[upto])
        return CheckResult(name, True) if _same(want, other) else CheckResult(name, False, differs)

    try:
        ref = _checked(run(copies.full))
    except Exception as exc:  # everything after needs a working run
        return [CheckResult("schema", False, f"{type(exc).__name__}: {exc}")]
    results = [CheckResult("schema", True)]
    if "direction" in checks:
        results.append(_direction(ref, positives))
    if "determinism" in checks:
        results.append(outcome("determinism", copies.full, "two fresh instances gave different alerts", "failed on a second run"))
    if copies.prefix is not None:
        msg = "alerts of past buckets changed when later buckets were removed: the detector looks ahead"
        results.append(
            outcome(
                "prefix",
                copies.prefix,
                msg,
                "failed when later buckets were removed: the detector reads ahead",
                upto=warm + PREFIX,
            )
        )
    if copies.blind is not None:
        msg = "alerts changed when truth/ was removed: the detector reads truth"
        results.append(outcome("no_truth", copies.blind, msg, "failed without truth/: the detector reads truth"))
    if "pickle" in checks:
        results.append(outcome("pickle", copies.full, "the unpickled copy scored differently", "failed", roundtrip=True))
    return results


def _direction(alerts: pl.DataFrame, positives: pl.DataFrame) -> CheckResult:
    """Inverted scores: within each (bucket, entity kind), positives ranked below the others.

    The statistic is the mean ROC AUC of the detector's scores over the groups of its alerts
    that hold both positives and negatives and scores that are not all tied: about 0.5 for
    random scores, above for a working detector, near 0 for one whose scores are upside down.
    Below 0.25 fails.
    """
    if alerts.height == 0:
        return CheckResult("direction", True, "no alerts (nothing to rank)")
    lab = alerts.join(
        positives.with_columns(hit=pl.lit(True)), on=["bucket", "entity_kind", "entity_id"], how="left"
    ).with_columns(pl.col("hit").fill_null(False))
    aucs = []
    for (_, _), g in lab.group_by("bucket", "entity_kind"):
        y = g["hit"].to_numpy()
        p, n = int(y.sum()), int(len(y) - y.sum())
        if p == 0 or n == 0 or g["score"].n_unique() == 1:
            continue
        ranks = g["score"].rank("average").to_numpy()
        aucs.append((ranks[y].sum() - p * (p + 1) / 2) / (p * n))
    if not aucs:
        return CheckResult("direction", True, "no group with both positive and negative alerts to rank")
    auc = float(np.mean(aucs))
    ok = auc >= 0.25
    return CheckResult(
        "direction",
        ok,
        "" if ok else f"within-group AUC {auc:.3f}: positives rank below the others; higher scores must mean more suspicious",
    )


def _finish(results: list[CheckResult], raise_on_failure: bool) -> list[CheckResult]:
    """``results``, or :class:`DetectorCheckError` listing the failed ones."""
    failed = [r for r in results if not r.passed]
    if failed and raise_on_failure:
        raise DetectorCheckError("; ".join(f"{r.check}: {r.message}" for r in failed))
    return results


def parametrize_with_checks(ids: list[str] | None = None) -> Any:
    """A pytest decorator running every check on every registered detector (or ``ids``)::

    @parametrize_with_checks()
    def test_conformance(detector_id, check):
        check(detector_id)
    """
    import pytest

    names = ids if ids is not None else sorted(registry())
    cases = [pytest.param(n, _single(c), id=f"{n}-{c}") for n in names for c in CHECKS]
    return pytest.mark.parametrize(("detector_id", "check"), cases)


_RESULTS: dict[str, dict[str, CheckResult]] = {}


def _single(name: str) -> Callable[[str], None]:
    def run(detector_id: str) -> None:
        if detector_id not in _RESULTS:  # every check of a detector runs once, whichever case asks first
            _RESULTS[detector_id] = {r.check: r for r in check_detector(detector_id, raise_on_failure=False)}
        res = _RESULTS[detector_id]
        r = res.get(name) or res["schema"]
        if not r.passed:
            raise DetectorCheckError(f"{r.check}: {r.message}")

    run.__name__ = f"check_{name}"
    return run
