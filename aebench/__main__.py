"""``python -m aebench`` and the ``aebench`` command.

The entry point is here, not in :mod:`aebench.cli`, so that Ctrl-C while the CLI's
own imports run (typer, rich: the first half second) ends like Ctrl-C anywhere
else, in one line and exit status 130, instead of a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: :func:`aebench.cli.main`."""
    try:
        from aebench.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("aebench: interrupted\n")
        raise SystemExit(130) from None
    cli_main(argv)


if __name__ == "__main__":
    main()
