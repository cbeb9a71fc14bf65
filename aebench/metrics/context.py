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
from aebench.models.density import fit_gmm, sample_gmm

if TYPE_CHECKING:
    from aebench.datasets.base import ImageSet
    from aebench.models.base import AutoEncoder
    from aebench.specs import MetricSpec

NOT_APPLICABLE = "not_applicable"
"""metrics.json key listing the columns that do not apply to the run."""
EXPOST_FIT_IMAGES = 10000
"""Training images whose latent means fit ex-post densities (the evaluation's
``expost`` sampler and, in :mod:`aebench.execute`, a model's own fitted prior)."""
EXPOST_COMPONENTS = 10
"""Components of the ex-post Gaussian mixture (the AE's default prior)."""


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
        if "expost" not in self.cache:
            weights, means, chol = fit_gmm(self.latents("train"), EXPOST_COMPONENTS)
            dev, dtype = self.model.device, torch.float32
            self.cache["expost"] = (
                weights.to(dev, dtype),
                means.to(dev, dtype),
                chol.to(dev, dtype),
            )
        weights, means, chol = self.cache["expost"]
        return lambda n, generator: sample_gmm(weights, means, chol, n, generator)


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
