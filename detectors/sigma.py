"""Sigma rules as detectors: a folder of rules evaluated with polars over the view's logs.

pySigma parses each rule (YAML, modifiers, condition); :func:`to_expr` turns its condition
tree into one polars expression, so a rule is a ``filter`` over a bucket of a stream, not a
loop over events. Rules name BreachBench's log columns (``logsource: product: breachbench,
service: gateway|auth|admin|hr``) plus a few lookup fields a SIEM would add by enrichment
(:data:`LOOKUP_FIELDS`). Every entity of a matching event named in the rule's
``fields`` (entity columns: customer_id, src_ip, key_id, token_id, employee_id; all of them when
the rule has no ``fields``) becomes an alert unit; its score is the highest level of the rules it matched
(informational 0.1 ... critical 1.0) plus less than 0.1 that grows with the number of
matching events, so units of one level rank by how much they did.

Needs the ``siem`` extra (pySigma).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import polars as pl

from detectors.contract import ALERTS, empty_alerts
from detectors.features import with_issuance
from simulator.errors import BreachBenchError
from simulator.schema import ENTITY_COLUMNS

#: The shipped rule pack.
RULES_DIR = Path(__file__).resolve().parent / "rules"
LEVELS: dict[str, float] = {"informational": 0.1, "low": 0.25, "medium": 0.5, "high": 0.75, "critical": 1.0}
STREAMS = ("gateway", "auth", "admin", "hr")

#: Fields added to each stream before the rules run, as a SIEM's lookups would add them.
LOOKUP_FIELDS: dict[str, dict[str, str]] = {
    "gateway": {
        "token_issued": "auth has a token_issued row for the token in this or the previous bucket",
        "key_owner_departed": "the signing key's owner has left the company (world tables)",
        "local_hour": "hour of the event in the company's time zone",
        "token_countries": "distinct countries the token was used from in the bucket",
    },
    "auth": {
        "key_owner_departed": "the key's owner has left the company",
        "local_hour": "hour of the event in the company's time zone",
    },
    "admin": {
        "local_hour": "hour of the event in the company's time zone",
        "employee_countries": "distinct countries the employee worked from in the bucket",
    },
    "hr": {"local_hour": "hour of the event in the company's time zone"},
}


class SigmaRuleError(BreachBenchError, ValueError):
    """A rule this engine cannot evaluate; the message names the rule and the construct."""


def to_expr(node: Any, columns: set[str], where: str) -> pl.Expr:
    """A polars boolean expression of a pySigma condition tree (Sigma semantics: strings match case-insensitively)."""
    from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT, ConditionOR
    from sigma.types import (
        CompareOperators,
        SigmaBool,
        SigmaCompareExpression,
        SigmaExists,
        SigmaNull,
        SigmaNumber,
        SigmaRegularExpression,
        SigmaString,
    )

    if isinstance(node, ConditionAND | ConditionOR):
        parts = [to_expr(a, columns, where) for a in node.args]
        return pl.all_horizontal(parts) if isinstance(node, ConditionAND) else pl.any_horizontal(parts)
    if isinstance(node, ConditionNOT):
        return ~to_expr(node.args[0], columns, where)
    if not isinstance(node, ConditionFieldEqualsValueExpression):
        raise SigmaRuleError(f"{where}: {type(node).__name__} (keyword search without a field) is not supported; name a field")
    if node.field not in columns:
        raise SigmaRuleError(f"{where}: unknown field {node.field!r}; this stream has {sorted(columns)}")
    col, v = pl.col(node.field), node.value
    if isinstance(v, SigmaNull):
        return col.is_null()
    if isinstance(v, SigmaExists):
        return col.is_not_null() if v.exists else col.is_null()
    if isinstance(v, SigmaBool):
        return (col == v.boolean).fill_null(False)
    if isinstance(v, SigmaNumber):
        return (col == v.number).fill_null(False)
    if isinstance(v, SigmaCompareExpression):
        n = v.number.number
        ops = {
            CompareOperators.LT: col < n,
            CompareOperators.LTE: col <= n,
            CompareOperators.GT: col > n,
            CompareOperators.GTE: col >= n,
            CompareOperators.NEQ: col != n,
        }
        return ops[v.op].fill_null(False)
    if isinstance(v, SigmaRegularExpression):
        return col.cast(pl.String).str.contains(str(v.regexp)).fill_null(False)
    if isinstance(v, SigmaString):
        text = col.cast(pl.String).str.to_lowercase()
        if v.contains_special():
            return text.str.contains("^" + str(v.lower().to_regex().regexp) + "$").fill_null(False)
        return (text == str(v).lower()).fill_null(False)
    raise SigmaRuleError(f"{where}: value type {type(v).__name__} of field {node.field!r} is not supported")


def parse_rules(texts: dict[str, str]) -> list[dict[str, Any]]:
    """(name -> YAML) to [{name, title, level, stream, conditions}], checked; sorted by name."""
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule

    out = []
    for name in sorted(texts):
        for rule in SigmaCollection.from_yaml(texts[name]).rules:
            if not isinstance(rule, SigmaRule):
                raise SigmaRuleError(f"{name}: {type(rule).__name__} is not supported; only detection rules are")
            ls = rule.logsource
            if ls.product != "breachbench" or ls.service not in STREAMS:
                raise SigmaRuleError(f"{name}: logsource must be product: breachbench, service: one of {', '.join(STREAMS)}")
            level = rule.level.name.lower() if rule.level else "medium"
            units = list(rule.fields or ENTITY_COLUMNS.values())
            bad = [f for f in units if f not in ENTITY_COLUMNS.values()]
            if bad:
                raise SigmaRuleError(f"{name}: fields {bad} name no entity; accepted: {', '.join(ENTITY_COLUMNS.values())}")
            out.append(
                {
                    "name": name,
                    "title": rule.title,
                    "level": level,
                    "stream": ls.service,
                    "units": units,
                    "conditions": [c.parsed for c in rule.detection.parsed_condition],
                }
            )
    return out


@functools.lru_cache(maxsize=8)
def _parsed(texts: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """:func:`parse_rules` once per rule set (YAML parsing took a quarter of each bucket's scoring); read only."""
    return parse_rules(dict(texts))


def _enriched(view: Any, stream: str) -> pl.LazyFrame:
    """The current bucket of ``stream`` with its lookup fields."""
    lf = view.logs(stream, current_only=True).with_columns(
        local_hour=pl.col("ts").dt.convert_time_zone(view.timezone).dt.hour().cast(pl.Int64)
    )
    if stream in ("gateway", "auth"):
        emp = (
            view.world("employees")
            .filter(pl.col("termination_date").is_not_null())
            .select(pl.col("employee_id").alias("owner_employee_id"))
        )
        departed = view.world("credentials").join(emp, on="owner_employee_id")["key_id"].to_list()
        lf = lf.with_columns(key_owner_departed=pl.col("key_id").is_in(departed).fill_null(False))
    if stream == "gateway":
        auth = view.logs("auth").filter(pl.col("bucket") >= view.bucket - dt.timedelta(days=1))
        lf = with_issuance(lf, auth).rename({"issued": "token_issued"})
        lf = lf.with_columns(token_countries=pl.col("country").n_unique().over("token_id").cast(pl.Int64))
    if stream == "admin":
        lf = lf.with_columns(employee_countries=pl.col("country").n_unique().over("employee_id").cast(pl.Int64))
    return lf


class SigmaPack:
    """Every Sigma rule of a folder (default: the shipped pack, ``detectors/rules``) as one detector.

    ``fit`` reads and checks the rules (their text is the fitted state, so the detector pickles);
    ``score`` runs each rule over its stream's current bucket.
    """

    version = "1"

    def __init__(self, rules: str | None = None) -> None:
        self.rules = rules

    def fit(self, view: Any) -> SigmaPack:
        """Read the rule files and check that every rule can be evaluated."""
        folder = Path(self.rules) if self.rules else RULES_DIR
        self.texts_ = {p.name: p.read_text() for p in sorted(folder.glob("*.yml"))}
        if not self.texts_:
            raise SigmaRuleError(f"{folder}: no *.yml Sigma rules")
        parse_rules(self.texts_)
        return self

    def matches(self, view: Any) -> pl.DataFrame:
        """(rule, title, level, stream, event_id, entity_kind, entity_id) of every match in the current bucket."""
        parsed = _parsed(tuple(sorted(self.texts_.items())))
        frames = []
        for stream in STREAMS:
            rules = [r for r in parsed if r["stream"] == stream]
            if not rules:
                continue
            lf = _enriched(view, stream).collect().lazy()
            columns = set(lf.collect_schema().names())
            kinds = [(k, c) for k, c in ENTITY_COLUMNS.items() if c in columns]
            for r in rules:
                cond = pl.any_horizontal([to_expr(c, columns, r["name"]) for c in r["conditions"]])
                hit = lf.filter(cond)
                for kind, c in kinds:
                    if c not in r["units"]:
                        continue
                    frames.append(
                        hit.select(
                            pl.lit(r["name"]).alias("rule"),
                            pl.lit(r["title"]).alias("title"),
                            pl.lit(r["level"]).alias("level"),
                            pl.lit(stream).alias("stream"),
                            "event_id",
                            pl.lit(kind).alias("entity_kind"),
                            pl.col(c).cast(pl.String).alias("entity_id"),
                        ).drop_nulls("entity_id")
                    )
        schema = {
            "rule": pl.String,
            "title": pl.String,
            "level": pl.String,
            "stream": pl.String,
            "event_id": pl.Int64,
            "entity_kind": pl.String,
            "entity_id": pl.String,
        }
        return pl.concat(frames).collect() if frames else pl.DataFrame(schema=schema)

    def score(self, view: Any) -> pl.DataFrame:
        """Alert units of the current bucket: highest rule level plus a bonus below 0.1 for the number of matches."""
        m = self.matches(view)
        if m.height == 0:
            return empty_alerts()
        per_rule = m.group_by("entity_kind", "entity_id", "title", "level").agg(n=pl.col("event_id").n_unique())
        return (
            per_rule.with_columns(w=pl.col("level").replace_strict(LEVELS, return_dtype=pl.Float64))
            .sort("w", "title", descending=[True, False])
            .group_by("entity_kind", "entity_id", maintain_order=True)
            .agg(w=pl.col("w").max(), n=pl.col("n").sum(), titles=pl.col("title"))
            .select(
                pl.lit(view.bucket, pl.Date).alias("bucket"),
                "entity_kind",
                "entity_id",
                (pl.col("w") + 0.1 * pl.col("n") / (pl.col("n") + 1)).alias("score"),
                pl.format("{} events: {}", pl.col("n"), pl.col("titles").list.join("; ")).alias("reason"),
            )
            .select(ALERTS.names())
            .sort("entity_kind", "entity_id")
        )
