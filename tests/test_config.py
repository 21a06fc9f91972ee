"""Config loading: --set overrides, one-line ConfigError messages, frozen models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydantic
import pytest

from breachbench.config import BenchConfig, ConfigError, apply_override, load_config

# ---- --set overrides ------------------------------------------------------------------------


def test_defaults_of_tiny(tiny_config) -> None:
    assert tiny_config.name == "tiny"
    assert tiny_config.world.customers == 4000
    assert tiny_config.time.days == 28
    assert tiny_config.scenarios[0].id == "coupang-forged-token-v3"


def test_set_nested_int(tiny_config_path: Path) -> None:
    cfg = load_config(tiny_config_path, ["world.customers=5000", "traffic.foreign_share=0.01"])
    assert cfg.world.customers == 5000 and isinstance(cfg.world.customers, int)
    assert cfg.traffic.foreign_share == pytest.approx(0.01)
    # untouched keys keep the file's values
    assert cfg.world.employees == 200


def test_set_list_index(tiny_config_path: Path) -> None:
    cfg = load_config(tiny_config_path, ["scenarios.0.knobs.daily_share=0.01", "scenarios.0.knobs.probe_days=2"])
    knobs = cfg.scenarios[0].knobs
    assert knobs["daily_share"] == pytest.approx(0.01)
    assert knobs["probe_days"] == 2
    assert knobs["start_offset"] == 2  # from the file


def test_set_creates_missing_table(tiny_config_path: Path) -> None:
    cfg = load_config(tiny_config_path, ["detection.cost_profile=low_misses", "world.block_size=1000"])
    assert cfg.detection.cost_profile == "low_misses"
    assert cfg.world.block_size == 1000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3),
        ("2.5", 2.5),
        ("true", True),
        ("2025-05-01", dt.date(2025, 5, 1)),
        ('"quoted"', "quoted"),
        ("bare-word", "bare-word"),
        ('["null", "random"]', ["null", "random"]),
        ("{ ko_KR = 0.5, en_US = 0.5 }", {"ko_KR": 0.5, "en_US": 0.5}),
    ],
)
def test_set_parses_toml_values(raw: str, expected: object) -> None:
    data: dict = {}
    apply_override(data, f"a.b={raw}")
    assert data == {"a": {"b": expected}}
    assert type(data["a"]["b"]) is type(expected)


def test_set_toml_values_reach_the_config(tiny_config_path: Path) -> None:
    cfg = load_config(
        tiny_config_path,
        ['detection.detectors=["null", "random"]', "time.end=2025-04-20", "world.locales={ ko_KR = 0.5, en_US = 0.5 }"],
    )
    assert cfg.detection.detectors == ["null", "random"]
    assert cfg.time.end == dt.date(2025, 4, 20) and cfg.time.days == 19
    assert cfg.world.locales == {"ko_KR": 0.5, "en_US": 0.5}


@pytest.mark.parametrize(
    ("assignment", "needle"),
    [
        ("world.customers", "expected dotted.key=value"),
        ("world..customers=3", "empty key segment"),
        ("scenarios.3.id=x", "out of range"),
        ("scenarios.x.id=x", "out of range"),
        ("seed.x=1", "is a value, not a table"),
    ],
)
def test_set_malformed(tiny_config_path: Path, assignment: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tiny_config_path, [assignment])
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg


# ---- ConfigError messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "must_name"),
    [
        pytest.param("world.colour=3", ["world.colour", "unknown key", "3"], id="unknown-key"),
        pytest.param("colour=3", ["colour", "unknown key"], id="unknown-top-key"),
        pytest.param("world.customers=many", ["world.customers", "'many'", "integer"], id="wrong-type"),
        pytest.param("time.warmup_days=[1]", ["time.warmup_days", "[1]"], id="wrong-type-list"),
        pytest.param("world.customers=-5", ["world.customers", "-5", "greater than 0"], id="negative-size"),
        pytest.param("world.employees=0", ["world.employees", "0", "greater than 0"], id="zero-size"),
        pytest.param("time.end=2025-03-01", ["time", "end=2025-03-01", "start=2025-04-01"], id="end-before-start"),
        pytest.param("world.locales={ xx_YY = 1.0 }", ["world.locales", "xx_YY", "ko_KR"], id="unknown-locale"),
        pytest.param("time.timezone=Mars/Olympus", ["time.timezone", "Mars/Olympus", "Asia/Seoul"], id="unknown-tz"),
        pytest.param(
            "scenarios.0.id=no-such-scenario-v1",
            ["scenarios.0.id", "no-such-scenario-v1", "coupang-forged-token-v3"],
            id="unknown-scenario",
        ),
        pytest.param(
            "scenarios.0.knobs.daily_share=2", ["scenarios.0.knobs.daily_share", "2", "less than or equal to 1"], id="knob-range"
        ),
        pytest.param("scenarios.0.knobs.probe_days=many", ["scenarios.0.knobs.probe_days", "'many'"], id="knob-type"),
        pytest.param("scenarios.0.knobs.colour=1", ["scenarios.0.knobs.colour", "unknown key"], id="knob-unknown"),
    ],
)
def test_config_error_names_file_field_value(tiny_config_path: Path, override: str, must_name: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tiny_config_path, [override])
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert msg.startswith(str(tiny_config_path)), msg
    for needle in must_name:
        assert needle in msg, f"{needle!r} not in {msg!r}"


def test_config_error_from_file_content(tmp_path: Path, tiny_config_path: Path) -> None:
    text = tiny_config_path.read_text().replace("customers = 4000", "customers = -4000")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(bad) in msg and "world.customers" in msg and "-4000" in msg


def test_config_error_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_config_error_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[world\ncustomers = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(bad) in str(info.value) and "TOML" in str(info.value)


def test_config_error_is_value_error() -> None:
    # callers that catch ValueError still see config errors
    assert issubclass(ConfigError, ValueError)


# ---- frozen ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "attr", "value"),
    [
        ((), "seed", 8),
        (("world",), "customers", 5),
        (("time",), "start", dt.date(2025, 1, 1)),
        (("traffic",), "foreign_share", 0.5),
        (("detection",), "budget", 3),
    ],
)
def test_frozen_models_reject_mutation(tiny_config, path: tuple[str, ...], attr: str, value: object) -> None:
    obj = tiny_config
    for p in path:
        obj = getattr(obj, p)
    before = getattr(obj, attr)
    with pytest.raises(pydantic.ValidationError):
        setattr(obj, attr, value)
    assert getattr(obj, attr) == before


def test_scenario_spec_frozen(tiny_config) -> None:
    with pytest.raises(pydantic.ValidationError):
        tiny_config.scenarios[0].id = "other-v1"


def test_models_forbid_extra_keys() -> None:
    with pytest.raises(pydantic.ValidationError):
        BenchConfig(bogus=1)


def test_sim_part_drops_bench_sections(tiny_config) -> None:
    sim = tiny_config.sim()
    assert not hasattr(sim, "detection")
    assert sim.world == tiny_config.world and sim.seed == tiny_config.seed
