"""Time zones and their countries (the IANA ``zone.tab``), with the standard library only.

Detectors use it in their sealed slots (``View.home_country``, the foreign flag of the features),
so it imports nothing beyond the standard library.
"""

from __future__ import annotations

import functools
import importlib.resources
import zoneinfo
from pathlib import Path


@functools.cache
def _zone_countries() -> dict[str, str]:
    """IANA ``zone.tab``: zone name -> ISO 3166 country code, from the time zone database that
    :class:`~zoneinfo.ZoneInfo` reads (the system's ``TZPATH`` first, then the ``tzdata`` package).

    A file that cannot be read is skipped (a detector's sealed slot may not read the system's
    time zone folder; the ``tzdata`` package lies among the installed packages it may read).
    """
    for path in (Path(d, "zone.tab") for d in zoneinfo.TZPATH):
        try:
            return _parse_zone_tab(path.read_text(encoding="utf-8"))
        except OSError:
            continue
    try:
        return _parse_zone_tab(importlib.resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8"))
    except (ModuleNotFoundError, OSError):
        return {}


def _parse_zone_tab(text: str) -> dict[str, str]:
    rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {row[2]: row[0] for row in rows if len(row) >= 3}


def zone_country(timezone: str) -> str | None:
    """The ISO 3166 country of an IANA time zone (``Asia/Seoul`` -> ``KR``), None when it has none (``UTC``)."""
    return _zone_countries().get(timezone)
