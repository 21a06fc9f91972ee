"""Import of one's own logs: the export -> import round trip gives back the dataset, its alerts and scores;
flat CSV logs with generated ids import without world tables or labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from breachbench.dataset import Dataset
from breachbench.interop.export import export_dataset
from breachbench.interop.importer import import_logs
from breachbench.interop.mapping import MAPPINGS_DIR, MappingError
from breachbench.runner import run_detector
from breachbench.scoring import Truth, score_alerts
from detectors.registry import registry
from simulator.schema import LOG_STREAMS, TRUTH_TABLES

OCSF_IMPORT = MAPPINGS_DIR / "import-ocsf-1.3.0.toml"
BUILTINS = sorted(name for name, target in registry().items() if target.startswith("detectors."))
#: A few detectors for the fast round trip: the issuance rule, a world-table rule, the Sigma pack, a statistic.
FAST = ["unissued-token-v1", "rule-departed-owner-key-v1", "stat-sequential-sweep-v1", "rule-no-ticket-reads-v1"]


def _roundtrip(src: Path, export: Path, tmp: Path) -> Path:
    """Import the OCSF ``export`` of ``src`` (the session's, with truth) into ``tmp``, with ``src``'s world."""
    import_logs(OCSF_IMPORT, tmp / "imported", [export], world=src / "world", labels=export / "truth")
    return tmp / "imported"


@pytest.fixture(scope="module")
def parquet_roundtrip(tiny_dataset: Path, tiny_export: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset exported as OCSF Parquet (nested) and imported back with the example mapping."""
    return _roundtrip(tiny_dataset, tiny_export("ocsf", "parquet"), tmp_path_factory.mktemp("rt-parquet"))


@pytest.fixture(scope="module")
def ndjson_roundtrip(tiny_dataset: Path, tiny_export: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same through OCSF JSON lines (slower than Parquet: the import parses the JSON, ~230k events/s here)."""
    return _roundtrip(tiny_dataset, tiny_export("ocsf", "ndjson"), tmp_path_factory.mktemp("rt-ndjson"))


def test_ecs_roundtrip_gives_back_every_row(tiny_dataset: Path, tmp_path: Path) -> None:
    """The ECS example mapping, through ECS Parquet."""
    export_dataset(tiny_dataset, tmp_path / "export", "ecs", as_="parquet")
    import_logs(MAPPINGS_DIR / "import-ecs-8.11.toml", tmp_path / "imported", [tmp_path / "export"])
    for stream in LOG_STREAMS:
        assert _logs(tmp_path / "imported", stream).equals(_logs(tiny_dataset, stream)), stream


def _logs(root: Path, stream: str) -> pl.DataFrame:
    return Dataset.open(root).scan(stream).collect()


def test_roundtrip_gives_back_every_row_in_its_bucket(parquet_roundtrip: Path, tiny_dataset: Path) -> None:
    for stream in LOG_STREAMS:
        a, b = _logs(tiny_dataset, stream), _logs(parquet_roundtrip, stream)
        assert b.schema == a.schema and b.equals(a), stream  # same rows, same delivery buckets (late rows too), same order
    for table in TRUTH_TABLES:
        assert Dataset.open(parquet_roundtrip).truth(table).equals(Dataset.open(tiny_dataset).truth(table)), table
    a, b = Dataset.open(tiny_dataset), Dataset.open(parquet_roundtrip)
    assert (a.buckets, a.warmup, a.timezone) == (b.buckets, b.warmup, b.timezone)
    assert a.event_count(a.scored) == b.event_count(b.scored)


def _same_run(tiny_run_dir: Path, a: Dataset, b: Dataset, detector: str) -> None:
    """The detector's alerts on the imported dataset ``b`` (run here) equal those the session's tiny run
    wrote for the original ``a`` (the bench's sealed slot, in ``tiny_run_dir``), and so do their scores."""
    ra = pl.read_parquet(tiny_run_dir / "alerts" / f"{detector}.parquet")
    rb = run_detector(detector, b)
    assert rb.status == "OK", rb.error
    key = ["bucket", "entity_kind", "entity_id"]
    x, y = ra.sort(key), rb.alerts.sort(key)
    assert x.select(key, "reason").equals(y.select(key, "reason")), detector
    # equal scores; polars may sum a group in another order when the files are split differently, so the last bits may differ
    assert (x["score"] - y["score"]).abs().max() in (None, 0.0) or (x["score"] - y["score"]).abs().max() < 1e-9, detector
    sa, sb = score_alerts(ra, Truth.of(a), budget=10), score_alerts(rb.alerts, Truth.of(b), budget=10)
    assert sa["overall"] == sb["overall"], detector


@pytest.mark.parametrize("detector", FAST + ["sigma-pack-v1"])
def test_roundtrip_same_alerts_and_scores(
    parquet_roundtrip: Path, tiny_ds: Any, tiny_run: dict[str, Any], tiny_run_dir: Path, detector: str
) -> None:
    if detector not in BUILTINS:
        pytest.skip(f"{detector} is not registered")
    _same_run(tiny_run_dir, tiny_ds, Dataset.open(parquet_roundtrip), detector)


@pytest.mark.slow
@pytest.mark.parametrize("detector", BUILTINS)
def test_ndjson_roundtrip_same_alerts_and_scores_for_every_builtin(
    ndjson_roundtrip: Path, tiny_ds: Any, tiny_run: dict[str, Any], tiny_run_dir: Path, detector: str
) -> None:
    """Every built-in detector, through OCSF JSON lines (the original's alerts: the session's tiny run)."""
    _same_run(tiny_run_dir, tiny_ds, Dataset.open(ndjson_roundtrip), detector)


def test_cli_score_on_the_imported_dataset(parquet_roundtrip: Path, tiny_ds: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from breachbench.cli import app

    alerts = tmp_path / "a.parquet"
    run_detector("unissued-token-v1", Dataset.open(parquet_roundtrip)).alerts.write_parquet(alerts)
    r = CliRunner().invoke(app, ["score", str(parquet_roundtrip), str(alerts), "--json"])
    assert r.exit_code == 0, r.output
    s = CliRunner().invoke(app, ["score", str(tiny_ds.root), str(alerts), "--json"])
    assert json.loads(r.output)["overall"] == json.loads(s.output)["overall"]


CSV_MAPPING = """
[dataset]
timezone = "Asia/Seoul"
warmup_days = 2

[streams.admin]
where = { source = "crm" }
[streams.admin.columns]
ts = { path = "when", type = "timestamp" }
employee_id = { path = "staff" }
customer_id = { path = "client" }
row_count = { path = "rows" }
action = { path = "verb" }
channel = { path = "via" }
ticket_id = { path = "case" }
src_ip = { path = "ip" }
country = { path = "cc" }
device = { path = "host" }
"""


def _own_csv(tiny_dataset: Path, path: Path) -> pl.DataFrame:
    """Five days of admin rows as a team's flat CSV export, under its own column names."""
    ds = Dataset.open(tiny_dataset)
    rows = ds.scan("admin").filter(pl.col("bucket").is_in(ds.buckets[:5])).collect()
    rows.select(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("when"),
        pl.col("employee_id").alias("staff"),
        pl.col("customer_id").alias("client"),
        pl.col("row_count").alias("rows"),
        pl.col("action").alias("verb"),
        pl.col("channel").alias("via"),
        pl.col("ticket_id").alias("case"),
        pl.col("src_ip").alias("ip"),
        pl.col("country").alias("cc"),
        pl.col("device").alias("host"),
        pl.lit("crm").alias("source"),
    ).write_csv(path)
    return rows


def test_own_csv_logs_without_world_or_labels(tiny_dataset: Path, tmp_path: Path) -> None:
    rows = _own_csv(tiny_dataset, tmp_path / "crm.csv")
    (tmp_path / "m.toml").write_text(CSV_MAPPING)
    m = import_logs(tmp_path / "m.toml", tmp_path / "ds", [tmp_path / "crm.csv"])
    ds = Dataset.open(tmp_path / "ds")
    got = ds.scan("admin").collect()
    assert got.height == rows.height == sum(f["rows"] for f in m["files"])
    assert got["event_id"].n_unique() == got.height  # generated, unique
    assert (
        got.drop("event_id", "bucket").sort("ts", "employee_id").equals(rows.drop("event_id", "bucket").sort("ts", "employee_id"))
    )
    assert ds.scan("gateway").collect().height == 0 and not (tmp_path / "ds" / "truth").exists()
    # every detector runs on it; one reading only admin logs alerts
    run = run_detector("rule-no-ticket-reads-v1", ds)
    assert run.status == "OK" and run.alerts.height > 0
    assert run_detector("rule-departed-owner-key-v1", ds).status == "OK"  # no world tables: empty, not a crash


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ("[streams.admin.columns]\nts = { path = 'a' }", "timezone"),
        ("[dataset]\ntimezone = 'Mars/Olympus'\n[streams.admin.columns]\nts = { path = 'a' }", "IANA"),
        ("[dataset]\ntimezone = 'UTC'\n[streams.web.columns]\nts = { path = 'a' }", "unknown stream 'web'"),
        ("[dataset]\ntimezone = 'UTC'\n[streams.admin.columns]\nts = { path = 'a' }\nwho = { path = 'b' }", "unknown column"),
        ("[dataset]\ntimezone = 'UTC'\n[streams.admin.columns]\nts = { path = 'a', type = 'excel' }", "accepted: timestamp"),
        # a red team's: tracebacks, a span of 9999 years, and files written before the error
        ("dataset = 'x'\n[streams.admin.columns]\nts = { path = 'a' }", r"expected a \[dataset\] table"),
        ("[dataset]\ntimezone = 5\n[streams.admin.columns]\nts = { path = 'a' }", "IANA"),
        ("[dataset]\ntimezone = 'UTC'\n[streams]\nadmin = 'x'", r"expected a \[streams.admin\] table"),
        ("[dataset]\ntimezone = 'UTC'\n[streams.admin]\nwhere = 'x'\n[streams.admin.columns]\nts = { path = 'a' }", "where"),
        ("[dataset]\ntimezone = 'UTC'\n[streams.admin.columns]\nts = { path = 5 }", "expected { path"),
        ("[dataset]\ntimezone = 'UTC'\n[streams.admin.columns]\nts = { path = [1, 2] }", "expected { path"),
        ("[dataset]\ntimezone = 'UTC'\nstart = 'yesterday'\n[streams.admin.columns]\nts = { path = 'a' }", "expected a date"),
        ("[dataset]\ntimezone = 'UTC'\nstart = 2025-04-01T00:00:00\n[streams.admin.columns]\nts = { path = 'a' }", "a date"),
        ("[dataset]\ntimezone = 'UTC'\nwarmup_days = 'three'\n[streams.admin.columns]\nts = { path = 'a' }", "whole number"),
        (
            "[dataset]\ntimezone = 'UTC'\nstart = 0001-01-01\nend = 9999-12-31\n[streams.admin.columns]\nts = { path = 'a' }",
            "at most 36,525",
        ),
        (
            "[dataset]\ntimezone = 'UTC'\n[streams.admin.columns]\nts = { path = 'a' }\n" + "x = " + "[" * 5000 + "]" * 5000,
            "nested",
        ),
    ],
)
def test_bad_mappings_say_what_is_accepted(tmp_path: Path, mapping: str, match: str) -> None:
    (tmp_path / "m.toml").write_text(mapping)
    (tmp_path / "x.csv").write_text("a\n2025-04-01T00:00:00Z\n")
    with pytest.raises(MappingError, match=match):
        import_logs(tmp_path / "m.toml", tmp_path / "ds", [tmp_path / "x.csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml", "x.csv"]  # nothing written


def test_an_import_that_fails_half_way_leaves_no_folder(tmp_path: Path) -> None:
    """The logs' own days span too long (a record of the year 1): refused after the logs were read, nothing left."""
    (tmp_path / "m.toml").write_text(
        "[dataset]\ntimezone = 'UTC'\n[streams.admin.columns]\nts = { path = 'a', type = 'timestamp' }"
    )
    (tmp_path / "x.csv").write_text("a\n2025-04-01T00:00:00Z\n0001-01-01T00:00:00Z\n")
    with pytest.raises(MappingError, match="at most 36,525"):
        import_logs(tmp_path / "m.toml", tmp_path / "ds", [tmp_path / "x.csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml", "x.csv"]


def test_cli_import_refuses_a_non_empty_out(tiny_dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from breachbench.cli import app

    _own_csv(tiny_dataset, tmp_path / "crm.csv")
    (tmp_path / "m.toml").write_text(CSV_MAPPING)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    args = ["import", str(tmp_path / "crm.csv"), "--mapping", str(tmp_path / "m.toml"), "--out"]
    r = CliRunner().invoke(app, [*args, str(tmp_path / "busy"), "--force"])
    assert r.exit_code == 2 and "not a dataset" in r.output and (tmp_path / "busy" / "keep.txt").is_file()
    r = CliRunner().invoke(app, [*args, str(tmp_path / "ds")])
    assert r.exit_code == 0 and "dataset written" in r.output, r.output


def test_run_on_an_imported_dataset_without_labels(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`breachbench run DATASET`: alerts and a report of the top alerts per day, no scores without labels."""
    from typer.testing import CliRunner

    import breachbench.interop.dataset_run as dr
    from breachbench.cli import app

    _own_csv(tiny_dataset, tmp_path / "crm.csv")
    (tmp_path / "m.toml").write_text(CSV_MAPPING)
    import_logs(tmp_path / "m.toml", tmp_path / "ds", [tmp_path / "crm.csv"])
    monkeypatch.setattr(dr, "resolve_detectors", lambda ids: ["rule-no-ticket-reads-v1", "null", "rule-departed-owner-key-v1"])
    r = CliRunner().invoke(app, ["run", str(tmp_path / "ds"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "no labels" in r.output and "world tables absent: customers" in r.output
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    status = [row["status"] for row in res["rows"]]
    assert status[:2] == ["OK", "OK"] and "scores" not in res["rows"][0]
    assert status[2] == "OK (needs world tables: credentials, employees; saw them empty)"  # it says it needs world tables
    alerts = pl.read_parquet(tmp_path / "run" / "alerts" / "rule-no-ticket-reads-v1.parquet")
    assert alerts.height == res["rows"][0]["alerts"] > 0
    top = (tmp_path / "run" / "top-alerts.md").read_text()
    ds = Dataset.open(tmp_path / "ds")
    assert all(str(d) in top for d in ds.scored) and "## null" in top and "No alerts." in top


def test_run_on_a_dataset_lacking_world_tables_never_runs_a_detector_outside_its_seal(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which missing world tables a detector read is noted in its sealed process: a red-team plugin, run a second time
    unsealed to find them, copied the truth out, wrote into the dataset and ran code in the bench."""
    import bad_detectors

    from breachbench.interop.dataset_run import run_dataset

    _own_csv(tiny_dataset, tmp_path / "crm.csv")
    (tmp_path / "m.toml").write_text(CSV_MAPPING)
    import_logs(tmp_path / "m.toml", tmp_path / "ds", [tmp_path / "crm.csv"])  # admin rows alone: no world tables
    mark = tmp_path / "unsealed"
    monkeypatch.setenv(bad_detectors.UNSEALED_MARK, str(mark))
    res = run_dataset(tmp_path / "ds", tmp_path / "run", detectors=["bad_detectors:ActsWhenUnsealed"], log=lambda *a: None)
    assert "employees" in res["world_tables_absent"]
    assert res["rows"][0]["status"] == "OK (needs world tables: employees; saw them empty)"
    assert not mark.exists(), mark.read_text()


def test_a_detectors_reasons_are_shown_as_text_in_top_alerts_and_incidents_csv(parquet_roundtrip: Path, tmp_path: Path) -> None:
    """A reason that is markup (a heading on a line of its own, HTML, a pipe, a spreadsheet formula) is shown, not run."""
    import csv

    import bad_detectors

    from breachbench.interop.dataset_run import run_dataset
    from breachbench.report import INCIDENT_COLUMNS, write_incidents_csv

    res = run_dataset(parquet_roundtrip, tmp_path / "run", detectors=["bad_detectors:MarkupReasons"], log=lambda *a: None)
    assert res["rows"][0]["status"] == "OK", res["rows"][0]
    md = (tmp_path / "run" / "top-alerts.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| 20")]
    assert rows and all(line.replace("\\|", "").count("|") == 6 for line in rows), rows[:2]  # six cell borders
    assert not any(line.startswith("## injected") for line in md.splitlines())
    assert not any("<script>" in outside for outside in md.split("`")[::2])  # only inside code spans
    assert all("`=HYPERLINK" in line and "<script>" in line.split("`")[-2] for line in rows)  # inside a code span
    write_incidents_csv(tmp_path / "incidents.csv", [{"detector": "x", "reason": bad_detectors.MARKUP_REASON, "scenario": "-s"}])
    (row,) = list(csv.DictReader((tmp_path / "incidents.csv").open()))
    assert set(row) == set(INCIDENT_COLUMNS) and row["reason"] == "'" + bad_detectors.MARKUP_REASON and row["scenario"] == "'-s"


def test_run_on_a_labelled_dataset_scores(parquet_roundtrip: Path, tmp_path: Path) -> None:
    from breachbench.interop.dataset_run import run_dataset

    res = run_dataset(parquet_roundtrip, tmp_path / "run", detectors=["unissued-token-v1"], log=lambda *a: None)
    assert res["labels"] and res["world_tables_absent"] == [] and res["rows"][0]["scores"]["op_score"] is not None


def test_a_source_file_that_makes_polars_panic_is_one_line(tmp_path: Path) -> None:
    """A red team's crafted Parquet source made polars panic in `import` (a ``PanicException`` is no ``PolarsError``):
    a traceback. Now one line naming the file, exit 2, and no dataset folder."""
    from bad_detectors import PANIC_PARQUET
    from typer.testing import CliRunner

    from breachbench.cli import app

    (tmp_path / "src.parquet").write_bytes(PANIC_PARQUET)
    r = CliRunner().invoke(
        app,
        [
            "import",
            str(tmp_path / "src.parquet"),
            "--mapping",
            str(MAPPINGS_DIR / "import-ocsf-1.3.0.toml"),
            "--out",
            str(tmp_path / "ds"),
        ],
    )
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "src.parquet" in lines[0], (r.output, r.exception)
    assert not (tmp_path / "ds").exists()
