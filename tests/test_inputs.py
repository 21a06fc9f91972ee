"""Validate before work: hostile configs, ``--set`` values and alert files get one line and exit 2, never a traceback.

The Hypothesis properties are bounded (``max_examples``) and run in process, so they stay fast.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from breachbench.cli import app
from breachbench.config import ConfigError, load_config
from detectors.contract import AlertsError, validate_alerts

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs" / "tiny.toml"
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NUMERIC_KEYS = [
    "world.customers",
    "world.employees",
    "world.signup_growth",
    "world.block_size",
    "time.warmup_days",
    "traffic.daily_active_fraction",
    "traffic.pages_per_session",
    "logs.missing_rate",
    "detection.budget",
    "detection.timeout_s",
    "detection.memory_mb",
    "suite.bootstrap",
    "scenarios.0.knobs.daily_share",
    "scenarios.0.knobs.start_offset",
    "scenarios.0.count",
    "seed",
]
HOSTILE = st.one_of(
    st.sampled_from(
        [
            "inf",
            "-inf",
            "nan",
            "+inf",
            "true",
            "false",
            "1e12",
            "-1",
            "0",
            "1e400",
            "''",
            "[]",
            "{}",
            "[1, 2]",
            "{ a = 1 }",
            "2025-04-01",
            '"\\u0000"',
            "9223372036854775808",
            "1.5",
        ]
    ),
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def _one_line(text: str) -> bool:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return len(lines) == 1 and "Traceback" not in text


def _finite_numbers(obj: object) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite_numbers(v) for v in obj)
    return True


@FUZZ
@given(key=st.sampled_from(NUMERIC_KEYS), value=HOSTILE)
def test_set_values_are_accepted_only_when_sound(key: str, value: str) -> None:
    try:
        cfg = load_config(TINY, [f"{key}={value}"])
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(TINY)), str(exc)
        return
    node = cfg.model_dump()
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert not isinstance(node, bool) and _finite_numbers(node), (key, value, node)
    if key == "scenarios.0.knobs.daily_share":
        assert isinstance(node, int | float) or node is None


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))), raw=st.booleans())
def test_config_files_never_traceback(tmp_path_factory: pytest.TempPathFactory, text: str, raw: bool) -> None:
    p = tmp_path_factory.mktemp("cfg") / "c.toml"
    if raw:
        p.write_bytes(text.encode("latin-1", errors="replace"))
    else:
        p.write_text(text, encoding="utf-8", errors="replace")
    try:
        load_config(p)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(NUMERIC_KEYS[:8]), value=st.sampled_from(["inf", "nan", "true", "-1", "1e400", "[]", "'x'"]))
def test_cli_rejects_with_one_line_and_leaves_nothing(tmp_path_factory: pytest.TempPathFactory, key: str, value: str) -> None:
    try:
        load_config(TINY, [f"{key}={value}"])
        return  # a sound value: not what this property is about
    except ConfigError:
        pass
    base = tmp_path_factory.mktemp("out")
    res = CliRunner().invoke(app, ["generate", str(TINY), "--out", str(base / "ds"), "--set", f"{key}={value}"])
    assert res.exit_code == 2, res.output
    assert _one_line(res.output), res.output
    assert list(base.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["world.customers=true"], "a boolean where a number"),
        (["world.signup_growth=inf"], "not a finite number"),
        (["traffic.pages_per_session=nan"], "not a finite number"),
        (["scenarios.0.knobs.daily_share=true"], "a boolean where a number"),
        (['scenarios=[{id = "coupang-forged-token-v3"}, {id = "coupang-forged-token-v3"}]'], "repeats scenarios.0"),
    ],
)
def test_silent_coercions_are_refused(overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(TINY, overrides)


def test_absurd_world_is_refused_before_work(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["generate", str(TINY), "--out", str(tmp_path / "ds"), "--set", "world.customers=1e12"])
    assert res.exit_code == 2 and _one_line(res.output) and "GiB free" in res.output and "customers fit there" in res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # /proc takes no new files, whoever asks (root included): the error names the folder, not a lock file
        (["run", "{tiny}", "--out", "/proc/breachbench-out"], "cannot write into /proc"),
        (["generate", "{tiny}", "--out", "/proc/breachbench-out"], "not even the staff's logs fit"),  # not "0.0 GiB"
        (["export", "{dataset}", "--format", "ocsf", "--out", "{file}"], "is a file"),  # was a FileExistsError traceback
        (["export", "{dataset}", "--format", "ocsf", "--out", "{file}/x"], "is a file"),
        (["run", "{dataset}", "--out", "{file}"], "is a file"),
        (["score", "{dataset}", "{dataset}"], "a folder; give the alerts' Parquet file"),  # said "file not found"
        # refused before the audit's minutes (it was a traceback after them)
        (["scenarios", "audit", "snooping-agent-v2", "--json", "{file}/audit.json"], "--json"),
    ],
)
def test_an_output_or_input_path_of_the_wrong_kind_is_one_clear_line(
    args: list[str], needle: str, tiny_dataset: Path, tmp_path: Path
) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    names = {"tiny": str(TINY), "dataset": str(tiny_dataset), "file": str(afile)}
    res = CliRunner().invoke(app, [a.format(**names) for a in args])
    assert res.exit_code == 2 and _one_line(res.output) and "Traceback" not in res.output, res.output
    assert needle in res.output and "lock" not in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] and afile.read_text() == "x"  # nothing written


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "-x"])
def test_a_run_name_that_is_no_plain_folder_name_is_refused(name: str, tmp_path: Path) -> None:
    """A red team's config named ".." ran into runs/.., the current folder, and wrote a whole run over it."""
    from breachbench.cli import _run_out
    from simulator.errors import SimulationError

    with pytest.raises(ConfigError, match=r"name"):
        load_config(TINY, [f"name={name!r}"])
    if name in (".", ".."):  # a name from elsewhere (a dataset folder's) gets the same refusal without --out
        with pytest.raises(SimulationError, match="give --out"):
            _run_out(None, name)
    assert _run_out(tmp_path / "x", name) == tmp_path / "x"


def test_a_config_nested_past_the_parser_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(deep)


def test_unknown_detector_is_refused_before_the_first_dataset(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(TINY), "--out", str(tmp_path / "run"), "--set", 'detection.detectors=["nope-v9"]'])
    assert res.exit_code == 2 and _one_line(res.output) and "'nope-v9'" in res.output, res.output
    assert not (tmp_path / "run" / "dataset").exists()


@pytest.mark.parametrize("target", ["config", "dataset"])
def test_a_detectors_id_that_is_no_file_name_is_refused_before_work(target: str, tiny_dataset: Path, tmp_path: Path) -> None:
    """An id names its alerts file: a red team's ``--detectors 'json:x/../../../escaped'`` on a dataset folder ran every
    detector, then failed writing outside --out (with no results.json)."""
    source = str(TINY) if target == "config" else str(tiny_dataset)
    res = CliRunner().invoke(app, ["run", source, "--out", str(tmp_path / "run"), "--detectors", "json:x/../../../escaped"])
    assert res.exit_code == 2 and _one_line(res.output) and "is not a detector id" in res.output, res.output
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.parquet"))


# ---- alert files ---------------------------------------------------------------------------------

DAY = dt.date(2025, 4, 10)
SCORES = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4).map(
        lambda v: pl.Series("score", v, pl.Float64)
    ),
    st.lists(st.booleans(), min_size=1, max_size=4).map(lambda v: pl.Series("score", v)),
    st.lists(st.text(max_size=4), min_size=1, max_size=4).map(lambda v: pl.Series("score", v)),
    st.lists(st.integers(-5, 5), min_size=1, max_size=4).map(lambda v: pl.Series("score", v)),
)


@FUZZ
@given(
    scores=SCORES,
    bucket_kind=st.sampled_from(["date", "int", "str", "datetime"]),
    kind=st.sampled_from(["ip", "customer", "IP", "", "planet"]),
    dup=st.booleans(),
)
def test_alert_frames_are_valid_or_refused_in_one_line(scores: pl.Series, bucket_kind: str, kind: str, dup: bool) -> None:
    n = len(scores)
    bucket = {
        "date": pl.Series([DAY] * n),
        "int": pl.Series([20250410] * n),
        "str": pl.Series(["2025-04-10"] * n),
        "datetime": pl.Series([dt.datetime(2025, 4, 10)] * n),
    }[bucket_kind]
    ids = ["a"] * n if dup else [f"e{i}" for i in range(n)]
    frame = pl.DataFrame({"bucket": bucket, "entity_kind": [kind] * n, "entity_id": ids, "score": scores})
    try:
        out = validate_alerts(frame, source="f.parquet")
    except AlertsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("f.parquet: ")
        return
    assert out.schema["bucket"] == pl.Date and out.schema["score"] == pl.Float64
    assert out["score"].is_finite().all() and scores.dtype.is_numeric() and scores.dtype != pl.Boolean
    assert bucket_kind == "date" and kind in ("ip", "customer") and (not dup or n == 1)


def test_disk_full_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import simulator.engine

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ds" / "logs" / "x.parquet"))

    monkeypatch.setattr(simulator.engine, "generate", full)
    res = CliRunner().invoke(app, ["generate", str(TINY), "--out", str(tmp_path / "ds")])
    assert res.exit_code == 2 and _one_line(res.output), res.output
    assert "x.parquet: no space left on the device" in res.output and "MiB free" in res.output
    from breachbench.config import load_config
    from simulator.engine import estimated_bytes

    need = estimated_bytes(load_config(TINY).sim())
    assert f"need up to {need / 2**20:,.0f} MiB" in res.output  # the space this config's dataset takes, not a guess

    import breachbench.suite

    monkeypatch.setattr(breachbench.suite, "run_suite", full)
    res = CliRunner().invoke(app, ["run", str(TINY), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and _one_line(res.output), res.output
    assert f"need up to {breachbench.suite.grid_bytes(load_config(TINY)) / 2**20:,.0f} MiB" in res.output


def test_oversized_detector_output_is_refused_unread(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import breachbench.isolation as iso

    monkeypatch.setattr(iso, "MAX_ALERT_ROWS_PER_BUCKET", 10)
    r = iso.run_isolated("random", tiny_dataset, timeout_s=120, memory_mb=4096)
    assert r.status == "ERROR" and "more than the bench reads (10 per scored bucket)" in r.error, r.error
    assert r.alerts.height == 0


def test_a_grid_that_cannot_fit_is_refused_before_the_first_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**20, 9 * 2**20, 2**20))  # 1 MiB free
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(TINY), "--out", str(out)])
    assert res.exit_code == 2 and _one_line(res.output), res.output
    assert "suite: 1 dataset(s) to generate" in res.output and "1 MiB free" in res.output  # not "0.0 GiB"
    assert not (out / "dataset").exists() and not list(out.glob("datasets/*"))  # nothing generated
