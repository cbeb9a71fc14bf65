"""The ``aebench`` command line: thin, it parses, calls the library and prints.

Errors the user can fix (:class:`aebench.errors.AebenchError`) print as one
line on stderr and exit with status 2; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aebench import __version__

app = typer.Typer(
    name="aebench",
    help="Benchmark autoencoder families (AE, VAE, beta-VAE and plugins) against each other.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        print(f"aebench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and plugin details.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _state["verbose"] = verbose


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _plugins():
    from aebench.plugins import get_plugins

    return get_plugins()


@app.command("models")
def models_cmd(
    pattern: Annotated[
        str | None, typer.Argument(help="fnmatch glob ('*-cnn') or family name ('vae').")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List registered models: name, family, architecture, providing plugin."""
    registry = _plugins().models
    specs = registry.select(pattern) if pattern else registry.list()
    rows = [
        {
            "name": s.name,
            "family": s.family,
            "arch": s.arch,
            "plugin": s.plugin,
            "description": s.description,
            "config": s.config_cls().to_dict(),
        }
        for s in specs
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "family", "arch", "plugin", "description")
    for r in rows:
        table.add_row(r["name"], r["family"], r["arch"], r["plugin"], r["description"])
    out.print(table)


@app.command("datasets")
def datasets_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="Dataset root (default: $AEBENCH_DATA_DIR, then cache)."),
    ] = None,
) -> None:
    """List datasets: image shape, splits, classes, and whether files are present."""
    from aebench.datasets.base import data_root

    root = data_root(data_dir)
    rows = []
    for s in _plugins().datasets:
        rows.append(
            {
                "name": s.name + (":ARG" if s.takes_argument else ""),
                "shape": list(s.shape) if s.shape else None,
                "splits": list(s.splits),
                "num_classes": s.num_classes,
                "ready": s.is_ready(root) if not s.takes_argument else None,
                "files": list(s.files),
                "can_fetch": s.fetch is not None,
                "plugin": s.plugin,
                "description": s.description,
            }
        )
    if as_json:
        _print_json({"data_dir": str(root), "datasets": rows})
        return
    table = Table("name", "shape", "splits", "classes", "local", "plugin", "description")
    for r in rows:
        ready = {True: "ready", False: "missing", None: "-"}[r["ready"]]
        if not r["files"] and r["ready"]:
            ready = "built-in"
        shape = "x".join(map(str, r["shape"])) if r["shape"] else "any"
        table.add_row(
            r["name"],
            shape,
            ",".join(r["splits"]),
            str(r["num_classes"] or "-"),
            ready,
            r["plugin"],
            r["description"],
        )
    out.print(f"data dir: {root}")
    out.print(table)


@app.command("plugins")
def plugins_cmd(
    show_all: Annotated[bool, typer.Option("--all", help="Include built-in plugins.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed plugins, their version, hooks, and load errors."""
    infos = [i for i in _plugins().infos.values() if show_all or not i.builtin]
    if as_json:
        _print_json([i.to_dict() for i in infos])
        return
    if not infos:
        out.print("no third-party plugins installed (use --all to see the built-in ones)")
        return
    table = Table("name", "package", "version", "hooks", "status")
    for i in infos:
        status = f"[red]error: {i.error}[/red]" if i.error else "ok"
        table.add_row(i.name, i.package, i.version, ", ".join(i.hooks), status)
    out.print(table)
    if _state["verbose"]:
        for i in infos:
            if i.traceback:
                err.print(f"--- {i.name} ---\n{i.traceback}", markup=False, highlight=False)


def _load_plugin_commands() -> None:
    import contextlib
    import warnings

    # A broken plugin must never break the CLI itself; `aebench plugins` shows it.
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        _plugins().call_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from aebench.errors import AebenchError

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or "-v" in argv
    if not ({"--version", "--help", "-h"} & set(argv[:1])) and argv:
        _load_plugin_commands()
    try:
        app(args=argv, prog_name="aebench", standalone_mode=False)
    except AebenchError as exc:
        if verbose:
            traceback.print_exc()
        err.print(f"aebench: error: {exc}", markup=False, highlight=False)
        raise SystemExit(exc.exit_code) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        err.print("aebench: interrupted; finished runs are kept on disk", markup=False)
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if verbose:
            raise
        err.print(
            f"aebench: internal error: {type(exc).__name__}: {exc} (run with --verbose "
            "for the traceback)",
            markup=False,
            highlight=False,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
