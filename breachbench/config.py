"""Bench config: the generation config plus the detection run, loaded from TOML once.

``load_config(path, overrides)`` reads the file, applies ``--set dotted.key=value``
overrides, validates, and raises :class:`ConfigError` with a one-line message naming the file,
the field, the value and what is accepted.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from simulator.config import Frozen, SimConfig
from simulator.errors import BreachBenchError


class ConfigError(BreachBenchError, ValueError):
    """Bad config input; the message is meant for the user as is."""


class DetectionConfig(Frozen):
    """Which detectors run and how alerts are read."""

    budget: int = Field(10, gt=0, description="alert units an analyst reads per bucket (k)")
    detectors: list[str] = Field(
        default_factory=lambda: ["*"], description="registered detector ids to run; '*' runs every registered one"
    )
    cost_profile: str = Field("standard", description="cost profile of the headline operational score")
    isolate: bool = Field(True, description="run each detector in its own process with the limits below")
    timeout_s: float = Field(900.0, gt=0, description="wall-clock limit of one detector on one dataset (fit and score)")
    memory_mb: int = Field(4096, gt=0, description="resident memory limit of one detector's process")

    @field_validator("detectors")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one detector id, or '*' for all")
        from simulator.plugins import ID_RULE, safe_id

        bad = [d for d in v if d != "*" and not safe_id(d)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a detector id: {ID_RULE}")
        return v


class SuiteConfig(Frozen):
    """The grid a run covers and how its results are summarised."""

    seeds: list[int] = Field(default_factory=list, description="test seeds; empty means the top-level seed alone")
    tuning_seeds: list[int] = Field(
        default_factory=list, description="seeds whose datasets (with labels) detectors that have tune() may learn thresholds on"
    )
    budgets: list[int] = Field(default_factory=lambda: [1, 5, 10, 20], description="budgets k reported besides detection.budget")
    bootstrap: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples for confidence intervals")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="confidence level of the intervals")
    chance_draws: int = Field(
        1000, ge=200, le=100_000, description="simulated draws of the uniform ranking behind each chance line"
    )
    seal_seeds: bool = Field(
        True,
        description=(
            "mix a secret kept in OUT/secret (32 random bytes, made on the first run into OUT) into every dataset's seeds, "
            "so that a detector cannot generate the datasets and their truth again from the config; false: the seeds "
            "alone decide the datasets (anyone can generate them again; a run into another folder gives the same bytes)"
        ),
    )
    artefact_audit: bool = Field(
        False,
        description="also run the artefact audit (breachbench scenarios audit) on the test datasets into results.json; minutes per scenario",
    )

    @field_validator("seeds", "tuning_seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(x < 0 for x in v) or len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError(f"budgets must be positive integers, got {v}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _disjoint(self) -> SuiteConfig:
        both = sorted(set(self.seeds) & set(self.tuning_seeds))
        if both:
            raise ValueError(
                f"seeds {both} appear in both suite.seeds and suite.tuning_seeds; a seed may be a test or a tuning seed, not both"
            )
        return self


class ExecutionConfig(Frozen):
    """Where generation runs; never changes the bytes (not part of a dataset's config hash)."""

    executor: Literal["serial", "process", "dask"] = Field(
        "process",
        description="serial: this process; process: a local process pool of --workers; dask: a Dask cluster (pip install 'breachbench[dask]')",
    )
    scheduler: str | None = Field(
        None,
        min_length=1,
        description="address of an existing Dask scheduler (tcp://host:8786) to join; none: a LocalCluster of --workers processes",
    )

    @model_validator(mode="after")
    def _scheduler(self) -> ExecutionConfig:
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError(
                f'scheduler = {self.scheduler!r} joins a Dask cluster: set executor = "dask" too (got {self.executor!r})'
            )
        return self


class BenchConfig(SimConfig):
    """A whole benchmark run: what to generate and what to run on it."""

    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",  # never "." or "..": runs/.. was the current folder, written over
        description="name of the run (used for the default output dir)",
    )
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    suite: SuiteConfig = Field(default_factory=SuiteConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @property
    def test_seeds(self) -> list[int]:
        """The seeds results are reported on."""
        return list(self.suite.seeds) or [self.seed]

    def sim(self) -> SimConfig:
        """The generation part alone (what a dataset is cached by)."""
        return SimConfig(**{k: getattr(self, k) for k in SimConfig.model_fields})


def _parse_value(text: str) -> Any:
    """A TOML value if the text is one (numbers, booleans, dates, arrays), else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` to the raw config mapping (list items by index)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value, e.g. world.customers=5000")
    key, _, raw = assignment.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: empty key segment in {key!r}")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: index {part!r} out of range for a list of {len(node)}")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is a value, not a table")
    last = parts[-1]
    value = _parse_value(raw.strip())
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"--set {key}: index {last!r} out of range for a list of {len(node)}")
        node[int(last)] = value
    else:
        node[last] = value


def _describe(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key (value {err['input']!r}); check the spelling against configs/default.toml"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    msg = msg.removeprefix("Value error, ")
    if isinstance(err.get("input"), dict):  # a check across several keys of one table
        return f"{loc}: {msg}"
    return f"{loc} = {err['input']!r}: {msg}"


def validate(data: dict[str, Any], source: str = "config") -> BenchConfig:
    """Validate a raw mapping; raise :class:`ConfigError` naming the first bad field."""
    _strict_values(data, data, source, ())  # non-finite numbers first: clearer than the range message they would get
    try:
        cfg = BenchConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_describe(errors[0])}{more}") from None
    from simulator.errors import SimulationError
    from simulator.scenarios import load as load_scenario

    _strict_values(data, cfg.model_dump(), source, ())
    seen: dict[str, int] = {}
    for i, spec in enumerate(cfg.scenarios):
        try:
            cls = load_scenario(spec.id)
        except SimulationError as exc:
            raise ConfigError(f"{source}: scenarios.{i}.id = {spec.id!r}: {str(exc).split(': ', 1)[-1]}") from None
        try:
            knobs = cls.Knobs(**spec.knobs)
        except ValidationError as exc:
            err = exc.errors()[0]
            err = {**err, "loc": ("scenarios", i, "knobs", *err["loc"])}
            raise ConfigError(f"{source}: {_describe(err)}") from None
        _strict_values(spec.knobs, knobs.model_dump(), source, ("scenarios", i, "knobs"))
        name = spec.label or spec.id
        if name in seen:
            raise ConfigError(
                f"{source}: scenarios.{i}: label {name!r} repeats scenarios.{seen[name]} (their results would be pooled); "
                "give each entry a distinct label"
            )
        seen[name] = i
    return cfg


def _strict_values(raw: Any, validated: Any, source: str, path: tuple[Any, ...]) -> None:
    """Reject what validation would coerce silently: infinite or NaN numbers, booleans where numbers belong."""
    where = ".".join(map(str, path))
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ConfigError(f"{source}: {where} = {raw!r}: not a finite number; accepted: a finite number")
    if isinstance(raw, bool) and not isinstance(validated, bool) and validated is not None:
        raise ConfigError(f"{source}: {where} = {str(raw).lower()}: a boolean where a number or text is expected")
    if isinstance(raw, dict):
        for k, v in raw.items():
            _strict_values(v, validated.get(k) if isinstance(validated, dict) else None, source, (*path, k))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            _strict_values(
                v, validated[i] if isinstance(validated, list | tuple) and i < len(validated) else None, source, (*path, i)
            )


def load_config(path: str | Path, overrides: list[str] | None = None) -> BenchConfig:
    """Read a TOML config, apply ``--set`` overrides, validate."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); a config is a UTF-8 TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read: {exc.strerror}") from None
    except RecursionError:  # a red team's arrays 100,000 deep
        raise ConfigError(f"{p}: nested too deeply to be a config") from None
    if not data:
        raise ConfigError(f"{p}: the config is empty; start from configs/tiny.toml")
    for assignment in overrides or []:
        apply_override(data, assignment)
    data.setdefault("name", p.stem)
    return validate(data, str(p))
