"""A Gaussian mixture fitted on latent codes, and sampling from it in torch.

The deterministic AE samples from such a density (its ``prior``), and the
evaluation samples every model from one (the "ex-post" sampler of Ghosh et
al. 2020), so that families can be compared sampler for sampler. Fitting is
scikit-learn's ``GaussianMixture`` (full covariances, ``random_state=0``);
sampling is pure torch, seeded by the caller's generator.
"""

from __future__ import annotations

import numpy as np
import torch

from aebench.threads import single_threaded


def fit_gmm(
    latents: torch.Tensor, components: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weights ``(K,)``, means ``(K, d)``, Cholesky factors ``(K, d, d)``), float64, CPU."""
    from sklearn.mixture import GaussianMixture

    z = latents.detach().to("cpu", torch.float64).numpy()
    if z.ndim != 2:
        raise ValueError(f"expected latents of shape (N, d), got {tuple(z.shape)}")
    if z.shape[0] < max(components, 2):
        raise ValueError(
            f"a {components}-component mixture needs at least {max(components, 2)} latents, "
            f"got {z.shape[0]}"
        )
    with single_threaded():  # 4x faster on small problems (see aebench.threads)
        gmm = GaussianMixture(components, covariance_type="full", random_state=0).fit(z)
    chol = np.linalg.cholesky(gmm.covariances_)
    return (
        torch.as_tensor(gmm.weights_),
        torch.as_tensor(gmm.means_),
        torch.as_tensor(chol),
    )


def sample_gmm(
    weights: torch.Tensor,
    means: torch.Tensor,
    scale_tril: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` draws ``(n, d)`` on ``means``' device. The randomness is drawn on the
    generator's device, so a CPU generator gives the same draws whatever device
    the mixture lives on."""
    device = means.device
    where = generator.device if generator is not None else device
    comp = torch.multinomial(weights.to(where), n, replacement=True, generator=generator)
    comp = comp.to(device)
    eps = torch.randn(n, means.shape[1], 1, generator=generator, device=where).to(device)
    return means[comp] + (scale_tril[comp] @ eps).squeeze(-1)
