"""Export a dataset's logs as OCSF or ECS events, one file per stream and delivery day.

Each (stream, day) partition (its ``part-`` and ``late-`` files, as detectors see it) is
converted with one polars ``select`` built from the versioned mapping file and streamed to
``OUT/<stream>/<YYYY-MM-DD>.<ext>``, so memory stays bounded by a partition's row groups,
whatever the dataset's size. Ids are text (``event_id`` exceeds 2^53). ``OUT/export.json``
records the format, mapping, schema and row count of every file; ``--truth`` also writes the
truth tables to ``OUT/truth/`` (marked as truth, for teams that score inside their SIEM).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl

from breachbench.dataset import Dataset
from breachbench.interop.mapping import Mapping, load_mapping, stream_exprs
from simulator import layout, outdir
from simulator.schema import LOG_STREAMS, TRUTH_TABLES

As = Literal["ndjson", "parquet"]
MANIFEST = "export.json"
#: Truth columns written as text in JSON (ids that may exceed 2^53).
_ID_COLUMNS = ("event_id", "customer_id")


@dataclass(frozen=True)
class ExportedFile:
    """One written file: stream, delivery day, path relative to the export root, rows."""

    stream: str
    day: str
    path: str
    rows: int


def partitions(ds: Dataset) -> Iterator[tuple[str, dt.date, list[Path]]]:
    """Every (stream, delivery day, files) with at least one file, streams in schema order."""
    for stream in LOG_STREAMS:
        for day in ds.buckets:
            files = layout.log_files(ds.root, stream, [day])
            if files:
                yield stream, day, files


def delivered_at(day: dt.date, timezone: str) -> dt.datetime:
    """Start of a delivery bucket in UTC: when a late row of that bucket's partition was delivered."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def convert(frame: pl.LazyFrame, mapping: Mapping, stream: str, bucket_start: dt.datetime | None = None) -> pl.LazyFrame:
    """One stream's rows (log schema) as mapped events.

    ``bucket_start``: start of the delivery bucket the rows came in; the column ``_delivered``
    (the later of ``ts`` and it: late rows were delivered when their partition opened) is what
    the mappings write as OCSF ``metadata.logged_time`` and ECS ``event.ingested``, so an import
    puts every row back in the bucket it was delivered in.
    """
    at = pl.col("ts") if bucket_start is None else pl.max_horizontal(pl.col("ts"), pl.lit(bucket_start, pl.Datetime("us", "UTC")))
    frame = frame.with_columns(_delivered=at)
    return frame.select(stream_exprs(mapping, stream, frame.collect_schema().names()))


def _write(lf: pl.LazyFrame, path: Path, as_: As) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if as_ == "ndjson":
        lf.sink_ndjson(tmp)
    else:
        lf.sink_parquet(tmp)
    os.replace(tmp, path)


def export_dataset(
    dataset: str | Path,
    out: str | Path,
    fmt: str,
    *,
    as_: As = "ndjson",
    truth: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write every log partition of ``dataset`` as ``fmt`` events under ``out``; returns the manifest.

    Raises:
        DatasetError: not a dataset (or a manifest the bench did not write), or ``out`` holds files of no export.
        VerifyError: the dataset's files differ from its manifest. MappingError: unknown format.
    """
    from breachbench.dataset import DatasetError
    from breachbench.verify import check_dataset

    ds = Dataset.open(dataset)
    if ds.store is None:
        check_dataset(ds.root)  # sizes against the manifest, as run and score check them
    mapping = load_mapping(fmt)
    final = Path(out)
    if final.is_dir() and any(final.iterdir()) and not (final / MANIFEST).is_file():
        raise DatasetError(f"--out: {final} holds files of no export; give a new or empty folder, or an earlier export's")
    # written beside it and moved in whole: a failure half-way (a crafted manifest did it) leaves the folder as it was
    with outdir.staged(final) as root:
        return _export(ds, mapping, root, as_, truth, progress)


def _export(ds: Dataset, mapping: Mapping, root: Path, as_: As, truth: bool, progress: Callable[[int, int], None] | None) -> dict:
    """The body of :func:`export_dataset`, writing into the folder ``root``."""
    parts = list(partitions(ds))
    written: list[ExportedFile] = []
    for i, (stream, day, files) in enumerate(parts):
        rel = Path(stream) / f"{day.isoformat()}.{as_}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _write(convert(pl.scan_parquet(files), mapping, stream, delivered_at(day, ds.timezone)), root / rel, as_)
        rows = pl.scan_parquet(files).select(pl.len()).collect().item()
        written.append(ExportedFile(stream, day.isoformat(), rel.as_posix(), rows))
        if progress:
            progress(i + 1, len(parts))
    truth_files = _export_truth(ds, root, as_) if truth else []
    manifest = {
        "format": mapping.format,
        "schema_version": mapping.meta["schema_version"],
        "mapping": mapping.name,
        "mapping_version": mapping.meta["mapping_version"],
        "schema_file": mapping.meta["schema_file"],
        "as": as_,
        "source": {
            "config_hash": ds.manifest["config_hash"],
            "data_version": ds.manifest.get("data_version"),
            "timezone": ds.timezone,
            "start": ds.buckets[0].isoformat(),
            "end": (ds.buckets[-1] + dt.timedelta(days=1)).isoformat(),
            "warmup_days": len(ds.warmup),
        },
        "files": [asdict(f) for f in written],
        "truth": truth_files,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _export_truth(ds: Dataset, root: Path, as_: As) -> list[dict]:
    """Truth tables, each row marked ``breachbench_truth: true``, ids as text."""
    (root / "truth").mkdir(exist_ok=True)
    out = []
    for table in TRUTH_TABLES:
        f = layout.truth_file(ds.root, table)
        if not f.is_file():
            continue
        lf = pl.scan_parquet(f)
        names = lf.collect_schema().names()
        casts = [pl.col(c).cast(pl.String) for c in _ID_COLUMNS if c in names]
        if "actors" in names:
            casts.append(pl.col("actors").list.eval(pl.element().cast(pl.String)))
        lf = lf.with_columns(casts).with_columns(breachbench_truth=pl.lit(True))
        rel = Path("truth") / f"{table}.{as_}"
        _write(lf, root / rel, as_)
        out.append({"table": table, "path": rel.as_posix(), "rows": pl.scan_parquet(f).select(pl.len()).collect().item()})
    return out


def validator(mapping: Mapping):
    """A JSON Schema validator of ``mapping``'s events, with format checks (ip, date-time)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(mapping.schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_file(path: Path, mapping: Mapping, *, limit: int | None = None) -> tuple[int, list[str]]:
    """(events read, first errors) of an exported NDJSON file, each line checked against the schema."""
    v = validator(mapping)
    n = 0
    errors: list[str] = []
    with open(path) as f:
        for line in f:
            if limit is not None and n >= limit:
                break
            n += 1
            for e in v.iter_errors(json.loads(line)):
                if len(errors) < 10:
                    errors.append(f"{path.name}:{n}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    return n, errors
