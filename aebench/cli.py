"""The ``aebench`` command line: thin, it parses, calls the library and prints.

Errors the user can fix (:class:`aebench.errors.AebenchError`) print as one
line on stderr and exit with status 2; ``--verbose`` adds the traceback.

aebench's own modules are imported inside the commands, not at the top: most of
them import torch (seconds), which ``aebench --help`` and ``--version`` must not
wait for. This is the only module that defers imports of aebench modules
(``tests/test_layers.py`` checks it).
"""

from __future__ import annotations

import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aebench._version import __version__

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


def _model_options(spec: Any) -> list[dict[str, Any]]:
    """The options (config fields) of a model: name, type, default, help."""
    from aebench.options import config_options

    return [
        {k: v for k, v in o.describe().items() if k != "choices"}
        for o in config_options(spec.config_cls)
    ]


@app.command("models")
def models_cmd(
    pattern: Annotated[
        str | None, typer.Argument(help="fnmatch glob ('*-cnn') or family name ('vae').")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    show_options: Annotated[
        bool, typer.Option("--options", help="List every option (config field) of each model.")
    ] = False,
) -> None:
    """List registered models: name, family, architecture, options, providing plugin."""
    from aebench.models.base import ModelConfig

    registry = _plugins().models
    specs = registry.select(pattern) if pattern else registry.list()
    shared = set(ModelConfig.option_names())
    rows = [
        {
            "name": s.name,
            "family": s.family,
            "arch": s.arch,
            "plugin": s.plugin,
            "description": s.description,
            "config": s.config_cls().to_dict(),
            "options": _model_options(s),
        }
        for s in specs
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "family", "arch", "own options", "plugin", "description")
    table.columns[0].no_wrap = True
    for r in rows:
        own = ", ".join(
            f"{o['name']}={o['default']}" for o in r["options"] if o["name"] not in shared
        )
        table.add_row(r["name"], r["family"], r["arch"], own or "-", r["plugin"], r["description"])
    out.print(table)
    if show_options:
        for r in rows:
            options = Table("option", "type", "default", "help", title=r["name"])
            for o in r["options"]:
                options.add_row(o["name"], o["type"], json.dumps(o["default"]), o["help"])
            out.print(options)
    else:
        out.print(
            f"Every model also takes: {', '.join(ModelConfig.option_names())}. Set or sweep any "
            "option with `aebench run -o NAME=V1,V2`; `aebench models NAME --options` lists them."
        )


@app.command("datasets")
def datasets_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="Dataset root (default: $AEBENCH_DATA_DIR, then cache)."),
    ] = None,
) -> None:
    """List datasets: image shape, splits, classes, options, and whether files are present."""
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
                "options": [o.describe() for o in s.options],
                "plugin": s.plugin,
                "description": s.description,
            }
        )
    if as_json:
        _print_json({"data_dir": str(root), "datasets": rows})
        return
    table = Table("name", "shape", "splits", "classes", "local", "options", "plugin", "description")
    table.columns[0].no_wrap = True  # names are what users type: never broken
    for r in rows:
        ready = {True: "ready", False: "missing", None: "-"}[r["ready"]]
        if not r["files"] and r["ready"]:
            ready = "no files needed"
        shape = "x".join(map(str, r["shape"])) if r["shape"] else "any"
        options = ", ".join(o["name"] for o in r["options"]) or "-"
        table.add_row(
            r["name"],
            shape,
            ",".join(r["splits"]),
            str(r["num_classes"] or "-"),
            ready,
            options,
            r["plugin"],
            r["description"],
        )
    out.print(f"data dir: {root}")
    out.print(table)
    details = Table("dataset", "option", "type", "default", "help", title="dataset options")
    for r in rows:
        for o in r["options"]:
            default = "-" if o["default"] is None else str(o["default"])
            details.add_row(r["name"], o["name"], o["type"], default, o["help"])
    if details.row_count:
        out.print(details)
        out.print(
            "Give them with `aebench run --dataset-options [DATASET:]KEY=VALUE,...` "
            "(a DATASET: prefix scopes them to one dataset)."
        )


@app.command("metrics")
def metrics_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    as_markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="The Markdown tables README.md shows (built-in metrics only)."
        ),
    ] = False,
) -> None:
    """List the metrics every run is measured with: columns, units, direction, budgets."""
    from aebench.catalog import metric_specs, metrics_markdown

    specs = metric_specs()
    if as_json:
        _print_json([s.describe() for s in specs])
        return
    if as_markdown:
        print(metrics_markdown(), end="")
        return
    import shutil
    import textwrap

    width = max(60, min(120, shutil.get_terminal_size((100, 20)).columns))
    lines = []
    for s in specs:
        head = f"{s.name}: {s.description} (applies to {s.applies_text}; {s.plugin})"
        lines += textwrap.wrap(head, width, subsequent_indent="  ")
        for c in s.columns:
            best = {"min": "↓ lower is better", "max": "↑ higher is better"}.get(
                c.direction or "", "informational"
            )
            head = f"  {c.key:<14} {c.label}" + (f" [{c.unit}]" if c.unit else "")
            lines.append(f"{head}, {best}" + (f"; {c.applies_text}" if c.applies_text else ""))
            lines += textwrap.wrap(
                c.definition, width, initial_indent=" " * 17, subsequent_indent=" " * 17
            )
        for o in s.options:
            budget = ", ".join(f"{p} {o.default_for(p)}" for p in ("smoke", "quick", "full"))
            flag = o.flag or f"--metric-option {o.name}=V"
            lines.append(f"  budget {o.name} ({flag}): {budget}")
            lines += textwrap.wrap(
                o.help, width, initial_indent=" " * 17, subsequent_indent=" " * 17
            )
        lines.append("")
    print("\n".join(lines).rstrip())


@app.command("samplers")
def samplers_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List samplers: where generated samples' latents come from, the suffix of their
    sample-metric columns (fid<suffix>, kid<suffix>, ...) and the models they apply to."""
    from aebench.catalog import sampler_specs

    specs = sampler_specs()
    if as_json:
        _print_json([s.describe() for s in specs])
        return
    table = Table("name", "columns", "applies to", "plugin", "description")
    table.columns[0].no_wrap = True
    for s in specs:
        table.add_row(s.name, f"fid{s.key_suffix}, ...", s.applies_text, s.plugin, s.description)
    out.print(table)
    out.print(
        "Each run is evaluated with every sampler that applies to its model (a model's "
        "`samplers` declaration narrows them); each gets its own FID, KID, precision, "
        "recall, density, coverage and novelty columns."
    )


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
    from aebench.profiles import PROFILES

    rows = "; ".join(
        f"{name}: {p['epochs']} epochs, train limit {p['limit'] or 'none'}"
        for name, p in PROFILES.items()
    )
    return (
        "Train and evaluate every cell of a grid (models x datasets x model options x seeds); "
        "store each run; rebuild results.csv and the leaderboard.\n\n"
        f"--models and --datasets are required (or a --suite that gives them). Profiles ({rows}; "
        "each metric's sample budgets per profile: `aebench metrics`). quick is the default. "
        "Explicit options override the profile and the suite file. Rerunning skips finished "
        "runs (same settings); --force redoes them."
    )


def _say(message: str) -> None:
    err.print(message, markup=False, highlight=False)


METRIC_PANEL = "Metric budgets (from the metric plugins; `aebench metrics` lists them)"


def _metric_flag_parameters() -> list[inspect.Parameter]:
    """``aebench run``'s metric flags, generated from the registered metric specs: one
    option per :class:`~aebench.specs.MetricOption` that declares a ``flag``
    (``--fid-samples``), one switch per ``off_flag`` (``--no-fid``). A metric
    plugin gets its flags without touching this file."""
    from aebench.catalog import option_specs

    params = []
    for opt in option_specs():
        if opt.flag:
            kind = opt.type if opt.type in (int, float) else str
            help_ = f"{opt.help} [default: from the profile]."
            option = typer.Option(opt.flag, help=help_, rich_help_panel=METRIC_PANEL)
            params.append(_keyword(opt.name, Annotated[kind | None, option], None))
        if opt.off_flag:
            help_ = f"Switch it off: {opt.flag or opt.name} {opt.off_value}."
            option = typer.Option(opt.off_flag, help=help_, rich_help_panel=METRIC_PANEL)
            params.append(_keyword(f"{opt.name}__off", Annotated[bool, option], False))
    return params


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _metric_flag_values(given: dict[str, Any]) -> dict[str, Any]:
    """The metric options the generated flags set (``None``: not given)."""
    from aebench.catalog import option_specs
    from aebench.errors import ConfigError

    out: dict[str, Any] = {}
    for opt in option_specs():
        value, off = given.get(opt.name), given.get(f"{opt.name}__off")
        if off and value is not None:
            raise ConfigError(f"{opt.off_flag} and {opt.flag} contradict each other: give one")
        if off:
            out[opt.name] = opt.off_value
        elif value is not None:
            out[opt.name] = value
    return out


def _add_metric_flags() -> None:
    """Give ``run_cmd`` the generated metric flags (typer reads ``__signature__``)."""
    fixed = [
        p
        for p in inspect.signature(run_cmd, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    fixed = fixed[:_RUN_FIXED_PARAMETERS]
    vars(run_cmd)["__signature__"] = inspect.Signature([*fixed, *_metric_flag_parameters()])


@app.command("run", help=_run_help())
def run_cmd(
    models: Annotated[
        str | None,
        typer.Option(
            help="Models: names, families or globs, comma-separated ('vae,ae-cnn', '*-mlp'). "
            "Required unless --suite gives them."
        ),
    ] = None,
    datasets: Annotated[
        str | None,
        typer.Option(
            help="Datasets, comma-separated ('mnist,digits', 'folder:PATH'). Required unless "
            "--suite gives them."
        ),
    ] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option(
            "--model-option",
            "-o",
            help="Set or sweep any model option: [SCOPE.]KEY=V1,V2 (repeatable; e.g. "
            "-o beta=0.5,4, -o mmd_weight=1,10; list options: -o hidden_dims=[512,256],[1024]). "
            "Without a scope it applies to every selected model that has KEY (an error if they "
            "mean different things by it); SCOPE (a family, a model name or a glob as --models "
            "takes: -o factor-vae.gamma=40) limits it to those models and overrides a plain KEY "
            "for them. `aebench models NAME --options` lists them.",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs [default: from the profile].")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size [default: 128].")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate [default: 0.001].")] = None,
    latent_dims: Annotated[
        str | None,
        typer.Option(help="Shorthand for -o latent_dim=...: latent sizes ('2,16') [default: 16]."),
    ] = None,
    betas: Annotated[
        str | None,
        typer.Option(help="Shorthand for -o beta=...: β values ('0.5,4') [default: 4]."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds, a grid axis ('0,1,2') [default: 0].")
    ] = None,
    n_seeds: Annotated[
        int | None,
        typer.Option(
            help="Run every cell over N seeds (from --seeds' first value, default 0); with two "
            "or more the leaderboard shows means with 95% intervals."
        ),
    ] = None,
    binarize: Annotated[
        str | None,
        typer.Option(
            help="'dynamic': train on batches binarised afresh (x ~ Bernoulli(pixel)) and "
            "evaluate on a test set binarised once, the setting of the VAE/IWAE literature "
            "[default: grayscale]."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Use only the first N training images [default: from the profile]."),
    ] = None,
    likelihood: Annotated[
        str | None,
        typer.Option(
            help="Shorthand for -o likelihood=...: bernoulli (BCE) or gaussian (MSE) "
            "[default: bernoulli]."
        ),
    ] = None,
    hidden_dims: Annotated[
        str | None,
        typer.Option(
            help="Shorthand for -o hidden_dims=...: '512,256' (MLP widths) or '32,64,128' "
            "(CNN: two convolutions' channels, then the dense layer; also 32x64x128) "
            "[default: the architecture's]."
        ),
    ] = None,
    val_size: Annotated[
        float | None,
        typer.Option(help="Validation split carved from train: fraction or count [default: 0.1]."),
    ] = None,
    dataset_options: Annotated[
        list[str] | None,
        typer.Option(
            help="Dataset loader options, [DATASET:]KEY=VALUE,... (repeatable; e.g. "
            "'folder:size=32,channels=3'). `aebench datasets` lists them."
        ),
    ] = None,
    metric_option: Annotated[
        list[str] | None,
        typer.Option(
            "--metric-option",
            help="A metric budget, KEY=VALUE (repeatable). `aebench metrics` lists them.",
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
        str | None,
        typer.Option(help="smoke, quick or full (epoch and sample budgets) [default: quick]."),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(help="A suite TOML file defining the whole grid (see benchmarks/suites/)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo runs that already finished.")
    ] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Do not build the HTML leaderboard.")
    ] = False,
    mlflow: Annotated[
        str | None,
        typer.Option(
            help="Also export every finished run to MLflow at this tracking URI or folder "
            "(needs aebench[mlflow]; see `aebench export`)."
        ),
    ] = None,
    mlflow_experiment: Annotated[
        str, typer.Option(help="MLflow experiment the runs go to (with --mlflow).")
    ] = "aebench",
    deterministic: Annotated[
        bool | None,
        typer.Option(
            "--deterministic/--no-deterministic",
            help="Repeatable CUDA runs (deterministic kernels; slower). No effect on CPU, "
            "which is always repeatable [default: on].",
        ),
    ] = None,
    compile_: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the training step (on CUDA: captured as CUDA graphs). Faster "
            "per step after a one-off compile; numbers close to, not equal to, eager "
            "[default: off].",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(help="Where cells run: local (this machine), ray or slurm [default: local]."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Cells running at once: worker processes (local), tasks in flight (ray), "
            "array parallelism (slurm) [default: 1]."
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="Torch CPU threads per cell [default: CPUs divided by --workers]."),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            help="Devices to spread cells over, e.g. cuda:0,cuda:1 [default: every visible GPU]."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (ray://host:10001 or auto) [default: a local one]."),
    ] = None,
    cpus_per_cell: Annotated[
        float | None, typer.Option(help="Ray: CPUs each cell asks for [default: --threads].")
    ] = None,
    gpus_per_cell: Annotated[
        float | None,
        typer.Option(
            help="Ray: GPUs each cell asks for; a fraction (0.25) packs cells on a GPU "
            "[default: 1 on CUDA, 0 on CPU]."
        ),
    ] = None,
    slurm_partition: Annotated[
        str | None, typer.Option(help="SLURM partition [default: the cluster's].")
    ] = None,
    slurm_time: Annotated[
        int | None, typer.Option(help="SLURM time limit per cell, minutes [default: 60].")
    ] = None,
    slurm_gpus_per_task: Annotated[
        int | None, typer.Option(help="SLURM GPUs per cell [default: 1 on CUDA, 0 on CPU].")
    ] = None,
    slurm_cpus_per_task: Annotated[
        int | None, typer.Option(help="SLURM CPUs per cell [default: --threads or 1].")
    ] = None,
    **metric_flags: Any,
) -> None:
    from aebench.plan import (
        Grid,
        parse_assignments,
        parse_dataset_options,
        parse_list,
        parse_model_options,
    )
    from aebench.progress import ConsoleProgress
    from aebench.runner import run_grids

    metric_options = parse_assignments("--metric-option", metric_option) or {}
    metric_options.update(_metric_flag_values(metric_flags))
    table = {
        "models": parse_list("--models", models),
        "datasets": parse_list("--datasets", datasets),
        "latent_dims": parse_list("--latent-dims", latent_dims, int),
        "betas": parse_list("--betas", betas, float),
        "hidden_dims": hidden_dims,
        "likelihood": likelihood,
        "seeds": parse_list("--seeds", seeds, int),
        "model_options": parse_model_options("--model-option", model_option),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "limit": limit,
        "val_size": val_size,
        "dataset_options": parse_dataset_options("--dataset-options", dataset_options),
        "metric_options": metric_options or None,
        "profile": profile,
        "deterministic": deterministic,
        "compile": compile_,
        "binarize": binarize,
        "n_seeds": n_seeds,
    }
    options = Grid.from_mapping({k: v for k, v in table.items() if v is not None}, "")
    execution = {
        "executor": executor,
        "workers": workers,
        "threads": threads,
        "devices": parse_list("--devices", devices),
        "ray_address": ray_address,
        "cpus_per_cell": cpus_per_cell,
        "gpus_per_cell": gpus_per_cell,
        "slurm_partition": slurm_partition,
        "slurm_time": slurm_time,
        "slurm_gpus_per_task": slurm_gpus_per_task,
        "slurm_cpus_per_task": slurm_cpus_per_task,
    }
    if mlflow:  # the export target and its extra, before anything trains
        from aebench.tracking import check_mlflow

        check_mlflow(mlflow, mlflow_experiment, experiment_flag="--mlflow-experiment")
    progress = ConsoleProgress(console=err)
    try:
        summary = run_grids(
            options,
            out,
            suite=suite,
            execution=execution,
            device=device,
            data_dir=data_dir,
            force=force,
            report=not no_report,
            on_event=progress,
        )
    finally:
        progress.close()
    done, skipped, failed = summary.count("done"), summary.count("skipped"), summary.failed
    for run_id, why in summary.corrupt:
        _say(f"aebench: warning: run {run_id} is corrupt and was skipped: {why}")
    _say(
        f"{done} run(s) done, {skipped} skipped, {len(failed)} failed; results: "
        f"{Path(out) / 'results.csv'}"
    )
    if mlflow:
        from aebench.tracking import export_mlflow

        exported = export_mlflow(out, mlflow, mlflow_experiment)
        _say(
            f"mlflow: {len(exported.exported)} run(s) exported to experiment "
            f"{exported.experiment!r} at {exported.uri}"
        )
    if summary.site:
        _say(f"leaderboard: {summary.site} ({summary.site.resolve().as_uri()})")
    if summary.report_error:
        _say(
            f"aebench: warning: the leaderboard was not built ({summary.report_error}); "
            f"retry with `aebench report {out}`"
        )
    if failed:
        for o in failed:
            _say(f"  failed: {o.run.label}: {o.reason}")
        raise typer.Exit(1)


_RUN_FIXED_PARAMETERS = len(inspect.signature(run_cmd).parameters) - 1  # without **metric_flags


@app.command("report")
def report_cmd(
    run_dir: Annotated[
        str,
        typer.Argument(
            help="A benchmark output directory (the --out of `aebench run`) [default: "
            "aebench-out, as `aebench run`'s]."
        ),
    ] = "aebench-out",
    out: Annotated[
        str | None, typer.Option("--out", help="Where to write the site [default: RUN_DIR/site].")
    ] = None,
) -> None:
    """Rebuild results.csv and the HTML leaderboard from stored runs, without retraining."""
    from aebench import results
    from aebench.report import report_command
    from aebench.store import RunStore

    store, _ = RunStore.locate(run_dir)
    if store.runs_dir.is_dir():
        table = results.write(store.root)  # the table too, so it matches the site
        for run_id, why in table.attrs.get("corrupt", []):
            _say(f"aebench: warning: run {run_id} is corrupt and was skipped: {why}")
    from aebench.progress import ConsoleProgress

    index = report_command(store.root, Path(out) if out else None, on_event=ConsoleProgress())
    print(index)
    _say(f"open it: {index.resolve().as_uri()} (or `aebench open {run_dir}`)")


MAX_GENERATED = 4096
"""The most samples ``aebench generate`` puts in one grid (64x64 tiles of 96 px)."""


@app.command("generate")
def generate_cmd(
    run_dir: Annotated[str, typer.Argument(help="One run directory (OUT/runs/<run_id>).")],
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 64,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[
        str | None, typer.Option("--out", help="PNG file [default: RUN_DIR/images/generated.png].")
    ] = None,
) -> None:
    """Write samples from a trained run to a PNG grid (no retraining), small images enlarged
    to at least 96 pixels per tile."""
    import torch

    from aebench.catalog import load_model
    from aebench.errors import ConfigError
    from aebench.images import GENERATED_TILE, save_grid
    from aebench.store import MAX_SEED, RunStore

    if not 1 <= n <= MAX_GENERATED:
        raise ConfigError(f"--n must be 1 to {MAX_GENERATED} (one PNG grid), got {n}")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed must be 0 to {MAX_SEED}, got {seed}")
    store, run_id = RunStore.locate(run_dir)
    if run_id is None:
        ids = store.run_ids()
        example = ids[0] if ids else "<run_id>"
        raise ConfigError(
            f"{run_dir} is a benchmark output folder; give one run: "
            f"{store.runs_dir / example}" + (f" ({len(ids)} runs there)" if ids else "")
        )
    model = load_model(store, run_id)
    with torch.no_grad():
        images = model.sample(n, generator=torch.Generator().manual_seed(seed))
    target = Path(out) if out else store.path(run_id) / "images" / "generated.png"
    save_grid(images, target, nrow=max(1, int(n**0.5)), min_tile=GENERATED_TILE)
    print(target)


@app.command("export")
def export_cmd(
    run_dir: Annotated[str, typer.Argument(help="A benchmark output folder (--out of run).")],
    mlflow: Annotated[
        str,
        typer.Option(help="MLflow tracking URI, or a folder for a local (offline) file store."),
    ],
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "aebench",
    weights: Annotated[
        bool, typer.Option("--weights", help="Also upload each run's weights.")
    ] = False,
) -> None:
    """Export finished runs to MLflow (params, metrics, per-epoch history, images)."""
    from aebench.store import RunStore
    from aebench.tracking import export_mlflow

    store, _ = RunStore.locate(run_dir)
    summary = export_mlflow(store.root, mlflow, experiment, weights=weights)
    _say(
        f"{len(summary.exported)} run(s) exported, {len(summary.skipped)} skipped (already "
        f"there or not finished); experiment {summary.experiment!r} at {summary.uri}"
    )


@app.command("open")
def open_cmd(
    run_dir: Annotated[
        str, typer.Argument(help="A benchmark output folder, or a site folder.")
    ] = "aebench-out",
) -> None:
    """Open the leaderboard in a web browser (and print its file:// URL)."""
    import webbrowser

    from aebench.errors import DataError

    path = Path(run_dir)
    candidates = [
        path / "index.html",
        path / "site" / "index.html",
        path.parent / "site" / "index.html",
    ]
    index = next((p for p in candidates if p.is_file()), None)
    if index is None:
        raise DataError(
            f"no leaderboard in {str(path)!r} (expected {path / 'site' / 'index.html'}); "
            f"build it with `aebench report {path}`"
        )
    url = index.resolve().as_uri()
    print(url)
    webbrowser.open(url)


@app.command("fetch")
def fetch_cmd(
    dataset: Annotated[
        str, typer.Argument(help="Dataset to download (mnist, fashion-mnist, svhn, dsprites).")
    ],
    data_dir: Annotated[
        str | None, typer.Option(help="Dataset root [default: $AEBENCH_DATA_DIR, then cache].")
    ] = None,
) -> None:
    """Download a dataset's files (with a progress bar) into the data root."""
    from aebench.catalog import fetch_dataset

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
    try:
        if argv and argv[0] not in ("--version", "--help", "-h"):
            _load_plugins([a for a in argv if a not in ("-v", "--verbose")])
            _add_metric_flags()
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
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            raise SystemExit(code) from None
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
