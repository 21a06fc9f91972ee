"""Scoring: average precision, the anchors on the tiny run, and synthetic alert frames."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from breachbench.runner import oracle_alerts
from breachbench.scoring import average_precision, cost_profiles, score_alerts, top_k
from detectors.contract import ALERTS, empty_alerts

# ---- average precision on hand-made cases ---------------------------------------------------


def _ap(scores, labels, n_pos=None) -> float:
    labels = np.asarray(labels, dtype=bool)
    return average_precision(np.asarray(scores, dtype=float), labels, int(labels.sum()) if n_pos is None else n_pos)


def test_ap_perfect_ranking() -> None:
    assert _ap([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_ap_all_negative() -> None:
    assert _ap([0.9, 0.8, 0.3], [0, 0, 0], n_pos=4) == 0.0
    assert _ap([0.9, 0.8], [0, 0], n_pos=0) == 0.0
    assert _ap([], [], n_pos=3) == 0.0


def test_ap_worst_ranking() -> None:
    # positives last: precision 1/3 at recall 1/2, 2/4 at recall 1
    assert _ap([4, 3, 2, 1], [0, 0, 1, 1]) == pytest.approx(0.5 * (1 / 3) + 0.5 * (2 / 4))


def test_ap_ties_enter_together() -> None:
    # a positive tied with a negative cannot be ranked above it
    assert _ap([1.0, 1.0], [1, 0]) == pytest.approx(0.5)
    assert _ap([1.0, 1.0], [0, 1]) == pytest.approx(0.5)
    # the order of tied rows does not matter
    assert _ap([2, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(_ap([2, 1, 1, 1], [1, 1, 0, 0]))
    assert _ap([2, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.5 * 1 + 0.5 * (2 / 4))


def test_ap_unretrieved_positives_lower_it() -> None:
    full = _ap([0.9, 0.1], [1, 0])
    missed = _ap([0.9, 0.1], [1, 0], n_pos=2)
    assert full == pytest.approx(1.0)
    assert missed == pytest.approx(0.5)
    assert _ap([0.9, 0.1], [1, 0], n_pos=4) == pytest.approx(0.25)


def test_ap_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import average_precision_score

    r = np.random.default_rng(0)
    for _ in range(20):
        n = int(r.integers(5, 200))
        scores = np.round(r.random(n), 1)  # many ties
        labels = r.random(n) < 0.2
        labels[0] = True
        assert _ap(scores, labels) == pytest.approx(average_precision_score(labels, scores))


def test_top_k_per_bucket_with_tie_break() -> None:
    d1, d2 = dt.date(2025, 4, 10), dt.date(2025, 4, 11)
    alerts = pl.DataFrame(
        {
            "bucket": [d1, d1, d1, d2, d2],
            "entity_kind": ["ip", "customer", "customer", "key", "ip"],
            "entity_id": ["a", "b", "a", "k", "z"],
            "score": [1.0, 1.0, 0.5, 0.2, 0.9],
        }
    )
    out = top_k(alerts, 2)
    assert out.filter(pl.col("bucket") == d1)["entity_id"].to_list() == ["b", "a"]
    assert out.filter(pl.col("bucket") == d1)["entity_kind"].to_list() == ["customer", "ip"]
    assert out.filter(pl.col("bucket") == d2)["entity_id"].to_list() == ["z", "k"]


# ---- anchors on the tiny run ----------------------------------------------------------------

METRICS = [
    "auprc",
    "recall_at_k",
    "ttd_median_buckets",
    "exposed_before_detection",
    "exposure_prevented",
    "false_alerts_per_bucket",
    "op_score",
]


def test_all_runs_ok(tiny_rows) -> None:
    assert {"oracle", "null", "random", "unissued-token-v1", "iforest-v1"} <= set(tiny_rows)
    for name in ("oracle", "null", "random", "unissued-token-v1", "iforest-v1"):
        row = tiny_rows[name]
        assert row["status"] == "OK", (name, row["error"])
        for m in METRICS:
            assert m in row, (name, m)


def test_oracle_is_perfect(tiny_rows) -> None:
    o = tiny_rows["oracle"]
    assert o["op_score"] == pytest.approx(100.0)
    assert o["auprc"] == pytest.approx(1.0)
    assert o["ttd_median_buckets"] == 0
    assert o["recall_at_k"] == 1.0
    assert o["false_alerts_per_bucket"] == 0.0
    assert o["lift"] == pytest.approx(1 / o["chance_auprc_blind"])  # lift: pooled AUPRC over the best blind ranking's
    # the tiny run's one scenario is the forged-token case in a world of six token-signing keys, fewer than the budget:
    # alerting on every signing key (the blind ranking of that class, in every draw) catches it at once, so no score,
    # the oracle's neither, stands above chance; its raw score is perfect (the anchor at 100: tests/test_metrics.py)
    ((scen, per),) = o["by_scenario"].items()
    assert o["detection_score"] is None and per["point"]["detection_score"] is None, o["detection_score"]
    assert per["point"]["detection_score_raw"] == pytest.approx(100.0), scen
    for name, value in o["op_score_profiles"].items():
        assert value == pytest.approx(100.0), name


def test_null_is_zero(tiny_rows) -> None:
    n = tiny_rows["null"]
    assert n["op_score"] == pytest.approx(0.0)
    assert n["recall_at_k"] == 0.0
    assert n["exposure_prevented"] == 0.0
    assert n["auprc"] == 0.0
    assert n["ttd_median_buckets"] is None
    assert n["exposed_before_detection"] == n["exposed_total"] > 0
    for name, value in n["op_score_profiles"].items():
        assert value == pytest.approx(0.0), name


def _others(tiny_rows):
    return [r for name, r in tiny_rows.items() if name != "oracle" and r["status"] == "OK"]


@pytest.mark.parametrize("metric", ["auprc", "recall_at_k", "exposure_prevented", "op_score"])
def test_oracle_is_best_on_higher_is_better(tiny_rows, metric: str) -> None:
    best = tiny_rows["oracle"][metric]
    for r in _others(tiny_rows):
        assert best >= r[metric] - 1e-9, (r["detector"], metric, r[metric], best)


@pytest.mark.parametrize("metric", ["ttd_median_buckets", "exposed_before_detection", "false_alerts_per_bucket"])
def test_oracle_is_best_on_lower_is_better(tiny_rows, metric: str) -> None:
    def val(r):
        v = r[metric]
        return math.inf if v is None else v

    best = val(tiny_rows["oracle"])
    for r in _others(tiny_rows):
        assert best <= val(r) + 1e-9, (r["detector"], metric, r[metric], best)


def test_unissued_rule_detects(tiny_rows) -> None:
    rule = tiny_rows["unissued-token-v1"]
    assert rule["recall_at_k"] == 1.0
    assert rule["ttd_median_buckets"] == 0
    assert rule["op_score"] > 90


def test_random_is_near_prevalence(tiny_rows) -> None:
    r = tiny_rows["random"]
    assert 0 < r["prevalence"] < 0.1
    lift = r["auprc"] / r["chance_auprc"]
    assert 0.3 <= lift <= 3.0, lift
    # lift is against the blind ranking that reaches highest (here every token-signing key), which a ranking of every
    # unit does not beat
    assert r["chance_auprc_blind"] >= r["chance_auprc"]
    assert r["lift"] == pytest.approx(r["auprc"] / r["chance_auprc_blind"]) and r["lift"] <= lift
    assert r["chance_auprc"] == pytest.approx(r["prevalence"], rel=0.2)  # a uniform ranking's AP is about the prevalence
    assert r["false_alerts_per_bucket"] > 5  # random fills the budget with false alerts


def test_iforest_beats_random(tiny_rows) -> None:
    assert tiny_rows["iforest-v1"]["auprc"] > 5 * tiny_rows["random"]["auprc"]


def test_incident_entries(tiny_rows, tiny_truth) -> None:
    for name in ("oracle", "null", "unissued-token-v1"):
        incs = tiny_rows[name]["incidents"]
        assert len(incs) == tiny_truth.incidents.height == 1
        assert incs[0]["exposed_total"] == tiny_truth.exposure.height
    assert tiny_rows["null"]["incidents"][0]["detected"] is False
    assert tiny_rows["oracle"]["incidents"][0]["detected"] is True


def test_run_wrote_results(tiny_run) -> None:
    import json

    import jsonschema

    payload = json.loads(tiny_run["results"].read_text())
    assert payload["schema_version"] == 3
    schema = json.loads((Path(__file__).resolve().parents[1] / "breachbench" / "data" / "results.schema.json").read_text())
    jsonschema.validate(payload, schema)
    assert {r["detector"] for r in payload["results"]} >= {"oracle", "null", "random"}
    board = tiny_run["leaderboard"].read_text()
    assert board.splitlines()[0] == "# Leaderboard: tiny"
    assert "| oracle |" in board


# ---- synthetic alert frames against the tiny truth ------------------------------------------


@pytest.fixture(scope="module")
def oracle(tiny_ds) -> pl.DataFrame:
    return oracle_alerts(tiny_ds)


@pytest.fixture(scope="module")
def false_units(tiny_run_dir, tiny_truth, tiny_rows) -> pl.DataFrame:
    """Real units from the random detector's alerts that are not positive: pure false alerts."""
    random = pl.read_parquet(tiny_run_dir / "alerts" / "random.parquet")
    pos = tiny_truth.positives.select("bucket", "entity_kind", "entity_id").unique()
    out = random.join(pos, on=["bucket", "entity_kind", "entity_id"], how="anti")
    assert out.height > 1000
    return out


def test_score_alerts_matches_run(tiny_truth, oracle: pl.DataFrame, tiny_rows) -> None:
    again = score_alerts(oracle, tiny_truth, budget=10)["overall"]
    for m in METRICS:
        assert again[m] == tiny_rows["oracle"][m], m


def test_only_false_alerts_costs(tiny_truth, false_units: pl.DataFrame) -> None:
    res = {p: score_alerts(false_units, tiny_truth, budget=10, profile=p)["overall"] for p in cost_profiles()["profiles"]}
    low_fp = res["low_false_positives"]
    assert low_fp["op_score"] < 0
    assert low_fp["recall_at_k"] == 0.0
    assert low_fp["exposure_prevented"] == 0.0
    assert low_fp["auprc"] == 0.0
    assert low_fp["false_alerts_per_bucket"] == pytest.approx(10.0)
    # the dearer a false alert, the worse the score
    assert res["low_false_positives"]["op_score"] < res["standard"]["op_score"] < res["low_misses"]["op_score"] < 0


def test_empty_alerts_are_null(tiny_truth) -> None:
    res = score_alerts(empty_alerts(), tiny_truth)["overall"]
    assert res["op_score"] == 0.0 and res["recall_at_k"] == 0.0 and res["alert_units"] == 0


def test_alerts_outside_scored_buckets_ignored(tiny_truth, tiny_ds, oracle: pl.DataFrame) -> None:
    warm = (
        pl.DataFrame(
            {"bucket": [tiny_ds.warmup[0]] * 3, "entity_kind": ["ip"] * 3, "entity_id": ["a", "b", "c"], "score": [9.0] * 3}
        )
        .with_columns(reason=pl.lit(None, pl.String))
        .cast(ALERTS)
    )
    res = score_alerts(pl.concat([oracle, warm]), tiny_truth)["overall"]
    assert res["false_alerts_per_bucket"] == 0.0 and res["op_score"] == pytest.approx(100.0)


def test_late_detection_scores_between(tiny_truth, oracle: pl.DataFrame) -> None:
    days = oracle["bucket"].unique().sort()
    late = oracle.filter(pl.col("bucket") >= days[len(days) // 2])
    res = score_alerts(late, tiny_truth)["overall"]
    assert res["recall_at_k"] == 1.0
    assert res["ttd_median_buckets"] == (days[len(days) // 2] - days[0]).days
    assert 0 < res["op_score"] < 100
    assert 0 < res["exposure_prevented"] < 1
    assert res["auprc"] < 1


def test_noise_ranked_below_truth_keeps_recall(tiny_truth, oracle: pl.DataFrame, false_units: pl.DataFrame) -> None:
    noise = false_units.with_columns(score=pl.col("score") * 0.5)  # below the oracle's 1.0
    res = score_alerts(pl.concat([oracle, noise]), tiny_truth)["overall"]
    assert res["recall_at_k"] == 1.0
    assert res["auprc"] == pytest.approx(1.0)
    # noise above the truth pushes it out of the budget in busy buckets and lowers AUPRC
    loud = false_units.with_columns(score=pl.col("score") + 2.0)
    res2 = score_alerts(pl.concat([oracle, loud]), tiny_truth)["overall"]
    assert res2["auprc"] < 0.5
    assert res2["op_score"] < res["op_score"]


def test_a_budget_read_from_one_ranking_is_that_budget_alone(tiny_truth, oracle: pl.DataFrame, false_units: pl.DataFrame) -> None:
    """score_alerts ranks once, at the largest budget, and slices it: each budget's figures are those of scoring at it alone."""
    days = oracle["bucket"].unique().sort()
    mixed = pl.concat(
        [
            oracle.filter(pl.col("bucket") >= days[len(days) // 3]).with_columns(score=pl.col("score") + 0.7),  # late, mid-ranked
            false_units.with_columns(score=pl.col("score") + 1.0),
        ]
    )
    ranked_once = score_alerts(mixed, tiny_truth, budget=10, budgets=(1, 2, 5, 20))
    for k in (1, 2, 5, 10, 20):
        alone = score_alerts(mixed, tiny_truth, budget=k)
        assert {m: v for m, v in ranked_once["by_budget"][str(k)].items() if m != "parts"} == {
            m: alone["overall"][m] for m in ranked_once["by_budget"][str(k)] if m != "parts"
        }, k
        # the false reads, counted directly: the top k units of each bucket that are no incident's actor
        read = top_k(mixed, k).join(tiny_truth.actor_units, on=["bucket", "entity_kind", "entity_id"], how="anti")
        assert alone["overall"]["false_alerts_read"] == read.height, k
    assert 0 < ranked_once["by_budget"]["1"]["false_alerts_read"] < ranked_once["by_budget"]["20"]["false_alerts_read"]
    curve = ranked_once["curves"]["budget"]
    assert [curve[k - 1] for k in (1, 2, 5, 10, 20)] == [
        ranked_once["by_budget"][str(k)]["recall_at_k"] for k in (1, 2, 5, 10, 20)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reads_match_a_plain_top_k_reading(tiny_truth, oracle: pl.DataFrame, false_units: pl.DataFrame, seed: int) -> None:
    """Random alerts (actors, victims and others, scores with ties) scored at several budgets: each incident's first
    detection, its victims flagged, the false reads and the budget curve equal a plain reading of ``top_k`` at that budget."""
    keys = ["bucket", "entity_kind", "entity_id"]
    rng = np.random.default_rng(seed)
    units = pl.concat(
        [
            oracle.select(keys),
            tiny_truth.victims.select(keys).unique(),
            false_units.select(keys).sample(fraction=0.3, seed=seed),
        ]
    ).unique(maintain_order=True)
    units = units.filter(pl.Series(rng.random(units.height) < 0.7))
    alerts = units.with_columns(
        score=pl.Series(rng.integers(0, 6, units.height).astype(float)), reason=pl.lit(None, pl.String)
    ).cast(ALERTS)  # six score values: many ties, broken by entity kind and id
    labelled = alerts.join(tiny_truth.actor_units.with_columns(hit=pl.lit(True)), on=keys, how="left").with_columns(
        pl.col("hit").fill_null(False)
    )
    res = score_alerts(alerts, tiny_truth, budget=10, budgets=(1, 3, 25))
    n_inc = tiny_truth.incidents.height
    for k in (1, 3, 10, 25):
        read = top_k(labelled, k)
        first = dict(
            read.filter(pl.col("hit"))
            .join(tiny_truth.actors, on=keys)
            .group_by("incident_id")
            .agg(pl.col("bucket").min())
            .iter_rows()
        )
        victims = dict(read.join(tiny_truth.victims, on=keys).group_by("incident_id").len().iter_rows())
        alone = score_alerts(alerts, tiny_truth, budget=k)
        for inc in alone["incidents"]:
            i = inc["incident_id"]
            assert inc["detected_bucket"] == (first[i].isoformat() if i in first else None), (k, i)
            assert inc["victims_flagged"] == victims.get(i, 0), (k, i)
        assert alone["overall"]["false_alerts_read"] == read.filter(~pl.col("hit")).height, k
        assert res["by_budget"][str(k)]["recall_at_k"] == pytest.approx(len(first) / n_inc), k
        assert res["curves"]["budget"][k - 1] == pytest.approx(len(first) / n_inc), k
