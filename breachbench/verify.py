"""Check datasets and runs against what the bench recorded when it wrote them.

A dataset's ``manifest.json`` lists every world, log and truth file with its size, row count and
SHA-256, and the config it was made from with that config's hash. :func:`verify_dataset` finds
files that are missing, of another size or (``full``) other bytes, files under ``world/``,
``logs/`` or ``truth/`` that the manifest does not list, and a config that no longer matches its
hash (an edited ``warmup_days`` or time zone). A run's ``results.json`` records the hash of every
alerts file it scored; :func:`verify_run` checks those and every dataset the run used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simulator import layout
from simulator.errors import BreachBenchError

#: Folders of a dataset whose every file must be in the manifest.
DATA_DIRS = ("world", "logs", "truth")
DATASET_FORMAT = "breachbench-dataset"


class VerifyError(BreachBenchError, ValueError):
    """A dataset or run whose files do not match what the bench recorded; the message names them."""


@dataclass(frozen=True)
class Problem:
    """One file (or the manifest) that does not match its record."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


#: What :func:`_sha256` gives for a path that is no regular file: never a digest, so it matches no record.
NOT_A_FILE = "not a regular file"


#: ``progress(bytes hashed so far, bytes to hash)``: called as :func:`verify_dataset` and :func:`verify_run` hash.
Progress = Callable[[int, int], None]
CHUNK = 1 << 20


def _sha256(path: Path, *, follow: bool = True, read: Callable[[int], None] | None = None) -> str:
    """SHA-256 of a regular file (``follow``: through a link), else :data:`NOT_A_FILE`: a pipe, a device or a link was
    read for ever (a red team's alerts "file" linked to /dev/zero, another was a FIFO: ``verify`` hung). ``read`` is
    called with the size of each chunk read (a dataset's file may be large: the caller shows progress)."""
    import os
    import stat

    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError:
        if not follow and os.path.islink(path):
            return NOT_A_FILE
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return NOT_A_FILE
        h, buf = hashlib.sha256(), bytearray(CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
            if read is not None:
                read(n)
        return h.hexdigest()


class _Meter:
    """Bytes hashed against the bytes to hash, passed on to a :data:`Progress` callback."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        if progress is not None:
            progress(0, total)

    def read(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def read_manifest(root: Path) -> dict | None:
    """The parsed manifest of a dataset written by this tool, or None."""
    try:
        m = json.loads((Path(root) / layout.MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    # a generated dataset, or one built by `breachbench import` (its manifest says what it imported)
    return m if isinstance(m, dict) and (m.get("format") == DATASET_FORMAT or isinstance(m.get("imported"), dict)) else None


def verify_dataset(root: str | Path, *, full: bool = False, progress: Progress | None = None) -> list[Problem]:
    """Every way ``root`` differs from its manifest (empty when it verifies).

    Args:
        root: dataset directory.
        full: compare SHA-256 of every file (else sizes only, which is cheap).
        progress: called with (bytes hashed, bytes to hash) as ``full`` reads the files.
    """
    from pydantic import ValidationError

    from simulator.config import SimConfig
    from simulator.engine import DATA_VERSION, config_hash

    root = Path(root)
    m = read_manifest(root)
    if m is None:
        return [Problem(layout.MANIFEST, f"missing, unreadable or not a {DATASET_FORMAT} manifest")]
    from breachbench.dataset import DatasetError, check_manifest

    problems: list[Problem] = []
    try:
        check_manifest(m, str(root))  # the parts every command reads (an import's too)
    except DatasetError as exc:
        problems.append(Problem(layout.MANIFEST, str(exc).split(f"{layout.MANIFEST}: ", 1)[-1]))
    imported = isinstance(m.get("imported"), dict)  # no generation config to hash; its files are checked below
    made_by = m.get("data_version")
    if imported:
        pass
    elif made_by != DATA_VERSION:
        # the config hash covers the data version (and the config's fields may have changed since): not checkable here
        problems.append(
            Problem(
                layout.MANIFEST,
                f"made by data version {made_by!r}; this BreachBench generates version {DATA_VERSION!r}, "
                "so its config hash cannot be checked and its data may differ from what this version makes",
            )
        )
    else:
        try:
            if config_hash(SimConfig.model_validate(m["config"])) != m.get("config_hash"):
                problems.append(Problem(layout.MANIFEST, "config does not match its config_hash (edited after generation)"))
        except (ValidationError, KeyError, TypeError) as exc:
            problems.append(Problem(layout.MANIFEST, f"config is not valid ({type(exc).__name__})"))
    listed: dict[str, dict] = {}
    truth = m.get("truth", [])
    for entry in [*m.get("files", []), *(truth if isinstance(truth, list) else [])]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            problems.append(Problem(layout.MANIFEST, f"malformed file entry {entry!r:.80}"))
            continue
        listed[entry["path"]] = entry
    sized = []  # the listed regular files of the size recorded: the ones to hash
    for rel, entry in sorted(listed.items()):
        p = root / rel
        if not p.is_file():  # a pipe or a device (also through a link) is no file either
            problems.append(Problem(rel, "missing"))
        elif p.stat().st_size != entry.get("bytes"):
            problems.append(Problem(rel, f"{p.stat().st_size} bytes, manifest says {entry.get('bytes')}"))
        else:
            sized.append((rel, p, entry))
    if full:
        meter = _Meter(progress, sum(int(e["bytes"]) for _, _, e in sized))
        for rel, p, entry in sized:
            if _sha256(p, read=meter.read) != entry.get("sha256"):
                problems.append(Problem(rel, "sha256 differs from the manifest"))
    for d in DATA_DIRS if not imported else ():  # an import lists its logs, not its optional world and labels
        if (root / d).is_dir():
            for p in sorted((root / d).rglob("*")):
                rel = p.relative_to(root).as_posix()
                if (p.is_file() or p.is_symlink()) and rel not in listed:
                    problems.append(Problem(rel, "not in the manifest"))
    return problems


def check_dataset(root: str | Path, *, full: bool = False) -> None:
    """Raise :class:`VerifyError` naming the files when ``root`` does not verify."""
    problems = verify_dataset(root, full=full)
    if problems:
        shown = "; ".join(map(str, problems[:5])) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise VerifyError(
            f"{root}: dataset does not match its manifest ({len(problems)} problem(s)): {shown}; "
            "regenerate it (`breachbench generate --force`)"
        )


def alerts_hashes(out: Path) -> dict[str, str]:
    """Relative path -> sha256 of every alerts file of a run (:data:`NOT_A_FILE` for a link, a pipe or a device: a run
    writes none)."""
    base = Path(out) / "alerts"
    if not base.is_dir():
        return {}
    return {p.relative_to(out).as_posix(): _sha256(p, follow=False) for p in sorted(base.rglob("*.parquet"))}


def verify_run(out: str | Path, *, full: bool = False, progress: Progress | None = None) -> list[Problem]:
    """Every way a run directory differs from its ``results.json`` (alerts files and datasets); ``progress`` as in
    :func:`verify_dataset`, once per dataset."""
    out = Path(out)
    try:
        res = json.loads((out / "results.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return [Problem("results.json", "missing or unreadable")]
    datasets = res.get("datasets", []) if isinstance(res, dict) else None
    recorded = res.get("alerts") if isinstance(res, dict) else None
    if (
        not isinstance(datasets, list)
        or not all(isinstance(d, dict) for d in datasets)
        or not isinstance(recorded, dict | None)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in (recorded or {}).items())
    ):
        return [Problem("results.json", "not a run's results (datasets must be a list of objects, alerts an object of hashes)")]
    problems: list[Problem] = []
    if isinstance(recorded, dict):
        have = alerts_hashes(out)
        for rel, digest in sorted(recorded.items()):
            if rel not in have:
                problems.append(Problem(rel, "missing"))
            elif have[rel] == NOT_A_FILE:
                problems.append(Problem(rel, "not a regular file (a link, a pipe or a device)"))
            elif have[rel] != digest:
                problems.append(Problem(rel, "sha256 differs from results.json"))
        problems.extend(Problem(rel, "not in results.json") for rel in sorted(set(have) - set(recorded)))
    for d in datasets:
        label = str(d.get("label", ""))
        cands = [Path(str(d.get("path", ""))), out / "datasets" / label, out / "dataset"]
        path = next((c for c in cands if (c / layout.MANIFEST).is_file()), cands[0])
        problems.extend(Problem(f"{d.get('label')}/{p.path}", p.what) for p in verify_dataset(path, full=full, progress=progress))
        m = read_manifest(path)
        if m is not None and "config_hash" in d and m.get("config_hash") != d["config_hash"]:
            problems.append(
                Problem(f"{d.get('label')}/{layout.MANIFEST}", "config_hash differs from results.json (generated again)")
            )
    return problems
