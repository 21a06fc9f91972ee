"""Deliberately broken scenarios: ``check_scenario`` must fail each of them, naming the check."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import numpy as np
import polars as pl

from simulator.scenarios.insiders import SlowDripAnalyst, SnoopingAgent


class StartsEarly(SnoopingAgent):
    """Claims to start two days later than its first malicious event."""

    id = "bad-starts-early-v1"

    def window(self, plan):
        return plan.first_day + 2, plan.end_day


class Nondeterministic(SnoopingAgent):
    """Reads the clock: two generations differ."""

    id = "bad-nondeterministic-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            jitter = np.random.default_rng(time.time_ns()).integers(0, 1_000_000, out["admin"].height)
            out["admin"] = out["admin"].with_columns(pl.col("ts") + pl.Series(jitter))
        return out


class UnexposedPulls(SlowDripAnalyst):
    """Bulk pulls that lose their id range: the logs show the rows, the exposure truth misses them."""

    id = "bad-unexposed-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            out["admin"] = out["admin"].with_columns(pl.lit(None, pl.Int64).alias("_xn"))
        return out


class ActsAfterLeaving(SnoopingAgent):
    """Its admin rows carry the account of someone already gone (benign accounts go quiet on their holder's last day)."""

    id = "bad-after-leaving-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            gone = int(ctx.staff.ids[int(np.argmin(ctx.staff.term))])
            out["admin"] = out["admin"].with_columns(employee_id=pl.lit(gone, pl.Int64))
        return out


class BadId(SnoopingAgent):
    """An id without a version."""

    id = "snooping"


# ---- planted artefacts: the artefact audit (breachbench.artefacts) must name the column of each ----------
# Each subclasses a built-in and overrides only what plants the leak, so it stays a plant after the
# built-ins are fixed.

from simulator import pools  # noqa: E402
from simulator.scenarios.forged_token import ForgedToken  # noqa: E402
from simulator.scenarios.insiders import ColleagueMailout, CompromisedEmployee  # noqa: E402
from simulator.seeding import rng  # noqa: E402
from simulator.staff_traffic import OFFICE_NET, Session  # noqa: E402
from simulator.world import utc_micros  # noqa: E402


class ReplayedTakeover(CompromisedEmployee):
    """The takeover as drawn until data version 25, the base of plants that need the outsider's own session: at stealth
    above 0, the stolen session replayed from a VPN address of its own with a login, at the holder's hours, beside the
    holder's own session (the built-in now drives the holder's session, with no login and no address of its own).
    Declares the second address, device and session that this makes, at any stealth."""

    id = "planted-replayed-takeover-v1"

    def signals(self, knobs):
        extra = ("new_device", "new_origin", "concurrent_use")
        return {phase: tuple(sorted({*sig, *extra})) for phase, sig in super().signals(knobs).items()}

    def _sessions(self, ad):
        day = super()._sessions(ad)
        if day.own is None:
            return day
        vpn = ad.sd.night_session(ad.actor, ad.r)
        return dataclasses.replace(day, own=Session(ad.sd.usual_start(ad.actor, ad.r), vpn.ip, vpn.country, vpn.device))

    @staticmethod
    def _when(ad, n, day):
        ts, sessions = CompromisedEmployee._when(ad, n, day)
        return ts, [(rows, sess, night, True) for rows, sess, night, _ in sessions]  # every session opens with a login


#: A user agent no benign client sends.
PLANTED_AGENT = "BreachBot/1.0 (planted; +https://example.invalid/bot)"


class ConstantAgent(ForgedToken):
    """Forged-token rows that all carry one user agent no customer's client sends (audit at stealth 1, where nothing declares it)."""

    id = "planted-constant-agent-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        out = super().render(plan, cfg, day_index, block, ctx)
        if "gateway" in out:
            out["gateway"] = out["gateway"].with_columns(user_agent=pl.lit(PLANTED_AGENT))
        return out


def _replaced(out: dict, column: str, old: str, new: str, stream: str = "gateway") -> dict:
    """``out`` with ``old`` in the ``stream`` rows' ``column`` replaced by ``new``."""
    if stream in out:
        c = pl.col(column)
        out[stream] = out[stream].with_columns(pl.when(c == old).then(pl.lit(new)).otherwise(c).alias(column))
    return out


#: The shop's Android app at a version no customer's app runs (customers': 7.12.0 and 7.11.2), the shape of theirs.
UNSEEN_VERSION = "ShopApp/7.12.1 (Android 14; SM-S921N)"


class UnseenAppVersion(ForgedToken):
    """The forged tokens' one Android app version (the pool's first client) at a version no customer's app sends: the
    shape of the shop's app, a value none has. At the forged token's default knobs, where one client version is
    declared (``uniform_client``): that explains which of the customers' clients the rows carry, not a version none of
    them runs; until 2026-12-07 it covered any value of the column, and this passed there."""

    id = "planted-unseen-app-version-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        return _replaced(super().render(plan, cfg, day_index, block, ctx), "user_agent", pools.UA_POOL[0], UNSEEN_VERSION)


class UnseenEndpoint(ForgedToken):
    """The forged tokens' address pages from an endpoint no customer's session calls (``/address-export``, the shape of
    ``/address-list``). At the forged token's default knobs, where a mix of pages no customer produces is declared
    (``page_mix``): that explains how often each of the customers' pages comes, not a page none of them calls; until
    2026-12-07 it covered any value of the column, and this passed there."""

    id = "planted-unseen-endpoint-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        return _replaced(super().render(plan, cfg, day_index, block, ctx), "endpoint", "/address-list", "/address-export")


class EvenTokens(ForgedToken):
    """Every forged token's id even (a minting script's counter in steps of two). At the forged token's default knobs,
    where tokens with no issuance record are declared (``unissued_token``): that explains the missing issuance, not the
    ids' digits; until 2026-12-07 the signal named the whole token column, and this passed there."""

    id = "planted-even-tokens-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        return _floored(super().render(plan, cfg, day_index, block, ctx), "token_id", 2, "gateway")


class EvenTokensPaddedPages(EvenTokens):
    """Even token ids, and every forged page's size padded down to a multiple of 16 bytes (a proxy's framing). At the
    forged token's default knobs, where a mix of pages no customer produces is declared (``page_mix``): that explains
    which pages and how large, not the digits of a size the server draws as it does for anyone; until 2026-12-07 the
    signal named the whole column, and this passed there (mod 16: z 25.0 against a line of 6.0, reported as declared)."""

    id = "planted-even-tokens-padded-pages-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        return _floored(super().render(plan, cfg, day_index, block, ctx), "bytes", 16, "gateway")


class EvenPages(ForgedToken):
    """Each forged token's pages evenly spaced between its first and last (a scripted crawler's fixed delay); the
    first and last page, and so the hours, stay as drawn."""

    id = "planted-even-pages-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        out = super().render(plan, cfg, day_index, block, ctx)
        if "gateway" in out:
            g = out["gateway"].with_row_index("_i").sort("token_id", "ts")
            k, n = pl.int_range(pl.len()).over("token_id"), pl.len().over("token_id")
            t0, t1 = pl.col("ts").min().over("token_id"), pl.col("ts").max().over("token_id")
            even = t0 + ((t1 - t0) * k / (n - 1).clip(1)).floor().cast(pl.Int64)
            out["gateway"] = g.with_columns(ts=pl.when(n > 1).then(even).otherwise(pl.col("ts"))).sort("_i").drop("_i")
        return out


class PrivateTickets(SnoopingAgent):
    """Tickets from a private range (ids >= 2**60) that no ticketing system hands out."""

    id = "planted-private-tickets-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            a = out["admin"]
            fresh = rng(cfg.root, "planted-tickets", day_index).integers(0, 1 << 20, a.height)
            out["admin"] = a.with_columns(
                ticket_id=pl.when(pl.col("ticket_id").is_not_null()).then(
                    pl.lit(1 << 60, pl.Int64) + pl.Series(fresh, dtype=pl.Int64)
                )
            )
        return out


def _floored(out: dict, column: str, step: int, stream: str = "admin") -> dict:
    """``out`` with the ``stream`` rows' ``column`` rounded down to a multiple of ``step``."""
    if stream in out:
        out[stream] = out[stream].with_columns(pl.col(column) - pl.col(column) % step)
    return out


class EvenTickets(SnoopingAgent):
    """Tickets of the benign process with the last bit cleared: every attack ticket number is even (a step of two)."""

    id = "planted-even-tickets-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        return _floored(super().render_staff(plan, cfg, day_index, ctx), "ticket_id", 2)


class MillisecondTimes(SnoopingAgent):
    """Every attack row's time cut to the whole millisecond (benign rows carry microseconds): a tool's own clock."""

    id = "planted-ms-times-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        return _floored(super().render_staff(plan, cfg, day_index, ctx), "ts", 1000)


class FreshIpPerRow(SnoopingAgent):
    """A fresh random office address on every admin row (benign staff keep their login's address all day)."""

    id = "planted-fresh-ip-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            a = out["admin"]
            u = rng(cfg.root, "planted-ip", day_index).random(a.height)
            out["admin"] = a.with_columns(ip=pl.Series(OFFICE_NET[0] + (u * OFFICE_NET[1]).astype(np.int64)))
        return out


class ReadsBeforeSignup(CompromisedEmployee):
    """Reads of customers who have not signed up yet: ids above the largest customer id."""

    id = "planted-before-signup-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            out["admin"] = out["admin"].with_columns(pl.col("customer_id") + cfg.world.customers)
        return out


class WrongColumn(SnoopingAgent):
    """Writes the address as a ``src_ip`` string instead of the integer ``ip`` column the engine expects."""

    id = "planted-wrong-column-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            out["admin"] = out["admin"].drop("ip").with_columns(src_ip=pl.lit("203.0.113.9"))
        return out


class ViewsWithoutCustomer(SlowDripAnalyst):
    """Half the analyst's single views name no customer: benign views always name one, and only pulls
    (queries, exports) leave the customer null. The null share of all attack rows stays within what the read/pull
    mix moves; among views it is new."""

    id = "planted-views-without-customer-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            a = out["admin"]
            u = pl.Series(rng(cfg.root, "planted-null-view", day_index).random(a.height))
            out["admin"] = a.with_columns(
                customer_id=pl.when((pl.col("action") == "view") & (u < 1 / 2)).then(None).otherwise(pl.col("customer_id"))
            )
        return out


class RowsAMinuteAfterLogin(ReplayedTakeover):
    """Each day's first admin row comes exactly a minute after the day's first login of the outsider's session
    (the rest of the day's rows shifted with it): a script started by the login, where a person's first read
    follows at a person's delay. No column of the admin rows alone differs."""

    id = "planted-minute-after-login-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out and "auth" in out:
            first = out["auth"].group_by("employee_id").agg(pl.col("ts").min().alias("_login"))
            a = out["admin"].join(first, on="employee_id", how="left")
            shift = pl.col("_login") + 60_000_000 - pl.col("ts").min().over("employee_id")  # times in microseconds
            # the rows the shift carries past midnight are not rendered (a day's rows lie within it)
            end = utc_micros(cfg.time.start + dt.timedelta(days=day_index + 1), cfg.time.timezone)
            out["admin"] = (
                a.with_columns(ts=pl.when(pl.col("_login").is_not_null()).then(pl.col("ts") + shift).otherwise(pl.col("ts")))
                .filter(pl.col("ts").cast(pl.Int64) < end)
                .drop("_login")
            )
        return out


class EvenlySpacedTakeover(ReplayedTakeover):
    """The outsider's admin rows of a day come two minutes apart, from the day's first on: a script's loop, where a
    person's reads spread. The account's holder works the same day from their own device and address."""

    id = "planted-evenly-spaced-takeover-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            a = out["admin"].sort("ts")
            step = pl.int_range(pl.len()).over("employee_id") * 120_000_000  # times in microseconds
            out["admin"] = a.with_columns(ts=pl.col("ts").min().over("employee_id") + step)
        return out


# ---- planted by a red team (2026-12-06): leaks the audit's tests did not see until they were added -----------------


class WholeMinuteTimes(SnoopingAgent):
    """Every attack row at second :00 of its minute (sub-second kept): a scheduler's tick. The hour barely moves."""

    id = "planted-whole-minute-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            minute, second = 60_000_000, 1_000_000  # times in microseconds
            out["admin"] = out["admin"].with_columns(ts=pl.col("ts") - pl.col("ts") % minute + pl.col("ts") % second)
        return out


class SortedCustomers(ReplayedTakeover):
    """The outsider reads each day's customers in ascending id order (the same customers, reordered by time): a script
    walking a list. No value differs from benign reads, only their order within the session."""

    id = "planted-sorted-customers-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            a = out["admin"].with_row_index("_i").sort("employee_id", "ts")
            named = a.filter(pl.col("customer_id").is_not_null()).with_columns(
                customer_id=pl.col("customer_id").sort().over("employee_id")
            )
            out["admin"] = pl.concat([named, a.filter(pl.col("customer_id").is_null())]).sort("_i").drop("_i")
        return out


class LoginAfterFirstRead(ReplayedTakeover):
    """The outsider's login of each session logged 30 s after the session's first read (a replayed session, its login
    made up afterwards): the session's first rows come before any login from that account and address that day."""

    id = "planted-login-after-first-read-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out and "auth" in out:
            first = out["admin"].group_by("employee_id", "ip").agg(pl.col("ts").min().alias("_first"))
            au = out["auth"].with_row_index("_i").join(first, on=["employee_id", "ip"], how="left", maintain_order="left")
            is_first = pl.col("ts") == pl.col("ts").min().over("employee_id", "ip")
            out["auth"] = (
                au.with_columns(
                    ts=pl.when(is_first & pl.col("_first").is_not_null())
                    .then(pl.col("_first") + 30_000_000)
                    .otherwise(pl.col("ts"))
                )
                .sort("_i")
                .drop("_i", "_first")
            )
        return out


class OneRegionReads(CompromisedEmployee):
    """The outsider reads only customers who live in one home region (the world's commonest; as many reads, each
    customer one who exists that day): every customer read is one a benign read could name, of a region benign reads
    name too, and regions are too many for a test of categories."""

    id = "planted-one-region-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        from simulator.world import customers_block

        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            cust = customers_block(cfg, 0, ("customers",))["customers"].filter(pl.col("customer_id") < ctx.customers_signed_up)
            region = cust["home_region"].value_counts().sort(["count", "home_region"], descending=[True, False])[0, 0]
            ids = cust.filter(pl.col("home_region") == region)["customer_id"].to_numpy()
            cid = out["admin"]["customer_id"]
            mapped = pl.Series("customer_id", ids[cid.fill_null(0).to_numpy() % len(ids)]).set(cid.is_null(), None)
            out["admin"] = out["admin"].with_columns(mapped)
        return out


def _reads_among(out: dict, ids: np.ndarray) -> dict:
    """The admin rows' customers mapped onto ``ids`` (as many reads, nulls kept)."""
    if "admin" in out:
        cid = out["admin"]["customer_id"]
        mapped = pl.Series("customer_id", ids[cid.fill_null(0).to_numpy() % len(ids)]).set(cid.is_null(), None)
        out["admin"] = out["admin"].with_columns(mapped)
    return out


def _reads_near(out: dict, ids: np.ndarray) -> dict:
    """The admin rows' customers each moved to the nearest id of ``ids`` (sorted): unlike :func:`_reads_among`, the ids
    keep their spread (and the days since sign-up theirs), so no bit of the id tells the plant."""
    if "admin" in out and len(ids):
        cid = out["admin"]["customer_id"]
        drawn = cid.fill_null(0).to_numpy()
        j = np.clip(np.searchsorted(ids, drawn), 1, max(1, len(ids) - 1))
        lo, hi = ids[j - 1], ids[np.minimum(j, len(ids) - 1)]
        near = np.where(np.abs(drawn - lo) <= np.abs(hi - drawn), lo, hi)
        out["admin"] = out["admin"].with_columns(pl.Series("customer_id", near).set(cid.is_null(), None))
    return out


class FixedDelay(CompromisedEmployee):
    """Each of the outsider's days, its second admin row comes exactly 41 s after its first (a script's fixed sleep
    after its first request); every other row keeps its drawn time (red team, session 45)."""

    id = "planted-fixed-delay-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" not in out or out["admin"].height == 0:
            return out
        parts = []
        for (_,), g in out["admin"].sort("ts").with_row_index("_o").group_by(["employee_id"], maintain_order=True):
            ts = g["ts"].dt.epoch("us").to_numpy().copy()
            if len(ts) >= 3 and ts[0] + 41_000_000 < ts[2]:
                ts[1] = ts[0] + 41_000_000
            parts.append(g.with_columns(ts=pl.Series(ts).cast(pl.Datetime("us", "UTC"))))
        out["admin"] = pl.concat(parts).sort("_o").drop("_o")
        return out


class EarlyMonthSignups(CompromisedEmployee):
    """The outsider reads only customers who signed up on days 1-3 of a month (a monthly promotion's cohorts): the
    weekday and month of sign-up keep their spread; the day of the month is one of three (red team, session 45)."""

    id = "planted-early-month-signups-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        cust = _signed_up(cfg, ctx)
        return _reads_near(out, cust.filter(pl.col("signup_date").dt.day() <= 3)["customer_id"].sort().to_numpy())


class BigSpenders(CompromisedEmployee):
    """The outsider's reads of customers who have ordered go to the top fifth by mean order amount (a list of big
    spenders); reads of customers who never ordered stay, so the share of orderers does too (red team, session 45)."""

    id = "planted-big-spenders-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        from simulator.world import customers_block

        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" not in out:
            return out
        orders = customers_block(cfg, 0)["orders"].filter(pl.col("customer_id") < ctx.customers_signed_up)
        mean = orders.group_by("customer_id").agg(pl.col("amount").mean().alias("m"))
        big = mean.filter(pl.col("m") >= pl.col("m").quantile(0.8))["customer_id"].sort().to_numpy()
        cid = out["admin"]["customer_id"]
        ordered = cid.is_in(mean["customer_id"].implode())
        moved = _reads_near({"admin": out["admin"]}, big)["admin"]["customer_id"]
        out["admin"] = out["admin"].with_columns(customer_id=pl.when(ordered).then(moved).otherwise(cid))
        return out


class EntranceCodes(CompromisedEmployee):
    """The outsider reads only customers whose own address carries an entrance code (a burglar's list): the addresses
    table's rows per customer stay as benign, what they hold does not (red team, session 45)."""

    id = "planted-entrance-codes-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        from simulator.world import customers_block

        out = super().render_staff(plan, cfg, day_index, ctx)
        addresses = customers_block(cfg, 0)["addresses"]
        coded = addresses.filter(pl.col("is_self") & pl.col("entrance_code").is_not_null())["customer_id"].unique()
        ids = coded.filter(coded < ctx.customers_signed_up).sort().to_numpy()
        return _reads_near(out, ids)


class IPhoneCustomers(CompromisedEmployee):
    """The outsider reads only customers whose own client is an iPhone (a lure written for iOS): the client is in the
    gateway's rows of the customer, in no world table (red team, session 45)."""

    id = "planted-iphone-customers-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        from simulator import pools
        from simulator.traffic import customer_context

        out = super().render_staff(plan, cfg, day_index, ctx)
        cust = _signed_up(cfg, ctx)
        client = pools.UA_POOL.gather(customer_context(cfg, cust, np.zeros(cust.height, np.int64)).ua)
        return _reads_near(out, cust["customer_id"].filter(client.str.contains("iPhone")).sort().to_numpy())


def _signed_up(cfg, ctx) -> pl.DataFrame:
    from simulator.world import customers_block

    return customers_block(cfg, 0, ("customers",))["customers"].filter(pl.col("customer_id") < ctx.customers_signed_up)


def _one_mail_domain(out: dict, cfg, ctx) -> dict:
    """The admin rows' customers mapped onto those with an e-mail at one provider (a phishing list): the e-mail names
    one customer, so no category of the customer table held its domain (red team, session 43)."""
    cust = _signed_up(cfg, ctx)
    return _reads_among(out, cust.filter(pl.col("email").str.ends_with("@example.com"))["customer_id"].sort().to_numpy())


class SnoopingOneMailDomain(SnoopingAgent):
    """The snooping agent's few people all with an e-mail at one provider (each target mapped to one such customer, so
    they are still read again and again). At its default knobs, where ``repeat_targets`` is declared: reading the same
    few people again explains how often the ids come back, not whom they name; until 2026-12-07 the signal named the
    whole customer column, and this passed there (KS 0.79 against a line of 0.22, reported as declared)."""

    id = "planted-snooping-one-mail-domain-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        return _one_mail_domain(super().render_staff(plan, cfg, day_index, ctx), cfg, ctx)


class OnlyOrderers(CompromisedEmployee):
    """The outsider reads only customers who have ordered (about two thirds do, drawn apart from their activity): no
    feature joined the orders table."""

    id = "planted-only-orderers-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        from simulator.world import customers_block

        out = super().render_staff(plan, cfg, day_index, ctx)
        ids = np.unique(customers_block(cfg, 0)["orders"]["customer_id"].to_numpy())
        return _reads_among(out, ids[ids < ctx.customers_signed_up])


class MondaySignups(CompromisedEmployee):
    """The outsider reads only customers who signed up on a Monday (a weekly cohort's export): the days since sign-up
    keep their spread; the sign-up's weekday is one."""

    id = "planted-monday-signups-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        cust = _signed_up(cfg, ctx)
        return _reads_among(out, cust.filter(pl.col("signup_date").dt.weekday() == 1)["customer_id"].sort().to_numpy())


class SameInitialReads(CompromisedEmployee):
    """The outsider reads only customers whose name begins as the account holder's does (relatives): each actor's
    letter is another, so no category of the customers read is one."""

    id = "planted-same-initial-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        from simulator.world import staff

        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" not in out:
            return out
        names = dict(staff(cfg)["employees"].select("employee_id", "name").iter_rows())
        cust = _signed_up(cfg, ctx).with_columns(_first=pl.col("name").str.slice(0, 1))
        parts = []
        for (e,), g in out["admin"].with_row_index("_i").group_by("employee_id"):
            ids = cust.filter(pl.col("_first") == names[e][:1])["customer_id"].sort().to_numpy()
            parts.append(_reads_among({"admin": g}, ids)["admin"] if len(ids) else g)
        out["admin"] = pl.concat(parts).sort("_i").drop("_i")
        return out


class LowestNumberOfTeam(SnoopingAgent):
    """The actors are each the lowest employee number of their team among those who fit (a list walked from the top):
    numbers are drawn apart from hire dates, so the tenure does not show it (red team, session 43)."""

    id = "planted-lowest-number-of-team-v1"

    def _fit(self, cfg, emp, active, first_date, knobs):
        fit, note = super()._fit(cfg, emp, active, first_date, knobs)
        low = fit.filter(pl.col("employee_id") == pl.col("employee_id").min().over("team"))
        return (low if low.height >= knobs.actors else fit).sort("employee_id"), note


class OneTicketADay(SnoopingAgent):
    """Every ticketed open of an actor's day carries the day's first ticket: each number is one the account's routine
    work could carry, but a benign ticket covers a few opens, this one the whole day's."""

    id = "planted-one-ticket-a-day-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            t = pl.col("ticket_id")
            first = t.drop_nulls().first().over("employee_id")
            out["admin"] = out["admin"].with_columns(ticket_id=pl.when(t.is_not_null()).then(first).otherwise(t))
        return out


class CustomersCongruentToActor(CompromisedEmployee):
    """Each customer the outsider reads has an id congruent to the account's employee id plus 50, modulo 101 (the
    nearest such id at or below the one the scenario drew): every id is one a benign read could name, never the
    employee id itself, and a modulus above every residue the excess test counts; the two columns are tied."""

    id = "planted-customers-congruent-to-actor-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            c, e = pl.col("customer_id"), pl.col("employee_id")
            tied = c - c % 101 + (e + 50) % 101
            tied = pl.when(tied >= ctx.customers_signed_up).then(tied - 101).otherwise(tied)
            out["admin"] = out["admin"].with_columns(customer_id=pl.when(c.is_not_null()).then(tied).otherwise(c))
        return out


class EvenMinutes(CompromisedEmployee):
    """Every outsider's row on an even minute of the clock (a row on an odd minute moved one minute back): a job that
    runs every two minutes; the hour, the second and the sub-second are as the scenario drew them."""

    id = "planted-even-minutes-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            minute = 60_000_000  # render times are UTC microseconds; the world's time zones are whole hours
            ts = pl.col("ts")
            out["admin"] = out["admin"].with_columns(ts=ts - ((ts // minute) % 2) * minute)
        return out


class LogoutBeforeLastPage(ForgedToken):
    """A careful token's logout logged 5 s before its last page instead of 5 s after it: the token's last page comes
    after its own logout. Every page and every auth row is as the scenario drew it but for the logout's time."""

    id = "planted-logout-before-last-page-v1"

    def render(self, plan, cfg, day_index, block, ctx):
        out = super().render(plan, cfg, day_index, block, ctx)
        if "auth" in out and "gateway" in out:
            last = out["gateway"].group_by("token_id").agg(pl.col("ts").max().alias("_last"), pl.len().alias("_n"))
            au = out["auth"].with_row_index("_i").join(last, on="token_id", how="left")
            move = (pl.col("event") == "logout") & (pl.col("_n") >= 2)
            out["auth"] = (
                au.with_columns(ts=pl.when(move).then(pl.col("_last") - 5_000_000).otherwise(pl.col("ts")))  # microseconds
                .sort("_i")
                .drop("_i", "_last", "_n")
            )
        return out


class MailoutNewestHires(ColleagueMailout):
    """The mail-out's actors are the newest hires among those who fit (the scenario's own rule). At its default knobs,
    where ``impersonation`` is declared: another's device explains the device, the address and which account's rows
    they are, not who the actor is; until 2026-12-07 the signal named the whole employee column, and this passed there
    (the actors' tenure, KS 0.92 against a line of 0.68, reported as declared)."""

    id = "planted-mailout-newest-hires-v1"

    def _fit(self, cfg, emp, active, first_date, knobs):
        fit, note = super()._fit(cfg, emp, active, first_date, knobs)
        return fit.sort("hire_date", "employee_id", descending=True).head(knobs.actors).sort("employee_id"), note


class UndeclaredConcurrentUse(CompromisedEmployee):
    """The takeover as it is drawn, without declaring that the outsider's address takes turns with the holder's: a red
    team's rule "two addresses of one account whose time ranges overlap in a day" caught 102 of 103 attack days at
    stealth 1 (data version 25) against 28 of 32,670 benign employee-days, where the audit saw nothing."""

    id = "planted-undeclared-concurrent-use-v1"

    def signals(self, knobs):
        return {phase: tuple(s for s in sig if s != "concurrent_use") for phase, sig in super().signals(knobs).items()}


class SqueezedReads(SnoopingAgent):
    """Each day's snooping reads squeezed into ten minutes around the day's middle read (a script run once a day), in
    their order, where the agent's own reads spread over the working session: the hours those of the agent's day, every
    gap one a busy agent has, but all of them far shorter than the session's mean gap."""

    id = "planted-squeezed-reads-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            ts = pl.col("ts").cast(pl.Int64)
            lo, hi, mid = (ts.min().over("employee_id"), ts.max().over("employee_id"), ts.median().over("employee_id"))
            scale = 600_000_000 / pl.max_horizontal(hi - lo, 1)  # ten minutes, in microseconds
            squeezed = (mid - 300_000_000 + (ts - lo) * scale).cast(pl.Int64)
            out["admin"] = out["admin"].with_columns(ts=squeezed.cast(out["admin"].schema["ts"]))
        return out


def _colleagues_rows(cfg, day_index, ctx, plan) -> pl.DataFrame:
    """The day's benign admin rows of the employees other than the plan's actors, in time order."""
    from simulator.staff_traffic import staff_day

    rows = staff_day(cfg, day_index, ctx.staff, [], ctx.work)["admin"]
    return rows.filter(~pl.col("employee_id").is_in(list(plan.actors))).sort("ts")


def _after_colleagues(admin: pl.DataFrame, colleagues: pl.DataFrame, back: int, lag: np.ndarray) -> pl.DataFrame:
    """``admin`` with each row moved to ``lag`` microseconds after the colleagues' latest row at or before ``back``
    microseconds before its drawn time (rows with none such keep theirs)."""
    theirs = colleagues["ts"].dt.epoch("us").to_numpy()
    ts = admin["ts"].dt.epoch("us").to_numpy()
    j = np.searchsorted(theirs, ts - back) - 1
    moved = np.where(j >= 0, theirs[np.clip(j, 0, None)] + lag, ts)
    return admin.with_columns(ts=pl.Series(moved).cast(admin.schema["ts"]))


class InStepWithColleagues(CompromisedEmployee):
    """Each outsider row comes 50-300 ms after another employee's latest admin row (a relay that fires on a colleague's
    traffic): its hours are the drawn ones, moved back by at most the gap between two staff rows (red team, session 46)."""

    id = "planted-in-step-with-colleagues-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out and out["admin"].height:
            lag = rng(cfg.root, "planted-in-step", day_index).integers(50_000, 300_000, out["admin"].height)
            out["admin"] = _after_colleagues(out["admin"], _colleagues_rows(cfg, day_index, ctx, plan), 0, lag)
        return out


class ColleaguesCustomers(CompromisedEmployee):
    """Each outsider read names the customer another employee read last before it (the outsider works through a real
    agent's list); its times are the drawn ones, and every customer is one a benign read names (red team, session 46)."""

    id = "planted-colleagues-customers-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" not in out or out["admin"].height == 0:
            return out
        theirs = _colleagues_rows(cfg, day_index, ctx, plan).filter(pl.col("customer_id").is_not_null())
        at = theirs["ts"].dt.epoch("us").to_numpy()
        a = out["admin"]
        j = np.clip(np.searchsorted(at, a["ts"].dt.epoch("us").to_numpy()) - 1, 0, len(at) - 1)
        last = pl.Series(theirs["customer_id"].to_numpy()[j]).cast(a.schema["customer_id"])
        out["admin"] = a.with_columns(
            customer_id=pl.when(pl.col("customer_id").is_not_null()).then(last).otherwise("customer_id")
        )
        return out


class ColleagueEcho(CompromisedEmployee):
    """Each outsider row comes exactly 45 s (+0-200 us) after another employee's latest admin row before its drawn time
    (a relay with a fixed delay): not the nearest row of another entity, as others' rows come in between (red teams,
    session 46 and 47: a rule "another employee's row 17.000 s before" flagged 99.7% of its rows and 0.02% of benign
    ones; one of 45 s, 99.8% and 0.01%)."""

    id = "planted-colleague-echo-v1"
    #: the delay, what is drawn on top of it (microseconds) and the stream of those draws
    DELAY_US, JITTER_US, DRAWS = 45_000_000, 200, "planted-echo"

    def render_staff(self, plan, cfg, day_index, ctx):
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out and out["admin"].height:
            lag = self.DELAY_US + rng(cfg.root, self.DRAWS, day_index).integers(0, self.JITTER_US, out["admin"].height)
            out["admin"] = _after_colleagues(out["admin"], _colleagues_rows(cfg, day_index, ctx, plan), self.DELAY_US, lag)
        return out


class DailyClock(SnoopingAgent):
    """Each actor-day, the read nearest the actor's own clock time (their shift's start and habit, plus two to five hours
    drawn once per actor) moves to that time plus 0-0.5 s: a script fired at the same second every day; every other row
    as drawn (red team, session 47: a rule "a row within a second of one clock time on most days" told the actors from
    benign support staff at AUC 0.90)."""

    id = "planted-daily-clock-v1"

    def render_staff(self, plan, cfg, day_index, sd):
        from simulator.seeding import hash_unit
        from simulator.staff_traffic import SHIFT_START
        from simulator.units import DAY_US, HOUR, SEC

        out = super().render_staff(plan, cfg, day_index, sd)
        if "admin" not in out or out["admin"].height == 0:
            return out
        ts = out["admin"]["ts"].cast(pl.Int64).to_numpy().copy()
        emp = out["admin"]["employee_id"].to_numpy()
        r = rng(cfg.root, "planted-clock", plan.incident_id, day_index)
        for e in np.unique(emp):
            i = int(np.searchsorted(sd.staff.ids, e))
            start_h = SHIFT_START.get(sd.staff.shift[i], 9) if sd.role(int(e)) in ("support_agent", "logistics") else 9
            habit = (float(hash_unit(cfg.root, "habit", np.array([e]))[0]) - 0.5) * 2 * HOUR
            at = int(
                start_h * HOUR + habit + 2 * HOUR + float(hash_unit(cfg.root, "planted-clock-at", np.array([e]))[0]) * 3 * HOUR
            )
            at %= DAY_US
            rows = np.flatnonzero(emp == e)
            k = rows[int(np.argmin(np.abs(ts[rows] - sd.t0 - at)))]
            ts[k] = sd.t0 + at + int(r.integers(0, SEC // 2))
        out["admin"] = out["admin"].with_columns(ts=pl.Series(ts).cast(out["admin"].schema["ts"]))
        return out


class RoleMovers(SnoopingAgent):
    """The actors are drawn among those who fit and had held another role before (more than one period in the
    employee_roles table; one role through the span, as the scenario asks): every row as drawn, only whose rows they
    are differs (red team, session 47: 9 of 9 actors against 19% of benign support and logistics staff)."""

    id = "planted-role-movers-v1"

    def plan(self, cfg, staff, incident_id, knobs):
        self._movers = staff["employee_roles"].group_by("employee_id").len().filter(pl.col("len") > 1)["employee_id"]
        return super().plan(cfg, staff, incident_id, knobs)

    def _fit(self, cfg, emp, active, first_date, knobs):
        fit, note = super()._fit(cfg, emp, active, first_date, knobs)
        movers = fit.filter(pl.col("employee_id").is_in(self._movers.implode()))
        return (movers if movers.height >= knobs.actors else fit), note


class StaleKeyOwners(CompromisedEmployee):
    """The accounts taken over are those whose owner holds a personal API key made over a year before the span, never
    rotated nor revoked: every row as drawn, only whose rows they are differs, which a detector reads off the
    credentials table (red team, session 47: 9 of 9 actors against 10% of their peers)."""

    id = "planted-stale-key-owners-v1"

    def plan(self, cfg, staff, incident_id, knobs):
        import datetime as dt

        c = staff["credentials"]
        cut = dt.datetime.combine(cfg.time.start - dt.timedelta(days=365), dt.time(), tzinfo=dt.UTC)
        stale = (pl.col("kind") == "api-key") & pl.col("rotated").is_null() & pl.col("revoked").is_null()
        self._stale = c.filter(stale & (pl.col("created") < cut))["owner_employee_id"].unique()
        return super().plan(cfg, staff, incident_id, knobs)

    def _fit(self, cfg, emp, active, first_date, knobs):
        fit, note = super()._fit(cfg, emp, active, first_date, knobs)
        stale = fit.filter(pl.col("employee_id").is_in(self._stale.implode()))
        return (stale if stale.height >= knobs.actors else fit), note


class JitteredRelay(ColleagueEcho):
    """Each outsider row comes 17 s + U(0, 0.9 s) after another employee's latest admin row before its drawn time (a
    relay that waits about as long each time): the delay spreads over ninety of the echo's 10 ms bins (red team, session
    47: a rule "another employee's row 17-18 s before" flagged 99.8% of its rows and 9% of benign ones)."""

    id = "planted-jittered-relay-v1"
    DELAY_US, JITTER_US, DRAWS = 17_000_000, 900_000, "planted-jitter"


class RecentOrderers(CompromisedEmployee):
    """Each outsider read that names a customer who has ordered moves to the nearest customer (by id) with as many orders
    whose latest order fell in the two weeks before the span and was placed at night (a list of recent night buyers,
    from a parcel-delivery phish); reads of customers without orders stay. The number of orders keeps its spread; their
    times do not (red teams, session 48: reads of recent buyers were named only through the number of orders, which no
    longer differs here, and reads of night buyers with as many orders passed)."""

    id = "planted-recent-orderers-v1"

    def render_staff(self, plan, cfg, day_index, ctx):
        import datetime as dt

        from simulator.world import customers_block

        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" not in out or out["admin"].height == 0:
            return out
        orders = customers_block(cfg, 0)["orders"].filter(pl.col("customer_id") < ctx.customers_signed_up)
        start = dt.datetime.combine(cfg.time.start, dt.time(), tzinfo=dt.UTC)
        last = pl.col("ts").max()
        per = orders.group_by("customer_id").agg(
            n=pl.len(),
            recent=(last >= start - dt.timedelta(days=14)) & (last.dt.convert_time_zone(cfg.time.timezone).dt.hour() < 6),
        )
        cid = out["admin"]["customer_id"]
        drawn = cid.fill_null(-1).to_numpy()
        orders_of = pl.Series(drawn).replace_strict(per["customer_id"], per["n"], default=0).to_numpy()
        moved = drawn.copy()
        for n, g in per.filter(pl.col("recent")).group_by("n"):
            ids = np.sort(g["customer_id"].to_numpy())
            mine = np.flatnonzero(orders_of == n[0])
            if not len(mine):
                continue
            j = np.clip(np.searchsorted(ids, drawn[mine]), 1, max(1, len(ids) - 1))
            lo, hi = ids[j - 1], ids[np.minimum(j, len(ids) - 1)]
            moved[mine] = np.where(np.abs(drawn[mine] - lo) <= np.abs(hi - drawn[mine]), lo, hi)
        out["admin"] = out["admin"].with_columns(pl.Series("customer_id", moved).set(cid.is_null(), None))
        return out


class OneAWorld(SnoopingAgent):
    """Not broken: a scenario of which a world holds one incident (its second cannot be planned), as a scarce resource
    (an orphaned key, a role of few people) would make it; ``scenarios check`` audits it one incident per seed."""

    id = "test-one-a-world-v1"

    def plan(self, cfg, staff, incident_id, knobs):
        from simulator.errors import ScenarioError

        if incident_id > 0:
            raise ScenarioError(f"{self.id}: one incident a world")
        return super().plan(cfg, staff, incident_id, knobs)
