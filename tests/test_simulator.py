"""The simulator: determinism, dataset layout, synthetic PII, out-dir handling, scenario truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import simulator.engine
from simulator import layout, schema
from simulator.config import SimConfig
from simulator.engine import config_hash, generate
from simulator.errors import SimulationError
from simulator.world import customers_block

TZ = "Asia/Seoul"


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(root: Path) -> dict:
    return json.loads((root / layout.MANIFEST).read_text())


def _local_date(col: str = "ts") -> pl.Expr:
    return pl.col(col).dt.convert_time_zone(TZ).dt.date()


@pytest.fixture(scope="module")
def manifest(tiny_dataset: Path) -> dict:
    return _manifest(tiny_dataset)


@pytest.fixture(scope="module")
def truth(tiny_dataset: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(layout.truth_file(tiny_dataset, name)) for name in schema.TRUTH_TABLES}


@pytest.fixture(scope="module")
def world(tiny_dataset: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(layout.world_glob(tiny_dataset, name)) for name in schema.WORLD_TABLES}


@pytest.fixture(scope="module")
def gateway(tiny_logs: dict[str, pl.DataFrame], truth: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Gateway rows with the truth's incident and phase (null for normal traffic)."""
    mal = truth["malicious_events"].filter(pl.col("stream") == "gateway").select("event_id", "incident_id", "phase")
    return tiny_logs["gateway"].join(mal, on="event_id", how="left")


# ---- determinism ----------------------------------------------------------------------------


def test_same_config_same_bytes(tiny_config, tiny_dataset: Path, tmp_path: Path) -> None:
    again = generate(tiny_config.sim(), tmp_path / "again", workers=1)
    m1, m2 = _manifest(tiny_dataset), _manifest(again)
    assert m1["files"] == m2["files"]
    assert m1["truth"] == m2["truth"]
    assert m1["config_hash"] == m2["config_hash"]
    t1, t2 = _tree(tiny_dataset), _tree(again)
    assert t1.keys() == t2.keys()
    differ = [k for k in t1 if t1[k] != t2[k]]
    assert not differ, f"files differ between two runs of the same config: {differ[:5]}"


@pytest.mark.distributed
def test_workers_do_not_change_bytes(tiny_config, tiny_dataset: Path, tmp_path: Path) -> None:
    two = generate(tiny_config.sim(), tmp_path / "two", workers=2)
    t1, t2 = _tree(tiny_dataset), _tree(two)
    assert t1.keys() == t2.keys()
    differ = [k for k in t1 if t1[k] != t2[k]]
    assert not differ, f"workers=2 changed: {differ[:5]}"


@pytest.mark.distributed
def test_one_pool_for_several_datasets_keeps_the_bytes(
    tiny_config, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a run generates its datasets on one set of workers: workers that served another dataset first
    # must write the same bytes
    from breachbench.suite import _ensure_datasets, grid

    started: list[int] = []
    real = simulator.engine.make_executor

    def counting(*args: object, **kwargs: object) -> object:
        started.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(simulator.engine, "make_executor", counting)
    cfg = tiny_config.model_copy(
        update={"suite": tiny_config.suite.model_copy(update={"seeds": [tiny_config.seed + 1, tiny_config.seed]})}
    )
    points = grid(cfg, tmp_path / "run")
    datasets = _ensure_datasets(cfg, points, workers=2, gen_progress=None, verify=False, log=lambda *a, **k: None)
    assert len(started) == 1, "one pool for the run's datasets"
    second = datasets[points[1].label].root
    assert _manifest(second)["config_hash"] == _manifest(tiny_dataset)["config_hash"]
    t1, t2 = _tree(tiny_dataset), _tree(second)
    assert t1.keys() == t2.keys()
    differ = [k for k in t1 if t1[k] != t2[k]]
    assert not differ, f"a shared pool changed: {differ[:5]}"


def test_a_run_makes_its_datasets_in_an_order_drawn_at_random(
    tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Datasets keep the inode numbers and times of their making, and a slot's views are hard links to them: made in
    grid order, a plugin ranking its views by inode knew each one's scenario (a red-team pass). The datasets come back
    in grid order."""
    import breachbench.suite as suite

    made: list[str] = []

    def fake(cfg: object, path: Path, **_: object) -> tuple[object, bool]:
        made.append(path.name)
        return type("Made", (), {"root": path})(), False

    monkeypatch.setattr(suite, "ensure_dataset", fake)
    cfg = tiny_config.model_copy(update={"suite": tiny_config.suite.model_copy(update={"seeds": [1, 2, 3, 4, 5, 6]})})
    points = suite.grid(cfg, tmp_path / "run")
    labels = [p.label for p in points]
    orders = []
    for _ in range(5):
        made.clear()
        got = suite._ensure_datasets(cfg, points, workers=1, gen_progress=None, verify=False, log=lambda *a, **k: None)
        assert list(got) == labels and sorted(made) == sorted(p.path.name for p in points)
        orders.append(tuple(made))
    grid_order = tuple(p.path.name for p in points)
    assert len(points) == 6 and any(o != grid_order for o in orders) and len(set(orders)) > 1, orders  # 1 in 720**4 to fail


def test_different_seed_differs(tiny_config, tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config.sim().model_copy(update={"seed": tiny_config.seed + 1})
    other = generate(cfg, tmp_path / "other", workers=1)
    m1, m2 = _manifest(tiny_dataset), _manifest(other)
    assert m2["seed"] == tiny_config.seed + 1
    assert m1["config_hash"] != m2["config_hash"]
    h1 = {f["path"]: (f["sha256"], f["rows"]) for f in m1["files"] + m1["truth"]}
    h2 = {f["path"]: (f["sha256"], f["rows"]) for f in m2["files"] + m2["truth"]}
    # which rows arrive late is drawn from the seed too, so only the late files may come and go
    late = re.compile(r"/late-\d{5}\.parquet$")
    assert {p for p in h1 if not late.search(p)} == {p for p in h2 if not late.search(p)}
    assert any(late.search(p) for p in h1) and any(late.search(p) for p in h2)
    # every non-empty data file of a different seed has different content (an empty file of a
    # sparse stream, e.g. hr on a quiet day, is the same few bytes whatever the seed)
    same = [p for p in h1.keys() & h2.keys() if h1[p] == h2[p] and h1[p][1] > 0]
    assert not same, f"unchanged with a new seed: {same[:5]}"


def test_config_hash_tracks_config(tiny_config) -> None:
    sim = tiny_config.sim()
    assert config_hash(sim) == config_hash(SimConfig.model_validate(sim.model_dump()))
    bigger = sim.model_copy(update={"world": sim.world.model_copy(update={"customers": 4001})})
    assert config_hash(bigger) != config_hash(sim)


# ---- layout ---------------------------------------------------------------------------------


def test_manifest_fields(manifest: dict, tiny_config) -> None:
    for key in ("config", "config_hash", "seed", "versions", "files", "truth", "data_version"):
        assert key in manifest, key
    assert manifest["seed"] == tiny_config.seed
    assert manifest["config_hash"] == config_hash(tiny_config.sim())
    assert SimConfig.model_validate(manifest["config"]) == tiny_config.sim()
    assert {"numpy", "polars", "faker"} <= set(manifest["versions"])
    for f in manifest["files"] + manifest["truth"]:
        assert {"path", "rows", "sha256"} <= set(f), f


def test_layout_paths(manifest: dict, tiny_config) -> None:
    paths = [f["path"] for f in manifest["files"]]
    days = {(tiny_config.time.start + dt.timedelta(days=i)).isoformat() for i in range(tiny_config.time.days)}
    world = [p for p in paths if p.startswith("world/")]
    logs = [p for p in paths if p.startswith("logs/")]
    assert len(world) + len(logs) == len(paths), "files outside world/ and logs/"
    assert {re.match(r"world/([a-z_]+)-\d{5}\.parquet$", p).group(1) for p in world} == set(schema.WORLD_TABLES)
    seen: dict[str, set[str]] = {}
    late: dict[str, set[str]] = {}
    for p in logs:
        m = re.fullmatch(r"logs/([a-z]+)/date=(\d{4}-\d{2}-\d{2})/(part|late)-(\d{5})\.parquet", p)
        assert m, p
        stream, day, kind, block = m.group(1), m.group(2), m.group(3), int(m.group(4))
        (seen if kind == "part" else late).setdefault(stream, set()).add(day)
        if stream in ("admin", "hr"):
            assert block == schema.STAFF_BLOCK, p
        elif stream == "gateway":
            assert block != schema.STAFF_BLOCK, p
    assert set(seen) == set(schema.LOG_STREAMS) == {"gateway", "auth", "admin", "hr"}
    for stream, got in seen.items():
        assert got == days, f"{stream}: partitions do not cover the span"
    # late rows arrive in the next bucket: never in the first one; the big streams have some
    first = tiny_config.time.start.isoformat()
    for stream, got in late.items():
        assert got <= days - {first}, f"{stream}: late files outside the span or in its first bucket"
    assert {"gateway", "auth", "admin"} <= set(late)
    assert sorted(f["path"] for f in manifest["truth"]) == [f"truth/{t}.parquet" for t in sorted(schema.TRUTH_TABLES)]


def test_manifest_matches_disk(tiny_dataset: Path, manifest: dict) -> None:
    listed = set()
    for f in manifest["files"] + manifest["truth"]:
        path = tiny_dataset / f["path"]
        assert path.is_file(), f["path"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
        assert pl.read_parquet(path).height == f["rows"], f["path"]
        if "bytes" in f:
            assert len(data) == f["bytes"]
        listed.add(f["path"])
    on_disk = {p.relative_to(tiny_dataset).as_posix() for p in tiny_dataset.rglob("*") if p.is_file()}
    assert on_disk - listed == {layout.MANIFEST}, "files on disk that the manifest does not list"


def test_schemas(tiny_dataset: Path, manifest: dict) -> None:
    for f in manifest["files"] + manifest["truth"]:
        kind, rest = f["path"].split("/", 1)
        name = rest.split("/", 1)[0] if kind == "logs" else re.sub(r"(-\d{5})?\.parquet$", "", rest)
        expected = {"world": schema.WORLD_TABLES, "logs": schema.LOG_STREAMS, "truth": schema.TRUTH_TABLES}[kind][name]
        assert pl.read_parquet_schema(tiny_dataset / f["path"]) == dict(expected), f["path"]


def test_event_ids_unique_across_streams(tiny_dataset: Path, manifest: dict) -> None:
    ids = []
    dups = 0
    for f in manifest["files"]:
        if not f["path"].startswith("logs/"):
            continue
        df = pl.read_parquet(tiny_dataset / f["path"])
        # a duplicated row sits right after its original and is identical to it
        again = df["event_id"] == df["event_id"].shift(1)
        if again.any():
            pos = again.arg_true()
            assert df[pos].equals(df[pos - 1]), f"{f['path']}: a repeated event_id with different content"
            assert not (again.shift(1).fill_null(False) & again).any(), f"{f['path']}: a row delivered three times"
            dups += int(again.sum())
        ids.append(df.filter(~again)["event_id"])
    assert dups > 0, "the default config duplicates 0.1% of rows: expected some"
    ids = pl.concat(ids)
    assert ids.null_count() == 0
    assert ids.n_unique() == ids.len(), "an event_id repeats outside an adjacent exact duplicate"
    # the stream is in the top bits
    streams = {f["path"].split("/")[1] for f in manifest["files"] if f["path"].startswith("logs/")}
    assert streams == set(schema.LOG_STREAMS)
    assert set((ids // (1 << 60)).unique().to_list()) == {schema.STREAM_CODES[s] for s in schema.LOG_STREAMS}


def test_log_files_sorted_and_in_their_partition(tiny_dataset: Path, manifest: dict) -> None:
    n = late = 0
    for f in manifest["files"]:
        if not f["path"].startswith("logs/"):
            continue
        day = dt.date.fromisoformat(re.search(r"date=([\d-]+)", f["path"]).group(1))
        df = pl.read_parquet(tiny_dataset / f["path"], columns=["ts"])
        assert df["ts"].is_sorted(), f["path"]
        # a part file holds its partition's local date; a late file rows of the previous date
        own = day - dt.timedelta(days=1) if "/late-" in f["path"] else day
        dates = df.select(_local_date())["ts"].unique().sort().to_list()
        assert dates in ([own], []), f"{f['path']}: rows dated {dates}, expected {own}"
        n += df.height
        late += df.height if "/late-" in f["path"] else 0
    assert n > 100_000
    assert late > 0


def test_every_day_has_traffic(tiny_logs: dict[str, pl.DataFrame], tiny_config) -> None:
    per_day = tiny_logs["gateway"].group_by("partition").len()
    assert per_day.height == tiny_config.time.days
    assert per_day["len"].min() > 0.5 * per_day["len"].mean()


# ---- synthetic PII --------------------------------------------------------------------------

EMAIL = re.compile(r"^[^@\s]+@(?:[a-z0-9-]+\.)*(?:example\.(?:com|net|org)|[a-z0-9-]+\.(?:test|invalid))$")
KO_PHONE = r"^010-0\d{3}-\d{4}$"
US_PHONE = r"^\+1-[2-9]\d{2}-555-01\d{2}$"


def test_emails_reserved_and_unique(world: dict[str, pl.DataFrame]) -> None:
    emails = world["customers"]["email"]
    assert emails.null_count() == 0
    bad = [e for e in emails.to_list() if not EMAIL.match(e)]
    assert not bad, bad[:5]
    assert emails.n_unique() == emails.len()


def test_ko_phones_unassigned_range(world: dict[str, pl.DataFrame]) -> None:
    for col, frame in (("phone", world["customers"]), ("recipient_phone", world["addresses"])):
        phones = frame[col]
        assert phones.null_count() == 0
        assert phones.str.contains(KO_PHONE).all(), phones.filter(~phones.str.contains(KO_PHONE)).head(3).to_list()


def test_phones_per_locale_in_fictional_ranges() -> None:
    cfg = SimConfig(seed=3, world={"customers": 600, "employees": 50, "locales": {"ko_KR": 1.0, "en_US": 1.0}})
    t = customers_block(cfg, 0)
    c = t["customers"]
    assert set(c["locale"].unique()) == {"ko_KR", "en_US"}
    ko = c.filter(pl.col("locale") == "ko_KR")["phone"]
    us = c.filter(pl.col("locale") == "en_US")["phone"]
    assert ko.str.contains(KO_PHONE).all()
    assert us.str.contains(US_PHONE).all(), us.filter(~us.str.contains(US_PHONE)).head(3).to_list()
    assert all(EMAIL.match(e) for e in c["email"].to_list())
    # family entries of an address book follow the owner's locale
    book = t["addresses"].join(c.select("customer_id", "locale"), on="customer_id")
    us_book = book.filter(pl.col("locale") == "en_US")["recipient_phone"]
    assert us_book.str.contains(US_PHONE).all()


# ---- out-dir handling -----------------------------------------------------------------------


def _small(tiny_config) -> SimConfig:
    return tiny_config.sim()


def test_non_empty_out_without_force(tiny_config, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(SimulationError, match="not empty"):
        generate(_small(tiny_config), out, only="world")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_is_a_file(tiny_config, tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(SimulationError, match="not a directory"):
        generate(_small(tiny_config), out, only="world")
    assert out.read_text() == "x"


def _ours(out: Path) -> None:
    """Make ``out`` look like a dataset this tool wrote (what --force may replace)."""
    out.mkdir()
    (out / layout.MANIFEST).write_text(json.dumps({"format": "breachbench-dataset"}))


def test_force_replaces(tiny_config, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _ours(out)
    (out / "stale.txt").write_text("old")
    generate(_small(tiny_config), out, only="world", force=True)
    assert not (out / "stale.txt").exists()
    assert _manifest(out)["only"] == "world"
    assert layout.world_glob(out, "customers")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "temporary or old directories left behind"


def test_empty_out_is_fine(tiny_config, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    generate(_small(tiny_config), out, only="world")
    assert (out / layout.MANIFEST).is_file()


def test_bad_workers_and_only(tiny_config, tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="--workers"):
        generate(_small(tiny_config), tmp_path / "a", workers=0)
    with pytest.raises(SimulationError, match="--only"):
        generate(_small(tiny_config), tmp_path / "b", only="logs")
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_generation_leaves_nothing(tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def boom(*args, **kwargs):
        calls.append(args[2:4])
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    real = simulator.engine.log_shard
    monkeypatch.setattr(simulator.engine, "log_shard", boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(_small(tiny_config), out, workers=1)
    assert len(calls) == 3, "the patched shard function was not used"
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], f"left behind: {list(tmp_path.iterdir())}"


def test_failure_with_force_keeps_old_dataset(tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _ours(out)
    (out / "old.txt").write_text("old")

    def boom(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(simulator.engine, "log_shard", boom)
    with pytest.raises(RuntimeError):
        generate(_small(tiny_config), out, workers=1, force=True)
    assert sorted(p.name for p in out.iterdir()) == [layout.MANIFEST, "old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---- scenario truth: coupang-forged-token-v3 ------------------------------------------------


@pytest.fixture(scope="module")
def knobs(tiny_config):
    from simulator.scenarios import load

    spec = tiny_config.scenarios[0]
    assert spec.id == "coupang-forged-token-v3"
    return load(spec.id).Knobs(**spec.knobs)


def test_one_incident_with_events(truth: dict[str, pl.DataFrame], gateway: pl.DataFrame, tiny_config) -> None:
    inc = truth["incidents"]
    assert inc.height == 1
    assert inc["scenario"][0] == "coupang-forged-token-v3"
    mal = truth["malicious_events"]
    assert mal.height > 0
    assert set(mal["incident_id"].unique()) == {inc["incident_id"][0]}
    # every truth row points at a delivered log row with the same ts, except rows the collection lost
    mal_gw = mal.filter(pl.col("stream") == "gateway")
    joined = mal_gw.join(gateway.select("event_id", pl.col("ts").alias("log_ts")).unique("event_id"), on="event_id")
    lost = mal_gw.height - joined.height
    p_lost = tiny_config.logs.missing_rate + tiny_config.logs.late_rate  # late rows of the last day are dropped too
    assert 0 <= lost <= mal_gw.height * p_lost + 5 * (mal_gw.height * p_lost) ** 0.5 + 1
    assert (joined["ts"] == joined["log_ts"]).all()
    # start and end of the incident are its first and last malicious events
    assert inc["start"][0] == mal["ts"].min() and inc["end"][0] == mal["ts"].max()


def test_malicious_tokens_never_issued(gateway: pl.DataFrame, tiny_logs: dict[str, pl.DataFrame]) -> None:
    issued = tiny_logs["auth"].filter(pl.col("event") == "token_issued")["token_id"].unique()
    mal_tokens = gateway.filter(pl.col("incident_id").is_not_null())["token_id"].unique()
    normal_tokens = gateway.filter(pl.col("incident_id").is_null())["token_id"].unique()
    assert mal_tokens.len() > 0
    assert not mal_tokens.is_in(issued.implode()).any(), "a forged token has an issuance record"
    share = normal_tokens.is_in(issued.implode()).mean()
    assert share >= 0.99, f"only {share:.3%} of normal tokens were issued"


def test_phases_probe_then_bulk(gateway: pl.DataFrame, knobs, tiny_config) -> None:
    mal = gateway.filter(pl.col("incident_id").is_not_null()).with_columns(day=_local_date())
    assert set(mal["phase"].unique()) == {"probe", "bulk"}
    probe, bulk = mal.filter(pl.col("phase") == "probe"), mal.filter(pl.col("phase") == "bulk")
    assert probe["ts"].max() < bulk["ts"].min()
    assert probe["day"].n_unique() == knobs.probe_days
    first = tiny_config.time.start + dt.timedelta(days=tiny_config.time.warmup_days + knobs.start_offset)
    assert probe["day"].min() == first
    assert bulk["day"].min() == first + dt.timedelta(days=knobs.probe_days)
    # probing reads a few customers a day; the bulk phase many more
    probe_daily = probe.group_by("day").agg(pl.col("customer_id").n_unique())["customer_id"]
    bulk_daily = bulk.group_by("day").agg(pl.col("customer_id").n_unique())["customer_id"]
    assert probe_daily.max() <= knobs.probe_reads_per_day
    assert bulk_daily.mean() > 2 * probe_daily.max()


def test_bulk_ids_contiguous_per_day(gateway: pl.DataFrame) -> None:
    bulk = gateway.filter(pl.col("phase") == "bulk").with_columns(day=_local_date())
    per_day = (
        bulk.group_by("day")
        .agg(lo=pl.col("customer_id").min(), hi=pl.col("customer_id").max(), n=pl.col("customer_id").n_unique())
        .sort("day")
    )
    assert per_day.height >= 5
    assert (per_day["hi"] - per_day["lo"] + 1 == per_day["n"]).all(), per_day
    # the sweep moves forward: each day starts right after the previous one ended
    assert (per_day["lo"].slice(1) == per_day["hi"].slice(0, per_day.height - 1) + 1).all(), per_day


def test_malicious_rows_from_abroad(gateway: pl.DataFrame) -> None:
    mal = gateway.filter(pl.col("incident_id").is_not_null())
    assert (mal["country"] != "KR").all()
    assert mal["src_ip"].n_unique() > 1, "the crawler should rotate addresses"
    # status codes come from the gateway's usual mix, not a constant 200
    assert set(mal["status"].unique()) <= set(gateway.filter(pl.col("incident_id").is_null())["status"].unique())
    assert 0.95 < (mal["status"] == 200).mean() < 1.0


def test_no_malicious_event_before_first_day(truth: dict[str, pl.DataFrame], knobs, tiny_config) -> None:
    first = tiny_config.time.start + dt.timedelta(days=tiny_config.time.warmup_days + knobs.start_offset)
    days = truth["malicious_events"].select(_local_date())["ts"]
    assert days.min() == first
    assert days.max() < tiny_config.time.end


def test_exposure_matches_logs(truth: dict[str, pl.DataFrame], tiny_clean_dataset: Path) -> None:
    # truth records what happened: the same whether or not collection lost, doubled or delayed rows
    for name in schema.TRUTH_TABLES:
        clean = pl.read_parquet(layout.truth_file(tiny_clean_dataset, name))
        assert clean.equals(truth[name]), f"truth/{name} depends on the collection faults"
    # so it matches the logs exactly where collection is perfect
    mal = truth["malicious_events"].filter(pl.col("stream") == "gateway").select("event_id", "incident_id")
    gateway = pl.read_parquet(
        layout.log_files(
            tiny_clean_dataset,
            "gateway",
            sorted(
                dt.date.fromisoformat(p.name.removeprefix("date=")) for p in (tiny_clean_dataset / "logs" / "gateway").iterdir()
            ),
        )
    ).join(mal, on="event_id", how="left")
    read = (
        gateway.filter(pl.col("incident_id").is_not_null() & (pl.col("records_returned") > 0) & (pl.col("status") == 200))
        .group_by("incident_id", "customer_id")
        .agg(first=pl.col("ts").min(), n=pl.len())
        .sort("incident_id", "customer_id")
    )
    kinds = truth["exposure"]
    assert kinds.select("incident_id", "customer_id", "kind").is_unique().all()
    assert set(kinds["kind"].unique()) <= {"my_info", "address_book", "address_edit", "order_history"}
    exp = (
        kinds.group_by("incident_id", "customer_id")
        .agg(pl.col("first_ts").min(), pl.col("reads").sum())
        .sort("incident_id", "customer_id")
    )
    assert exp["customer_id"].to_list() == read["customer_id"].to_list()
    assert exp["customer_id"].is_unique().all()
    assert (exp["first_ts"] == read["first"]).all()
    assert (exp["reads"] == read["n"]).all()


def test_actor_is_departed_engineer_with_live_key(
    truth: dict[str, pl.DataFrame], gateway: pl.DataFrame, world: dict[str, pl.DataFrame], tiny_config
) -> None:
    from simulator.world import ENGINEERS

    mal = gateway.filter(pl.col("incident_id").is_not_null())
    keys = mal["key_id"].unique().to_list()
    assert len(keys) == 1
    cred = world["credentials"].filter(pl.col("key_id") == keys[0])
    assert cred.height == 1
    assert cred["kind"][0] == "token-signing"
    assert cred["revoked"][0] is None
    owner = cred["owner_employee_id"][0]
    assert truth["incidents"]["actors"][0].to_list() == [owner]
    emp = world["employees"].filter(pl.col("employee_id") == owner).row(0, named=True)
    assert emp["role"] in ENGINEERS
    assert emp["termination_date"] is not None and emp["termination_date"] < tiny_config.time.start
    # the key alone gives nothing away: real tokens are signed with it too
    normal_with_key = gateway.filter(pl.col("incident_id").is_null() & (pl.col("key_id") == keys[0]))
    assert normal_with_key.height > 1000
    # and it is not the only departed owner of a token-signing key
    departed = world["employees"].filter(pl.col("termination_date") < tiny_config.time.start)["employee_id"]
    signing = world["credentials"].filter(
        (pl.col("kind") == "token-signing") & pl.col("owner_employee_id").is_in(departed.implode())
    )
    assert signing.height >= 2


def test_normal_traffic_is_diurnal(gateway: pl.DataFrame) -> None:
    hours = gateway.filter(pl.col("incident_id").is_null()).select(pl.col("ts").dt.convert_time_zone(TZ).dt.hour().alias("h"))[
        "h"
    ]
    night = hours.is_between(2, 5).mean()
    evening = hours.is_between(20, 23).mean()
    assert night < 0.3 * evening, (night, evening)
    assert evening > 4 / 24  # busier than a flat day


def test_normal_traffic_mostly_domestic(gateway: pl.DataFrame, tiny_config) -> None:
    normal = gateway.filter(pl.col("incident_id").is_null())
    foreign = (normal["country"] != "KR").mean()
    assert 0 < foreign < 5 * tiny_config.traffic.foreign_share


def test_normal_records_follow_endpoints(gateway: pl.DataFrame, world: dict[str, pl.DataFrame]) -> None:
    normal = gateway.filter(pl.col("incident_id").is_null())
    browse = normal.filter(pl.col("endpoint").is_in(["/home", "/search", "/product", "/cart", "/checkout"]))
    assert (browse["records_returned"] == 0).all()
    books = world["addresses"].group_by("customer_id").len()
    al = normal.filter(pl.col("endpoint") == "/address-list").join(books, on="customer_id")
    assert (al["records_returned"] == al["len"]).all()


def test_daily_volume_follows_week(gateway: pl.DataFrame) -> None:
    normal = gateway.filter(pl.col("incident_id").is_null())
    per = normal.group_by("partition").len().with_columns(wd=pl.col("partition").dt.weekday())
    weekday = per.filter(pl.col("wd") <= 2)["len"].mean()  # Mon, Tue
    saturday = per.filter(pl.col("wd") == 6)["len"].mean()
    assert saturday < weekday
    assert np.isfinite(weekday)
