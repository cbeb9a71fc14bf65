"""Per-dataset leaderboards: runs grouped into configurations, one row each.

A configuration is everything in a run's config.json except what only labels
or repeats it (:data:`NOT_CONFIGURATION`) and the metric options that split
columns (the FID extractor and sample count get their own columns instead), so
the seeds of one configuration share a row and each cell is their mean ± a 95%
t-interval (:mod:`.stats`).

Best values are marked among comparable rows only (:meth:`Column.comparable`:
same likelihood and objective for losses and NLL, same sampler for sample
metrics); a single best's lead over the runner-up is called significant only
when a paired t-test over the seeds both ran says so (p < 0.05). Rows carry
flags a reader must not miss: samples that copy training images
(``memorised``) and posterior collapse (``collapsed_fraction``).

The model options a row shows (one column each, ``latent_dim`` first) are
those some run of the dataset names in ``shown_options`` (options the user set
or swept) and those whose value differs between the dataset's configurations
(among the models that have that option). Rows
that still look alike (same model and option values) but differ in another
setting name that setting in their ``variant``, generically.

Nothing here plots or renders; :func:`leaderboard_context` returns plain
dicts and :class:`~aebench.report.columns.Column` s for the templates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from aebench.catalog import column_specs, metric_specs
from aebench.models.base import OBJECTIVE_GROUPS
from aebench.options import config_fields, field_help, short_value
from aebench.plugins import get_plugins
from aebench.report.columns import GROUP_TITLES, Column, columns_for
from aebench.report.format import (
    MISSING,
    NOT_APPLICABLE_TITLE,
    NOT_COMPUTED_TITLE,
    aggregate,
    fmt_option,
    not_applicable_title,
    number,
    slugify,
    sort_value,
)
from aebench.report.stats import ALPHA, paired_test
from aebench.store import RunRecord

NOT_CONFIGURATION = frozenset(
    {
        "seed",
        "run_id",
        "key",
        "description",
        "plugin",
        "shown_options",
        "format_version",
        "input_shape",
        "resolved_model_config",
    }
)
"""config.json keys that do not make two runs different configurations."""
FIRST_OPTION = "latent_dim"
UNKNOWN_DATASET = "(unknown dataset)"
WHY = {
    "na": NOT_APPLICABLE_TITLE,
    "other": "computed with other settings (in another column)",
    "missing": NOT_COMPUTED_TITLE,
}


# --------------------------------------------------------------------------- configurations


def model_options(config: dict[str, Any]) -> dict[str, Any]:
    """The model options a run was built with: ``resolved_model_config`` (what was
    actually built) over ``model_config`` (what was asked for)."""
    return {**(config.get("model_config") or {}), **(config.get("resolved_model_config") or {})}


def shown_options(config: dict[str, Any]) -> list[str]:
    """The options that label a run (``latent_dim`` plus those set or swept)."""
    shown = config.get("shown_options")
    if not isinstance(shown, list):
        shown = [FIRST_OPTION] if FIRST_OPTION in (config.get("model_config") or {}) else []
    return [str(s) for s in shown]


def config_label(config: dict[str, Any]) -> str:
    """Short text naming a configuration: the model and its shown options,
    e.g. ``beta-vae-cnn latent_dim=16 beta=0.5``."""

    options = model_options(config)
    parts = [str(config.get("model", "?"))]
    parts += [f"{name}={short_value(options.get(name))}" for name in shown_options(config)]
    return " ".join(parts)


def split_keys(specs: Sequence[Any] | None = None) -> set[str]:
    """Metric options that split columns (``fid_extractor``, ``fid_samples``)."""

    cols = column_specs() if specs is None else [c for s in specs for c in s.columns]
    return {k for c in cols for k in c.split_by}


def configuration(config: dict[str, Any], splits: set[str]) -> dict[str, Any]:
    """What makes a configuration: config.json without :data:`NOT_CONFIGURATION` and
    without the metric options that split columns (``splits``)."""
    out = {k: v for k, v in config.items() if k not in NOT_CONFIGURATION}
    if isinstance(out.get("metric_options"), dict):
        out["metric_options"] = {k: v for k, v in out["metric_options"].items() if k not in splits}
    return out


def settings(config: dict[str, Any], splits: set[str]) -> dict[str, Any]:
    """A configuration flattened for display: model and metric options by name (unless
    a top-level setting has that name), other nested settings as ``key.name``."""
    out: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in configuration(config, splits).items():
        if isinstance(value, dict):
            bare = key in ("model_config", "metric_options")
            nested.update({(k if bare else f"{key}.{k}"): v for k, v in value.items()})
        else:
            out[key] = value
    for key, value in nested.items():
        out[key if key not in out else f"options.{key}"] = value
    return out


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def option_names(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Option columns for these configurations: ``latent_dim``, then options any of
    them shows, then options that take two or more values among those that have them."""
    names: list[str] = []
    for config in configs:
        for name in shown_options(config):
            if name not in names:
                names.append(name)
    seen: list[str] = []
    for config in configs:
        seen.extend(n for n in (config.get("model_config") or {}) if n not in seen)
    for name in seen:  # an option a model lacks is not a value of it
        values = {_dumps(mc[name]) for c in configs if name in (mc := c.get("model_config") or {})}
        if len(values) > 1 and name not in names:
            names.append(name)
    if FIRST_OPTION in names:
        names.remove(FIRST_OPTION)
        names.insert(0, FIRST_OPTION)
    elif any(FIRST_OPTION in (c.get("model_config") or {}) for c in configs):
        names.insert(0, FIRST_OPTION)
    return names


def option_help(model: str, name: str) -> str:
    """The one-line help of model option ``name`` when the model is installed here."""

    models = get_plugins().models
    if model not in models:
        return ""
    try:
        field = config_fields(models.get(model).config_cls).get(name)
    except TypeError:  # a config class that is not a dataclass: no help to show
        return ""
    return field_help(field) if field is not None else ""


# --------------------------------------------------------------------------- cells


def option_cell(name: str, values: dict[str, Any]) -> dict[str, str]:
    """A row's option column: display text and sort key (numbers numerically, text
    as text, missing values last)."""
    value = values.get(name)
    if name not in values:
        return {"text": MISSING, "sort": "", "title": "not an option of this model"}
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = fmt_option(value)
    sort = repr(float(value)) if numeric and value is not None else "" if value is None else text
    return {"text": text, "sort": sort, "title": ""}


def cell(
    values: Sequence[tuple[float | None, str | None]],
    integer: bool = False,
    seeds: Sequence[Any] | None = None,
    applies: str = "",
) -> dict:
    """A seed aggregate for one column; without a value, ``title`` says why
    (not applicable only when it applies to none of the seeds). ``seeds``: the
    seed of each value, for paired tests."""
    out = aggregate([v for v, _ in values], integer=integer, seeds=seeds)
    out["na"] = bool(values) and all(why == "na" for _, why in values)
    out["title"] = ""
    if out["n"] == 0:
        whys = [why for _, why in values if why]
        why = "na" if out["na"] else "other" if "other" in whys else "missing"
        out["title"] = not_applicable_title(applies) if why == "na" else WHY[why]
    return out


def _facets_text(facets: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{k} {v}" for k, v in facets)


def mark_best(rows: list[dict[str, Any]], columns: Sequence[Column | dict[str, Any]]) -> None:
    """Set ``best`` on the cell(s) with the best mean of each directed column, among
    comparable rows, and say in ``lead`` whether a single best is significantly ahead.

    Rows compete only with rows of the same facets (:meth:`Column.comparable`;
    a row is described by its first run). Columns without a direction are never
    marked; a class with fewer than two values has nothing to compare and is not
    marked either (not-applicable cells have no value, so they never count).
    Ties for best are all marked, unless every value ties. A single best gets
    ``lead``: ``{"p", "n", "significant"}`` from a paired t-test against the
    runner-up over their shared seeds (None with fewer than two).
    """
    for col in columns:
        key = col["key"] if isinstance(col, dict) else col.key
        direction = col.get("direction") if isinstance(col, dict) else col.direction
        for row in rows:
            c = row["cells"][key]
            c["best"], c["lead"], c["best_title"] = False, None, ""
        if direction not in ("min", "max"):
            continue
        classes: dict[tuple, list[dict[str, Any]]] = {}
        for row in rows:
            members = row.get("members") or []
            facets = col.comparable(members[0]) if isinstance(col, Column) and members else ()
            classes.setdefault(facets, []).append(row)
        for facets, same in classes.items():
            _mark_class(same, key, direction, _facets_text(facets))


def _mark_class(rows: list[dict[str, Any]], key: str, direction: str, facets: str) -> None:
    present = [row["cells"][key] for row in rows if row["cells"][key].get("mean") is not None]
    if len(present) < 2:
        return
    pick = min if direction == "min" else max
    best = pick(c["mean"] for c in present)
    winners = [c for c in present if math.isclose(c["mean"], best, rel_tol=1e-9, abs_tol=1e-12)]
    if len(winners) == len(present):  # everyone ties: nothing stands out
        return
    among = f"best among rows with {facets}" if facets else "best of the column"
    for c in winners:
        c["best"] = True
        c["best_title"] = among
    if len(winners) > 1:
        return
    (winner,) = winners
    rest = [c for c in present if c is not winner]
    runner_up = pick(rest, key=lambda c: c["mean"])
    test = paired_test(winner.get("by_seed") or {}, runner_up.get("by_seed") or {})
    if test is None:
        winner["best_title"] += "; fewer than 2 seeds shared with the runner-up: lead not tested"
        return
    significant = test.significant(ALPHA)
    winner["lead"] = {"p": test.p, "n": test.n, "significant": significant}
    verdict = "significant" if significant else "not significant"
    winner["best_title"] += (
        f"; lead over the runner-up {verdict} (paired t-test over {test.n} seeds, p = {test.p:.2g})"
    )


# --------------------------------------------------------------------------- tables


def dataset_leaderboard(
    name: str,
    records: Sequence[RunRecord],
    href: Callable[[RunRecord], str],
    specs: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The leaderboard of one dataset: columns, option columns, one row per
    configuration, and the runs that are not on it (failed, unfinished, corrupt)."""

    specs = list(metric_specs() if specs is None else specs)
    done = [r for r in records if r.done]
    columns = columns_for(done, specs)
    splits = split_keys(specs)

    groups: dict[str, list[RunRecord]] = {}
    for record in done:
        groups.setdefault(_dumps(configuration(record.config, splits)), []).append(record)
    options = option_names([members[0].config for members in groups.values()])

    rows: list[dict[str, Any]] = []
    for members in groups.values():
        members.sort(key=lambda r: (sort_value(r.config.get("seed")), r.run_id))
        config = members[0].config
        values = model_options(config)
        descriptions = sorted(
            {str(r.config["description"]) for r in members if r.config.get("description")}
        )
        rows.append(
            {
                "model": str(config.get("model", "?")),
                "label": config_label(config),
                "config": config,
                "settings": settings(config, splits),
                "options": {n: values.get(n) for n in options},
                "option_cells": [option_cell(n, values) for n in options],
                "description": " / ".join(descriptions),
                "variant": "",
                "n_seeds": len(members),
                "runs": [
                    {"seed": r.config.get("seed"), "run_id": r.run_id, "href": href(r)}
                    for r in members
                ],
                "cells": {
                    col.key: cell(
                        [col.value(r) for r in members],
                        col.integer,
                        seeds=[r.config.get("seed", r.run_id) for r in members],
                        applies=col.applies,
                    )
                    for col in columns
                },
                "members": members,
                "href": href(members[0]),
                "family": str(config.get("family") or config.get("model", "?")),
                "group": objective_group(members[0]),
                "arch": str(config.get("arch") or ""),
                "flags": row_flags(members),
            }
        )
    _name_variants(rows, options)
    for row in rows:
        row["group_title"], row["group_meaning"] = OBJECTIVE_GROUPS.get(
            row["group"], (row["group"], "")
        )
    rows.sort(  # grouped by objective, then by model
        key=lambda r: (
            _group_rank(r["group"]),
            r["model"],
            *(sort_value(r["options"][n]) for n in options),
            r["variant"],
        )
    )
    for i, row in enumerate(rows):
        row["index"] = i
    mark_best(rows, columns)

    others = [
        {
            "run_id": r.run_id,
            "href": href(r),
            "model": str(r.config.get("model", "?")),
            "label": config_label(r.config) if r.config else r.path.name,
            "seed": r.config.get("seed"),
            "status": r.status,
            "reason": r.reason or MISSING,
        }
        for r in records
        if not r.done
    ]
    others.sort(key=lambda o: str(o["run_id"]))
    models = sorted({row["model"] for row in rows})
    return {
        "name": name,
        "slug": slugify(name),
        "columns": columns,
        "groups": column_groups(columns),
        "families": sorted({row["family"] for row in rows}),
        "objective_groups": objective_groups(rows),
        "archs": sorted({row["arch"] for row in rows if row["arch"]}),
        "options": [
            {
                "name": n,
                "title": next((h for m in models if (h := option_help(m, n))), "")
                or f"Model option {n}",
                "numeric": all(
                    v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                    for v in (row["options"][n] for row in rows)
                ),
            }
            for n in options
        ],
        "rows": rows,
        "others": others,
        "n_runs": len(records),
        "n_done": len(done),
    }


def objective_group(record: RunRecord) -> str:
    """The run's objective group (:data:`~aebench.models.base.OBJECTIVE_GROUPS`): as
    stored; for runs stored before groups were, the registered model's declaration,
    else its stored latent kind (``variational`` for Gaussian latents)."""
    metrics = record.metrics or {}
    stored = metrics.get("objective_group")
    if stored in OBJECTIVE_GROUPS:
        return str(stored)
    models = get_plugins().models
    name = str(record.config.get("model", ""))
    if name in models:
        cls = getattr(models.get(name).factory, "func", models.get(name).factory)
        if hasattr(cls, "group"):
            return str(cls.group())
    kind = metrics.get("latent_kind")
    return str(kind) if kind in ("deterministic", "discrete") else "variational"


def objective_groups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objective groups of ``rows`` in :data:`OBJECTIVE_GROUPS` order:
    ``[{name, title, meaning, n}]`` (``n``: its rows)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["group"]] = counts.get(row["group"], 0) + 1
    return [
        {"name": name, "title": title, "meaning": meaning, "n": counts[name]}
        for name, (title, meaning) in OBJECTIVE_GROUPS.items()
        if name in counts
    ]


def _group_rank(name: str) -> int:
    return list(OBJECTIVE_GROUPS).index(name) if name in OBJECTIVE_GROUPS else len(OBJECTIVE_GROUPS)


def column_groups(columns: Sequence[Column]) -> list[dict[str, Any]]:
    """The leaderboard's column groups in column order: ``[{name, title, n, n_lead}]``."""

    groups: dict[str, dict[str, Any]] = {}
    for col in columns:
        g = groups.setdefault(
            col.group,
            {"name": col.group, "title": GROUP_TITLES.get(col.group, col.group), "n": 0},
        )
        g["n"] += 1
        g["n_lead"] = g.get("n_lead", 0) + int(col.lead)
    return list(groups.values())


def row_flags(members: Sequence[RunRecord]) -> list[dict[str, str]]:
    """Warnings about a configuration: one for each metric column that declares a
    :class:`~aebench.specs.ColumnFlag` (samples that copy training images, posterior
    collapse) and whose value crosses it in any seed, saying in how many."""
    n = len(members)
    flags = []
    for column in column_specs():
        flag = column.flag
        if flag is None:
            continue
        hits = [
            v
            for r in members
            if (v := number((r.metrics or {}).get(column.key))) is not None and flag.hits(v)
        ]
        if hits:
            worst = max(hits) if flag.at_least else min(hits)
            title = flag.title.format(worst=worst, count=len(hits), n=n, s="s" if n != 1 else "")
            flags.append({"kind": flag.kind, "text": flag.text, "title": title})
    return flags


def _name_variants(rows: list[dict[str, Any]], options: list[str]) -> None:
    """Rows with the same model and option values but other differing settings:
    name those settings (``epochs=2``), so the rows cannot be mistaken for each other."""
    alike: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        alike.setdefault(_dumps([row["model"], row["options"]]), []).append(row)
    for same in alike.values():
        if len(same) < 2:
            continue
        keys = sorted({k for row in same for k in row["settings"]} - set(options))
        differing = [k for k in keys if len({_dumps(r["settings"].get(k)) for r in same}) > 1]
        for row in same:
            row["variant"] = ", ".join(
                f"{k}={fmt_option(row['settings'].get(k))}" for k in differing
            )


def leaderboard_context(
    records: Sequence[RunRecord],
    href: Callable[[RunRecord], str] = lambda r: f"runs/{slugify(r.run_id)}.html",
) -> dict[str, Any]:
    """Context for ``index.html``: one leaderboard per dataset (sorted by name; runs
    whose config cannot be read last, under :data:`UNKNOWN_DATASET`).

    ``href(record)``: the link to a run's page, relative to the index.
    """

    specs = metric_specs()
    by_dataset: dict[str, list[RunRecord]] = {}
    for record in records:
        name = str(record.config.get("dataset") or UNKNOWN_DATASET)
        by_dataset.setdefault(name, []).append(record)
    names = sorted(by_dataset, key=lambda n: (n == UNKNOWN_DATASET, n))  # unreadable last
    datasets = [dataset_leaderboard(name, by_dataset[name], href, specs) for name in names]
    taken: set[str] = set()
    for ds in datasets:
        ds["slug"] = slugify(ds["name"], taken)
    return {
        "datasets": datasets,
        "n_runs": len(records),
        "n_done": sum(ds["n_done"] for ds in datasets),
        "n_not_done": sum(len(ds["others"]) for ds in datasets),
        "n_corrupt": sum(1 for r in records if r.corrupt),
    }
