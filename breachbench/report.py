"""Results files: ``results.json`` (versioned) and ``leaderboard.md``; the printed leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SCHEMA_VERSION = 3

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
PRINTED = ("detector", "detection_score", "recall_at_k", "timeliness", "exposure_prevented", "op_score", "auprc", "false_alerts_per_bucket")

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


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by detection score (the headline), then operational score, best first; failed runs last."""

    def val(r: dict[str, Any], key: str) -> float:
        return -(r[key] if r.get(key) is not None else -1e18)

    return sorted(rows, key=lambda r: (r["status"] != "OK", val(r, "detection_score"), val(r, "op_score"), r["detector"]))


def chance_row(chance: dict[str, Any] | None, budget: int) -> dict[str, Any] | None:
    """A leaderboard row for the chance line at ``budget`` (mean, with its spread as the interval)."""
    if not chance:
        return None
    line = chance.get("by_budget", {}).get(str(budget), {}).get("overall")
    if not line:
        return None
    keys = {"detection_score": "detection_score", "recall_at_k": "recall_at_k", "timeliness": "timeliness", "exposure_prevented": "exposure_prevented",
            "op_score": "op_score:standard", "auprc": "auprc", "false_alerts_per_bucket": "false_alerts_per_bucket",
            "victims_flagged_share": "victims_flagged_share"}
    row: dict[str, Any] = {"detector": "chance (uniform)", "status": "OK", "ci": {}, "chance": True}
    for k, src in keys.items():
        if src in line:
            row[k] = line[src]["mean"]
            row["ci"][k] = [line[src]["lo"], line[src]["hi"]]
    return row


def stability_lines(payload: dict[str, Any]) -> list[str]:
    """Plain-text lines (under 100 columns) on the headline's precision: interval widths of the top three, split-half correlation."""
    out = []
    head = payload.get("headline") or {}
    if head.get("top"):
        out.append(f"detection score 95% interval widths, top {len(head['top'])} (target: at most 10 points):")
        out += [f"  {d}: {'-' if w is None else f'{w:.1f}'}" for d, w in zip(head["top"], head["widths"], strict=True)]
    stab = payload.get("stability") or {}
    if stab:
        rho = stab.get("rho")
        halves = " vs ".join(str(h) for h in stab.get("halves", []))
        exact = stab.get("rho_exact")
        out.append(f"split-half rank correlation (seeds {halves}, target at least 0.8): "
                   f"{'n/a (too few seeds or detectors)' if rho is None else f'{rho:.2f}'}")
        if rho is not None and exact is not None:
            out.append(f"  (scores compared at {stab.get('resolution', 1.0):g}-point resolution; unrounded: {exact:.2f})")
    return out


def leaderboard_markdown(rows: list[dict[str, Any]], title: str, budget: int, payload: dict[str, Any] | None = None) -> str:
    """The leaderboard as a Markdown table, with the chance line as its last row."""
    head = "| " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    chance = chance_row((payload or {}).get("chance"), budget)
    body = ["| " + " | ".join(_cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in [*ordered(rows), *([chance] if chance else [])]]
    errors = [f"- `{r['detector']}`: {r['error']}" for r in rows if r["status"] != "OK"]
    notes = (
        f"\nBudget k = {budget} alert units per bucket; only actor units (the insider's accounts, credentials and own "
        "addresses) detect. detection score: per scenario the mean of incidents caught, timeliness and exposure prevented, "
        "then the equal-weight mean over scenarios (0 = null, 100 = oracle). op score: harm-weighted cost, 0 = null, "
        "100 = alert in the first detectable bucket with no false alert (standard cost profile). Brackets: 95% bootstrap "
        "intervals (detection score: incidents resampled within scenarios; others: runs resampled); for the chance row, "
        "the 2.5-97.5 percentiles of a uniform ranking's draws. `oracle` reads truth: it is an anchor, not a detector.\n"
    )
    extra = ["", "```", *stability_lines(payload), "```"] if payload else []
    return "\n".join([f"# Leaderboard: {title}", "", head, sep, *body, notes, *extra, *(["", "## Errors", "", *errors, ""] if errors else [])])


def print_leaderboard(rows: list[dict[str, Any]], title: str, console: Console | None = None, payload: dict[str, Any] | None = None) -> None:
    """Print the leaderboard (at most 100 columns): the headline with its interval, then its chance line and stability."""
    from rich import box

    console = console or Console()
    table = Table(title=f"Leaderboard: {title}", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    cols = [c for c in COLUMNS if c[0] in PRINTED]
    for key, h, _ in cols:
        table.add_column(h, justify="left" if key == "detector" else "right", no_wrap=True)
    budget = (payload or {}).get("budget", 10)
    chance = chance_row((payload or {}).get("chance"), budget)
    for r in ordered(rows):
        table.add_row(*(_cell(r, k, f, {"detection_score"}) for k, _, f in cols))
    if chance:
        table.add_section()
        table.add_row(*(_cell(chance, k, f, {"detection_score"}) for k, _, f in cols))
    console.print(table)
    for line in stability_lines(payload or {}):
        console.print(line, highlight=False)
    console.print("caught: incidents caught; prevent: exposure prevented; op: operational score; false: per bucket",
                  highlight=False)
    if any(r.get("runs_total", 1) > 1 for r in rows):
        console.print("intervals of the other metrics: leaderboard.md and report.html", highlight=False)
    for r in rows:
        if r["status"] != "OK":
            console.print(f"[red]{r['detector']}[/red]: {r['error']}")


def write_results(out: Path, payload: dict[str, Any], rows: list[dict[str, Any]], title: str, budget: int) -> tuple[Path, Path]:
    """Write ``results.json`` and ``leaderboard.md`` atomically; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    res, board = out / "results.json", out / "leaderboard.md"
    for path, text in ((res, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"), (board, leaderboard_markdown(rows, title, budget, payload))):
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text)
        tmp.replace(path)
    return res, board
