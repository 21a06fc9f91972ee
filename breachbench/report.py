"""Results files: ``results.json`` (versioned) and ``leaderboard.md``; the printed leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SCHEMA_VERSION = 2

COLUMNS = [
    ("detector", "detector", "{}"),
    ("status", "status", "{}"),
    ("op_score", "op score", "{:.1f}"),
    ("auprc", "AUPRC", "{:.3f}"),
    ("lift", "lift", "{:.1f}"),
    ("recall_at_k", "recall@k", "{:.2f}"),
    ("ttd_median_buckets", "TTD (days)", "{:.0f}"),
    ("exposed_before_detection", "exposed before det.", "{:,}"),
    ("exposure_prevented", "prevented", "{:.1%}"),
    ("false_alerts_per_bucket", "false/bucket", "{:.2f}"),
    ("score_s", "score s", "{:.2f}"),
    ("events_per_s", "events/s", "{:,.0f}"),
    ("peak_mb", "peak MB", "{:,.0f}"),
]


CI_KEYS = {"op_score", "auprc", "recall_at_k", "exposure_prevented", "ttd_median_buckets"}


def _cell(row: dict[str, Any], key: str, fmt: str, ci_keys: set[str] = CI_KEYS) -> str:
    if row.get("status") != "OK" and key not in ("detector", "status"):
        return "-"
    v = row.get(key)
    if v is None:
        return "missed" if key == "ttd_median_buckets" else "-"
    text = fmt.format(v)
    lo, hi = (row.get("ci") or {}).get(key, [None, None])
    if key in ci_keys and lo is not None and hi is not None and lo != hi:
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return text


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by operational score, best first; failed runs last."""
    return sorted(rows, key=lambda r: (r["status"] != "OK", -(r["op_score"] if r.get("op_score") is not None else -1e18), r["detector"]))


def leaderboard_markdown(rows: list[dict[str, Any]], title: str, budget: int) -> str:
    """The leaderboard as a Markdown table."""
    head = "| " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in ordered(rows)]
    errors = [f"- `{r['detector']}`: {r['error']}" for r in rows if r["status"] != "OK"]
    notes = (
        f"\nBudget k = {budget} alert units per bucket. op score: 0 = null (no alerts), 100 = alert in the first "
        "malicious bucket with no false alert (standard cost profile). Brackets: bootstrap confidence interval over runs "
        "(seed x scenario). `oracle` reads truth: it is an anchor, not a detector.\n"
    )
    return "\n".join([f"# Leaderboard: {title}", "", head, sep, *body, notes, *(["## Errors", "", *errors, ""] if errors else [])])


def print_leaderboard(rows: list[dict[str, Any]], title: str, console: Console | None = None) -> None:
    """Print the leaderboard as a rich table."""
    console = console or Console()
    table = Table(title=f"Leaderboard: {title}")
    for _, h, _ in COLUMNS:
        table.add_column(h, justify="left" if h in ("detector", "status") else "right", no_wrap=h == "detector")
    for r in ordered(rows):
        table.add_row(*(_cell(r, k, f, set()) for k, _, f in COLUMNS))  # intervals: leaderboard.md and report.html
    console.print(table)
    if any(r.get("runs_total", 1) > 1 for r in rows):
        console.print("confidence intervals over seeds: leaderboard.md and report.html", highlight=False)
    for r in rows:
        if r["status"] != "OK":
            console.print(f"[red]{r['detector']}[/red]: {r['error']}")


def write_results(out: Path, payload: dict[str, Any], rows: list[dict[str, Any]], title: str, budget: int) -> tuple[Path, Path]:
    """Write ``results.json`` and ``leaderboard.md`` atomically; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    res, board = out / "results.json", out / "leaderboard.md"
    for path, text in ((res, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"), (board, leaderboard_markdown(rows, title, budget))):
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text)
        tmp.replace(path)
    return res, board
