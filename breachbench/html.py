"""A self-contained ``report.html``: tables and plots inlined as PNG data URIs, no network needed.

First screen: a verdict in words and the scenario x detector matrix. Then the leaderboard, the
per-incident table (also ``incidents.csv``), plots (records exposed over time per scenario, one
panel per seed, with each detector's first true alert; budget curves; precision-recall per
scenario; time to detect; what fooled each detector), the leakage and artefact audits in one
short table (details folded) and the glossary.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from breachbench.audit import LEAK_SHARE, leakage_audit
from breachbench.dataset import Dataset
from breachbench.scoring import KEYS, Truth

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Okabe-Ito's colour-blind-safe palette (yellow swapped for grey, which reads on white).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999999"]
#: 7 markers against 8 colours: neighbours differ in both, and 56 detectors get distinct pairs.
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def detector_styles(names: list[str]) -> dict[str, dict[str, str]]:
    """A distinct (colour, marker) pair per detector, stable for a given order."""
    return {n: {"color": PALETTE[j % len(PALETTE)], "marker": MARKERS[j % len(MARKERS)]} for j, n in enumerate(names)}


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "OK"]


def _legend_outside(fig, ax, handles: dict[str, Any] | None = None, **kw: Any) -> None:
    """A legend to the right of ``ax``, outside every data area: ``handles`` (label -> artist) or ``ax``'s own."""
    labels, arts = (list(handles), list(handles.values())) if handles is not None else ax.get_legend_handles_labels()[::-1]
    if arts:
        ax.legend(arts, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7, frameon=False, **kw)


def _grid(n: int, cols: int = 2, w: float = 5.2, h: float = 2.9):
    import matplotlib.pyplot as plt

    cols = max(1, min(cols, n))
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(w * cols + 2.6, h * nrows), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def exposure_figure(
    scenario: str,
    datasets: dict[str, Dataset],
    rows: list[dict[str, Any]],
    styles: dict[str, dict[str, str]],
    truths: dict[str, Truth] | None = None,
):
    """Small multiples for one scenario, one panel per seed: customer records exposed over time (black steps, one per
    incident) and each detector's first true alert within budget as its marker on the curve."""
    import matplotlib.dates as mdates

    fig, axes = _grid(len(datasets))
    for ax, (label, ds) in zip(axes, datasets.items(), strict=True):
        _exposure_panel(ax, label, (truths or {}).get(label) or Truth.of(ds), rows, styles)
        loc = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_title(f"seed {label.split('-', 1)[0].removeprefix('seed')}", fontsize=9)
        ax.set_xlabel("date (UTC)")
        ax.set_ylabel("customer records exposed")
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.suptitle(f"Records exposed over time and first true alerts: {scenario}", fontsize=10)
    if handles:
        _legend_outside(fig, axes[min(len(axes), 2) - 1], handles, title="first true alert (marker)", title_fontsize=7)
    return fig


def _exposure_panel(ax: Any, label: str, truth: Truth, rows: list[dict[str, Any]], styles: dict[str, dict[str, str]]) -> None:
    """One dataset's panel of :func:`exposure_figure`: a step line per incident, a marker per detector's first true alert."""
    import datetime as dt

    exp = truth.exposure.sort("first_ts")
    seen: dict[Any, int] = {}
    for inc in truth.incidents.iter_rows(named=True):
        e = exp.filter(pl.col("incident_id") == inc["incident_id"])
        ts = e["first_ts"].to_list()
        if ts:
            ax.step(
                ts,
                range(1, len(ts) + 1),
                where="post",
                color="black",
                linewidth=1.2,
                label="records exposed (one line per incident)",
            )
        top = max(len(ts), 1)
        for r in _ok(rows):
            run = next((x for x in r["runs"] if x["dataset"] == label), None)
            det = next((i for i in (run or {}).get("incidents", []) if i["incident_id"] == inc["incident_id"]), None)
            if det and det["detected_bucket"]:
                when = truth.bucket_end(dt.date.fromisoformat(det["detected_bucket"]))
                k = seen.get(when, 0)  # markers at one instant stack upwards instead of hiding each other
                seen[when] = k + 1
                st = styles[r["detector"]]
                ax.plot(
                    [when],
                    [det["exposed_before_detection"] + k * 0.05 * top],
                    linestyle="none",
                    marker=st["marker"],
                    color=st["color"],
                    markersize=6,
                    markeredgecolor="white",
                    markeredgewidth=0.5,
                    label=r["detector"],
                )


def budget_figure(rows: list[dict[str, Any]], styles: dict[str, dict[str, str]]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    for r in _ok(rows):
        curves = [x["curves"]["budget"] for x in r["runs"] if x.get("curves")]
        if not curves or curves[0][0] is None:
            continue
        mean = [sum(c[i] for c in curves) / len(curves) for i in range(len(curves[0]))]
        st = styles[r["detector"]]
        ax.plot(
            range(1, len(mean) + 1), mean, marker=st["marker"], markersize=4, color=st["color"], label=r["detector"], linewidth=1
        )
    ax.set_xlabel("budget k (alert units read per day)")
    ax.set_ylabel("incidents caught (share)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Budget curves: incidents caught against the budget, mean over datasets")
    _legend_outside(fig, ax)
    return fig


def _interp_precision(recall: list[float], precision: list[float], grid: Any) -> Any:
    import numpy as np

    r, p = np.asarray(recall, float), np.asarray(precision, float)
    out = np.full(len(grid), np.nan)
    for j, g in enumerate(grid):  # interpolated precision: the best precision at recall >= g
        m = p[r >= g]
        out[j] = m.max() if m.size else np.nan
    return out


def pr_figure(rows: list[dict[str, Any]], styles: dict[str, dict[str, str]]):
    """Precision-recall per scenario (small multiples), interpolated precision averaged over the scenario's seeds."""
    import numpy as np

    scen = sorted({x["scenario"] for r in _ok(rows) for x in r["runs"] if x.get("curves")})
    fig, axes = _grid(max(len(scen), 1), cols=3, w=3.6, h=2.9)
    grid = np.linspace(0, 1, 51)
    for ax, s in zip(axes, scen, strict=False):
        for r in _ok(rows):
            curves = [
                _interp_precision(x["curves"]["pr"]["recall"], x["curves"]["pr"]["precision"], grid)
                for x in r["runs"]
                if x.get("scenario") == s and x.get("curves") and x["curves"]["pr"]["recall"]
            ]
            if curves:
                st = styles[r["detector"]]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.vstack(curves), axis=0) if any(np.isfinite(c).any() for c in curves) else None
                if mean is not None:
                    ax.plot(
                        grid,
                        mean,
                        color=st["color"],
                        marker=st["marker"],
                        markevery=10,
                        markersize=4,
                        linewidth=1,
                        label=r["detector"],
                    )
        ax.set_title(s, fontsize=8)
        ax.set_xlabel("recall (share of actor units)")
        ax.set_ylabel("precision (share)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle("Precision-recall per scenario (interpolated, mean over seeds)", fontsize=10)
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    if handles:
        _legend_outside(fig, axes[min(len(axes), 3) - 1], handles)
    return fig


def ttd_figure(rows: list[dict[str, Any]], styles: dict[str, dict[str, str]]):
    """Time to detect per detector, horizontal so that detector names never overlap."""
    import matplotlib.pyplot as plt

    ok = list(reversed(_ok(rows)))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(ok) + 1.4), layout="constrained")
    data, labels = [], []
    for r in ok:
        incs = [i for i in r.get("incidents", []) if i.get("detectable", True)]
        ttds = [i["ttd_buckets"] for i in incs if i["ttd_buckets"] is not None]
        data.append(ttds or [float("nan")])
        labels.append(f"{r['detector']} (missed {len(incs) - len(ttds)}/{len(incs)})")
    try:  # matplotlib 3.10 and later; `vert` is deprecated there
        ax.boxplot(data, orientation="horizontal", showfliers=True, widths=0.6)
    except TypeError:
        ax.boxplot(data, vert=False, showfliers=True, widths=0.6)
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_xlabel("days from the incident's first day to the first true alert")
    ax.set_ylabel("detector (incidents missed)")
    ax.set_title("Time to detect, incidents pooled over seeds and scenarios")
    return fig


def _fooled_counts(
    out: Path,
    rows: list[dict[str, Any]],
    datasets: dict[str, Dataset],
    budget: int,
    single: bool,
    cache: dict[Any, Any] | None = None,
) -> dict[str, dict[str, int]]:
    """Benign anomalies among each detector's false alerts within budget, by pattern."""
    from breachbench.report import within_budget

    counts: dict[str, dict[str, int]] = {}
    for label, ds in datasets.items():
        benign = ds.benign_units
        pos = ds.positive_units.filter(pl.col("role") == "actor").select(KEYS).unique()  # anything else read is a false alert
        for r in _ok(rows):
            top = within_budget(out, label, r["detector"], budget, single, cache)
            if top is None:
                continue
            read = top.join(pos, on=KEYS, how="anti")
            hit = read.join(benign, on=KEYS, how="inner").group_by("pattern").len()
            c = counts.setdefault(r["detector"], {})
            for pattern, n in hit.iter_rows():
                c[pattern] = c.get(pattern, 0) + n
    return counts


def fooled_figure(counts: dict[str, dict[str, int]]):
    import matplotlib.pyplot as plt

    patterns = sorted({p for c in counts.values() for p in c})
    names = list(reversed(list(counts)))
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(names), 1) + 1.4), layout="constrained")
    left = [0] * len(names)
    for j, p in enumerate(patterns):
        vals = [counts[n].get(p, 0) for n in names]
        ax.barh(
            names, vals, left=left, color=PALETTE[j % len(PALETTE)], hatch=["", "//", "..", "xx"][j // len(PALETTE) % 4], label=p
        )
        left = [b + v for b, v in zip(left, vals, strict=True)]
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("false alerts read within budget that were benign anomalies (count)")
    ax.set_ylabel("detector")
    ax.set_title("What fooled each detector")
    if patterns:
        _legend_outside(fig, ax, title="benign pattern", title_fontsize=7)
    return fig


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1%}" if pct else f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(head: list[str], body: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
    return f"<div class='wide'><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></div>"  # scrolls, never widens the page


def _ci(r: dict[str, Any], m: str, pct: bool = False) -> str:
    v = _fmt(r.get(m), pct)
    lo, hi = (r.get("ci") or {}).get(m, [None, None])
    return v if lo is None or hi is None or lo == hi else f"{v} <small>[{_fmt(lo, pct)}, {_fmt(hi, pct)}]</small>"


def _shade(score: float | None) -> str:
    """Background for a matrix cell: white at 0 above chance to dark blue at 100 (one hue: colour-blind safe), and its text colour."""
    if score is None:
        return "background:#f4f4f4;color:#888"
    t = max(0.0, min(1.0, score / 100))
    lo, hi = (247, 251, 255), (8, 69, 148)
    rgb = "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi, strict=True))
    return f"background:#{rgb};color:{'#fff' if t > 0.55 else '#111'}"


def _sealing(payload: dict[str, Any]) -> str:
    """How the seeds were used: sealed with the run's secret, or public (anyone can generate the datasets again)."""
    sealed = payload["seeds"].get("sealed")
    if sealed is None:  # written before seeds could be sealed
        return ""
    if sealed:
        return " (sealed: mixed with the run's secret, so no detector could generate the datasets again)"
    return " (public: <code>suite.seal_seeds = false</code>, anyone with the config can generate the datasets and their truth)"


def matrix_html(payload: dict[str, Any]) -> str:
    """The scenario x detector matrix: caught, median days to detect and exposure prevented per cell, shaded by the
    scenario's detection score above its chance bar."""
    from breachbench.report import kind_note, scenario_matrix

    m = scenario_matrix(payload)
    rows = {r["detector"]: r for r in payload["results"]}
    head = "".join(
        f"<th>{html.escape(s)}<br><small>chance bar {_fmt(m['bars'].get(s))}{html.escape(kind_note(m, s))}</small></th>"
        for s in m["scenarios"]
    )
    body = []
    for d in m["detectors"]:
        r = rows[d]
        cells = [
            f"<th class='det'>{html.escape(d)}</th>",
            f"<td style='{_shade(r.get('detection_score'))}'><b>{_fmt(r.get('detection_score'))}</b></td>",
        ]
        for s in m["scenarios"]:
            c = m["cells"][d].get(s)
            if c is None:
                cells.append("<td>-</td>")
                continue
            ttd = "missed" if c["ttd_median"] is None else f"day {c['ttd_median']:g}"
            prev = "-" if c["prevented"] is None else f"{c['prevented']:.0%}"
            title = html.escape(f"{d} on {s}: above chance {_fmt(c['score'])}, raw {_fmt(c['raw'])}")
            cells.append(
                f"<td style='{_shade(c['score'])}' title='{title}'>{c['caught']}/{c['incidents']} &middot; {ttd} &middot; {prev}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<div class='wide'><table class='matrix'><thead><tr><th>detector</th><th>detection score</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
        "<p><small>Each cell: incidents caught / incidents &middot; median day of the first true alert (day 0 = the incident's first day) &middot; exposure prevented. Shade: the "
        "scenario's detection score above its chance bar (white 0, dark blue 100). Hover a cell for its scores.</small></p>"
    )


def incidents_html(rows: list[dict[str, Any]]) -> str:
    """The per-incident table grouped by scenario: one row per incident; the detectors that caught it (day of the first
    true alert within budget, its reason), earliest first, and how many missed it."""
    if not rows:
        return "<p>No incidents.</p>"
    incidents: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in rows:
        incidents.setdefault((r["scenario"], r["dataset"], r["incident_id"]), {"facts": r, "by": {}})["by"][r["detector"]] = r
    out = []
    for scen in sorted({k[0] for k in incidents}):
        body = []
        for key, inc in incidents.items():
            if key[0] != scen:
                continue
            f = inc["facts"]
            hits = sorted((x for x in inc["by"].values() if x["detected"]), key=lambda x: (x["first_alert_day"], x["detector"]))
            caught = "<br>".join(
                f"<b>{html.escape(x['detector'])}</b> day {x['first_alert_day']}"
                + (f" <small>{html.escape(x['reason'])}</small>" if x["reason"] else "")
                for x in hits
            )
            facts = (
                f"<td>{f['seed']}</td><td>{f['incident_id']}</td><td>{html.escape(f['actor_role'] or '-')}</td>"
                f"<td>{html.escape(f['start'] or '-')} to {html.escape(f['end'] or '-')}</td>"
                f"<td>{_fmt(f['records_exposed'])}<br><small>{html.escape(f['records_by_kind'])}</small></td><td>{_fmt(f['harm_total'])}</td>"
            )
            missed = len(inc["by"]) - len(hits)
            body.append(
                f"<tr>{facts}<td class='caught'>{caught or '<i>nobody</i>'}</td><td>{missed} of {len(inc['by'])}</td></tr>"
            )
        knobs = next((i["facts"]["knobs"] for k, i in incidents.items() if k[0] == scen), "")
        out.append(
            f"<h3>{html.escape(scen)}</h3>"
            + (f"<p><small>knobs: {html.escape(knobs)}</small></p>" if knobs else "")
            + "<table class='incidents'><thead><tr><th>seed</th><th>incident</th><th>actor role</th><th>window</th>"
            + "<th>records exposed</th><th>harm</th><th>caught by (day of the first true alert within budget, its reason)</th>"
            + f"<th>missed by</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    return "".join(out)


def audits_html(payload: dict[str, Any], leak: dict[str, Any]) -> str:
    """One short table, a row per scenario: the best one-line shortcut and the artefact audit, each with its verdict;
    the full tables folded in <details>."""
    art = {a["scenario"]: a for a in (payload.get("artefact_audit") or {}).get("scenarios", [])}
    return (
        _leak_note(leak)
        + _table(
            ["scenario", "best one-line shortcut", "its op score (pooled)", "leakage verdict", "artefact audit"],
            _audit_summary(leak, art),
        )
        + "<p><small>Leakage: one-line shortcuts (any foreign IP, the busiest entity, a key whose owner left, ...) scored like detectors; "
        f"a scenario leaks when one reaches {LEAK_SHARE:.0%} of the oracle's score. Artefact audit: attack rows against comparable "
        "benign rows; a problem is a difference the scenario does not declare.</small></p>"
        + "<details><summary>Leakage audit: every shortcut per scenario</summary>"
        + _table(["scenario", "shortcut", "best op score (pooled)", "at budget", "datasets", "verdict"], _leak_pooled(leak))
        + "</details><details><summary>Per dataset (one seed's score can reach the line by chance: a shortcut that happens to rank "
        "the actor on the first day)</summary>"
        + _table(
            ["dataset", "shortcut", "best op score", "at budget", "AUPRC", "caught", "on this dataset"], _leak_per_dataset(leak)
        )
        + "</details>"
        + _artefact_problems(art)
    )


def _audit_summary(leak: dict[str, Any], art: dict[str, dict[str, Any]]) -> list[list[str]]:
    """A row per scenario: its best shortcut, that shortcut's op score, the leakage verdict, the artefact verdict."""
    summary = []
    for s in sorted({a["scenario"] for a in leak["scenarios"]} | set(art)):
        mine = [a for a in leak["scenarios"] if a["scenario"] == s]
        best = max(mine, key=lambda a: a["op_score"] if a["op_score"] is not None else -1e18, default=None)
        leaks = [a for a in mine if a["leaks"]]
        verdict = (
            "<b class='warn'>LEAKS</b>" if any(not a["declared_easy"] for a in leaks) else "easy on purpose" if leaks else "clean"
        )
        a = art.get(s)
        art_verdict = (
            "not run (suite.artefact_audit)"
            if a is None
            else "passed"
            if a["passed"]
            else f"<b class='warn'>{len(a['problems'])} problem(s)</b>"
        )
        summary.append(
            [
                html.escape(s),
                html.escape(best["shortcut"]) if best else "-",
                _fmt(best["op_score"]) if best else "-",
                verdict,
                art_verdict,
            ]
        )
    return summary


def _leak_note(leak: dict[str, Any]) -> str:
    """The leakage verdict in words: the scenarios that leak, else that none does; then the ones easy on purpose."""
    easy = {a["scenario"]: a["declared_easy"] for a in leak["scenarios"] if a["leaks"] and a["declared_easy"]}
    leaking = sorted({a["scenario"] for a in leak["scenarios"] if a["leaks"] and not a["declared_easy"]})
    return (
        f"<p class='warn'>These scenarios are solved by a one-line shortcut (at least {LEAK_SHARE:.0%} of the oracle's score, pooled "
        f"over seeds): {', '.join(leaking)}. They are too easy or leak their label; read their results with that in mind.</p>"
        if leaking
        else "<p>No shortcut reaches the leak line on any scenario that is not declared easy.</p>"
    ) + "".join(
        f"<p><small>{html.escape(name)} is easy on purpose ({html.escape(why)}).</small></p>" for name, why in easy.items()
    )


def _leak_pooled(leak: dict[str, Any]) -> list[list[str]]:
    """Every shortcut of every scenario, pooled over seeds, with its verdict."""
    return [
        [
            html.escape(a["scenario"]),
            html.escape(a["shortcut"]),
            _fmt(a["op_score"]),
            str(a["budget"]),
            str(a["datasets"]),
            (("declared easy" if a["declared_easy"] else "<b>LEAKS</b>") if a["leaks"] else "no"),
        ]
        for a in leak["scenarios"]
    ]


def _leak_per_dataset(leak: dict[str, Any]) -> list[list[str]]:
    """Every shortcut on every test dataset."""
    return [
        [
            html.escape(a["dataset"]),
            html.escape(a["shortcut"]),
            _fmt(a["op_score"]),
            str(a["budget"]),
            _fmt(a["auprc"]),
            _fmt(a["recall_at_k"]),
            "at or above the line on this seed" if a["leaks"] else "no",
        ]
        for a in leak["datasets"]
    ]


def _artefact_problems(art: dict[str, dict[str, Any]]) -> str:
    """Every problem the artefact audit found, folded; empty when none."""
    problems = [p for a in art.values() for p in a["problems"]]
    if not problems:
        return ""
    return (
        "<details><summary>Artefact audit: every problem</summary><ul>"
        + "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        + "</ul></details>"
    )


def glossary_html() -> str:
    from breachbench.report import GLOSSARY

    return (
        "<dl class='glossary'>"
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in GLOSSARY.items())
        + "</dl>"
    )


def report_figures(
    out: Path,
    payload: dict[str, Any],
    datasets: dict[str, Dataset],
    truths: dict[str, Truth] | None = None,
    cache: dict[Any, Any] | None = None,
) -> list[tuple[str, Any]]:
    """Every plot of the report as (heading, matplotlib figure), in page order."""
    import matplotlib

    matplotlib.use("Agg")
    from breachbench.report import ordered

    rows = ordered(payload["results"])
    styles = detector_styles([r["detector"] for r in rows])
    single = len(datasets) == 1
    scen_of = {d["label"]: d["scenario"] for d in payload.get("datasets", [])}
    figs: list[tuple[str, Any]] = []
    for s in sorted({scen_of.get(label, "") for label in datasets}):
        mine = {label: ds for label, ds in datasets.items() if scen_of.get(label, "") == s or single}
        figs.append((f"Records exposed over time ({s}, every seed)", exposure_figure(s, mine, rows, styles, truths)))
    figs.append(("Budget curves", budget_figure(rows, styles)))
    figs.append(("Precision-recall curves", pr_figure(rows, styles)))
    figs.append(("Time to detect", ttd_figure(rows, styles)))
    figs.append(
        ("What fooled each detector", fooled_figure(_fooled_counts(out, rows, datasets, payload["budget"], single, cache)))
    )
    return figs


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1em 1.5em; max-width: 1500px; color: #222; }
h1 { font-size: 1.4em; margin: 0.2em 0; } h2 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, th.det { text-align: left; }
.wide { max-width: 100%; overflow-x: auto; }
table.matrix td { white-space: nowrap; text-align: center; }
table.incidents td.caught, table.incidents td:nth-child(3), table.incidents td:nth-child(4) { text-align: left; }
th, td { overflow-wrap: anywhere; } table { max-width: 100%; }
img { max-width: 100%; border: 1px solid #eee; }
.verdict { font-size: 1.02em; line-height: 1.4; margin: 0.4em 0; padding-left: 1.2em; }
.warn { color: #a00; } small { color: #555; }
details { margin: 0.5em 0; } summary { cursor: pointer; color: #0b4f8a; }
dl.glossary dt { font-weight: bold; margin-top: 0.5em; } dl.glossary dd { margin-left: 1.5em; }
"""


def leaderboard_html(payload: dict[str, Any]) -> str:
    """The leaderboard table (headline order, the chance row last) and the stability lines under it."""
    from breachbench.report import COLUMNS, chance_row, stability_lines
    from breachbench.report import ordered as by_headline

    chance = chance_row(payload.get("chance"), payload["budget"])
    cols = [c for c in COLUMNS if c[0] not in ("score_s", "events_per_s", "peak_mb")]
    pct = {"exposure_prevented", "victims_flagged_share"}

    def cell(r: dict[str, Any], key: str) -> str:
        if key == "detector":
            return html.escape(r["detector"])
        if key == "status":
            return html.escape(r["status"]) + (f"<br><small>{html.escape(r['error'] or '')}</small>" if r.get("error") else "")
        return _ci(r, key, key in pct)

    board = _table(
        [h for _, h, _ in cols] + ["runs"],
        [
            [cell(r, k) for k, _, _ in cols] + [f"{r['runs_ok']}/{r['runs_total']}"]
            for r in [
                *by_headline(payload["results"]),
                *([chance | {"error": None, "runs_ok": "-", "runs_total": "-"}] if chance else []),
            ]
        ],
    )
    return board + "".join(f"<p><small>{html.escape(line)}</small></p>" for line in stability_lines(payload))


def by_budget_html(payload: dict[str, Any]) -> str:
    """Op score and share caught of each detector at every budget."""
    from breachbench.report import ordered as by_headline

    budgets = payload["budgets"]
    return _table(
        ["detector", *[f"op@{k}" for k in budgets], *[f"caught@{k}" for k in budgets]],
        [
            [
                html.escape(r["detector"]),
                *[_fmt(r["by_budget"][str(k)]["op_score"]) for k in budgets],
                *[_fmt(r["by_budget"][str(k)]["recall_at_k"]) for k in budgets],
            ]
            for r in _ok(by_headline(payload["results"]))
        ],
    )


def by_scenario_html(payload: dict[str, Any]) -> str:
    """Three detector x scenario tables: detection score above chance (raw beside it, the chance bar last), op score, AUPRC."""
    from breachbench.report import ordered as by_headline
    from breachbench.suite import chance_bars

    ordered = by_headline(payload["results"])
    scen = sorted({s for r in _ok(ordered) for s in r.get("by_scenario", {})})
    bars = chance_bars(payload.get("chance"), payload["budget"])

    def cell(r: dict[str, Any], s: str, key: str) -> str:
        if s not in r["by_scenario"]:
            return "-"
        pt = r["by_scenario"][s]["point"]
        raw = pt.get("detection_score_raw") if key == "detection_score" else None
        return _fmt(pt.get(key)) + (f" <small>(raw {_fmt(raw)})</small>" if raw is not None else "")

    out = []
    for key, title in (("detection_score", "detection score above chance (raw)"), ("op_score", "op score"), ("auprc", "AUPRC")):
        body = [[html.escape(r["detector"]), *[cell(r, s, key) for s in scen]] for r in _ok(ordered)]
        if key == "detection_score":
            body.append(["<i>chance bar (raw score 97.5% of blind rankings stay under)</i>", *[_fmt(bars.get(s)) for s in scen]])
        out.append(f"<p><b>{title}</b></p>" + _table(["detector", *scen], body))
    return "".join(out)


def write_report(
    out: Path,
    payload: dict[str, Any],
    datasets: dict[str, Dataset],
    log: Callable[..., None] = print,
    truths: dict[str, Truth] | None = None,
) -> Path:
    """Write ``OUT/report.html`` and ``OUT/incidents.csv``; returns the report's path.

    ``truths``: each dataset's :class:`Truth` when the caller has it already (computed otherwise).
    """
    import matplotlib

    matplotlib.use("Agg")
    from breachbench.report import incident_rows, write_incidents_csv

    board, by_k, by_s = leaderboard_html(payload), by_budget_html(payload), by_scenario_html(payload)
    truths = {label: (truths or {}).get(label) or Truth.of(ds) for label, ds in datasets.items()}  # once per dataset
    cache: dict[Any, Any] = {}  # every alerts file read and cut to the budget once
    inc_rows = incident_rows(payload, datasets, out, truths, cache)
    csv_path = write_incidents_csv(out / "incidents.csv", inc_rows)
    figs = report_figures(out, payload, datasets, truths, cache)
    plots = "\n".join(f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='{_png(fig)}'>" for t, fig in figs)
    leak = payload.get("leakage_audit") or leakage_audit(
        datasets, {d["label"]: d["scenario"] for d in payload.get("datasets", [])}, payload["budget"], payload["cost_profile"]
    )
    doc = _page(
        payload,
        board=board,
        by_budget=by_k,
        by_scenario=by_s,
        csv_name=csv_path.name,
        incidents=incidents_html(inc_rows),
        plots=plots,
        audits=audits_html(payload, leak),
    )
    path = out / "report.html"
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)
    log(f"report: {path}")
    return path


def _page(
    payload: dict[str, Any],
    *,
    board: str,
    by_budget: str,
    by_scenario: str,
    csv_name: str,
    incidents: str,
    plots: str,
    audits: str,
) -> str:
    """The report page: the verdict, the matrix and the run's settings from ``payload`` around its rendered sections."""
    from breachbench.report import verdict

    budget = payload["budget"]
    words = "".join(f"<li>{html.escape(line)}</li>" for line in verdict(payload))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>BreachBench report: {html.escape(payload["name"])}</title>
<style>{_STYLE}</style></head><body>
<h1>BreachBench report: {html.escape(payload["name"])}</h1>
<h2 style="margin-top:0.4em">Verdict</h2>
<ul class="verdict">{words}</ul>
<h2>Scenario matrix</h2>
{matrix_html(payload)}
<p><small>Config hash <code>{payload["config_hash"][:16]}</code>; test seeds {payload["seeds"]["test"]}, tuning seeds {payload["seeds"]["tuning"]}{_sealing(payload)};
budget k = {budget} units read per day; cost profile <code>{html.escape(payload["cost_profile"])}</code> (version {payload["cost_profiles"]["version"]});
{int(payload["confidence"] * 100)}% bootstrap intervals in brackets. Every column is explained in the glossary at the end.</small></p>
<h2>Leaderboard</h2>{board}
<details><summary>By budget</summary>{by_budget}</details>
<details><summary>By scenario: detection score above chance (raw), op score, AUPRC</summary>{by_scenario}</details>
<h2>Incidents</h2>
<p><small>For each incident, the detectors that caught it: the day (from the incident's first day, day 0) of each one's first
true alert within budget and that alert's reason, earliest first. Also in <code>{html.escape(csv_name)}</code> beside
results.json, one row per incident and detector.</small></p>
{incidents}
<h2>Plots</h2>{plots}
<h2>Leakage audit</h2>{audits}
<h2>Glossary</h2>{glossary_html()}
</body></html>
"""
