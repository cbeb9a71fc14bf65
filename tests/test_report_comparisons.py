"""Comparison series across a dataset's configurations: option sweeps and compared columns."""

from __future__ import annotations

from typing import Any

from report_helpers import _dataset


def test_comparison_series_are_generic(ctx: dict[str, Any]) -> None:
    from aebench.report.comparisons import compared_columns, option_series

    ds = _dataset(ctx)
    names = [o["name"] for o in ds["options"]]
    beta = option_series(ds["rows"], "beta", names)
    assert {k: sorted(x for x, _ in v) for k, v in beta.items()} == {
        "beta-vae-cnn latent_dim=16": [0.5, 4.0]
    }
    latent = option_series(ds["rows"], "latent_dim", names)
    assert sorted(x for x, _ in latent["vae-cnn"]) == [2.0, 16.0]
    assert "beta-vae-cnn beta=0.5" in latent
    compared = [c.key for c in compared_columns(ds["columns"], ds["rows"])]
    assert compared == ["test_total", "test_mse", "fid:inception:10000", "probe_acc"]
