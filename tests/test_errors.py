"""One error base: every bad-input error the project raises derives from BreachBenchError, which the CLI turns into one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import breachbench
import detectors
import simulator
from simulator.errors import BreachBenchError

#: Exceptions that are not bad-input errors on purpose: check failures are assertions (pytest
#: reports them), Terminated is a signal (a BaseException beside KeyboardInterrupt).
NOT_INPUT = {"ScenarioCheckError", "DetectorCheckError", "Terminated"}


def _exception_classes() -> list[type]:
    found = []
    for pkg in (breachbench, detectors, simulator):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if mod.name.endswith("__main__"):  # runs the command line on import
                continue
            try:
                m = importlib.import_module(mod.name)
            except ImportError:  # an optional extra that is not installed
                continue
            for _, obj in inspect.getmembers(m, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == m.__name__:
                    found.append(obj)
    return found


def test_every_error_of_ours_derives_from_the_base() -> None:
    classes = _exception_classes()
    assert len(classes) >= 10
    strays = [c.__qualname__ for c in classes if c.__name__ not in NOT_INPUT and not issubclass(c, BreachBenchError)]
    assert not strays, f"errors outside BreachBenchError: {strays}"
    assert breachbench.BreachBenchError is BreachBenchError
