"""Results files: ``results.json`` (versioned) and ``leaderboard.md``; the printed leaderboard."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from breachbench.runner import detector_text

SCHEMA_VERSION = 3

#: One source of truth for what every leaderboard column and report metric means: report.html
#: renders it and README.md carries the same words (a test checks both).
GLOSSARY: dict[str, str] = {
    "detector": "The detector's id. `oracle` reads the ground truth and alerts exactly the insider's units: an anchor at 100, not a detector. `null` alerts nothing (the anchor at 0); `random` ranks units uniformly at random.",
    "status": "OK, or why the detector failed (ERROR, TIMEOUT, OOM) on at least one dataset; a failed detector scores nothing.",
    "detection score": "The headline, 0 to 100. Per scenario the mean of caught, timely and prevent, counted above that scenario's chance bar (100 x (raw - bar) / (100 - bar), never below 0), then the plain mean over scenarios, so every scenario weighs the same; a scenario whose chance bar is 100 (blind luck catches it at once) has no score above chance and is left out. Null scores 0, the oracle 100.",
    "raw score": "A scenario's detection score before the chance bar is subtracted: 100 x the mean of caught, timely and prevent.",
    "chance bar": "Per scenario, the raw score that 97.5% of blind rankings stay under at the run's budget (the blind ranking that reaches highest: uniform over every unit of a bucket, over one entity kind's units, or over one public class's units such as an employee role or a key's credential kind, over the union of the roles the scenario's actors come from or the employees its actor-picking rule allows, or a rotation through one of these); only the part of a raw score above it counts.",
    "chance (blind)": "The leaderboard row of rankings that know nothing about the attack: per scenario the blind ranking that reaches highest (uniform over every unit of a bucket, over the units of one entity kind, say ten random employees a day, or of one public class, say ten random analysts a day or every token-signing key, or of the roles the scenario's actors come from, or of the employees its actor-picking rule allows; or a rotation through one of these, each day the ten read least recently), the mean of many draws with their 2.5-97.5 percentiles in brackets.",
    "caught": "The share of incidents detected: an analyst reading the top k units of each day sees at least one of the insider's own units (accounts, credentials, own addresses) on a day of the incident when that unit acts in it (a day without the insider's malicious rows does not count).",
    "timely": "Per incident 1 - (days from its first detectable day to detection) / (its detectable window in days), 0 when missed; the mean over incidents.",
    "prevent": "Exposure prevented: the share of the harm (records weighted by kind, see Harm in docs/metrics.md) that an alert in time stops, relative to what an alert on the first detectable day could stop; the oracle scores 100%.",
    "op": "Operational score: cost = harm exposed before detection + cost of each false alert read (standard profile: 0.3 records each), scaled so null scores 0 and a detector that alerts on every incident's first detectable day with no false alert 100; below 0 when false alerts cost more than the harm they prevent.",
    "AUPRC": "Area under the precision-recall curve (average precision) of all emitted alerts against the insider's units, whatever the budget; 0 to 1.",
    "lift": "Pooled AUPRC divided by the expected AUPRC of the blind ranking that reaches highest on the same datasets (uniform over every unit, one entity kind, one public class such as analysts, or the classes that hold the actors); 1 = no better than knowing which sort of entity tends to act.",
    "victims": "The share of victim units (customers whose records were read) that appear within budget; flagging a victim is not a detection.",
    "TTD (days)": "Median time to detect: days from the incident's first day to the day of the first true alert within budget; missed incidents count as never, so it reads `missed` when more than half are missed.",
    "false": "False alerts per day: units read within budget (top k of each day) that are not the insider's own, averaged over scored days.",
    "score s": "Seconds the detector spent scoring (fit excluded), summed over datasets; in a sealed slot by the bench's clock (from each bucket shown to the detector's next request), never the detector's own.",
    "events/s": "Log events scored per second of scoring time.",
    "peak MB": "The detector process's peak memory, in megabytes.",
    "runs": "Datasets (seed x scenario) the detector ran on successfully, of all datasets in the run.",
    "interval": "Numbers in brackets are bootstrap intervals at suite.confidence (95% by default): for the detection score the datasets of each scenario resampled and the incidents within them, for the other metrics whole datasets resampled. Two detectors whose intervals overlap are not clearly different.",
    "budget k": "How many units (entity, day) an analyst reads per day, top scores first; only alerts within budget count as detections or false alerts.",
    "first true alert": "For one incident and detector, the day (counted from the incident's first day, day 0) of the first alert within budget on one of the insider's own units, and that alert's `reason` text.",
    "records exposed": "Distinct customers whose records an incident read (by kind of read in the incident table); harm weighs each (customer, kind) row by its kind, in units of one customer record (targeted look-ups count most).",
}

COLUMNS = [
    ("detector", "detector", "{}"),
    ("status", "status", "{}"),
    ("detection_score", "detection score", "{:.1f}"),
    ("recall_at_k", "caught", "{:.2f}"),
    ("timeliness", "timely", "{:.2f}"),
    ("exposure_prevented", "prevent", "{:.0%}"),
    ("op_score", "op", "{:.1f}"),
    ("auprc", "AUPRC", "{:.3f}"),
    ("lift", "lift", "{:.1f}"),
    ("victims_flagged_share", "victims", "{:.1%}"),
    ("ttd_median_buckets", "TTD (days)", "{:.0f}"),
    ("false_alerts_per_bucket", "false", "{:.2f}"),
    ("score_s", "score s", "{:.2f}"),
    ("events_per_s", "events/s", "{:,.0f}"),
    ("peak_mb", "peak MB", "{:,.0f}"),
]

#: What the printed table shows (the rest is in leaderboard.md, results.json and report.html).
PRINTED = (
    "detector",
    "detection_score",
    "recall_at_k",
    "timeliness",
    "exposure_prevented",
    "op_score",
    "auprc",
    "false_alerts_per_bucket",
)

CI_KEYS = {"detection_score", "op_score", "auprc", "recall_at_k", "exposure_prevented", "ttd_median_buckets"}


def _cell(row: dict[str, Any], key: str, fmt: str, ci_keys: set[str] = CI_KEYS) -> str:
    if row.get("status") != "OK" and key not in ("detector", "status"):
        return "-"
    v = row.get(key)
    if v is None:
        return "missed" if key == "ttd_median_buckets" and not row.get("chance") else "-"
    text = fmt.format(v)
    lo, hi = (row.get("ci") or {}).get(key, [None, None])
    if key in ci_keys and lo is not None and hi is not None and lo != hi:
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return text


#: Where the anchors go among rows of the same detection score: the oracle first, null last, detectors between them.
_TIE_RANK = {"oracle": 0, "null": 2}


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by detection score (the headline), best first; failed runs last.

    Rows of the same detection score (most often none above chance: 0) are tied, and go by id, the oracle first and
    null last among them. No other figure breaks the tie: the operational score and the share caught have no chance
    line subtracted, and a red team's blind rotations through two roles (op 12 to 20) stood above the honest
    ``rule-off-hours-bulk-v1`` (op 8.7) when the operational score broke ties at 0.
    """

    def val(r: dict[str, Any], key: str) -> float:
        return -(r[key] if r.get(key) is not None else -1e18)

    return sorted(
        rows, key=lambda r: (r["status"] != "OK", val(r, "detection_score"), _TIE_RANK.get(r["detector"], 1), r["detector"])
    )


def chance_row(chance: dict[str, Any] | None, budget: int) -> dict[str, Any] | None:
    """A leaderboard row for the chance line at ``budget`` (mean, with its spread as the interval)."""
    if not chance:
        return None
    line = chance.get("by_budget", {}).get(str(budget), {}).get("overall")
    if not line:
        return None
    keys = {
        "detection_score": "detection_score",
        "recall_at_k": "recall_at_k",
        "timeliness": "timeliness",
        "exposure_prevented": "exposure_prevented",
        "op_score": "op_score:standard",
        "auprc": "auprc",
        "false_alerts_per_bucket": "false_alerts_per_bucket",
        "victims_flagged_share": "victims_flagged_share",
    }
    row: dict[str, Any] = {"detector": "chance (blind)", "status": "OK", "ci": {}, "chance": True}
    for k, src in keys.items():
        if src in line:
            row[k] = line[src]["mean"]
            row["ci"][k] = [line[src]["lo"], line[src]["hi"]]
    return row


def stability_lines(payload: dict[str, Any]) -> list[str]:
    """Plain-text lines (under 100 columns) on the headline's precision: interval widths of the top three, split-half correlation."""
    out = []
    head = payload.get("headline") or {}
    ok = [r for r in payload.get("results", []) if r.get("status") == "OK"]
    if ok and all(r.get("detection_score") is None for r in ok):
        out += [
            "detection score: none (-) at this budget: on every scenario a blind ranking catches every",
            "  incident at once in some draws (chance bar 100), so no score can stand above chance",
        ]
    if head.get("top"):
        out.append(f"detection score 95% interval widths, top {len(head['top'])} (target: at most 10 points):")
        out += [f"  {d}: {'-' if w is None else f'{w:.1f}'}" for d, w in zip(head["top"], head["widths"], strict=True)]
    copies: dict[str, list[str]] = {}
    for r in payload.get("results", []):
        if r.get("same_results_as"):
            copies.setdefault(r["same_results_as"], []).append(r["detector"])
    for first, same in copies.items():
        out.append(f"same detection as {first}: {', '.join(same)}")
        out.append("  (each incident caught alike: counted once in the top three's widths and the split-half rho)")
    stab = payload.get("stability") or {}
    if stab:
        rho = stab.get("rho")
        halves = " vs ".join(str(h) for h in stab.get("halves", []))
        exact = stab.get("rho_exact")
        ranked = stab.get("ranked")
        over = "" if ranked is None else f", {len(ranked)} of {len(stab.get('detectors', []))} detectors above chance in a half"
        few = len(stab.get("halves", [[]])[-1]) > 0 and ranked is not None and len(ranked) < 3
        why = "n/a (fewer than three detectors above chance in a half)" if few else "n/a (too few seeds or detectors)"
        out.append(f"split-half rank correlation (seeds {halves}, target at least 0.8): {why if rho is None else f'{rho:.2f}'}")
        if over:
            out.append(f"  (each half above its own chance bars{over})")
        if rho is not None and exact is not None:
            out.append(f"  (scores compared at {stab.get('resolution', 1.0):g}-point resolution; unrounded: {exact:.2f})")
    return out


def _code(text: object) -> str:
    """``text`` for a Markdown code span: one line (:func:`breachbench.runner.detector_text`), no backticks to close it."""
    return detector_text(text).replace("`", "'")


def md_cell(text: object) -> str:
    """Detector-supplied ``text`` (an entity id, a reason) as a Markdown table cell that shows it and nothing more: a
    code span (no markup, links or HTML inside), one line, its pipes escaped (a pipe ends a cell even in a code span)
    and its backslashes doubled (``ok\\|`` had escaped the escape, and the pipe ended the cell)."""
    text = _code(text).replace("\\", "\\\\")  # a backslash doubled, so that none escapes the pipe's own below
    return f"`{text.replace('|', chr(92) + '|')}`" if text else ""


def leaderboard_markdown(rows: list[dict[str, Any]], title: str, budget: int, payload: dict[str, Any] | None = None) -> str:
    """The leaderboard as a Markdown table, with the chance line as its last row."""
    head = "| " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    chance = chance_row((payload or {}).get("chance"), budget)
    body = [
        "| " + " | ".join(_cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in [*ordered(rows), *([chance] if chance else [])]
    ]
    errors = [f"- `{_code(r['detector'])}`: `{_code(r['error'])}`" for r in rows if r["status"] != "OK"]
    notes = (
        f"\nBudget k = {budget} alert units per bucket; only actor units (the insider's accounts, credentials and own "
        "addresses) detect. detection score: per scenario the mean of incidents caught, timeliness and exposure prevented, "
        "then the equal-weight mean over scenarios (0 = null, 100 = oracle); rows of the same detection score are tied and "
        "listed by id. op score: harm-weighted cost, 0 = null, "
        "100 = alert in the first detectable bucket with no false alert (standard cost profile). Brackets: 95% bootstrap "
        "intervals (detection score: datasets, then their incidents, resampled within scenarios; others: runs resampled); for the chance row, "
        "the 2.5-97.5 percentiles of the blind rankings' draws. `oracle` reads truth: it is an anchor, not a detector.\n"
    )
    extra = ["", "```", *stability_lines(payload), "```"] if payload else []
    glossary = ["", "## Glossary", "", *(f"- **{h}**: {GLOSSARY[h]}" for _, h, _ in COLUMNS if h in GLOSSARY), ""]
    return "\n".join(
        [
            f"# Leaderboard: {title}",
            "",
            head,
            sep,
            *body,
            notes,
            *extra,
            *(["", "## Errors", "", *errors, ""] if errors else []),
            *glossary,
        ]
    )


def _table(
    title: str | None, cols: list[tuple[str, str, str]], rows: list[dict[str, Any]], chance: dict[str, Any] | None
) -> Table:
    from rich import box

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for key, h, _ in cols:
        table.add_column(h, justify="left" if key == "detector" else "right", no_wrap=True)
    for r in rows:
        table.add_row(*(_cell(r, k, f, {"detection_score"}) for k, _, f in cols))
    if chance:
        table.add_section()
        table.add_row(*(_cell(chance, k, f, {"detection_score"}) for k, _, f in cols))
    return table


def leaderboard_tables(
    rows: list[dict[str, Any]], title: str, payload: dict[str, Any] | None = None, width: int = 100
) -> list[Table]:
    """The printed leaderboard as one table when it fits ``width`` columns, else as several (each led by the detector).

    Numbers are never cut: a table's natural width is measured first and columns move to the next table instead.
    """
    budget = (payload or {}).get("budget", 10)
    chance = chance_row((payload or {}).get("chance"), budget)
    ranked = ordered(rows)
    cols = [c for c in COLUMNS if c[0] in PRINTED]
    wide = Console(width=10_000, file=io.StringIO())

    def fits(group: list[tuple[str, str, str]]) -> bool:
        return wide.measure(_table(None, group, ranked, chance)).maximum <= width

    groups: list[list[tuple[str, str, str]]] = [[cols[0]]]
    for c in cols[1:]:
        if fits([*groups[-1], c]) or len(groups[-1]) == 1:
            groups[-1].append(c)
        else:
            groups.append([cols[0], c])
    return [
        _table(f"Leaderboard: {title}" + (f" ({i + 1}/{len(groups)})" if len(groups) > 1 else ""), g, ranked, chance)
        for i, g in enumerate(groups)
    ]


def print_leaderboard(
    rows: list[dict[str, Any]], title: str, console: Console | None = None, payload: dict[str, Any] | None = None
) -> None:
    """Print the leaderboard within 100 columns (split in two tables when needed, numbers never cut), then its stability."""
    console = console or Console()
    for table in leaderboard_tables(rows, title, payload, width=min(100, console.width)):
        console.print(table)
    for line in stability_lines(payload or {}):
        console.print(line, highlight=False)
    console.print(
        "caught: incidents caught; timely: how early; prevent: exposure prevented; op: operational score;", highlight=False
    )
    console.print("false: false alerts per day. Every column is explained in report.html and README (Glossary).", highlight=False)
    if any(r.get("runs_total", 1) > 1 for r in rows):
        console.print("intervals of the other metrics: leaderboard.md and report.html", highlight=False)
    for r in rows:
        if r["status"] != "OK":
            console.print(
                f"[red]{escape(detector_text(r['detector']))}[/red]: {escape(detector_text(r['error']))}",
                highlight=False,
                emoji=False,
            )


def finite_json(value: Any) -> Any:
    """``value`` with every float that is not finite as None: strict JSON has no NaN or Infinity, and a parser that
    holds to it refused a results.json with one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def write_results(out: Path, payload: dict[str, Any], rows: list[dict[str, Any]], title: str, budget: int) -> tuple[Path, Path]:
    """Write ``results.json`` and ``leaderboard.md`` atomically; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    res, board = out / "results.json", out / "leaderboard.md"
    for path, text in (
        (res, json.dumps(finite_json(payload), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"),
        (board, leaderboard_markdown(rows, title, budget, payload)),
    ):
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text)
        tmp.replace(path)
    return res, board


# ---- the first screen: verdict, scenario matrix, per-incident table (data; html.py renders) ----------

ANCHORS = ("oracle",)  # reads truth: never "the best detector"
#: The fewest test seeds with which the verdict judges a gap by the intervals' overlap. The interval resamples a
#: scenario's datasets, so with one seed it holds the incidents' variation alone: a red team's two halves of one
#: procedure (a rule switched off on a world by a coin) were called significantly apart in 23-63% of simulated pairs with
#: one seed, 7-10% with two, 1-2% with four and at most 0.3% with eight.
JUDGE_SEEDS = 4


def _median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    if not xs:
        return None
    m = len(xs) // 2
    return float(xs[m]) if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def scenario_cells(
    row: dict[str, Any], scenario: str, bars: dict[str, float] | None = None, resamples: int = 1000, confidence: float = 0.95
) -> dict[str, Any] | None:
    """One detector on one scenario: caught (of the detectable incidents), median days to detect, exposure prevented, scores.

    ``ci`` is the scenario's detection score interval above its chance bar (its datasets and their incidents resampled,
    as the headline's interval does).
    """
    from breachbench.stats import headline

    if row.get("status") != "OK" or scenario not in (row.get("by_scenario") or {}):
        return None
    incs = [i for i in row.get("incidents") or [] if i["scenario"] == scenario and i.get("detectable", True)]
    caught = [i for i in incs if i["detected"]]
    sc = row["by_scenario"][scenario]
    pt = sc["point"]
    ci = (
        headline([i for i in row.get("incidents") or [] if i["scenario"] == scenario], resamples, confidence, chance=bars or {})[
            "ci"
        ]
        if incs
        else None
    )
    return {
        "caught": len(caught),
        "incidents": len(incs),
        "caught_share": len(caught) / len(incs) if incs else None,
        "ttd_median": _median([i["ttd_buckets"] for i in caught if i["ttd_buckets"] is not None]),
        "prevented": pt.get("exposure_prevented"),
        "score": pt.get("detection_score"),
        "raw": pt.get("detection_score_raw"),
        "ci": ci if ci and None not in ci else None,
    }


def scenario_matrix(payload: dict[str, Any]) -> dict[str, Any]:
    """Scenario x detector: every detector's cells per scenario, the chance bar per scenario, detectors in headline order."""
    from breachbench.suite import chance_bars, chance_kinds

    rows = ordered(payload["results"])
    scen = sorted({s for r in rows if r["status"] == "OK" for s in r.get("by_scenario", {})})
    bars = chance_bars(payload.get("chance"), payload.get("budget", 10))
    suite = (payload.get("config") or {}).get("suite") or {}
    n, conf = int(suite.get("bootstrap", 1000)), float(payload.get("confidence", 0.95))
    return {
        "scenarios": scen,
        "bars": bars,
        "bar_kinds": chance_kinds(payload.get("chance"), payload.get("budget", 10)),
        "detectors": [r["detector"] for r in rows],
        "cells": {r["detector"]: {s: scenario_cells(r, s, bars, n, conf) for s in scen} for r in rows},
    }


def _interval(lo_hi: list[float] | None) -> str:
    return "" if not lo_hi or None in lo_hi else f" [{lo_hi[0]:.1f}, {lo_hi[1]:.1f}]"


def _overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    if not a or not b or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def _days(x: float | None) -> str:
    return "-" if x is None else f"{x:g} day" + ("" if x == 1 else "s")


def verdict(payload: dict[str, Any]) -> list[str]:
    """The first screen's verdict in plain words, generated from the results (one sentence per line)."""
    # each detector once: a row with another's results (same_results_as) is named beside it, never ranked against it
    ok = [
        r
        for r in ordered(payload["results"])
        if r["status"] == "OK" and r["detector"] not in ANCHORS and not r.get("same_results_as")
    ]
    rows = [r for r in ok if r.get("detection_score") is not None]
    if not ok:
        return ["No detector finished: there is nothing to rank (see the errors under the leaderboard)."]
    m = scenario_matrix(payload)
    if not rows:
        out = [
            "No detector has a detection score: on every scenario of this run a blind ranking catches every incident at "
            "once in some draws (its chance bar is 100), so no score can stand above chance at this budget."
        ]
        for s in m["scenarios"]:
            out += _scenario_line(s, ok, m)
        return out
    out = _ranking_lines(payload, rows)
    out += _best_lines(rows[0], m)
    leaking = (payload.get("leakage_audit") or {}).get("leaking") or []
    if leaking:
        out.append(f"Read with care: a one-line shortcut reaches the leak line on {', '.join(leaking)} (see the leakage audit).")
    for s in m["scenarios"]:
        out += _scenario_line(s, rows, m)
    return out


def _ranking_lines(payload: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The best detector overall (with those tied), and the runner-up with whether the gap is significant."""
    best, out = rows[0], []
    ci = (best.get("ci") or {}).get("detection_score")
    tied = [r["detector"] for r in rows[1:] if round(r["detection_score"], 1) == round(best["detection_score"], 1)]
    same = [r["detector"] for r in payload["results"] if r.get("same_results_as") == best["detector"]]
    also = f" ({', '.join(same)}: the same detection)" if same else ""
    out.append(
        f"Best detector overall: {best['detector']}{also}{' (tied with ' + ', '.join(tied) + ')' if tied else ''}, "
        f"detection score {best['detection_score']:.1f}{_interval(ci)} (0 = alerts nothing, 100 = the oracle, which reads the answers)."
    )
    if len(rows) > 1:
        second = rows[1 + len(tied)] if len(rows) > 1 + len(tied) else rows[1]
        ci2 = (second.get("ci") or {}).get("detection_score")
        ov = _overlap(ci, ci2)
        gap = round(best["detection_score"], 1) - round(second["detection_score"], 1)  # as the reader would subtract them
        conf = f"{payload.get('confidence', 0.95):.0%}"
        seeds = len((payload.get("seeds") or {}).get("test") or [])
        judged = (
            f"with {seeds} seed{'' if seeds == 1 else 's'} the intervals cannot show how a detector varies from world to world, "
            f"so the gap is not judged (at least {JUDGE_SEEDS} seeds)"
            if 0 < seeds < JUDGE_SEEDS
            else f"their {conf} intervals overlap, so the gap is not significant"
            if ov
            else f"their {conf} intervals do not overlap, so the gap is significant"
            if ov is False
            else "no interval to judge the gap by (one run)"
        )
        out.append(
            f"Runner-up: {second['detector']}, {second['detection_score']:.1f}{_interval(ci2)}, {gap:.1f} points behind; {judged}."
        )
    return out


def _best_lines(best: dict[str, Any], m: dict[str, Any]) -> list[str]:
    """What the best detector catches and misses per scenario, and how early."""
    out = []
    cells = m["cells"][best["detector"]]
    catches = [s for s in m["scenarios"] if (c := cells.get(s)) and c["incidents"] and c["caught"] == c["incidents"]]
    partly = [s for s in m["scenarios"] if (c := cells.get(s)) and 0 < c["caught"] < c["incidents"]]
    misses = [s for s in m["scenarios"] if (c := cells.get(s)) and c["incidents"] and c["caught"] == 0]
    parts = []
    if catches:
        parts.append("catches every incident of " + ", ".join(catches))
    if partly:
        parts.append(
            "catches some incidents of " + ", ".join(f"{s} ({cells[s]['caught']}/{cells[s]['incidents']})" for s in partly)
        )
    if misses:
        parts.append("misses every incident of " + ", ".join(misses))
    if parts:
        out.append(f"{best['detector']} " + "; ".join(parts) + ".")
    incidents = best.get("incidents") or []
    ttds = [i["ttd_buckets"] for i in incidents if i["detected"] and i["ttd_buckets"] is not None]
    if ttds:
        out.append(
            f"How early: on the {len(ttds)} of {len(incidents)} incidents it catches, {best['detector']} raises its first true "
            f"alert a median {_days(_median(ttds))} after an incident's first day "
            f"(fastest {_days(min(ttds))}, slowest {_days(max(ttds))}). Over all {len(incidents)} incidents, those it "
            f"misses included, it prevents {best.get('exposure_prevented') or 0:.0%} of the exposure that an alert on "
            "the first detectable day would."
        )
    return out


#: How a chance line's blind ranking reads in prose (its entity kind, plural).
_KIND_WORDS = {"employee": "employees", "customer": "customers", "ip": "addresses", "key": "keys", "token": "tokens"}


def kind_words(kind: str) -> str:
    """A blind ranking's units in prose: ``employees``, ``analyst employees``, ``token-signing keys``, ``logistics or
    support agent employees`` (a union of classes, ``employee:logistics+employee:support_agent``), ``analyst employees
    its picking rule allows`` (``pool:employee:analyst``); a rotation's (``rotating:<kind>``) are its kind's."""
    from breachbench.chance import POOL, POOL_OF, ROTATING, UNION

    kind = kind.removeprefix(ROTATING)
    if kind == POOL or kind.startswith(POOL_OF):
        return f"{kind_words(kind.removeprefix(POOL_OF)) if kind != POOL else 'employees'} its picking rule allows"
    parts = kind.split(UNION)
    base = parts[0].partition(":")[0]
    classes = [c.replace("_", " ") for p in parts if (c := p.partition(":")[2])]
    words = _KIND_WORDS.get(base, base)
    if not classes:
        return words
    listed = classes[0] if len(classes) == 1 else ", ".join(classes[:-1]) + " or " + classes[-1]
    return f"{listed} {words}"


def kind_note(m: dict[str, Any], scenario: str) -> str:
    """`` (random employees)`` when a scenario's chance line ranks one entity kind or class only (:func:`scenario_matrix`),
    `` (employees in rotation)`` when it is a rotation through them, else nothing."""
    from breachbench.chance import ROTATING

    kind = m.get("bar_kinds", {}).get(scenario)
    if not kind or kind == "any":
        return ""
    return f" ({kind_words(kind)} in rotation)" if kind.startswith(ROTATING) else f" (random {kind_words(kind)})"


def _scenario_line(s: str, rows: list[dict[str, Any]], m: dict[str, Any]) -> list[str]:
    """Scenario ``s``'s best detector above chance (with those tied), or that none scores above chance; empty when none scored."""
    ranked = sorted(
        ((r, c) for r in rows if (c := m["cells"][r["detector"]].get(s)) and c["score"] is not None),
        key=lambda rc: (-rc[1]["score"], -(rc[1]["raw"] or 0), rc[0]["detector"]),
    )
    bar = m["bars"].get(s)
    bar_text = f"; chance bar {bar:.1f} raw{kind_note(m, s)}" if bar is not None else ""
    if not ranked:
        # raw scores but none above chance: the bar is 100 (without a bar the score is the raw one)
        raws = [c["raw"] for r in rows if (c := m["cells"][r["detector"]].get(s)) and c["raw"] is not None]
        if raws:
            return [
                f"{s}: no score above chance at this budget: a blind ranking{kind_note(m, s)} catches every incident at "
                f"once in some draws (chance bar 100 raw); best raw score {max(raws):.1f}, left out of the headline."
            ]
        return []
    r, c = ranked[0]
    if c["score"] <= 0:
        return [f"{s}: no detector scores above chance (best raw score {c['raw'] or 0:.1f}{bar_text})."]
    ties = [x[0]["detector"] for x in ranked[1:] if round(x[1]["score"], 1) == round(c["score"], 1)]
    ttd = (
        f", median time to detect {c['ttd_median']:g} day{'' if c['ttd_median'] == 1 else 's'}"
        if c["ttd_median"] is not None
        else ""
    )
    return [
        f"{s}: best {r['detector']}{' (tied with ' + ', '.join(ties) + ')' if ties else ''}, "
        f"{c['score']:.1f}{_interval(c['ci'])} above chance; caught {c['caught']}/{c['incidents']}{ttd}, "
        f"{c['prevented'] or 0:.0%} of exposure prevented{bar_text}."
    ]


INCIDENT_COLUMNS = [
    "scenario",
    "knobs",
    "seed",
    "dataset",
    "incident_id",
    "actor_role",
    "start",
    "end",
    "window_days",
    "records_exposed",
    "records_by_kind",
    "harm_total",
    "detector",
    "detected",
    "first_alert_day",
    "first_alert_date",
    "ttd_days",
    "timeliness",
    "records_before_detection",
    "harm_before_detection",
    "reason",
]


def _actor_role(ds: Any, actors: list[int], when: Any) -> str:
    """The actors' role (and kind, when not an employee), with "left" when they had left the company by the incident."""
    import polars as pl

    try:
        emp = pl.read_parquet(sorted((ds.root / "world").glob("employees-*.parquet")))
    except Exception:
        return ""
    day = when.date() if hasattr(when, "date") else when
    out = []
    for e in emp.filter(pl.col("employee_id").is_in(list(actors))).iter_rows(named=True):
        text = str(e.get("role") or "")
        if e.get("kind") and e["kind"] != "employee":
            text += f" ({e['kind']})"
        if e.get("termination_date") is not None and day is not None and e["termination_date"] <= day:
            text += f", left {e['termination_date'].isoformat()}"
        out.append(text)
    return "; ".join(sorted(set(out)))


def within_budget(out: Path, label: str, detector: str, budget: int, single: bool, cache: dict[Any, Any] | None = None) -> Any:
    """A detector's alerts on one dataset cut to the top ``budget`` units of each day (with ``rank``), or None without a file.

    ``cache`` (any dict) keeps each cut, so the report reads every alerts file once.
    """
    import polars as pl

    from breachbench.scoring import top_k

    key = (label, detector, budget)
    if cache is not None and key in cache:
        return cache[key]
    path = Path(out) / "alerts" / (f"{detector}.parquet" if single else f"{label}/{detector}.parquet")
    frame = top_k(pl.read_parquet(path), budget) if path.is_file() else None
    if cache is not None:
        cache[key] = frame
    return frame


def _first_reasons(read: Any, actors: Any) -> dict[tuple[int, str], str]:
    """(incident id, bucket) -> the reason of the best-ranked alert within budget (``read``) on one of that incident's actor
    units, as :func:`breachbench.runner.detector_text` shows detector text (a red team's reason held a terminal's escape
    sequences and a right-to-left override, which went into incidents.csv and report.html as they were)."""
    from breachbench.scoring import KEYS

    if read is None or "reason" not in read.columns or read.height == 0:
        return {}
    hits = read.join(actors, on=KEYS, how="inner").sort("incident_id", "bucket", "rank")
    out: dict[tuple[int, str], str] = {}
    for iid, bucket, reason in hits.select("incident_id", "bucket", "reason").iter_rows():
        out.setdefault((int(iid), bucket.isoformat()), "" if reason is None else detector_text(reason))
    return out


def _incident_facts(datasets: dict[str, Any], truths: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (dataset, incident): the actor's role, the window and the records by kind; fills ``truths`` with the truths it loads."""
    import polars as pl

    from breachbench.scoring import Truth

    facts: dict[tuple[str, int], dict[str, Any]] = {}
    for label, ds in datasets.items():
        truth = truths[label] = truths[label] if label in truths else Truth.of(ds)
        kinds = truth.exposure_kinds if truth.exposure_kinds is not None else pl.DataFrame()
        for inc in truth.incidents.iter_rows(named=True):
            iid = int(inc["incident_id"])
            mine = kinds.filter(pl.col("incident_id") == iid) if kinds.height else kinds
            by_kind = dict(sorted(mine.group_by("kind").len().iter_rows())) if mine.height else {}
            facts[(label, iid)] = {
                "actor_role": _actor_role(ds, inc["actors"] or [], inc["start"]),
                "start": inc["start"].date().isoformat() if inc["start"] else "",
                "end": inc["end"].date().isoformat() if inc["end"] else "",
                "window_days": (inc["end"].date() - inc["start"].date()).days + 1 if inc["start"] and inc["end"] else None,
                "records_by_kind": "; ".join(f"{k} {n}" for k, n in by_kind.items()),
            }
    return facts


def incident_rows(
    payload: dict[str, Any],
    datasets: dict[str, Any] | None = None,
    out: Path | None = None,
    truths: dict[str, Any] | None = None,
    cache: dict[Any, Any] | None = None,
) -> list[dict[str, Any]]:
    """The per-incident table, one row per (incident, detector), grouped by scenario then seed and incident.

    ``datasets`` (label -> Dataset) adds the actor's role, the window and records by kind; ``out`` (the run directory)
    adds each first true alert's ``reason`` from the alerts files; ``truths`` (label -> Truth) and ``cache``
    (see :func:`within_budget`) save loading them again.
    """
    by_label = {d["label"]: d for d in payload.get("datasets", []) if not d.get("tuning")}
    knobs = {}
    for spec in (payload.get("config") or {}).get("scenarios", []):
        knobs[spec["id"]] = ", ".join(f"{k}={v}" for k, v in sorted((spec.get("knobs") or {}).items()))
    single = len(by_label) == 1
    truths = dict(truths or {})
    facts = _incident_facts(datasets or {}, truths)
    budget = payload.get("budget", 10)
    rows: list[dict[str, Any]] = []
    for r in ordered(payload["results"]):
        if r["status"] != "OK":
            continue
        for run in r.get("runs", []):
            label = run["dataset"]
            reasons: dict[tuple[int, str], str] = {}
            if out is not None and label in truths:
                reasons = _first_reasons(within_budget(out, label, r["detector"], budget, single, cache), truths[label].actors)
            for i in run.get("incidents", []):
                f = facts.get((label, i["incident_id"]), {})
                reason = reasons.get((i["incident_id"], i.get("detected_bucket") or ""), "")
                rows.append(_incident_row(r["detector"], run, i, f, knobs.get(run["scenario"], ""), reason))
    order = {d: j for j, d in enumerate(r["detector"] for r in ordered(payload["results"]))}
    rows.sort(key=lambda x: (x["scenario"], x["seed"], x["incident_id"], order[x["detector"]]))
    return rows


def _incident_row(
    detector: str, run: dict[str, Any], i: dict[str, Any], f: dict[str, Any], knobs: str, reason: str
) -> dict[str, Any]:
    """One row of the incident table: incident ``i`` of ``run`` (a results row's run) as ``detector`` saw it,
    with the incident's facts ``f`` (:func:`_incident_facts`), its scenario's knobs and the first true alert's reason."""
    start = f.get("start")
    day = i["ttd_buckets"] if i["detected"] else None
    return {
        "scenario": run["scenario"],
        "knobs": knobs,
        "seed": run["seed"],
        "dataset": run["dataset"],
        "incident_id": i["incident_id"],
        "actor_role": f.get("actor_role", ""),
        "start": start or "",
        "end": f.get("end", ""),
        "window_days": f.get("window_days"),
        "records_exposed": i.get("exposed_total"),
        "records_by_kind": f.get("records_by_kind", ""),
        "harm_total": i.get("harm_total"),
        "detector": detector,
        "detected": bool(i["detected"]),
        "first_alert_day": day,
        "first_alert_date": i.get("detected_bucket") or "",
        "ttd_days": i["ttd_buckets"],
        "timeliness": i.get("timeliness"),
        "records_before_detection": i.get("exposed_before_detection"),
        "harm_before_detection": i.get("harm_before_detection"),
        "reason": reason,
    }


def write_incidents_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``incidents.csv``: the per-incident table, one row per (incident, detector), atomically."""
    import csv

    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=INCIDENT_COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({k: _csv_text(row.get(k)) for k in INCIDENT_COLUMNS})
    tmp.replace(path)
    return path


def _csv_text(value: object) -> object:
    """A cell of ``incidents.csv``: empty for None; text that a spreadsheet would run as a formula (a detector's
    reason starting ``=HYPERLINK(...)``, say: ``=``, ``+``, ``-``, ``@``, a tab or a carriage return first) behind a
    quote, which the spreadsheet shows and does not run."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def glossary_markdown() -> str:
    """The glossary as README.md carries it, one entry a line (a test checks README holds these lines verbatim)."""
    return "\n".join(f"- **{term}**: {text}" for term, text in GLOSSARY.items())
