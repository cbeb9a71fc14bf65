"""The one contract every model follows, built-in or third-party.

A model is a :class:`torch.nn.Module` subclass of :class:`AutoEncoder`. What it
*computes*:

* ``encode(x)``: an :class:`Encoding` (latent mean; the log-variance of a
  Gaussian encoder; the code indices of a discrete one);
* ``decode(z)``: images in [0, 1] (the mean of the likelihood);
* ``loss_terms(x)``: the **per-image evaluation terms**, tensors of shape
  ``(B,)`` in nats that depend on each image alone (never on the other images
  of the batch): ``recon`` (-log p(x|z), required), ``reg`` (the per-image
  regulariser named by ``regulariser``, e.g. the KL) and ``total`` (the
  per-image objective, only when the objective *is* a mean of per-image values);
* ``objective(x, step)``: the **training objective**, one batch-level scalar
  (default ``loss_terms(x)["total"].mean()``) and the scalars to log;
* ``batch_terms(x)``: batch-level quantities the family wants reported (total
  correlation, MMD, a discriminator's accuracy), declared in ``batch_columns``
  and measured at a fixed, recorded evaluation batch size;
* ``reconstruct(x)``, ``sample(n)``, ``fit_prior(latents)`` (after training),
  ``log_prior(z)`` (the model's own prior density) and ``log_likelihood(x, k)``.

How it *trains* (the Lightning pattern; the defaults are one Adam and
``objective``): ``configure_optimizers(lr)``, ``on_train_start(train_size,
first_batch)`` and ``training_step(x, step, optimizers)``, given a
:class:`StepInfo` (step, epoch, steps per epoch), so alternating optimisers,
parameter groups, warm-up and annealing live in the family.

What it *declares* (class attributes the metrics and the leaderboard read):
``objective_name`` (the leaderboard compares and marks best only within one),
``bound`` (the per-image terms whose sum bounds -log p(x): bits/dim),
``latent_kind`` (``gaussian``, ``deterministic`` or ``discrete``),
``objective_group`` (which families it is read beside: :data:`OBJECTIVE_GROUPS`),
``has_prior`` and ``samplers``. The plugin guide (README) lists what each one
changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from aebench.errors import ConfigError, did_you_mean
from aebench.options import convert, field_types, jsonable

if TYPE_CHECKING:
    from aebench.specs import MetricColumn

LIKELIHOODS = ("bernoulli", "gaussian")
LATENT_KINDS = ("gaussian", "deterministic", "discrete")
OBJECTIVE_GROUPS: dict[str, tuple[str, str]] = {
    "likelihood": (
        "Likelihood bounds",
        "the objective is a bound on -log p(x) (the ELBO; the k-sample IWAE bound; the ELBO "
        "under a VampPrior): losses, bits/dim and NLL compare directly",
    ),
    "penalised": (
        "Weighted and penalised ELBOs",
        "the ELBO with its KL reweighted, split or penalised (the disentanglement families): "
        "each family's loss is its own objective; NLL, reconstructions and samples compare",
    ),
    "variational": (
        "Other variational families",
        "Gaussian posteriors whose family declares no objective group",
    ),
    "deterministic": (
        "Deterministic autoencoders",
        "codes without a posterior or prior (plain, regularised, Wasserstein): no NLL or KL; "
        "samples come from a density fitted to the codes after training",
    ),
    "discrete": (
        "Discrete codes",
        "codes from a learned codebook: no likelihood bound without a prior over codes; "
        "samples come from a code prior learned after training",
    ),
}
"""Objective groups: ``name: (title, what its members share)``. A family declares
its group (:attr:`AutoEncoder.objective_group`); the leaderboard and
``benchmarks/zoo_tables.py`` show each group's families together, so a family is
read beside the families whose training objective means the same thing."""
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class StepInfo:
    """Where training stands, given to ``objective`` and ``training_step``.

    ``step``: optimisation steps taken before this one (0-based, over the run);
    ``epoch``: 1-based; ``steps_per_epoch`` and ``epochs``: the schedule;
    ``train_size``: images in the training set (N, e.g. for β-TCVAE's
    minibatch-weighted sampling).
    """

    step: int
    epoch: int
    steps_per_epoch: int
    epochs: int
    train_size: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def progress(self) -> float:
        """Fraction of training done before this step, in [0, 1) (for warm-ups)."""
        return self.step / max(self.total_steps, 1)


@dataclass
class ModelConfig:
    """Settings every family shares. Families subclass it and add only their own.

    ``likelihood``: ``"bernoulli"`` (binary cross-entropy, the usual choice for
    [0, 1] grayscale) or ``"gaussian"`` (squared error with fixed variance
    ``gaussian_var``; 0.5 makes the reconstruction term equal the summed
    squared error plus a constant, the "MSE + KL" objective of many VAE
    tutorials). ``hidden_dims``: ``None`` keeps the architecture's default
    (MLP ``(512, 256)``; CNN ``(32, 64, 128)``: two conv channel counts, then
    the dense width).
    """

    latent_dim: int = field(default=16, metadata={"help": "size of the latent code"})
    likelihood: str = field(
        default="bernoulli",
        metadata={"help": "reconstruction likelihood: bernoulli (BCE) or gaussian (MSE)"},
    )
    gaussian_var: float = field(
        default=0.5, metadata={"help": "fixed variance of the gaussian likelihood"}
    )
    hidden_dims: tuple[int, ...] | None = field(
        default=None,
        metadata={"help": "hidden sizes: MLP widths (512,256) or CNN (conv1,conv2,dense)"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.hidden_dims, list):
            self.hidden_dims = tuple(self.hidden_dims)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` with one line naming a bad value."""
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be a positive integer, got {self.latent_dim!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}"
            )
        if not self.gaussian_var > 0:
            raise ConfigError(f"gaussian_var must be > 0, got {self.gaussian_var!r}")
        if self.hidden_dims is not None and (
            not self.hidden_dims or any(int(h) < 1 for h in self.hidden_dims)
        ):
            raise ConfigError(f"hidden_dims must be positive integers, got {self.hidden_dims!r}")

    @classmethod
    def from_options(cls, **options: Any) -> ModelConfig:
        """Build from keyword options: text (``"0.5"``) or values, converted to each
        field's type; an unknown name is an error that suggests the closest one."""

        types = field_types(cls)
        values = {}
        for name, value in options.items():
            if name not in types:
                hint = did_you_mean(name, types)
                raise ConfigError(
                    f"{cls.__name__} has no option {name!r}{hint}; options: {', '.join(types)}"
                )
            values[name] = convert(name, value, types[name])
        return cls(**values)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-shaped (tuples as lists)."""

        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}


class Encoding(NamedTuple):
    """What ``encode`` returns: latent means ``(B, d)``; for a Gaussian encoder the
    log-variances ``(B, d)``; for a discrete one the code indices ``(B, P)`` (``mean``
    is then the quantised vector the decoder reads)."""

    mean: torch.Tensor
    logvar: torch.Tensor | None = None
    codes: torch.Tensor | None = None


def recon_nats(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str, gaussian_var: float = 0.5
) -> torch.Tensor:
    """-log p(x | z) per image in nats, summed over pixels.

    ``logits`` are the decoder's pre-sigmoid outputs (any shape ``(B, ...)``).
    Bernoulli: binary cross-entropy with logits. Gaussian: the decoder mean is
    ``sigmoid(logits)``, variance fixed at ``gaussian_var``, and the
    normalising constant is included so the value is a true negative
    log-density.
    """
    b = x.shape[0]
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return nll.reshape(b, -1).sum(1)
    if likelihood == "gaussian":
        sq = (torch.sigmoid(logits) - x).pow(2).reshape(b, -1)
        d = sq.shape[1]
        return 0.5 * sq.sum(1) / gaussian_var + 0.5 * d * math.log(2 * math.pi * gaussian_var)
    raise ConfigError(f"unknown likelihood {likelihood!r}")


class AutoEncoder(nn.Module):
    """Base class of every model. Subclasses set ``family`` and implement ``encode``,
    ``decode_logits``, ``loss_terms`` and ``sample``; everything else has a default
    that is today's VAE-style training (one Adam on ``loss_terms(x)["total"].mean()``).
    """

    family: ClassVar[str] = ""
    regulariser: ClassVar[str] = "none"
    """Name of the per-image ``reg`` term (``"kl"``; ``"none"`` when there is none)."""
    objective_name: ClassVar[str] = ""
    """The objective the model trains (``"ELBO"``, ``"reconstruction"``, ``"β-TC ELBO"``):
    the leaderboard compares losses and marks best only between runs with the same
    objective (and the same values of the spec's ``objective_options``). Empty: the
    ``regulariser``."""
    bound: ClassVar[tuple[str, ...]] = ()
    """Per-image terms of ``loss_terms`` whose sum is an upper bound on -log p(x) in
    nats (a VAE: ``("recon", "reg")``, the negative ELBO); bits/dim is computed from
    it. Empty: the model has no likelihood bound and bits/dim does not apply."""
    latent_kind: ClassVar[str] = "gaussian"
    """``"gaussian"`` (``encode`` gives means and log-variances), ``"deterministic"``
    (codes only) or ``"discrete"`` (code indices; see :meth:`latents_from_codes`).
    Latent metrics and samplers apply by kind."""
    objective_group: ClassVar[str | None] = None
    """Which :data:`OBJECTIVE_GROUPS` entry the family belongs to (``"likelihood"`` for a
    VAE, ``"penalised"`` for a β-VAE). None: from ``latent_kind`` (``deterministic``,
    ``discrete``; ``variational`` for Gaussian latents). It holds for the
    ``objective_name`` declared beside it: a subclass that changes the objective
    declares its own group or gets the default (a β-VAE is not in the VAE's)."""
    has_prior: ClassVar[bool] = True
    """Whether ``sample`` draws from a prior the model was trained with (VAE: N(0, I));
    False when it draws from a density fitted after training (a plain AE)."""
    samplers: ClassVar[tuple[str, ...] | None] = None
    """The samplers it is evaluated with (``aebench samplers``); None: every
    registered sampler that applies to its latent kind."""
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = ()
    """Columns of the values ``batch_terms`` returns: key ``test_<name>`` for each
    returned ``<name>``, measured on the test split in fixed-size batches."""

    def __init__(self, config: ModelConfig, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        self.input_shape = cast("tuple[int, int, int]", tuple(int(s) for s in input_shape))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @classmethod
    def group(cls) -> str:
        """The family's objective group: the ``objective_group`` declared with its
        objective, else from ``latent_kind``. A declaration holds for the objective it
        was declared beside: a subclass that names another ``objective_name`` without
        declaring a group is not in its parent's (a VAE subclass with a penalty is no
        longer a likelihood bound)."""
        for klass in cls.__mro__:
            own = vars(klass)
            if "objective_group" in own or "objective_name" in own:
                if own.get("objective_group"):
                    return str(own["objective_group"])
                break
        return cls.latent_kind if cls.latent_kind != "gaussian" else "variational"

    @classmethod
    def objective_label(cls) -> str:
        """``objective_name``, else the regulariser's name (what older runs stored)."""
        return cls.objective_name or cls.regulariser

    # -- what it computes -----------------------------------------------------
    def encode(self, x: torch.Tensor) -> Encoding:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid decoder output, shape ``(B, C, H, W)``."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1]: the mean of the likelihood."""
        return torch.sigmoid(self.decode_logits(z))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image evaluation terms in nats, each ``(B,)``: ``recon`` and, where they
        exist per image, ``reg`` and ``total``. Each image's values must not depend
        on the other images of the batch (the conformance kit checks it)."""
        raise NotImplementedError

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the batch's training objective, a scalar to minimise; scalars to log).

        ``step`` is None outside training (validation): a family with a warm-up
        then returns its final objective. The default is the batch mean of the
        per-image ``total`` and the means of the other terms."""
        terms = self.loss_terms(x)
        logs = {k: v.mean() for k, v in terms.items() if k != "total"}
        return terms["total"].mean(), logs

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch-level scalars declared in ``batch_columns`` (default: none)."""
        return {}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the latent mean of ``x``: deterministic, in [0, 1]."""
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] decoded from draws of the model's prior."""
        raise NotImplementedError

    def fit_prior(self, latents: torch.Tensor) -> None:
        """Fit a sampling density on training latent means (no-op when the prior is fixed)."""

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per row of ``z`` ``(B, d)`` under the model's own prior (default
        N(0, I)). A model that overrides it has a prior other than N(0, I): the
        per-dimension KL and the collapse fraction, defined against N(0, I), do
        not apply to it."""
        return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)

    def latents_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Discrete models: the latent vectors ``(B, d)`` the decoder reads for code
        indices ``(B, P)`` (what ``encode(x).mean`` is for ``encode(x).codes``)."""
        raise NotImplementedError(f"{type(self).__name__} has no discrete codes")

    @property
    def num_codes(self) -> int:
        """Discrete models: the codebook size K (code indices lie in ``[0, K)``)."""
        raise NotImplementedError(f"{type(self).__name__} has no discrete codes")

    @property
    def prior_description(self) -> str:
        """How ``sample`` draws latents, recorded next to sample-based metrics."""
        return "N(0, I)"

    def log_likelihood(self, x: torch.Tensor, k: int = 100) -> torch.Tensor | None:
        """Importance-sampled lower bound on log p(x) per image (nats), or None."""
        return None

    def recon_nats(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return recon_nats(logits, x, self.config.likelihood, self.config.gaussian_var)

    # -- how it trains ----------------------------------------------------------
    def configure_optimizers(self, lr: float) -> Sequence[torch.optim.Optimizer]:
        """The optimisers ``training_step`` receives, in order (default: one Adam over
        every parameter at the run's ``--lr``). Parameter groups, weight decay and a
        second optimiser (a discriminator's) go here."""
        return [torch.optim.Adam(self.parameters(), lr=lr)]

    def on_train_start(self, train_size: int, first_batch: torch.Tensor) -> None:
        """Called once before the first step with the training-set size and the first
        training batch (data-dependent initialisation: codebooks, pseudo-inputs)."""

    def training_step(
        self,
        x: torch.Tensor,
        step: StepInfo,
        optimizers: Sequence[torch.optim.Optimizer],
    ) -> dict[str, torch.Tensor]:
        """One optimisation step on batch ``x``; returns detached scalars to log, with
        ``"total"`` (the objective; the loop checks it stays finite). Default: one
        step of ``optimizers[0]`` on :meth:`objective`."""
        return default_step(self.objective, x, step, optimizers[0])


def default_step(
    objective: Any, x: torch.Tensor, step: StepInfo | None, optimizer: torch.optim.Optimizer
) -> dict[str, torch.Tensor]:
    """Zero the gradients, back-propagate ``objective(x, step)``, step ``optimizer``."""
    optimizer.zero_grad(set_to_none=True)
    loss, logs = objective(x, step)
    loss.backward()
    optimizer.step()
    return {"total": loss.detach(), **{k: v.detach() for k, v in logs.items()}}


def overrides(model: AutoEncoder, method: str) -> bool:
    """Whether ``model``'s class replaces :class:`AutoEncoder`'s ``method``."""
    return getattr(type(model), method) is not getattr(AutoEncoder, method)
