"""Leaderboard columns, from the metrics registry.

Every column a registered metric declares (:func:`aebench.metrics.column_specs`)
becomes a leaderboard column when some run has a value for it, in registry
order, with the spec's label, unit, direction arrow and definition (the
header's tooltip). A column with ``split_by`` keys (FID: extractor and sample
count) becomes one column per combination of those values found in the runs,
so incomparable numbers never share a column or compete for "best".

A numeric metrics.json value that no registered column declares (a metric
whose plugin is not installed here) still gets a column, labelled with its
key, direction unknown and never ranked; it goes before the ``cost`` group.
Values stored beside the metrics that are not results (budgets, counts,
identifiers; see :func:`is_detail`) never become columns.

Best values are compared only among comparable rows: a column's
``compare_by`` (from its group, :data:`COMPARE_BY`) names the facets two runs
must share, such as the likelihood and the training objective for losses and
NLL, and the sampler for sample metrics (the extractor and sample count are
split columns already). Each group's ``lead`` columns stay visible when the
leaderboard collapses the group.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aebench.catalog import metric_specs, sampler_specs
from aebench.plugins import get_plugins
from aebench.report.format import number
from aebench.specs import GROUPS

if TYPE_CHECKING:
    from aebench.specs import MetricColumn, MetricSpec
    from aebench.store import RunRecord

UNKNOWN_GROUP = "other"
LAST_GROUP = "cost"  # unknown columns go before the registry's cost group
COMPARE_BY: dict[str, tuple[str, ...]] = {
    "likelihood": ("likelihood", "objective"),
    "samples": ("sampler",),
}
"""Per column group, the facets rows must share for their values to compete for best."""
LEADS_PER_GROUP = 3
"""At most this many columns of a group stay visible when it is collapsed."""
GROUP_TITLES = {
    "likelihood": "Likelihood",
    "reconstruction": "Reconstruction",
    "samples": "Samples",
    "representation": "Representation",
    "other": "Other",
    "cost": "Cost",
}


@dataclass(frozen=True)
class Column:
    """One leaderboard column.

    ``key`` is unique on the page: the metric key, or for a split column the
    metric key and its split values (``fid:inception:10000``). ``metric`` is the
    metrics.json key holding the value; ``split`` the ``(key, value)`` pairs a
    run's metrics must match for its value to belong here.
    """

    key: str
    metric: str
    label: str
    unit: str = ""
    direction: str | None = None
    definition: str = ""
    group: str = UNKNOWN_GROUP
    integer: bool = False
    split: tuple[tuple[str, Any], ...] = ()
    details: str = ""
    registered: bool = True
    compare_by: tuple[str, ...] = ()
    lead: bool = False
    source: str = ""
    applies: str = ""
    """To which runs the column applies, in words (its ``applies_text``): the reason
    a cell says "n/a"."""

    @property
    def arrow(self) -> str:
        return {"min": "↓", "max": "↑"}.get(self.direction or "", "")

    @property
    def first(self) -> str:
        """The sort order a first click on the header gives: best first."""
        return "descending" if self.direction == "max" else "ascending"

    @property
    def split_text(self) -> str:
        return split_text(self.split, short=True, column=self.metric)

    @property
    def sub(self) -> str:
        """The header's second line: unit and split values."""
        return ", ".join(t for t in (self.unit, self.split_text) if t)

    @property
    def title(self) -> str:
        """The header's tooltip: the definition, then what the column is restricted to."""
        text = self.definition
        if self.split:
            text += f" ({split_text(self.split, short=False, column=self.metric)}"
            text += f": {self.details})" if self.details else ")"
        return text

    def value(self, record: RunRecord) -> tuple[float | None, str | None]:
        """This column's value for a run and, when there is none, why: ``"na"``
        (not applicable), ``"other"`` (computed under other split values) or
        ``"missing"``."""
        metrics = record.metrics or {}
        if self.metric in record.not_applicable:
            return None, "na"
        if any(not same(metrics.get(k), v) for k, v in self.split):
            return None, "other" if number(metrics.get(self.metric)) is not None else "missing"
        value = number(metrics.get(self.metric))
        return value, None if value is not None else "missing"

    def comparable(self, record: RunRecord) -> tuple[tuple[str, str], ...]:
        """The facets (``compare_by``) of a run: runs compete for best only when equal."""
        return tuple((name, facet(name, self.metric, record)) for name in self.compare_by)


def facet(name: str, metric: str, record: RunRecord) -> str:
    """One facet of a run that decides what its ``metric`` value can be compared with.

    ``likelihood``: the decoder likelihood (with its variance when Gaussian);
    ``objective``: the objective the model declares it trains with the values of
    the options its model spec names as changing it (``ModelSpec.objective_options``:
    β for the β-VAE), as stored in ``objective``; for runs stored before that,
    the regulariser and those options' values from the registry; ``sampler``: what the
    metric's samples were decoded from (the prior, the ex-post mixture, the
    two-stage VAE, ..., as stored: ``fid_sampler``, ``fid_expost_sampler``, ...;
    the sampler is known by the suffix of the metric's key, see
    :func:`sampler_suffix`).
    """
    config, metrics = record.config or {}, record.metrics or {}
    options = {**(config.get("model_config") or {}), **(config.get("resolved_model_config") or {})}
    if name == "likelihood":
        likelihood = str(options.get("likelihood", "?"))
        if likelihood == "gaussian" and "gaussian_var" in options:
            likelihood += f" (var {options['gaussian_var']})"
        return likelihood
    if name == "objective":
        if metrics.get("objective"):  # stored with its options' values
            return str(metrics["objective"])
        objective = str(metrics.get("regulariser") or "?")
        if objective not in ("none", "?"):
            for option, label in objective_options(str(config.get("model", ""))):
                if option in options:
                    objective += f", {label}={options[option]}"
        return objective
    if name == "sampler":
        sfx = sampler_suffix(metric, metrics)
        for key in (f"{metric}_sampler", f"fid{sfx}_sampler"):
            if metrics.get(key):
                return str(metrics[key])
        if sfx:
            return "ex-post" if sfx == "_expost" else sfx[1:]
        return str(metrics.get("sampler") or "prior")
    return str(options.get(name, metrics.get(name, config.get(name))))


def sampler_suffix(metric: str, metrics: Mapping[str, Any] | None = None) -> str:
    """The sampler suffix of a sample metric's key (``"_expost"`` for ``kid_expost``;
    ``""`` for the prior's plain keys): the longest suffix of a registered sampler,
    or of a sampler the run stored values for (``fid<suffix>_sampler``), that
    ``metric`` ends with."""
    suffixes = {s.key_suffix for s in sampler_specs()}
    for key in metrics or {}:
        if key.startswith("fid_") and key.endswith("_sampler"):
            suffixes.add(key[len("fid") : -len("_sampler")])
    for sfx in sorted(suffixes - {""}, key=len, reverse=True):
        if metric.endswith(sfx) and len(metric) > len(sfx):
            return sfx
    return ""


def objective_options(model: str) -> tuple[tuple[str, str], ...]:
    """The (option, label) pairs that name ``model``'s objective; none for a model
    that is no longer registered."""
    registry = get_plugins().models
    return registry.get(model).objective_options if model in registry else ()


def same(a: Any, b: Any) -> bool:
    """Equal as stored JSON values (``1`` and ``1.0`` are; ``1`` and ``True`` are not)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def split_text(split: Sequence[tuple[str, Any]], short: bool = True, column: str = "") -> str:
    """``inception, n=10000``: the values a split column is restricted to.

    Text values are shown as they are (``short``: up to their first ``:``); a
    key ending in ``_samples`` reads ``n=``; any other value ``name=value``,
    without the metric's prefix (``dci_estimators`` of ``dci_completeness``
    reads ``estimators=``); missing values are left out.
    """
    head = column.split("_")[0] + "_" if column else ""
    parts = []
    for key, value in split:
        if value is None:
            continue
        if isinstance(value, str):
            parts.append(value.split(":")[0] if short else value)
        elif key.endswith("_samples"):
            parts.append(f"n={value}")
        else:
            name = key[len(head) :] if head and key.startswith(head) else key
            parts.append(f"{name}={value}")
    return ", ".join(parts)


def _split_key(spec: MetricColumn, values: Sequence[Any]) -> str:
    return ":".join([spec.key, *("unknown" if v is None else str(v) for v in values)])


def is_detail(key: str, specs: Sequence[MetricSpec]) -> bool:
    """Whether metrics.json key ``key`` is stored beside the results rather than one:
    a metric's declared detail, one of its split_by keys or budget options, or a
    ``<metric>_...`` value of a registered metric (``fid_reference``)."""
    if any(key in s.details for s in specs):
        return True
    if any(key in c.split_by for s in specs for c in s.columns):
        return True
    if any(key == o.name for s in specs for o in s.options):
        return True
    return any(key.startswith(f"{s.name}_") for s in specs)


def unknown_keys(
    metrics: Iterable[Mapping[str, Any]], specs: Sequence[MetricSpec]
) -> tuple[list[str], set[str]]:
    """Numeric keys no registered column declares and that are not details, sorted;
    and those of them whose values are all integers."""
    declared = {c.key for s in specs for c in s.columns}
    found: dict[str, bool] = {}
    for m in metrics:
        for key, value in m.items():
            if key in declared or number(value) is None or is_detail(key, specs):
                continue
            found[key] = found.get(key, True) and isinstance(value, int)
    keys = sorted(found)
    return keys, {k for k in keys if found[k]}


def unknown_column(key: str, integer: bool = False) -> Column:
    """The generic column of a value no installed metric declares: never ranked."""
    return Column(
        key=key,
        metric=key,
        label=key,
        definition=f"Metric {key!r}, declared by no installed metric (direction unknown, "
        "not ranked)",
        integer=integer,
        registered=False,
    )


def columns_for(
    records: Sequence[RunRecord], specs: Sequence[MetricSpec] | None = None
) -> list[Column]:
    """The columns for these (finished) runs: those with a value in some run."""

    specs = list(metric_specs() if specs is None else specs)
    columns: list[Column] = []
    for metric, spec in ((s, c) for s in specs for c in s.columns):
        source = metric.name
        having = [r for r in records if number((r.metrics or {}).get(spec.key)) is not None]
        if not having:
            continue
        base: dict[str, Any] = {
            "metric": spec.key,
            "label": spec.label,
            "unit": spec.unit,
            "direction": spec.direction,
            "definition": spec.definition,
            "group": spec.group or UNKNOWN_GROUP,
            "integer": spec.integer,
            "compare_by": COMPARE_BY.get(spec.group or UNKNOWN_GROUP, ()),
            "source": source,
            "applies": spec.applies_text
            or (metric.applies_text if metric.applies_to is not None else ""),
        }
        if not spec.split_by:
            columns.append(Column(key=spec.key, **base))
            continue
        splits: dict[str, tuple[tuple[str, Any], ...]] = {}
        details: dict[str, set[str]] = {}
        for r in having:
            m = r.metrics or {}
            values = [m.get(k) for k in spec.split_by]
            key = _split_key(spec, values)
            splits.setdefault(key, tuple(zip(spec.split_by, values, strict=True)))
            for k in spec.split_by:  # e.g. fid_extractor_detail
                if m.get(f"{k}_detail"):
                    details.setdefault(key, set()).add(str(m[f"{k}_detail"]))
        for key in sorted(splits):
            columns.append(
                Column(
                    key=key,
                    split=splits[key],
                    details="; ".join(sorted(details.get(key, ()))),
                    **base,
                )
            )
    keys, integers = unknown_keys((r.metrics or {} for r in records), specs)
    unknown = [unknown_column(k, k in integers) for k in keys]
    columns.sort(key=lambda c: _group_rank(c.group))  # stable: registry order within a group
    at = next((i for i, c in enumerate(columns) if c.group == LAST_GROUP), len(columns))
    columns[at:at] = unknown
    return mark_leads(columns)


def _group_rank(group: str) -> int:

    order = [g for g in GROUPS if g != LAST_GROUP] + [LAST_GROUP]
    return order.index(group) if group in order else len(order)


def mark_leads(columns: Sequence[Column]) -> list[Column]:
    """``lead`` set on the first ranked column of each metric (all its split variants
    and its twins for the other samplers: ``fid_expost``, ``fid_twostage``, ... lead
    with ``fid``), for at most :data:`LEADS_PER_GROUP` metrics a group; a group
    without a ranked column leads with its first column."""
    from dataclasses import replace

    leads: dict[str, dict[str, str]] = {}  # group -> {metric spec: lead column's metric}
    for col in columns:
        if col.direction is None:
            continue
        chosen = leads.setdefault(col.group, {})
        source = col.source or col.metric
        if source not in chosen and len(chosen) < LEADS_PER_GROUP:
            chosen[source] = col.metric
    for col in columns:
        leads.setdefault(col.group, {col.source or col.metric: col.metric})

    def base(metric: str) -> str:  # the key without its sampler suffix: fid_expost -> fid
        sfx = sampler_suffix(metric)
        return metric[: -len(sfx)] if sfx else metric

    def lead(col: Column) -> bool:  # a sampler's twin column (fid_expost) leads with fid
        chosen = leads[col.group].values()
        return col.metric in chosen or base(col.metric) in {base(m) for m in chosen}

    return [replace(c, lead=lead(c)) for c in columns]
