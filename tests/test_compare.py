"""breachbench.compare on results given as dicts."""

from __future__ import annotations

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
