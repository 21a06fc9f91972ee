"""The command line, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "breachbench", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the process failed with a single non-empty stderr line and no traceback; return it."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ---- help and listings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["generate"], ["run"], ["score"], ["detectors"], ["detectors", "list"], ["scenarios"], ["scenarios", "list"]],
    ids=lambda c: " ".join(c) or "main",
)
def test_help(command: list[str]) -> None:
    proc = cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_main_help_lists_commands() -> None:
    out = cli("--help").stdout
    for name in ("generate", "run", "score", "detectors", "scenarios"):
        assert name in out


def test_generate_help_lists_options() -> None:
    out = cli("generate", "--help").stdout
    for opt in ("--out", "--workers", "--executor", "--scheduler", "--set", "--force", "--only"):
        assert opt in out


def test_detectors_list() -> None:
    proc = cli("detectors", "list")
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"null", "random", "unissued-token-v1", "iforest-v1"} <= names
    assert "detectors.builtin:UnissuedTokenRule" in proc.stdout


def test_scenarios_list() -> None:
    proc = cli("scenarios", "list")
    assert proc.returncode == 0, proc.stderr
    assert "coupang-forged-token-v3" in proc.stdout
    for knob in ("start_offset", "probe_days", "daily_share", "ip_pool"):
        assert knob in proc.stdout, knob


# ---- generate with bad input ----------------------------------------------------------------


def _bad_config(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "configs" / "tiny.toml").read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        pytest.param("employees = 200", "employees = 200\ncolour = 3", ["world.colour", "unknown key"], id="unknown-key"),
        pytest.param("customers = 4000", 'customers = "lots"', ["world.customers", "'lots'"], id="wrong-type"),
        pytest.param("customers = 4000", "customers = -4000", ["world.customers", "-4000"], id="negative-size"),
        pytest.param(
            "end = 2025-04-29", "end = 2025-03-29", ["time", "end=2025-03-29", "start=2025-04-01"], id="end-before-start"
        ),
        pytest.param('timezone = "Asia/Seoul"', 'timezone = "Asia/Atlantis"', ["time.timezone", "Asia/Atlantis"], id="bad-tz"),
        pytest.param("daily_share = 0.0072", "daily_share = 7", ["scenarios.0.knobs.daily_share", "7"], id="bad-knob"),
    ],
)
def test_generate_bad_config(tmp_path: Path, old: str, new: str, needles: list[str]) -> None:
    cfg = _bad_config(tmp_path, old, new)
    out = tmp_path / "out"
    line = one_line_error(cli("generate", cfg, "--out", out))
    assert str(cfg) in line
    for needle in needles:
        assert needle in line, (needle, line)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_generate_missing_config(tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "missing.toml"
    line = one_line_error(cli("generate", missing, "--out", out))
    assert str(missing) in line and "not found" in line
    assert not out.exists()


def test_generate_bad_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = one_line_error(cli("generate", REPO / "configs" / "tiny.toml", "--out", out, "--set", "world.customers=0"))
    assert "world.customers" in line and "0" in line
    assert not out.exists()


def test_generate_refuses_non_empty_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    line = one_line_error(cli("generate", REPO / "configs" / "tiny.toml", "--out", out, "--only", "world"))
    assert "--force" in line
    assert [p.name for p in out.iterdir()] == ["keep"]


def test_generate_world_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("generate", REPO / "configs" / "tiny.toml", "--out", out, "--only", "world")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["only"] == "world"
    assert not (out / "logs").exists()


# ---- score ----------------------------------------------------------------------------------

OVERALL = [
    "auprc",
    "recall_at_k",
    "ttd_median_buckets",
    "exposed_before_detection",
    "exposure_prevented",
    "false_alerts_per_bucket",
    "op_score",
]


@pytest.fixture(scope="module")
def rule_alerts(tiny_run_dir: Path, tiny_rows) -> Path:
    path = tiny_run_dir / "alerts" / "unissued-token-v1.parquet"
    assert path.is_file()
    return path


def test_score_json(tiny_dataset: Path, rule_alerts: Path, tiny_rows) -> None:
    proc = cli("score", tiny_dataset, rule_alerts, "--json")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])
    overall = result["overall"]
    for key in OVERALL:
        assert key in overall, key
    # the CLI scores exactly as the run did
    for key in OVERALL:
        assert (
            overall[key] == pytest.approx(tiny_rows["unissued-token-v1"][key])
            if overall[key] is not None
            else tiny_rows["unissued-token-v1"][key] is None
        )
    assert len(result["incidents"]) == 1


def test_score_budget_and_profile(tiny_dataset: Path, rule_alerts: Path) -> None:
    res = json.loads(cli("score", tiny_dataset, rule_alerts, "--json", "--budget", "1", "--profile", "low_misses").stdout)
    assert res["overall"]["budget"] == 1
    assert res["overall"]["op_score"] == pytest.approx(res["overall"]["op_score_profiles"]["low_misses"])
    line = one_line_error(cli("score", tiny_dataset, rule_alerts, "--profile", "cheap"))
    assert "cheap" in line and "standard" in line


def test_score_table(tiny_dataset: Path, rule_alerts: Path) -> None:
    proc = cli("score", tiny_dataset, rule_alerts)
    assert proc.returncode == 0, proc.stderr
    assert "op_score" in proc.stdout and "auprc" in proc.stdout


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        pytest.param(lambda df: df.drop("score"), ["missing column", "score"], id="missing-column"),
        pytest.param(
            lambda df: df.with_columns(entity_kind=pl.lit("planet")), ["unknown entity_kind", "'planet'"], id="unknown-kind"
        ),
        pytest.param(lambda df: pl.concat([df, df.head(1)]), ["duplicate alert unit"], id="duplicate"),
        pytest.param(lambda df: df.with_columns(score=pl.lit("high")), ["score"], id="string-score"),
    ],
)
def test_score_bad_alerts(tmp_path: Path, tiny_dataset: Path, rule_alerts: Path, mutate, needles: list[str]) -> None:
    bad = tmp_path / "bad.parquet"
    mutate(pl.read_parquet(rule_alerts)).write_parquet(bad)
    line = one_line_error(cli("score", tiny_dataset, bad, "--json"))
    assert line.startswith(f"error: {bad}")  # names the file at fault
    for needle in needles:
        assert needle in line, (needle, line)


def test_score_not_parquet(tmp_path: Path, tiny_dataset: Path) -> None:
    bad = tmp_path / "alerts.parquet"
    bad.write_text("bucket,entity_kind\n")
    line = one_line_error(cli("score", tiny_dataset, bad))
    assert str(bad) in line and "Parquet" in line


def test_score_a_crafted_alerts_file_is_one_line(tmp_path: Path, tiny_dataset: Path) -> None:
    """Alerts files with a few bytes changed (a red team's fuzzing): polars panicked on one in the bench's process, a
    traceback and exit 1; each is now one line and exit 2, read in the bench's sealed alerts reader. The files are
    found here the same way: the first of the seeded mutations that make polars panic, and one it refuses."""
    import datetime as dt
    import io
    import random

    import polars as pl

    base = io.BytesIO()
    n = 20
    pl.DataFrame(
        {
            "bucket": [dt.date(2025, 4, 10)] * n,
            "entity_kind": ["ip"] * n,
            "entity_id": [f"10.0.0.{i}" for i in range(n)],
            "score": [float(i) for i in range(n)],
            "reason": ["x" * i for i in range(n)],
        }
    ).write_parquet(base)
    rng, found = random.Random(1), {}
    for _ in range(20_000):
        b = bytearray(base.getvalue())
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            pl.read_parquet(io.BytesIO(bytes(b)))
        except Exception:
            found.setdefault("refused", bytes(b))
        except BaseException:  # a panic: pyo3's PanicException is no Exception
            found.setdefault("panic", bytes(b))
        if len(found) == 2:
            break
    assert "refused" in found
    for kind, data in found.items():
        bad = tmp_path / f"{kind}.parquet"
        bad.write_bytes(data)
        proc = cli("score", tiny_dataset, bad)
        line = one_line_error(proc)
        assert proc.returncode == 2 and str(bad) in line and "Parquet" in line, (kind, line)


def test_score_missing_alerts_and_dataset(tmp_path: Path, tiny_dataset: Path, rule_alerts: Path) -> None:
    line = one_line_error(cli("score", tiny_dataset, tmp_path / "none.parquet"))
    assert "none.parquet" in line and "not found" in line
    line = one_line_error(cli("score", tmp_path, rule_alerts))
    assert str(tmp_path) in line and "not a dataset" in line


# ---- the installed packages are ours ----------------------------------------------------------


def test_imported_packages_are_this_repo() -> None:
    import breachbench
    import detectors
    import simulator

    for mod in (simulator, detectors, breachbench):
        assert Path(mod.__file__).resolve().is_relative_to(REPO), mod.__file__


def test_installed_packages_are_this_repo_from_elsewhere(tmp_path: Path) -> None:
    code = "import simulator, detectors, breachbench; print(simulator.__file__); print(detectors.__file__); print(breachbench.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    files = proc.stdout.split()
    assert len(files) == 3
    for f in files:
        assert Path(f).resolve().is_relative_to(REPO), f


def test_public_import_path_reexports_contract() -> None:
    import breachbench
    from detectors.contract import validate_alerts

    assert breachbench.validate_alerts is validate_alerts
    with pytest.raises(AttributeError):
        breachbench.no_such_name  # noqa: B018


def test_an_error_from_a_library_is_printed_on_one_line() -> None:
    """polars (1.36, for one) puts the stack of its query's operators after the message; the CLI prints the message alone."""
    from breachbench.cli import _one_line

    text = "a.parquet: cannot be read as Parquet: parquet: File out of specification: The file must end with PAR1"
    raw = f"{text}\n\nThis error occurred with the following context stack:\n        [1] 'parquet scan'\n        [2] 'sink'\n"
    assert _one_line(raw) == text
    assert _one_line("first\nsecond   third\n") == "first second third"


def test_run_on_a_dataset_runs_the_detectors_option_too(
    tiny_dataset: Path, tiny_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`breachbench run DATASET --detectors X` ran every registered detector and left X out, saying nothing; an unknown
    id is an error before anything runs; a secret on the command line is refused (any process can read it there)."""
    from typer.testing import CliRunner

    from breachbench.cli import app
    from breachbench.interop import dataset_run

    asked: list[list[str]] = []

    def fake(dataset: Path, out: Path, *, detectors: list[str], log: Any) -> dict[str, Any]:
        asked.append(detectors)
        return {"rows": [], "world_tables_absent": [], "labels": True}

    monkeypatch.setattr(dataset_run, "run_dataset", fake)
    r = CliRunner().invoke(app, ["run", str(tiny_dataset), "--out", str(tmp_path / "r"), "--detectors", "bad_detectors:Inverted"])
    assert r.exit_code == 0, r.output
    assert asked == [["*", "bad_detectors:Inverted"]]
    r = CliRunner().invoke(app, ["run", str(tiny_dataset), "--out", str(tmp_path / "r"), "--detectors", "no-such-v1"])
    assert r.exit_code != 0 and "unknown detector 'no-such-v1'" in r.output and len(asked) == 1
    r = CliRunner().invoke(app, ["run", str(tiny_config_path), "--set", "secret=" + "ab" * 32, "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "command line is readable" in " ".join(r.output.split()) and not (tmp_path / "s").exists()


def test_a_sitecustomize_on_pythonpath_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python runs a PYTHONPATH folder's sitecustomize as the bench starts, unsealed: the commands that run detectors
    name the folder and point to --plugin-path."""
    from typer.testing import CliRunner

    from breachbench.cli import app

    (tmp_path / "sitecustomize.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    r = CliRunner().invoke(app, ["detectors", "check", "no-such-v1"])
    text = " ".join(r.output.split())
    assert r.exit_code != 0 and f"PYTHONPATH folder {tmp_path} holds sitecustomize" in text and "--plugin-path" in text
    (tmp_path / "sitecustomize.py").unlink()
    r = CliRunner().invoke(app, ["detectors", "check", "no-such-v1"])
    assert "PYTHONPATH folder" not in r.output and "unknown detector 'no-such-v1'" in " ".join(r.output.split())
