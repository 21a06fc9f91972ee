"""`breachbench verify` and the checks `run` and `score` make: flipped, truncated, missing and extra files, edited configs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from breachbench.suite import ensure_dataset
from breachbench.verify import VerifyError, verify_dataset, verify_run

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "breachbench", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def copy(tiny_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset, free to damage."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "dataset"))


def _a_log(root: Path) -> Path:
    return sorted((root / "logs" / "gateway").rglob("*.parquet"))[3]


def test_clean_copy_verifies(copy: Path) -> None:
    assert verify_dataset(copy, full=True) == []
    p = _cli("verify", str(copy))
    assert p.returncode == 0 and "verifies" in p.stdout, p.stderr


def test_flipped_byte_is_caught_by_hashes_only(copy: Path) -> None:
    f = _a_log(copy)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    rel = f.relative_to(copy).as_posix()
    assert verify_dataset(copy, full=False) == []
    assert [(p.path, p.what) for p in verify_dataset(copy, full=True)] == [(rel, "sha256 differs from the manifest")]
    p = _cli("verify", str(copy))
    assert p.returncode == 1 and rel in p.stdout and "Traceback" not in p.stderr


@pytest.mark.parametrize("damage", ["truncated", "missing", "extra", "config", "older"])
def test_damage_is_named(copy: Path, damage: str) -> None:
    f = _a_log(copy)
    rel = f.relative_to(copy).as_posix()
    if damage == "truncated":
        f.write_bytes(f.read_bytes()[:100])
        want = (rel, "100 bytes")
    elif damage == "missing":
        f.unlink()
        want = (rel, "missing")
    elif damage == "extra":
        shutil.copyfile(f, f.with_name("part-99999.parquet"))
        want = (f.with_name("part-99999.parquet").relative_to(copy).as_posix(), "not in the manifest")
    elif damage == "config":
        m = json.loads((copy / "manifest.json").read_text())
        m["config"]["time"]["warmup_days"] += 1
        (copy / "manifest.json").write_text(json.dumps(m))
        want = ("manifest.json", "config does not match")
    else:  # made by an earlier data version: said as such, not as an edited config
        m = json.loads((copy / "manifest.json").read_text())
        m["data_version"] = str(int(m["data_version"]) - 1)
        (copy / "manifest.json").write_text(json.dumps(m))
        want = ("manifest.json", f"made by data version '{m['data_version']}'")
    problems = verify_dataset(copy, full=False)
    assert len(problems) == 1 and problems[0].path == want[0] and want[1] in problems[0].what, problems
    p = _cli("verify", str(copy), "--quick")
    assert p.returncode == 1 and want[0] in p.stdout


def test_run_refuses_to_reuse_a_tampered_dataset(copy: Path, tiny_config) -> None:
    _, reused = ensure_dataset(tiny_config, copy, workers=1)
    assert reused
    (copy / "truth" / "malicious_events.parquet").write_bytes(b"")
    with pytest.raises(VerifyError, match=r"truth/malicious_events.parquet: 0 bytes"):
        ensure_dataset(tiny_config, copy, workers=1)


def test_score_refuses_a_tampered_dataset(copy: Path, tiny_run, tiny_run_dir: Path) -> None:
    alerts = tiny_run_dir / "alerts" / "unissued-token-v1.parquet"
    assert _cli("score", str(copy), str(alerts), "--verify", "--json").returncode == 0
    f = _a_log(copy)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    p = _cli("score", str(copy), str(alerts), "--verify")
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and f.relative_to(copy).as_posix() in lines[0], p.stderr


def test_run_records_alert_hashes_and_verifies(tiny_run, tiny_run_dir: Path, tmp_path: Path) -> None:
    res = json.loads((tiny_run_dir / "results.json").read_text())
    assert "alerts/unissued-token-v1.parquet" in res["alerts"]
    assert verify_run(tiny_run_dir) == []
    ok = _cli("verify", str(tiny_run_dir))  # a red team edited a score and the run verified: it says what it checked
    assert ok.returncode == 0 and "figures are not recomputed" in ok.stdout.replace("\n", " "), ok.stdout
    run = Path(shutil.copytree(tiny_run_dir, tmp_path / "run"))
    res["datasets"][0]["path"] = str(run / "dataset")
    (run / "results.json").write_text(json.dumps(res))
    (run / "alerts" / "null.parquet").write_bytes((run / "alerts" / "random.parquet").read_bytes())
    assert [(p.path, p.what) for p in verify_run(run)] == [("alerts/null.parquet", "sha256 differs from results.json")]
    p = _cli("verify", str(run))
    assert p.returncode == 1 and "alerts/null.parquet" in p.stdout


def test_verify_rejects_what_is_neither(tmp_path: Path) -> None:
    p = _cli("verify", str(tmp_path))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "neither a dataset" in p.stderr


@pytest.mark.parametrize("kind", ["link", "fifo", "types", "list"])
def test_a_crafted_run_folder_is_named_not_read_for_ever(kind: str, tmp_path: Path) -> None:
    """A red team's run folders: an alerts "file" linked to /dev/zero and one that is a FIFO hung `verify`; results.json
    entries of the wrong type gave tracebacks."""
    import os

    run = tmp_path / "run"
    (run / "alerts").mkdir(parents=True)
    res: object = {"schema_version": 3, "datasets": [], "alerts": {"alerts/x.parquet": "0" * 64}}
    if kind == "link":
        (run / "alerts" / "x.parquet").symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(run / "alerts" / "x.parquet")
    elif kind == "types":
        res = {"schema_version": 3, "datasets": [1, "x"], "alerts": {"a": 1}}
    else:
        res = [1]
    (run / "results.json").write_text(json.dumps(res))
    p = _cli("verify", str(run))
    assert p.returncode == 1 and "does not verify" in p.stderr and "Traceback" not in p.stderr + p.stdout, p.stderr
    needle = "not a regular file" if kind in ("link", "fifo") else "not a run's results"
    assert needle in p.stdout, p.stdout


def _edited(manifest: dict, case: str) -> str:
    m = json.loads(json.dumps(manifest))
    t = m["config"]["time"]
    if case == "list":
        return "[1, 2]"
    if case == "deep":
        return "[" * 100_000 + "]" * 100_000
    if case == "not-utf8":
        return "\udcff"
    edits = {
        "start": lambda: t.update(start="yesterday"),
        "far": lambda: t.update(end="9999-12-31"),
        "warmup": lambda: t.update(warmup_days="seven"),
        "zone": lambda: t.update(timezone="Mars/Olympus"),
        "files": lambda: m.update(files={"a": 1}),
        "imported": lambda: (m.update(imported={}), t.update(start="x")),
    }
    edits[case]()
    return json.dumps(m)


@pytest.mark.parametrize("case", ["list", "deep", "not-utf8", "start", "far", "warmup", "zone", "files", "imported"])
def test_a_crafted_manifest_is_one_line_for_every_command(
    case: str, tiny_dataset: Path, tiny_run_dir: Path, tmp_path: Path
) -> None:
    """A red team's manifests gave tracebacks in score, verify and export, a span of 9999 years that listed its days for
    ever, and an export that wrote 574 MB before failing (a half-written --out)."""
    from typer.testing import CliRunner

    from breachbench.cli import app

    ds = Path(shutil.copytree(tiny_dataset, tmp_path / "ds", copy_function=os.link))
    (ds / "manifest.json").unlink()  # a link: never write through it
    text = _edited(json.loads((tiny_dataset / "manifest.json").read_text()), case)
    (ds / "manifest.json").write_bytes(text.encode(errors="surrogateescape"))
    alerts = tiny_run_dir / "alerts" / "null.parquet"
    for args, code in (
        (["score", str(ds), str(alerts)], 2),
        (["export", str(ds), "--format", "ocsf", "--out", str(tmp_path / "exp")], 2),
        (["verify", str(ds), "--quick"], 1),
    ):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == code and "Traceback" not in res.output, (args[0], res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args[0], res.exception)
        assert "manifest.json" in res.output, (args[0], res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no export folder, no staging folder


def test_an_export_that_fails_half_way_leaves_no_folder(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from breachbench.interop import export

    calls = []

    def fail_later(*a: object, **k: object) -> None:
        calls.append(1)
        if len(calls) > 3:
            raise OSError(28, "No space left on device")
        return original(*a, **k)

    original = export._write
    monkeypatch.setattr(export, "_write", fail_later)
    with pytest.raises(OSError, match="No space"):
        export.export_dataset(tiny_dataset, tmp_path / "exp", "ocsf", as_="parquet")
    assert list(tmp_path.iterdir()) == [] and len(calls) == 4
    monkeypatch.setattr(export, "_write", original)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="holds files of no export"):
        export.export_dataset(tiny_dataset, tmp_path / "exp", "ocsf", as_="parquet")
    assert [p.name for p in (tmp_path / "exp").iterdir()] == ["notes.txt"]


def test_hashing_reports_its_progress_over_every_listed_byte(copy: Path) -> None:
    """A manifest may list a file of any size (a red team's listed a 1 TiB sparse file, which verify then read for hours
    without a word): the full check reports bytes hashed against bytes to hash, up to every listed file's size."""
    big = copy / "logs" / "gateway" / "big.parquet"
    with big.open("wb") as f:
        f.truncate(96 << 20)  # sparse: 96 MiB listed, nothing on disk
    m = json.loads((copy / "manifest.json").read_text())
    m["files"].append({"path": big.relative_to(copy).as_posix(), "rows": 1, "bytes": 96 << 20, "sha256": "0" * 64})
    (copy / "manifest.json").write_text(json.dumps(m))
    total = sum(p.stat().st_size for e in m["files"] + m["truth"] if (p := copy / e["path"]).is_file())
    calls: list[tuple[int, int]] = []
    problems = verify_dataset(copy, full=True, progress=lambda done, of: calls.append((done, of)))
    assert [(p.path, p.what) for p in problems] == [("logs/gateway/big.parquet", "sha256 differs from the manifest")]
    assert calls[0] == (0, total) and calls[-1] == (total, total), (calls[:2], calls[-2:])
    assert all(a[0] <= b[0] and b[1] == total for a, b in zip(calls, calls[1:], strict=False))
    assert len(calls) > 96  # at least a call per MiB of the large file: a caller can show it moving
    assert verify_dataset(copy, full=False, progress=lambda *_: pytest.fail("nothing to hash")) == []


def _swapped(copy: Path, rel: str, data: bytes) -> None:
    """``rel`` replaced by ``data`` and recorded so in the manifest: the dataset still verifies."""
    import hashlib

    (copy / rel).write_bytes(data)
    m = json.loads((copy / "manifest.json").read_text())
    for e in [*m["files"], *m["truth"]]:
        if e["path"] == rel:
            e["bytes"], e["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("file", ["truth", "log"])
@pytest.mark.parametrize("content", ["panic", "columns"])
def test_a_crafted_file_that_verifies_is_one_line_for_every_command(
    copy: Path, tiny_run, tiny_run_dir: Path, file: str, content: str, tmp_path: Path
) -> None:
    """A red team handed over datasets whose one truth or log file (recorded in the manifest, so they verify) made polars
    panic or lacked the columns: score, replay and run gave tracebacks."""
    import io

    import polars as pl
    from bad_detectors import PANIC_PARQUET
    from typer.testing import CliRunner

    from breachbench.cli import app

    rel = "truth/incidents.parquet" if file == "truth" else _a_log(copy).relative_to(copy).as_posix()
    if content == "panic":
        data = PANIC_PARQUET
    else:
        buf = io.BytesIO()
        pl.DataFrame({"ts": ["x"], "foo": [1]}).write_parquet(buf)
        data = buf.getvalue()
    _swapped(copy, rel, data)
    assert verify_dataset(copy, full=True) == []
    alerts = tiny_run_dir / "alerts" / "unissued-token-v1.parquet"
    commands = [["score", str(copy), str(alerts)]]
    if file == "log":
        commands.append(["replay", str(copy), "--to", str(tmp_path / "events.jsonl")])
    for args in commands:
        res = CliRunner().invoke(app, args)
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args[0], res.output, res.exception)
