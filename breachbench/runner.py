"""Run detectors over a dataset bucket by bucket, and the bench-side anchors (oracle).

Each detector is constructed without arguments, fitted once on a view of the warm-up
buckets, then asked to score each later bucket in order with a view that ends at that bucket.
A detector that fails to load, raises, or returns a frame that breaks the contract gets an
``ERROR`` row with the message; the run goes on with the others.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import pickle
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl

from breachbench.dataset import Dataset
from detectors.contract import ALERTS, empty_alerts, validate_alerts
from detectors.registry import ORACLE, DetectorLoadError, load, registry
from detectors.view import WORLD_READ


class Status(StrEnum):
    """How a detector's run on a dataset ended (its row's ``status``)."""

    OK = "OK"
    ERROR = "ERROR"  # it raised, broke the alerts contract, or its process died
    TIMEOUT = "TIMEOUT"  # past ``detection.timeout_s``
    OOM = "OOM"  # past ``detection.memory_mb``, or MemoryError


#: Most characters of a detector's own text (its error, note or version) the bench keeps.
MAX_DETECTOR_TEXT = 2000


def detector_text(value: object, limit: int = MAX_DETECTOR_TEXT) -> str:
    """Text a detector supplied (an exception's message, a status note, a version), safe to print anywhere.

    One line: control and format characters (terminal escape sequences, bidirectional overrides,
    line breaks) become spaces and runs of spaces one; at most ``limit`` characters. Printers still
    escape it for their markup (Markdown, rich, HTML): this only keeps a detector from writing
    lines of its own into the leaderboard or the bench's terminal.
    """
    import unicodedata

    text = str(value)[: 4 * limit]
    text = " ".join("".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def exception_text(exc: BaseException) -> str:
    """``"Type: message"`` of an exception a detector raised, never raising itself: a red team's exception whose
    ``__str__`` raised took its whole row down to "the detector's process died"."""
    try:
        name = str(type(exc).__name__)
    except BaseException:
        name = "Exception"
    try:
        message = str(exc)
    except BaseException as inner:  # its own text is the detector's, whatever it raises
        message = f"(its message could not be shown: its __str__ raised {type(inner).__name__})"
    return f"{name}: {message}"


def rate(events: int, seconds: float) -> float | None:
    """Events per second, or None where it is not a finite number (no time, or a forged one of 5e-324 s)."""
    value = events / seconds if seconds > 0 else math.inf
    return value if math.isfinite(value) else None


@dataclass
class DetectorRun:
    """Outcome of running one detector."""

    detector: str
    status: str = Status.OK
    error: str | None = None
    version: str | None = None
    fit_s: float = 0.0
    score_s: float = 0.0
    events_per_s: float | None = None
    events: int = 0
    peak_mb: float | None = None
    note: str | None = None  # e.g. the kernel did not restrict the sealed process's file access
    world_read: list[str] | None = None  # the world tables it read (fit and every bucket); None when unknown
    alerts: pl.DataFrame = field(default_factory=empty_alerts)


def resolve_detectors(requested: list[str]) -> list[str]:
    """Expand ``'*'`` to every registered id, keeping order and dropping repeats."""
    out: list[str] = []
    for name in requested:
        for d in sorted(registry()) if name == "*" else [name]:
            if d not in out:
                out.append(d)
    return out


def preflight_detectors(ids: list[str]) -> None:
    """Check that every detector id names something loadable, without running any plugin code.

    A registered id passes; ``module:attr`` passes when its top-level module can be found on the
    import path (it is imported only in the detector's sealed process).

    Raises:
        DetectorLoadError: an id that is neither registered nor an importable ``module:attr``.
    """
    import detectors.registry
    from simulator import plugins

    reg = detectors.registry.registry()  # looked up at call time, like load() does
    for d in ids:
        if not plugins.safe_id(d):  # it names its alerts file (a red team's "json:x/../../escaped" left --out)
            raise DetectorLoadError(f"detection.detectors: {d!r} is not a detector id: {plugins.ID_RULE}")
        if d == ORACLE:
            raise DetectorLoadError(f"detection.detectors: {d!r} is the bench's anchor, added to every run; remove it")
        if d in reg:
            continue
        module, sep, attr = d.partition(":")
        top = module.split(".")[0]
        found = bool(sep and attr and top and plugins.find_top(top) is not None)
        if not found:
            raise DetectorLoadError(
                f"detection.detectors: unknown detector {d!r}; registered: {', '.join(reg) or 'none'} "
                "(or give module:attr of a class on the import path or in a --plugin-path folder)"
            )


#: Order in which the oracle picks each incident's representative unit of a bucket.
_KIND_ORDER = {"employee": 0, "key": 1, "ip": 2, "token": 3}


def oracle_alerts(ds: Dataset) -> pl.DataFrame:
    """Bench-only anchor: every actor unit of every scored bucket (victims and shared units never).

    Each bucket, one unit of every active incident (an employee, else a key, an address, a token)
    scores above 2, the rest 1. The incidents of a bucket go first that were read least high in
    the buckets before it: those never ranked, then those whose best place so far was furthest
    down, then the one whose last bucket comes soonest. So at every budget ``k`` at once, the top
    ``k`` units of a bucket are those of incidents not yet caught at that budget first, and the
    oracle reads every incident on its first day whenever ``k`` covers the incidents that begin
    together. Ranked by incident alone, it caught 17% to 40% of a dataset's six to ten incidents
    at a budget of 1 on a red team's run; now 60% to 100%.
    """
    pos = ds.positive_units.filter(pl.col("bucket").is_in(ds.scored) & (pl.col("role") == "actor"))
    rep = (
        pos.with_columns(order=pl.col("entity_kind").replace_strict(_KIND_ORDER, default=9, return_dtype=pl.Int64))
        .sort("bucket", "incident_id", "order", "entity_kind", "entity_id")
        .group_by("bucket", "incident_id", maintain_order=True)
        .first()
    )
    span = pos.group_by("incident_id").agg(pl.col("bucket").min().alias("first"), pl.col("bucket").max().alias("last"))
    first = dict(zip(span["incident_id"].to_list(), span["first"].to_list(), strict=True))
    last = dict(zip(span["incident_id"].to_list(), span["last"].to_list(), strict=True))
    best: dict[int, int] = {}  # incident -> its best (lowest) rank in the buckets so far
    top: list[tuple[dt.date, str, str, float]] = []
    never = len(rep) + 1
    for (bucket,), g in rep.group_by(["bucket"], maintain_order=True):  # buckets in order (sorted above)
        inc = g["incident_id"].to_list()
        units = list(zip(g["entity_kind"].to_list(), g["entity_id"].to_list(), strict=True))
        order = sorted(
            range(len(inc)), key=lambda j: (-best.get(inc[j], never), last[inc[j]], -first[inc[j]].toordinal(), inc[j])
        )
        rank: dict[tuple[str, str], int] = {}
        for j in order:  # a unit shared by incidents (a signing key) stands once, where its first incident put it
            rank.setdefault(units[j], len(rank))
        for j in order:
            best[inc[j]] = min(best.get(inc[j], never), rank[units[j]])
        m = len(rank)
        top += [(bucket, kind, eid, 2.0 + (m - r) / (m + 1)) for (kind, eid), r in rank.items()]
    ranked = pl.DataFrame(
        top, schema={"bucket": pl.Date, "entity_kind": pl.String, "entity_id": pl.String, "top": pl.Float64}, orient="row"
    )
    return (
        pos.select("bucket", "entity_kind", "entity_id")
        .unique()
        .join(ranked, on=["bucket", "entity_kind", "entity_id"], how="left")
        .with_columns(score=pl.col("top").fill_null(1.0), reason=pl.lit("reads truth"))
        .select(ALERTS.names())
        .sort("bucket", "entity_kind", "entity_id")
    )


def tuned_prototype(detector_id: str, tuning: list[Dataset]) -> Any:
    """A detector instance, tuned on the tuning datasets when it has ``tune(view, labels)``.

    ``labels`` are the tuning dataset's actor units (bucket, entity_kind, entity_id), the only
    true positives (victims and shared infrastructure are not):
    labels of other worlds than the ones it is tested on. Without tuning datasets or a
    ``tune`` method the fresh instance is returned. Raises whatever the detector raises.
    """
    det = load(detector_id)()
    if tuning and callable(getattr(det, "tune", None)):
        for ds in tuning:
            det.tune(ds.view(ds.buckets[-1]), tuning_labels(ds))
    return det


def tuning_labels(ds: Dataset) -> pl.DataFrame:
    """A tuning dataset's labels for ``tune(view, labels)``: its actor units (bucket, entity_kind, entity_id), sorted;
    the same in a sealed slot as here (the slot's copy once held victims and shared units too)."""
    return (
        ds.positive_units.filter(pl.col("role") == "actor")
        .select("bucket", "entity_kind", "entity_id")
        .unique()
        .sort("bucket", "entity_kind", "entity_id")
    )


def run_detector(
    detector_id: str,
    ds: Dataset,
    on_bucket: Callable[[], None] | None = None,
    prototype: Any = None,
    *,
    roundtrip: bool = False,
    before_bucket: Callable[[dt.date, pl.DataFrame | None], None] | None = None,
) -> DetectorRun:
    """Fit and score one registered detector over the dataset; never raises for its faults.

    ``prototype``: an instance (tuned) to copy instead of constructing a fresh one.
    ``roundtrip``: score with a pickled and unpickled copy of the fitted detector (the
    conformance check ``pickle``); a detector that does not pickle gets an ``ERROR`` row.
    ``before_bucket``: called with each scored bucket and the previous one's alerts (None before
    the first) before the detector scores it (a sealed slot hands buckets over one at a time).
    """
    run = DetectorRun(detector_id)
    try:
        cls = load(detector_id)
        det = copy.deepcopy(prototype) if prototype is not None else cls()
        run.version = str(getattr(det, "version", getattr(cls, "__version__", "")) or "") or None
        WORLD_READ.clear()
        t = time.perf_counter()
        det.fit(ds.view(ds.warmup[-1], None))
        run.fit_s = time.perf_counter() - t
        if roundtrip:
            det = pickle.loads(pickle.dumps(det))
        parts: list[pl.DataFrame] = []
        for bucket in ds.scored:
            if before_bucket is not None:
                before_bucket(bucket, parts[-1] if parts else None)
            t = time.perf_counter()
            out = det.score(ds.view(bucket, bucket))
            run.score_s += time.perf_counter() - t
            parts.append(validate_alerts(out, bucket=bucket, source=f"detector {detector_id!r}"))
            if on_bucket:
                on_bucket()
        run.alerts = pl.concat(parts) if parts else empty_alerts()
        run.world_read = sorted(WORLD_READ)
        run.events = ds.event_count(ds.scored)
        run.events_per_s = rate(run.events, run.score_s)
    except DetectorLoadError as exc:
        run.status, run.error = Status.ERROR, str(exc)
    except MemoryError:
        run.status, run.error, run.alerts = Status.OOM, "MemoryError in the detector's process", empty_alerts()
    except (Exception, SystemExit) as exc:  # a detector's bug (or its sys.exit) is its result, not our crash
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
        run.status, run.error = Status.ERROR, f"{exception_text(exc)}{where}"
        run.alerts = empty_alerts()
    return run
