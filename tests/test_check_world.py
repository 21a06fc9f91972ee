"""The conformance checks' world holds customer-side and staff-side incidents, and ``direction`` sees both."""

from __future__ import annotations

from detectors.checks import _positives, check_dataset, check_detector
from detectors.registry import load

StatPeerGroup = load("stat-peer-group-v1")


def test_check_world_has_staff_and_customer_side_actors() -> None:
    kinds = set(_positives(check_dataset())["entity_kind"])
    assert {"employee", "token", "key"} <= kinds, kinds  # the insiders' accounts beside the forger's tokens and key


def test_direction_ranks_staff_side_detectors() -> None:
    """A peer-group detector alerts employees only: with staff actors among the positives its ranking is checked, not waved through."""
    results = {r.check: r for r in check_detector(StatPeerGroup, checks=("direction",), raise_on_failure=False)}
    assert results["direction"].passed and results["direction"].message == "", results["direction"].message
