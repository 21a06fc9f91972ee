"""The side-by-side perf gate: passes against itself, fails and names the benchmark on a planted slowdown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANT = '''

@pytest.fixture(autouse=True)
def _planted_slowdown(monkeypatch):
    """Deliberate regression: the forged-token renderer sleeps 50 ms per call."""
    import time

    from simulator.scenarios.forged_token import ForgedToken

    original = ForgedToken.render

    def slow(self, *args, **kwargs):
        time.sleep(0.05)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ForgedToken, "render", slow)
'''


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("perf") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True, capture_output=True)
    # the clone holds the committed tree; bring the working tree's compare script and benchmarks along
    for rel in ("benchmarks",):
        subprocess.run(["cp", "-r", str(ROOT / rel), str(repo)], check=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "--allow-empty", "-qm", "base")
    return repo


def _compare(repo: Path, base: str) -> subprocess.CompletedProcess[str]:
    # not an xdist worker's variables: pytest-benchmark would take the benchmark runs for xdist workers and disable them
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    return subprocess.run(
        [
            sys.executable,
            "benchmarks/compare.py",
            "--base",
            base,
            "--same-env",
            "--rounds",
            "1",
            "-k",
            "scenario_render and not staff",  # the one forged-token benchmark, not the ten staff renders (1 s each)
            "--workdir",
            str(repo / ".perf"),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.mark.slow
def test_compare_against_itself_passes(clone: Path) -> None:
    res = _compare(clone, "HEAD")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "test_scenario_render" in res.stdout


@pytest.mark.slow
def test_planted_slowdown_fails_and_is_named(clone: Path) -> None:
    conftest = clone / "benchmarks" / "conftest.py"
    conftest.write_text(conftest.read_text() + PLANT)
    _git(clone, "commit", "-qam", "plant a slowdown")
    res = _compare(clone, "HEAD~1")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "SLOWER" in res.stdout
    assert "test_scenario_render" in res.stderr.splitlines()[-1]  # the FAIL line names it
