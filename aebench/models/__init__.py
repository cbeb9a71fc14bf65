"""Model plugins: the contract (``base``), network bodies (``nets``), one module per family."""

from aebench.models.base import AutoEncoder, Encoding, ModelConfig, recon_nats

__all__ = ["AutoEncoder", "Encoding", "ModelConfig", "recon_nats"]
