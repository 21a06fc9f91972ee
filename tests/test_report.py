"""The report a security lead reads: verdict, scenario matrix, incidents, glossary, audits, plots, terminal and logs."""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from breachbench.report import (
    COLUMNS,
    GLOSSARY,
    INCIDENT_COLUMNS,
    PRINTED,
    glossary_markdown,
    print_leaderboard,
    scenario_matrix,
    stability_lines,
    verdict,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def payload(tiny_run: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(tiny_run["results"]).read_text())


@pytest.fixture(scope="module")
def doc(tiny_run: dict[str, Any]) -> str:
    return Path(tiny_run["report"]).read_text(encoding="utf-8")


# ---------------------------------------------------------------- 1. the first screen


def test_first_screen_is_verdict_then_matrix(doc: str, payload: dict[str, Any]) -> None:
    body = doc.split("<body>", 1)[1]
    assert (
        body.index("Verdict")
        < body.index("Scenario matrix")
        < body.index("<h2>Leaderboard</h2>")
        < body.index("<h2>Incidents</h2>")
    )
    words = verdict(payload)
    # the tiny run's one scenario: every token-signing key (fewer than the budget) catches it at once, so no score stands
    # above chance and the verdict says why instead of ranking (a ranked verdict: test_verdict_* below)
    assert words[0].startswith("No detector has a detection score: on every scenario") and "chance bar is 100" in words[0]
    assert any("no score above chance at this budget" in w and "left out of the headline" in w for w in words[1:]), words
    ranked = verdict(_with_scores(payload, (40.0, 35.0, 45.0), (20.0, 15.0, 25.0)))
    assert ranked[0].startswith("Best detector overall: alpha-v1") and "oracle" not in ranked[0].split(",")[0]
    for line in words:
        assert html.escape(line) in doc
    matrix = doc.split("<table class='matrix'>", 1)[1].split("</table>", 1)[0]
    m = scenario_matrix(payload)
    for s in m["scenarios"]:
        assert f"{s}<br><small>chance bar " in matrix
    assert all(f"<th class='det'>{d}</th>" in matrix for d in m["detectors"])
    assert matrix.count("background:#") >= len(m["detectors"])  # colour-coded cells
    oracle = m["cells"]["oracle"][m["scenarios"][0]]
    assert oracle["caught"] == oracle["incidents"] and oracle["prevented"] == pytest.approx(1.0)


def _with_scores(payload: dict[str, Any], a: tuple[float, float, float], b: tuple[float, float, float]) -> dict[str, Any]:
    p = copy.deepcopy(payload)
    for r in p["results"]:  # the scores below are made up: no row has another's (the tiny run's rows may)
        r["same_results_as"] = None
    p["seeds"]["test"] = [1, 2, 3, 4]  # as many seeds as the verdict needs to judge a gap (the tiny run has one)
    rows = [r for r in p["results"] if r["status"] == "OK" and r["detector"] not in ("oracle",)]
    first, second = rows[0], rows[1]
    for r, (v, lo, hi) in ((first, a), (second, b)):
        r["detection_score"], r["ci"]["detection_score"] = v, [lo, hi]
    for r in rows[2:]:
        r["detection_score"], r["ci"]["detection_score"] = 0.0, [0.0, 0.0]
    first["detector"], second["detector"] = "alpha-v1", "beta-v1"
    return p


def test_a_detector_entered_twice_is_ranked_and_counted_once(payload: dict[str, Any]) -> None:
    """A red team entered the best built-in twice more under plugin ids: the copies were named "best overall", their
    intervals met the top three's width target that the run without them missed, and the split-half correlation read
    0.98 where it is 0.95 without them. A row whose detection results equal an earlier one's (every incident's) is marked
    as its copy (the first entered stands for them) and counted once, whatever its other figures (a second red team's
    copy padded with alerts below the budget differed in its AUPRC alone, and was named best overall); a row that
    differs in one incident's figure is not a copy."""
    from breachbench.stats import split_half
    from breachbench.suite import headline_summary, mark_same_results

    p = _with_scores(payload, (80.0, 75.0, 85.0), (50.0, 40.0, 60.0))
    alone = copy.deepcopy(p["results"])
    alpha = next(r for r in p["results"] if r["detector"] == "alpha-v1")
    copies = [
        copy.deepcopy(alpha) | {"detector": name, "version": "9", "fingerprint": "x", "fit_s": 9.0}
        for name in ("a-copy", "z-copy")
    ]
    # alerts below the budget: never read at it, so every incident's outcome is alpha's; its precision is not
    padded = copy.deepcopy(alpha) | {"detector": "padded-v1", "auprc": alpha["auprc"] + 0.001, "false_alerts_per_bucket": 9.9}
    copies.append(padded)
    near = copy.deepcopy(alpha) | {"detector": "near-v1"}
    near["incidents"][0]["timeliness"] = near["incidents"][0]["timeliness"] / 2 + 0.01
    p["results"] = [*p["results"], *copies, near]
    mark_same_results(p["results"])
    marked = {r["detector"]: r["same_results_as"] for r in p["results"]}
    assert marked["a-copy"] == marked["z-copy"] == marked["padded-v1"] == "alpha-v1"
    assert marked["alpha-v1"] is None and marked["near-v1"] is None
    assert marked["oracle"] is None and marked.get("null") is None
    mark_same_results(alone)
    assert headline_summary(p["results"])["top"] == [*headline_summary([*alone, near])["top"]]
    assert "a-copy" not in headline_summary(p["results"])["top"]
    words = verdict(p)
    assert words[0].startswith("Best detector overall: alpha-v1 (a-copy, z-copy, padded-v1: the same detection)"), words[0]
    assert "tied with" not in words[0].split(",", 3)[0] and not any("-copy" in w or "padded" in w for w in words[1:])
    lines = stability_lines(p)
    at = lines.index("same detection as alpha-v1: a-copy, z-copy, padded-v1")
    assert (
        "each incident caught alike: counted once in the top three's widths and the split-half rho" in lines[at + 1]
        and len(lines[at + 1]) < 100
    )
    # a detector as good as the oracle is the best detector, not the oracle's copy; a built-in stands for its copies
    # whatever their ids and order (detectors = ["*"] runs the registry in id order)
    oracle = copy.deepcopy(next(r for r in p["results"] if r["detector"] == "oracle"))
    oracle["detection_score"], oracle["ci"]["detection_score"] = 100.0, [100.0, 100.0]
    perfect = copy.deepcopy(oracle) | {"detector": "perfect-v1"}
    builtin = copy.deepcopy(alpha) | {"detector": "rule-no-ticket-reads-v1"}
    rest = [r for r in copy.deepcopy(p["results"]) if r["detector"] != "oracle"]
    q = copy.deepcopy(p) | {"results": [oracle, perfect, *rest, builtin]}
    mark_same_results(q["results"])
    marked = {r["detector"]: r["same_results_as"] for r in q["results"]}
    assert marked["perfect-v1"] is None and marked["rule-no-ticket-reads-v1"] is None
    assert marked["alpha-v1"] == marked["a-copy"] == "rule-no-ticket-reads-v1"
    assert verdict(q)[0].startswith("Best detector overall: perfect-v1, detection score")
    # the split-half statistic ranks each detector once
    seeds = sorted({i["seed"] for i in alpha["incidents"]})
    assert split_half(p["results"], seeds)["detectors"] == split_half([*alone, near], seeds)["detectors"]


def test_verdict_says_whether_the_gap_is_significant(payload: dict[str, Any]) -> None:
    apart = verdict(_with_scores(payload, (80.0, 75.0, 85.0), (50.0, 40.0, 60.0)))
    assert apart[0].startswith("Best detector overall: alpha-v1, detection score 80.0 [75.0, 85.0]")
    assert apart[1].startswith("Runner-up: beta-v1, 50.0 [40.0, 60.0], 30.0 points behind")
    assert "do not overlap, so the gap is significant" in apart[1]
    close = verdict(_with_scores(payload, (80.0, 70.0, 90.0), (75.0, 65.0, 85.0)))
    assert "intervals overlap, so the gap is not significant" in close[1]
    # with fewer seeds the intervals hold little of how a detector varies from world to world: a red team's two halves of
    # one procedure (a rule a coin switches off on a world) were called significantly apart with one seed
    for seeds in ([1], [1, 2], [1, 2, 3]):
        few = _with_scores(payload, (80.0, 75.0, 85.0), (50.0, 40.0, 60.0))
        few["seeds"]["test"] = seeds
        line = verdict(few)[1]
        assert f"with {len(seeds)} seed" in line and "so the gap is not judged (at least 4 seeds)" in line, line
        assert "significant" not in line
    assert any(line.startswith("How early: alpha-v1") or "alpha-v1" in line for line in close[2:])
    early = [line for line in apart if line.startswith("How early:")]
    # the median is over the incidents it catches, and the line says how many of all those are (a red team read the
    # verdict's "median 0 days" beside a leaderboard's time to detect of 2, which counts the missed ones too)
    assert early and all(re.match(r"How early: on the \d+ of \d+ incidents it catches, ", line) for line in early), apart
    # the share prevented is the detector's over every incident, missed ones included, and says so (a red team read
    # "on the 120 of 184 incidents it catches ... prevents 67%" as 67% of the caught ones' harm, where it was 89%)
    for line in early:
        n = re.match(r"How early: on the \d+ of (\d+) ", line)
        assert n and re.search(rf"Over all {n[1]} incidents, those it misses included, it prevents \d+%", line), line


def test_a_chance_bars_ranking_reads_as_its_classes_or_rotation() -> None:
    """A union of classes lists them, and a rotation says it is one (a red team read "random administrator+employee:
    analyst+... employees" and "random employee:administrator+employee:analyst rotating employees")."""
    from breachbench.report import kind_note

    def note(kind: str) -> str:
        return kind_note({"bar_kinds": {"s": kind}}, "s")

    assert note("employee") == " (random employees)"
    assert note("key:token-signing") == " (random token-signing keys)"
    assert note("employee:logistics+employee:support_agent") == " (random logistics or support agent employees)"
    assert note("employee:a+employee:b+employee:c") == " (random a, b or c employees)"
    assert note("rotating:employee:analyst+employee:administrator") == " (analyst or administrator employees in rotation)"
    assert note("rotating:customer") == " (customers in rotation)"
    assert note("pool") == " (random employees its picking rule allows)"
    assert note("rotating:pool:employee:analyst+employee:administrator") == (
        " (analyst or administrator employees its picking rule allows in rotation)"
    )
    assert note("any") == ""


def test_the_interval_widths_leave_out_the_anchors_that_read_truth_or_alert_on_nothing() -> None:
    from breachbench.suite import headline_summary

    row = lambda det, score: {"detector": det, "status": "OK", "detection_score": score, "ci": {"detection_score": [0.0, score]}}  # noqa: E731
    head = headline_summary([row("oracle", 100.0), row("a-v1", 60.0), row("null", 0.0), row("b-v1", 0.0)])
    assert head["top"] == ["a-v1", "b-v1"] and head["widths"] == [60.0, 0.0]


# ---------------------------------------------------------------- 2. incidents


def test_incident_table_and_csv(tiny_run: dict[str, Any], payload: dict[str, Any], doc: str) -> None:
    path = Path(tiny_run["results"]).parent / "incidents.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == INCIDENT_COLUMNS
    ok = [r for r in payload["results"] if r["status"] == "OK"]
    n_inc = sum(len(run["incidents"]) for run in ok[0]["runs"])
    assert len(rows) == n_inc * len(ok)
    oracle = [r for r in rows if r["detector"] == "oracle"]
    assert all(r["detected"] == "True" and r["first_alert_day"] != "" and r["reason"] == "reads truth" for r in oracle)
    assert all(r["actor_role"] and r["start"] and r["window_days"] and int(r["records_exposed"]) > 0 for r in rows)
    missed = [r for r in rows if r["detector"] == "null"]
    assert missed and all(r["detected"] == "False" and r["first_alert_day"] == "" for r in missed)
    assert any(r["reason"] and r["detector"] not in ("oracle",) for r in rows)  # reasons come from the alerts files
    section = doc.split("<h2>Incidents</h2>", 1)[1].split("<h2>", 1)[0]
    assert "incidents.csv" in section and "<h3>coupang-forged-token-v3</h3>" in section
    assert "reads truth" in section and "missed by" in section
    # every incident row: the detectors named as catching it and the count that missed it add up to all of them
    rows_html = re.findall(r"<td class='caught'>(.*?)</td><td>(\d+) of (\d+)</td>", section)
    assert len(rows_html) == n_inc
    for caught, missed, total in rows_html:
        named = re.findall(r"<b>([^<]+)</b> day \d+", caught)
        assert "oracle" in named and len(named) + int(missed) == int(total) == len(ok), (caught, missed, total)


def test_a_first_true_alerts_reason_is_shown_as_one_line_of_plain_text() -> None:
    """A red team's reason held a terminal's escape sequences (a colour, a window title), a right-to-left override, a
    zero-width space and line breaks: incidents.csv held them byte for byte (``cat`` ran them) and report.html too."""
    import datetime as dt

    import polars as pl

    from breachbench.report import _first_reasons

    day = dt.date(2025, 4, 9)
    evil = "\x1b[31mred\x1b]0;title\x07 \u202eevil\u200b\nnext line <b>x</b>"
    read = pl.DataFrame({"bucket": [day], "entity_kind": ["employee"], "entity_id": ["7"], "rank": [1], "reason": [evil]})
    actors = pl.DataFrame({"bucket": [day], "entity_kind": ["employee"], "entity_id": ["7"], "incident_id": [3]})
    (shown,) = _first_reasons(read, actors).values()
    assert not any(c in shown for c in "\x1b\x07\u202e\u200b\n"), repr(shown)
    assert "red" in shown and "next line <b>x</b>" in shown  # the words stay (report.html escapes the markup)


# ---------------------------------------------------------------- 3. glossary


def test_glossary_covers_every_column_and_readme_holds_it_verbatim(doc: str, tiny_run: dict[str, Any]) -> None:
    headers = {h for _, h, _ in COLUMNS}
    assert headers <= set(GLOSSARY), headers - set(GLOSSARY)
    board = doc.split("<h2>Leaderboard</h2>", 1)[1].split("</thead>", 1)[0]
    shown = {html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", board)}
    assert shown and shown <= set(GLOSSARY), shown - set(GLOSSARY)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for line in glossary_markdown().splitlines():
        assert line in readme.splitlines(), line[:80]
    board_md = Path(tiny_run["leaderboard"]).read_text()
    assert all(f"- **{h}**: {GLOSSARY[h]}" in board_md for h in headers)  # leaderboard.md explains its columns in the same words
    glossary = doc.split("<h2>Glossary</h2>", 1)[1]
    for term, text in GLOSSARY.items():
        assert f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" in glossary, term


# ---------------------------------------------------------------- 4. audits


def test_audits_in_one_short_table_with_details_folded(doc: str, payload: dict[str, Any]) -> None:
    section = doc.split("<h2>Leakage audit</h2>", 1)[1].split("<h2>", 1)[0]
    summary, rest = section.split("<details>", 1)
    head = re.findall(r"<th>(.*?)</th>", summary)
    assert head == ["scenario", "best one-line shortcut", "its op score (pooled)", "leakage verdict", "artefact audit"]
    scenarios = {a["scenario"] for a in payload["leakage_audit"]["scenarios"]}
    assert summary.count("<tr><td>") == len(scenarios)
    assert "easy on purpose" in summary  # the tiny forged-token case is declared easy
    assert "<summary>Per dataset" in rest and rest.count("<details>") >= 1


# ---------------------------------------------------------------- 5. terminal and logs


def _big(payload: dict[str, Any]) -> dict[str, Any]:
    """Wide numbers and a long name: what truncated cells at 120 columns before."""
    p = copy.deepcopy(payload)
    r = next(r for r in p["results"] if r["detector"] == "null")
    r["detector"] = "a-detector-with-a-rather-long-name-v12"
    r["op_score"], r["detection_score"], r["ci"]["detection_score"] = -13456.7, 12.3, [-0.0, 100.0]
    r["false_alerts_per_bucket"] = 12345.67
    return p


@pytest.mark.parametrize("big", [False, True])
def test_printed_leaderboard_fits_100_columns_and_cuts_no_number(payload: dict[str, Any], big: bool) -> None:
    p = _big(payload) if big else payload
    console = Console(width=100, record=True, file=io.StringIO())
    print_leaderboard(p["results"], "tiny", console, p)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" not in text and "..." not in text
    from breachbench.report import _cell

    for r in p["results"]:
        for key, _, fmt in COLUMNS:
            if key in PRINTED:
                assert _cell(r, key, fmt, {"detection_score"}) in text, (r["detector"], key)
    if big:
        assert "-13,456.7" in text or "-13456.7" in text


def test_plain_progress_lines() -> None:
    from breachbench.cli import PlainProgress

    out = io.StringIO()
    p = PlainProgress(Console(file=out, width=200), every=1e9)
    t = p.add_task("detect", total=4)
    p.update(t, description="detect null")
    p.advance(t, 2)
    p.update(t, description="detect oracle")
    p.advance(t, 2)
    lines = out.getvalue().splitlines()
    assert [re.sub(r"^\[ *[0-9.]+ s\] ", "", line) for line in lines[:-1]] == [
        "detect: started (0/4)",
        "detect null: 0/4",
        "detect oracle: 2/4",
    ]
    assert re.fullmatch(r"\[ *[0-9.]+ s\] detect oracle: done, 4/4 in [0-9.]+ s", lines[-1])
    out.truncate(0)
    out.seek(0)
    g = p.add_task("generate logs", total=3)
    p.update(g, completed=3)
    p.update(g, completed=1)  # the next dataset: the stage starts again and is reported again
    p.update(g, completed=3)
    assert [re.sub(r"^\[ *[0-9.]+ s\] ", "", line).split(" in ")[0] for line in out.getvalue().splitlines()] == [
        "generate logs: started (0/3)",
        "generate logs: done, 3/3",
        "generate logs: started again (1/3)",
        "generate logs: done, 3/3",
    ]


def test_plain_progress_stays_quiet_at_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import breachbench.cli as cli

    out = io.StringIO()
    now = [0.0]
    monkeypatch.setattr(cli.time, "perf_counter", lambda: now[0])
    p = cli.PlainProgress(Console(file=out, width=200), every=1e9, quiet=10.0)
    now[0] = 5.0
    t = p.add_task("generate logs", total=4)  # quiet
    now[0] = 9.0
    p.update(t, completed=1, description="generate logs 1")  # quiet
    now[0] = 11.0
    p.update(t, completed=4)  # said
    assert [re.sub(r"^\[ *[0-9.]+ s\] ", "", line) for line in out.getvalue().splitlines()] == [
        "generate logs 1: done, 4/4 in 6.0 s"
    ]


def test_generate_piped_reports_progress_after_its_quiet_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import breachbench.cli as cli

    monkeypatch.setattr(cli, "GENERATE_QUIET_S", 0.0)
    res = CliRunner().invoke(cli.app, ["generate", str(REPO / "configs" / "tiny.toml"), "--out", str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    assert re.search(r"generate world: started", res.output) and "dataset written to" in res.output, res.output


def test_run_piped_prints_a_line_per_stage_and_detector(tmp_path: Path) -> None:
    dets = ["null", "rule-stale-key-v1"]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "breachbench",
            "run",
            str(REPO / "configs" / "tiny.toml"),
            "--out",
            str(tmp_path / "run"),
            "--workers",
            "1",
            "--set",
            f"detection.detectors={json.dumps(dets)}",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stderr.splitlines()
    stamped = [line for line in lines if re.match(r"^\[ *[0-9.]+ s\] ", line)]
    assert len(stamped) >= 8, res.stderr[-3000:]
    text = "\n".join(stamped)
    assert re.search(r"generate \S+: done, \d+/\d+ in [0-9.]+ s", text), text
    assert re.search(r"detect: started \(0/\d+\)", text) and re.search(r"score: done, \d+/\d+ in [0-9.]+ s", text), text
    for det in [*dets, "oracle"]:
        assert f"detect {det}: " in text, det
        assert re.search(rf"detector {re.escape(det)}: OK on 1/1 dataset\(s\) in [0-9.]+ s", text), det
    assert "leakage audit: " in text and "report: " in text and re.search(r"chance lines: done in [0-9.]+ s", text), text
    assert "Leaderboard: tiny" in res.stdout and max(len(line) for line in res.stdout.splitlines()) <= 200


# ---------------------------------------------------------------- 6. plots


def test_plots_are_titled_labelled_and_legends_sit_outside(tiny_run: dict[str, Any], payload: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from breachbench.dataset import Dataset
    from breachbench.html import detector_styles, report_figures

    out = Path(tiny_run["results"]).parent
    datasets = {d["label"]: Dataset.open(Path(d["path"])) for d in payload["datasets"] if not d["tuning"]}
    figs = report_figures(out, payload, datasets)
    assert [t.split(" (")[0] for t, _ in figs][-4:] == [
        "Budget curves",
        "Precision-recall curves",
        "Time to detect",
        "What fooled each detector",
    ]
    assert sum(t.startswith("Records exposed over time") for t, _ in figs) == len({d["scenario"] for d in payload["datasets"]})
    try:
        for title, fig in figs:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            axes = fig.get_axes()
            assert axes, title
            boxes = [ax.get_window_extent(renderer) for ax in axes]
            for ax in axes:
                assert ax.get_title(), title
                assert ax.get_xlabel() and ax.get_ylabel(), title
                for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
                    shown = [t.get_window_extent(renderer) for t in ticks if t.get_visible() and t.get_text()]
                    for a, b in zip(shown, shown[1:], strict=False):
                        assert not a.overlaps(b), (title, [t.get_text() for t in ticks])
                leg = ax.get_legend()
                if leg is not None:
                    lb = leg.get_window_extent(renderer)
                    assert not any(lb.overlaps(bb) for bb in boxes), title
            assert not fig.legends or all(not lg.get_window_extent(renderer).overlaps(bb) for lg in fig.legends for bb in boxes)
    finally:
        for _, fig in figs:
            plt.close(fig)
    names = [f"det-{i}" for i in range(40)]
    styles = detector_styles(names)
    assert len({(s["color"], s["marker"]) for s in styles.values()}) == len(names)


def test_rows_of_the_same_detection_score_are_tied_and_go_by_id() -> None:
    """No figure without a chance line breaks a tie on the headline: a blind rotation's higher op score does not lift it
    above an honest rule that scores as little above chance (both 0)."""
    from breachbench.report import ordered

    def row(name: str, score: float | None, op: float, status: str = "OK") -> dict:
        return {"detector": name, "status": status, "detection_score": score, "op_score": op}

    rows = [
        row("z-blind-rotation", 0.0, 20.2),
        row("null", 0.0, 0.0),
        row("a-honest-rule", 0.0, 8.7),
        row("broken", None, 0.0, "ERROR"),
        row("oracle", 100.0, 100.0),
        row("m-good", 40.0, 30.0),
        row("b-good", 40.0, 10.0),
    ]
    assert [r["detector"] for r in ordered(rows)] == [
        "oracle", "b-good", "m-good", "a-honest-rule", "z-blind-rotation", "null", "broken"
    ]  # fmt: skip
    # with no score above chance for anyone (every chance bar at 100), the anchors still lead and close the table
    rows = [row("unissued", None, 90.0), row("null", None, 0.0), row("oracle", None, 100.0), row("blind", None, 95.0)]
    assert [r["detector"] for r in ordered(rows)] == ["oracle", "blind", "unissued", "null"]
