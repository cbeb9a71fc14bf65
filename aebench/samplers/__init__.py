"""Samplers: where the latents of a model's generated samples come from.

Each sampler is a plugin registering a :class:`aebench.specs.SamplerSpec` through the
``register_samplers`` hook; :mod:`aebench.samplers.base` holds what they share.
The built-in ones: ``prior`` (the model's own prior), ``expost`` (a Gaussian
mixture fitted on training latent means), ``twostage`` (a second VAE trained on
them, Dai & Wipf 2019) and ``codes`` (an autoregressive prior over a discrete
model's codes). The sample metrics (:mod:`aebench.metrics.fid`,
:mod:`aebench.metrics.samples`) compute their values once per sampler.
"""
