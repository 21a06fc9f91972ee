"""Stealth hides a scenario's defining signal too, not only its volume and hours.

At stealth 0 every attack row of these scenarios carries the signal that defines it (a second
person's device in the account, an outsider's device, an out-of-role edit); as stealth rises a
growing share of the rows comes from the account's own session (its holder's device and address)
or is a plain record open of the role, so that with the declared signals an observer can no
longer tell every attack row apart. Rendered on the small check world, a few seconds each.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from simulator import layout
from simulator.config import SimConfig
from simulator.scenarios.checks import CHECK_WORLD


def _attack_admin(sid: str, stealth: float, root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The attack rows of the admin stream and the incidents table, at one stealth."""
    return _attack_admin_knobs(sid, {"stealth": stealth}, root / sid)


def _foreign_device_share(rows: pl.DataFrame) -> float:
    """Share of rows whose device is not the company laptop of the account that logged them (LT-<employee>)."""
    own = pl.format("LT-{}", pl.col("employee_id").cast(pl.String).str.zfill(5))
    return float((rows["device"] != rows.select(own).to_series()).mean() or 0.0)


@pytest.mark.parametrize("sid", ["classic-admin-impersonation-v3", "classic-colleague-mailout-v3", "compromised-employee-v3"])
def test_a_growing_share_of_rows_comes_from_the_accounts_own_session(sid: str, tmp_path: Path) -> None:
    blatant, _ = _attack_admin(sid, 0.0, tmp_path)
    quiet, _ = _attack_admin(sid, 1.0, tmp_path)
    assert blatant.height >= 20 and quiet.height >= 5, (blatant.height, quiet.height)
    # blatant: every row from another machine than the account's own; at stealth 1, most from the account's own
    assert _foreign_device_share(blatant) == 1.0
    share = _foreign_device_share(quiet)
    assert share < 0.5, f"{sid}: {share:.0%} of the stealth-1 rows still on another device"
    if sid == "compromised-employee-v3":
        assert share == 0.0  # the holder's own session: their laptop, wherever they work that day
        assert (quiet["country"] == "KR").all()


def test_a_stealthy_takeover_never_puts_the_account_at_two_places_at_once(tmp_path: Path) -> None:
    """At stealth 1 the outsider drives the holder's own working session: every attack row of a day the holder works
    carries an address and device of the holder's own rows that day, and no day of the account has two addresses
    whose time ranges overlap. A replay from a VPN address of its own took turns with the holder's office address on
    102 of 103 attack days (data version 25), which 28 of 32,670 benign employee-days do."""
    rows, _ = _attack_admin_knobs("compromised-employee-v3", {"stealth": 1.0, "actors": 3}, tmp_path)
    admin = pl.concat([pl.read_parquet(f) for f in (tmp_path / "actors3-stealth1.0" / "logs" / "admin").rglob("*.parquet")])
    tz = SimConfig.model_validate(CHECK_WORLD).time.timezone
    day = pl.col("ts").dt.convert_time_zone(tz).dt.date().alias("day")
    attack = rows.select("event_id", "employee_id", "src_ip", "device", day)
    benign = admin.join(rows.select("event_id"), on="event_id", how="anti").select("employee_id", "src_ip", "device", day)
    held = attack.join(benign.select("employee_id", "day").unique(), on=["employee_id", "day"])
    assert attack.height >= 5 and held.height == attack.height, "the outsider came in on a day the holder did not"
    assert held.join(benign.unique(), on=["employee_id", "day", "src_ip", "device"], how="anti").is_empty()
    spans = (
        admin.with_columns(day)
        .join(attack.select("employee_id", "day").unique(), on=["employee_id", "day"])
        .group_by("employee_id", "day", "src_ip")
        .agg(lo=pl.col("ts").min(), hi=pl.col("ts").max())
    )
    pairs = spans.join(spans, on=["employee_id", "day"], suffix="2").filter(pl.col("src_ip") < pl.col("src_ip2"))
    assert pairs.filter((pl.col("lo") < pl.col("hi2")) & (pl.col("lo2") < pl.col("hi"))).is_empty()


def test_a_stealthy_privilege_misuser_edits_less(tmp_path: Path) -> None:
    blatant, _ = _attack_admin("privilege-misuse-v3", 0.0, tmp_path)
    quiet, _ = _attack_admin("privilege-misuse-v3", 1.0, tmp_path)
    reads = pl.col("customer_id").is_not_null()
    edits0 = blatant.filter(reads)["action"].eq("update").mean()
    edits1 = quiet.filter(reads)["action"].eq("update").mean()
    assert edits0 == 1.0
    assert edits1 is not None and 0.0 < edits1 < 0.5, edits1  # about OUT_OF_ROLE_FLOOR, the rest plain opens
    assert set(quiet.filter(reads)["action"].unique().to_list()) == {"update", "view"}


def test_a_stealthy_slow_drip_keeps_the_analysts_mix_of_reads_and_queries(tmp_path: Path) -> None:
    """At stealth 1 a slow drip's pulls run as routine queries and come with the odd single read, as an analyst's
    routine queries do (single_read_share: a quarter of their rows); at stealth 0 it only pulls."""
    from simulator.staff_traffic import single_read_share

    def single_share(stealth: float) -> tuple[float, int]:
        rows, _ = _attack_admin_knobs("slow-drip-analyst-v2", {"stealth": stealth, "rate": 4.0, "actors": 3}, tmp_path)
        return float(rows["customer_id"].is_not_null().mean() or 0.0), rows.height

    blatant, n0 = single_share(0.0)
    quiet, n1 = single_share(1.0)
    assert blatant == 0.0 and n0 > 100
    assert n1 > 50 and abs(quiet - single_read_share("analyst")) < 0.1, (quiet, n1)


def _attack_admin_knobs(sid: str, knobs: dict[str, float], root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The attack rows of the admin stream and the incidents table, at these knobs."""
    from simulator.engine import generate

    cfg = SimConfig.model_validate(CHECK_WORLD | {"scenarios": [{"id": sid, "count": 3, "knobs": knobs}]})
    out = generate(cfg, root / "-".join(f"{k}{v}" for k, v in sorted(knobs.items())))
    ev = pl.read_parquet(layout.truth_file(out, "malicious_events")).filter(pl.col("stream") == "admin")
    admin = pl.concat([pl.read_parquet(f) for f in (out / "logs" / "admin").rglob("*.parquet")])
    return admin.join(ev.select("event_id"), on="event_id"), pl.read_parquet(layout.truth_file(out, "incidents"))


def _forged(stealth: float, root: Path) -> dict[str, pl.DataFrame]:
    """The forged-token incident's attack rows (gateway, auth) and its actor's key, at one stealth, on the check world."""
    from simulator.engine import generate

    cfg = SimConfig.model_validate(
        CHECK_WORLD
        | {"scenarios": [{"id": "coupang-forged-token-v3", "knobs": {"stealth": stealth, "start_offset": 1, "probe_days": 2}}]}
    )
    out = generate(cfg, root / f"forged-{stealth}")
    ev = pl.read_parquet(layout.truth_file(out, "malicious_events"))
    rows = {}
    for stream in ("gateway", "auth"):
        logs = pl.concat([pl.read_parquet(f) for f in (out / "logs" / stream).rglob("*.parquet")], how="diagonal_relaxed")
        rows[stream] = logs.join(ev.filter(pl.col("stream") == stream).select("event_id"), on="event_id")
    creds = pl.read_parquet(next((out / "world").glob("credentials-*.parquet")))
    actor = pl.read_parquet(layout.truth_file(out, "incidents"))["actors"][0][0]
    rows["own_keys"] = creds.filter(pl.col("owner_employee_id") == actor).select("key_id")
    from breachbench.dataset import Dataset

    rows["key_roles"] = Dataset.open(out).positive_units.filter(pl.col("entity_kind") == "key")
    return rows


def test_a_careful_forger_has_his_tokens_issued_and_signed_by_the_service(tmp_path: Path) -> None:
    blatant = _forged(0.0, tmp_path)
    # the case: no token was ever issued, and every one carries his own key
    assert blatant["gateway"].height >= 100 and blatant["auth"].height == 0
    assert blatant["gateway"]["key_id"].is_in(blatant["own_keys"]["key_id"].implode()).all()
    quiet = _forged(1.0, tmp_path)
    gw, auth = quiet["gateway"], quiet["auth"]
    assert gw.height >= 100
    # every token is issued by auth as a refreshed session's: one token_issued row, no login, a second
    # before the session starts (its first page a think time later), from the address the pages come
    # from, with the key the pages carry; some sessions end with a logout, as customers' do
    assert sorted(auth["event"].unique().to_list()) == ["logout", "token_issued"]
    logout = auth.filter(pl.col("event") == "logout")
    assert 0.15 < logout.height / gw["token_id"].n_unique() < 0.45 and logout["key_id"].null_count() == logout.height
    issued = auth.filter(pl.col("event") == "token_issued")
    first = gw.group_by("token_id").agg(pl.col("ts").min().alias("first"), pl.col("src_ip", "key_id", "customer_id").first())
    assert issued["token_id"].n_unique() == issued.height == first.height
    both = first.join(issued.select("token_id", "ts", "src_ip", "key_id", "customer_id"), on="token_id", suffix="_auth")
    assert both.height == first.height
    assert (both["ts"] < both["first"]).all() and (both["first"] - both["ts"] <= dt.timedelta(minutes=10)).all()
    assert (both["src_ip"] == both["src_ip_auth"]).all() and (both["customer_id"] == both["customer_id_auth"]).all()
    assert (both["key_id"] == both["key_id_auth"]).all() and both["key_id"].n_unique() > 1  # the service's keys, not his one
    # a detection names him: his own key where the service signed with it, never another key of the service
    roles = quiet["key_roles"].with_columns(his=pl.col("entity_id").is_in(quiet["own_keys"]["key_id"].implode()))
    assert (roles.filter("his")["role"] == "actor").all() and (roles.filter(~pl.col("his"))["role"] == "shared").all()
    assert roles.filter(~pl.col("his")).height > 0
    assert (blatant["key_roles"]["role"] == "actor").all()
    # and the session browses: more than the personal-data pages, the address list in every session
    assert gw["endpoint"].n_unique() > 4
    assert gw.group_by("token_id").agg((pl.col("endpoint") == "/address-list").any())["endpoint"].all()
    # the scattered sweep leaves no order a detector can compute: under every affine map of the ids onto
    # themselves (a public multiplier once made a bulk day's reads a run of neighbours), a bulk day's reads
    # spread over the ring as a random set does, never into a short arc
    n = CHECK_WORLD["world"]["customers"]
    days = gw.group_by(pl.col("ts").dt.date()).agg(pl.col("customer_id").unique()).filter(pl.col("customer_id").list.len() >= 8)
    assert days.height >= 3
    for ids in days["customer_id"].to_list():
        assert _narrowest_arc(np.asarray(ids, dtype=np.int64), n) > n // 10, sorted(ids)


def _narrowest_arc(ids: np.ndarray, n: int) -> int:
    """Over every multiplier a coprime to ``n``: the shortest arc of the ring 0..n-1 that holds nine in ten of the
    positions a * id mod n (the smallest over all the maps)."""
    k = len(ids)
    m = max(2, int(np.ceil(0.9 * k)))
    best = n
    for a in (a for a in range(1, n) if math.gcd(a, n) == 1):
        p = np.sort((ids * a) % n)
        ring = np.concatenate([p, p + n])
        best = min(best, int((ring[m - 1 : m - 1 + k] - ring[:k]).min()))
    return best
