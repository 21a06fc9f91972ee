"""Versioned field mappings (data files under ``breachbench/data/mappings/``) turned into polars expressions.

A mapping file names, per log stream, a target field path (``"src_endpoint.ip"``) and a value
spec (see the comment at the top of ``ocsf-1.3.0.toml``). :func:`stream_exprs` builds one
nested struct expression per top-level field, so a whole partition converts in one ``select``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import polars as pl

from simulator.errors import BreachBenchError

Format = Literal["ocsf", "ecs"]
#: The mapping file of each export format (bump the file name with the schema version).
MAPPING_FILES: dict[str, str] = {"ocsf": "ocsf-1.3.0.toml", "ecs": "ecs-8.11.toml"}
#: Where the shipped mapping and schema files live (package data).
MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "data" / "mappings"
ISO_US = "%Y-%m-%dT%H:%M:%S%.6fZ"


class MappingError(BreachBenchError, ValueError):
    """A mapping file entry that cannot be turned into an expression; the message names it."""


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file: ``meta`` and, per stream, target path -> value spec."""

    name: str
    meta: dict[str, Any]
    streams: dict[str, dict[str, dict[str, Any]]]

    @property
    def format(self) -> str:
        """``ocsf`` or ``ecs``."""
        return self.meta["format"]

    def schema(self) -> dict[str, Any]:
        """The JSON Schema exported events of this mapping validate against."""
        return json.loads((MAPPINGS_DIR / self.meta["schema_file"]).read_text())


@cache
def load_mapping(fmt: str) -> Mapping:
    """The shipped mapping of an export format.

    Raises:
        MappingError: unknown format.
    """
    if fmt not in MAPPING_FILES:
        raise MappingError(f"unknown format {fmt!r}; accepted: {', '.join(MAPPING_FILES)}")
    name = MAPPING_FILES[fmt]
    data = tomllib.loads((MAPPINGS_DIR / name).read_text())
    streams = {s: dict(v["fields"]) for s, v in data["streams"].items()}
    return Mapping(name, data["meta"], streams)


def _cast(e: pl.Expr, how: str | None, where: str) -> pl.Expr:
    if how is None:
        return e
    if how == "string":
        return e.cast(pl.String)
    if how == "epoch_ms":
        return e.dt.epoch("ms")
    if how == "iso":
        return e.dt.convert_time_zone("UTC").dt.strftime(ISO_US)
    if how == "status_id":
        return (
            pl.when(e.is_null())
            .then(pl.lit(None, pl.Int64))
            .when(e < 400)
            .then(pl.lit(1, pl.Int64))
            .otherwise(pl.lit(2, pl.Int64))
        )
    raise MappingError(f"{where}: unknown as = {how!r}; accepted: string, epoch_ms, iso, status_id")


def _const(v: Any) -> pl.Expr:
    if isinstance(v, list):
        return pl.concat_list([pl.lit(x) for x in v])
    return pl.lit(v)


def leaf_expr(spec: dict[str, Any], where: str, columns: set[str]) -> pl.Expr:
    """The expression of one value spec (``where`` names it in errors)."""
    if "const" in spec:
        e = _const(spec["const"])
    elif "derive" in spec:
        raise MappingError(f"{where}: derive is resolved by stream_exprs")
    elif "coalesce" in spec:
        missing = [c for c in spec["coalesce"] if c not in columns]
        if missing:
            raise MappingError(f"{where}: unknown column(s) {missing}")
        e = pl.coalesce([_cast(pl.col(c), spec.get("as"), where) for c in spec["coalesce"]])
        if "default" in spec:
            e = e.fill_null(pl.lit(spec["default"]))
    elif "col" in spec:
        if spec["col"] not in columns:
            raise MappingError(f"{where}: unknown column {spec['col']!r}; the stream has {sorted(columns)}")
        e = pl.col(spec["col"])
        if "map" in spec:
            table = spec["map"]
            default = spec.get("default")
            dtype = pl.Int64 if all(isinstance(v, int) for v in table.values()) else pl.String
            e = e.replace_strict(list(table), list(table.values()), default=pl.lit(default, dtype), return_dtype=dtype)
        else:
            e = _cast(e, spec.get("as"), where)
    else:
        raise MappingError(f"{where}: a value needs one of col, coalesce, const, derive")
    if "when" in spec:
        cond = pl.lit(True)
        for c, v in spec["when"].items():
            cond = cond & (pl.col(c) == v)
        e = pl.when(cond).then(e)
    if spec.get("list"):
        e = pl.concat_list([e])
    return e


def _nest(leaves: dict[tuple[str, ...], pl.Expr], name: str) -> pl.Expr:
    """One struct from leaves keyed by the rest of their path; null when every leaf is null."""
    groups: dict[str, dict[tuple[str, ...], pl.Expr]] = {}
    fields: list[pl.Expr] = []
    for path, e in leaves.items():
        if len(path) == 1:
            fields.append(e.alias(path[0]))
        else:
            groups.setdefault(path[0], {})[path[1:]] = e
    for sub, sub_leaves in groups.items():
        fields.append(_nest(sub_leaves, sub))
    s = pl.struct(fields)
    anything = pl.any_horizontal([f.is_not_null() for f in fields])
    return pl.when(anything).then(s).alias(name)


def stream_exprs(mapping: Mapping, stream: str, columns: list[str]) -> list[pl.Expr]:
    """The top-level output columns of ``stream`` under ``mapping``, in file order."""
    if stream not in mapping.streams:
        raise MappingError(f"{mapping.name}: no mapping for stream {stream!r}")
    cols = set(columns)
    fields = mapping.streams[stream]
    leaf: dict[str, pl.Expr] = {}
    for path, spec in fields.items():
        where = f"{mapping.name} [streams.{stream}.fields] {path!r}"
        if not isinstance(spec, dict):
            raise MappingError(f'{where}: expected a table such as {{ col = "x" }}, got {spec!r}')
        if spec.get("derive") == "type_uid":
            leaf[path] = leaf_expr(fields["class_uid"], where, cols) * 100 + leaf_expr(fields["activity_id"], where, cols)
        elif "derive" in spec:
            raise MappingError(f"{where}: unknown derive {spec['derive']!r}; accepted: type_uid")
        else:
            leaf[path] = leaf_expr(spec, where, cols)
    out: list[pl.Expr] = []
    order: list[str] = []
    nested: dict[str, dict[tuple[str, ...], pl.Expr]] = {}
    for path, e in leaf.items():
        head, *rest = path.split(".")
        if head not in order:
            order.append(head)
        if rest:
            nested.setdefault(head, {})[tuple(rest)] = e
        else:
            nested[head] = e  # type: ignore[assignment]
    for head in order:
        v = nested[head]
        out.append(v.alias(head) if isinstance(v, pl.Expr) else _nest(v, head))
    return out
