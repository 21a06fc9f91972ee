"""Detectors that misbehave on the second dataset a process scores (for the warm slot's tests).

The count lives in the module, so it is per process: a fresh process after a dataset that
killed the previous one starts again at 1 and behaves. Imported as ``warm_detectors:Name``.
"""

from __future__ import annotations

import os
import time

import polars as pl

from detectors.builtin import UnissuedTokenRule

_fits = 0


class _SecondFails(UnissuedTokenRule):
    mode = "raise"

    def fit(self, view: object) -> _SecondFails:
        global _fits
        _fits += 1
        self.nth_ = _fits
        return super().fit(view)

    def score(self, view) -> pl.DataFrame:
        if self.nth_ == 2:
            if self.mode == "raise":
                raise RuntimeError("second dataset")
            if self.mode == "exit":
                os._exit(3)
            if self.mode == "sleep":
                time.sleep(600)
            if self.mode == "hog":
                hold = [bytearray(64 * 2**20) for _ in range(64)]  # 4 GiB, touched
                for b in hold:
                    b[::4096] = b"x" * len(b[::4096])
            if self.mode == "schema":
                return pl.DataFrame({"bucket": [view.bucket]})
        return super().score(view)


class SecondRaises(_SecondFails):
    mode = "raise"


class SecondExits(_SecondFails):
    mode = "exit"


class SecondSleeps(_SecondFails):
    mode = "sleep"


class SecondHogs(_SecondFails):
    mode = "hog"


class SecondWrongSchema(_SecondFails):
    mode = "schema"


def _pipes() -> list[int]:
    """The descriptors of every pipe this process holds (in a slot: its wake pipes)."""
    import stat

    out = []
    for fd in range(3, 1024):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                out.append(fd)
        except OSError:
            continue
    return out


class ClosesPipes(UnissuedTokenRule):
    """Closes every pipe its process holds in its fit (the slot's wake pipes), then scores as the base rule."""

    def fit(self, view: object) -> ClosesPipes:
        for fd in _pipes():
            os.close(fd)
        return self


class FloodsPipes(UnissuedTokenRule):
    """Fills every pipe its process holds, without end and a pipe's worth at a time, from a thread started in fit; then
    hangs in score."""

    def fit(self, view: object) -> FloodsPipes:
        import threading

        fds = _pipes()

        def flood() -> None:
            while True:
                for fd in fds:
                    try:
                        os.write(fd, b"x" * 65536)
                    except OSError:
                        pass

        threading.Thread(target=flood, daemon=True).start()
        return self

    def score(self, view: object) -> pl.DataFrame:
        time.sleep(120)
        return super().score(view)


class WritesIntoAnEarlierFolder(UnissuedTokenRule):
    """Dies on the first dataset of its slot; the process the bench starts for the others writes into that first
    dataset's work folder, which the bench no longer measures, and fails saying so when it could (a red team's wrote
    1.5 GiB there past an 800 MiB scratch limit). Where it cannot, it scores like the unissued-token rule."""

    def fit(self, view: object) -> WritesIntoAnEarlierFolder:
        here = os.getcwd()  # <slot>/d<i>/work
        i = int(os.path.basename(os.path.dirname(here))[1:])
        if i == 0:
            os._exit(3)
        earlier = os.path.join(os.path.dirname(os.path.dirname(here)), "d0", "work", "spill.bin")
        try:
            with open(earlier, "wb") as f:
                f.write(b"x" * 4096)
        except OSError:
            return super().fit(view)
        raise RuntimeError(f"wrote into {earlier}")
