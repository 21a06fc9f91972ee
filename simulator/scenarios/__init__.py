"""Scenario contract and registry.

A scenario class has a versioned ``id``, a one-line ``summary``, a frozen pydantic ``Knobs``
model, and two methods: ``plan(cfg, staff, incident_id, knobs)`` (picklable plan, made once
from the world) and ``render(plan, cfg, day_index, block, ctx)`` (the malicious rows of one
(day, customer block), per stream, each with a ``phase`` column). Built-ins and plugins are
registered through the entry-point group ``breachbench.scenarios`` as ``"module:attr"``
strings and loaded lazily.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from simulator.errors import ScenarioError

GROUP = "breachbench.scenarios"


def registry() -> dict[str, str]:
    """Scenario id -> ``"module:attr"`` for every registered scenario (nothing imported)."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


def load(scenario_id: str) -> Any:
    """The scenario class registered under ``scenario_id``."""
    reg = registry()
    if scenario_id not in reg:
        known = ", ".join(reg) or "none"
        raise ScenarioError(f"scenarios.id: unknown scenario {scenario_id!r}; registered: {known}")
    module, _, attr = reg[scenario_id].partition(":")
    obj: Any = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
