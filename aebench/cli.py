"""The ``aebench`` command line: thin, it parses, calls the library and prints.

Errors the user can fix (:class:`aebench.errors.AebenchError`) print as one
line on stderr and exit with status 2; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
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
            ready = "no files needed"
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


def _run_help() -> str:
    from aebench.plan import PROFILES

    rows = "; ".join(
        f"{name}: {p['epochs']} epochs, {p['fid_samples']} FID samples, NLL k={p['nll_k']} "
        f"on {p['nll_samples']} images, train limit {p['limit'] or 'none'}"
        for name, p in PROFILES.items()
    )
    return (
        "Train and evaluate every (model, dataset) pair; store runs; build the leaderboard.\n\n"
        f"Profiles ({rows}). quick is the default. Explicit options override the profile "
        "and the suite file. Rerunning skips finished runs (same settings); --force redoes them."
    )


@app.command("run", help=_run_help())
def run_cmd(
    models: Annotated[
        str | None,
        typer.Option(
            help="Models: names, families or globs, comma-separated ('vae,ae-cnn', '*-mlp')."
        ),
    ] = None,
    datasets: Annotated[
        str | None, typer.Option(help="Datasets, comma-separated ('mnist,digits', 'folder:PATH').")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (profile default).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size [default: 128].")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate [default: 1e-3].")] = None,
    latent_dims: Annotated[
        str | None, typer.Option(help="Latent sizes, a grid axis ('2,16') [default: 16].")
    ] = None,
    betas: Annotated[
        str | None, typer.Option(help="β values for families with a β ('0.5,4') [default: 4].")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds, a grid axis ('0,1,2') [default: 0].")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N training images.")] = None,
    likelihood: Annotated[
        str | None,
        typer.Option(help="Reconstruction likelihood: bernoulli (BCE) or gaussian (MSE)."),
    ] = None,
    hidden_dims: Annotated[
        str | None, typer.Option(help="Hidden sizes ('512,256' for MLP; '32,64,1024' for CNN).")
    ] = None,
    val_size: Annotated[
        float | None,
        typer.Option(help="Validation split carved from train: fraction or count [default: 0.1]."),
    ] = None,
    dataset_options: Annotated[
        str | None,
        typer.Option(
            help="Loader options for the datasets, KEY=VALUE pairs ('size=32,channels=3' "
            "for folder:PATH)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    data_dir: Annotated[
        str | None,
        typer.Option(help="Dataset root [default: $AEBENCH_DATA_DIR, then ~/.cache/aebench/data]."),
    ] = None,
    out: Annotated[
        str, typer.Option(help="Output directory for runs, results and the site.")
    ] = "aebench-out",
    profile: Annotated[
        str | None, typer.Option(help="smoke, quick or full (epoch and sample budgets).")
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(help="A suite TOML file defining the whole grid (see benchmarks/suites/)."),
    ] = None,
    fid_extractor: Annotated[
        str | None, typer.Option(help="auto, inception-v3-compat or classifier (offline).")
    ] = None,
    fid_samples: Annotated[
        int | None, typer.Option(help="Samples for FID (profile default).")
    ] = None,
    no_fid: Annotated[bool, typer.Option("--no-fid", help="Skip FID.")] = False,
    nll_k: Annotated[
        int | None, typer.Option(help="Importance samples for the NLL (IWAE) estimate.")
    ] = None,
    nll_samples: Annotated[
        int | None, typer.Option(help="Test images for the NLL estimate (0: skip).")
    ] = None,
    probe_samples: Annotated[
        int | None, typer.Option(help="Train/test latents for the linear probe (0: skip).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo runs that already finished.")
    ] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Do not build the HTML leaderboard.")
    ] = False,
) -> None:
    from aebench.plan import Options, load_suite, parse_list, parse_options, plan
    from aebench.runner import RunProgress, run_benchmark

    cli_options = Options(
        models=parse_list("--models", models),
        datasets=parse_list("--datasets", datasets),
        latent_dims=parse_list("--latent-dims", latent_dims, int),
        betas=parse_list("--betas", betas, float),
        seeds=parse_list("--seeds", seeds, int),
        hidden_dims=parse_list("--hidden-dims", hidden_dims, int),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        limit=limit,
        likelihood=likelihood,
        val_size=val_size,
        fid_extractor=fid_extractor,
        fid_samples=0 if no_fid else fid_samples,
        nll_k=nll_k,
        nll_samples=nll_samples,
        probe_samples=probe_samples,
        dataset_options=parse_options("--dataset-options", dataset_options),
        profile=profile,
    )
    grids = [cli_options]
    if suite:
        meta, suite_grids = load_suite(suite)
        grids = [g.merged(cli_options) for g in suite_grids]
        if meta.get("name"):
            err.print(
                f"suite {meta['name']}: {meta.get('description', '')}".strip(),
                markup=False,
                highlight=False,
            )
    runs = plan(grids, device=device)
    progress = RunProgress(console=err)
    summary = run_benchmark(
        runs, out, data_dir=data_dir, force=force, report=not no_report, progress=progress
    )
    done, skipped, failed = summary.count("done"), summary.count("skipped"), summary.failed
    err.print(
        f"{done} run(s) done, {skipped} skipped, {len(failed)} failed; results: "
        f"{Path(out) / 'results.csv'}",
        markup=False,
        highlight=False,
    )
    if summary.site:
        err.print(f"leaderboard: {summary.site}", markup=False, highlight=False)
    if summary.report_error:
        err.print(
            f"aebench: warning: the leaderboard was not built ({summary.report_error}); "
            f"retry with `aebench report {out}`",
            markup=False,
            highlight=False,
        )
    if failed:
        for o in failed:
            err.print(f"  failed: {o.run.label}: {o.reason}", markup=False, highlight=False)
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    run_dir: Annotated[
        str, typer.Argument(help="A benchmark output directory (the --out of `aebench run`).")
    ],
    out: Annotated[
        str | None, typer.Option("--out", help="Where to write the site [default: RUN_DIR/site].")
    ] = None,
) -> None:
    """Rebuild the HTML leaderboard from stored runs, without retraining."""
    from aebench import results
    from aebench.report import report_command

    if (Path(run_dir) / "runs").is_dir():
        results.write(run_dir)  # the table too, so it matches the site
    print(report_command(Path(run_dir), Path(out) if out else None))


@app.command("generate")
def generate_cmd(
    run_dir: Annotated[str, typer.Argument(help="One run directory (OUT/runs/<run_id>).")],
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 64,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[
        str | None, typer.Option("--out", help="PNG file [default: RUN_DIR/images/generated.png].")
    ] = None,
) -> None:
    """Write samples from a trained run's prior to a PNG grid (no retraining)."""
    from aebench.runner import load_run

    if n < 1:
        from aebench.errors import ConfigError

        raise ConfigError(f"--n must be > 0, got {n}")
    import torch

    from aebench.images import save_grid

    model = load_run(Path(run_dir))
    with torch.no_grad():
        images = model.sample(n, generator=torch.Generator().manual_seed(seed))
    target = Path(out) if out else Path(run_dir) / "images" / "generated.png"
    save_grid(images, target, nrow=max(1, int(n**0.5)))
    print(target)


@app.command("fetch")
def fetch_cmd(
    dataset: Annotated[
        str, typer.Argument(help="Dataset to download (mnist, fashion-mnist, svhn).")
    ],
    data_dir: Annotated[
        str | None, typer.Option(help="Dataset root [default: $AEBENCH_DATA_DIR, then cache].")
    ] = None,
) -> None:
    """Download a dataset's files (with a progress bar) into the data root."""
    from aebench.datasets.fetching import fetch_dataset

    print(fetch_dataset(dataset, data_dir))


def _load_plugins(argv: list[str]) -> None:
    """Load plugins (and their commands); warn in one line per broken plugin."""
    import contextlib
    import warnings

    # A broken plugin must never break the CLI itself; `aebench plugins` details it.
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        plugins = _plugins()
        plugins.call_commands(app)
        if argv[:1] != ["plugins"]:
            for info in plugins.infos.values():
                if info.error:
                    err.print(
                        f"aebench: warning: plugin {info.name!r} ({info.label}) is disabled: "
                        f"{info.error} (see `aebench plugins`)",
                        markup=False,
                        highlight=False,
                    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from aebench.errors import AebenchError

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or "-v" in argv
    if argv and argv[0] not in ("--version", "--help", "-h"):
        _load_plugins([a for a in argv if a not in ("-v", "--verbose")])
    try:
        # Outside standalone mode, typer returns the exit code of typer.Exit and
        # of an interrupt (130) instead of raising.
        code = app(args=argv, prog_name="aebench", standalone_mode=False)
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            raise SystemExit(code)
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
    except Exception as exc:
        # Usage errors (bad option, missing argument): click's ClickException, or
        # typer's own vendored copy in typer >= 0.2x. Both carry show()/exit_code.
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
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
