"""Detector registry: entry-point group ``breachbench.detectors``, loaded lazily.

Built-ins are registered the same way as plugins, so a plugin is a package that declares
``[project.entry-points."breachbench.detectors"] my-detector-v1 = "my_pkg:MyDetector"``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from simulator.errors import BreachBenchError

GROUP = "breachbench.detectors"


class DetectorLoadError(BreachBenchError, LookupError):
    """A detector id that is not registered or whose target cannot be imported."""


def registry() -> dict[str, str]:
    """Detector id -> ``"module:attr"`` (nothing imported)."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


def load(detector_id: str) -> Any:
    """The class registered as ``detector_id``, or named directly as ``"module:attr"``.

    Raises:
        DetectorLoadError: unknown id, or the plugin's module or attribute fails to import.
    """
    reg = registry()
    if detector_id in reg:
        target = reg[detector_id]
    elif ":" in detector_id:  # an unregistered class named by its import path
        target = detector_id
    else:
        raise DetectorLoadError(f"unknown detector {detector_id!r}; registered: {', '.join(reg) or 'none'} (or give module:attr)")
    reg = {detector_id: target}
    module, _, attr = target.partition(":")
    try:
        obj: Any = import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # a broken plugin must become an error row, not a crash
        raise DetectorLoadError(
            f"detector {detector_id!r} ({reg[detector_id]}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return obj
