"""Markdown tables of a finished grid, one per dataset and objective group, mean ± sd over seeds.

    python benchmarks/zoo_tables.py OUT_DIR [--out FILE]

Reads the runs stored under ``OUT_DIR`` (``aebench.results.collect``: the same
rows as ``results.csv``) and prints, for each dataset, one table per objective
group (:data:`GROUPS`): families are compared with the families whose training
objective means the same thing. A model's own test loss is shown only within its
group and never ranked across objectives; "n/a" is a value the metric does not
define for that model (no prior, no likelihood bound, discrete codes), "–" one
that was not measured. reports/README.md's zoo tables are this script's output
for the zoo suite.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Likelihood bounds",
        "the objective is a bound on -log p(x) (ELBO; the k-sample IWAE bound; the ELBO under "
        "a VampPrior): test loss and NLL compare directly",
        ("vae", "iwae", "vamp-vae"),
    ),
    (
        "Weighted and penalised ELBOs (disentanglement)",
        "the ELBO with its KL reweighted, split or penalised: each family's test loss is its "
        "own objective, so only the NLL, reconstruction and sample metrics compare",
        (
            "beta-vae",
            "beta-tcvae",
            "factor-vae",
            "annealed-vae",
            "dip-vae-i",
            "dip-vae-ii",
            "info-vae",
        ),
    ),
    (
        "Deterministic, regularised autoencoders",
        "no posterior and no prior: no NLL or KL; samples come from a density fitted to the "
        "codes after training (ex-post GMM, two-stage VAE)",
        ("ae", "rae-l2", "rae-gp", "wae-mmd"),
    ),
    (
        "Discrete codes",
        "codes from a learned codebook: no likelihood bound until a prior over codes is "
        "learned; samples from a learned code prior",
        ("vq-vae",),
    ),
)
OTHER = ("Other families", "families this script does not place in a group", ())

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("test_total", "test loss (own objective)", 2),
    ("nll", "NLL (k=64)", 2),
    ("test_mse", "MSE", 4),
    ("test_ssim", "SSIM", 3),
    ("fid_rec", "FID REC", 1),
    ("fid", "FID prior", 1),
    ("fid_expost", "FID GMM", 1),
    ("fid_twostage", "FID 2-stage", 1),
    ("fid_codes", "FID code prior", 1),
    ("active_units", "active units", 1),
    ("test_codebook_usage", "codebook usage", 2),
    ("probe_acc", "probe acc.", 3),
    ("train_seconds", "train (s)", 0),
)
"""(key, header, decimals) of the columns shown, in order; a column with no value in
any run of a table is left out of that table."""
DISENTANGLEMENT: tuple[tuple[str, str, int], ...] = (
    ("mig", "MIG", 3),
    ("dci_disentanglement", "DCI dis.", 3),
    ("sap", "SAP", 3),
    ("factorvae_score", "FactorVAE score", 3),
)


def group_of(family: str) -> tuple[str, str, tuple[str, ...]]:
    for group in GROUPS:
        if family in group[2]:
            return group
    return OTHER


def mean_sd(values: Sequence[float], decimals: int) -> str:
    """``12.34 ± 0.56`` (sample sd over seeds); one value alone; ``–`` for none."""
    vals = [float(v) for v in values if v is not None and not pd.isna(v)]
    if not vals:
        return "–"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.{decimals}f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def _not_applicable(frame: pd.DataFrame, key: str) -> bool:
    """Whether every run of ``frame`` stored ``key`` as not applicable."""
    if "not_applicable" not in frame.columns:
        return False
    return all(key in str(v or "") for v in frame["not_applicable"])


def tables(frame: pd.DataFrame) -> str:
    """The Markdown of every dataset's tables."""
    done = frame[frame["status"] == "done"] if "status" in frame.columns else frame
    out: list[str] = []
    for dataset in sorted(done["dataset"].unique()):
        runs = done[done["dataset"] == dataset]
        has_factors = "mig" in runs.columns and runs["mig"].notna().any()
        columns = [*COLUMNS[:-1], *(DISENTANGLEMENT if has_factors else ()), COLUMNS[-1]]
        out.append(f"### {dataset}\n")
        for title, meaning, _ in (*GROUPS, OTHER):
            rows = runs[[group_of(str(f))[0] == title for f in runs["family"]]]
            if rows.empty:
                continue
            shown = [c for c in columns if c[0] in rows.columns and rows[c[0]].notna().any()]
            out.append(f"**{title}**: {meaning}.\n")
            out.append("| model | seeds | " + " | ".join(h for _, h, _ in shown) + " |")
            out.append("|---|---|" + "---|" * len(shown))
            for model in sorted(rows["model"].unique()):
                cells = rows[rows["model"] == model]
                values = []
                for key, _, decimals in shown:
                    text = mean_sd(list(cells[key]), decimals)
                    if text == "–" and _not_applicable(cells, key):
                        text = "n/a"
                    values.append(text)
                out.append(f"| {model} | {len(cells)} | " + " | ".join(values) + " |")
            out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="an aebench run's --out folder")
    parser.add_argument("--out", type=Path, help="write the Markdown here (default: stdout)")
    args = parser.parse_args(argv)
    from aebench.results import collect

    text = tables(collect(args.out_dir))
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
