"""Scenario contract and registry.

A scenario class has a versioned ``id``, a one-line ``summary``, a frozen pydantic ``Knobs``
model, and these methods:

- ``plan(cfg, staff, incident_id, knobs)``: a picklable plan, made once from the world, with
  ``incident_id`` and ``actors`` (employee ids) attributes; ``staff`` holds the ``employees``,
  ``employee_roles`` and ``credentials`` tables and ``customers``, a :class:`simulator.world.CustomerWorld`
  (customers who exist on a day, the customer tables, the residents of an address); pick actors
  among :func:`simulator.world.steady_roles` (one role through the span), as the built-ins do;
- ``render(plan, cfg, day_index, block, ctx)``: the malicious rows of one (day, customer
  block), per customer stream (gateway, auth), each with a ``phase`` column; ``ctx`` is a
  :class:`simulator.traffic.CustomerBlock`;
- optionally ``render_staff(plan, cfg, day_index, sd)``: the malicious rows of one day in the
  staff's streams (admin, auth, hr); ``sd`` is a :class:`simulator.staff_traffic.StaffDay`,
  whose helpers draw sessions, times, tickets and customers as benign traffic does; admin rows
  may carry hidden ``_xlo``/``_xn`` columns, the customer-id range a bulk pull read, which reach
  the exposure truth only;
- rendered rows are validated by :func:`simulator.schema.check_rendered` (strict columns and
  types), and the engine refuses reads of customers before their signup;
- ``window(plan)`` (first and one-past-last day), ``phases(plan)`` (text for the truth) and
  ``declared_easy(knobs)`` (a reason when the variant is easy on purpose, else None);
- ``signals(knobs)``: phase name -> the behavioural signals (names from
  :data:`simulator.signals.VOCABULARY`) its rows carry at these knobs. Everything else about the
  rows must look like the rows of comparable benign actors; the artefact audit checks it.
  A hidden ``_xkind`` column sets the exposure kind of a row (``targeted`` for snooping).

Built-ins and plugins are registered through the entry-point group ``breachbench.scenarios`` as ``"module:attr"``
strings and loaded lazily.
"""

from __future__ import annotations

from typing import Any

from simulator import plugins
from simulator.errors import ScenarioError

GROUP = "breachbench.scenarios"


def registry() -> dict[str, str]:
    """Scenario id -> ``"module:attr"`` for every registered scenario (nothing imported)."""
    return plugins.registry(GROUP)


def load(scenario_id: str) -> Any:
    """The scenario class registered under ``scenario_id``, or named directly as ``"module:attr"``."""
    return plugins.load(
        scenario_id,
        registry(),  # looked up at call time (tests replace it)
        lambda known: ScenarioError(
            f"scenarios.id: unknown scenario {scenario_id!r}; registered: {known}; or give 'module:attr'"
        ),
        lambda target, exc: ScenarioError(f"scenarios.id: cannot load {scenario_id!r} ({target}): {exc}"),
        (ImportError, AttributeError),
    )
