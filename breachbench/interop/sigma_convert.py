"""Convert the Sigma rule pack to SIEM queries (Splunk SPL, Elasticsearch Lucene) over ECS-exported events.

Rules name BreachBench's columns; the processing pipeline built here renames them to the ECS
fields ``breachbench export --format ecs`` writes (read from ``ecs-8.11.toml``, per stream), and
the lookup fields the Sigma detector adds (``token_issued``, ``key_owner_departed``, ...) to
``breachbench.<name>``: a SIEM must add those by enrichment (a lookup table or enrich policy)
before the converted queries can match.
"""

from __future__ import annotations

from pathlib import Path

from breachbench.interop.mapping import load_mapping
from detectors.sigma import LOOKUP_FIELDS, RULES_DIR

TARGETS = ("splunk", "elasticsearch")


def ecs_field_map(stream: str) -> dict[str, str]:
    """BreachBench column (or lookup field) -> ECS field of ``stream``'s exported events."""
    out: dict[str, str] = {}
    for path, spec in load_mapping("ecs").streams[stream].items():
        if "col" in spec and "map" not in spec and spec["col"] not in out and spec["col"] != "ts":
            out[spec["col"]] = path
    out.update({f: f"breachbench.{f}" for f in LOOKUP_FIELDS.get(stream, {})})
    return out


def pipeline():
    """The pySigma pipeline: per-stream field renaming to ECS."""
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    items = [
        ProcessingItem(
            identifier=f"breachbench-ecs-{s}",
            transformation=FieldMappingTransformation(ecs_field_map(s)),
            rule_conditions=[LogsourceCondition(product="breachbench", service=s)],
        )
        for s in ("gateway", "auth", "admin", "hr")
    ]
    return ProcessingPipeline(name="BreachBench columns to ECS 8.11", priority=20, items=items)


def convert(rule: Path, target: str) -> list[str]:
    """The queries of one rule file for ``target`` (splunk or elasticsearch)."""
    from sigma.collection import SigmaCollection
    from sigma.conversion.base import TextQueryBackend

    backend: type[TextQueryBackend]
    if target == "splunk":
        from sigma.backends.splunk import SplunkBackend as backend
    elif target == "elasticsearch":
        from sigma.backends.elasticsearch import LuceneBackend as backend
    else:
        raise ValueError(f"unknown target {target!r}; accepted: {', '.join(TARGETS)}")
    return list(backend(pipeline()).convert(SigmaCollection.from_yaml(Path(rule).read_text())))


def rule_files(folder: Path | None = None) -> list[Path]:
    """The rule files of a pack (default: the shipped one)."""
    return sorted(Path(folder or RULES_DIR).glob("*.yml"))
