"""BreachBench: a benchmark for catching customer-data theft by insiders.

This is the public import path. It re-exports the detector contract so that a detector
author needs one import (or none: the contract is structural)::

    from breachbench import View, validate_alerts, ALERTS

Nothing is imported eagerly: attributes load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ALERTS": "detectors.contract",
    "AlertsError": "detectors.contract",
    "Detector": "detectors.contract",
    "validate_alerts": "detectors.contract",
    "View": "detectors.view",
    "BenchConfig": "breachbench.config",
    "ConfigError": "breachbench.config",
    "load_config": "breachbench.config",
    "Dataset": "breachbench.dataset",
    "score_alerts": "breachbench.scoring",
    "generate": "simulator.engine",
    "from_estimator": "detectors.adapters",
    "check_detector": "detectors.checks",
    "parametrize_with_checks": "detectors.checks",
    "DetectorCheckError": "detectors.checks",
    "BreachBenchError": "simulator.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'breachbench' has no attribute {name!r}")
