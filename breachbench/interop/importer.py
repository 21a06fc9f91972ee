"""Build a dataset folder from one's own logs (Parquet, CSV or JSON lines) with a declarative mapping.

The mapping (TOML; ``breachbench/data/mappings/import-ocsf-1.3.0.toml`` is the documented
example) picks each stream's records and gives each log column a source path. Every source
file is read once (of JSON lines, only the paths the mapping names), its records of each stream are cast to the stream's schema, put in the
bucket they were delivered in (company time zone), and written as one part file per (stream,
day, source file), atomically; memory holds one source file at a time. World tables (``--world``) and labels in the truth format
(``--labels``) are optional: without labels, ``score`` cannot score the dataset; without world
tables, detectors that read them see empty tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from breachbench.interop.mapping import MappingError
from simulator import layout, outdir
from simulator.schema import LOG_STREAMS, TRUTH_TABLES, WORLD_TABLES, DType, event_ids

READABLE = (".parquet", ".csv", ".ndjson", ".jsonl", ".json")
TIME_TYPES = ("timestamp", "epoch_ms", "epoch_us")
IMPORT_FORMAT = 1


def load_import_mapping(path: str | Path) -> dict[str, Any]:
    """Parse and check an import mapping; MappingError names the bad entry."""
    p = Path(path)
    try:
        m = tomllib.loads(p.read_bytes().decode())
    except UnicodeDecodeError as exc:
        raise MappingError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{p}: not TOML: {exc}") from None
    except RecursionError:
        raise MappingError(f"{p}: nested too deeply to be a mapping") from None
    ds = m.get("dataset", {})
    if not isinstance(ds, dict):
        raise MappingError(f"{p}: dataset = {str(ds)[:40]!r}: expected a [dataset] table")
    if "timezone" not in ds:
        raise MappingError(f'{p}: [dataset] needs timezone (the company\'s, e.g. "Asia/Seoul")')
    try:
        if not isinstance(ds["timezone"], str):
            raise ValueError
        ZoneInfo(ds["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"{p}: [dataset] timezone {ds['timezone']!r} is not an IANA time zone") from None
    _check_span(p, ds)
    streams = m.get("streams", {})
    if not isinstance(streams, dict):
        raise MappingError(f"{p}: streams = {str(streams)[:40]!r}: expected [streams.<stream>] tables")
    if not streams:
        raise MappingError(f"{p}: no [streams.<stream>] table; streams: {', '.join(LOG_STREAMS)}")
    for s, spec in streams.items():
        if s not in LOG_STREAMS:
            raise MappingError(f"{p}: unknown stream {s!r}; accepted: {', '.join(LOG_STREAMS)}")
        if not isinstance(spec, dict):
            raise MappingError(f"{p}: streams.{s} = {str(spec)[:40]!r}: expected a [streams.{s}] table")
        for key in ("columns", "where"):
            if not isinstance(spec.get(key, {}), dict):
                raise MappingError(f"{p}: [streams.{s}] {key} = {str(spec[key])[:40]!r}: expected a [streams.{s}.{key}] table")
        cols = spec.get("columns", {})
        unknown = [c for c in cols if c not in LOG_STREAMS[s] and c != "delivered"]
        if unknown:
            raise MappingError(
                f"{p}: [streams.{s}.columns] unknown column(s) {unknown}; the stream has {list(LOG_STREAMS[s])} and delivered"
            )
        if "ts" not in cols:
            raise MappingError(f"{p}: [streams.{s}.columns] needs ts")
        for c, v in cols.items():
            path_ok = isinstance(v, dict) and (
                isinstance(v.get("path"), str)
                or (isinstance(v.get("path"), list) and v["path"] and all(isinstance(x, str) for x in v["path"]))
            )
            if not path_ok:
                raise MappingError(
                    f'{p}: [streams.{s}.columns] {c}: expected {{ path = "..." }} (or a list of paths), got {str(v)[:60]}'
                )
            if v.get("type") not in (None, *TIME_TYPES):
                raise MappingError(f"{p}: [streams.{s}.columns] {c}: type {v['type']!r}; accepted: {', '.join(TIME_TYPES)}")
    return m


#: The most days an imported dataset may span: a hundred years (a mapping's span of 9999 years made a dataset that
#: every command then listed day by day, for ever).
MAX_IMPORT_DAYS = 36_525


def _check_span(p: Path, ds: dict[str, Any]) -> None:
    """The ``[dataset]`` table's start, end and warmup_days, when given: dates and a count, checked before any file is
    written (a bad one failed after the logs were, and left them half-written)."""
    for key in ("start", "end"):
        if key in ds:
            v = ds[key]
            try:
                if isinstance(v, dt.datetime) or not isinstance(v, dt.date | str):
                    raise ValueError
                dt.date.fromisoformat(str(v))
            except ValueError:
                raise MappingError(f"{p}: [dataset] {key} = {str(v)[:40]!r}: expected a date such as 2025-04-01") from None
    w = ds.get("warmup_days", 7)
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise MappingError(f"{p}: [dataset] warmup_days = {str(w)[:40]!r}: expected a whole number of days, at least 1")
    if "start" in ds and "end" in ds:
        days = (dt.date.fromisoformat(str(ds["end"])) - dt.date.fromisoformat(str(ds["start"]))).days
        if days > MAX_IMPORT_DAYS:
            raise MappingError(f"{p}: [dataset] start..end spans {days:,} days; accepted: at most {MAX_IMPORT_DAYS:,}")


def source_files(sources: Sequence[str | Path]) -> list[Path]:
    """Files to read: each file given, and in each folder (recursively) its Parquet, CSV and JSON-lines files."""
    out: list[Path] = []
    for s in map(Path, sources):
        if s.is_dir():
            out.extend(
                f
                for f in sorted(s.rglob("*"))
                if f.suffix in (".parquet", ".csv", ".ndjson", ".jsonl") and "truth" not in f.relative_to(s).parts
            )
        elif s.is_file():
            out.append(s)
        else:
            raise FileNotFoundError(2, "not found", str(s))
    bad = [f for f in out if f.suffix not in READABLE]
    if bad:
        raise MappingError(f"{bad[0]}: cannot read {bad[0].suffix} files; accepted: {', '.join(READABLE)}")
    return out


def _scan(f: Path) -> pl.LazyFrame:
    if f.suffix == ".parquet":
        return pl.scan_parquet(f)
    if f.suffix == ".csv":
        return pl.scan_csv(f, infer_schema_length=10_000)
    return pl.scan_ndjson(f, infer_schema_length=10_000)


def _json_schema(m: dict[str, Any]) -> pl.Schema:
    """What to read of JSON-lines logs: every path the mapping names, as text, and nothing else.

    Parsing JSON is most of an import's time: inferring the types parsed each file twice (and saw
    only its first 10,000 records), and building every field's column cost as much again; the
    reader skips the fields not named here. Text keeps the values as inference did: the reader
    writes numbers (integral ones without ``.0``) and booleans as their JSON text, which
    ``stream_rows`` casts to the column's type. A dotted path is read both nested and as a flat key
    (``{"event.id": ...}``, as some loggers write); :func:`_read_logs` drops the flat key where a
    file has no value under it.
    """
    tree: dict[str, Any] = {}
    for spec in m["streams"].values():
        paths = list(spec.get("where", {}))
        for v in spec["columns"].values():
            paths += v["path"] if isinstance(v["path"], list) else [v["path"]]
        for path in paths:
            if "." in path:
                tree.setdefault(path, {})
            node = tree
            for part in path.split("."):
                node = node.setdefault(part, {})

    def dtype(node: dict[str, Any]) -> pl.DataType:
        return pl.Struct({k: dtype(v) for k, v in node.items()}) if node else pl.String()

    return pl.Schema({k: dtype(v) for k, v in tree.items()})


def _read_logs(f: Path, json_schema: pl.Schema) -> pl.DataFrame:
    """A source file of logs: all of it, or of JSON lines the paths in ``json_schema``."""
    if f.suffix in (".parquet", ".csv"):
        return _scan(f).collect()
    df = pl.scan_ndjson(f, schema=json_schema).collect()
    # a flat key is a column name, which _path prefers to the nested path: keep it only where the file has it
    return df.drop([c for c in df.columns if "." in c and df[c].null_count() == df.height])


def _path(schema: pl.Schema, path: str) -> pl.Expr | None:
    """The expression of a source path (a column name, or dotted into structs); None when the file lacks it."""
    if path in schema:
        return pl.col(path)
    head, *rest = path.split(".")
    if head not in schema:
        return None
    e = pl.col(head)
    t: DType = schema[head]
    for part in rest:
        if not isinstance(t, pl.Struct):
            return None
        fields = {f.name: f.dtype for f in t.fields}
        if part not in fields:
            return None
        e, t = e.struct.field(part), fields[part]
    return e


def _value(schema: pl.Schema, spec: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
    found = [e for p in paths if (e := _path(schema, p)) is not None]
    if not found:
        return pl.lit(None, dtype)
    how = spec.get("type")
    if how is None:
        return pl.coalesce([e.cast(dtype) for e in found])
    parts = []
    for e in found:
        if how == "timestamp":
            parts.append(e.cast(pl.String).str.to_datetime(time_unit="us", time_zone="UTC"))
        else:
            parts.append(
                pl.from_epoch(e.cast(pl.Int64), time_unit="ms" if how == "epoch_ms" else "us").dt.replace_time_zone("UTC")
            )
    return pl.coalesce(parts).cast(dtype)


def stream_rows(df: pl.DataFrame, stream: str, spec: dict[str, Any], tz: str) -> pl.DataFrame | None:
    """The records of ``df`` that belong to ``stream``, in its schema plus ``bucket``; None when the file has none.

    A file without any (most files hold one stream) costs one comparison, not the stream's conversion.
    """
    schema = df.schema
    cond = pl.lit(True)
    for path, want in spec.get("where", {}).items():
        e = _path(schema, path)
        if e is None:
            return None
        cond = cond & (e.cast(pl.String) == str(want))
    if not df.select(cond.any()).item():
        return None
    cols = spec["columns"]
    out = [_value(schema, cols[c], t).alias(c) if c in cols else pl.lit(None, t).alias(c) for c, t in LOG_STREAMS[stream].items()]
    delivered = _value(schema, cols["delivered"], pl.Datetime("us", "UTC")) if "delivered" in cols else None
    rows = (
        df.lazy().filter(cond).select(*out, (delivered if delivered is not None else pl.col("ts")).alias("_delivered"))
        if delivered is not None
        else df.lazy().filter(cond).select(*out).with_columns(_delivered=pl.col("ts"))
    )
    return (
        rows.with_columns(bucket=pl.coalesce(pl.col("_delivered"), pl.col("ts")).dt.convert_time_zone(tz).dt.date())
        .drop("_delivered")
        .collect()
    )


def _write(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tables(folder: Path, schemas: dict[str, pl.Schema], out: Path | Callable[[str], Path], name: str) -> list[str]:
    """Copy ``<table>.parquet|ndjson`` or ``<table>-*.parquet`` of a folder, cast to the schema, to ``out``."""
    written = []
    for table, schema in schemas.items():
        files = (
            sorted(folder.glob(f"{table}-*.parquet"))
            or [f for ext in (".parquet", ".ndjson", ".jsonl") if (f := folder / f"{table}{ext}").is_file()][:1]
        )
        if not files:
            continue
        df = pl.concat([_scan(f) for f in files], how="diagonal_relaxed").collect()
        cols = []
        for c, t in schema.items():
            if c not in df.columns:
                cols.append(pl.lit(None, t).alias(c))
            elif isinstance(t, pl.Datetime) and df.schema[c] == pl.String:
                cols.append(pl.col(c).str.to_datetime(time_unit="us", time_zone="UTC").alias(c))
            elif isinstance(t, pl.List) and isinstance(df.schema[c], pl.List):
                cols.append(pl.col(c).list.eval(pl.element().cast(t.inner)).alias(c))
            else:
                cols.append(pl.col(c).cast(t).alias(c))
        try:
            _write(df.select(cols), out(table) if callable(out) else out / f"{table}.parquet")
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
            raise MappingError(f"{name} {files[0]}: cannot be read as the {table} schema: {str(exc).splitlines()[0]}") from None
        written.append(table)
    return written


def import_logs(
    mapping: str | Path,
    out: str | Path,
    sources: Sequence[str | Path],
    *,
    world: str | Path | None = None,
    labels: str | Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Build a dataset folder at ``out``; returns its manifest.

    Raises:
        MappingError: a bad mapping or unreadable source. FileExistsError: ``out`` not empty and not ``force``.
    """
    m = load_import_mapping(mapping)
    final = Path(out)
    _check_out(final, force)
    files = source_files(sources)
    if not files:
        raise MappingError("no source files (Parquet, CSV or JSON lines) found")
    with outdir.staged(final) as root:  # built beside it and moved in whole: a failure half-way leaves ``out`` as it was
        return _import(m, mapping, root, files, world, labels)


def _import(
    m: dict[str, Any],
    mapping: str | Path,
    root: Path,
    files: list[Path],
    world: str | Path | None,
    labels: str | Path | None,
) -> dict[str, Any]:
    """The body of :func:`import_logs`, writing the dataset into the folder ``root``."""
    counts: dict[tuple[str, dt.date], int] = {}
    written: list[dict[str, Any]] = []
    schema = _json_schema(m)
    for i, f in enumerate(files):
        written += _import_source(root, m, schema, i, f, counts)
    config = _imported_config(m["dataset"], counts)
    world_tables = _tables(Path(world), WORLD_TABLES, lambda t: layout.world_file(root, t, 0), "--world") if world else []
    truth_tables = _label_tables(root, Path(labels)) if labels else []
    manifest = {
        "format": IMPORT_FORMAT,
        "data_version": None,
        "seed": None,
        "only": None,
        "versions": {},
        "imported": {
            "mapping": str(mapping),
            "sources": [str(f) for f in files],
            "world_tables": world_tables,
            "labels": truth_tables,
        },
        "config": config,
        "config_hash": _imported_hash(Path(mapping), written),
        "files": written,
        "truth": bool(labels),
    }
    (root / layout.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _imported_config(dataset: dict[str, Any], counts: dict[tuple[str, dt.date], int]) -> dict[str, Any]:
    """The manifest's config of an imported dataset: its span (from the days the rows fell on) and time zone."""
    start, end, warm = _span(dataset, sorted({d for _, d in counts}))
    return {
        "time": {"start": start.isoformat(), "end": end.isoformat(), "timezone": dataset["timezone"], "warmup_days": warm},
        "scenarios": [],
    }


def _imported_hash(mapping: Path, written: list[dict[str, Any]]) -> str:
    """The config hash of an imported dataset: the mapping file and the hashes of the files written."""
    h = hashlib.sha256(mapping.read_bytes())
    for w in written:
        h.update(w["sha256"].encode())
    return h.hexdigest()


def _check_out(root: Path, force: bool) -> None:
    """Refuse a non-empty ``root`` unless ``force`` and it holds a dataset (which the import then replaces)."""
    if root.exists() and any(root.iterdir()):
        if not force:
            raise FileExistsError(17, "not empty (use --force to replace)", str(root))
        if not (root / layout.MANIFEST).is_file():
            raise FileExistsError(17, "not empty and not a dataset; --force replaces datasets only", str(root))


def _import_source(
    root: Path, m: dict[str, Any], schema: pl.Schema, i: int, f: Path, counts: dict[tuple[str, dt.date], int]
) -> list[dict[str, Any]]:
    """Write source file ``f`` (the ``i``-th; JSON lines read in ``schema``) as log files, one per (stream, day);
    counts its rows per (stream, day) into ``counts`` and returns the manifest entries."""
    written: list[dict[str, Any]] = []
    if f.stat().st_size == 0:  # an empty partition: nothing to read (and nothing to infer a schema from)
        return written
    try:  # read once (memory: one source file), then pick each stream's records
        source = _read_logs(f, schema)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise MappingError(f"{f}: cannot be read: {str(exc).strip().splitlines()[0]}") from None
    for stream, spec in m["streams"].items():
        try:
            df = stream_rows(source, stream, spec, m["dataset"]["timezone"])
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
            raise MappingError(f"{f}: its {stream} records do not fit the mapping: {str(exc).strip().splitlines()[0]}") from None
        if df is None:
            continue
        for (day,), part in df.partition_by("bucket", as_dict=True, maintain_order=True).items():
            part = part.drop("bucket")
            if "event_id" not in spec["columns"]:
                part = part.with_columns(event_ids(stream, day.toordinal() & 0xFFFF, i & 0xFFFF, part.height))
            path = layout.log_file(root, stream, day, i)
            _write(part, path)
            counts[(stream, day)] = counts.get((stream, day), 0) + part.height
            written.append(
                {
                    "path": path.relative_to(root).as_posix(),
                    "rows": part.height,
                    "bytes": path.stat().st_size,
                    "sha256": _sha256(path),
                }
            )
    return written


def _span(span: dict[str, Any], days: list[dt.date]) -> tuple[dt.date, dt.date, int]:
    """(start, end, warm-up days) of the dataset: the mapping's ``[dataset]`` table, else the days the logs cover."""
    if not days:
        raise MappingError("no source record matched any stream of the mapping (check the `where` tables)")
    start = dt.date.fromisoformat(str(span["start"])) if "start" in span else days[0]
    end = dt.date.fromisoformat(str(span["end"])) if "end" in span else days[-1] + dt.timedelta(days=1)
    warm = int(span.get("warmup_days", 7))
    if (end - start).days > MAX_IMPORT_DAYS:  # the logs' own days (a record of the year 1 among this year's)
        raise MappingError(
            f"the dataset spans {start}..{end}, {(end - start).days:,} days; accepted: at most {MAX_IMPORT_DAYS:,}"
        )
    if not 0 < warm < (end - start).days:
        raise MappingError(
            f"[dataset] warmup_days = {warm}: must leave scored days in {start}..{end} ({(end - start).days} days)"
        )
    return start, end, warm


def _label_tables(root: Path, labels: Path) -> list[str]:
    """Copy the label tables given under ``labels`` into the dataset's truth; the tables not given are written empty."""
    truth_tables = _tables(labels, TRUTH_TABLES, root / "truth", "--labels")
    for table, schema in TRUTH_TABLES.items():  # tables not given: empty (no incident of that kind)
        if table not in truth_tables:
            _write(pl.DataFrame(schema=schema), layout.truth_file(root, table))
    return truth_tables
