"""A self-contained ``report.html``: tables and plots inlined as PNG data URIs, no network needed.

Plots: records exposed over time per incident with each detector's first true alert; budget
curves (incident recall against k); precision-recall curves; the time-to-detect distribution;
what fooled each detector (benign anomalies among its false alerts within budget); and the
leakage audit of one-line shortcuts.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from breachbench.audit import LEAK_SHARE, leakage_audit
from breachbench.dataset import Dataset
from breachbench.scoring import KEYS, Truth, top_k

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "OK"]


def _exposure_plot(ds: Dataset, label: str, rows: list[dict[str, Any]]) -> str | None:
    import matplotlib.pyplot as plt

    truth = Truth.of(ds)
    exp = truth.exposure.sort("first_ts")
    if exp.height == 0:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.6))
    labelled: set[str] = set()  # one legend entry per detector and one for the incidents, however many incidents
    for inc in truth.incidents.iter_rows(named=True):
        e = exp.filter(pl.col("incident_id") == inc["incident_id"])
        ts = e["first_ts"].to_list()
        many = truth.incidents.height > 1
        ax.step(ts, range(1, len(ts) + 1), where="post", color="black", linewidth=0.8 if many else 1.5,
                label=None if "incidents" in labelled else (f"{truth.incidents.height} incidents ({inc['scenario']})" if many else f"incident {inc['incident_id']} ({inc['scenario']})"))
        labelled.add("incidents")
        for j, r in enumerate(_ok(rows)):
            run = next((x for x in r["runs"] if x["dataset"] == label), None)
            det = next((i for i in (run or {}).get("incidents", []) if i["incident_id"] == inc["incident_id"]), None)
            if det and det["detected_bucket"]:
                import datetime as dt

                when = truth.bucket_end(dt.date.fromisoformat(det["detected_bucket"]))
                legend = None if r["detector"] in labelled else (f"{r['detector']}: first true alert" if many else f"{r['detector']}: {det['exposed_before_detection']:,} exposed")
                labelled.add(r["detector"])
                # matplotlib's date units take the datetime; its stubs type the position as a float only
                ax.axvline(when, color=COLORS[j % len(COLORS)], linestyle="--", linewidth=1, label=legend)  # type: ignore[arg-type]
    ax.set_ylabel("customer records exposed")
    ax.set_title(f"Records exposed over time: {label}")
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _png(fig)


def _budget_plot(rows: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, r in enumerate(_ok(rows)):
        curves = [x["curves"]["budget"] for x in r["runs"] if x.get("curves")]
        if not curves or curves[0][0] is None:
            continue
        mean = [sum(c[i] for c in curves) / len(curves) for i in range(len(curves[0]))]
        ax.plot(range(1, len(mean) + 1), mean, marker=".", color=COLORS[j % len(COLORS)], label=r["detector"])
    ax.set_xlabel("budget k (alert units read per bucket)")
    ax.set_ylabel("incident recall")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Budget curves")
    ax.legend(fontsize=7)
    return _png(fig)


def _pr_plot(rows: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, r in enumerate(_ok(rows)):
        run = next((x for x in r["runs"] if x.get("curves")), None)
        if run and run["curves"]["pr"]["recall"]:
            ax.plot(run["curves"]["pr"]["recall"], run["curves"]["pr"]["precision"], color=COLORS[j % len(COLORS)], label=f"{r['detector']} ({run['dataset']})")
    ax.set_xlabel("recall (alert units)")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Precision-recall")
    ax.legend(fontsize=7)
    return _png(fig)


def _ttd_plot(rows: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    ok = _ok(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    data, labels = [], []
    for r in ok:
        ttds = [i["ttd_buckets"] for i in r.get("incidents", []) if i["ttd_buckets"] is not None]
        missed = sum(1 for i in r.get("incidents", []) if i["ttd_buckets"] is None)
        data.append(ttds or [float("nan")])
        labels.append(f"{r['detector']}\n({missed} missed)")
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_ylabel("buckets from start to first true alert")
    ax.set_title("Time to detect (incidents pooled over seeds)")
    return _png(fig)


def _fooled(out: Path, rows: list[dict[str, Any]], datasets: dict[str, Dataset], budget: int, single: bool) -> tuple[str, list[dict[str, Any]]]:
    """Benign anomalies among each detector's false alerts within budget, by pattern."""
    import matplotlib.pyplot as plt

    counts: dict[str, dict[str, int]] = {}
    for label, ds in datasets.items():
        benign = ds.benign_units
        pos = ds.positive_units.filter(pl.col("role") == "actor").select(KEYS).unique()  # anything else read is a false alert
        for r in _ok(rows):
            path = out / "alerts" / (f"{r['detector']}.parquet" if single else f"{label}/{r['detector']}.parquet")
            if not path.is_file():
                continue
            read = top_k(pl.read_parquet(path), budget).join(pos, on=KEYS, how="anti")
            hit = read.join(benign, on=KEYS, how="inner").group_by("pattern").len()
            c = counts.setdefault(r["detector"], {})
            for pattern, n in hit.iter_rows():
                c[pattern] = c.get(pattern, 0) + n
    patterns = sorted({p for c in counts.values() for p in c})
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(counts)
    bottom = [0] * len(names)
    for j, p in enumerate(patterns):
        vals = [counts[n].get(p, 0) for n in names]
        ax.bar(names, vals, bottom=bottom, color=COLORS[j % len(COLORS)], label=p)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("false alerts read that were benign anomalies")
    ax.set_title("What fooled each detector")
    ax.tick_params(axis="x", labelsize=7)
    if patterns:
        ax.legend(fontsize=7)
    table = [{"detector": n, **counts[n]} for n in names]
    return _png(fig), table


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1%}" if pct else f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(head: list[str], body: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _ci(r: dict[str, Any], m: str, pct: bool = False) -> str:
    v = _fmt(r.get(m), pct)
    lo, hi = (r.get("ci") or {}).get(m, [None, None])
    return v if lo is None or hi is None or lo == hi else f"{v} <small>[{_fmt(lo, pct)}, {_fmt(hi, pct)}]</small>"


def write_report(out: Path, payload: dict[str, Any], datasets: dict[str, Dataset], log: Callable[..., None] = print) -> Path:
    """Write ``OUT/report.html`` and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    rows = payload["results"]
    budget = payload["budget"]
    single = len(datasets) == 1
    from breachbench.report import chance_row, ordered as by_headline

    ordered = by_headline(rows)
    chance = chance_row(payload.get("chance"), budget)
    board = _table(
        ["detector", "status", "detection score", "op score", "AUPRC", "recall@k", "TTD (buckets)", "exposure prevented", "false/bucket", "runs"],
        [[html.escape(r["detector"]), html.escape(r["status"]) + (f"<br><small>{html.escape(r['error'] or '')}</small>" if r["error"] else ""),
          _ci(r, "detection_score"), _ci(r, "op_score"), _ci(r, "auprc"), _ci(r, "recall_at_k"), _ci(r, "ttd_median_buckets"),
          _ci(r, "exposure_prevented", True), _ci(r, "false_alerts_per_bucket"), f"{r['runs_ok']}/{r['runs_total']}"]
         for r in [*ordered, *([chance | {"error": None, "runs_ok": "-", "runs_total": "-"}] if chance else [])]],
    )
    from breachbench.report import stability_lines

    stability = "".join(f"<p><small>{html.escape(line)}</small></p>" for line in stability_lines(payload))
    budgets = payload["budgets"]
    by_k = _table(
        ["detector", *[f"op@{k}" for k in budgets], *[f"recall@{k}" for k in budgets]],
        [[html.escape(r["detector"]), *[_fmt(r["by_budget"][str(k)]["op_score"]) for k in budgets],
          *[_fmt(r["by_budget"][str(k)]["recall_at_k"]) for k in budgets]] for r in _ok(ordered)],
    )
    scen = sorted({s for r in _ok(rows) for s in r.get("by_scenario", {})})
    from breachbench.suite import chance_bars

    bars = chance_bars(payload.get("chance"), budget)

    def detection(r: dict[str, Any], s: str) -> str:
        if s not in r["by_scenario"]:
            return "-"
        pt = r["by_scenario"][s]["point"]
        raw = pt.get("detection_score_raw")
        return _fmt(pt.get("detection_score")) + (f" <small>(raw {_fmt(raw)})</small>" if raw is not None else "")

    by_s = _table(
        ["detector", *[f"{s}: detection above chance (raw)" for s in scen], *[f"{s}: op" for s in scen], *[f"{s}: AUPRC" for s in scen]],
        [[html.escape(r["detector"]), *[detection(r, s) for s in scen],
          *[_fmt(r["by_scenario"][s]["point"]["op_score"]) if s in r["by_scenario"] else "-" for s in scen],
          *[_fmt(r["by_scenario"][s]["point"]["auprc"]) if s in r["by_scenario"] else "-" for s in scen]] for r in _ok(ordered)]
        + [["<i>chance bar (raw score 97.5% of blind rankings stay under)</i>", *[_fmt(bars.get(s)) for s in scen], *["" for _ in scen], *["" for _ in scen]]],
    )
    figs: list[tuple[str, str]] = []
    first_seed = payload["seeds"]["test"][0]
    for label, ds in datasets.items():
        if label.startswith(f"seed{first_seed}-") or single:
            img = _exposure_plot(ds, label, rows)
            if img:
                figs.append((f"Records exposed over time ({label})", img))
    figs.append(("Budget curves", _budget_plot(rows)))
    figs.append(("Precision-recall curves", _pr_plot(rows)))
    figs.append(("Time to detect", _ttd_plot(rows)))
    fooled_img, fooled_rows = _fooled(out, rows, datasets, budget, single)
    figs.append(("What fooled each detector", fooled_img))
    leak = payload.get("leakage_audit") or leakage_audit(
        datasets, {d["label"]: d["scenario"] for d in payload.get("datasets", [])}, budget, payload["cost_profile"]
    )
    audit_rows = [
        [html.escape(a["dataset"]), html.escape(a["shortcut"]), _fmt(a["op_score"]), str(a["budget"]), _fmt(a["auprc"]),
         _fmt(a["recall_at_k"]), "at or above the line on this seed" if a["leaks"] else "no"]
        for a in leak["datasets"]
    ]
    scenario_rows = [
        [html.escape(a["scenario"]), html.escape(a["shortcut"]), _fmt(a["op_score"]), str(a["budget"]), str(a["datasets"]),
         (("declared easy" if a["declared_easy"] else "<b>LEAKS</b>") if a["leaks"] else "no")]
        for a in leak["scenarios"]
    ]
    easy = {a["scenario"]: a["declared_easy"] for a in leak["scenarios"] if a["leaks"] and a["declared_easy"]}
    leaks = sorted({row[0] for row in scenario_rows if "LEAKS" in row[5]})
    audit_note = (
        f"<p class='warn'>These scenarios are solved by a one-line shortcut (at least {LEAK_SHARE:.0%} of the oracle's score, pooled "
        f"over seeds): {', '.join(leaks)}. They are too easy or leak their label; read their results with that in mind.</p>"
        if leaks else "<p>No shortcut reaches the leak line on any scenario that is not declared easy.</p>"
    ) + "".join(f"<p>{html.escape(name)} is easy on purpose ({html.escape(why)}).</p>" for name, why in easy.items())
    body = "\n".join(f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='{src}'>" for t, src in figs)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>BreachBench report: {html.escape(payload['name'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
.warn {{ color: #a00; }} small {{ color: #666; }}
</style></head><body>
<h1>BreachBench report: {html.escape(payload['name'])}</h1>
<p>Config hash <code>{payload['config_hash'][:16]}</code>; test seeds {payload['seeds']['test']}, tuning seeds {payload['seeds']['tuning']};
budget k = {budget}; cost profile <code>{html.escape(payload['cost_profile'])}</code> (version {payload['cost_profiles']['version']});
{int(payload['confidence'] * 100)}% bootstrap intervals over runs (seed x scenario) in brackets.
<code>oracle</code> reads truth: an anchor, not a detector. op score: null 0, perfect 100.</p>
<h2>Leaderboard</h2>{board}{stability}
<h2>By budget</h2>{by_k}
<h2>By scenario</h2>{by_s}
<h2>Plots</h2>{body}
<h2>What fooled each detector</h2>{_table(['detector', 'benign pattern counts'], [[html.escape(r['detector']), html.escape(', '.join(f'{k}: {v}' for k, v in r.items() if k != 'detector') or 'none')] for r in fooled_rows])}
<h2>Leakage audit</h2>{audit_note}
{_table(['scenario', 'shortcut', 'best op score (pooled)', 'at budget', 'datasets', 'verdict'], scenario_rows)}
<p>Per dataset (one seed's score can reach the line by chance: a shortcut that happens to rank the actor on the first day):</p>
{_table(['dataset', 'shortcut', 'best op score', 'at budget', 'AUPRC', 'recall@k', 'on this dataset'], audit_rows)}
</body></html>
"""
    path = out / "report.html"
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)
    log(f"report: {path}")
    return path
