"""Detector registry: entry-point group ``breachbench.detectors``, loaded lazily.

Built-ins are registered the same way as plugins, so a plugin is a package that declares
``[project.entry-points."breachbench.detectors"] my-detector-v1 = "my_pkg:MyDetector"``.
"""

from __future__ import annotations

from typing import Any

from simulator import plugins
from simulator.errors import BreachBenchError

GROUP = "breachbench.detectors"


class DetectorLoadError(BreachBenchError, LookupError):
    """A detector id that is not registered or whose target cannot be imported."""


#: Ids the bench keeps for itself: an installed plugin registered as one is left out (as ``oracle`` it made every
#: ``detectors = ["*"]`` run refuse to start, the bench's anchor named twice).
ORACLE = "oracle"
RESERVED = (ORACLE,)


def registry() -> dict[str, str]:
    """Detector id -> ``"module:attr"`` (nothing imported), reserved ids left out."""
    return {k: v for k, v in plugins.registry(GROUP).items() if k not in RESERVED}


def load(detector_id: str) -> Any:
    """The class registered as ``detector_id``, or named directly as ``"module:attr"``.

    Raises:
        DetectorLoadError: unknown id, or the plugin's module or attribute fails to import.
    """
    return plugins.load(
        detector_id,
        registry(),  # looked up at call time (tests replace it)
        lambda known: DetectorLoadError(f"unknown detector {detector_id!r}; registered: {known} (or give module:attr)"),
        # a broken plugin must become an error row, not a crash: any exception
        lambda target, exc: DetectorLoadError(f"detector {detector_id!r} ({target}) failed to load: {type(exc).__name__}: {exc}"),
    )
