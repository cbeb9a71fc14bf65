"""Evaluation of a trained model: the metric contract, the evaluation, the built-in metrics.

The framework:

* :mod:`aebench.metrics.context`: :class:`~aebench.metrics.context.EvalContext`,
  what every metric function receives, and ``hook`` for a metric module's
  registration;
* :mod:`aebench.metrics._util`: helpers the metrics share (eval mode, seeded
  noise, latent encodings, per-image loss terms, fixed evaluation subsets);
* :mod:`aebench.metrics.evaluate`: ``evaluate`` runs every applicable
  registered metric on one context.

The built-in metrics are plugins like any other, one module each: ``losses``
(loss terms, bits/dim), ``reconstruction`` (MSE, PSNR, SSIM as scikit-image
defines them, computed by ``image``), ``fid`` (torch-fidelity, Inception or an
offline classifier), ``samples`` (KID, precision/recall, density/coverage,
novelty on FID's features), ``nll`` (IWAE bound), ``probe`` (linear probe on
latent means), ``latent`` (latent health), ``disentanglement`` (MIG, DCI, SAP,
FactorVAE score) and ``cost`` (wall times, written by the run itself).

The registry queries (``metric_specs``, ``column_specs``, ...) are in
:mod:`aebench.catalog`. This package's ``__init__`` imports nothing, so a
built-in metric module can be imported without the rest.
"""
