"""Datasets at fsspec URLs (``memory://``, ``s3://``, ``gs://``...), with the local guarantee: a manifest written last.

A plain path, or a ``file://`` URL (turned into one by :func:`locate`), takes the local fast path of
:mod:`simulator.engine` and :mod:`simulator.outdir`: a lock, a temporary directory renamed into place.
Any other URL is a :class:`Store`:

* writing (:meth:`Store.publish`): the dataset is generated into a local temporary directory exactly as
  for a path (same bytes), then every file but ``manifest.json`` is uploaded with ``fs.put``, then the
  manifest, last. A dataset at a URL is complete exactly when its manifest is there. A failure or an
  interrupt removes what was uploaded under the URL.
* replacing (:meth:`Store.check_replace`): as :func:`simulator.outdir.check_replace`: an absent or empty
  prefix is written; anything else only with ``force`` and only when it holds a manifest of ours. Object
  stores have no atomic rename, so the old dataset is removed (its manifest first) before the upload.
* reading (:meth:`Store.scan_parquet`, :meth:`Store.read_parquet`): files named in the manifest are read
  whole through fsspec (no predicate pushdown to the store).

There is no lock at a URL: one writer per URL is the caller's business. Credentials and endpoints come
from the fsspec backend's usual configuration (environment, config files) or ``storage_options``.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from simulator import layout
from simulator.errors import SimulationError
from simulator.outdir import DATASET_FORMAT


class StorageError(SimulationError):
    """A URL whose storage cannot be used (unknown scheme, backend package missing) or written."""


def is_url(where: str | Path) -> bool:
    """Whether ``where`` is a URL (``scheme://...``) rather than a plain path."""
    return isinstance(where, str) and "://" in where


def locate(where: str | Path) -> Path | str:
    """A local :class:`~pathlib.Path` for a plain path or a ``file://`` URL; any other URL unchanged (no trailing ``/``)."""
    if not is_url(where):
        return Path(where)
    assert isinstance(where, str)
    scheme = where.split("://", 1)[0].lower()
    if scheme in ("file", "local"):
        from fsspec.implementations.local import LocalFileSystem

        return Path(LocalFileSystem._strip_protocol(where))
    return where.rstrip("/")


@dataclass(frozen=True)
class Store:
    """A dataset location at an fsspec URL: ``url`` as given, ``fs`` its file system, ``root`` the path in ``fs``."""

    url: str
    fs: Any
    root: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, url: str, storage_options: dict[str, Any] | None = None, what: str = "--out") -> Store:
        """The store of ``url``.

        Raises:
            StorageError: fsspec is missing, the scheme is unknown, or its backend package is not installed.
        """
        url = url.rstrip("/")
        scheme = url.split("://", 1)[0]
        try:
            import fsspec
            from fsspec.registry import known_implementations
        except ImportError:
            raise StorageError(f"{what}: {url}: URLs need fsspec; pip install fsspec") from None
        try:
            fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except ValueError as exc:
            raise StorageError(
                f"{what}: {url}: unknown storage scheme {scheme!r} ({exc}); give a local path or a URL fsspec knows (s3://, gs://, memory://...)"
            ) from None
        except ImportError as exc:
            hint = known_implementations.get(scheme, {}).get("err") or str(exc)
            raise StorageError(f"{what}: {url}: the {scheme}:// backend is not installed ({hint})") from None
        return cls(url, fs, root.rstrip("/"), dict(storage_options or {}))

    def path(self, rel: str) -> str:
        """The path in :attr:`fs` of ``rel`` (a manifest ``path``) under the dataset."""
        return posixpath.join(self.root, rel)

    def manifest(self) -> dict[str, Any] | None:
        """The parsed manifest, or None when there is none (an incomplete dataset, or none at all) or it is not JSON."""
        try:
            m = json.loads(self.fs.cat_file(self.path(layout.MANIFEST)))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        return m if isinstance(m, dict) else None

    def is_ours(self) -> bool:
        """Whether the URL holds a manifest of a dataset this tool wrote."""
        m = self.manifest()
        return m is not None and m.get("format") == DATASET_FORMAT

    def _occupied(self) -> bool:
        try:
            return bool(self.fs.ls(self.root, detail=False))
        except (FileNotFoundError, NotADirectoryError):
            return self.fs.exists(self.root)

    def check_replace(self, force: bool, what: str = "--out") -> None:
        """Refuse to write over the URL unless it is absent, empty, or (with ``force``) a dataset of ours.

        Raises:
            StorageError: with the reason in one line.
        """
        if self.fs.isfile(self.root):
            raise StorageError(f"{what}: {self.url} exists and is a file, not a dataset prefix")
        if not self._occupied():
            return
        if not force:
            raise StorageError(f"{what}: {self.url} exists and is not empty; pass --force to replace it")
        if not self.is_ours():
            raise StorageError(
                f"{what}: {self.url} is not a dataset written by breachbench (no {DATASET_FORMAT} manifest.json); "
                "--force replaces only datasets this tool wrote: remove it yourself or choose another URL"
            )

    def remove(self) -> None:
        """Remove everything under the URL, the manifest first (so that the dataset stops being complete at once)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(layout.MANIFEST))
        with contextlib.suppress(FileNotFoundError):
            if self._occupied():
                self.fs.rm(self.root, recursive=True)

    def publish(self, local: Path, force: bool = False, what: str = "--out") -> None:
        """Upload the complete dataset in directory ``local``: every file but the manifest, then the manifest.

        An existing dataset of ours is removed first (``force``); on any failure or interrupt what was
        uploaded is removed again, so the URL never holds a manifest without every file it lists.

        Raises:
            StorageError: see :meth:`check_replace`.
        """
        self.check_replace(force, what)
        files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
        if layout.MANIFEST not in files:
            raise StorageError(f"{what}: {local} holds no {layout.MANIFEST}; nothing was uploaded to {self.url}")
        body = [f for f in files if f != layout.MANIFEST]
        self.remove()
        try:
            self.fs.put([str(local / f) for f in body], [self.path(f) for f in body])
            self.fs.pipe_file(self.path(layout.MANIFEST), (local / layout.MANIFEST).read_bytes())
        except BaseException:
            with contextlib.suppress(Exception):
                self.remove()
            raise

    def _bytes(self, rels: list[str]) -> list[bytes]:
        return [bytes(self.fs.cat_file(self.path(r))) for r in rels]

    def scan_parquet(self, rels: list[str]) -> pl.LazyFrame:
        """The parquet files ``rels`` (manifest paths), read whole through fsspec, as one lazy frame."""
        return pl.scan_parquet(self._bytes(rels))

    def read_parquet(self, rel: str) -> pl.DataFrame:
        """One parquet file (a manifest path), read through fsspec."""
        return pl.read_parquet(self._bytes([rel])[0])
