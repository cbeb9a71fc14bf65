"""Evaluation of a trained model: the metrics registry and :func:`evaluate`.

Every metric, built-in or from a plugin, is one module that registers a
:class:`aebench.MetricSpec` through the ``register_metrics`` hook. The spec
says which numbers it writes (:class:`aebench.specs.MetricColumn`: label,
unit, direction, one-line definition), which runs it applies to, and its
sample budgets (:class:`aebench.specs.MetricOption`, with per-profile
defaults). The results table, the leaderboard, ``aebench metrics`` and the
README's metric table are all generated from these specs.

Built-in metrics (one module each): ``losses`` (loss terms, bits/dim),
``reconstruction`` (MSE, PSNR, SSIM as scikit-image defines them, also per
class, computed by ``image``), ``fid`` (torch-fidelity, Inception or an
offline classifier), ``nll`` (IWAE bound), ``probe`` (linear probe on latent
means) and ``cost`` (wall times, written by the runner).

:func:`evaluate` takes one :class:`EvalContext` and runs every applicable
metric on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from aebench.datasets.base import ImageSet
    from aebench.models.base import AutoEncoder
    from aebench.specs import MetricColumn, MetricOption, MetricSpec

__all__ = [
    "EvalContext",
    "column_specs",
    "evaluate",
    "generate_samples",
    "hook",
    "import_libraries",
    "markdown",
    "metric_specs",
    "option_specs",
    "resolve_options",
]

NOT_APPLICABLE = "not_applicable"
"""metrics.json key listing the columns that do not apply to the run."""
LATENT_POINTS = 10000
"""Training images whose latent means fit ex-post densities (as the AE's own prior)."""
EXPOST_COMPONENTS = 10
"""Components of the ex-post Gaussian mixture (the AE's default prior)."""


@dataclass
class EvalContext:
    """Everything a metric function ``fn(context)`` receives, in one object.

    ``train``: the run's training images (the linear probe's fit set);
    ``test``: the test split; ``reference_train``: the dataset's full published
    train split (what the offline FID extractor is trained on, so every run on
    a dataset shares one extractor); ``options``: every metric budget, resolved
    (:func:`resolve_options`); ``cache``: shared by the metrics of one
    evaluation (for instance the generated samples, drawn once); ``on_event``:
    where :func:`evaluate` reports which metric it is computing.
    """

    model: AutoEncoder
    train: ImageSet
    test: ImageSet
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    dataset: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    reference_train: ImageSet | None = None
    batch_size: int = 500
    cache: dict[str, Any] = field(default_factory=dict)
    on_event: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.dataset = self.dataset or self.test.name
        if self.reference_train is None:
            self.reference_train = self.train

    @classmethod
    def create(
        cls,
        model: AutoEncoder,
        train: ImageSet,
        test: ImageSet,
        *,
        profile: str = "quick",
        **kwargs: Any,
    ) -> EvalContext:
        """A context whose metric options are ``profile``'s defaults, overridden by
        any metric option among ``kwargs`` (``fid_samples=0``, ``nll_k=16``); the
        other ``kwargs`` are fields (``device``, ``seed``, ``reference_train``)."""
        names = {f for f in cls.__dataclass_fields__}
        given = {k: v for k, v in kwargs.items() if k not in names}
        fields_ = {k: v for k, v in kwargs.items() if k in names}
        return cls(model, train, test, options=resolve_options(profile, given), **fields_)

    def option(self, name: str) -> Any:
        """A metric budget option by name (see ``aebench metrics``)."""
        try:
            return self.options[name]
        except KeyError:
            known = [o.name for o in option_specs()]
            if name in known:
                return next(o.default for o in option_specs() if o.name == name)
            raise KeyError(f"no metric option {name!r}; options: {', '.join(known)}") from None

    # -- what several metrics share, computed once per evaluation ------------------
    def encodings(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor | None]:
        """(latent means, log-variances or None) of ``split`` ("train": its first
        :data:`LATENT_POINTS` images; "test": all), float32 on the CPU, cached."""
        key = f"encodings:{split}"
        if key not in self.cache:
            from aebench.metrics._util import encode_all

            data = self.train.subset(slice(0, LATENT_POINTS)) if split == "train" else self.test
            self.cache[key] = encode_all(self.model, data, self.device)
        return self.cache[key]

    def latents(self, split: str = "test") -> torch.Tensor:
        """Latent means of ``split`` (see :meth:`encodings`)."""
        return self.encodings(split)[0]

    def samplers(self) -> tuple[str, ...]:
        """The samplers this model is evaluated with: ``"prior"`` (what it was trained
        to sample from) where it has one, and ``"expost"`` (a density fitted on its
        training latents) for every model."""
        return ("prior", "expost") if self.model.has_prior else ("expost",)

    def sampler_description(self, sampler: str) -> str:
        if sampler == "prior" or (sampler == "expost" and not self.model.has_prior):
            return self.model.prior_description
        return f"GaussianMixture({EXPOST_COMPONENTS}, full) fitted on training latent means"

    def samples(self, n: int, sampler: str = "model") -> torch.Tensor:
        """``n`` uint8 samples, seeded with ``seed``, drawn once per evaluation and sampler.

        ``"model"``: ``model.sample``; ``"prior"``: the same, for a model with a prior;
        ``"expost"``: decoded draws of a Gaussian mixture fitted on the training latent
        means (for a model without a prior, that is what ``model.sample`` does).
        """
        if sampler not in ("model", "prior", "expost"):
            raise ValueError(f"unknown sampler {sampler!r}")
        if sampler == "prior" and not self.model.has_prior:
            raise ValueError(f"{type(self.model).__name__} has no prior to sample from")
        own = sampler == "model" or sampler == "prior" or not self.model.has_prior
        key = "samples:model" if own else "samples:expost"
        cached = self.cache.get(key)
        if cached is None or len(cached) < n:
            if own:
                cached = generate_samples(self.model, n, seed=self.seed)
            else:
                cached = generate_samples(self.model, n, seed=self.seed, latents=self._expost())
            self.cache[key] = cached
        return cached[:n]

    def _expost(self) -> Callable[[int, torch.Generator], torch.Tensor]:
        from aebench.models.density import fit_gmm, sample_gmm

        if "expost" not in self.cache:
            weights, means, chol = fit_gmm(self.latents("train"), EXPOST_COMPONENTS)
            dev, dtype = self.model.device, torch.float32
            self.cache["expost"] = (
                weights.to(dev, dtype),
                means.to(dev, dtype),
                chol.to(dev, dtype),
            )
        density = self.cache["expost"]
        return lambda n, generator: sample_gmm(*density, n, generator)


# -- the registry ---------------------------------------------------------------
def hook(*specs: MetricSpec) -> Callable[[Callable[[MetricSpec], None]], None]:
    """A ``register_metrics`` hook implementation registering ``specs``: a metric
    module ends with ``register_metrics = hook(METRIC)``."""
    from aebench.hookspecs import hookimpl

    @hookimpl
    def register_metrics(register: Callable[[MetricSpec], None]) -> None:
        for spec in specs:
            register(spec)

    return register_metrics


def metric_specs() -> list[MetricSpec]:
    """Registered metrics (built-in and plugins), in column order."""
    from aebench.plugins import get_plugins

    specs = list(get_plugins().metrics)
    return sorted(specs, key=lambda s: s.order)  # stable: registration order within an order


def column_specs(specs: Iterable[MetricSpec] | None = None) -> list[MetricColumn]:
    """Every declared column, in order."""
    return [c for s in (metric_specs() if specs is None else specs) for c in s.columns]


def option_specs(specs: Iterable[MetricSpec] | None = None) -> list[MetricOption]:
    """Every metric budget option, in order."""
    return [o for s in (metric_specs() if specs is None else specs) for o in s.options]


def resolve_options(
    profile: str, given: Mapping[str, Any] | None = None, specs: Iterable[MetricSpec] | None = None
) -> dict[str, Any]:
    """Every metric option's value: ``given`` (converted and checked) else ``profile``'s default."""
    from aebench.options import unknown_name_error

    options = option_specs(specs)
    by_name = {o.name: o for o in options}
    for name in given or {}:
        if name not in by_name:
            raise unknown_name_error("metric option", name, by_name, "see `aebench metrics`")
    out = {}
    for opt in options:
        value = (given or {}).get(opt.name)
        out[opt.name] = opt.default_for(profile) if value is None else opt.convert(value)
    return out


def markdown(specs: Iterable[MetricSpec] | None = None) -> str:
    """The metric and budget tables of README.md ("How to read the numbers"), as Markdown.

    ``aebench metrics --markdown`` prints them; a test keeps the README equal to them.
    """
    from aebench.plan import PROFILES

    specs = metric_specs() if specs is None else list(specs)
    best = {"min": "↓ lower", "max": "↑ higher", None: "—"}
    lines = [
        "| column | label | unit | better | applies to | definition |",
        "|---|---|---|---|---|---|",
    ]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    for s in specs:
        for c in s.columns:
            cells = [
                f"`{c.key}`",
                c.label,
                c.unit or "—",
                best[c.direction],
                c.applies_text or s.applies_text,
                c.definition,
            ]
            lines.append("| " + " | ".join(cell(x) for x in cells) + " |")
    profiles = list(PROFILES)
    lines += [
        "",
        f"| budget | flag | {' | '.join(f'`{p}`' for p in profiles)} | meaning |",
        f"|---|---|{'---|' * len(profiles)}---|",
    ]
    for s in specs:
        for o in s.options:
            flag = f"`{o.flag}`" if o.flag else "—"
            values = " | ".join(str(o.default_for(p)) for p in profiles)
            lines.append(f"| `{o.name}` | {flag} | {values} | {cell(o.help)} |")
    return "\n".join(lines) + "\n"


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def generate_samples(
    model: AutoEncoder,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 1000,
    latents: Callable[[int, torch.Generator], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``n`` uint8 samples ``(n, C, H, W)`` on the CPU from ``model.sample`` (or, given
    ``latents(n, generator)``, from ``model.decode`` of those draws) with a generator
    seeded with ``seed`` (on the model's device); floats are quantised as
    ``round(255 x)``."""
    from aebench.images import to_uint8
    from aebench.metrics._util import eval_mode

    gen = torch.Generator(device=model.device).manual_seed(seed)
    out = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            x = model.sample(m, generator=gen) if latents is None else model.decode(latents(m, gen))
            if not torch.isfinite(x).all():
                raise FloatingPointError("model samples contain NaN or inf")
            out.append(to_uint8(x).cpu())
    return torch.cat(out)


def import_libraries() -> None:
    """Import the libraries the built-in metrics use: torch-fidelity (with the
    torchvision models it loads) and scikit-learn's estimators, about 2 s on a
    2-core CPU. The local executor calls it before its first in-process cell (its
    worker pool preloads it), so that this cost is not counted in the first run's
    ``eval_seconds``."""
    import sklearn.linear_model
    import sklearn.mixture  # noqa: F401
    import torch_fidelity  # noqa: F401


def evaluate(ctx: EvalContext, metrics: Iterable[MetricSpec] | None = None) -> dict[str, Any]:
    """Run every applicable metric on ``ctx``; a flat JSON-serialisable dict.

    ``metrics``: the specs to run (default: every registered one). A metric
    that does not apply to the run writes ``None`` for its columns and lists
    them under ``"not_applicable"``; so does a column whose own ``applies_to``
    says no. A metric with ``on_error="record"`` that raises is stored as
    ``"<name>_error"``; one with ``on_error="fail"`` fails the evaluation. A key
    that another metric already wrote is stored as ``"<name>.<key>"`` (no
    silent overwrite). Adds ``eval_timings`` (seconds per metric) and
    ``eval_seconds``. Deterministic given ``ctx.seed``.
    """
    specs = metric_specs() if metrics is None else list(metrics)
    _check_budgets(ctx, specs)
    out: dict[str, Any] = {}
    not_applicable: list[str] = []
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for spec in specs:
        if spec.fn is None:
            continue
        if spec.applies_to is not None and not spec.applies_to(ctx):
            for col in spec.columns:
                out[col.key] = None
                not_applicable.append(col.key)
            continue
        t = time.perf_counter()
        if ctx.on_event is not None:
            from aebench.progress import Stage

            ctx.on_event(Stage(f"evaluating: {spec.name}"))
        try:
            values = dict(spec.fn(ctx))
        except Exception as exc:
            if spec.on_error == "fail":
                raise
            out[f"{spec.name}_error"] = f"{type(exc).__name__}: {exc}"
            for col in spec.columns:
                out.setdefault(col.key, None)
            continue
        own = {c.key for c in spec.columns}
        for col in spec.columns:
            if col.applies_to is not None and not col.applies_to(ctx):
                values[col.key] = None
                not_applicable.append(col.key)
            values.setdefault(col.key, None)
        for key, value in values.items():
            target = key if key in own or key not in out else f"{spec.name}.{key}"
            out[target] = _jsonable(value)
        timings[spec.name] = round(time.perf_counter() - t, 4)
    out[NOT_APPLICABLE] = not_applicable
    out["eval_timings"] = timings
    out["eval_seconds"] = time.perf_counter() - started
    return out


def _check_budgets(ctx: EvalContext, specs: list[MetricSpec]) -> None:
    """Bad budget options fail before any metric runs."""
    for opt in option_specs(specs):
        value = ctx.options.get(opt.name)
        ctx.options[opt.name] = opt.default if value is None else opt.convert(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value
