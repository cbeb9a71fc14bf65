"""The model contract beyond one Adam on a per-image total: a family's own optimisers
and step, the start-of-training hook, a batch-level objective kept apart from the
per-image evaluation terms, declared batch columns, and what the leaderboard does
with the declarations (best only within one objective; "n/a" with its reason)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from families import adversarial, coupled
from report_helpers import _context, _dataset

import aebench
from aebench.metrics._util import batch_term_metrics, loss_metrics
from aebench.models.base import StepInfo
from aebench.plugins import get_plugins
from aebench.train import TrainSettings, fit


@pytest.fixture
def families() -> Iterator[None]:
    plugins = get_plugins()
    plugins.register(adversarial, "adversarial-test")
    plugins.register(coupled, "coupled-test")
    try:
        yield
    finally:
        plugins.unregister("adversarial-test")
        plugins.unregister("coupled-test")


def _small(digits, n: int):
    train, test = digits
    return train.subset(slice(0, n)), test


def test_a_family_trains_with_its_own_optimisers_and_step(families, digits) -> None:
    """Two optimisers alternate (the discriminator's with its own settings), each moves
    only its own parameters, and on_train_start sees N and the first batch once."""
    torch.manual_seed(0)
    model = aebench.create_model("adv-test-mlp", (1, 8, 8), latent_dim=4)
    seen: list[tuple[int, tuple[int, ...]]] = []
    steps: list[StepInfo] = []
    model.on_train_start = lambda n, x: seen.append((n, tuple(x.shape)))  # type: ignore[method-assign]
    step = model.training_step

    def recording(x, info, optimizers):
        steps.append(info)
        return step(x, info, optimizers)

    model.training_step = recording  # type: ignore[method-assign]
    disc = [p.detach().clone() for p in model.discriminator.parameters()]
    train, val = _small(digits, 256)
    result = fit(model, train, val, TrainSettings(epochs=2, batch_size=64, seed=0))

    assert seen == [(256, (64, 1, 8, 8))]
    assert [(s.step, s.epoch) for s in steps] == [(i, 1 + i // 4) for i in range(8)]
    assert {(s.steps_per_epoch, s.epochs, s.train_size) for s in steps} == {(4, 2, 256)}
    assert steps[-1].progress == pytest.approx(7 / 8)
    after = list(model.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(disc, after, strict=True))
    vae_opt, disc_opt = result.optimizers
    assert vae_opt.startswith("Adam(lr=0.001, betas=(0.9, 0.999))")
    assert disc_opt.startswith("Adam(lr=0.0001, betas=(0.5, 0.9))")
    n_disc = sum(p.numel() for p in model.discriminator.parameters())
    assert disc_opt.endswith(f"over {n_disc:,} parameters")
    assert {"train_total", "train_disc_loss", "train_tc", "val_total"} <= set(result.history[0])


def test_evaluation_terms_do_not_depend_on_the_batch_size(families, digits) -> None:
    """A batch-coupled family's per-image terms are the same at evaluation batch sizes
    100 and 500; its batch-level penalty is a separate value, which does change with
    the batch (so measuring it at one recorded size matters). The old way of writing
    it (the penalty copied onto each image) fails the same comparison."""
    torch.manual_seed(0)
    good = aebench.create_model("coupled-test-mlp", (1, 8, 8), latent_dim=4).eval()
    with torch.no_grad():  # spread the codes, as training does: the moments then vary
        for p in good.encoder.parameters():
            p.mul_(3.0)
    _, test = digits
    a = loss_metrics(good, test, batch_size=100)
    b = loss_metrics(good, test, batch_size=500)
    assert set(a) == {"recon"}  # no bound, no per-image total: no bpd either
    assert a["recon"] == pytest.approx(b["recon"], rel=1e-6)
    small, size_small = batch_term_metrics(good, test, batch_size=10)
    large, size_large = batch_term_metrics(good, test, batch_size=500)
    assert (size_small, size_large) == (10, len(test))
    assert small["moments"] != pytest.approx(large["moments"], rel=1e-2)

    bad = coupled.Broadcasting(good.config, (1, 8, 8))
    bad.load_state_dict(good.state_dict())
    bad.eval()
    at_100, at_500 = (loss_metrics(bad, test, batch_size=n) for n in (100, 500))
    assert at_100["recon"] == pytest.approx(at_500["recon"], rel=1e-6)
    assert at_100["total"] != pytest.approx(at_500["total"], rel=1e-3)


def test_a_batch_objective_trains_and_validates(families, digits) -> None:
    """Without a per-image total, the loop logs the family's objective and picks the
    best epoch on its value over the validation batches."""
    torch.manual_seed(0)
    model = aebench.create_model("coupled-test-mlp", (1, 8, 8), latent_dim=4)
    train, val = _small(digits, 256)
    result = fit(model, train, val, TrainSettings(epochs=2, batch_size=64, seed=0))
    row = result.history[-1]
    assert {"train_total", "train_recon", "train_moments", "val_total", "val_recon"} <= set(row)
    assert row["val_total"] > row["val_recon"]  # recon + weight * penalty (penalty > 0)


@pytest.fixture(scope="module")
def contract_bench(tmp_path_factory, fid_cache) -> Path:
    """adv-test (two optimisers), coupled-test (a batch objective) and a VAE, trained
    through aebench.run on digits, with the leaderboard."""
    out = tmp_path_factory.mktemp("contract")
    plugins = get_plugins()
    plugins.register(adversarial, "adversarial-test")
    plugins.register(coupled, "coupled-test")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AEBENCH_CACHE_DIR", str(fid_cache[0]))
            mp.delenv("AEBENCH_INCEPTION_WEIGHTS", raising=False)
            summary = aebench.run(
                "adv-test-mlp,coupled-test-mlp,vae-mlp",
                "digits",
                out=out,
                epochs=2,
                metric_options={"fid_samples": 200, "nll_samples": 50, "probe_samples": 200},
            )
    finally:
        plugins.unregister("adversarial-test")
        plugins.unregister("coupled-test")
    assert [o.status for o in summary.outcomes] == ["done"] * 3
    return out


def _metrics(out: Path, model: str) -> dict:
    (path,) = (out / "runs").glob(f"digits_{model}_*/metrics.json")
    return json.loads(path.read_text())


def test_declarations_reach_the_store(contract_bench: Path) -> None:
    adv = _metrics(contract_bench, "adv-test-mlp")
    assert len(adv["optimizers"]) == 2 and "betas=(0.5, 0.9)" in adv["optimizers"][1]
    assert adv["objective"] == "ELBO + γ·TC (discriminator), γ=6.4"
    assert 0.0 <= adv["test_disc_accuracy"] <= 1.0
    assert adv["batch_terms_batch_size"] == 360  # the digits test split, one batch

    cpl = _metrics(contract_bench, "coupled-test-mlp")
    assert cpl["test_total"] is None and "test_total" in cpl["not_applicable"]
    assert cpl["test_bpd"] is None and "test_bpd" in cpl["not_applicable"]
    assert cpl["test_moments"] > 0 and cpl["latent_kind"] == "deterministic"

    vae = _metrics(contract_bench, "vae-mlp")
    assert len(vae["optimizers"]) == 1
    # a VAE subclass with its own objective is no longer in the VAE's group
    assert (vae["objective_group"], adv["objective_group"]) == ("likelihood", "variational")
    assert cpl["objective_group"] == "deterministic"  # from its latent kind
    for key in ("test_disc_accuracy", "test_moments"):
        assert vae[key] is None and key in vae["not_applicable"]


PAPER_GROUPS = {
    "likelihood": {"vae", "iwae", "vamp-vae"},
    "penalised": {
        "beta-vae", "beta-tcvae", "factor-vae", "annealed-vae", "dip-vae-i", "dip-vae-ii",
        "info-vae",
    },
    "deterministic": {"ae", "rae-l2", "rae-gp", "wae-mmd"},
    "discrete": {"vq-vae"},
}  # fmt: skip
"""Which built-in family trains on what kind of objective, as its paper defines it."""


def test_built_in_families_declare_their_objective_group() -> None:
    from aebench.models.base import OBJECTIVE_GROUPS

    found: dict[str, set[str]] = {}
    for spec in get_plugins().models:
        if spec.plugin.endswith("(built-in)"):
            group = aebench.create_model(spec.name, (1, 8, 8)).group()
            found.setdefault(group, set()).add(spec.family)
    assert found == PAPER_GROUPS
    assert set(found) <= set(OBJECTIVE_GROUPS)


def test_the_leaderboard_groups_rows_by_objective(contract_bench: Path) -> None:
    ds = _dataset(_context(contract_bench), "digits")
    assert [(r["model"], r["group"]) for r in ds["rows"]] == [
        ("vae-mlp", "likelihood"),
        ("adv-test-mlp", "variational"),
        ("coupled-test-mlp", "deterministic"),
    ]
    assert [(g["name"], g["n"]) for g in ds["objective_groups"]] == [
        ("likelihood", 1),
        ("variational", 1),
        ("deterministic", 1),
    ]
    page = (contract_bench / "site" / "index.html").read_text()
    assert page.count('data-objective="deterministic"') == 1
    assert '<option value="likelihood"' in page and "Likelihood bounds</dt>" in page


def test_the_leaderboard_ranks_only_within_one_objective(contract_bench: Path) -> None:
    ds = _dataset(_context(contract_bench), "digits")
    rows = {r["model"]: r for r in ds["rows"]}
    # The VAE's ELBO and adv-test's ELBO + γ·TC are different objectives: alone in its
    # objective, neither is compared with the other, so no test loss is marked best;
    # the pixel MSE means the same for every model and is ranked across them.
    assert not any(r["cells"]["test_total"]["best"] for r in rows.values())
    assert sum(bool(r["cells"]["test_mse"]["best"]) for r in rows.values()) == 1
    # so is the FID of test reconstructions, whatever sampler each model has
    (rec,) = [c for c in ds["columns"] if c.metric == "fid_rec"]
    assert rec.group == "reconstruction"
    assert sum(bool(r["cells"][rec.key]["best"]) for r in rows.values()) == 1
    (total,) = [c for c in ds["columns"] if c.key == "test_total"]
    facets = {m: total.comparable(rows[m]["members"][0]) for m in ("vae-mlp", "adv-test-mlp")}
    assert dict(facets["vae-mlp"])["objective"] == "ELBO"
    assert dict(facets["adv-test-mlp"])["objective"] == "ELBO + γ·TC (discriminator), γ=6.4"
    # A value that does not apply says so, and why.
    na = rows["coupled-test-mlp"]["cells"]["test_total"]
    assert na["na"] and "it applies to models whose objective is a mean" in na["title"]
    (disc_col,) = [c for c in ds["columns"] if c.metric == "test_disc_accuracy"]
    assert dict(disc_col.split) == {"batch_terms_batch_size": 360}
    disc = rows["vae-mlp"]["cells"][disc_col.key]
    assert disc["na"] and "it applies to models that report it (" in disc["title"]
    page = (contract_bench / "site" / "index.html").read_text()  # built with adv-test installed
    assert re.search(r"it applies to models that report it \([a-z, -]*adv-test", page)
