"""Where things live in a dataset directory.

``DIR/manifest.json``; ``DIR/world/<table>-<block>.parquet``;
``DIR/logs/<stream>/date=<YYYY-MM-DD>/part-<block>.parquet`` (and ``late-<block>.parquet`` for rows
of the previous bucket delivered late); ``DIR/truth/<table>.parquet``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

MANIFEST = "manifest.json"


def world_file(root: Path, table: str, block: int) -> Path:
    """World table part for one entity-ID block."""
    return root / "world" / f"{table}-{block:05d}.parquet"


def world_glob(root: Path, table: str) -> list[Path]:
    """All parts of a world table, in block order."""
    return sorted((root / "world").glob(f"{table}-*.parquet"))


def log_dir(root: Path, stream: str, day: dt.date) -> Path:
    """Partition directory of one stream and bucket."""
    return root / "logs" / stream / f"date={day.isoformat()}"


def log_file(root: Path, stream: str, day: dt.date, block: int) -> Path:
    """One (stream, bucket, block) file."""
    return log_dir(root, stream, day) / f"part-{block:05d}.parquet"


def late_file(root: Path, stream: str, day: dt.date, block: int) -> Path:
    """Rows of the previous bucket that reached ``day``'s partition late."""
    return log_dir(root, stream, day) / f"late-{block:05d}.parquet"


def log_files(root: Path, stream: str, days: list[dt.date]) -> list[Path]:
    """Every file of ``stream`` delivered in the given buckets, in (bucket, name) order."""
    out: list[Path] = []
    for day in days:
        out.extend(sorted(log_dir(root, stream, day).glob("*.parquet")))
    return out


def truth_file(root: Path, table: str) -> Path:
    """A truth table."""
    return root / "truth" / f"{table}.parquet"
