"""Downloading dataset files: ``aebench fetch DATASET`` and each spec's ``fetch(root)``.

Downloads go through torchvision's own ``download_url`` (progress bar, MD5
check), into a temporary folder beside the target, and are moved into place
only once complete and verified, so a failed download never leaves a partial
file where the loaders would find it. Every failure (no network, read-only
root, bad checksum) becomes one :class:`aebench.errors.DataError` line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aebench.datasets.checksums import md5_bytes
from aebench.errors import DataError


def download_url(url: str, root: str, filename: str, md5: str | None) -> None:
    """torchvision's downloader (progress bar, md5 check); tests monkeypatch this."""
    from torchvision.datasets.utils import download_url as tv_download_url

    tv_download_url(url, root, filename=filename, md5=md5)


def writable_dir(folder: Path, dataset: str) -> None:
    """Create ``folder`` or raise a DataError if it (or its parent) is read-only."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot fetch {dataset!r}: cannot create {folder} ({exc.strerror or exc}); "
            f"choose a writable --data-dir or AEBENCH_DATA_DIR"
        ) from None
    if not os.access(folder, os.W_OK):
        raise DataError(
            f"cannot fetch {dataset!r}: {folder} is read-only; "
            f"choose a writable --data-dir or AEBENCH_DATA_DIR"
        )


def download_file(urls: Sequence[str], dest: Path, md5: str | None, dataset: str) -> None:
    """Fetch ``dest`` from the first of ``urls`` (mirrors) that works; no-op if present."""
    if dest.is_file() and md5 is not None and md5_bytes(dest.read_bytes()) == md5:
        return
    writable_dir(dest.parent, dataset)
    errors: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix=".aebench-download-", dir=dest.parent))
    try:
        for url in urls:
            try:
                download_url(url, str(tmp), dest.name, md5)
            except Exception as exc:  # URLError, HTTPError, RuntimeError("corrupted"), ...
                reason = getattr(exc, "reason", None) or exc
                errors.append(f"{url}: {reason}")
                (tmp / dest.name).unlink(missing_ok=True)
                continue
            if not (tmp / dest.name).is_file():
                errors.append(f"{url}: nothing was downloaded")
                continue
            os.replace(tmp / dest.name, dest)
            return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raise DataError(
        f"could not download {dest.name} for {dataset!r} ({'; '.join(errors)}); "
        f"without network access, copy the file to {dest} yourself"
    )
