"""Side-by-side performance comparison of a base git ref and the working tree (head).

Timings from another day or machine are too noisy to gate on, so both sides run here, in
the same job, alternating (base, head, base, head, ...). Each side runs its own
``benchmarks/`` with pytest-benchmark; per benchmark the best (minimum) time over all its runs
is kept, and head fails when it is slower than base by more than ``--threshold``.

Benchmarks that take under ``--floor`` (20 ms) on both sides are reported but not gated: at
that scale ratios swing by 20% from scheduling alone on a 2-core machine. The order of the two
sides alternates between rounds.

Usage (``make perf-compare BASE=<ref>`` calls this)::

    python benchmarks/compare.py --base main [--threshold 0.15] [--rounds 2] [-k EXPR]

By default each side gets its own virtual environment under ``.perf/`` (created once,
re-installed from its source each run). ``--same-env`` instead runs both sides with this
interpreter and each source tree first on ``PYTHONPATH``: much faster, good for a quick
check, but the installed package's entry points (registered detectors) are head's.
Exit status: 0 no regression, 1 a regression (named), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)


def export_ref(ref: str, dest: Path) -> None:
    """Write the tree of ``ref`` into ``dest`` (no git metadata)."""
    try:
        sha = _run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True).stdout.strip()
    except subprocess.CalledProcessError:
        raise SystemExit(f"error: --base {ref!r} is not a commit in {ROOT}") from None
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryFile() as tmp:
        subprocess.run(["git", "-C", str(ROOT), "archive", sha], stdout=tmp, check=True)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(dest, filter="data")


def make_env(src: Path, env_dir: Path) -> Path:
    """A virtual environment with ``src`` installed (with its test extras); returns its python."""
    py = env_dir / "bin" / "python"
    if not py.exists():
        _run([sys.executable, "-m", "venv", str(env_dir)])
        _run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([str(py), "-m", "pip", "install", "--quiet", "-e", f"{src}[test]"])
    return py


def run_side(py: str, src: Path, out: Path, cache: Path, select: str | None, same_env: bool) -> dict[str, float]:
    """Run ``src``'s benchmarks once; return benchmark name -> min seconds."""
    env = dict(os.environ, BREACHBENCH_CACHE=str(cache))
    if same_env:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [py, "-m", "pytest", "benchmarks", "-q", "--benchmark-only", f"--benchmark-json={out}", "-p", "no:cacheprovider"]
    if select:
        cmd += ["-k", select]
    proc = subprocess.run(cmd, cwd=src, env=env, text=True, capture_output=True)
    if proc.returncode == 5:  # no benchmark selected on this side
        return {}
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"error: benchmarks failed in {src} (exit {proc.returncode})")
    data = json.loads(out.read_text())
    return {b["fullname"]: b["stats"]["min"] for b in data["benchmarks"]}


def compare(
    base: dict[str, list[float]], head: dict[str, list[float]], threshold: float, floor: float = 0.0
) -> tuple[list[tuple[str, float | None, float | None, float | None, str]], list[str]]:
    """Rows of (name, base s, head s, ratio, verdict) and the names that regressed.

    A benchmark whose head and base both take under ``floor`` seconds is reported but not
    gated: at that scale a ratio measures timer and scheduler noise.
    """
    rows, bad = [], []
    for name in sorted(set(base) | set(head)):
        b = min(base[name]) if name in base else None
        h = min(head[name]) if name in head else None
        if b is None or h is None:
            rows.append((name, b, h, None, "new" if b is None else "removed"))
            continue
        ratio = h / b if b > 0 else float("inf")
        verdict = "SLOWER" if ratio > 1 + threshold else ("faster" if ratio < 1 - threshold else "ok")
        if max(b, h) < floor and verdict != "ok":
            verdict = f"{verdict.lower()} (< floor, not gated)"
        if verdict == "SLOWER":
            bad.append(name)
        rows.append((name, b, h, ratio, verdict))
    return rows, bad


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="git ref to compare against (e.g. main, HEAD~1)")
    p.add_argument("--threshold", type=float, default=0.15, help="allowed relative slowdown (default 0.15)")
    p.add_argument("--rounds", type=int, default=2, help="alternating runs per side (default 2)")
    p.add_argument("--floor", type=float, default=0.02, help="seconds under which a benchmark is not gated (default 0.02)")
    p.add_argument("-k", dest="select", default=None, help="pytest -k expression to pick benchmarks")
    p.add_argument("--same-env", action="store_true", help="run both sides with this interpreter (quick check)")
    p.add_argument("--workdir", type=Path, default=ROOT / ".perf", help="where sources, environments and JSON go")
    a = p.parse_args(argv)
    if not 0 <= a.threshold < 10:
        p.error(f"--threshold {a.threshold}: must be in [0, 10)")
    if a.rounds < 1:
        p.error(f"--rounds {a.rounds}: must be >= 1")
    work = a.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    base_src, head_src = work / "base-src", ROOT
    export_ref(a.base, base_src)
    if a.same_env:
        base_py = head_py = sys.executable
    else:
        base_py = str(make_env(base_src, work / "venv-base"))
        head_py = str(make_env(head_src, work / "venv-head"))
    times: dict[str, dict[str, list[float]]] = {"base": {}, "head": {}}
    sides = [("base", base_py, base_src), ("head", head_py, head_src)]
    for i in range(a.rounds):
        for side, py, src in sides if i % 2 == 0 else sides[::-1]:  # alternate who goes first
            print(f"round {i + 1}/{a.rounds}: {side}", file=sys.stderr, flush=True)
            res = run_side(py, src, work / f"{side}-{i}.json", work / f"cache-{side}", a.select, a.same_env)
            for name, t in res.items():
                times[side].setdefault(name, []).append(t)
    rows, bad = compare(times["base"], times["head"], a.threshold, a.floor)
    width = max([len(r[0]) for r in rows] + [9])
    print(f"{'benchmark':<{width}}  {'base s':>9}  {'head s':>9}  {'head/base':>9}  verdict")
    for name, b, h, ratio, verdict in rows:
        fmt = lambda v: "-" if v is None else f"{v:9.4f}"  # noqa: E731
        print(f"{name:<{width}}  {fmt(b):>9}  {fmt(h):>9}  {fmt(ratio):>9}  {verdict}")
    (work / "compare.json").write_text(
        json.dumps({"base": a.base, "threshold": a.threshold, "rows": rows, "regressions": bad}, indent=2)
    )
    if bad:
        print(f"FAIL: head is more than {a.threshold:.0%} slower than {a.base} on: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"OK: no benchmark more than {a.threshold:.0%} slower than {a.base}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
