"""Named polars schemas of every frame that leaves the simulator, defined once.

``ts`` is UTC with microsecond precision. ``event_id`` is unique across all streams.
Detectors may rely on the world and log schemas; the truth schemas are for the bench only.
"""

from __future__ import annotations

import polars as pl

TS = pl.Datetime("us", "UTC")

# ---- world -----------------------------------------------------------------------------

CUSTOMERS = pl.Schema(
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

ADDRESSES = pl.Schema(
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

ORDERS = pl.Schema(
    {
        "order_id": pl.Int64,
        "customer_id": pl.Int64,
        "ts": TS,
        "amount": pl.Int64,
        "items": pl.Int16,
    }
)

EMPLOYEES = pl.Schema(
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

ROLE_HISTORY = pl.Schema(
    {
        "employee_id": pl.Int64,
        "role": pl.String,
        "team": pl.String,
        "start_date": pl.Date,
        "end_date": pl.Date,
    }
)

CREDENTIALS = pl.Schema(
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

GATEWAY = pl.Schema(
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

AUTH = pl.Schema(
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

ADMIN = pl.Schema(
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

HR = pl.Schema(
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

# ---- truth (bench only) ------------------------------------------------------------------

INCIDENTS = pl.Schema(
    {
        "incident_id": pl.Int32,
        "scenario": pl.String,
        "actors": pl.List(pl.Int64),
        "start": TS,
        "end": TS,
        "phases": pl.String,
    }
)

MALICIOUS_EVENTS = pl.Schema(
    {
        "event_id": pl.Int64,
        "stream": pl.String,
        "ts": TS,
        "incident_id": pl.Int32,
        "phase": pl.String,
    }
)

EXPOSURE = pl.Schema(
    {
        "incident_id": pl.Int32,
        "customer_id": pl.Int64,
        "kind": pl.String,
        "first_ts": TS,
        "reads": pl.Int32,
    }
)

BENIGN_ANOMALIES = pl.Schema(
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
EXPOSURE_KINDS: tuple[str, ...] = ("my_info", "address_book", "address_edit", "order_history", "page", "record", "bulk_row", "targeted")

TRUTH_TABLES: dict[str, pl.Schema] = {
    "incidents": INCIDENTS,
    "malicious_events": MALICIOUS_EVENTS,
    "exposure": EXPOSURE,
    "benign_anomalies": BENIGN_ANOMALIES,
}


def event_ids(stream: str, day: int, block: int, n: int) -> "pl.Series":
    """Stable event ids for the ``n`` rows of one (stream, day, block) file, in row order.

    Layout: stream (3 bits) | day (16 bits) | block (16 bits) | row (28 bits).
    """
    base = (STREAM_CODES[stream] << 60) | (day << 44) | (block << 28)
    return pl.int_range(base, base + n, dtype=pl.Int64, eager=True).alias("event_id")
