"""Compare two ``results.json`` files metric by metric, for CI gates on detection quality.

Runs are deterministic, so a tight tolerance works: ``breachbench compare OLD NEW --metric
op_score --tolerance 0.5`` fails when any detector's op_score in NEW is more than 0.5 below OLD
(for metrics where lower is better, such as time to detect, "drops" means rises). Only on the same
datasets, budget and cost profile: two ``--out`` folders draw secrets of their own, so their
datasets differ, and a red team saw a detector "regress" by 5.6 between two runs of one config
and one version of the code. :func:`compare` refuses runs that scored different datasets, or at
another budget or cost profile, unless told to compare them anyway.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from simulator.errors import BreachBenchError

#: Metrics where a smaller value is better.
LOWER_IS_BETTER = {"ttd_median_buckets", "exposed_before_detection", "false_alerts_per_bucket"}
METRICS = (
    "op_score",
    "auprc",
    "lift",
    "recall_at_k",
    "ttd_median_buckets",
    "exposed_before_detection",
    "exposure_prevented",
    "false_alerts_per_bucket",
)
#: Metrics of schema version 3 only.
METRICS_V3 = ("detection_score", "timeliness", "harm_before_detection", "victims_flagged_share")
LOWER_IS_BETTER |= {"harm_before_detection"}
SUPPORTED = (2, 3)


class CompareError(BreachBenchError, ValueError):
    """Unreadable or incompatible results files."""


def load_results(path: Path) -> dict[str, Any]:
    """A results.json with a supported schema version (or a run folder holding one)."""
    if path.is_dir():
        if not (path / "results.json").is_file():
            raise CompareError(f"{path}: a folder without results.json; give a run's --out folder or its results.json")
        path = path / "results.json"
    if not path.is_file():
        raise CompareError(f"{path}: file not found; give a run's results.json or its --out folder")

    def constant(name: str) -> Any:
        raise CompareError(f"{path}: {name} is not a JSON number (a run writes null for a figure it has none of)")

    try:
        data = json.loads(path.read_bytes().decode(), parse_constant=constant)
    except UnicodeDecodeError as exc:
        raise CompareError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise CompareError(f"{path}: nested too deeply to be a run's results") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in SUPPORTED or isinstance(version, bool):
        raise CompareError(f"{path}: schema_version {version!r} is not supported; accepted: {', '.join(map(str, SUPPORTED))}")
    _check_rows(path, data)
    data["_path"] = str(path)
    return data


def _check_rows(path: Path, data: dict[str, Any]) -> None:
    """Refuse a results file whose parts :func:`compare` reads are not what a run writes: a list of rows, each with a
    detector id of its own and every metric a finite number or null (a red team's ``"op_score": NaN`` passed the gate)."""
    rows = data.get("results")
    if not isinstance(rows, list):
        raise CompareError(f"{path}: results: {type(rows).__name__}, expected a list of detector rows")
    if not isinstance(data.get("chance"), dict | None):
        raise CompareError(f"{path}: chance: {type(data.get('chance')).__name__}, expected an object or null")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("detector"), str):
            raise CompareError(f"{path}: results[{i}]: expected an object with a detector id (a string)")
        det = row["detector"]
        if det in seen:
            raise CompareError(f"{path}: results[{i}]: detector {det[:80]!r} has two rows")
        seen.add(det)
        for m in (*METRICS, *METRICS_V3):
            v = row.get(m)
            if not _number(v):
                raise CompareError(
                    f"{path}: results[{i}].{m}: {str(v)[:40]!r} is not a finite number; accepted: a number or null"
                )


def compare(
    old: dict[str, Any], new: dict[str, Any], metric: str, tolerance: float, *, other_datasets: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per detector and metric: old, new, delta; and the detectors whose ``metric`` regressed.

    Both files must have the same schema version: version 3 changed what the scores mean
    (only actor units detect; costs are harm-weighted), so a v2 figure and a v3 figure of the
    same name are not comparable. Both must have scored the same datasets (their config hashes),
    at the same budget and cost profile, unless ``other_datasets`` (where a file lists them).
    """
    versions = (old.get("schema_version"), new.get("schema_version"))
    if versions[0] != versions[1]:
        raise CompareError(
            f"{old.get('_path', 'OLD')} has schema_version {versions[0]} and {new.get('_path', 'NEW')} has {versions[1]}: version 3 counts only "
            "actor units and harm-weighted costs, so its scores do not compare with version 2's; rerun the older side with this version"
        )
    methods = (((old.get("chance") or {}).get("method")), ((new.get("chance") or {}).get("method")))
    if metric == "detection_score" and None not in methods and methods[0] != methods[1]:
        raise CompareError(
            f"{old.get('_path', 'OLD')} and {new.get('_path', 'NEW')} count detection scores above different chance lines "
            f"({methods[0]!r} against {methods[1]!r}), so their detection scores do not compare; rerun the older side with "
            "this version, or compare another --metric"
        )
    lifts = (_lift_against(old), _lift_against(new))
    if metric == "lift" and None not in lifts and lifts[0] != lifts[1]:
        raise CompareError(
            f"{old.get('_path', 'OLD')} divides lift by {lifts[0]} and {new.get('_path', 'NEW')} by {lifts[1]}, so their lifts "
            "do not compare; rerun the older side with this version, or compare another --metric"
        )
    if not other_datasets:
        _same_ground(old, new)
    metrics = METRICS + (METRICS_V3 if isinstance(versions[0], int) and versions[0] >= 3 else ())
    if metric not in metrics:
        raise CompareError(f"--metric {metric!r}: unknown for schema_version {versions[0]}; accepted: {', '.join(metrics)}")
    o = {r["detector"]: r for r in old["results"]}
    n = {r["detector"]: r for r in new["results"]}
    rows, bad = [], []
    for det in sorted(set(o) | set(n)):
        for m in metrics:
            a, b = (o.get(det) or {}).get(m), (n.get(det) or {}).get(m)
            delta = None if a is None or b is None else b - a
            worse = None if delta is None else (delta > tolerance if m in LOWER_IS_BETTER else -delta > tolerance)
            if m == metric and det in o and (det not in n or (worse or (a is not None and b is None))):
                bad.append(det)
            rows.append(
                {
                    "detector": det,
                    "metric": m,
                    "old": a,
                    "new": b,
                    "delta": delta,
                    "regressed": bool(worse) if m == metric else None,
                }
            )
    return rows, sorted(set(bad))


def _same_ground(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse two results files that scored different datasets, or at another budget or cost profile, or with other
    ``[suite]`` settings that move a dataset's figures (chance draws, bootstrap draws, confidence), where both say."""
    a, b = old.get("_path", "OLD"), new.get("_path", "NEW")

    def hashes(data: dict[str, Any]) -> list[str] | None:
        ds = data.get("datasets")
        if not isinstance(ds, list) or not all(isinstance(d, dict) and isinstance(d.get("config_hash"), str) for d in ds):
            return None
        return sorted(d["config_hash"] for d in ds)

    ha, hb = hashes(old), hashes(new)
    if ha is not None and hb is not None and ha != hb:
        differ = len(set(ha) ^ set(hb))
        raise CompareError(
            f"{a} and {b} scored different datasets ({len(ha)} and {len(hb)}, {differ} config hashes in one only): two --out "
            "folders draw secrets of their own, so the same config gives other datasets, and the figures differ by the draw; "
            "copy OLD's folder's `secret` file into NEW's --out before its first run (or set suite.seal_seeds = false), or "
            "pass --other-datasets to compare them anyway"
        )
    for key, what in (("budget", "budget"), ("cost_profile", "cost profile")):
        va, vb = old.get(key), new.get(key)
        if va is not None and vb is not None and va != vb:
            raise CompareError(
                f"{a} was scored at {what} {str(va)[:40]!r} and {b} at {str(vb)[:40]!r}: their figures do not compare; "
                f"rerun one side with the other's {key}, or pass --other-datasets to compare them anyway"
            )
    changed = [
        f"suite.{key} {str(sa.get(key))[:40]} against {str(sb.get(key))[:40]}"
        for sa, sb in [(_suite(old), _suite(new))]
        if sa is not None and sb is not None
        for key in sorted(set(sa) | set(sb))
        if key not in SUITE_SAME_FIGURES and sa.get(key) != sb.get(key)
    ]
    if changed:
        raise CompareError(
            f"{a} and {b} were scored with other settings ({'; '.join(changed)}): the chance bars and intervals are draws "
            'of their own, so the same alerts score differently (a red team saw the same alerts files "regress" by 1.0 '
            "with 200 chance draws against 1,000); rerun one side with the other's settings, or pass --other-datasets "
            "to compare them anyway"
        )


#: Settings of ``[suite]`` that pick datasets or add work but leave a dataset's figures as they are: the seeds (their
#: datasets' hashes are compared instead), whether they are sealed, the extra budgets, the artefact audit.
SUITE_SAME_FIGURES = frozenset({"seeds", "tuning_seeds", "seal_seeds", "budgets", "artefact_audit"})


def _suite(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ``[suite]`` settings a results file's config holds (None where it holds none), with its chance draws where
    only the chance section says them."""
    config = data.get("config")
    suite = config.get("suite") if isinstance(config, dict) else None
    if not isinstance(suite, dict):
        draws = (data.get("chance") or {}).get("draws") if isinstance(data.get("chance"), dict) else None
        return None if draws is None else {"chance_draws": draws}
    return suite


def _lift_against(data: dict[str, Any]) -> str | None:
    """What a results file's lift divides by: the blind rankings that reach highest (rows with ``chance_auprc_blind``),
    or, in files from before them, a ranking of every unit (rows with ``chance_auprc`` alone); None without either."""
    rows = [r for r in data.get("results", []) if isinstance(r, dict)]
    if any("chance_auprc_blind" in r for r in rows):
        return "the blind ranking that reaches highest"
    return "a ranking of every unit" if any("chance_auprc" in r for r in rows) else None


def _number(v: Any) -> bool:
    """Null, or a finite number as a float (never a boolean)."""
    if v is None:
        return True
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an integer past a float's range
        return False
