"""``python -m breachbench`` and the ``breachbench`` command (:func:`main`).

The command line's modules load inside :func:`main`, so that a Ctrl-C while they load is one line,
not a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point: :func:`breachbench.cli.main`, loaded here."""
    try:
        from breachbench.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted (SIGINT) while starting: nothing was written\n")
        raise SystemExit(130) from None
    cli_main()


if __name__ == "__main__":
    main()
