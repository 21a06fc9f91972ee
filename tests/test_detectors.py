"""The detector contract, the view a detector sees, the built-ins, and how the runner treats faults."""

from __future__ import annotations

import datetime as dt
import math
import pickle
import sys
import types
from pathlib import Path

import polars as pl
import pytest

import detectors.registry
from breachbench.runner import run_detector
from detectors.contract import ALERTS, AlertsError, Detector, empty_alerts, validate_alerts
from detectors.registry import DetectorLoadError, load, registry

DAY = dt.date(2025, 4, 12)


def _alerts(**cols) -> pl.DataFrame:
    base = {
        "bucket": [DAY, DAY],
        "entity_kind": ["ip", "customer"],
        "entity_id": ["1.2.3.4", "42"],
        "score": [0.9, 0.1],
    }
    base.update(cols)
    return pl.DataFrame(base)


# ---- validate_alerts ------------------------------------------------------------------------


def test_valid_alerts_pass_and_get_canonical_schema() -> None:
    out = validate_alerts(_alerts(), bucket=DAY, source="det")
    assert out.schema == ALERTS
    assert out["reason"].null_count() == 2
    assert out.height == 2


def test_valid_alerts_int_scores_are_cast() -> None:
    out = validate_alerts(_alerts(score=[3, 1]))
    assert out["score"].dtype == pl.Float64 and out["score"].to_list() == [3.0, 1.0]


def test_none_and_empty_are_no_alerts() -> None:
    assert validate_alerts(None).height == 0
    assert validate_alerts(empty_alerts(), bucket=DAY).schema == ALERTS


@pytest.mark.parametrize(
    ("frame", "needles"),
    [
        pytest.param(_alerts().drop("score"), ["det-x", "missing column", "score"], id="missing-column"),
        pytest.param(_alerts().drop("entity_kind", "bucket"), ["missing column", "bucket", "entity_kind"], id="missing-two"),
        pytest.param(
            _alerts(entity_kind=["ip", "account"]), ["det-x", "unknown entity_kind", "'account'", "customer"], id="unknown-kind"
        ),
        pytest.param(_alerts(score=[0.5, float("nan")]), ["det-x", "NaN", "1 row"], id="nan-score"),
        pytest.param(_alerts(bucket=[DAY, DAY + dt.timedelta(days=1)]), ["det-x", "2025-04-13", "2025-04-12"], id="next-bucket"),
        pytest.param(
            _alerts(bucket=[DAY - dt.timedelta(days=1), DAY]), ["det-x", "2025-04-11", "2025-04-12"], id="previous-bucket"
        ),
        pytest.param(
            _alerts(entity_kind=["ip", "ip"], entity_id=["1.2.3.4", "1.2.3.4"]), ["det-x", "duplicate", "1.2.3.4"], id="duplicate"
        ),
        pytest.param(_alerts(extra=[1, 2]), ["det-x", "unexpected column", "extra"], id="extra-column"),
        pytest.param(_alerts(score=["high", "low"]), ["det-x", "score"], id="string-score"),
        pytest.param(_alerts(entity_id=["1.2.3.4", None]), ["det-x", "null entity_id", "1 row"], id="null-id"),
        # a null kind slipped past the kind check (is_in skips nulls) and the null check alike
        pytest.param(_alerts(entity_kind=["ip", None]), ["det-x", "null entity_kind", "1 row"], id="null-kind"),
        pytest.param({"bucket": [DAY]}, ["det-x", "DataFrame", "dict"], id="not-a-frame"),
    ],
)
def test_validate_alerts_errors(frame, needles: list[str]) -> None:
    with pytest.raises(AlertsError) as info:
        validate_alerts(frame, bucket=DAY, source="det-x")
    msg = str(info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


def test_alerts_error_is_value_error() -> None:
    assert issubclass(AlertsError, ValueError)


# ---- the view -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_world(tiny_dataset: Path) -> dict[str, pl.DataFrame]:
    from simulator import layout

    return {t: pl.read_parquet(layout.world_glob(tiny_dataset, t)) for t in ("employees", "credentials", "customers", "orders")}


@pytest.mark.parametrize("offset", [0, 9, 20])
def test_view_cannot_see_later_buckets(tiny_ds, offset: int) -> None:
    upto = tiny_ds.buckets[offset]
    view = tiny_ds.view(upto, upto)
    for stream in ("gateway", "auth"):
        frame = (
            view.logs(stream)
            .select(pl.col("bucket").min().alias("lo"), pl.col("bucket").max().alias("hi"), pl.col("ts").max())
            .collect()
        )
        assert frame["hi"][0] == upto, stream
        assert frame["lo"][0] == tiny_ds.buckets[0], stream
        end = dt.datetime.combine(upto + dt.timedelta(days=1), dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=9)))
        assert frame["ts"][0] < end, stream
        current = view.logs(stream, current_only=True).select(pl.col("bucket").unique()).collect()["bucket"].to_list()
        assert current == [upto]
    assert view.buckets[-1] == upto and len(view.buckets) == offset + 1


def test_view_unknown_stream_and_table(tiny_ds) -> None:
    view = tiny_ds.view(tiny_ds.buckets[3])
    with pytest.raises(KeyError, match="unknown stream"):
        view.logs("malicious_events")
    with pytest.raises(KeyError, match="unknown world table"):
        view.world("exposure")


def test_view_masks_future_terminations(tiny_ds, raw_world) -> None:
    emp = raw_world["employees"]
    start, end = tiny_ds.buckets[0], tiny_ds.buckets[-1]
    during = emp.filter(pl.col("termination_date").is_between(start + dt.timedelta(days=1), end))
    assert during.height > 0, "the tiny world should have someone leaving during the span"
    who = during.row(0, named=True)
    term = who["termination_date"]

    def seen(upto: dt.date):
        row = tiny_ds.view(upto).world("employees").filter(pl.col("employee_id") == who["employee_id"])
        assert row.height == 1
        return row["termination_date"][0]

    assert seen(term - dt.timedelta(days=1)) is None
    assert seen(term) == term
    assert seen(end) == term


@pytest.mark.parametrize("offset", [0, 10, 27])
def test_view_world_is_as_of_upto(tiny_ds, raw_world, offset: int) -> None:
    upto = tiny_ds.buckets[offset]
    view = tiny_ds.view(upto)
    end_ts = dt.datetime.combine(upto + dt.timedelta(days=1), dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=9)))

    emp = view.world("employees").sort("employee_id")
    raw = raw_world["employees"].filter(pl.col("hire_date") <= upto).sort("employee_id")
    assert emp["employee_id"].to_list() == raw["employee_id"].to_list()
    expected = [t if t is not None and t <= upto else None for t in raw["termination_date"].to_list()]
    assert emp["termination_date"].to_list() == expected

    cred = view.world("credentials").sort("key_id")
    raw_c = raw_world["credentials"].filter(pl.col("created") < end_ts).sort("key_id")
    assert cred["key_id"].to_list() == raw_c["key_id"].to_list()
    for col in ("rotated", "revoked"):
        expected = [t if t is not None and t < end_ts else None for t in raw_c[col].to_list()]
        assert cred[col].to_list() == expected, col

    assert view.world("customers")["signup_date"].max() <= upto
    assert view.world("orders")["ts"].max() < end_ts


def test_view_hides_future_key_events_if_any(tiny_ds, raw_world) -> None:
    start = dt.datetime.combine(tiny_ds.buckets[0], dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=9)))
    future = raw_world["credentials"].filter((pl.col("rotated") >= start) | (pl.col("revoked") >= start))
    view = tiny_ds.view(tiny_ds.buckets[0]).world("credentials")
    for row in future.iter_rows(named=True):
        seen = view.filter(pl.col("key_id") == row["key_id"]).row(0, named=True)
        for col in ("rotated", "revoked"):
            if row[col] is not None and row[col] >= start + dt.timedelta(days=1):
                assert seen[col] is None, (row["key_id"], col)


def _strings(obj, out: list[str]) -> list[str]:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _strings(k, out)
            _strings(v, out)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            _strings(v, out)
    return out


def test_view_state_has_no_truth_path(tiny_ds, tiny_dataset: Path) -> None:
    assert "truth" not in str(tiny_dataset), "pick a tmp dir name without 'truth' for this test to mean something"
    view = tiny_ds.view(tiny_ds.buckets[-1], tiny_ds.buckets[-1])
    blob = pickle.dumps(view)
    assert b"truth" not in blob
    _, args = view.__reduce__()
    paths = _strings(args, [])
    assert any(p.endswith(".parquet") for p in paths)
    assert not [p for p in paths if "truth" in p]
    assert not [p for p in _strings(vars(view), []) if "truth" in p]
    # no attribute holds the dataset root either (the truth dir is one step from it)
    assert str(tiny_dataset) not in [str(v) for v in vars(view).values()]
    clone = pickle.loads(blob)
    assert clone.bucket == view.bucket and clone.buckets == view.buckets
    assert clone.logs("gateway", current_only=True).select(pl.len()).collect().item() > 0


# ---- built-in detectors ---------------------------------------------------------------------

BUILTINS = sorted(name for name, target in registry().items() if target.startswith("detectors."))


def test_builtins_registered() -> None:
    assert {"null", "random", "unissued-token-v1", "iforest-v1"} <= set(BUILTINS)


@pytest.fixture(scope="module")
def attack_bucket(tiny_ds) -> dt.date:
    """A scored bucket of the bulk phase (has malicious rows)."""
    days = tiny_ds.positive_units["bucket"].unique().sort().to_list()
    return days[len(days) // 2]


def _fit_score(tiny_ds, detector_id: str, bucket: dt.date) -> pl.DataFrame:
    det = load(detector_id)()
    assert isinstance(det, Detector)
    det.fit(tiny_ds.view(tiny_ds.warmup[-1], None))
    return det.score(tiny_ds.view(bucket, bucket))


@pytest.mark.parametrize("detector_id", BUILTINS)
def test_builtin_conforms_and_is_deterministic(tiny_ds, attack_bucket: dt.date, detector_id: str) -> None:
    a = _fit_score(tiny_ds, detector_id, attack_bucket)
    out = validate_alerts(a, bucket=attack_bucket, source=detector_id)
    assert out["score"].is_finite().all()
    b = _fit_score(tiny_ds, detector_id, attack_bucket)
    assert a.equals(b), f"{detector_id}: two fresh instances disagree"
    # null never alerts; nobody works after their termination in this world, so that rule is silent too
    if detector_id not in ("null", "rule-after-termination-v1"):
        assert out.height > 0, f"{detector_id} emitted nothing in an attack bucket"


@pytest.mark.parametrize("detector_id", BUILTINS)
def test_builtin_init_only_stores(detector_id: str) -> None:
    det = load(detector_id)()
    fitted = [k for k in vars(det) if k.endswith("_")]
    assert not fitted, f"{detector_id}: __init__ set fitted state {fitted}"


def test_unissued_rule_flags_the_forged_tokens(tiny_ds, attack_bucket: dt.date) -> None:
    out = _fit_score(tiny_ds, "unissued-token-v1", attack_bucket)
    pos = tiny_ds.positive_units.filter(pl.col("bucket") == attack_bucket).select("entity_kind", "entity_id").unique()
    flagged = out.select("entity_kind", "entity_id")
    # collection faults lose or delay some token_issued rows: a normal token may be flagged only
    # when its issuance is absent from the auth rows delivered in this bucket and the previous one
    prev = attack_bucket - dt.timedelta(days=1)
    issued = (
        tiny_ds.scan("auth")
        .filter(pl.col("bucket").is_between(prev, attack_bucket) & (pl.col("event") == "token_issued"))
        .select("token_id")
    )
    mal = tiny_ds.truth("malicious_events").select("event_id").lazy()
    normal = tiny_ds.scan("gateway").filter(pl.col("bucket") == attack_bucket).join(mal, on="event_id", how="anti")
    lost = normal.join(issued, on="token_id", how="anti").collect()
    excused = pl.concat(
        [
            lost.select(pl.lit(kind).alias("entity_kind"), pl.col(col).cast(pl.String).alias("entity_id"))
            for kind, col in (("ip", "src_ip"), ("key", "key_id"), ("customer", "customer_id"), ("token", "token_id"))
        ]
    )
    keys = ["entity_kind", "entity_id"]
    wrong = flagged.join(pos, on=keys, how="anti").join(excused, on=keys, how="anti")
    assert wrong.height == 0, f"flagged a normal entity whose tokens were all issued: {wrong.head(5)}"
    # and the excuse is rare: lost or late issuance rows, within the configured fault rates
    tokens = normal.select(pl.col("token_id").n_unique()).collect().item()
    p = tiny_ds.manifest["config"]["logs"]["missing_rate"] + tiny_ds.manifest["config"]["logs"]["late_rate"]
    n_lost = lost["token_id"].n_unique()
    assert n_lost <= tokens * p + 5 * math.sqrt(tokens * p) + 1, (n_lost, tokens)
    top = out.sort("score", descending=True).row(0, named=True)
    assert top["entity_kind"] in ("ip", "key")


def test_random_seeded_per_bucket(tiny_ds) -> None:
    b1, b2 = tiny_ds.scored[0], tiny_ds.scored[1]
    s1 = _fit_score(tiny_ds, "random", b1)["score"]
    s2 = _fit_score(tiny_ds, "random", b2)["score"]
    assert not s1.head(50).equals(s2.head(50))
    assert 0.0 <= s1.min() and s1.max() < 1.0


# ---- the runner's treatment of faulty detectors ---------------------------------------------


class _LookAhead:
    def fit(self, view):
        return self

    def score(self, view):
        nxt = view.bucket + dt.timedelta(days=1)
        return pl.DataFrame({"bucket": [nxt], "entity_kind": ["ip"], "entity_id": ["1.1.1.1"], "score": [1.0]})


class _Raises:
    def fit(self, view):
        return self

    def score(self, view):
        raise RuntimeError("kaboom in score")


class _FitRaises:
    def fit(self, view):
        raise ValueError("cannot fit")

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class _PeeksAtTruth:
    """Tries to reach the truth through the view's attributes."""

    def fit(self, view):
        return self

    def score(self, view):
        for value in vars(view).values():
            if isinstance(value, (str, Path)) and Path(value, "truth").exists():
                raise AssertionError("reached truth")
        return empty_alerts()


@pytest.fixture
def plugin_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the faulty detectors above under their own ids, through the real loader."""
    mod = types.ModuleType("bb_faulty_detectors")
    mod.LookAhead, mod.Raises, mod.FitRaises, mod.PeeksAtTruth = _LookAhead, _Raises, _FitRaises, _PeeksAtTruth
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    real = dict(registry())
    fake = {
        **real,
        "lookahead-test": "bb_faulty_detectors:LookAhead",
        "raises-test": "bb_faulty_detectors:Raises",
        "fit-raises-test": "bb_faulty_detectors:FitRaises",
        "peeks-test": "bb_faulty_detectors:PeeksAtTruth",
        "broken-import-test": "bb_no_such_module_anywhere:Thing",
        "broken-attr-test": "bb_faulty_detectors:Missing",
    }
    monkeypatch.setattr(detectors.registry, "registry", lambda: fake)


@pytest.mark.usefixtures("plugin_registry")
def test_lookahead_detector_gets_error(tiny_ds) -> None:
    run = run_detector("lookahead-test", tiny_ds)
    assert run.status == "ERROR"
    first = tiny_ds.scored[0]
    assert "lookahead-test" in run.error
    assert str(first + dt.timedelta(days=1)) in run.error and str(first) in run.error
    assert run.alerts.height == 0


@pytest.mark.usefixtures("plugin_registry")
def test_raising_detector_gets_error_with_message(tiny_ds) -> None:
    run = run_detector("raises-test", tiny_ds)
    assert run.status == "ERROR"
    assert "RuntimeError" in run.error and "kaboom in score" in run.error
    assert run.alerts.height == 0
    fit = run_detector("fit-raises-test", tiny_ds)
    assert fit.status == "ERROR" and "cannot fit" in fit.error


@pytest.mark.usefixtures("plugin_registry")
@pytest.mark.parametrize("detector_id", ["broken-import-test", "broken-attr-test", "not-registered-at-all"])
def test_unloadable_detector_gets_error(tiny_ds, detector_id: str) -> None:
    with pytest.raises(DetectorLoadError):
        load(detector_id)
    run = run_detector(detector_id, tiny_ds)
    assert run.status == "ERROR"
    assert detector_id in run.error


@pytest.mark.usefixtures("plugin_registry")
def test_view_gives_no_route_to_truth(tiny_ds) -> None:
    run = run_detector("peeks-test", tiny_ds)
    assert run.status == "OK", run.error
    assert run.events_per_s is None or math.isfinite(run.events_per_s)
