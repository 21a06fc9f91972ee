"""breachbench.compare on results given as dicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from breachbench.compare import METRICS, METRICS_V3, compare


def test_results_without_a_schema_version_compare_on_the_common_metrics() -> None:
    old = {"results": [{"detector": "d", "op_score": 10.0}]}
    new = {"results": [{"detector": "d", "op_score": 5.0}]}
    rows, bad = compare(old, new, "op_score", 1.0)  # raised TypeError (None >= 3)
    assert bad == ["d"]
    assert {r["metric"] for r in rows} == set(METRICS)


def test_version_3_adds_its_metrics() -> None:
    old = {"schema_version": 3, "results": [{"detector": "d", "detection_score": 10.0}]}
    rows, bad = compare(old, old, "detection_score", 0.0)
    assert bad == [] and {r["metric"] for r in rows} == set(METRICS) | set(METRICS_V3)


def test_detection_scores_above_different_chance_lines_do_not_compare() -> None:
    import pytest

    from breachbench.compare import CompareError

    row = [{"detector": "d", "detection_score": 10.0, "op_score": 5.0}]
    old = {"schema_version": 3, "results": row, "chance": {"method": "uniform ranking of each bucket's universe"}}
    new = {"schema_version": 3, "results": row, "chance": {"method": "uniform ranking, or of one entity kind's units"}}
    with pytest.raises(CompareError, match="different chance lines"):
        compare(old, new, "detection_score", 0.0)
    rows, bad = compare(old, new, "op_score", 0.0)  # other metrics still compare
    assert bad == [] and rows
    assert compare(new, new, "detection_score", 0.0)[1] == []


def test_lifts_against_different_chance_do_not_compare() -> None:
    """Lift once divided by a ranking of every unit; it now divides by the blind ranking that reaches highest."""
    import pytest

    from breachbench.compare import CompareError

    before = [{"detector": "d", "lift": 3.3, "chance_auprc": 0.01, "op_score": 5.0}]
    after = [{"detector": "d", "lift": 0.5, "chance_auprc": 0.01, "chance_auprc_blind": 0.07, "op_score": 5.0}]
    old, new = ({"schema_version": 3, "results": rows} for rows in (before, after))
    with pytest.raises(CompareError, match="lifts do not compare"):
        compare(old, new, "lift", 0.0)
    assert compare(old, new, "op_score", 0.0)[1] == []  # other metrics still compare
    assert compare(new, new, "lift", 0.0)[1] == []


def test_a_run_folder_stands_for_its_results_and_a_folder_without_one_is_named(tmp_path) -> None:
    import json

    import pytest

    from breachbench.compare import SUPPORTED, CompareError, load_results

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"schema_version": max(SUPPORTED), "results": []}))
    assert load_results(run)["_path"] == str(run / "results.json")
    with pytest.raises(CompareError, match="a folder without results.json"):
        load_results(tmp_path)  # it said "file not found" of a folder that is there
    with pytest.raises(CompareError, match="file not found"):
        load_results(tmp_path / "nope.json")


_GOOD = '{"schema_version": 3, "chance": null, "results": [{"detector": "d", "op_score": 50.0}]}'


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (_GOOD.replace("50.0", "NaN"), "NaN is not a JSON number"),  # passed the gate: nan - 50 regresses nothing
        (_GOOD.replace("50.0", "Infinity"), "Infinity is not a JSON number"),
        (_GOOD.replace("50.0", '"high"'), "results[0].op_score"),
        (_GOOD.replace("50.0", "true"), "results[0].op_score"),  # counted as 1.0
        (_GOOD.replace("50.0", "1" + "0" * 400), "results[0].op_score"),  # OverflowError
        (_GOOD.replace('"d"', "7"), "detector id"),
        (_GOOD.replace('"d"', '["d"]'), "detector id"),
        (_GOOD.replace('"results": [', '"results": [7, '), "results[0]"),
        (_GOOD.replace('"chance": null', '"chance": []'), "chance"),
        (_GOOD.replace(', "results": [{"detector": "d", "op_score": 50.0}]', ""), "results: NoneType"),
        (_GOOD.replace("}]}", '}, {"detector": "d", "op_score": 1.0}]}'), "two rows"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"schema_version": true, "results": []}', "schema_version"),
    ],
)
def test_a_hostile_results_file_is_one_line_and_exit_2(text: str, needle: str, tmp_path) -> None:
    """A red team's crafted results.json files gave tracebacks, and one with a NaN score passed the CI gate."""
    from typer.testing import CliRunner

    from breachbench.cli import app

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(_GOOD)
    bad.write_text(text)
    for args in ([str(good), str(bad)], [str(bad), str(good)]):
        res = CliRunner().invoke(app, ["compare", *args])
        assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    assert CliRunner().invoke(app, ["compare", str(good), str(good)]).exit_code == 0


def test_ids_from_a_results_file_reach_the_terminal_without_markup_or_escape_sequences(tmp_path) -> None:
    from typer.testing import CliRunner

    from breachbench.cli import app

    evil = "[bold red]REGRESSED[/bold red] \x1b[2J\x1b]0;pwned\x07"
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(_GOOD.replace('"d"', json.dumps(evil)))
    new.write_text(_GOOD.replace('"d"', json.dumps(evil)).replace("50.0", "10.0"))
    res = CliRunner().invoke(app, ["compare", str(old), str(new)], color=True)
    assert res.exit_code == 1 and "\x1b[2J" not in res.output and "\x07" not in res.output, repr(res.output)
    assert "[bold red]REGRESSED[/bold red]" in res.output.replace("\n", "")  # shown as the text it is


def test_runs_of_other_datasets_budgets_or_cost_profiles_do_not_compare_unless_asked() -> None:
    """Two --out folders of one config draw their own secrets: a red team saw stat-peer-group-v1 "regress" by 5.6
    between two such runs of the same code, and a budget of 20 against 10 pass for a drop."""
    from breachbench.compare import CompareError

    def run(hashes: list[str], budget: int = 10, profile: str = "standard", score: float = 10.0) -> dict:
        return {
            "schema_version": 3,
            "budget": budget,
            "cost_profile": profile,
            "datasets": [{"label": f"l{i}", "config_hash": h} for i, h in enumerate(hashes)],
            "results": [{"detector": "d", "detection_score": score}],
        }

    def with_suite(draws: int, **extra: Any) -> dict:
        return run(["a", "b"]) | {"config": {"suite": {"chance_draws": draws, "bootstrap": 300, "seeds": [1, 2]} | extra}}

    base, suited = run(["a", "b"]), with_suite(1000)
    assert compare(base, run(["b", "a"], score=9.0), "detection_score", 0.5)[1] == ["d"]  # same datasets, any order
    for old, new, needle in (
        (base, run(["a", "c"]), "scored different datasets"),
        (base, run(["a", "b"], budget=20), "budget"),
        (base, run(["a", "b"], profile="strict"), "cost profile"),
        # the same alerts files moved by 1.0 with 200 chance draws against 1,000 (a red team): the bars are draws
        (suited, with_suite(200), r"other settings \(suite.chance_draws 1000 against 200\)"),
        (suited, with_suite(1000, bootstrap=500), r"suite.bootstrap 300 against 500"),
    ):
        with pytest.raises(CompareError, match=needle):
            compare(old, new, "detection_score", 0.5)
        assert compare(old, new, "detection_score", 0.5, other_datasets=True)[1] == []
    assert compare(with_suite(1000, seeds=[3, 4]), suited, "detection_score", 0.5)[1] == []  # the hashes decide
    bare = {"schema_version": 3, "results": [{"detector": "d", "detection_score": 10.0}]}
    assert compare(bare, base, "detection_score", 0.0)[1] == []  # a file that does not list them: nothing to check
