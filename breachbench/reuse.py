"""Reusing a finished run's alerts: the researcher's loop (``breachbench run ... --out RUN`` again).

A later run into the same folder runs a detector again only when something it depends on
changed. A detector's earlier alerts are reused, and scored afresh, when all of these hold:

- the folder's ``results.json`` is one this tool wrote, with the same schema version;
- every dataset of the grid (test and tuning) has the same label and config hash as then;
- the detection settings that shape alerts are unchanged (isolation, time and memory limits);
- the detector's row was ``OK`` and its fingerprint (:func:`detector_fingerprint`: its target
  and the source files of the package it lives in) is unchanged;
- each of its alerts files still has the SHA-256 that ``results.json`` recorded.

Budgets, cost profiles and bootstrap settings do not shape alerts: changing them re-scores
the same files. Nothing here imports a plugin: fingerprints are read from the files on disk.
The leakage audit is reused when its key (:func:`leakage_key`) is unchanged, and so are the chance
lines (:func:`chance_key`). Where the chance lines are reused and the intervals' settings are
unchanged too (:func:`rows_key`), a reused detector's whole leaderboard row is the earlier one: the
same alerts, truth, budgets, cost profile, chance lines and bootstrap give the same figures. The
shared feature tables a new detector's sealed slot is handed stay in ``out/features`` between runs,
and are used again where they verify (:func:`reusable_features`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl

from breachbench.safety import our_results
from breachbench.verify import alerts_hashes
from simulator import plugins

#: Detection settings that change what a detector emits (the rest only change scoring).
SHAPING = ("isolate", "timeout_s", "memory_mb")


#: A detector package of more files than this, of folders nested deeper, or of more bytes in all, is not fingerprinted
#: (so never reused): a red team's 1 TiB sparse file in its package ran the bench out of memory as it was read whole.
MAX_SOURCE_FILES = 20_000
MAX_SOURCE_DEPTH = 64
MAX_SOURCE_BYTES = 256 * 2**20


def _source_files(target: str) -> list[Path] | None:
    """The files of the package (or the module) that ``target`` ("module:attr") lives in, where a detector's sealed
    process finds its code (:func:`simulator.plugins.code_of`), found without importing it: regular files only, never
    through a link (a plugin package's link to /proc/self/mem crashed the bench here). None for a package past
    :data:`MAX_SOURCE_FILES` or :data:`MAX_SOURCE_DEPTH` (a red team's 1,100 nested folders crashed the bench in
    ``os.walk``, which recurses).

    Found by name, a plugin ``runs:Det`` under ``python -m`` was the current folder's ``runs/``, every earlier run's files
    read and hashed. Outside the bench's own packages compiled files count too: a red team's ``__pycache__`` file,
    stamped with its source's time and size, ran in place of the source, and its stale alerts were reused."""
    import os

    code = plugins.code_of(target.partition(":")[0])
    if code is None or os.path.islink(code):
        return []
    bytecode = not _bench_code(code)
    # code in a --plugin-path folder may import anything in any of them (a module beside it, a namespace package's
    # folder, another plugin folder: each of a red team's helpers changed and its stale alerts were reused): every
    # regular file of every one of them counts
    folders = sorted({os.path.realpath(f) for f in plugins.plugin_path() if os.path.isdir(f)})
    real = os.path.realpath(code)
    if any(real == f or real.startswith(f + os.sep) for f in folders):
        files: list[Path] = []
        for f in folders:
            inner = _package_files(Path(f))
            if inner is None or len(files) + len(inner) > MAX_SOURCE_FILES:
                return None
            files += inner
        return files
    if os.path.isdir(code):
        return _package_files(Path(code), bytecode)
    # a module of one file elsewhere: with the files beside it; not subfolders (a module in a project's root has its
    # runs/ there, which holds no __init__.py; in site-packages, every package)
    origin = Path(code)
    if not origin.is_file() or origin.is_symlink():
        return []
    try:
        near = sorted(os.scandir(origin.parent), key=lambda e: e.name)
    except OSError:
        return [origin]
    files = []
    for e in near:
        if e.name.startswith("."):  # a run's lock
            continue
        if e.is_symlink():  # counted by where it points
            files.append(Path(e.path))
        elif e.is_file(follow_symlinks=False):
            if bytecode or not e.name.endswith(_BYTECODE):
                files.append(Path(e.path))
        elif e.is_dir(follow_symlinks=False) and bytecode and e.name == "__pycache__":
            inner = _package_files(Path(e.path), bytecode)
            if inner is None:
                return None
            files += inner
        if len(files) > MAX_SOURCE_FILES:
            return None
    return sorted(files)


#: Compiled modules: Python runs a ``__pycache__/NAME.TAG.pyc`` whose header matches its source's time and size instead
#: of the source, and a ``NAME.pyc`` with no source at all.
_BYTECODE = (".pyc", ".pyo")


def _bench_code(code: str) -> bool:
    """Whether ``code`` lies in the bench's own packages, whose compiled files the bench itself writes as it imports them."""
    import os

    import breachbench
    import detectors
    import simulator

    real = os.path.realpath(code)
    return any(
        real == r or real.startswith(r + os.sep)
        for m in (breachbench, detectors, simulator)
        for r in map(os.path.realpath, m.__path__)
    )


def _package_files(code: Path, bytecode: bool = True) -> list[Path] | None:
    """The regular files and the links under the folder ``code`` (links not followed; compiled files only with
    ``bytecode``), or None past the bounds."""
    import os

    files = []
    stack = [(code, 0)]
    while stack:  # a walk of our own, iterative and bounded
        folder, depth = stack.pop()
        if depth > MAX_SOURCE_DEPTH:
            return None
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():  # counted by where it points (never followed: see detector_fingerprint)
                files.append(Path(e.path))
                if len(files) > MAX_SOURCE_FILES:
                    return None
                continue
            if e.is_dir(follow_symlinks=False):
                if bytecode or e.name != "__pycache__":
                    stack.append((Path(e.path), depth + 1))
            elif e.is_file(follow_symlinks=False) and (bytecode or not e.name.endswith(_BYTECODE)):
                files.append(Path(e.path))
                if len(files) > MAX_SOURCE_FILES:
                    return None
    return sorted(files)


def detector_fingerprint(detector_id: str) -> str | None:
    """SHA-256 over the detector's registered target and the bytes of its package's source files.

    Any edit of the package (the detector's code, its version string, a helper it imports from
    the same package, a compiled file outside the bench's packages; for a module of one file, any file beside it; for code
    in a ``--plugin-path`` folder, any file of any of those folders) changes it, and so does moving a file to another
    folder of it or pointing a link in it elsewhere: each file is hashed with its path from the files' common folder and
    its size, each link with its target (a red team moved a helper out of a subfolder and retargeted a link, and its
    stale alerts were reused; another's two folders, one file's bytes holding the next one's name, hashed alike). None
    when the package cannot be found
    or is past the bounds of :data:`MAX_SOURCE_FILES`, :data:`MAX_SOURCE_DEPTH` and :data:`MAX_SOURCE_BYTES` (then
    nothing is reused).
    """
    from detectors.registry import registry

    target = registry().get(detector_id, detector_id)
    files = _source_files(target)
    if not files:  # not found, or too big to fingerprint: run again
        return None
    import os

    h = hashlib.sha256(f"{detector_id}\0{target}\0".encode())
    root = os.path.commonpath([str(f.parent) for f in files])

    def part(data: bytes) -> bytes:  # each name, link target and content framed by its length: no two trees alike
        return len(data).to_bytes(8, "big") + data

    try:
        if sum(f.lstat().st_size for f in files if not f.is_symlink()) > MAX_SOURCE_BYTES:
            return None
        for f in files:
            name = os.path.relpath(f, root).encode(errors="surrogateescape")
            if f.is_symlink():  # where it points, never followed (a link to /proc/self/mem crashed the bench)
                h.update(b"L" + part(name) + part(os.readlink(f).encode(errors="surrogateescape")))
                continue
            h.update(b"F" + part(name) + f.lstat().st_size.to_bytes(8, "big"))
            with open(f, "rb") as fh:  # in blocks: never a whole file in memory
                while block := fh.read(1 << 20):
                    h.update(block)
    except OSError:  # a file that cannot be read: the detector runs again rather than the bench stopping
        return None
    return h.hexdigest()


def reusable(
    out: Path,
    datasets: dict[str, str],
    detection: dict[str, Any],
    schema_version: int,
    fingerprints: dict[str, str | None],
    alert_paths: dict[str, dict[str, str]],
    prev: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Detectors whose earlier alerts in ``out`` can be read back: id -> {"row": earlier row, "alerts": {label: frame}}.

    ``datasets``: every grid label -> config hash now; ``detection``: the detection settings now;
    ``alert_paths``: detector -> {test label: alerts path relative to ``out``}; ``prev``: ``out``'s results.json when
    the caller has read it (:func:`breachbench.safety.our_results`), else it is read here.
    """
    if prev is None:
        prev = our_results(Path(out) / "results.json")
    if prev is None or prev.get("schema_version") != schema_version:
        return {}
    then = {str(d.get("label")): d.get("config_hash") for d in prev.get("datasets", []) if isinstance(d, dict)}
    if then != datasets:
        return {}
    prev_det = (prev.get("config") or {}).get("detection") or {}
    if any(prev_det.get(k) != detection.get(k) for k in SHAPING):
        return {}
    recorded: dict[str, Any] = prev["alerts"] if isinstance(prev.get("alerts"), dict) else {}
    have = alerts_hashes(out)
    out_rows: dict[str, dict[str, Any]] = {}
    for row in prev.get("results", []):
        det = row.get("detector")
        fp = fingerprints.get(det)
        if det not in alert_paths or row.get("status") != "OK" or fp is None or row.get("fingerprint") != fp:
            continue
        rels = alert_paths[det]
        if not all(rel in recorded and have.get(rel) == recorded[rel] for rel in rels.values()):
            continue
        out_rows[det] = {"row": row, "alerts": {label: pl.read_parquet(Path(out) / rel) for label, rel in rels.items()}}
    return out_rows


def bench_fingerprint() -> str:
    """SHA-256 of the bench's own source and data files (``breachbench/``, ``simulator/``) and the package versions:
    what the leakage audit of unchanged datasets depends on besides them (its shortcuts, scoring, roles, scenarios)."""
    import breachbench
    import simulator
    from simulator.engine import package_versions

    h = hashlib.sha256(json.dumps(package_versions(), sort_keys=True).encode())
    for pkg in (breachbench, simulator):
        _hash_package(h, pkg)
    return h.hexdigest()


def _hash_package(h: Any, pkg: Any) -> None:
    """Feed ``h`` each source and data file (``.py``, ``.toml``, ``.json``) of the package ``pkg``: its path, then its bytes."""
    root = Path(str(pkg.__file__)).parent
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".toml", ".json")):
        h.update(f"{pkg.__name__}/{f.relative_to(root).as_posix()}\0".encode())
        h.update(f.read_bytes())


def features_key(bench: str) -> str:
    """What the shared feature tables of a dataset depend on besides it: the bench's code and package versions
    (``bench``, :func:`bench_fingerprint`) and the code of the ``detectors`` package, where they are defined."""
    import detectors

    h = hashlib.sha256(f"{bench}\0".encode())
    _hash_package(h, detectors)
    return h.hexdigest()


def _feature_file(out: Path, rel: Any) -> Path | None:
    """``out/features/rel`` when ``rel`` names a file of the bench's layout (``vN-<view id>/<kind>/<day>.parquet``) that
    is a regular file there, not a link; else None."""
    import re

    if not isinstance(rel, str) or not re.fullmatch(r"v\d+-[0-9a-f]{16}/[a-z_]+/\d{4}-\d{2}-\d{2}\.parquet", rel):
        return None
    path = Path(out) / "features" / rel
    if any(q.is_symlink() for q in (path, path.parent, path.parent.parent, path.parent.parent.parent)) or not path.is_file():
        return None
    return path


def reusable_features(prev: dict[str, Any] | None, out: Path, datasets: dict[str, str], key: str) -> dict[str, dict[str, str]]:
    """The earlier run's shared feature tables that still stand: test label -> {path relative to ``out/features``:
    SHA-256}, as that run recorded them in its results.json (``prev``) under ``features``.

    A dataset's tables stand when the record's key is ``key`` (:func:`features_key`), its config hash is the one in
    ``datasets`` (label -> config hash now), and every file it lists is in its place with the SHA-256 recorded: the
    bench computed them, and nothing changed them since (a sealed detector sees them read-only)."""
    from breachbench import sealing

    rec = (prev or {}).get("features")
    if not isinstance(rec, dict) or rec.get("key") != key or not isinstance(rec.get("datasets"), dict):
        return {}
    got: dict[str, dict[str, str]] = {}
    for label, entry in rec["datasets"].items():
        if not isinstance(entry, dict) or label not in datasets or entry.get("config_hash") != datasets[label]:
            continue
        files = entry.get("files")
        if not isinstance(files, dict) or not files:
            continue
        try:
            same = all(
                (path := _feature_file(out, rel)) is not None and isinstance(sha, str) and sealing.sha256(path) == sha
                for rel, sha in files.items()
            )
        except OSError:
            same = False
        if same:
            got[label] = dict(sorted(files.items()))
    return got


def leakage_key(datasets: dict[str, str], budget: int, cost_profile: str, bench: str | None = None) -> dict[str, Any]:
    """What a leakage audit's verdicts depend on: the test datasets (label -> config hash), the budget, the cost
    profile and the bench's code (``bench``, default :func:`bench_fingerprint`)."""
    return {"datasets": datasets, "budget": budget, "cost_profile": cost_profile, "bench": bench or bench_fingerprint()}


def chance_key(
    datasets: dict[str, str],
    points: dict[str, tuple[int, str]],
    budgets: list[int],
    budget: int,
    draws: int,
    cost_profile: str,
    test_seeds: list[int],
    bench: str,
) -> dict[str, Any]:
    """What a run's chance lines depend on: the test datasets (label -> config hash), each one's seed (its draws'
    seed) and scenario (the lines pool a scenario's datasets), the budgets, the headline budget, the draws per
    ranking, the cost profile, the test seeds (their halves' bars) and the bench's code (:func:`bench_fingerprint`)."""
    return {
        "datasets": datasets,
        "points": {label: [seed, scenario] for label, (seed, scenario) in points.items()},
        "budgets": sorted(budgets),
        "budget": budget,
        "draws": draws,
        "cost_profile": cost_profile,
        "test_seeds": sorted(test_seeds),
        "bench": bench,
    }


def reusable_chance(
    prev: dict[str, Any] | None, key: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, float]] | None] | None:
    """The chance lines and half bars (``chance``, ``chance_halves``) of the earlier run (``prev``, its results.json:
    :func:`breachbench.safety.our_results`) when its ``chance_key`` is ``key``, else None. A run records the key only
    where ``results.json`` holds its lines exactly (every number finite), so what comes back is what the draws would give
    again."""
    if prev is None:
        return None
    lines, halves = prev.get("chance"), prev.get("chance_halves")
    if prev.get("chance_key") != key or not isinstance(lines, dict) or not (halves is None or isinstance(halves, list)):
        return None
    return lines, halves


def rows_key(chance: dict[str, Any], bootstrap: int, confidence: float) -> dict[str, Any]:
    """What a reused detector's leaderboard row depends on besides its alerts (verified by :func:`reusable`): everything
    the chance lines do (``chance``, :func:`chance_key`: the datasets, so the truth; the budgets; the cost profile; the
    bench's code and package versions) and the intervals' resamples and confidence."""
    return {"chance": chance, "bootstrap": bootstrap, "confidence": confidence}


def reusable_rows(prev: dict[str, Any] | None, key: dict[str, Any]) -> frozenset[str]:
    """The detectors whose rows in the earlier run (``prev``, its results.json) stand as they are, when its ``rows_key``
    is ``key``: those the run listed as held exactly by ``results.json`` (no number that is not finite); else none.
    Only rows whose alerts :func:`reusable` verified may be taken."""
    rec = (prev or {}).get("rows_key")
    if not isinstance(rec, dict) or rec.get("key") != key or not isinstance(rec.get("exact"), list):
        return frozenset()
    return frozenset(d for d in rec["exact"] if isinstance(d, str))


def reusable_leakage_audit(prev: dict[str, Any] | None, key: dict[str, Any]) -> dict[str, Any] | None:
    """The leakage audit of the earlier run (``prev``, its results.json: :func:`breachbench.safety.our_results`) when
    its key (:func:`leakage_key`) is ``key``, else None."""
    if prev is None:
        return None
    audit = prev.get("leakage_audit")
    return audit if prev.get("leakage_audit_key") == key and isinstance(audit, dict) else None
