"""Aggregation over a suite's runs (seeds x scenarios) with bootstrap confidence intervals.

A run is one detector on one dataset. Dataset-level metrics (AUPRC) are averaged over runs and
lift is the ratio of the pooled AUPRC to the pooled AUPRC of the blind rankings that reach highest
(``chance_auprc_blind``, one per run); incident-level metrics are
pooled over the incidents of all runs (recall, timeliness, exposure prevented, time to detect);
the operational score is computed from pooled harm and false alerts, so null stays 0 and the
oracle 100 by construction.

Intervals of the pooled metrics resample whole runs with replacement (the incidents of a run
travel with it). With few runs a percentile interval is far too narrow (two runs give just
their range), so the interval is the point estimate plus or minus Student's t quantile for
n - 1 degrees of freedom times the bootstrap standard error (inflated by sqrt(n / (n - 1))),
clipped to the metric's range. Where a resample misses every incident (time to detect is
infinite), the percentile interval is used for that metric.

The headline (detection score, :func:`headline`) is an equal-weight mean over scenarios; its
interval resamples within each scenario (stratified percentile bootstrap) in two stages: its
datasets with replacement, then each drawn dataset's incidents with replacement. Each scenario's
figures are pooled over its incidents first, but incidents of one world are not independent: a
detector that works on some worlds and not on others varies from world to world.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from breachbench.scoring import (
    DetectionParts,
    above_chance,
    detection_score,
    false_alert_cost,
    incident_parts,
    op_score,
    profile_names,
)

METRICS = (
    "auprc",
    "lift",
    "recall_at_k",
    "timeliness",
    "ttd_median_buckets",
    "exposed_before_detection",
    "exposure_prevented",
    "harm_before_detection",
    "false_alerts_per_bucket",
    "victims_flagged_share",
    "op_score",
)


def _pooled_op(runs: list[dict[str, Any]], name: str, incidents: list[dict[str, Any]], false: float) -> float | None:
    """Operational score under profile ``name`` from the runs' pooled harm (``harm_by_profile`` per run)."""
    if not incidents:
        return None
    before = sum(r["overall"]["harm_by_profile"][name][0] for r in runs)
    total = sum(r["overall"]["harm_by_profile"][name][1] for r in runs)
    perfect = sum(r["overall"]["harm_by_profile"][name][2] for r in runs)
    return op_score(before, total, perfect, false, false_alert_cost(name))


def aggregate(runs: list[dict[str, Any]], profile: str = "standard") -> dict[str, Any]:
    """Point estimates over runs (each with ``overall`` and ``incidents`` at the main budget)."""
    if not runs:
        return {m: None for m in METRICS} | {
            "exposed_total": None,
            "harm_total": None,
            "op_score_profiles": {},
            "detection_score": None,
        }
    ov = [r["overall"] for r in runs]
    inc = [i for r in runs for i in r["incidents"]]
    parts = incident_parts(inc)
    comp = parts.components()
    false = sum(o["false_alerts_read"] for o in ov)
    buckets = sum(o["scored_buckets"] for o in ov)
    ttds = [math.inf if i["ttd_buckets"] is None else i["ttd_buckets"] for i in inc]
    med = float(np.median(ttds)) if ttds else math.inf
    auprc = float(np.mean([o["auprc"] for o in ov]))
    chance = float(np.mean([o.get("chance_auprc") or 0.0 for o in ov]))
    blind = float(np.mean([o.get("chance_auprc_blind") or 0.0 for o in ov]))
    v_total = sum(o.get("victim_units", 0) for o in ov)
    ops = {name: _pooled_op(runs, name, inc, false) for name in profile_names()}
    return {
        "auprc": auprc,
        "auprc_victims": float(np.mean([o.get("auprc_victims", 0.0) for o in ov])),
        "chance_auprc": chance,
        "chance_auprc_blind": blind,
        "lift": auprc / blind if blind else None,
        "recall_at_k": (sum(i["detected"] for i in inc) / len(inc)) if inc else None,
        "timeliness": comp["timeliness"],
        "detection_score": parts.score(),
        "ttd_median_buckets": None if math.isinf(med) else med,
        "exposed_before_detection": sum(i["exposed_before_detection"] for i in inc),
        "exposed_total": sum(i["exposed_total"] for i in inc),
        "exposure_prevented": comp["prevented"],
        "harm_before_detection": sum(i["harm_before_detection"] for i in inc),
        "harm_total": sum(i["harm_total"] for i in inc),
        "false_alerts_per_bucket": false / buckets if buckets else 0.0,
        "victims_flagged_share": sum(o.get("victims_flagged", 0) for o in ov) / v_total if v_total else None,
        "op_score": ops.get(profile),
        "op_score_profiles": ops,
    }


def _weighted_median(values: np.ndarray, owner: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row of ``weights`` (resamples x runs): the median of ``values`` (one per incident, run
    ``owner``) with each incident repeated as often as its run was drawn, as ``np.median`` of the
    concatenated incidents would give."""
    order = np.argsort(values, kind="stable")
    vals = values[order]
    w = weights[:, owner[order]]
    cum = np.cumsum(w, axis=1)
    total = cum[:, -1]
    out = np.full(len(total), np.nan)
    ok = total > 0
    lo_pos, hi_pos = np.floor((total - 1) / 2), np.ceil((total - 1) / 2)  # 0-based positions of the middle element(s)
    lo = vals[np.minimum((cum <= lo_pos[:, None]).sum(axis=1), len(vals) - 1)] if len(vals) else out
    hi = vals[np.minimum((cum <= hi_pos[:, None]).sum(axis=1), len(vals) - 1)] if len(vals) else out
    with np.errstate(invalid="ignore"):
        mid = np.where(np.isinf(lo) | np.isinf(hi), np.where(np.isinf(hi), np.inf, lo), (lo + hi) / 2)
    return np.where(ok, mid, np.nan)


def _run_sums(runs: list[dict[str, Any]], profile: str) -> dict[str, np.ndarray]:
    """Per run, the sums every pooled metric is a ratio of (one value per run)."""
    ov = [r["overall"] for r in runs]

    def col(f: Any) -> np.ndarray:
        return np.array([f(r, o) for r, o in zip(runs, ov, strict=True)], dtype=np.float64)

    def det(r: dict[str, Any]) -> list[dict[str, Any]]:
        return [i for i in r["incidents"] if i.get("detectable", True)]

    n_inc = col(lambda r, o: len(r["incidents"]))
    sums = {
        "auprc": col(lambda r, o: o["auprc"]),
        "chance": col(lambda r, o: o.get("chance_auprc_blind") or 0.0),
        "n": n_inc,
        "detected": col(lambda r, o: sum(i["detected"] for i in r["incidents"])),
        "detectable": col(lambda r, o: len(det(r))),
        "tl": col(lambda r, o: sum(i["timeliness"] for i in det(r))),
        "preventable": col(lambda r, o: sum(i["harm_total"] - i["harm_perfect"] for i in det(r))),
        "prevented": col(lambda r, o: sum(i["harm_total"] - i["harm_before_detection"] for i in det(r))),
        "records": col(lambda r, o: sum(i["exposed_before_detection"] for i in r["incidents"])),
        "harm": col(lambda r, o: sum(i["harm_before_detection"] for i in r["incidents"])),
        "false": col(lambda r, o: o["false_alerts_read"]),
        "buckets": col(lambda r, o: o["scored_buckets"]),
        "vf": col(lambda r, o: o.get("victims_flagged", 0)),
        "vu": col(lambda r, o: o.get("victim_units", 0)),
        "hb": col(lambda r, o: o["harm_by_profile"][profile][0]),
        "ht": col(lambda r, o: o["harm_by_profile"][profile][1]),
        "hp": col(lambda r, o: o["harm_by_profile"][profile][2]),
    }
    return sums


def _resampled(runs: list[dict[str, Any]], profile: str, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of :func:`aggregate` for each row of run weights (resamples x runs), vectorised."""
    sums = _run_sums(runs, profile)
    n_inc = sums["n"]
    w = {k: weights @ v for k, v in sums.items()}
    m = weights.sum(axis=1)
    ttd = np.array(
        [math.inf if i["ttd_buckets"] is None else i["ttd_buckets"] for r in runs for i in r["incidents"]], dtype=np.float64
    )
    owner = np.repeat(np.arange(len(runs)), n_inc.astype(np.int64))
    cost = false_alert_cost(profile)
    with np.errstate(divide="ignore", invalid="ignore"):
        auprc = w["auprc"] / m
        spent = w["hb"] + cost * w["false"]
        op = np.where(w["ht"] > w["hp"], 100.0 * (w["ht"] - spent) / (w["ht"] - w["hp"]), np.where(spent <= w["hp"], 100.0, 0.0))
        return {
            "auprc": auprc,
            "lift": np.where(w["chance"] > 0, w["auprc"] / w["chance"], np.nan),
            "recall_at_k": np.where(w["n"] > 0, w["detected"] / w["n"], np.nan),
            "timeliness": np.where(w["detectable"] > 0, w["tl"] / w["detectable"], np.nan),
            "ttd_median_buckets": _weighted_median(ttd, owner, weights) if len(ttd) else np.full(len(m), np.nan),
            "exposed_before_detection": w["records"],
            "exposure_prevented": np.where(
                (w["detectable"] > 0) & (w["preventable"] > 0), np.clip(w["prevented"] / w["preventable"], 0.0, 1.0), np.nan
            ),
            "harm_before_detection": w["harm"],
            "false_alerts_per_bucket": np.where(w["buckets"] > 0, w["false"] / w["buckets"], 0.0),
            "victims_flagged_share": np.where(w["vu"] > 0, w["vf"] / w["vu"], np.nan),
            "op_score": np.where(w["n"] > 0, op, np.nan),
        }


def bootstrap(
    runs: list[dict[str, Any]], profile: str = "standard", resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, list[float | None]]:
    """Intervals of :func:`aggregate` over runs resampled with replacement (see the module docstring).

    A single run has no spread to resample: its intervals are ``[value, value]``.
    """
    point = aggregate(runs, profile)
    if len(runs) < 2:
        return {m: [point[m], point[m]] for m in METRICS}
    r = np.random.default_rng(seed)
    n = len(runs)
    idx = r.integers(0, n, (resamples, n))
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.repeat(np.arange(resamples), n), idx.ravel()), 1.0)
    draws = _resampled(runs, profile, weights)
    from scipy.stats import t as student_t

    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    t_q = float(student_t.ppf((1 + confidence) / 2, n - 1))
    out: dict[str, list[float | None]] = {}
    for m in METRICS:
        a = np.asarray(draws[m], dtype=np.float64)
        a = a[~np.isnan(a)]
        if len(a) == 0:
            out[m] = [None, None]
            continue
        if np.isinf(a).any() or point[m] is None:
            lo, hi = np.percentile(a, [lo_q, hi_q], method="nearest")  # no interpolation across an infinite (missed) value
            out[m] = [None if math.isinf(lo) else float(lo), None if math.isinf(hi) else float(hi)]
            continue
        half = t_q * float(np.std(a, ddof=1)) * math.sqrt(n / (n - 1))
        lo_b, hi_b = BOUNDS.get(m, (-math.inf, math.inf))
        out[m] = [float(max(lo_b, point[m] - half)), float(min(hi_b, point[m] + half))]
    return out


#: Natural ranges of the metrics (intervals are clipped to them).
BOUNDS = {
    "auprc": (0.0, 1.0),
    "lift": (0.0, math.inf),
    "recall_at_k": (0.0, 1.0),
    "timeliness": (0.0, 1.0),
    "ttd_median_buckets": (0.0, math.inf),
    "exposed_before_detection": (0.0, math.inf),
    "exposure_prevented": (0.0, 1.0),
    "harm_before_detection": (0.0, math.inf),
    "false_alerts_per_bucket": (0.0, math.inf),
    "victims_flagged_share": (0.0, 1.0),
    "op_score": (-math.inf, 100.0),
}


def _incident_arrays(incidents: list[dict[str, Any]]) -> np.ndarray:
    """(n, 5) rows of (1, caught, timeliness, preventable, prevented) per detectable incident."""
    inc = [i for i in incidents if i.get("detectable", True)]
    if not inc:
        return np.zeros((0, 5))
    return np.array(
        [
            (
                1.0,
                float(i["detected"]),
                i["timeliness"],
                i["harm_total"] - i["harm_perfect"],
                i["harm_total"] - i["harm_before_detection"],
            )
            for i in inc
        ],
        dtype=np.float64,
    )


def _dataset_arrays(incidents: list[dict[str, Any]]) -> list[np.ndarray]:
    """:func:`_incident_arrays` of the incidents of each dataset (by ``seed``; one group where no entry has one), in
    seed order, those without a detectable incident left out."""
    by_seed: dict[Any, list[dict[str, Any]]] = {}
    for i in incidents:
        by_seed.setdefault(i.get("seed"), []).append(i)
    arrays = [_incident_arrays(by_seed[k]) for k in sorted(by_seed, key=lambda k: (k is None, k if k is not None else 0))]
    return [a for a in arrays if len(a)]


def _resampled_sums(groups: list[np.ndarray], resamples: int, r: np.random.Generator) -> np.ndarray:
    """(resamples, 5) sums of :func:`_incident_arrays` rows, resampled in two stages: as many datasets as there are, drawn
    with replacement, then each drawn dataset's incidents with replacement. One dataset: its incidents alone."""
    if len(groups) == 1:
        a = groups[0]
        return a[r.integers(0, len(a), (resamples, len(a)))].sum(axis=1)
    n = np.array([len(a) for a in groups])
    pad = np.zeros((len(groups), int(n.max()), 5))
    for g, a in enumerate(groups):
        pad[g, : len(a)] = a
    picks = r.integers(0, len(groups), (resamples, len(groups)))
    inside = np.arange(pad.shape[1])[None, :]
    total = np.zeros((resamples, 5))
    for j in range(len(groups)):  # each drawn dataset: as many of its incidents as it has, with replacement
        drawn = picks[:, j]
        size = n[drawn][:, None]
        k = np.minimum((r.random((resamples, pad.shape[1])) * size).astype(np.int64), size - 1)
        total += np.where((inside < size)[..., None], pad[drawn[:, None], k], 0.0).sum(axis=1)
    return total


def _score_of_sums(s: np.ndarray) -> np.ndarray:
    """Detection score (0-100) of summed (incidents, caught, timeliness, preventable, prevented) rows, shape (..., 5)."""
    inc, caught, tl, preventable, prevented = np.moveaxis(s, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(inc > 0, caught / inc, np.nan)
        t = np.where(inc > 0, tl / inc, np.nan)
        p = np.where((preventable > 0) & (inc > 0), np.clip(prevented / preventable, 0.0, 1.0), np.nan)
        return 100.0 * np.nanmean(np.stack([c, t, p]), axis=0)


def headline(
    incidents: list[dict[str, Any]],
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    chance: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The detection score: point, interval and per-scenario scores from per-incident entries.

    Each entry carries ``scenario``; ``chance`` maps a scenario to its chance line's mean raw
    score, and scores count above it (:func:`breachbench.scoring.above_chance`; the chance line
    is held fixed). ``by_scenario`` holds the scores above chance, ``by_scenario_raw`` the raw
    ones. The interval resamples within each scenario, in two stages: its datasets (the entries' ``seed``) with
    replacement, then the incidents of each drawn dataset with replacement (percentile bootstrap at ``confidence``).
    Resampling incidents alone treated the incidents of one world as independent: a red team's copies of one rule, each
    silent on a random half of the datasets, got intervals that did not overlap (0.0 [0.0, 3.4] against 16.0 [10.6,
    20.7]); over datasets they overlap.
    """
    chance = chance or {}
    by_scen: dict[str, list[dict[str, Any]]] = {}
    for i in incidents:
        by_scen.setdefault(i["scenario"], []).append(i)
    parts = {s: incident_parts(v) for s, v in by_scen.items()}
    point = detection_score(parts, chance)
    raw = {s: p.score() for s, p in sorted(parts.items())}
    per_scenario = {s: above_chance(v, chance.get(s)) for s, v in raw.items()}
    groups = {s: _dataset_arrays(v) for s, v in by_scen.items()}
    groups = {s: g for s, g in groups.items() if g}
    if point is None or not groups:
        return {"point": point, "ci": [point, point], "by_scenario": per_scenario, "by_scenario_raw": raw}
    r = np.random.default_rng(seed)
    scores = np.vstack([above_chance(_score_of_sums(_resampled_sums(g, resamples, r)), chance.get(s)) for s, g in groups.items()])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a scenario with a perfect chance line is NaN in every draw
        draws = np.nanmean(scores, axis=0)
    lo, hi = np.percentile(draws, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return {
        "point": point,
        "ci": [float(min(lo, point)), float(max(hi, point))],
        "by_scenario": per_scenario,
        "by_scenario_raw": raw,
    }


def detection_key(row: dict[str, Any]) -> str:
    """What a row's detection score, its interval, the top three's widths and the split-half correlation are computed
    from: each incident's outcome at the run's budget (caught or not, when, the exposure and harm before it) and the
    score itself."""
    return json.dumps(
        {"incidents": row.get("incidents"), "detection_score": row.get("detection_score")}, sort_keys=True, default=str
    )


def same_results(
    rows: Sequence[dict[str, Any]], anchors: tuple[str, ...] = ("null",), apart: tuple[str, ...] = ("oracle",)
) -> dict[str, str]:
    """Per detector whose detection results equal an earlier OK row's (:func:`detection_key`: every incident caught in
    the same bucket, with the same exposure, at the run's budget; its precision, false alerts and other budgets may
    differ): that earlier row's detector.

    ``rows`` in the order whose first stands for the others; an anchor (``anchors``) is never marked, and a row that
    equals one is marked as the anchor's (a detector that alerts nothing gives ``null``'s results); a row of ``apart``
    is never compared (a detector as good as the oracle, which reads truth, is still the best detector). Two entries of
    one detector, a built-in under a plugin's id for example, would otherwise count twice where detectors are counted:
    the top three's interval widths and the split-half correlation (a red team's two copies of the best built-in met the
    width target that the run without them missed; with two of its variants in the run too, the correlation read 0.98,
    and 0.95 without the copies). Two different detectors can have the same results too (both catch nothing and fill
    the budget with false alerts every day): the figures cannot tell them apart either. Only the detection results are
    compared: a red team's copy of the best built-in with every staff member appended below the budget (alerts never
    read at it) differed in its AUPRC alone, was not marked when every figure was compared, and was named best overall.
    """
    first: dict[str, str] = {}
    out: dict[str, str] = {}
    ok = [r for r in rows if r.get("status") == "OK" and r["detector"] not in apart]
    for r in [*(r for r in ok if r["detector"] in anchors), *(r for r in ok if r["detector"] not in anchors)]:
        key = detection_key(r)
        if key in first and r["detector"] not in anchors:
            out[r["detector"]] = first[key]
        first.setdefault(key, r["detector"])
    return out


def split_half(
    rows: list[dict[str, Any]],
    seeds: list[int],
    exclude: tuple[str, ...] = ("oracle", "null"),
    resolution: float = 1.0,
    chance: dict[str, float] | None = None,
    half_chance: Sequence[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Rank correlation (Spearman) of the detectors' detection scores between two disjoint halves of the seeds.

    The seeds in sorted order alternate between the halves. Anchors (``exclude``) are left out:
    they would rank first and last in any half. Each half's scores count above ``half_chance[h]``,
    that half's own chance bars (a half's blind luck reaches higher than the whole run's), else
    above ``chance``. Scores are compared at ``resolution`` points (rounded to it first): detectors
    less than that apart tie, so that 19.9 against 20.0 does not count as a ranking (``rho_exact``
    is the correlation of the unrounded scores). Only detectors that score above chance in a half
    are ranked (``ranked``): those at 0 in both say nothing of the order, and any number of them
    would move it (tied at the bottom of both halves, they raise it); nor are rows marked
    ``same_results_as`` another (:func:`same_results`). ``rho`` is None with fewer than two seeds,
    fewer than three ranked detectors, or a half in which every one of them ties.
    """
    s = sorted(seeds)
    halves = (s[0::2], s[1::2])
    # a row with the same results as another (see same_results) is that detector once more: it would count twice
    ok = [r for r in rows if r.get("status") == "OK" and r["detector"] not in exclude and not r.get("same_results_as")]
    out: dict[str, Any] = {
        "halves": [list(h) for h in halves],
        "detectors": [r["detector"] for r in ok],
        "scores": [[], []],
        "ranked": [],
        "resolution": resolution,
        "rho": None,
        "rho_exact": None,
    }
    if len(s) < 2:
        return out
    for h, half in enumerate(halves):
        bars = half_chance[h] if half_chance is not None else chance
        for r in ok:
            parts: dict[str, DetectionParts] = {}
            for i in r.get("incidents", []):
                if i.get("seed") in half:
                    parts[i["scenario"]] = parts.get(i["scenario"], DetectionParts()).plus(incident_parts([i]))
            out["scores"][h].append(detection_score(parts, bars))
    both = [[x if x is not None else 0.0 for x in v] for v in out["scores"]]
    keep = [j for j in range(len(ok)) if both[0][j] > 0 or both[1][j] > 0]
    out["ranked"] = [ok[j]["detector"] for j in keep]
    if len(keep) < 3:
        return out
    a, b = (np.array([v[j] for j in keep]) for v in both)
    from scipy.stats import spearmanr

    if np.ptp(a) > 0 and np.ptp(b) > 0:
        out["rho_exact"] = float(spearmanr(a, b).statistic)
    ra, rb = (np.round(x / resolution) * resolution if resolution > 0 else x for x in (a, b))
    if np.ptp(ra) > 0 and np.ptp(rb) > 0:
        out["rho"] = float(spearmanr(ra, rb).statistic)
    return out
