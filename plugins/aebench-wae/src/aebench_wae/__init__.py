"""aebench-wae: the Wasserstein autoencoder (WAE-MMD) as an aebench model plugin.

Registers ``wae-mlp`` and ``wae-cnn`` (family ``wae``, regulariser ``mmd``)
through the ``register_models`` hook; aebench finds this module through the
entry point ``[project.entry-points.aebench] wae = "aebench_wae"``.
"""

from __future__ import annotations

from collections.abc import Callable

from aebench import hookimpl
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench_wae.mmd import imq_kernel, mmd
from aebench_wae.model import WAE, WAEConfig

__version__ = "0.1.0"
__all__ = ["WAE", "WAEConfig", "__version__", "imq_kernel", "mmd", "register_models"]

ARCHS = ("mlp", "cnn")


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    """Register ``wae-mlp`` and ``wae-cnn``."""
    for arch in ARCHS:
        register(
            make_spec(
                f"wae-{arch}",
                WAE.family,
                arch,
                WAE,
                WAEConfig,
                f"Wasserstein AE, MMD penalty (IMQ kernel) to N(0, I); {ARCH_SUMMARY[arch]}",
            )
        )
