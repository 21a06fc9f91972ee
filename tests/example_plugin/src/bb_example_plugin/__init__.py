"""An example BreachBench detector plugin: it imports nothing from BreachBench.

It scores each source IP outside Korea by how many distinct customers it touched in the
bucket, which catches sweeps from abroad.
"""

import polars as pl


class ForeignSweepDetector:
    """Distinct customers per foreign source IP, per bucket."""

    version = "1"

    def fit(self, view):
        """Nothing to learn."""
        return self

    def score(self, view):
        """One alert per foreign IP of the current bucket."""
        return (
            view.logs("gateway", current_only=True)
            .filter(pl.col("country") != "KR")
            .group_by("src_ip")
            .agg(score=pl.col("customer_id").n_unique().cast(pl.Float64))
            .select(
                pl.lit(view.bucket, pl.Date).alias("bucket"),
                pl.lit("ip").alias("entity_kind"),
                pl.col("src_ip").alias("entity_id"),
                "score",
            )
            .sort("entity_id")
            .collect()
        )
