"""PyOD models through the adapter (optional extra: ``pip install 'breachbench[pyod]'``).

PyOD is imported when the detector is fitted, so listing detectors never needs it; without it,
the detector's row says how to install it.
"""

from __future__ import annotations

from typing import Any

from detectors.adapters import from_estimator


def _ecod() -> Any:
    try:
        from pyod.models.ecod import ECOD
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"{exc}; install the optional extra: pip install 'breachbench[pyod]'") from None
    return ECOD()


#: ECOD (empirical-CDF outlier detection) over the entity-bucket features; PyOD's sign kept.
PyodECOD = from_estimator(_ecod, name="pyod-ecod-v1", qualname="PyodECOD", module=__name__)
