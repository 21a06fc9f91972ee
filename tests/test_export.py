"""OCSF and ECS export: every event validates against the shipped schema, row counts per stream
and day equal the dataset's, ids above 2^53 survive JSON readers that use doubles.

Every one of the tiny dataset's ~860k events is checked with a compiled validator in Rust
(jsonschema-rs, formats on) after orjson parses it: ten times faster here than fastjsonschema after
``json.loads``. Both validators, and the reference implementation (jsonschema), must reject each
broken event below, so the fast one is shown able to fail.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from breachbench.interop.export import MANIFEST, export_dataset, validator
from breachbench.interop.mapping import MappingError, load_mapping

fastjsonschema = pytest.importorskip("fastjsonschema", reason="the siem extra is not installed")
jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="the test extra is not installed")
orjson = pytest.importorskip("orjson", reason="the test extra is not installed")

FORMATS = ("ocsf", "ecs")


@pytest.fixture(scope="module")
def exported(tiny_export: Callable[[str, str], Path]) -> dict[str, Path]:
    """The tiny dataset exported as NDJSON in both formats, truth included (the session's exports)."""
    return {fmt: tiny_export(fmt, "ndjson") for fmt in FORMATS}


def _dataset_rows(dataset: Path) -> Counter:
    """(stream, day) -> rows, from the dataset's own manifest."""
    m = json.loads((dataset / "manifest.json").read_text())
    out: Counter = Counter()
    for f in m["files"]:
        parts = f["path"].split("/")
        if parts[0] == "logs":
            out[(parts[1], parts[2].removeprefix("date="))] += f["rows"]
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_per_stream_and_day_equal_the_dataset(exported: dict[str, Path], tiny_dataset: Path, fmt: str) -> None:
    root = exported[fmt]
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["format"] == fmt and manifest["mapping_version"] == 1
    want = _dataset_rows(tiny_dataset)
    got = Counter({(f["stream"], f["day"]): f["rows"] for f in manifest["files"]})
    assert got == want
    for f in manifest["files"]:  # the manifest's counts are the files' lines
        assert len(_lines(root / f["path"])) == f["rows"], f["path"]
    assert {t["table"] for t in manifest["truth"]} >= {"incidents", "malicious_events"}


def _fast_validator(fmt: str) -> Any:
    """The format's schema compiled by jsonschema-rs, with format checks (ipv4, date-time, ...)."""
    return jsonschema_rs.validator_for(load_mapping(fmt).schema(), validate_formats=True)


def _validate_all(root: Path, fmt: str, days: Callable[[str], bool]) -> int:
    """Validate every event of the days ``days`` accepts (compiled validator); returns how many."""
    check = _fast_validator(fmt)
    n = 0
    for f in json.loads((root / MANIFEST).read_text())["files"]:
        if not days(f["day"]):
            continue
        lines = _lines(root / f["path"])
        bad = next((i for i, line in enumerate(lines) if not check.is_valid(orjson.loads(line))), None)
        if bad is not None:
            errors = [e.message for e in check.iter_errors(orjson.loads(lines[bad]))]
            pytest.fail(f"{f['path']}:{bad + 1}: {errors}")
        n += len(lines)
    return n


def _days_with_attack(dataset: Path) -> set[str]:
    """Delivery days of the first malicious events, plus the first day (a warm-up day)."""
    mal = pl.read_parquet(dataset / "truth" / "malicious_events.parquet")
    first = mal["ts"].min()
    start = json.loads((dataset / "manifest.json").read_text())["config"]["time"]["start"]
    return {first.date().isoformat(), str(start)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_event_of_the_attack_days_validates(exported: dict[str, Path], tiny_dataset: Path, fmt: str) -> None:
    """Every event of two days of every stream (the attack's first day and the first day), compiled validator."""
    days = _days_with_attack(tiny_dataset)
    assert _validate_all(exported[fmt], fmt, days.__contains__) > 20_000


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_event_of_the_other_days_validates(exported: dict[str, Path], tiny_dataset: Path, fmt: str) -> None:
    """Every event of the other days: with the test above, all ~860k events of the tiny dataset (15 to 30 s a format here)."""
    days = _days_with_attack(tiny_dataset)
    others = sum(n for (_stream, day), n in _dataset_rows(tiny_dataset).items() if day not in days)
    assert _validate_all(exported[fmt], fmt, lambda day: day not in days) == others


@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_validator_agrees_on_a_sample(exported: dict[str, Path], fmt: str) -> None:
    """The reference implementation (jsonschema, with ip and date-time format checks) on 200 events a stream."""
    v = validator(load_mapping(fmt))
    root = exported[fmt]
    files = json.loads((root / MANIFEST).read_text())["files"]
    for stream in ("gateway", "auth", "admin", "hr"):
        lines = [ln for f in files if f["stream"] == stream for ln in _lines(root / f["path"])[:20]][:200]
        assert lines
        for line in lines:
            errors = [e.message for e in v.iter_errors(json.loads(line))]
            assert not errors, (stream, errors, line)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("breakage", ["bad_ip", "missing_required", "unknown_field", "number_id"])
def test_schema_rejects_broken_events(exported: dict[str, Path], fmt: str, breakage: str) -> None:
    """The schemas can fail: a bad address, a missing required field, an unknown field, an id as a number."""
    root = exported[fmt]
    ev = json.loads(_lines(root / "gateway" / sorted(p.name for p in (root / "gateway").iterdir())[3])[0])
    if breakage == "bad_ip":
        (ev["src_endpoint"] if fmt == "ocsf" else ev["source"])["ip"] = "999.1.1.1"
    elif breakage == "missing_required":
        del ev["metadata" if fmt == "ocsf" else "event"]
    elif breakage == "unknown_field":
        ev["surprise"] = 1
    else:
        (ev["metadata"] if fmt == "ocsf" else ev["event"])["uid" if fmt == "ocsf" else "id"] = 3 << 60
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        fastjsonschema.compile(load_mapping(fmt).schema())(ev)
    assert list(validator(load_mapping(fmt)).iter_errors(ev))
    assert not _fast_validator(fmt).is_valid(ev)


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_above_2_53_survive_a_json_reader_that_uses_doubles(exported: dict[str, Path], tiny_dataset: Path, fmt: str) -> None:
    root = exported[fmt]
    f = json.loads((root / MANIFEST).read_text())["files"][0]
    source = pl.read_parquet(sorted((tiny_dataset / "logs" / f["stream"] / f"date={f['day']}").glob("*.parquet")))
    ids = set(source["event_id"].to_list())
    assert max(ids) > 2**53 and float(max(ids)) != max(ids)  # a double would corrupt them
    for line in _lines(root / f["path"])[:500]:
        ev = json.loads(line, parse_int=float, parse_float=float)  # as JavaScript or jq read numbers
        uid = ev["metadata"]["uid"] if fmt == "ocsf" else ev["event"]["id"]
        assert isinstance(uid, str) and int(uid) in ids
    truth = _lines(root / "truth" / "malicious_events.ndjson")[0]
    row = json.loads(truth, parse_int=float)
    assert row["breachbench_truth"] is True and int(row["event_id"]) > 2**53


def test_parquet_output_keeps_the_structure(tiny_export: Callable[[str, str], Path]) -> None:
    root = tiny_export("ocsf", "parquet")
    m = json.loads((root / MANIFEST).read_text())
    f = next(f for f in m["files"] if f["stream"] == "admin")
    df = pl.read_parquet(root / f["path"])
    assert df.height == f["rows"] and df.schema["metadata"].to_schema()["uid"] == pl.String  # type: ignore[union-attr]
    assert set(df["class_uid"].unique()) == {6005}


def test_unknown_format_names_the_accepted_ones(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="ocsf, ecs"):
        export_dataset(tiny_dataset, tmp_path, "cef")


def test_cli_export(tiny_dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from breachbench.cli import app

    r = CliRunner().invoke(app, ["export", str(tiny_dataset), "--format", "ecs", "--out", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    assert "events in" in r.output and (tmp_path / "e" / MANIFEST).is_file()
    r = CliRunner().invoke(app, ["export", str(tiny_dataset), "--format", "ecs", "--out", str(tmp_path / "f"), "--as", "csv"])
    assert r.exit_code == 2 and "ndjson, parquet" in r.output
