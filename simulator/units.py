"""Units of time and size and the roles of the staff: one place for the vocabulary every generator shares.

Timestamps are integer microseconds since the epoch (UTC) until they are cast to
``Datetime("us", "UTC")`` on the way out.
"""

from __future__ import annotations

from enum import StrEnum

#: Microseconds in a second, an hour and a day.
SEC = 1_000_000
HOUR = 3600 * SEC
DAY_US = 86_400 * SEC


def size_text(n: float) -> str:
    """Bytes for a message: GiB with one decimal from 1 GiB, else MiB (``"0 MiB"`` for under half a MiB)."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


class Role(StrEnum):
    """An employee's role (``employees.role``, ``employee_roles.role``; ``world.roles`` keys)."""

    SUPPORT_AGENT = "support_agent"
    LOGISTICS = "logistics"
    ANALYST = "analyst"
    BACKEND_ENGINEER = "backend_engineer"
    PLATFORM_ENGINEER = "platform_engineer"
    ADMINISTRATOR = "administrator"
    OTHER = "other"


#: Every role, in the order the world draws them (plain strings: they go into numpy arrays and tables).
ROLES: tuple[str, ...] = tuple(r.value for r in Role)
#: The roles that hold signing keys and build the services.
ENGINEERS: tuple[str, ...] = (Role.BACKEND_ENGINEER.value, Role.PLATFORM_ENGINEER.value)
#: The roles that work a rota of shifts (``employees.shift``); the others work office hours on weekdays.
SHIFT_ROLES: tuple[str, ...] = (Role.SUPPORT_AGENT.value, Role.LOGISTICS.value)
#: The roles that can see customer records in the internal tools (every role but ``other``).
ACCESS_ROLES: tuple[str, ...] = (
    Role.SUPPORT_AGENT.value,
    Role.LOGISTICS.value,
    Role.ANALYST.value,
    Role.ADMINISTRATOR.value,
    Role.BACKEND_ENGINEER.value,
    Role.PLATFORM_ENGINEER.value,
)
#: The roles whose routine includes bulk queries and exports (administrators' does not: they view and edit).
BULK_ROLES: tuple[str, ...] = (Role.ANALYST.value,)
