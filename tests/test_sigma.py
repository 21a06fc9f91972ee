"""Sigma rules as detectors: the engine's semantics, the shipped pack on the tiny case, conversion to SIEM queries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("sigma", reason="the siem extra is not installed")

from breachbench.interop.sigma_convert import TARGETS, convert, ecs_field_map, rule_files
from detectors.sigma import SigmaPack, SigmaRuleError, parse_rules, to_expr

RULE = """
title: t
logsource: {{product: breachbench, service: admin}}
detection:
{detection}
level: high
"""


def _eval(detection: str, df: pl.DataFrame) -> list[int]:
    rule = parse_rules({"r.yml": RULE.format(detection=detection)})[0]
    expr = pl.any_horizontal([to_expr(c, set(df.columns), "r.yml") for c in rule["conditions"]])
    return df.with_row_index().filter(expr)["index"].to_list()


ROWS = pl.DataFrame(
    {
        "action": ["View", "export", "query", "view", None],
        "row_count": [1, 5000, 800, 2, 3],
        "ticket_id": [7, None, None, None, 9],
        "local_hour": [10, 2, 23, 12, 3],
        "flag": [True, False, None, True, False],
    }
)


@pytest.mark.parametrize(
    ("detection", "want"),
    [
        ("  s: {action: view}\n  condition: s", [0, 3]),  # Sigma strings match case-insensitively
        ("  s: {action|startswith: ex}\n  condition: s", [1]),
        ("  s: {action: '*uer*'}\n  condition: s", [2]),
        ("  s: {row_count|gte: 800}\n  condition: s", [1, 2]),
        ("  s: {ticket_id: null}\n  condition: s", [1, 2, 3]),
        ("  s: {flag: true}\n  condition: s", [0, 3]),
        ("  s: {action: [export, query]}\n  condition: not s", [0, 3, 4]),
        (
            "  bulk: {row_count|gte: 500}\n  n1: {local_hour|lt: 7}\n  n2: {local_hour|gte: 22}\n  condition: bulk and 1 of n*",
            [1, 2],
        ),
        ("  a: {action: view}\n  b: {ticket_id: null}\n  condition: a and b", [3]),
    ],
)
def test_engine_semantics(detection: str, want: list[int]) -> None:
    assert _eval(detection, ROWS) == want


def test_unknown_field_and_keyword_search_are_refused() -> None:
    with pytest.raises(SigmaRuleError, match="unknown field 'nope'"):
        _eval("  s: {nope: 1}\n  condition: s", ROWS)
    with pytest.raises(SigmaRuleError, match="keyword search"):
        _eval("  s: [foo]\n  condition: s", ROWS)
    with pytest.raises(SigmaRuleError, match="logsource"):
        parse_rules({"r.yml": RULE.format(detection="  s: {a: 1}\n  condition: s").replace("breachbench", "windows")})


def test_correlation_rules_are_refused_by_name() -> None:
    base = "title: x\nname: x\nlogsource: {product: breachbench, service: gateway}\ndetection:\n  s: {endpoint: /my-info}\n  condition: s\n"
    corr = "title: c\ncorrelation:\n  type: event_count\n  rules: [x]\n  group-by: [src_ip]\n  timespan: 1h\n  condition: {gte: 10}\n"
    with pytest.raises(SigmaRuleError, match="c.yml: SigmaCorrelationRule is not supported"):
        parse_rules({"c.yml": corr + "---\n" + base})


def test_the_pack_ships_the_rules_of_the_issue() -> None:
    titles = " | ".join(r["title"].lower() for r in parse_rules({p.name: p.read_text() for p in rule_files()}))
    for words in ("never issued", "employee who has left", "without a ticket", "at night", "several countries"):
        assert words in titles


@pytest.mark.parametrize("target", TARGETS)
def test_every_shipped_rule_converts(target: str) -> None:
    """Each rule gives one non-empty query per backend, over the ECS field names of the export."""
    for rule in rule_files():
        queries = convert(rule, target)
        assert len(queries) == 1 and queries[0].strip(), (rule.name, queries)
    q = " ".join(convert(next(r for r in rule_files() if "without-ticket" in r.name), target))
    assert "event.action" in q and "breachbench.ticket_id" in q and "ticket_id" not in q.replace("breachbench.ticket_id", "")


def test_ecs_field_map_follows_the_export_mapping() -> None:
    m = ecs_field_map("gateway")
    assert m["src_ip"] == "source.ip" and m["endpoint"] == "url.path" and m["token_issued"] == "breachbench.token_issued"


@pytest.fixture(scope="module")
def pack_run(tiny_ds: Any):
    from breachbench.runner import run_detector

    run = run_detector("sigma-pack-v1", tiny_ds)
    assert run.status == "OK", run.error
    return run


def test_catches_the_forged_token_case_on_its_first_day(pack_run: Any, tiny_ds: Any, tiny_config: Any) -> None:
    """A positive unit of the incident is in the top `budget` alerts of the first scored day it has any."""
    pos = tiny_ds.positive_units.filter(pl.col("bucket").is_in(tiny_ds.scored))
    first: dt.date = pos["bucket"].min()
    top = pack_run.alerts.filter(pl.col("bucket") == first).sort("score", descending=True).head(tiny_config.detection.budget)
    hits = top.join(pos.filter(pl.col("bucket") == first), on=["bucket", "entity_kind", "entity_id"])
    assert hits.height >= 1, top
    assert any("never issued" in r or "has left" in r for r in hits["reason"].to_list())


def test_scores_are_rule_levels(pack_run: Any) -> None:
    s = pack_run.alerts["score"]
    assert s.min() >= 0.25 and s.max() < 1.1
    assert set(pack_run.alerts["entity_kind"].unique()) <= {"ip", "key", "customer", "token", "employee"}


def test_custom_rule_folder(tiny_ds: Any, tmp_path: Path) -> None:
    (tmp_path / "one.yml").write_text(RULE.format(detection="  s: {action: export}\n  condition: s") + "fields: [employee_id]\n")
    det = SigmaPack(rules=str(tmp_path)).fit(tiny_ds.view(tiny_ds.warmup[-1]))
    day = tiny_ds.scored[0]
    out = det.score(tiny_ds.view(day, day))
    exports = (
        tiny_ds.scan("admin")
        .filter((pl.col("bucket") == day) & (pl.col("action") == "export"))
        .select("employee_id")
        .unique()
        .collect()
    )
    assert sorted(out["entity_id"].to_list()) == sorted(str(e) for e in exports["employee_id"].to_list())
    assert set(out["entity_kind"]) <= {"employee"}
    with pytest.raises(SigmaRuleError, match="no \\*.yml"):
        SigmaPack(rules=str(tmp_path / "empty")).fit(None)


@pytest.mark.slow  # the session's full tiny run (about a minute here), shared with the suite tests
def test_the_pack_is_on_the_leaderboard(tiny_run: dict[str, Any], tiny_rows: dict[str, Any]) -> None:
    row = tiny_rows["sigma-pack-v1"]
    assert row["status"] == "OK" and row["op_score"] is not None
    assert "sigma-pack-v1" in Path(tiny_run["leaderboard"]).read_text()
