"""The metric contract: what a metric function receives, and how a metric module registers.

A metric is one module with a function ``fn(ctx: EvalContext) -> dict`` and a
``register_metrics`` hook (``register_metrics = hook(METRIC)``) registering a
:class:`aebench.MetricSpec`. :class:`EvalContext` carries the trained model, the
data and the budgets, and computes what several metrics share once per evaluation
(latent encodings, fitted samplers, generated samples).

This module sits below the built-in metric modules and the plugin manager: it
knows no registry. :mod:`aebench.metrics.evaluate` runs the registered metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from aebench.hookspecs import registering
from aebench.images import to_uint8
from aebench.metrics._util import encode_all, eval_mode
from aebench.progress import Stage
from aebench.samplers.base import LatentDraw, select

if TYPE_CHECKING:
    from aebench.datasets.base import ImageSet
    from aebench.models.base import AutoEncoder
    from aebench.specs import MetricSpec, SamplerSpec

NOT_APPLICABLE = "not_applicable"
"""metrics.json key listing the columns that do not apply to the run."""
EXPOST_FIT_IMAGES = 10000
"""Training images whose latent means fit ex-post densities (the evaluation's
samplers and, in :mod:`aebench.execute`, a model's own fitted prior)."""


@dataclass(frozen=True)
class MetricSetup:
    """What a metric's ``check`` and ``prepare`` steps receive, once for each dataset
    (and metric settings) of a benchmark, before any cell trains.

    ``train`` and ``test`` are the dataset's published splits; ``options`` are
    the metric budgets of the cells that use them (every option, resolved);
    ``on_event`` takes progress events (:mod:`aebench.progress`) for long work.
    """

    dataset: str
    train: ImageSet
    test: ImageSet
    options: Mapping[str, Any]
    on_event: Callable[[Any], None]


@dataclass
class EvalContext:
    """Everything a metric function ``fn(context)`` receives, in one object.

    ``train``: the run's training images (the linear probe's fit set);
    ``test``: the test split; ``reference_train``: the dataset's full published
    train split (what the offline FID extractor is trained on, so every run on
    a dataset shares one extractor); ``options``: every metric budget, resolved
    (:func:`aebench.catalog.resolve_metric_options`); ``cache``: shared by the metrics of one
    evaluation (for instance the generated samples, drawn once); ``on_event``:
    where :func:`evaluate` reports which metric it is computing;
    ``sampler_specs``: the registered samplers (:class:`~aebench.specs.SamplerSpec`),
    which :func:`~aebench.metrics.evaluate.evaluate` and
    :func:`~aebench.metrics.evaluate.make_context` fill in (this module knows no
    registry); :meth:`samplers` says which of them apply to the model.
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
    sampler_specs: tuple[SamplerSpec, ...] | None = None

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.dataset = self.dataset or self.test.name
        if self.reference_train is None:
            self.reference_train = self.train

    def option(self, name: str) -> Any:
        """A metric budget option by name (see ``aebench metrics``); :func:`evaluate`
        and :func:`~aebench.metrics.evaluate.make_context` fill in every option."""
        try:
            return self.options[name]
        except KeyError:
            known = ", ".join(sorted(self.options)) or "none set"
            raise KeyError(f"no metric option {name!r} in this context; options: {known}") from None

    # -- what several metrics share, computed once per evaluation ------------------
    def encodings(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor | None]:
        """(latent means, log-variances or None) of ``split`` ("train": its first
        :data:`EXPOST_FIT_IMAGES` images; "test": all), float32 on the CPU, cached."""
        key = f"encodings:{split}"
        if key not in self.cache:
            data = self.train.subset(slice(0, EXPOST_FIT_IMAGES)) if split == "train" else self.test
            self.cache[key] = encode_all(self.model, data, self.device)
        return self.cache[key]

    def latents(self, split: str = "test") -> torch.Tensor:
        """Latent means of ``split`` (see :meth:`encodings`)."""
        return self.encodings(split)[0]

    def samplers(self) -> tuple[str, ...]:
        """Names of the samplers this model is evaluated with: the registered ones that
        apply to it (``prior`` where it has one, ``expost`` and ``twostage`` for
        continuous latents, ``codes`` for discrete ones), limited to
        ``model.samplers`` when it names some (:func:`aebench.samplers.base.select`)."""
        return tuple(s.name for s in self._applicable())

    def _applicable(self) -> tuple[SamplerSpec, ...]:
        if self.sampler_specs is None:
            raise ValueError(
                "this EvalContext has no sampler_specs: build it with "
                "aebench.metrics.evaluate.make_context, or run it through evaluate()"
            )
        return select(self.sampler_specs, self.model)

    def sampler(self, name: str) -> SamplerSpec:
        """The spec of sampler ``name``; a ValueError when it does not apply here."""
        for spec in self._applicable():
            if spec.name == name:
                return spec
        known = {s.name for s in self.sampler_specs or ()}
        what = "does not apply to" if name in known else "is not a registered sampler for"
        raise ValueError(
            f"sampler {name!r} {what} {type(self.model).__name__} "
            f"(its samplers: {', '.join(self.samplers()) or 'none'})"
        )

    def sampler_description(self, sampler: str) -> str:
        """What ``sampler``'s samples of this model are drawn from (stored beside each
        value as ``fid<suffix>_sampler``)."""
        return self.sampler(sampler).description_for(self.model)

    def sampler_draw(self, sampler: str) -> LatentDraw | None:
        """``sampler`` fitted on this model (once per evaluation): its latent draw
        function, or None where it is the model's own ``sample``."""
        key = f"sampler:{sampler}"
        if key not in self.cache:
            spec = self.sampler(sampler)
            if self.on_event is not None:
                self.on_event(Stage(f"fitting the {spec.label} sampler"))
            self.cache[key] = spec.fit(self)
        return self.cache[key]

    def samples(self, n: int, sampler: str = "model") -> torch.Tensor:
        """``n`` uint8 samples, seeded with ``seed``, drawn once per evaluation and sampler.

        ``"model"``: ``model.sample``; otherwise one of :meth:`samplers`: the latents
        its fitted draw function gives, decoded (those of a sampler that is the
        model's own ``sample``, such as ``prior``, are ``model.sample``'s, drawn once).
        """
        draw = None if sampler == "model" else self.sampler_draw(sampler)
        key = "samples:model" if draw is None else f"samples:{sampler}"
        cached = self.cache.get(key)
        if cached is None or len(cached) < n:
            cached = generate_samples(self.model, n, seed=self.seed, latents=draw)
            self.cache[key] = cached
        return cached[:n]


def hook(*specs: MetricSpec) -> Callable[[Callable[[MetricSpec], None]], None]:
    """A ``register_metrics`` hook implementation registering ``specs``: a metric
    module ends with ``register_metrics = hook(METRIC)``."""
    return registering("register_metrics", *specs)


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
