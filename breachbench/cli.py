"""The ``breachbench`` command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from breachbench.interop.export import As as ExportAs
    from breachbench.interop.replay import As as ReplayAs

app = typer.Typer(
    help="BreachBench: generate a synthetic company with insider attacks, run detectors, score them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
detectors_app = typer.Typer(help="Registered detectors.", no_args_is_help=True)
scenarios_app = typer.Typer(help="Registered attack scenarios.", no_args_is_help=True)
app.add_typer(detectors_app, name="detectors")
app.add_typer(scenarios_app, name="scenarios")

err_console = Console(stderr=True)
out_console = Console() if Console().is_terminal else Console(width=200)  # tables stay readable in logs


def _no_secret(values: list[str] | None) -> list[str] | None:
    """``--set`` values, refusing ``secret``: a command line is readable by every process of the machine
    (``/proc/PID/cmdline``), the detectors' own included, and a secret there would let them generate the datasets."""
    for v in values or []:
        if v.partition("=")[0].strip() == "secret":
            raise typer.BadParameter(
                "secret: a value on the command line is readable by every process on the machine, the detectors' "
                'included; put secret = "<64 hex digits>" in the config file (breachbench run also takes it from OUT/secret)'
            )
    return values


def _plugin_path(folders: list[Path] | None) -> list[Path] | None:
    """``--plugin-path`` folders: each must exist; they join :data:`simulator.plugins.PLUGIN_PATH_ENV` (searched for
    ``module:Class`` detectors in their sealed processes only, never on the bench's own import path)."""
    import os

    from breachbench.isolation import SCAN_ENTRIES, bench_files, python_and_system
    from simulator.plugins import PLUGIN_PATH_ENV

    if not folders:
        return folders
    for f in folders:
        if os.pathsep in str(f.resolve()):  # the folders travel joined by it: "acme:runs" would be "acme" and "./runs"
            raise typer.BadParameter(f"{f}: a folder whose path holds {os.pathsep!r}; move the plugin to a folder without it")
        if not f.is_dir():
            raise typer.BadParameter(f"{f}: not a folder; expected the folder that holds the detector's module or package")
        found, large = bench_files([f], skip=python_and_system())
        if large:
            raise typer.BadParameter(
                f"{f}: more than {SCAN_ENTRIES:,} files and folders to search for datasets and runs, which detectors "
                "must not read; point it at the folder that holds the detector's code"
            )
        if found:
            err_console.print(
                f"note: --plugin-path {f} holds the bench's own files, hidden from every detector: "
                + ", ".join(str(p) for p in found[:3])
                + (f" and {len(found) - 3} more" if len(found) > 3 else ""),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    known = [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    os.environ[PLUGIN_PATH_ENV] = os.pathsep.join([*known, *(str(f.resolve()) for f in folders)])
    if os.geteuid() == 0:
        err_console.print(
            "warning: running as root: a detector's sealed process drops every capability but keeps user id 0; it is "
            "kept from files in /etc and /opt that others may not read, not from such files in /usr, /proc or /sys; "
            "run detectors you did not write as an ordinary user",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return folders


def _warn_startup_code() -> None:
    """Say on standard error which ``PYTHONPATH`` folders hold a ``sitecustomize`` or ``usercustomize`` module: Python
    ran it as this process started, outside any seal (a red-team plugin shipped one beside its module). A hostile one
    can hide itself by then; a careless one is named."""
    import os

    for folder in [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]:
        found = [n for n in ("sitecustomize", "usercustomize") if any(Path(folder, n + x).exists() for x in (".py", ""))]
        if found:
            err_console.print(
                f"warning: PYTHONPATH folder {folder} holds {' and '.join(found)}, which Python ran unsealed as the bench "
                "started; give a detector you did not write with --plugin-path, never on PYTHONPATH",
                highlight=False,
                markup=False,
            )


PluginPathOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--plugin-path",
        help="folder holding a third-party detector's module (named module:Class), searched only in the sealed process "
        "of a detector whose module it holds (its helpers go beside it); "
        "safer than PYTHONPATH, whose folders Python runs code from (sitecustomize.py) as the bench starts (repeatable)",
        callback=_plugin_path,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a config key: dotted.key=value (repeatable; not secret)", callback=_no_secret),
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="worker processes for generation (output is identical for any count)")]
ExecutorOpt = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="where generation runs: serial, process (a local pool of --workers) or dask (default: the config's execution.executor, "
        "else process; output is identical on each)",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="address of an existing Dask scheduler to generate on, e.g. tcp://10.0.0.5:8786 (implies --executor dask)",
    ),
]


def _with_execution(cfg: Any, executor: str | None, scheduler: str | None) -> Any:
    """The config with --executor/--scheduler applied over its [execution] table; refuses a bad pair or a missing Dask in one line."""
    from breachbench.config import ExecutionConfig
    from simulator.engine import check_executor

    name = executor or ("dask" if scheduler else cfg.execution.executor)
    address = scheduler or (cfg.execution.scheduler if name == "dask" else None)
    check_executor(name, address)
    return cfg.model_copy(update={"execution": ExecutionConfig(executor=name, scheduler=address)})


def _one_line(message: str) -> str:
    """An error message as one line: a library's multi-line text (polars adds the stack of the query's
    operators after a blank line) is cut at that stack, and line breaks become spaces."""
    head = message.split("This error occurred with the following context stack", 1)[0]
    return " ".join(head.split())


def _fail(message: str) -> NoReturn:
    err_console.print(
        f"[bold red]error:[/bold red] {escape(_one_line(message))}", highlight=False, soft_wrap=True
    )  # brackets are text: 'breachbench[dask]'
    raise typer.Exit(2)


#: Whether :func:`_interrupted` has said its line (:func:`main` says one for the commands that do not).
_INTERRUPT_SAID = False


def _interrupted(signame: str, code: int, kept: Callable[[], str] | None) -> None:
    """One line for an interrupt, saying what was kept; exit 130 (SIGINT) or 143 (SIGTERM)."""
    global _INTERRUPT_SAID
    _INTERRUPT_SAID = True
    try:
        what = kept() if kept else "no partial output was kept"
    except Exception as exc:  # the report must not turn into a traceback
        what = f"could not list what was kept ({type(exc).__name__})"
    err_console.print(f"[bold red]interrupted[/bold red] ({signame}): {what}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _disk_full(exc: OSError, need: Callable[[], int | None] | None = None) -> None:
    """One line for a full disk: the path, the space free there and, when the command knows it, the space its output needs."""
    import shutil

    where = Path(exc.filename or ".")
    probe = next((p for p in (where, *where.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    try:
        needed = need() if need else None
    except Exception:
        needed = None
    what = (
        f"this command's datasets need up to {needed / 2**20:,.0f} MiB (an upper estimate)"
        if needed
        else "a tiny dataset needs about 20 MiB, the default suite's about 500 MiB"
    )
    _fail(
        f"{where}: no space left on the device ({free / 2**20:,.0f} MiB free on {probe}); {what}; free space or choose another --out"
    )


def _polars_errors() -> tuple[type[BaseException], ...]:
    """The errors polars raises on a file it cannot read as asked (a ``PanicException`` is not an ``Exception``)."""
    import polars as pl

    return (pl.exceptions.PolarsError, pl.exceptions.PanicException)


@contextlib.contextmanager
def _user_errors(kept: Callable[[], str] | None = None, need: Callable[[], int | None] | None = None) -> Iterator[None]:
    """Turn bad-input exceptions into one-line messages and exit status 2; interrupts into one line and 130/143.

    Args:
        kept: describes what an interrupted command kept on disk (default: nothing).
        need: bytes the command's output needs on disk, for the message of a full disk (None: unknown).
    """
    import errno

    from breachbench.safety import Terminated, signals_as_exceptions
    from simulator.errors import BreachBenchError

    try:
        with signals_as_exceptions():
            yield
    except BreachBenchError as exc:  # every error the project raises for bad input or refused work
        _fail(str(exc))
    except FileNotFoundError as exc:
        _fail(f"{exc.filename or exc}: file not found")
    except KeyboardInterrupt:
        _interrupted("SIGINT", 130, kept)
    except Terminated:
        _interrupted("SIGTERM", 143, kept)
    except _polars_errors() as exc:  # evaluated only when an exception gets this far: polars is imported then
        # a file of a dataset (or an input) that is not what it should be: a crafted one made polars panic or miss a
        # column in score, replay and run, each a traceback; the bench's own files are checked against their manifest
        _fail(
            f"the data could not be read ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
            "a file that is not what the bench wrote? `breachbench verify` checks a dataset against its manifest"
        )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            _disk_full(exc, need)
        if exc.filename is None:
            raise
        # a path the command could not read or create: a file where a folder goes, a folder it may not write in
        # (/proc, another user's), a path through a file
        _fail(f"{exc.filename}: {exc.strerror or type(exc).__name__}")


#: Seconds ``generate`` writes no progress lines off a terminal: a failure at once stays one line.
GENERATE_QUIET_S = 30.0
#: The same for ``verify``'s hashing (a small dataset verifies in a second or two, a large one's files take minutes).
VERIFY_QUIET_S = 10.0


class PlainProgress:
    """Rich ``Progress``'s ``add_task``/``update``/``advance``, written as plain lines for logs (stdout not a terminal).

    One line when a stage starts, one when its description changes (the detector now running), one when it completes
    (counts and seconds), and at most one every ``every`` seconds in between; each starts with the run's elapsed time.
    Nothing in the first ``quiet`` seconds (a short command, or one that fails at once, stays one line).
    """

    def __init__(self, console: Console, every: float = 30.0, quiet: float = 0.0) -> None:
        self.console, self.every, self.quiet, self.t0 = console, every, quiet, time.perf_counter()
        self.tasks: dict[int, dict[str, Any]] = {}

    def say(self, text: str) -> None:
        if time.perf_counter() - self.t0 < self.quiet:
            return
        self.console.print(f"[{time.perf_counter() - self.t0:7.1f} s] {text}", highlight=False, markup=False, soft_wrap=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        tid = len(self.tasks)
        now = time.perf_counter()
        self.tasks[tid] = {"description": description, "total": total, "done": 0, "start": now, "last": now, "finished": False}
        self.say(f"{description}: started (0/{total:g})" if total is not None else f"{description}: started")
        return tid

    def _counts(self, t: dict[str, Any]) -> str:
        return f"{t['done']:g}/{t['total']:g}" if t["total"] is not None else f"{t['done']:g}"

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        total: float | None = None,
        **_: Any,
    ) -> None:
        t = self.tasks[task_id]
        if total is not None:
            t["total"] = total
        now = time.perf_counter()
        if completed is not None:
            if completed < t["done"]:  # the stage starts again (the next dataset's generation)
                t.update(start=now, last=now, finished=False)
                self.say(
                    f"{description or t['description']}: started again ({completed:g}/{t['total']:g})"
                    if t["total"] is not None
                    else f"{description or t['description']}: started again"
                )
            t["done"] = completed
        if advance is not None:
            t["done"] += advance
        if description is not None and description != t["description"]:
            t["description"] = description
            t["last"] = now
            self.say(f"{description}: {self._counts(t)}")
        if not t["finished"] and t["total"] is not None and t["done"] >= t["total"]:
            t["finished"] = True
            self.say(f"{t['description']}: done, {self._counts(t)} in {now - t['start']:.1f} s")
        elif now - t["last"] >= self.every:
            t["last"] = now
            self.say(f"{t['description']}: {self._counts(t)} ({now - t['start']:.0f} s so far)")

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)


@contextlib.contextmanager
def _progress(quiet: float = 0.0) -> Iterator[Any]:
    """A rich progress display on a terminal; off the terminal, plain progress lines (:class:`PlainProgress`), none in
    the first ``quiet`` seconds (``generate``: a failure or an interruption at once stays one line)."""
    if not err_console.is_terminal:
        yield PlainProgress(err_console, quiet=quiet)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as p:
        yield p


def _gen_progress(p: Any) -> Any:
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if p is None:
            return
        if stage not in tasks:
            tasks[stage] = p.add_task(f"generate {stage}", total=total)
        p.update(tasks[stage], completed=done)

    return report


@app.command()
def generate(
    config: Annotated[Path, typer.Argument(help="TOML config, e.g. configs/tiny.toml")],
    out: Annotated[
        str, typer.Option("--out", help="dataset directory to create, or an fsspec URL (s3://bucket/prefix, memory://...)")
    ],
    workers: WorkersOpt = 1,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing non-empty --out")] = False,
    only: Annotated[str | None, typer.Option("--only", help="generate one part only: world")] = None,
    shard_size: Annotated[
        int | None,
        typer.Option("--shard-size", help="customers per unit of work, whole blocks (output is identical for any size)"),
    ] = None,
) -> None:
    """Generate a dataset (world tables, logs, truth, manifest) from a config.

    (Its parameters are the command's options, hence more than six.)
    """
    from breachbench.config import load_config
    from simulator.engine import generate as gen

    sized: dict[str, int] = {}
    from simulator.storage import is_url

    kept = (
        "the manifest is written last, only when the dataset is complete; what was uploaded is removed"
        if is_url(out)
        else "the dataset is renamed into place only when complete"
    )
    with _user_errors(lambda: f"nothing was written to {out} ({kept})", lambda: sized.get("bytes")):
        cfg = _with_execution(load_config(config, set_), executor, scheduler)
        from simulator.engine import estimated_bytes

        sized["bytes"] = estimated_bytes(cfg.sim())
        with _progress(quiet=GENERATE_QUIET_S) as p:
            path = gen(
                cfg.sim(),
                out,
                workers=workers,
                force=force,
                only=only,
                shard_size=shard_size,
                progress=_gen_progress(p),
                executor=cfg.execution.executor,
                scheduler=cfg.execution.scheduler,
            )
    out_console.print(f"dataset written to {path}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="TOML config, e.g. configs/default.toml, or a dataset directory")],
    out: Annotated[Path | None, typer.Option("--out", help="results directory (default: runs/<name>)")] = None,
    set_: SetOpt = None,
    workers: WorkersOpt = 2,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    verify: Annotated[bool, typer.Option("--verify", help="check full SHA-256 of a reused dataset (default: sizes)")] = False,
    detectors: Annotated[
        str | None,
        typer.Option(
            "--detectors", help="detector ids (comma-separated) to run besides the config's; the leaderboard holds all of them"
        ),
    ] = None,
    plugin_path: PluginPathOpt = None,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="run every detector, the leakage audit and the chance draws again, even those whose results in --out are reusable (same code, datasets and limits)",
        ),
    ] = False,
) -> None:
    """Run the suite: datasets, every configured detector, scores, reports.

    Run again into the same --out, a detector whose code (its package's files), datasets and limits are unchanged
    is not run again: its alerts files, checked against results.json's hashes, are scored afresh with the rest;
    the leakage audit and the chance lines are reused while the datasets, budgets, draws, cost profile and bench code
    are unchanged (--rerun runs everything again). Add a detector to a finished run with --detectors my-det-v1.

    The seeds are sealed: a secret of the run's own (OUT/secret, made on the first run into OUT) is mixed into them,
    so no detector can generate the datasets again from the config; suite.seal_seeds = false makes them public.

    One dataset per test seed and scenario (reused when its manifest matches); each detector runs in its own
    process under detection.timeout_s and detection.memory_mb; metrics pooled over the grid with bootstrap
    confidence intervals. Writes results.json, leaderboard.md, report.html and alerts/ under --out.

    Given a dataset directory instead (e.g. made by `breachbench import`), runs every registered detector
    (and the --detectors ones) on it and writes alerts/, top-alerts.md (the top alerts of each day) and results.json, with scores when
    the dataset has labels.

    (Its parameters are the command's options, hence more than six; with their help texts and this
    text it runs past fifty lines, the work itself is about twenty.)
    """
    _warn_startup_code()
    if config.is_dir():  # a dataset folder (an imported one, say): every detector on it, labels or not
        _run_on_dataset(config, out, set_, detectors)
        return
    from breachbench.config import load_config
    from breachbench.suite import run_suite

    holder: dict[str, Path] = {}
    started = time.time()  # results.json older than this is an earlier run's
    sized: dict[str, int] = {}
    with _user_errors(lambda: _kept_of_run(holder.get("out"), started), lambda: sized.get("bytes")):
        from simulator.outdir import locked

        cfg = _with_execution(load_config(config, set_), executor, scheduler)
        from breachbench.suite import grid_bytes

        sized["bytes"] = grid_bytes(cfg)
        cfg = _with_detectors(cfg, detectors)
        out = _run_out(out, cfg.name)
        with locked(out), _progress() as p:
            holder["out"] = out
            log = p.say if isinstance(p, PlainProgress) else err_console.print  # plain: every line with the elapsed time
            result = run_suite(
                cfg, out, workers=workers, progress=p, gen_progress=_gen_progress(p), log=log, verify=verify, reuse=not rerun
            )
    _print_run(result, cfg.name)


def _kept_of_run(run_dir: Path | None, started: float) -> str:
    """After a failed or interrupted run: remove its partial results and say what stays (the datasets that verify,
    and an earlier run's results while they still describe the folder; results this run wrote, ``started`` or
    later, go: its report is not whole)."""
    if run_dir is None:
        return "nothing was written"
    from breachbench.safety import clear_run_outputs, drop_staging, earlier_results_hold
    from breachbench.verify import verify_dataset

    staged = drop_staging(run_dir)
    earlier = earlier_results_hold(run_dir) and (run_dir / "results.json").stat().st_mtime < started
    removed = [] if earlier else clear_run_outputs(run_dir)
    sets = [p.parent for p in sorted(run_dir.glob("dataset*/manifest.json")) + sorted(run_dir.glob("datasets/*/manifest.json"))]
    good = [str(p) for p in sets if not verify_dataset(p)]
    from breachbench.suite import SECRET_FILE

    secret = run_dir / SECRET_FILE
    if not good and secret.is_file():  # the secret of datasets that are not there: a later run makes a new one
        secret.unlink()
    return (
        f"kept {len(good)} complete dataset(s) that verify"
        + (f" ({', '.join(good)})" + (f" and {secret} (their seeds' secret)" if secret.is_file() else "") if good else "")
        + (
            f"; the earlier run's results.json, reports and alerts stay as they were; removed {staged} alerts file(s) of this run"
            if earlier
            else f"; removed {len(removed) + staged} partial result file(s) (alerts, feature tables); results.json not written"
        )
    )


def _extra_detectors(detectors: str | None) -> list[str]:
    """The ``--detectors`` ids (comma-separated)."""
    from simulator.errors import SimulationError

    extra = [d.strip() for d in detectors.split(",")] if detectors is not None else []
    if not all(extra):
        raise SimulationError(
            f"--detectors {detectors!r}: an empty id; accepted: registered ids or module:Class, comma-separated"
        )
    return extra


def _with_detectors(cfg: Any, detectors: str | None) -> Any:
    """``cfg`` with the ``--detectors`` ids (comma-separated) added after the config's."""
    extra = _extra_detectors(detectors)
    if not extra:
        return cfg
    return cfg.model_copy(
        update={"detection": cfg.detection.model_copy(update={"detectors": [*cfg.detection.detectors, *extra]})}
    )


def _run_out(out: Path | None, name: str) -> Path:
    """The run directory: ``--out``, else ``runs/<name>``; refused under a regular file, and without ``--out`` for a name
    that is no plain folder name (``runs/..`` is the current folder)."""
    from simulator.errors import SimulationError

    if out is None and (name in ("", ".", "..") or "/" in name):
        raise SimulationError(f"the run's name {name!r} is no folder name to make under runs/; give --out")
    out = out or Path("runs") / name
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise SimulationError(f"--out: {parent} is a file, so {out} cannot be a run directory")
    return out


def _print_run(result: dict[str, Any], name: str) -> None:
    """The leaderboard, the leakage verdict and the paths of a finished run, on stdout."""
    from breachbench.report import print_leaderboard

    print_leaderboard(result["rows"], name, out_console, json.loads(Path(result["results"]).read_text()))
    leak = result["leakage_audit"]
    if leak["leaking"]:
        out_console.print(
            f"[bold red]leakage audit:[/bold red] a one-line shortcut reaches {leak['line']:.0f}% of the oracle on "
            f"{', '.join(leak['leaking'])}; read those results with that in mind (report.html)",
            highlight=False,
        )
    else:
        out_console.print(
            "leakage audit: no shortcut reaches the leak line on a scenario that is not declared easy"
            + (f" (declared easy: {', '.join(leak['declared_easy'])})" if leak["declared_easy"] else ""),
            highlight=False,
        )
    out_console.print(
        f"results: {result['results']}\nleaderboard: {result['leaderboard']}\nreport: {result['report']}", highlight=False
    )


def _alerts_to_score(alerts: Path, ds: Any, budget: int) -> Any:
    """The alerts file read and validated against the dataset ``ds``: refuses a budget over its largest
    scored bucket and warns about rows outside the scored buckets."""
    import polars as pl

    from breachbench.dataset import DatasetError
    from detectors.contract import AlertsError, validate_alerts

    if alerts.is_dir():
        raise AlertsError(f"{alerts}: a folder; give the alerts' Parquet file")
    if not alerts.is_file():
        raise FileNotFoundError(2, "not found", str(alerts))
    from breachbench import untrusted
    from breachbench.config import DetectionConfig
    from breachbench.isolation import MAX_ALERT_BYTES_PER_BUCKET, MAX_ALERT_ROWS_PER_BUCKET

    # read in the bench's sealed alerts reader, as a detector's are, under a detector's default limits: the file may
    # come from anywhere, and a crafted one made polars panic in this process (a traceback, exit 1)
    buckets = max(1, len(ds.scored))
    limits = DetectionConfig()
    if alerts.stat().st_size > MAX_ALERT_BYTES_PER_BUCKET * buckets:
        raise AlertsError(
            f"{alerts}: {alerts.stat().st_size:,} bytes, more than the bench reads for {buckets} scored bucket(s) "
            f"({MAX_ALERT_BYTES_PER_BUCKET * buckets:,})"
        )
    try:
        frame = untrusted.read_alerts(
            alerts.read_bytes(),
            {},
            [],
            str(alerts),
            buckets=buckets,
            max_rows=MAX_ALERT_ROWS_PER_BUCKET,
            memory_mb=limits.memory_mb,
            timeout_s=limits.timeout_s,
        )
    except (untrusted.UntrustedFileError, untrusted.TooManyAlerts) as exc:  # not Parquet, truncated, not alerts...
        raise AlertsError(f"{alerts}: cannot be read as Parquet alerts: {exc}") from None
    frame = validate_alerts(frame, source=str(alerts))
    units = int(ds.universe_size.filter(pl.col("bucket").is_in(ds.scored)).select(pl.col("units").max()).item() or 0)
    if budget > units:
        raise DatasetError(
            f"--budget {budget}: more than the {units} alert units of the dataset's largest scored bucket; accepted: 1 to {units}"
        )
    outside = frame.filter(~pl.col("bucket").is_in(ds.scored))
    if outside.height:
        err_console.print(
            f"[yellow]warning:[/yellow] {outside.height} of {frame.height} alert row(s) are outside the scored buckets "
            f"({ds.scored[0]} to {ds.scored[-1]}) and are not scored",
            highlight=False,
            soft_wrap=True,
        )
    return frame


@app.command()
def score(
    dataset: Annotated[Path, typer.Argument(help="dataset directory made by `breachbench generate`")],
    alerts: Annotated[Path, typer.Argument(help="Parquet file with columns bucket, entity_kind, entity_id, score [, reason]")],
    budget: Annotated[int, typer.Option("--budget", min=1, help="alert units read per bucket (k)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
    profile: Annotated[str, typer.Option("--profile", help="cost profile of op_score")] = "standard",
    verify: Annotated[bool, typer.Option("--verify", help="check full SHA-256 of the dataset's files (default: sizes)")] = False,
) -> None:
    """Score alerts computed anywhere against a dataset's truth.

    (Its parameters are the command's options.)
    """
    from breachbench.dataset import Dataset, DatasetError
    from breachbench.scoring import Truth, cost_profiles, score_alerts

    with _user_errors():
        if profile not in cost_profiles()["profiles"]:
            raise DatasetError(f"--profile {profile!r}: unknown; accepted: {', '.join(cost_profiles()['profiles'])}")
        ds = Dataset.open(dataset)
        from breachbench.verify import check_dataset

        check_dataset(dataset, full=verify)
        frame = _alerts_to_score(alerts, ds, budget)
        result = score_alerts(frame, Truth.of(ds), budget=budget, profile=profile)
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True, default=str) + "\n")
        return
    from rich.table import Table

    t = Table(title=f"{alerts.name} on {dataset}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in result["overall"].items():
        t.add_row(k, json.dumps(v, default=str) if isinstance(v, dict) else (f"{v:.4g}" if isinstance(v, float) else str(v)))
    out_console.print(t)


@app.command()
def compare(
    old: Annotated[Path, typer.Argument(help="results.json of the reference run (or its --out folder)")],
    new: Annotated[Path, typer.Argument(help="results.json of the run under test (or its --out folder)")],
    metric: Annotated[str, typer.Option("--metric", help="metric that gates the exit status")] = "op_score",
    tolerance: Annotated[float, typer.Option("--tolerance", min=0, help="allowed drop of --metric (absolute)")] = 0.0,
    other_datasets: Annotated[
        bool,
        typer.Option(
            "--other-datasets",
            help="compare runs that scored different datasets (another --out folder draws its own secret), or at another "
            "budget or cost profile; refused without it",
        ),
    ] = False,
) -> None:
    """Per-metric deltas between two runs of the same datasets; exit 1 when --metric drops by more than --tolerance."""
    from rich.table import Table

    from breachbench.compare import CompareError, load_results
    from breachbench.compare import compare as do_compare
    from breachbench.runner import detector_text

    try:
        rows, bad = do_compare(load_results(old), load_results(new), metric, tolerance, other_datasets=other_datasets)
    except CompareError as exc:
        _fail(str(exc))
    except OSError as exc:  # unreadable: one line
        _fail(f"{exc.filename or old}: {exc.strerror or exc}")
    t = Table(title=escape(f"{old} -> {new}"))
    for c in ("detector", "metric", "old", "new", "delta", ""):
        t.add_column(c, justify="left" if c in ("detector", "metric") else "right")
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    shown = lambda det: escape(detector_text(det))  # noqa: E731  # ids from a file: no markup, no escape sequences
    for r in rows:
        t.add_row(
            shown(r["detector"]),
            r["metric"],
            fmt(r["old"]),
            fmt(r["new"]),
            fmt(r["delta"]),
            "REGRESSED" if r["regressed"] else "",
        )
    out_console.print(t)
    if bad:
        err_console.print(
            f"[bold red]regression:[/bold red] {metric} dropped by more than {tolerance} for {', '.join(map(shown, bad))}",
            highlight=False,
        )
        raise typer.Exit(1)
    out_console.print(f"no regression of {metric} beyond {tolerance}", highlight=False)


@app.command("export")
def export_cmd(
    dataset: Annotated[Path, typer.Argument(help="dataset directory made by `breachbench generate`")],
    fmt: Annotated[str, typer.Option("--format", help="event schema: ocsf (1.3.0) or ecs (8.11)")],
    out: Annotated[Path, typer.Option("--out", help="directory to write <stream>/<day>.<ext> and export.json into")],
    as_: Annotated[str, typer.Option("--as", help="file format: ndjson or parquet")] = "ndjson",
    truth: Annotated[bool, typer.Option("--truth", help="also write the truth tables to OUT/truth/, marked as truth")] = False,
) -> None:
    """Export the logs as OCSF or ECS events, one file per stream and delivery day, streaming."""
    from breachbench.interop.export import export_dataset
    from breachbench.interop.mapping import MappingError

    if as_ not in ("ndjson", "parquet"):
        _fail(f"--as {as_!r}: unknown; accepted: ndjson, parquet")
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            _fail(f"--out: {parent} is a file, so {out} cannot be the export's folder")
    with _user_errors():
        try:
            m = export_dataset(dataset, out, fmt, as_=cast("ExportAs", as_), truth=truth)  # checked above
        except MappingError as exc:
            _fail(str(exc))
    rows = sum(f["rows"] for f in m["files"])
    out_console.print(
        f"{rows} events in {len(m['files'])} files ({m['format']} {m['schema_version']}, mapping {m['mapping']}) written to {out}",
        highlight=False,
    )


def _iso_time(text: str | None, name: str) -> dt.datetime | None:
    """Option ``name``'s ISO 8601 time (UTC unless it names an offset); None when not given; exit 2 when malformed."""
    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{name} {text!r}: not an ISO 8601 time such as 2025-04-10T00:00:00Z")
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _speed_factor(speed: str) -> float | None:
    """``--speed``: N or Nx times real time; None for max (as fast as possible); exit 2 otherwise."""
    factor = None if speed == "max" else speed.removesuffix("x")
    try:
        return None if factor is None else float(factor)
    except ValueError:
        _fail(f"--speed {speed!r}: give N, Nx or max")


@app.command("replay")
def replay_cmd(
    dataset: Annotated[Path, typer.Argument(help="dataset directory made by `breachbench generate`")],
    to: Annotated[str, typer.Option("--to", help="stdout, a file path, tcp://HOST:PORT or udp://HOST:PORT")] = "stdout",
    speed: Annotated[
        str, typer.Option("--speed", help="N times real time (1000 or 1000x), or max for as fast as possible")
    ] = "max",
    as_: Annotated[str, typer.Option("--as", help="ecs or ocsf JSON lines, or syslog (RFC 5424 around the ECS JSON)")] = "ecs",
    start: Annotated[
        str | None, typer.Option("--start", help="first delivery time to send (ISO 8601; UTC unless it names an offset)")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="delivery time to stop before (ISO 8601)")] = None,
    buffer: Annotated[int, typer.Option("--buffer", min=1000, help="events held at most between reader and sender")] = 10_000,
) -> None:
    """Send the logs as one stream in delivery order (late rows when they were delivered), paced or as fast as possible.

    (Its parameters are the command's options.)
    """
    from breachbench.interop.replay import ReplayError, replay

    factor_f = _speed_factor(speed)
    with _user_errors():
        try:
            stats = replay(
                dataset,
                to,
                as_=cast("ReplayAs", as_),
                speed=factor_f,
                start=_iso_time(start, "--start"),
                end=_iso_time(end, "--end"),
                buffer=buffer,
            )  # replay checks as_
        except (ReplayError, OSError) as exc:
            _fail(str(exc))
    err_console.print(f"replayed {stats.events} events in {stats.wall_s:.2f} s", highlight=False)


@app.command("import")
def import_cmd(
    sources: Annotated[list[Path], typer.Argument(help="log files or folders (Parquet, CSV, JSON lines)")],
    mapping: Annotated[
        Path, typer.Option("--mapping", help="import mapping TOML (example: breachbench/data/mappings/import-ocsf-1.3.0.toml)")
    ],
    out: Annotated[Path, typer.Option("--out", help="dataset directory to create")],
    world: Annotated[
        Path | None, typer.Option("--world", help="folder of world tables (<table>.parquet or <table>-*.parquet); optional")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="folder of truth tables (<table>.parquet or .ndjson) to score against; optional"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing non-empty --out")] = False,
) -> None:
    """Build a dataset folder from your own logs, mapped to the four streams by a declarative mapping."""
    from breachbench.interop.importer import import_logs
    from breachbench.interop.mapping import MappingError

    with _user_errors():
        try:
            m = import_logs(mapping, out, sources, world=world, labels=labels, force=force)
        except (MappingError, FileExistsError) as exc:
            _fail(f"{exc.filename}: {exc.strerror}" if isinstance(exc, FileExistsError) else str(exc))
    t = m["config"]["time"]
    rows = sum(f["rows"] for f in m["files"])
    out_console.print(
        f"dataset written to {out}: {rows} events, {t['start']} to {t['end']} ({t['timezone']}), "
        f"world tables: {', '.join(m['imported']['world_tables']) or 'none'}, labels: {', '.join(m['imported']['labels']) or 'none'}",
        highlight=False,
    )


def _run_on_dataset(dataset: Path, out: Path | None, set_: list[str] | None, detectors: str | None) -> None:
    """`breachbench run DATASET`: every registered detector on one dataset folder, and the ``--detectors`` ones."""
    from breachbench.config import DetectionConfig
    from breachbench.interop.dataset_run import run_dataset
    from breachbench.runner import preflight_detectors

    if set_:
        _fail("--set applies to a config; a dataset directory runs every registered detector with the default limits")
    with _user_errors():
        out = _run_out(out, dataset.name if dataset.name not in ("", ".", "..") else dataset.resolve().name)
        # --detectors adds to every registered one, as it adds to a config's (it was ignored here)
        extra = _extra_detectors(detectors)
        preflight_detectors(extra)
        ids = [*DetectionConfig().detectors, *extra]
        result = run_dataset(dataset, out, detectors=ids, log=err_console.print)
    for r in result["rows"]:
        s = r.get("scores") or {}
        out_console.print(
            f"{r['detector']}\t{r['status']}\t{r['alerts']} alerts"
            + (f"\top_score {s['op_score']:.4g}" if "op_score" in s else ""),
            highlight=False,
        )
    if result["world_tables_absent"]:
        out_console.print(
            f"world tables absent: {', '.join(result['world_tables_absent'])}; detectors that read them saw them empty",
            highlight=False,
        )
    if not result["labels"]:
        out_console.print("no labels (truth/): alerts and top alerts written, nothing scored", highlight=False)
    out_console.print(f"results: {out / 'results.json'}\ntop alerts: {out / 'top-alerts.md'}", highlight=False)


@app.command("verify")
def verify_cmd(
    target: Annotated[Path, typer.Argument(help="a dataset directory (manifest.json) or a run directory (results.json)")],
    quick: Annotated[bool, typer.Option("--quick", help="compare sizes only (default: full SHA-256)")] = False,
) -> None:
    """Check a dataset's files against its manifest, or a run's alerts and datasets against results.json; exit 1 naming what differs."""
    from breachbench.verify import verify_dataset, verify_run
    from simulator import layout

    if not (target / "results.json").is_file() and not (target / layout.MANIFEST).is_file():
        _fail(f"{target}: neither a dataset (no {layout.MANIFEST}) nor a run (no results.json)")
        return
    with _progress(quiet=VERIFY_QUIET_S) as p:
        task = None

        def hashed(done: int, total: int) -> None:  # bytes, shown in MiB (a dataset's files may be many GiB)
            nonlocal task
            if task is None:
                task = p.add_task("verify sha256 (MiB)", total=round(total / 2**20, 1))
            p.update(task, completed=round(done / 2**20, 1), total=round(total / 2**20, 1))

        if (target / "results.json").is_file():
            kind, problems = "run", verify_run(target, full=not quick, progress=hashed)
        else:
            kind, problems = "dataset", verify_dataset(target, full=not quick, progress=hashed)
    from breachbench.runner import detector_text

    for p in problems:  # paths from the files: no markup, no escape sequences
        out_console.print(
            f"{escape(detector_text(p.path, 400))}\t{escape(detector_text(p.what, 400))}", highlight=False, soft_wrap=True
        )
    if problems:
        err_console.print(
            f"[bold red]{escape(f'{kind} {target} does not verify:')}[/bold red] {len(problems)} problem(s)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    what = "sizes" if quick else "sha256"
    if kind == "run":
        # the figures in results.json are not recomputed here: a red team edited a score and the run still verified
        out_console.print(
            f"{kind} {target} verifies ({what} of every alerts and dataset file against results.json; its figures are not "
            "recomputed: `breachbench run CONFIG --out RUN` scores the verified alerts again)",
            highlight=False,
        )
    else:
        out_console.print(f"{kind} {target} verifies ({what} of every file)", highlight=False)


@detectors_app.command("list")
def detectors_list() -> None:
    """List registered detectors (built-ins and plugins, entry point breachbench.detectors)."""
    from detectors.registry import registry

    for name, target in registry().items():
        out_console.print(f"{name}\t{target}", highlight=False)


@detectors_app.command("check")
def detectors_check(
    names: Annotated[list[str], typer.Argument(help="registered detector ids or module:Class ('all' for every registered one)")],
    timeout: Annotated[float, typer.Option("--timeout", help="seconds one run of the detector may take", min=1)] = 300.0,
    memory_mb: Annotated[
        int, typer.Option("--memory-mb", help="resident memory limit of the detector's processes", min=64)
    ] = 4096,
    plugin_path: PluginPathOpt = None,
) -> None:
    """Run the conformance checks (schema, direction, determinism, prefix, no_truth, pickle) on detectors.

    Every run of the detector is sealed, as in `breachbench run`: its own process, a view without
    truth, only its scratch folder writable, and the limits on its whole process tree.
    """
    from breachbench.runner import preflight_detectors
    from detectors.checks import check_detector
    from detectors.registry import DetectorLoadError, registry

    ids = sorted(registry()) if names == ["all"] else names
    try:
        _warn_startup_code()
        preflight_detectors(ids)
    except DetectorLoadError as exc:
        _fail(str(exc).removeprefix("detection.detectors: "))

    def results() -> Iterable[tuple[str, str, bool, str]]:
        for name in ids:
            for r in check_detector(name, raise_on_failure=False, sealed=True, timeout_s=timeout, memory_mb=memory_mb):
                yield name, r.check, r.passed, r.message

    _print_checks(results())


@scenarios_app.command("list")
def scenarios_list() -> None:
    """List registered scenarios with their knobs and a one-line summary."""
    from simulator.scenarios import load, registry

    for name in registry():
        try:
            cls = load(name)
        except Exception as exc:  # a broken plugin is listed, not fatal
            out_console.print(f"{name}\t[red]failed to load: {exc}[/red]")
            continue
        knobs = ", ".join(f"{k}={f.default!r}" for k, f in cls.Knobs.model_fields.items())
        easy = cls().declared_easy(cls.Knobs()) if hasattr(cls, "declared_easy") else None
        text = f"[bold]{name}[/bold]: {cls.summary}\n  knobs: {knobs}"
        if easy:
            text += f"\n  easy on purpose at these knobs: {easy}"
        out_console.print(text + "\n", highlight=False)


@scenarios_app.command("check")
def scenarios_check(
    ids: Annotated[list[str] | None, typer.Argument(help="scenario ids or module:attr (default: every registered one)")] = None,
    audit: Annotated[
        bool,
        typer.Option("--audit/--no-audit", help="also run the artefact audit on a small world (three incidents of the scenario)"),
    ] = True,
) -> None:
    """Run the conformance checks (interface, determinism, truth_complete, exposure, window, incidents, employment) and the artefact audit on scenarios."""
    from simulator.engine import make_executor
    from simulator.scenarios import registry
    from simulator.scenarios.checks import check_scenario

    def results(pool: Any) -> Iterator[tuple[str, str, bool, str]]:
        for name in ids or list(registry()):
            res = check_scenario(name, raise_on_failure=False, pool=pool)
            yield from ((name, r.check, r.passed, r.message) for r in res)
            if audit and all(r.passed for r in res if r.check in ("interface", "generate")):
                yield _check_audit(name)

    # one two-worker pool for every scenario's determinism check (not a pool started per scenario)
    with _user_errors(), make_executor(2) as pool:
        _print_checks(results(pool))


def _check_audit(name: str) -> tuple[str, str, bool, str]:
    """The artefact audit of one scenario on the small check world (three incidents, see ``check_audit``), as a check
    line."""
    from breachbench.artefacts import check_audit

    try:
        res = check_audit(name, progress=_say)
    except Exception as exc:  # a scenario that cannot be audited fails this check
        return name, "artefacts", False, f"audit failed: {type(exc).__name__}: {exc}"
    problems = res.problems
    for line in problems:
        out_console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False, emoji=False)
    msg = f"{len(problems)} undeclared difference(s); first: {problems[0]}" if problems else ""
    return name, "artefacts", not problems, msg


def _say(line: str) -> None:
    """A progress line on stderr (shown in logs too)."""
    err_console.print(line, highlight=False, soft_wrap=True, markup=False, emoji=False)


def _seeds(text: str) -> list[int]:
    """``1,2,3`` or ``1-3`` (or both, comma-separated)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())):
            _fail(f"--seeds {text!r}: expected non-negative integers like 1,2,3 or 1-3")
        out.extend(range(int(lo), int(hi) + 1) if dash else [int(lo)])
    if not out or len(set(out)) != len(out):
        _fail(f"--seeds {text!r}: expected distinct non-negative integers like 1,2,3 or 1-3")
    return out


@scenarios_app.command("audit")
def scenarios_audit(
    ids: Annotated[list[str] | None, typer.Argument(help="scenario ids or module:attr (default: every registered one)")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="seeds pooled per scenario: 1,2,3 or 1-3")] = "1-3",
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="knobs.<name>=v (scenario knob) or a world key, e.g. world.customers=50000 (repeatable; not secret)",
            callback=_no_secret,
        ),
    ] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="print every test, not only the differences")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the results as JSON to this file")] = None,
    workers: WorkersOpt = 1,
) -> None:
    """Artefact audit: generate each scenario on a 20,000-customer world per seed and compare its rows with comparable benign rows.

    Per stream, phase and column: values never seen in benign rows, distinct values per entity-day and token,
    distribution distances, single-feature AUCs, and an adversarial classifier with and without the declared
    signals' features. Exit 1 on an undeclared difference (each named with its figure), 2 on bad input.
    """
    import functools

    from breachbench.artefacts import AuditError, artefact_summary, audit_scenarios
    from simulator.scenarios import registry

    show = functools.partial(_show_audit, all_rows=all_rows)
    seed_list = _seeds(seeds)
    if json_out is not None and (json_out.is_dir() or not json_out.parent.is_dir()):
        # before the audit's minutes, not after them
        _fail(f"--json {json_out}: " + ("a folder; give a file name" if json_out.is_dir() else f"no folder {json_out.parent}"))
    with _user_errors():
        try:
            results = audit_scenarios(
                ids or list(registry()), seeds=seed_list, overrides=set_ or [], progress=_say, workers=workers, on_result=show
            )
        except AuditError as exc:
            _fail(str(exc))
    if json_out is not None:
        with _user_errors():
            json_out.write_text(json.dumps(artefact_summary(results), indent=2, default=str) + "\n")
    _print_checks(
        (f"{r.scenario} {r.knobs}", "artefacts", r.passed, f"{len(r.problems)} undeclared difference(s)" if r.problems else "")
        for r in results
    )


def _show_audit(res: Any, all_rows: bool) -> None:
    """One scenario's artefact audit as a table (every test with ``all_rows``, else the differences), its classifier lines and problems."""
    from rich.table import Table
    from rich.text import Text

    from breachbench.artefacts import classifier_lines, table

    t = Table(
        title=f"{res.scenario} {res.knobs} (seeds {', '.join(map(str, res.seeds))}; {res.seconds:.0f} s)",
        title_justify="left",
    )
    for c in ("stream", "phase", "unit", "column", "feature", "test", "attack", "benign", "threshold", "verdict"):
        t.add_column(c, justify="right" if c in ("attack", "benign", "threshold") else "left")
    for row in table(res, all_rows=all_rows):
        t.add_row(*(Text(c) for c in row), style="red" if row[-1] == "UNDECLARED" else None)
    out_console.print(t)
    for line in classifier_lines(res):
        out_console.print(f"  {line}", highlight=False, markup=False, emoji=False)
    for line in res.problems:
        out_console.print(f"  {line}", style="red", highlight=False, soft_wrap=True, markup=False, emoji=False)
    sys.stdout.flush()  # each scenario's table as soon as it is ready, also in a log


def _print_checks(results: Iterable[tuple[str, str, bool, str]]) -> None:
    """One line per (target, check, passed, message) as it comes; exit 1 when any failed."""
    failed = 0
    for name, check, passed, message in results:
        mark = "[green]ok[/green]" if passed else "[red]FAIL[/red]"
        out_console.print(f"{escape(name)}\t{check}\t{mark}\t{escape(message)}", highlight=False, emoji=False)
        failed += not passed
    if failed:
        err_console.print(f"[bold red]{failed} check(s) failed[/bold red]")
        raise typer.Exit(1)


def main() -> None:
    """The command line: a Ctrl-C in a command that says nothing of its own (``verify``, ``compare``, the lists)
    is one line too, where typer exits 130 in silence."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == 130 and not _INTERRUPT_SAID:
            err_console.print("[bold red]interrupted[/bold red] (SIGINT)", highlight=False)
        raise
