"""Named polars schemas of every frame that leaves the simulator, defined once.

``ts`` is UTC with microsecond precision. ``event_id`` is unique across all streams.
Detectors may rely on the world and log schemas; the truth schemas are for the bench only.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl
from polars.datatypes import DataTypeClass

#: A polars column type: a class (``pl.Int64``) or an instance (``pl.Datetime("us", "UTC")``).
DType = pl.DataType | DataTypeClass

TS = pl.Datetime("us", "UTC")


def _schema(columns: dict[str, DType]) -> pl.Schema:
    """``pl.Schema(columns)``, typed so that classes and instances may be mixed."""
    return pl.Schema(columns)


# ---- world -----------------------------------------------------------------------------

CUSTOMERS = _schema(
    {
        "customer_id": pl.Int64,
        "name": pl.String,
        "email": pl.String,
        "phone": pl.String,
        "signup_date": pl.Date,
        "tier": pl.String,
        "home_region": pl.String,
        "locale": pl.String,
        "activity": pl.Float32,
    }
)

ADDRESSES = _schema(
    {
        "address_id": pl.Int64,
        "customer_id": pl.Int64,
        "recipient_name": pl.String,
        "recipient_phone": pl.String,
        "is_self": pl.Boolean,
        "address": pl.String,
        "entrance_code": pl.String,
    }
)

ORDERS = _schema(
    {
        "order_id": pl.Int64,
        "customer_id": pl.Int64,
        "ts": TS,
        "amount": pl.Int64,
        "items": pl.Int16,
    }
)

EMPLOYEES = _schema(
    {
        "employee_id": pl.Int64,
        "name": pl.String,
        "kind": pl.String,
        "role": pl.String,
        "team": pl.String,
        "hire_date": pl.Date,
        "termination_date": pl.Date,
        "home_office": pl.String,
        "shift": pl.String,
    }
)

ROLE_HISTORY = _schema(
    {
        "employee_id": pl.Int64,
        "role": pl.String,
        "team": pl.String,
        "start_date": pl.Date,
        "end_date": pl.Date,
    }
)

CREDENTIALS = _schema(
    {
        "key_id": pl.String,
        "kind": pl.String,
        "owner_employee_id": pl.Int64,
        "owner_team": pl.String,
        "created": TS,
        "rotated": TS,
        "revoked": TS,
    }
)

WORLD_TABLES: dict[str, pl.Schema] = {
    "customers": CUSTOMERS,
    "addresses": ADDRESSES,
    "orders": ORDERS,
    "employees": EMPLOYEES,
    "employee_roles": ROLE_HISTORY,
    "credentials": CREDENTIALS,
}

# ---- logs ------------------------------------------------------------------------------

GATEWAY = _schema(
    {
        "event_id": pl.Int64,
        "ts": TS,
        "customer_id": pl.Int64,
        "token_id": pl.Int64,
        "key_id": pl.String,
        "endpoint": pl.String,
        "src_ip": pl.String,
        "country": pl.String,
        "asn": pl.Int32,
        "user_agent": pl.String,
        "status": pl.Int16,
        "bytes": pl.Int32,
        "records_returned": pl.Int32,
    }
)

AUTH = _schema(
    {
        "event_id": pl.Int64,
        "ts": TS,
        "event": pl.String,
        "customer_id": pl.Int64,
        "employee_id": pl.Int64,
        "token_id": pl.Int64,
        "key_id": pl.String,
        "src_ip": pl.String,
        "country": pl.String,
    }
)

ADMIN = _schema(
    {
        "event_id": pl.Int64,
        "ts": TS,
        "employee_id": pl.Int64,
        "customer_id": pl.Int64,
        "row_count": pl.Int64,
        "action": pl.String,
        "channel": pl.String,
        "ticket_id": pl.Int64,
        "src_ip": pl.String,
        "country": pl.String,
        "device": pl.String,
    }
)

HR = _schema(
    {
        "event_id": pl.Int64,
        "ts": TS,
        "subject_kind": pl.String,
        "subject_id": pl.String,
        "event": pl.String,
        "detail": pl.String,
    }
)

LOG_STREAMS: dict[str, pl.Schema] = {"gateway": GATEWAY, "auth": AUTH, "admin": ADMIN, "hr": HR}

#: Top bits of ``event_id`` per stream, so ids never collide across streams.
STREAM_CODES: dict[str, int] = {"gateway": 1, "auth": 2, "admin": 3, "hr": 4}

#: Block number of the staff's partition files (employees are not split by customer block).
STAFF_BLOCK = 0xFFFF

#: Kinds of entity an alert may name.
ENTITY_KINDS: tuple[str, ...] = ("employee", "customer", "ip", "key", "token")
#: The log column that names each kind of entity (in every stream that has it).
ENTITY_COLUMNS: dict[str, str] = {
    "customer": "customer_id",
    "ip": "src_ip",
    "key": "key_id",
    "token": "token_id",
    "employee": "employee_id",
}

# ---- truth (bench only) ------------------------------------------------------------------

INCIDENTS = _schema(
    {
        "incident_id": pl.Int32,
        "scenario": pl.String,
        "actors": pl.List(pl.Int64),
        "start": TS,
        "end": TS,
        "phases": pl.String,
        "pool": pl.List(pl.Int64),
    }
)

MALICIOUS_EVENTS = _schema(
    {
        "event_id": pl.Int64,
        "stream": pl.String,
        "ts": TS,
        "incident_id": pl.Int32,
        "phase": pl.String,
    }
)

EXPOSURE = _schema(
    {
        "incident_id": pl.Int32,
        "customer_id": pl.Int64,
        "kind": pl.String,
        "first_ts": TS,
        "reads": pl.Int32,
    }
)

BENIGN_ANOMALIES = _schema(
    {
        "event_id": pl.Int64,
        "stream": pl.String,
        "pattern": pl.String,
    }
)


#: What an exposed record held (the ``kind`` of an exposure row). Gateway pages by endpoint;
#: ``record``: one customer's record opened in an internal tool; ``bulk_row``: a row of a bulk
#: pull (export, query, upload); ``targeted``: a record of a person the actor reads again and
#: again on purpose (snooping), whose harm per person is far above a row in a list.
class ExposureKind(StrEnum):
    """The ``kind`` of an exposure row (see :data:`EXPOSURE_KINDS`)."""

    MY_INFO = "my_info"
    ADDRESS_BOOK = "address_book"
    ADDRESS_EDIT = "address_edit"
    ORDER_HISTORY = "order_history"
    PAGE = "page"
    RECORD = "record"
    BULK_ROW = "bulk_row"
    TARGETED = "targeted"


EXPOSURE_KINDS: tuple[str, ...] = tuple(k.value for k in ExposureKind)

TRUTH_TABLES: dict[str, pl.Schema] = {
    "incidents": INCIDENTS,
    "malicious_events": MALICIOUS_EVENTS,
    "exposure": EXPOSURE,
    "benign_anomalies": BENIGN_ANOMALIES,
}


def event_ids(stream: str, day: int, block: int, n: int) -> pl.Series:
    """Stable event ids for the ``n`` rows of one (stream, day, block) file, in row order.

    Layout: stream (3 bits) | day (16 bits) | block (16 bits) | row (28 bits).
    """
    base = (STREAM_CODES[stream] << 60) | (day << 44) | (block << 28)
    return pl.int_range(base, base + n, dtype=pl.Int64, eager=True).alias("event_id")


# ---- rows a scenario renders ------------------------------------------------------------------

#: Columns every rendered row of a stream must carry (the others may be left out: null). The
#: address is the integer column ``ip`` (the engine writes it as ``src_ip`` text); ``event_id``
#: is the engine's. Every rendered row also names its ``phase``.
RENDER_REQUIRED: dict[str, tuple[str, ...]] = {
    "gateway": (
        "ts",
        "customer_id",
        "token_id",
        "key_id",
        "endpoint",
        "ip",
        "country",
        "asn",
        "user_agent",
        "status",
        "bytes",
        "records_returned",
        "phase",
    ),
    "auth": ("ts", "event", "ip", "country", "phase"),
    "admin": ("ts", "employee_id", "row_count", "action", "channel", "ip", "country", "device", "phase"),
    "hr": ("ts", "subject_kind", "subject_id", "event", "phase"),
}
#: Hidden columns a rendered row may carry: they reach the truth, never the logs.
RENDER_HIDDEN: dict[str, DType] = {"_xlo": pl.Int64, "_xn": pl.Int64, "_xkind": pl.String}


def render_schema(stream: str) -> dict[str, DType]:
    """Every column a scenario may render in ``stream``, with its type."""
    cols: dict[str, DType] = {c: t for c, t in LOG_STREAMS[stream].items() if c not in ("event_id", "src_ip")}
    if "src_ip" in LOG_STREAMS[stream]:
        cols["ip"] = pl.Int64
    cols["phase"] = pl.String
    if stream == "admin":
        cols.update({c: t for c, t in RENDER_HIDDEN.items() if c != "_xkind"})
    if stream in ("admin", "gateway"):
        cols["_xkind"] = pl.String
    return cols


def _kind(t: DType) -> str:
    if t == pl.Null:
        return "null"
    if t.is_integer():
        return "integer"
    if t.is_float():
        return "float"
    if t == pl.String:
        return "string"
    if t == pl.Boolean:
        return "boolean"
    if isinstance(t, pl.Datetime):
        return "datetime"
    return str(t)


def check_rendered(stream: str, df: pl.DataFrame, where: str) -> pl.DataFrame:
    """Validate rendered rows strictly and return them with the stream's types.

    An unknown column, a missing required one, a wrong type (text for a number, a number for
    text) or a null in a required column raises ``ValueError`` naming ``where``, the stream and
    the column. ``ts`` may be UTC microseconds (integer) or a datetime.
    """
    want = render_schema(stream)
    unknown = [c for c in df.columns if c not in want]
    if unknown:
        hint = " (give the address as the integer column 'ip'; the engine writes src_ip)" if "src_ip" in unknown else ""
        raise ValueError(f"{where}: {stream} rows have unknown columns {unknown}{hint}; accepted: {sorted(want)}")
    missing = [c for c in RENDER_REQUIRED[stream] if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: {stream} rows lack the required columns {missing}")
    casts: dict[str, DType] = {}
    for c, t in df.schema.items():
        got, need = _kind(t), _kind(want[c])
        ok = (
            got == need
            or got == "null"
            or (need == "float" and got == "integer")
            or (c == "ts" and got in ("integer", "datetime"))
        )
        if not ok:
            raise ValueError(f"{where}: {stream}.{c} has type {t}; expected {want[c]}")
        if c != "ts":
            casts[c] = want[c]
    nulls = [c for c in RENDER_REQUIRED[stream] if df[c].null_count()]
    if nulls:
        raise ValueError(f"{where}: {stream} rows have nulls in the required columns {nulls}")
    if isinstance(df.schema["ts"], pl.Datetime):
        df = df.with_columns(pl.col("ts").dt.epoch("us"))
    # polars types the argument as a Mapping keyed by names or selectors, and Mapping's key type is
    # invariant, so no dict[str, ...] matches it
    return df.cast(casts)  # type: ignore[arg-type]
