"""The one way plugins are found, loaded and checked: entry-point groups of ``"module:attr"`` strings.

Detectors (``breachbench.detectors``) and scenarios (``breachbench.scenarios``) are registered
this way, built-ins included; an unregistered class can also be named by its import path.
Nothing is imported until :func:`import_target` is called.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from simulator.errors import BreachBenchError


def _path_state() -> tuple[tuple[str, int], ...]:
    """Each ``sys.path`` entry with its modification time: what installing or removing a package changes."""
    out = []
    for p in sys.path:
        try:
            out.append((p, os.stat(p or ".").st_mtime_ns))
        except OSError:
            out.append((p, -1))
    return tuple(out)


_REGISTRY: dict[tuple[str, tuple[tuple[str, int], ...]], dict[str, str]] = {}

#: What a plugin id (a registered name or a ``module:Class`` path) may look like: it names files
#: (``alerts/<id>.parquet``), so no path separator and no ``..``.
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]*")


#: What :func:`safe_id` accepts, for error messages.
ID_RULE = "ids are letters, digits and _ . : + - (no '/', no '..'), e.g. 'stat-own-history-v1' or 'my_pkg.module:MyDetector'"


def safe_id(name: str) -> bool:
    """Whether ``name`` matches :data:`ID_PATTERN` without ``..`` (safe as a file name)."""
    return bool(ID_PATTERN.fullmatch(name)) and ".." not in name


def registry(group: str) -> dict[str, str]:
    """Registered id -> ``"module:attr"`` of an entry-point group, sorted by id (nothing imported); names
    that are not :func:`safe_id` are left out.

    Remembered while no ``sys.path`` entry changes (a package installed or removed changes its
    folder): scanning every installed distribution takes milliseconds, and a run asks dozens of times.
    """
    state = _path_state()
    key = (group, state)
    if key not in _REGISTRY:
        for old in [k for k in _REGISTRY if k[1] != state]:  # only the current state is worth keeping
            del _REGISTRY[old]
        # a name that is not a safe id (``../x``, ``a/b``) is never registered: ids name files, and any
        # installed distribution may declare entry points
        # an id the bench itself registers is the bench's: another distribution's entry of the same name (an
        # installed plugin calling itself stat-own-history-v1) comes first and is overwritten by it
        eps = sorted(entry_points(group=group), key=lambda e: (e.name, _is_own(e)))
        # a name with ":" is an import path's form, which names its module whatever a distribution declares (a red
        # team's entry point "acme_det:Sweep" ran its own code for a user's --detectors acme_det:Sweep); a name that
        # differs from another only in case names the same alerts file on a file system that ignores case ("Null")
        found = {ep.name: (ep.value, _is_own(ep)) for ep in eps if safe_id(ep.name) and ":" not in ep.name}
        folded: dict[str, list[str]] = {}
        for name in found:
            folded.setdefault(name.casefold(), []).append(name)
        for names in folded.values():
            if len(names) > 1:  # the bench's own name stays; of names none of which is the bench's, none does
                for name in names:
                    if not found[name][1]:
                        del found[name]
        _REGISTRY[key] = {name: value for name, (value, _own) in found.items()}
    return dict(_REGISTRY[key])


#: The distribution that registers the built-ins (pyproject.toml's name).
OWN_DISTRIBUTION = "breachbench"


def _is_own(ep: Any) -> bool:
    """Whether an entry point comes from the bench's own distribution."""
    dist = getattr(ep, "dist", None)
    return dist is not None and getattr(dist, "name", None) == OWN_DISTRIBUTION


def target_of(name: str, registered: dict[str, str]) -> str | None:
    """The ``"module:attr"`` a registered id (in ``registered``, from :func:`registry`) or a direct
    ``module:attr`` names, or None for an unknown id."""
    if name in registered:
        return registered[name]
    return name if ":" in name else None


#: Folders searched for ``module:attr`` plugins after the import path (``--plugin-path``), os.pathsep-separated. A
#: folder on ``PYTHONPATH`` is on the bench's own import path, and Python runs a ``sitecustomize.py`` it holds as it
#: starts, before the bench can seal anything; one named here is only searched where a plugin is imported (in a
#: detector's sealed process, after the seal).
PLUGIN_PATH_ENV = "BREACHBENCH_PLUGIN_PATH"
_sealed_path: tuple[str, ...] | None = None  # in a sealed process: its plan's, the bench's variables being dropped


def plugin_path() -> list[str]:
    """The plugin folders (:data:`PLUGIN_PATH_ENV`, or those a sealed process was given)."""
    if _sealed_path is not None:
        return list(_sealed_path)
    return [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]


def use_plugin_path(paths: tuple[str, ...]) -> None:
    """In a sealed process: the plugin folders its plan names (its environment no longer does)."""
    global _sealed_path
    _sealed_path = tuple(paths)


def _on_import_path(top: str) -> Any:
    """The module spec of a top-level module or package on the import path, or None. Nothing is imported or run."""
    import importlib.util

    try:
        return importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        return None


def _in_plugin_folders(top: str) -> Any:
    """The module spec of a top-level module or package in the plugin folders, or None. Nothing is imported or run."""
    import importlib.machinery

    folders = plugin_path()
    return importlib.machinery.PathFinder.find_spec(top, folders) if top and folders else None


def find_top(top: str) -> Any:
    """The module spec of a top-level module or package on the import path, else in the plugin folders; None if
    neither has it. Nothing is imported or run."""
    spec = _on_import_path(top)
    return spec if spec is not None else _in_plugin_folders(top)


def code_of(module: str) -> str | None:
    """Where a detector's sealed process finds the code of ``module``: the file of a module, the folder of a package
    (its submodules' too), or None (not found, or a namespace package, which holds no code of its own). Nothing is
    imported or run.

    Searched as that process searches: the import path, then the plugin folders (joined after the seal), each part of a
    dotted name within the folders of the part before it, a regular module or package anywhere ahead of a namespace
    portion (as ``PathFinder`` does, without importing the parents it would ask ``sys.modules`` for). Under ``python
    -m`` the current folder leads the import path, and its ``runs/`` (other runs' truth) is a namespace package there:
    a plugin's ``runs.py`` (or ``runs/old/__init__.py``) is what the child imports, and granting the folder ``runs``
    found by name (or every portion holding ``old``) gave the slot the other runs' truth.
    """
    from importlib.machinery import (
        BYTECODE_SUFFIXES,
        EXTENSION_SUFFIXES,
        SOURCE_SUFFIXES,
        ExtensionFileLoader,
        FileFinder,
        SourceFileLoader,
        SourcelessFileLoader,
    )

    loaders = [
        (ExtensionFileLoader, EXTENSION_SUFFIXES),
        (SourceFileLoader, SOURCE_SUFFIXES),
        (SourcelessFileLoader, BYTECODE_SUFFIXES),
    ]
    search: list[str] = [p for p in sys.path if isinstance(p, str)] + plugin_path()
    parts = module.split(".")
    for i in range(len(parts)):
        name, portions = ".".join(parts[: i + 1]), []
        for entry in search:
            if not os.path.isdir(entry or "."):  # a zip file on the path is granted whole with the path
                continue
            spec = FileFinder(entry or ".", *loaders).find_spec(name)
            if spec is None:
                continue
            if spec.loader is not None and spec.origin is not None:  # a regular module or package: its code is here
                folders = list(spec.submodule_search_locations or ())
                return folders[0] if folders else spec.origin
            portions += list(spec.submodule_search_locations or ())  # a namespace portion
        if not portions and i == 0:
            # a top-level name no folder of the path holds may come from an installed import hook: an editable install
            # (``pip install -e``) maps the bench's own packages to the checkout that way, and the console script's
            # path holds no checkout (the built-ins had no code, so no fingerprint, and were never reused)
            spec = _on_import_path(name)
            if spec is not None and spec.loader is not None and spec.has_location and isinstance(spec.origin, str):
                folders = list(spec.submodule_search_locations or ())
                return folders[0] if folders else spec.origin
            portions = list(getattr(spec, "submodule_search_locations", None) or ())
        if not portions:
            return None
        search = portions  # the next part is in the namespace package's portions
    return None


class PluginPathError(BreachBenchError, ImportError):
    """A ``module:attr`` found only in a plugin folder, asked for outside a detector's sealed process."""


def import_target(target: str) -> Any:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the object; raises what the import raises.

    In a sealed process the plugin folders (:func:`use_plugin_path`) join the end of the import path first. Elsewhere
    they never do: the bench's own processes also import scenarios, and libraries scan the import path for hooks (a
    red-team plugin folder held a ``dist-info`` whose pydantic entry point ran, unsealed, in every worker the bench
    started after the folder joined its path, and rewrote the scores); a module found only there is refused.
    """
    module, _, attr = target.partition(":")
    if _sealed_path is not None:
        sys.path.extend(p for p in _sealed_path if p not in sys.path)
    else:
        top = module.split(".")[0]
        if _in_plugin_folders(top) is not None and _on_import_path(top) is None:
            raise PluginPathError(
                f"{module} is only in a --plugin-path folder, which only a detector's sealed process searches "
                "(detection.isolate = true); it is never imported in the bench's own process"
            )
    obj: Any = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load(
    name: str,
    registered: dict[str, str],
    unknown: Callable[[str], Exception],
    failed: Callable[[str, Exception], Exception],
    catch: tuple[type[Exception], ...] = (Exception,),
) -> Any:
    """The object a registered id (in ``registered``) or a ``module:attr`` names.

    Raises ``unknown(ids)`` (the registered ids, comma-separated) for a name that is neither, and
    ``failed(target, exc)`` when importing the target raises one of ``catch``: each plugin kind
    words its own errors and chooses what a broken plugin may raise.
    """
    target = target_of(name, registered)
    if target is None:
        raise unknown(", ".join(registered) or "none")
    try:
        return import_target(target)
    except catch as exc:
        raise failed(target, exc) from exc


@dataclass
class CheckResult:
    """Outcome of one conformance check of a plugin (a detector's or a scenario's)."""

    check: str
    passed: bool
    message: str = ""
