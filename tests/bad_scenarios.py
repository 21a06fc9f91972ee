"""Deliberately broken scenarios: ``check_scenario`` must fail each of them, naming the check."""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from simulator.scenarios.insiders import SlowDripAnalyst, SnoopingAgent


class StartsEarly(SnoopingAgent):
    """Claims to start two days later than its first malicious event."""

    id = "bad-starts-early-v1"

    def window(self, plan):  # noqa: ANN001, ANN201
        return plan.first_day + 2, plan.end_day


class Nondeterministic(SnoopingAgent):
    """Reads the clock: two generations differ."""

    id = "bad-nondeterministic-v1"

    def render_staff(self, plan, cfg, day_index, ctx):  # noqa: ANN001, ANN201
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            jitter = np.random.default_rng(time.time_ns()).integers(0, 1_000_000, out["admin"].height)
            out["admin"] = out["admin"].with_columns(pl.col("ts") + pl.Series(jitter))
        return out


class UnexposedPulls(SlowDripAnalyst):
    """Bulk pulls that lose their id range: the logs show the rows, the exposure truth misses them."""

    id = "bad-unexposed-v1"

    def render_staff(self, plan, cfg, day_index, ctx):  # noqa: ANN001, ANN201
        out = super().render_staff(plan, cfg, day_index, ctx)
        if "admin" in out:
            out["admin"] = out["admin"].with_columns(pl.lit(None, pl.Int64).alias("_xn"))
        return out


class BadId(SnoopingAgent):
    """An id without a version."""

    id = "snooping"
