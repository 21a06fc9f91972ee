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
