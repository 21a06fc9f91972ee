"""Stealth hides a scenario's defining signal too, not only its volume and hours.

At stealth 0 every attack row of these scenarios carries the signal that defines it (a second
person's device in the account, an outsider's device, an out-of-role edit); as stealth rises a
growing share of the rows comes from the account's own session (its holder's device and address)
or is a plain record open of the role, so that with the declared signals an observer can no
longer tell every attack row apart. Rendered on the small check world, a few seconds each.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from simulator import layout
from simulator.config import SimConfig
from simulator.scenarios.checks import CHECK_WORLD


def _attack_admin(sid: str, stealth: float, root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The attack rows of the admin stream and the incidents table, at one stealth."""
    from simulator.engine import generate

    cfg = SimConfig.model_validate(CHECK_WORLD | {"scenarios": [{"id": sid, "count": 3, "knobs": {"stealth": stealth}}]})
    out = generate(cfg, root / f"{sid}-{stealth}")
    ev = pl.read_parquet(layout.truth_file(out, "malicious_events")).filter(pl.col("stream") == "admin")
    admin = pl.concat([pl.read_parquet(f) for f in (out / "logs" / "admin").rglob("*.parquet")])
    return admin.join(ev.select("event_id"), on="event_id"), pl.read_parquet(layout.truth_file(out, "incidents"))


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
        assert share == 0.0  # a replayed session: the employee's laptop, through the company VPN
        assert (quiet["country"] == "KR").all()


def test_a_stealthy_privilege_misuser_edits_less(tmp_path: Path) -> None:
    blatant, _ = _attack_admin("privilege-misuse-v3", 0.0, tmp_path)
    quiet, _ = _attack_admin("privilege-misuse-v3", 1.0, tmp_path)
    reads = pl.col("customer_id").is_not_null()
    edits0 = blatant.filter(reads)["action"].eq("update").mean()
    edits1 = quiet.filter(reads)["action"].eq("update").mean()
    assert edits0 == 1.0
    assert edits1 is not None and 0.0 < edits1 < 0.5, edits1  # about OUT_OF_ROLE_FLOOR, the rest plain opens
    assert set(quiet.filter(reads)["action"].unique().to_list()) == {"update", "view"}
