"""Which comparison figures a dataset's leaderboard gets, and their data.

* **Metrics vs <option>**: one figure per numeric model option that takes two or
  more values within a series (the configurations that agree on everything
  else: model, the other options, the variant); one panel per compared column.
* **Rate–distortion**: runs whose regulariser is a KL (``regulariser`` stored in
  metrics.json), test KL vs reconstruction term.
* **Training curves**: validation loss and MSE per epoch, every configuration
  overlaid (mean over its seeds).
* **Latent maps**: the 2-D latent means of every configuration with d = 2,
  side by side.
* **Per-class MSE**: configurations side by side, per class.

Every figure colours a model the same way (``colours``, one palette per site).

The compared columns are, for each metric group of the registry (except
``cost``), its first ranked column; of a split column (FID), the variant with
the most values, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aebench.options import short_value
from aebench.report import plots
from aebench.report.columns import Column
from aebench.report.format import number
from aebench.report.leaderboard import shown_options
from aebench.report.plots.base import UNREADABLE, read_latents

NOT_COMPARED_GROUPS = ("cost",)
MEAN_CAPTION = (
    "Mean over seeds; error bars are 95% t-intervals over seeds (none with one seed). "
    "Colour: model; line style: its other settings."
)


@dataclass(frozen=True)
class Figure:
    """A comparison figure: ``draw(path)`` writes it and says whether there was anything
    to draw; it is saved as ``plots/<dataset slug>-<name>.png``."""

    name: str
    title: str
    caption: str
    draw: Callable[[Path], bool]


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compared_columns(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[Column]:
    """The first ranked column of each metric group (cost excepted), in column order."""
    firsts: dict[str, list[Column]] = {}
    for col in columns:
        if col.direction is None or col.group in NOT_COMPARED_GROUPS:
            continue
        group = firsts.setdefault(col.group, [])
        if not group or col.metric == group[0].metric:
            group.append(col)
    out = []
    for candidates in firsts.values():
        out.append(max(candidates, key=lambda c: sum(r["cells"][c.key]["n"] > 0 for r in rows)))
    return sorted(out, key=columns.index)


def option_series(
    rows: Sequence[dict[str, Any]], option: str, options: Sequence[str]
) -> dict[str, list[tuple[float, Any]]]:
    """Rows with a numeric ``option`` grouped into lines that agree on everything else;
    each line named by its model, its other option values and its variant."""
    series: dict[str, list[tuple[float, Any]]] = {}
    for row in rows:
        x = row["options"].get(option)
        if not _numeric(x):
            continue
        name = " ".join(
            [row["model"]]
            + [
                f"{n}={short_value(row['options'][n])}"
                for n in options
                if n != option and row["options"].get(n) is not None
            ]
        )
        if row.get("variant"):
            name += f" ({row['variant']})"
        series.setdefault(name, []).append((float(x), row["cells"]))
    return series


def series_models(
    rows: Sequence[dict[str, Any]], option: str, options: Sequence[str]
) -> dict[str, str]:
    """The model of each line :func:`option_series` draws (its colour)."""
    return {name: row["model"] for row in rows for name in option_series([row], option, options)}


def _option_text(config: dict[str, Any], options: dict[str, Any]) -> str:
    return " ".join(
        f"{n}={short_value(options.get(n))}" for n in shown_options(config) if n in options
    )


def rate_distortion_points(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per run whose stored ``regulariser`` is a KL divergence."""
    points = []
    for row in rows:
        for record in row["members"]:
            m = record.metrics or {}
            if str(m.get("regulariser") or "").lower().startswith("kl"):
                points.append(
                    {
                        "model": row["model"],
                        "short": _option_text(row["config"], row["options"]),
                        "rate": number(m.get("test_reg")),
                        "distortion": number(m.get("test_recon")),
                    }
                )
    return points


def per_class_rows(rows: Sequence[dict[str, Any]], key: str = "mse") -> list[dict[str, Any]]:
    """Each configuration's per-class ``key``, averaged over its seeds."""
    out = []
    for row in rows:
        sums: dict[str, list[float]] = {}
        for record in row["members"]:
            pc = (record.metrics or {}).get("per_class")
            if isinstance(pc, dict):
                for name, vals in pc.items():
                    v = number(vals.get(key)) if isinstance(vals, dict) else None
                    if v is not None:
                        sums.setdefault(str(name), []).append(v)
        if sums:
            out.append(
                {
                    "label": row_label(row),
                    "model": row["model"],
                    "per_class": {k: sum(v) / len(v) for k, v in sums.items()},
                }
            )
    return out


def row_label(row: dict[str, Any]) -> str:
    """A configuration's label with its variant, as figures and the gallery name it."""
    return row["label"] + (f" ({row['variant']})" if row.get("variant") else "")


def training_curves(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each configuration's histories (one per seed), for overlaid training curves."""
    return [
        {
            "label": row_label(row),
            "model": row["model"],
            "histories": [r.history for r in row["members"] if r.history],
        }
        for row in rows
        if any(r.history for r in row["members"])
    ]


def latent_maps(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored 2-D test latents of each configuration with d = 2 (its first seed)."""

    maps = []
    for row in rows:
        record = row["members"][0]
        path = record.file("latents.npz")
        if path is None:
            continue
        try:
            z, y = read_latents(path)
        except UNREADABLE:
            continue  # the run page names the problem
        if z.ndim == 2 and z.shape[1] == 2:
            maps.append({"label": row_label(row), "z": z, "y": y})
    return maps


def dataset_figures(ds: dict[str, Any], colours: dict[str, str] | None = None) -> list[Figure]:
    """The comparison figures one dataset's leaderboard may get (each draws only when
    its data allow). ``colours``: model -> colour, the same on every figure."""
    rows, names = ds["rows"], [o["name"] for o in ds["options"]]
    columns = compared_columns(ds["columns"], rows)
    colours = colours or plots.model_colours({row["model"] for row in rows})
    curves = training_curves(rows)
    figures = [
        Figure(
            "training",
            "Training curves",
            "Validation loss (nats per image) and validation MSE per epoch, mean "
            "over seeds. Colour: model; line style: its other settings.",
            lambda path: plots.plot_training_curves(curves, path, colours),
        )
    ]
    for option in names:
        series = option_series(rows, option, names)
        models = series_models(rows, option, names)

        def draw(path: Path, series: dict = series, option: str = option, models=models) -> bool:
            return plots.plot_metric_vs(series, columns, path, option, models, colours)

        figures.append(Figure(f"vs-{option}", f"Metrics vs {option}", MEAN_CAPTION, draw))
    points = rate_distortion_points(rows)
    figures.append(
        Figure(
            "rate-distortion",
            "Rate–distortion",
            "One point per run with a KL regulariser: test KL (rate) vs test reconstruction "
            "term (distortion), both in nats per image.",
            lambda path: plots.plot_rate_distortion(points, path, colours),
        )
    )
    figures.append(
        Figure(
            "latent-maps",
            "2-D latent spaces",
            "Test latent means of each configuration with a 2-D latent space (first seed), "
            "coloured by class, each on its own axes.",
            lambda path: plots.plot_latent_maps(latent_maps(rows), path, ds.get("class_names")),
        )
    )
    class_rows = per_class_rows(rows)
    figures.append(
        Figure(
            "per-class-mse",
            "Per-class MSE by configuration",
            "Test MSE per pixel for each class, mean over seeds (first 10 configurations).",
            lambda path: plots.plot_per_class_compare(class_rows, path, colours=colours),
        )
    )
    return figures
