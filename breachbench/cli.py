"""The ``breachbench`` command line."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config key: dotted.key=value (repeatable)")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="worker processes for generation (output is identical for any count)")]


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn bad-input exceptions into one-line messages and exit status 2."""
    from breachbench.config import ConfigError
    from breachbench.dataset import DatasetError
    from detectors.contract import AlertsError
    from detectors.registry import DetectorLoadError
    from simulator.errors import SimulationError

    try:
        yield
    except (ConfigError, SimulationError, DatasetError, AlertsError, DetectorLoadError) as exc:
        _fail(str(exc))
    except FileNotFoundError as exc:
        _fail(f"{exc.filename or exc}: file not found")
    except KeyboardInterrupt:
        _fail("interrupted; no partial output was kept")


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """A rich progress display on a terminal; a no-op when output is not a terminal."""
    if not err_console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, transient=True,
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
    out: Annotated[Path, typer.Option("--out", help="dataset directory to create")],
    workers: WorkersOpt = 1,
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing non-empty --out")] = False,
    only: Annotated[str | None, typer.Option("--only", help="generate one part only: world")] = None,
    shard_size: Annotated[
        int | None, typer.Option("--shard-size", help="customers per unit of work, whole blocks (output is identical for any size)")
    ] = None,
) -> None:
    """Generate a dataset (world tables, logs, truth, manifest) from a config."""
    from breachbench.config import load_config
    from simulator.engine import generate as gen

    with _user_errors():
        cfg = load_config(config, set_)
        with _progress() as p:
            path = gen(cfg.sim(), out, workers=workers, force=force, only=only, shard_size=shard_size, progress=_gen_progress(p))
    out_console.print(f"dataset written to {path}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="TOML config, e.g. configs/default.toml")],
    out: Annotated[Path | None, typer.Option("--out", help="results directory (default: runs/<name>)")] = None,
    set_: SetOpt = None,
    workers: WorkersOpt = 2,
) -> None:
    """Run the suite: datasets, every configured detector, scores, reports.

    One dataset per test seed and scenario (reused when its manifest matches); each detector runs in its own
    process under detection.timeout_s and detection.memory_mb; metrics pooled over the grid with bootstrap
    confidence intervals. Writes results.json, leaderboard.md, report.html and alerts/ under --out.
    """
    from breachbench.config import load_config
    from breachbench.suite import run_suite

    with _user_errors():
        cfg = load_config(config, set_)
        out = out or Path("runs") / cfg.name
        with _progress() as p:
            result = run_suite(cfg, out, workers=workers, progress=p, gen_progress=_gen_progress(p), log=err_console.print)
    from breachbench.report import print_leaderboard

    print_leaderboard(result["rows"], cfg.name, out_console, json.loads(Path(result["results"]).read_text()))
    leak = result["leakage_audit"]
    if leak["leaking"]:
        out_console.print(f"[bold red]leakage audit:[/bold red] a one-line shortcut reaches {leak['line']:.0f}% of the oracle on "
                          f"{', '.join(leak['leaking'])}; read those results with that in mind (report.html)", highlight=False)
    else:
        out_console.print("leakage audit: no shortcut reaches the leak line on a scenario that is not declared easy"
                          + (f" (declared easy: {', '.join(leak['declared_easy'])})" if leak["declared_easy"] else ""), highlight=False)
    out_console.print(f"results: {result['results']}\nleaderboard: {result['leaderboard']}\nreport: {result['report']}", highlight=False)


@app.command()
def score(
    dataset: Annotated[Path, typer.Argument(help="dataset directory made by `breachbench generate`")],
    alerts: Annotated[Path, typer.Argument(help="Parquet file with columns bucket, entity_kind, entity_id, score [, reason]")],
    budget: Annotated[int, typer.Option("--budget", min=1, help="alert units read per bucket (k)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
    profile: Annotated[str, typer.Option("--profile", help="cost profile of op_score")] = "standard",
) -> None:
    """Score alerts computed anywhere against a dataset's truth."""
    import polars as pl

    from breachbench.dataset import Dataset, DatasetError
    from breachbench.scoring import Truth, cost_profiles, score_alerts
    from detectors.contract import AlertsError, validate_alerts

    with _user_errors():
        if profile not in cost_profiles()["profiles"]:
            raise DatasetError(f"--profile {profile!r}: unknown; accepted: {', '.join(cost_profiles()['profiles'])}")
        ds = Dataset.open(dataset)
        if not alerts.is_file():
            raise FileNotFoundError(2, "not found", str(alerts))
        try:
            frame = pl.read_parquet(alerts)
        except Exception as exc:  # not Parquet, truncated...
            raise AlertsError(f"{alerts}: cannot be read as Parquet: {exc}") from None
        frame = validate_alerts(frame, source=str(alerts))
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
    old: Annotated[Path, typer.Argument(help="results.json of the reference run")],
    new: Annotated[Path, typer.Argument(help="results.json of the run under test")],
    metric: Annotated[str, typer.Option("--metric", help="metric that gates the exit status")] = "op_score",
    tolerance: Annotated[float, typer.Option("--tolerance", min=0, help="allowed drop of --metric (absolute)")] = 0.0,
) -> None:
    """Per-metric deltas between two runs; exit 1 when --metric drops by more than --tolerance."""
    from rich.table import Table

    from breachbench.compare import CompareError, compare as do_compare, load_results

    try:
        rows, bad = do_compare(load_results(old), load_results(new), metric, tolerance)
    except CompareError as exc:
        _fail(str(exc))
    t = Table(title=f"{old} -> {new}")
    for c in ("detector", "metric", "old", "new", "delta", ""):
        t.add_column(c, justify="left" if c in ("detector", "metric") else "right")
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    for r in rows:
        t.add_row(r["detector"], r["metric"], fmt(r["old"]), fmt(r["new"]), fmt(r["delta"]), "REGRESSED" if r["regressed"] else "")
    out_console.print(t)
    if bad:
        err_console.print(f"[bold red]regression:[/bold red] {metric} dropped by more than {tolerance} for {', '.join(bad)}", highlight=False)
        raise typer.Exit(1)
    out_console.print(f"no regression of {metric} beyond {tolerance}", highlight=False)


@detectors_app.command("list")
def detectors_list() -> None:
    """List registered detectors (built-ins and plugins, entry point breachbench.detectors)."""
    from detectors.registry import registry

    for name, target in registry().items():
        out_console.print(f"{name}\t{target}", highlight=False)


@detectors_app.command("check")
def detectors_check(
    names: Annotated[list[str], typer.Argument(help="registered detector ids ('all' for every one)")],
) -> None:
    """Run the conformance checks (schema, direction, determinism, prefix, no_truth, pickle) on detectors."""
    from detectors.checks import check_detector
    from detectors.registry import registry

    reg = registry()
    ids = sorted(reg) if names == ["all"] else names
    unknown = [n for n in ids if n not in reg]
    if unknown:
        _fail(f"unknown detector {unknown[0]!r}; registered: {', '.join(reg)}")
    _print_checks((name, r.check, r.ok, r.message) for name in ids for r in check_detector(name, raise_on_failure=False))


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
) -> None:
    """Run the conformance checks (interface, determinism, truth_complete, exposure, window, incidents) on scenarios."""
    from simulator.scenarios import registry
    from simulator.scenarios.checks import check_scenario

    with _user_errors():
        _print_checks((name, r.check, r.passed, r.message) for name in ids or list(registry()) for r in check_scenario(name, raise_on_failure=False))


def _print_checks(results: Iterable[tuple[str, str, bool, str]]) -> None:
    """One line per (target, check, passed, message) as it comes; exit 1 when any failed."""
    failed = 0
    for name, check, passed, message in results:
        mark = "[green]ok[/green]" if passed else "[red]FAIL[/red]"
        out_console.print(f"{name}\t{check}\t{mark}\t{message}", highlight=False)
        failed += not passed
    if failed:
        err_console.print(f"[bold red]{failed} check(s) failed[/bold red]")
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app()
