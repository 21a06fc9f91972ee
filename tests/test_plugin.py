"""A detector from a separate package, installed with pip, is found through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "example_plugin"
PLUGIN_ID = "example-foreign-sweep-v1"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Install the example plugin with pip into a private target dir; return an env that sees it."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path_factory.mktemp("pip-cwd"),
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "breachbench", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_plugin_is_listed(plugin_env: dict[str, str], tmp_path: Path) -> None:
    listed = _cli(["detectors", "list"], plugin_env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert PLUGIN_ID in listed.stdout
    without = _cli(["detectors", "list"], {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, tmp_path)
    assert PLUGIN_ID not in without.stdout  # it is the installed package that brings it, not our code


def test_plugin_runs_in_the_leaderboard(plugin_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _cli(
        [
            "run",
            str(ROOT / "configs" / "tiny.toml"),
            "--out",
            str(out),
            "--workers",
            "1",
            "--set",
            f'detection.detectors=["null", "{PLUGIN_ID}"]',
        ],
        plugin_env,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert PLUGIN_ID in res.stdout
    rows = {r["detector"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert rows[PLUGIN_ID]["status"] == "OK", rows[PLUGIN_ID]["error"]
    # the attack comes from overseas cloud addresses sweeping customers: the plugin must find it
    assert rows[PLUGIN_ID]["recall_at_k"] == 1.0
    assert rows[PLUGIN_ID]["auprc"] > rows["null"]["auprc"]
    assert PLUGIN_ID in (out / "leaderboard.md").read_text()
    # the run says what the leakage audit found: the tiny world's forged-token case is easy on purpose
    assert (
        "leakage audit: no shortcut reaches the leak line" in res.stdout
        and "declared easy: coupang-forged-token-v3" in res.stdout
    )


def test_registry_sees_a_package_installed_while_running(plugin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry is remembered between calls, but a package added to (or removed from) ``sys.path`` shows at once."""
    from detectors.registry import registry

    before = registry()
    assert PLUGIN_ID not in before
    site = plugin_env["PYTHONPATH"].split(os.pathsep)[0]
    monkeypatch.syspath_prepend(site)
    assert PLUGIN_ID in registry()
    monkeypatch.undo()
    assert registry() == before


def test_an_installed_plugin_cannot_take_a_builtin_or_a_reserved_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution registered as ``oracle`` made every ``detectors = ["*"]`` run refuse to start (the bench's
    anchor named twice); one registered as a built-in's id took it where it came later on the import path."""
    from breachbench.runner import preflight_detectors, resolve_detectors
    from detectors.registry import registry
    from simulator import plugins

    dist = tmp_path / "evil_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[breachbench.detectors]\noracle = evil:Nothing\nstat-own-history-v1 = evil:Nothing\nevil-v1 = evil:Nothing\n"
        # a red team's: an import path's form took the user's --detectors acme_det:Sweep; a built-in's id in capitals
        # names the same alerts file where case is ignored; two of its own ids alike but for case, neither kept
        "acme_det:Sweep = evil:Forged\nNull = evil:Nothing\nSTAT-Peer-Group-V1 = evil:Nothing\nTwin-v1 = evil:A\ntwin-V1 = evil:B\n"
    )
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])  # after the bench's own: the later entry won
    reg = registry()
    assert reg["evil-v1"] == "evil:Nothing" and "oracle" not in reg
    assert reg["stat-own-history-v1"] == "detectors.zoo:OwnHistoryDetector"
    assert not [i for i in reg if ":" in i or i.casefold() in ("null", "stat-peer-group-v1", "twin-v1") and i.lower() != i]
    assert "null" in reg and "stat-peer-group-v1" in reg and "twin-v1" not in {i.casefold() for i in reg}
    assert plugins.target_of("acme_det:Sweep", reg) == "acme_det:Sweep"  # the import path it names, not evil:Forged
    preflight_detectors(resolve_detectors(["*"]))  # no error


def test_a_plugin_folder_never_joins_the_bench_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A red-team plugin folder held a dist-info whose pydantic entry point ran, unsealed, in every worker the bench
    started once the folder had joined its import path (loading a scenario did that). Only a sealed process searches
    it; a module found there alone is refused elsewhere."""
    from simulator import plugins
    from simulator.plugins import PLUGIN_PATH_ENV, PluginPathError, import_target

    (tmp_path / "onlyhere.py").write_text("X = 1\n")
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(tmp_path))
    before = list(sys.path)
    assert import_target("simulator.scenarios.insiders:CompromisedEmployee").id == "compromised-employee-v3"
    with pytest.raises(PluginPathError, match="only in a --plugin-path folder"):
        import_target("onlyhere:X")
    assert sys.path == before and "onlyhere" not in sys.modules
    monkeypatch.setattr(plugins, "_sealed_path", (str(tmp_path),))  # as in a sealed process
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert import_target("onlyhere:X") == 1 and sys.path[-1] == str(tmp_path)
    monkeypatch.delitem(sys.modules, "onlyhere")


def test_links_in_a_plugin_folder_grant_nothing_and_crash_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link `up -> ..` made the plugin's module a namespace package whose folder resolved to the plugin folder's
    parent, which the slot was then granted (another run's truth lay there); a package's link to /proc/self/mem
    crashed the bench as it fingerprinted the package for reuse."""
    from breachbench.isolation import _import_roots
    from breachbench.reuse import _source_files, detector_fingerprint
    from simulator.plugins import PLUGIN_PATH_ENV

    plug = tmp_path / "plug"
    (plug / "kpkg").mkdir(parents=True)
    (plug / "det.py").write_text("X = 1\n")
    (plug / "up").symlink_to("..")
    (plug / "kpkg" / "__init__.py").write_text("X = 1\n")
    (plug / "kpkg" / "data.bin").symlink_to("/proc/self/mem")
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plug))
    roots = [os.path.realpath(p) for p in _import_roots("up.plug.det:X")]
    assert not any(Path(r) == tmp_path or Path(r) == plug for r in roots), roots
    # every file of the folder; its links as entries of their own, hashed by where they point, never followed
    assert _source_files("kpkg:X") == [plug / "det.py", plug / "kpkg" / "__init__.py", plug / "kpkg" / "data.bin", plug / "up"]
    assert detector_fingerprint("kpkg:X") is not None


def test_a_reason_cannot_end_its_markdown_cell() -> None:
    """A reason's own backslash before a pipe had escaped the escape (``ok\\|``), and the pipe ended the cell."""
    import re

    from breachbench.report import md_cell

    for text in ("a|b", "ok\\| [x](https://evil.example)", "\\\\|", "x\\"):
        cell = md_cell(text)
        assert "|" not in re.sub(r"\\.", "", cell), cell  # every pipe is escaped, every escape is a pair


def test_a_deeply_nested_plugin_package_is_not_fingerprinted_and_crashes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red team's package of 1,100 nested folders crashed the bench (``os.walk`` recurses) as it fingerprinted the
    package for reuse; past the walk's bounds it is not fingerprinted, so it runs again each time."""
    from breachbench.reuse import MAX_SOURCE_DEPTH, _source_files, detector_fingerprint
    from simulator.plugins import PLUGIN_PATH_ENV

    plug = tmp_path / "plug"
    (plug / "deep").mkdir(parents=True)
    (plug / "deep" / "__init__.py").write_text("X = 1\n")
    leaf = plug / "deep"
    for _ in range(1100):  # one level at a time: mkdir(parents=True) recurses too
        leaf = leaf / "a"
        leaf.mkdir()
    (leaf / "x.py").write_text("Y = 1\n")
    near = tmp_path / "near"
    (near / "shallow" / "sub").mkdir(parents=True)
    (near / "shallow" / "__init__.py").write_text("X = 1\n")
    (near / "shallow" / "sub" / "m.py").write_text("Y = 1\n")
    monkeypatch.setenv(PLUGIN_PATH_ENV, os.pathsep.join([str(plug), str(near)]))
    try:
        assert MAX_SOURCE_DEPTH < 1100 and _source_files("deep:X") is None and detector_fingerprint("deep:X") is None
        assert _source_files("shallow:X") is None  # the other plugin folder's files count too
        monkeypatch.setenv(PLUGIN_PATH_ENV, str(near))
        assert _source_files("shallow:X") == [near / "shallow" / "__init__.py", near / "shallow" / "sub" / "m.py"]
    finally:  # from the leaf up: shutil.rmtree recurses too, and pytest's clean-up of old temp folders would fail on it
        (leaf / "x.py").unlink()
        while leaf != plug / "deep":
            leaf.rmdir()
            leaf = leaf.parent


def test_a_plugins_code_is_found_where_its_sealed_process_imports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regular module or package anywhere on the search path comes before a namespace folder of its name ahead of it
    (the current folder's ``runs/`` under ``python -m``); a namespace package alone holds no code."""
    from simulator.plugins import PLUGIN_PATH_ENV, code_of

    ws, plug = tmp_path / "ws", tmp_path / "plug"
    for run in ("runs", "other"):
        (ws / run / "old").mkdir(parents=True)
        (ws / run / "old" / "truth.parquet").write_text("x")
    (plug / "pk" / "old").mkdir(parents=True)
    (plug / "runs.py").write_text("X = 1\n")
    (plug / "pk" / "old" / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(ws))
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plug))
    assert code_of("runs") == str(plug / "runs.py")
    assert code_of("runs.old") == str(plug / "runs.py")  # the module the import finds (runs.old then fails: no package)
    assert code_of("other") is None and code_of("other.old") is None  # namespace folders alone: no code
    assert code_of("pk.old") == str(plug / "pk" / "old")
    assert code_of("nowhere") is None


def test_a_plugins_fingerprint_covers_every_plugin_folder_and_a_huge_one_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red teams' one-file plugins imported a helper beside it, a module of a folder with no ``__init__.py`` (a namespace
    package) and a module of a second ``--plugin-path`` folder; each helper changed and the stale alerts were reused.
    Code in a plugin folder may import anything in any of them, so every file of every one counts. Another's package held
    a 1 TiB sparse file, read whole: the bench ran out of memory."""
    from breachbench.reuse import detector_fingerprint
    from simulator.plugins import PLUGIN_PATH_ENV

    plug, other, big = tmp_path / "plug", tmp_path / "other", tmp_path / "big"
    for folder in (plug / "helpers" / "inner", plug / "loose", other, big / "bigpkg"):
        folder.mkdir(parents=True)
    (plug / "stale.py").write_text("from stalehelper import MODE\nfrom helpers.inner.deep import KIND\n")
    (plug / "stalehelper.py").write_text('MODE = "A"\n')
    for name in ("helpers/__init__.py", "helpers/inner/__init__.py"):
        (plug / name).write_text("")
    (plug / "helpers" / "inner" / "deep.py").write_text('KIND = "A"\n')
    (plug / "loose" / "knob.py").write_text("K = 1\n")  # loose.knob: a namespace package's module
    (other / "knob2.py").write_text("K = 1\n")
    (big / "bigpkg" / "__init__.py").write_text("X = 1\n")
    with open(big / "bigpkg" / "weights.bin", "wb") as f:
        f.truncate(1 << 40)  # sparse: no disk
    monkeypatch.setenv(PLUGIN_PATH_ENV, os.pathsep.join([str(plug), str(other)]))
    prints = [detector_fingerprint("stale:X"), detector_fingerprint("helpers:X")]
    assert prints[0] != prints[1]  # the id and target count too
    edits = [
        (plug / "stalehelper.py", 'MODE = "B"\n'),
        (plug / "helpers" / "inner" / "deep.py", 'KIND = "B"\n'),
        (plug / "loose" / "knob.py", "K = 2\n"),
        (other / "knob2.py", "K = 2\n"),
    ]
    for path, text in edits:
        path.write_text(text)
        now = [detector_fingerprint("stale:X"), detector_fingerprint("helpers:X")]
        assert None not in now and not set(now) & set(prints), (path, now)
        prints += now
    # a compiled file that Python runs in place of its source (a red team's, stamped with the source's time and size),
    # beside the module or in a package
    tag = sys.implementation.cache_tag
    for pyc in (plug / "__pycache__" / f"stale.{tag}.pyc", plug / "helpers" / "inner" / "__pycache__" / f"deep.{tag}.pyc"):
        pyc.parent.mkdir()
        pyc.write_bytes(b"A")
        now = [detector_fingerprint("stale:X"), detector_fingerprint("helpers:X")]
        assert None not in now and not set(now) & set(prints), (pyc, now)
        prints += now
    # past MAX_SOURCE_BYTES: not fingerprinted, so run again, nor any detector of a plugin folder beside it
    monkeypatch.setenv(PLUGIN_PATH_ENV, os.pathsep.join([str(plug), str(big)]))
    assert detector_fingerprint("bigpkg:X") is None and detector_fingerprint("stale:X") is None


def test_a_module_outside_the_plugin_folders_counts_the_files_beside_it_and_not_the_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-file detector on the import path (a project's root): the files beside it count, its folders do not (the
    project's runs/, every earlier run's files)."""
    from breachbench.reuse import detector_fingerprint

    (tmp_path / "runs").mkdir()
    (tmp_path / "rootdet.py").write_text("from roothelper import X\n")
    (tmp_path / "roothelper.py").write_text("X = 1\n")
    (tmp_path / "runs" / "results.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    a = detector_fingerprint("rootdet:D")
    (tmp_path / "runs" / "results.json").write_text('{"another": "run"}')
    assert a is not None and detector_fingerprint("rootdet:D") == a
    (tmp_path / "roothelper.py").write_text("X = 2\n")
    assert detector_fingerprint("rootdet:D") not in (None, a)


def test_the_bench_finds_its_own_code_through_an_import_hook(tmp_path: Path) -> None:
    """Run as the console script, the import path holds no checkout: an editable install maps the bench's packages to it
    with an import hook. The built-ins had no code found, so no fingerprint, and ``make run`` ran them all again."""
    code = (
        "from simulator.plugins import code_of; from breachbench.reuse import detector_fingerprint; "
        "print(code_of('detectors.rules')); print(detector_fingerprint('null'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -P: nothing before the import path (not the current folder); run from a folder that holds no checkout
    out = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    where, fingerprint = out.stdout.split()
    assert Path(where) == ROOT / "detectors" and fingerprint != "None", out.stdout


def test_a_plugin_folder_whose_path_holds_the_path_separator_is_refused(tmp_path: Path) -> None:
    """The folders travel joined by os.pathsep: a red team's "acme:runs" became "acme" and "runs", the second granted
    as the bench's ./runs (another run's truth), and scored as the oracle."""
    from typer.testing import CliRunner

    from breachbench.cli import app

    odd = tmp_path / f"acme{os.pathsep}runs"
    odd.mkdir()
    res = CliRunner().invoke(app, ["detectors", "check", "null", "--plugin-path", str(odd)])
    flat = "".join(res.output.replace("│", "").split())  # the message in typer's box, wrapped at any width
    assert res.exit_code == 2 and "movetheplugintoafolderwithoutit" in flat, res.output


def test_a_plugin_folder_is_searched_only_in_the_slot_of_a_detector_it_holds(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red team's plugin folder held a ``cython.py``; scipy's optional ``import cython`` found it in ``iforest-v1``'s
    sealed slot, where it negated the built-in's scores (and in another run exited, an ERROR row). A slot searches
    only the plugin folder that holds its own detector's module: a module an honest detector merely tries for (here
    ``bb_optional_extra``) is found in no other folder, whether the detector is on the import path or in a folder."""
    from breachbench.isolation import plugin_folders_of, run_isolated
    from simulator.plugins import PLUGIN_PATH_ENV

    hostile, mine = tmp_path / "hostile", tmp_path / "mine"
    for folder in (hostile, mine):
        folder.mkdir()
    (hostile / "bb_optional_extra.py").write_text("raise SystemExit('a plugin folder module ran in another slot')\n")
    (mine / "minedet.py").write_text("from bad_detectors import OptionalImport\n\n\nclass Det(OptionalImport):\n    pass\n")
    monkeypatch.setenv(PLUGIN_PATH_ENV, os.pathsep.join([str(hostile), str(mine)]))
    assert plugin_folders_of("unissued-token-v1") == () and plugin_folders_of("bad_detectors:OptionalImport") == ()
    assert plugin_folders_of("minedet:Det") == (str(mine),) and plugin_folders_of("nowhere:Det") == ()
    clean = run_isolated("unissued-token-v1", tiny_dataset, timeout_s=120, memory_mb=1024)
    assert clean.status == "OK", clean.error
    for det in ("bad_detectors:OptionalImport", "minedet:Det"):
        r = run_isolated(det, tiny_dataset, timeout_s=120, memory_mb=1024)
        assert r.status == "OK", (det, r.error)
        assert r.alerts.equals(clean.alerts), det


def test_a_plugins_fingerprint_changes_when_a_file_moves_or_a_link_points_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red team moved a helper out of a subfolder and pointed a link in the plugin folder at another file: the slot
    imported other code, and the fingerprint, which named files from the first file's folder and skipped links, stayed,
    so the stale alerts were reused. Another's two folders hashed alike: one file's bytes held the next file's name."""
    from breachbench.reuse import detector_fingerprint
    from simulator.plugins import PLUGIN_PATH_ENV

    plug = tmp_path / "plug"
    (plug / "aa").mkdir(parents=True)
    (plug / "movedet.py").write_text("import helper\nimport linked\n")
    (plug / "aa" / "helper.py").write_text("H = 1\n")
    (plug / "zz_a.py").write_text("W = 'A'\n")
    (plug / "zz_b.py").write_text("W = 'B'\n")
    (plug / "linked.py").symlink_to("zz_a.py")
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plug))
    seen = [detector_fingerprint("movedet:D")]
    (plug / "aa" / "helper.py").rename(plug / "helper.py")  # same bytes, another folder
    seen.append(detector_fingerprint("movedet:D"))
    (plug / "linked.py").unlink()
    (plug / "linked.py").symlink_to("zz_b.py")  # the link points elsewhere
    seen.append(detector_fingerprint("movedet:D"))
    assert None not in seen and len(set(seen)) == 3, seen
    prints = []
    for name, files in (("a", {"p.txt": b"A", "q.txt": b"B"}), ("b", {"p.txt": b"Aq.txt\0B"})):
        pkg = tmp_path / name / "fpdet"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("X = 1\n")
        for f, data in files.items():
            (pkg / f).write_bytes(data)
        monkeypatch.setenv(PLUGIN_PATH_ENV, str(tmp_path / name))
        prints.append(detector_fingerprint("fpdet:D"))
    assert None not in prints and prints[0] != prints[1], prints
