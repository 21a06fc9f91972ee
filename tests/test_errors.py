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


def test_a_ctrl_c_is_one_line_in_every_command_and_while_starting(monkeypatch, capsys, tmp_path) -> None:
    """Typer ends a command that a Ctrl-C stops with status 130 and no word; a command that says what it kept says
    it once; and a Ctrl-C while the command line's modules load is one line, not a traceback."""
    import sys
    import types

    import pytest

    import breachbench.dataset
    import breachbench.verify
    from breachbench import __main__ as entry
    from breachbench import cli

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    (tmp_path / "manifest.json").write_text("{}")
    monkeypatch.setattr(breachbench.verify, "verify_dataset", interrupt)  # verify: no words of its own
    monkeypatch.setattr(breachbench.dataset.Dataset, "open", interrupt)  # score: says what it kept
    for argv in (["verify", str(tmp_path)], ["score", str(tmp_path), str(tmp_path / "alerts.parquet")]):
        monkeypatch.setattr(cli, "_INTERRUPT_SAID", False)
        monkeypatch.setattr(sys, "argv", ["breachbench", *argv])
        with pytest.raises(SystemExit) as stopped:
            cli.main()
        err = capsys.readouterr().err
        assert stopped.value.code == 130 and err.count("interrupted") == 1 and "Traceback" not in err, (argv, err)

    class Loading(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "breachbench.cli", Loading("breachbench.cli"))
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    err = capsys.readouterr().err
    assert stopped.value.code == 130 and err.startswith("interrupted (SIGINT) while starting") and "Traceback" not in err
