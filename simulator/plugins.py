"""The one way plugins are found, loaded and checked: entry-point groups of ``"module:attr"`` strings.

Detectors (``breachbench.detectors``) and scenarios (``breachbench.scenarios``) are registered
this way, built-ins included; an unregistered class can also be named by its import path.
Nothing is imported until :func:`import_target` is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any


def registry(group: str) -> dict[str, str]:
    """Registered id -> ``"module:attr"`` of an entry-point group, sorted by id (nothing imported)."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=group), key=lambda e: e.name)}


def target_of(name: str, registered: dict[str, str]) -> str | None:
    """The ``"module:attr"`` a registered id (in ``registered``, from :func:`registry`) or a direct
    ``module:attr`` names, or None for an unknown id."""
    if name in registered:
        return registered[name]
    return name if ":" in name else None


def import_target(target: str) -> Any:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the object; raises what the import raises."""
    module, _, attr = target.partition(":")
    obj: Any = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class CheckResult:
    """Outcome of one conformance check of a plugin (a detector's or a scenario's)."""

    check: str
    passed: bool
    message: str = ""
