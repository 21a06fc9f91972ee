"""Run a command and report its wall time and the peak of the summed RSS of its process tree.

``/usr/bin/time -v`` reports the largest single process, not the sum over worker processes;
this samples /proc (Linux) every 50 ms instead. Usage::

    python benchmarks/peak_rss.py breachbench generate configs/coupang-2025.toml --out DIR --only world --workers 2
"""

from __future__ import annotations

import subprocess
import sys
import time

from breachbench.isolation import tree_rss


def main(argv: list[str]) -> int:
    """Run ``argv``; print wall seconds and peak tree RSS in GiB to stderr; return its exit code."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    t = time.perf_counter()
    proc = subprocess.Popen(argv)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - t
    print(f"wall_s={wall:.1f} peak_tree_rss_gib={peak / 2**30:.2f} exit={proc.returncode}", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
