"""coupang-forged-token-v3: a departed engineer forges tokens with a signing key he kept.

The actor is an engineer who left before the scenario starts and owns a token-signing key that
was never revoked (and that the auth service still uses for real tokens, so the key alone
gives nothing away). As in the case, he mints access tokens that have no issuance record in
auth, for sequential customer ids, and calls the customer pages as those customers from
rotating overseas cloud addresses: a probing phase of a few scattered reads a day, then a slow
bulk phase that sweeps the id range a slice a day.

With stealth, a share of his tokens is careful: he forges the customer's *refresh* token
instead and trades it at the auth service for an access token, which auth then issues and
logs like any refreshed session's (signed with one of the service's keys, no login before
it), and the session browses pages as a customer's does, the address list among them. Such a
token has an issuance record and does not carry his key. v2 forged every token as the case.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from simulator import pools, signals
from simulator.config import SimConfig
from simulator.errors import ScenarioError
from simulator.seeding import hash_unit, rng
from simulator.traffic import (
    ADDRESS_EDIT,
    ADDRESS_LIST,
    DAY_US,
    ENDPOINT_SHARE,
    ENDPOINTS,
    LOGOUT_SHARE,
    MY_INFO,
    ORDER_HISTORY,
    SEC,
    CustomerBlock,
    response_bytes,
    session_starts,
    statuses,
    think_times,
)
from simulator.world import ENGINEERS, signed_up, utc_micros


class Knobs(BaseModel):
    """Knobs of the forged-token scenario. Offsets are days after the end of the warm-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_offset: int = Field(2, ge=0, description="days after warm-up when probing starts")
    probe_days: int = Field(4, ge=0, description="days of probing before the bulk phase")
    probe_reads_per_day: int = Field(12, ge=1, description="customers read per probing day")
    daily_share: float = Field(
        0.0072, gt=0, le=1, description="share of all customers read per bulk day (case: 33.7M over ~138 days)"
    )
    bulk_days: int | None = Field(None, ge=1, description="bulk-phase length; default: to the end of the span")
    ip_pool: int = Field(40, ge=1, description="overseas addresses the crawler rotates through")
    rotation_hours: float = Field(2.0, gt=0, description="hours one address is used before rotating")
    address_list_reads: float = Field(4.4, ge=1, description="address-list reads per customer (case: 148M / 33.7M)")
    stealth: float = Field(
        0.0,
        ge=0,
        le=1,
        description="0: the case (cloud IPs abroad, strict id order, round the clock, one app version, unissued tokens); 1: domestic proxies, scattered ids, human hours, tokens issued through a forged refresh, customers' page mix",
    )
    extortion: bool = Field(
        False, description="end the incident with an extortion e-mail to the company (the case's 16 November)"
    )


@dataclass(frozen=True)
class Plan:
    """Everything needed to render any (day, block) of the incident."""

    incident_id: int
    actors: tuple[int, ...]
    key_id: str
    first_day: int
    bulk_day: int
    end_day: int  # exclusive
    lo: np.ndarray  # per bulk day: first customer id read
    hi: np.ndarray  # per bulk day: one past the last
    ips: np.ndarray
    ip_asn: np.ndarray
    ip_country: np.ndarray
    knobs: Knobs
    service_keys: tuple[str, ...] = ()  # the keys the auth service signs issued tokens with

    @property
    def signing_keys(self) -> tuple[str, ...]:
        """His own key (index 0), then the service's."""
        return (self.key_id, *self.service_keys)


class ForgedToken:
    """The 2025 case: forged tokens from a departed engineer's unrevoked signing key."""

    id = "coupang-forged-token-v3"
    summary = "departed engineer mints tokens with an unrevoked signing key; probing, then a slow sequential sweep from rotating overseas IPs"
    Knobs: TypeAlias = Knobs

    def plan(self, cfg: SimConfig, staff: dict[str, pl.DataFrame], incident_id: int, knobs: Knobs) -> Plan:
        """Pick the actor and key by fit and lay out the daily id ranges."""
        r = rng(cfg.root, "scenario-plan", incident_id)
        start = cfg.time.start
        emp = staff["employees"].filter(pl.col("role").is_in(ENGINEERS) & (pl.col("termination_date") < start))
        signing = staff["credentials"].filter((pl.col("kind") == "token-signing") & pl.col("revoked").is_null())
        keys = signing.join(emp.select(pl.col("employee_id").alias("owner_employee_id")), on="owner_employee_id").sort("key_id")
        if keys.height == 0:
            raise ScenarioError(f"{self.id}: no departed engineer owns an unrevoked signing key; set world.orphaned_keys >= 1")
        pick = keys.row(int(r.integers(keys.height)), named=True)
        first = cfg.time.warmup_days + knobs.start_offset
        bulk = first + knobs.probe_days
        end = cfg.time.days if knobs.bulk_days is None else min(cfg.time.days, bulk + knobs.bulk_days)
        if bulk >= end:
            raise ScenarioError(
                f"{self.id}: knobs put the bulk phase (day {bulk}) at or after the end of the span (day {end}); "
                f"lower start_offset/probe_days or lengthen time"
            )
        n_days = end - bulk
        w = r.uniform(0.7, 1.3, n_days)  # "a little every day", not exactly the same amount
        per_day = np.maximum(1, np.round(w * knobs.daily_share * cfg.world.customers)).astype(np.int64)
        cuts = np.minimum(np.concatenate([[0], np.cumsum(per_day)]), cfg.world.customers)  # the sweep stops at the last id
        ips, asn, country = self._addresses(knobs, r, cfg.time.home_country)
        return Plan(
            incident_id=incident_id,
            actors=(int(pick["owner_employee_id"]),),
            key_id=pick["key_id"],
            first_day=first,
            bulk_day=bulk,
            end_day=end,
            lo=cuts[:-1],
            hi=cuts[1:],
            ips=ips,
            ip_asn=asn,
            ip_country=country,
            knobs=knobs,
            service_keys=tuple(signing["key_id"].sort().to_list()),
        )

    @staticmethod
    def _addresses(knobs: Knobs, r: np.random.Generator, home: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The crawler's address pool (address, ASN, country): overseas cloud hosts, of which a stealth share
        are domestic mobile proxies instead, in the pool customers' own mobile sessions use and with their
        country (the company's, ``home``: a proxy row saying "KR" in a New York world was a label, precision 1)."""
        ips, asn, idx = pools.addresses_in(pools.FOREIGN_CLOUD, r.random(knobs.ip_pool), r.random(knobs.ip_pool))
        country = pools.FOREIGN_CLOUD.country[idx]
        proxy = r.random(knobs.ip_pool) < knobs.stealth
        k_ip, k_asn, k_idx = pools.addresses_in(pools.KR_MOBILE, r.random(knobs.ip_pool), r.random(knobs.ip_pool))
        return (
            np.where(proxy, k_ip, ips),
            np.where(proxy, k_asn, asn),
            np.where(proxy, home, country),
        )

    def declared_easy(self, knobs: Knobs) -> str | None:
        """Easy on purpose, whatever the knobs: the case's hole is a key whose owner has left (at stealth 1 the
        service still signs a share of everyone's tokens, his careful ones included, with it)."""
        return (
            "the case as it happened: the forging key's owner left before the span, so a departed-owner rule flags it on day one"
        )

    def signals(self, knobs: Knobs) -> dict[str, tuple[str, ...]]:
        """Phase -> the behavioural signals its rows carry at these knobs (see :mod:`simulator.signals`)."""
        s = knobs.stealth
        # the crawler's client is never the customer's own device, whatever version it claims; even a
        # careful session reads the address list, which most customers' sessions do not
        common = {"page_mix", "rotating_ips", "new_origin", "new_device", "volume", "dormant_targets"}
        if s > 0:  # careful tokens come from a forged refresh token: he cannot log in as the customer
            common |= {"no_login"}
        if s < 1:
            common |= {"unissued_token", "departed_owner"}
            common |= {"foreign_origin", "cloud_origin", "sequential_ids", "off_hours", "uniform_client"}
        out = {
            "probe": signals.check(common, f"{self.id} phase probe"),
            "bulk": signals.check(common | {"breadth"}, f"{self.id} phase bulk"),
        }
        if knobs.extortion:
            out["extortion"] = signals.check({"extortion"}, f"{self.id} phase extortion")
        return out

    def window(self, plan: Plan) -> tuple[int, int]:
        """First and one-past-last day index of malicious activity (the e-mail's day included)."""
        return plan.first_day, plan.end_day + self._mail_days(plan)

    @staticmethod
    def _mail_days(plan: Plan) -> int:
        return 1 if plan.knobs.extortion else 0

    def phases(self, plan: Plan) -> str:
        """Phase layout as text for the incidents table."""
        text = f"probe:{plan.first_day}-{plan.bulk_day};bulk:{plan.bulk_day}-{plan.end_day}"
        return text + (f";extortion:{plan.end_day}-{plan.end_day + 1}" if plan.knobs.extortion else "")

    def render_staff(self, plan: Plan, cfg: SimConfig, day_index: int, ctx: object) -> dict[str, pl.DataFrame]:
        """The extortion e-mail, logged by the company's security desk the day after the last read."""
        if not (plan.knobs.extortion and day_index == plan.end_day and day_index < cfg.time.days):
            return {}
        t0 = utc_micros(cfg.time.start + dt.timedelta(days=day_index), cfg.time.timezone)
        return {
            "hr": pl.DataFrame(
                {
                    "ts": [t0 + 10 * 3600 * SEC],
                    "subject_kind": ["company"],
                    "subject_id": ["security-desk"],
                    "event": ["extortion_email"],
                    "detail": ["sender claims to hold customer names, addresses and phone numbers"],
                    "phase": ["extortion"],
                }
            )
        }

    @staticmethod
    def _app_versions(r: np.random.Generator, n: int, stealth: float) -> np.ndarray:
        """Index into the UA pool per forged token: one Android app version, or (a stealth share of
        tokens) a client and version drawn as customers' own clients are."""
        if stealth == 0:
            return np.zeros(n, dtype=np.int64)
        drawn = pools.user_agent_index(r.random(n), r.integers(0, 1 << 30, n))
        return np.where(r.random(n) < stealth, drawn, 0)

    @staticmethod
    def _position(plan: Plan, cfg: SimConfig, ids: np.ndarray) -> np.ndarray:
        """Where each id falls in the sweep: its own id, or (a stealth share of ids) a scattered slot.

        A scattered slot is drawn per id and incident from the world's seed, which detectors do not
        know: a slot that anyone can compute from the id (an affine map whose multiplier followed
        from the customer count) let a detector see the "scattered" sweep as a run of neighbours
        and rank its tokens at AUC 0.94-0.96 at stealth 1.
        """
        n = cfg.world.customers
        slot = np.minimum((hash_unit(cfg.root, f"sweep-slot-{plan.incident_id}", ids) * n).astype(np.int64), n - 1)
        pick = hash_unit(cfg.root, "sweep-scatter", ids) < plan.knobs.stealth
        return np.where(pick, slot, ids)

    def render(self, plan: Plan, cfg: SimConfig, day_index: int, block: int, ctx: CustomerBlock) -> dict[str, pl.DataFrame]:
        """Malicious gateway rows of one (day, block), and the auth rows of careful tokens' issuance.

        Only customers who exist on the day are read. Per forged token (one per customer read)
        the pages follow a customer's think times, the status codes the gateway's usual mix, and
        the client one app version (stealth: the version a customer's app would be). A forged
        access token has no auth rows; a careful one (a stealth share) is issued by auth a second
        before its session starts, from the crawler's address, signed with a service key drawn as
        customers' sessions' are, and browses a customer's page mix with the address list in it.
        """
        if not plan.first_day <= day_index < plan.end_day:
            return {}
        k = plan.knobs
        t0 = utc_micros(cfg.time.start + dt.timedelta(days=day_index), cfg.time.timezone)
        day_rng = rng(cfg.root, "scenario-day", plan.incident_id, day_index)
        slot_ip = day_rng.integers(0, len(plan.ips), int(np.ceil(24 / k.rotation_hours)) + 1)
        phase = "probe" if day_index < plan.bulk_day else "bulk"
        targets, frac = self._targets(plan, cfg, day_index, ctx, day_rng)
        if len(targets) == 0:
            return {}
        r = rng(cfg.root, "scenario-render", plan.incident_id, day_index, block)
        n = len(targets)
        t_cust = t0 + (frac * (DAY_US - 3600 * SEC)).astype(np.int64) + r.integers(0, 30 * SEC, n)
        if k.stealth > 0:  # human hours: a stealth share of the tokens start when the customer's own sessions would
            human = r.random(n) < k.stealth
            t_cust = np.where(human, session_starts(cfg, ctx, ctx.index(targets), t0, r), t_cust)
        token = r.integers(1, np.iinfo(np.int64).max, n, dtype=np.int64)
        careful = r.random(n) < k.stealth if k.stealth > 0 else None
        cust, ep, per = self._pages(k, r, n, careful, cfg.traffic.pages_per_session)
        ts = t_cust[cust] + think_times(r, per)
        # the address a token is used from is the one of the rotation slot its first page falls in
        slot = ((np.minimum(t_cust, t0 + DAY_US - 1) - t0) // int(k.rotation_hours * 3600 * SEC)).astype(np.int64)[cust]
        ip_i = slot_ip[slot]
        cid = targets[cust]
        n_addr = ctx.n_addresses[ctx.index(cid)]
        records = np.where(
            ep == ADDRESS_LIST,
            n_addr,
            np.where(ep == ORDER_HISTORY, 1 + r.poisson(4, len(cust)), np.isin(ep, (MY_INFO, ADDRESS_EDIT)).astype(np.int64)),
        )
        key = np.zeros(n, dtype=np.int64)  # index into plan.signing_keys: his own for a forged access token
        if careful is not None:
            key = np.where(careful, 1 + r.integers(0, len(plan.service_keys), n), key)
        token_key = pl.Series(plan.signing_keys, dtype=pl.String).gather(key)  # each token's signing key
        gateway = pl.DataFrame(
            {
                "ts": ts,
                "customer_id": cid,
                "token_id": token[cust],
                "key_id": token_key.gather(cust),
                "endpoint": pl.Series(ENDPOINTS).gather(ep),
                "ip": plan.ips[ip_i],
                "country": plan.ip_country[ip_i].tolist(),
                "asn": plan.ip_asn[ip_i],
                "user_agent": pools.UA_POOL.gather(self._app_versions(r, n, k.stealth)[cust]),
                "status": statuses(r, len(cust)),
                "bytes": response_bytes(r, ep, records),
                "records_returned": records.astype(np.int32),
                "phase": [phase] * len(cust),
            }
        )
        # pages past midnight fall out of the day, as customers' own do
        gateway = gateway.filter(pl.col("ts") < t0 + DAY_US)
        out = {"gateway": gateway} if gateway.height else {}
        if careful is not None and careful.any():
            first, last = np.cumsum(per) - per, ts[np.cumsum(per) - 1]  # each token's first page, its last page's time
            logout = careful & (r.random(n) < LOGOUT_SHARE) & (last + 5 * SEC < t0 + DAY_US)
            out["auth"] = self._issued(
                plan, t0, token, token_key, targets, ip_i[first], phase, start=t_cust, last=last, careful=careful, logout=logout
            )
        return out

    @staticmethod
    def _issued(
        plan: Plan,
        t0: int,
        token: np.ndarray,
        token_key: pl.Series,
        targets: np.ndarray,
        ip_i: np.ndarray,
        phase: str,
        *,
        start: np.ndarray,
        last: np.ndarray,
        careful: np.ndarray,
        logout: np.ndarray,
    ) -> pl.DataFrame:
        """Auth rows of careful tokens, as a refreshed customer session's: the issuance (traded for a forged refresh
        token) a second before the session starts, and for ``logout`` tokens a logout 5 s after the last page; from the
        crawler's address of the moment. Per token: its signing key, session start and last page's time, whether
        it is careful and whether it logs out."""
        i = np.concatenate([np.flatnonzero(careful), np.flatnonzero(logout)])
        issued = np.arange(len(i)) < int(careful.sum())
        return pl.DataFrame(
            {
                "ts": np.where(issued, np.maximum(start[i] - SEC, t0), last[i] + 5 * SEC),
                "event": pl.Series(["logout", "token_issued"]).gather(issued.astype(np.int64)),
                "customer_id": targets[i],
                "token_id": token[i],
                # a logout names the token, not its key, as customers' logouts
                "key_id": token_key.gather(i).set(pl.Series(~issued), None),
                "ip": plan.ips[ip_i[i]],
                "country": plan.ip_country[ip_i[i]].tolist(),
                "phase": [phase] * len(i),
            }
        )

    def _targets(
        self, plan: Plan, cfg: SimConfig, day_index: int, ctx: CustomerBlock, day_rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """The block's customers read on the day, in order, and when in the day (a fraction): a few scattered
        probing reads (drawn for the whole world, so every block draws the same), then the day's slice of the sweep."""
        ids = ctx.ids
        if day_index < plan.bulk_day:
            targets = np.sort(day_rng.integers(0, signed_up(cfg, day_index), plan.knobs.probe_reads_per_day))
            frac = np.sort(day_rng.random(len(targets)))
            sel = (targets >= int(ids[0])) & (targets < int(ids[-1]) + 1)
            return targets[sel], frac[sel]
        d = day_index - plan.bulk_day
        lo, hi = int(plan.lo[d]), int(plan.hi[d])
        pos = self._position(plan, cfg, ids.astype(np.int64))
        sel = (pos >= lo) & (pos < hi) & ctx.signed_up(day_index)
        targets, pos = ids[sel].astype(np.int64), pos[sel]
        order = np.argsort(pos, kind="stable")
        return targets[order], (pos[order] - lo + 0.5) / max(hi - lo, 1)  # the sweep walks its positions in order over the day

    @classmethod
    def _pages(
        cls, k: Knobs, r: np.random.Generator, n: int, careful: np.ndarray | None, pages_per_session: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pages of ``n`` tokens (one per customer), (token index per page, endpoint per page, pages per token):
        the crawler's (:meth:`_crawl`), or for ``careful`` tokens a customer's session's, as many pages and
        drawn from the same mix, one of them the address list."""
        cust, ep, per = cls._crawl(k, r, n)
        if careful is None:
            return cust, ep, per
        per_h = np.minimum(r.geometric(1.0 / pages_per_session, n), 60)
        ep_h = r.choice(len(ENDPOINTS), size=int(per_h.sum()), p=ENDPOINT_SHARE)
        ep_h[np.cumsum(per_h) - per_h + (r.random(n) * per_h).astype(np.int64)] = ADDRESS_LIST
        keep, hum = ~careful[cust], np.repeat(careful, per_h)
        tok = np.concatenate([cust[keep], np.repeat(np.arange(n), per_h)[hum]])
        order = np.argsort(tok, kind="stable")
        return tok[order], np.concatenate([ep[keep], ep_h[hum]])[order], np.where(careful, per_h, per)

    @staticmethod
    def _crawl(k: Knobs, r: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The crawler's pages of ``n`` tokens: my-info once, the address list a few times, rarely an edit or the
        orders; (token index per page, endpoint per page, pages per token)."""
        al = 1 + r.poisson(k.address_list_reads - 1, n)
        extra_edit = (r.random(n) < 0.0015).astype(np.int64)
        extra_orders = (r.random(n) < 0.003).astype(np.int64)
        per = 1 + al + extra_edit + extra_orders
        cust = np.repeat(np.arange(n), per)
        pos = np.arange(len(cust)) - np.repeat(np.cumsum(per) - per, per)
        ep = np.full(len(cust), ADDRESS_LIST)
        ep[pos == 0] = MY_INFO
        last = pos == np.repeat(per - 1, per)
        ep[last & np.repeat(extra_orders == 1, per)] = ORDER_HISTORY
        ep[(pos == np.repeat(per - 1 - extra_orders, per)) & np.repeat(extra_edit == 1, per)] = ADDRESS_EDIT
        return cust, ep, per
