"""Sealed seeds: a run mixes a secret kept in its folder into every dataset's seeds.

The simulator is public and deterministic, so a detector that knows a run's config and seeds
could generate its datasets and their truth again (tests/test_sealing.py shows it scoring as
the oracle does). These tests check the secret's own contract: it changes every random stream,
keeps determinism for a given secret, stays in the run's folder and out of what a run publishes,
and is reused by later runs into that folder.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import polars as pl
import pytest

from breachbench.cli import _kept_of_run
from breachbench.config import ConfigError, load_config
from breachbench.suite import SECRET_FILE, _point_config, grid, run_suite, sealed_seeds
from simulator.engine import config_hash, generate

TINY = Path(__file__).resolve().parent.parent / "configs" / "tiny.toml"
#: configs/tiny.toml's seeds are public (for the other tests); here they are sealed, as a run's are by default.
SMALL = ["world.customers=1500", "time.end=2025-04-18", "suite.seal_seeds=true", 'detection.detectors=["null"]']


def _files(dataset: Path) -> dict[str, str]:
    m = json.loads((dataset / "manifest.json").read_text())
    return {f["path"]: f["sha256"] for f in m["files"] + m["truth"]}


def test_the_secret_changes_every_stream_and_keeps_determinism(tmp_path: Path) -> None:
    sim = load_config(TINY, SMALL).sim()
    one, two = "ab" * 32, "cd" * 32
    a = _files(generate(sim.model_copy(update={"secret": one}), tmp_path / "a", workers=1))
    b = _files(generate(sim.model_copy(update={"secret": one}), tmp_path / "b", workers=2))
    c = _files(generate(sim.model_copy(update={"secret": two}), tmp_path / "c", workers=1))
    assert a == b, "the same config, seed and secret give the same bytes for any worker count"
    same = [p for p in a if a[p] == c.get(p)]
    assert len(same) < len(a) / 4
    for p in same:  # only files without a row (a day with no HR event) may be equal
        assert pl.read_parquet(tmp_path / "a" / p).height == 0, p


@pytest.fixture(scope="module")
def sealed_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run of the small tiny config into a fresh folder (its secret made there), then a second run into it."""
    out = tmp_path_factory.mktemp("sealed")
    cfg = load_config(TINY, SMALL)
    first = run_suite(cfg, out, workers=1, log=lambda *a, **k: None)
    said: list[str] = []
    second = run_suite(cfg, out, workers=1, log=lambda *a, **k: said.append(" ".join(map(str, a))))
    return {"out": out, "cfg": cfg, "first": first, "second": second, "said": said}


def test_a_run_makes_its_secret_private_to_its_folder(sealed_run: dict) -> None:
    path = sealed_run["out"] / SECRET_FILE
    secret = path.read_text().strip()
    assert len(secret) == 64 and int(secret, 16) > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    manifest = json.loads((sealed_run["out"] / "dataset" / "manifest.json").read_text())
    sealed = sealed_seeds(sealed_run["cfg"], sealed_run["out"])
    own = _point_config(sealed, grid(sealed, sealed_run["out"])[0]).secret  # the dataset's, derived from the run's
    assert manifest["config"]["secret"] == own != secret and manifest["seed"] == sealed_run["cfg"].seed
    results = json.loads((sealed_run["out"] / "results.json").read_text())
    assert results["seeds"]["sealed"] is True and "secret" not in results["config"]


def test_nothing_a_run_publishes_holds_its_secret(sealed_run: dict) -> None:
    out = sealed_run["out"]
    secret = (out / SECRET_FILE).read_text().strip()
    published = [p for p in out.rglob("*") if p.is_file() and "dataset" not in p.relative_to(out).parts[:1]]
    assert {p.name for p in published} >= {"results.json", "leaderboard.md", "report.html", SECRET_FILE}
    for p in published:
        if p.name != SECRET_FILE:
            assert secret.encode() not in p.read_bytes(), p


def test_a_second_run_into_the_folder_reuses_its_secret_and_datasets(sealed_run: dict, tmp_path: Path) -> None:
    first, second = sealed_run["first"], sealed_run["second"]
    assert any("reused" in m for m in sealed_run["said"]), sealed_run["said"]
    hashes = [json.loads(Path(r["results"]).read_text())["datasets"][0]["config_hash"] for r in (first, second)]
    assert hashes[0] == hashes[1]
    # the secret copied into another folder gives the same datasets there; a folder of its own gives others
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    (elsewhere / SECRET_FILE).write_bytes((sealed_run["out"] / SECRET_FILE).read_bytes())

    def dataset_hash(folder: Path) -> str:
        cfg = sealed_seeds(sealed_run["cfg"], folder)
        return config_hash(_point_config(cfg, grid(cfg, folder)[0]).sim())

    assert dataset_hash(elsewhere) == hashes[0]
    assert dataset_hash(tmp_path / "fresh") != hashes[0]


def test_every_dataset_of_a_sealed_run_has_a_world_of_its_own(tmp_path: Path) -> None:
    """Datasets of one seed share their world and benign traffic when the seeds are public; a detector that scores two
    of them in one process could diff them down to the attack. Sealed, each grid point has a secret of its own."""
    default = TINY.parent / "default.toml"
    sealed = sealed_seeds(load_config(default, ["suite.tuning_seeds=[9]"]), tmp_path)
    points = grid(sealed, tmp_path)
    roots = {_point_config(sealed, p).sim().root for p in points}
    assert len(points) > 5 and len(roots) == len(points)
    public = load_config(default, ["suite.seal_seeds=false"])
    assert len({_point_config(public, p).sim().root for p in grid(public, tmp_path)}) == len(public.test_seeds)


def test_the_default_suite_seals_its_seeds() -> None:
    cfg = load_config(TINY.parent / "default.toml")
    assert cfg.suite.seal_seeds and not cfg.secret


def test_public_seeds_make_no_secret(tmp_path: Path) -> None:
    cfg = load_config(TINY, [*SMALL, "suite.seal_seeds=false"])
    assert sealed_seeds(cfg, tmp_path) is cfg and not (tmp_path / SECRET_FILE).exists()
    own = load_config(TINY, [*SMALL, f'secret="{"ef" * 32}"'])  # a secret the config sets is used as it is
    assert sealed_seeds(own, tmp_path).secret == "ef" * 32 and not (tmp_path / SECRET_FILE).exists()


@pytest.mark.parametrize("content", ["", "abc\n", "AB" * 32, "zz" * 32, "ab" * 33])
def test_a_damaged_secret_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / SECRET_FILE).write_text(content)
    with pytest.raises(ConfigError, match=rf"{SECRET_FILE}: not a run secret \(64 lowercase hex digits"):
        sealed_seeds(load_config(TINY, SMALL), tmp_path)


def test_a_bad_secret_in_the_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"secret = 'xyz'"):
        load_config(TINY, ['secret="xyz"'])


def test_a_failed_first_run_leaves_no_secret_behind(tmp_path: Path) -> None:
    """A secret without a dataset to go with it is removed with the run's partial results."""
    sealed_seeds(load_config(TINY, SMALL), tmp_path)
    assert "kept 0 complete dataset(s)" in _kept_of_run(tmp_path, time.time())
    assert not (tmp_path / SECRET_FILE).exists()
