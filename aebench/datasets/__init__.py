"""Dataset plugins and the in-memory image container they return."""

from aebench.datasets.base import ImageSet, cache_dir, data_root, validation_split

__all__ = ["ImageSet", "cache_dir", "data_root", "validation_split"]
