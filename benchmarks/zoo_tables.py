"""Markdown tables of a finished grid, one per dataset and objective group, mean ± sd over seeds.

    python benchmarks/zoo_tables.py OUT_DIR [--out FILE]

Reads the finished runs stored under ``OUT_DIR`` (their metrics.json) and
prints, for each dataset, one table per objective group
(``aebench.models.base.OBJECTIVE_GROUPS``: each family's declaration, as the
leaderboard groups its rows), so that families are read beside the families
whose training objective means the same thing. A model's own test loss is its
own objective: it compares only with itself across seeds. "n/a": the metric does
not apply to the model (no prior, no per-image objective, no likelihood bound);
"–": not measured. The zoo tables in reports/README.md are this script's output
for the zoo suite.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def mean_sd(values: Sequence[float], decimals: int) -> str:
    """``12.34 ± 0.56`` (sample sd over seeds); one value alone; ``–`` for none."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return "–"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.{decimals}f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def tables(runs: Sequence[dict[str, Any]]) -> str:
    """The Markdown of every dataset's tables from finished runs, each
    ``{"dataset", "model", "group", "metrics"}`` (``metrics``: its metrics.json)."""
    from aebench.models.base import OBJECTIVE_GROUPS

    out: list[str] = []
    for dataset in sorted({r["dataset"] for r in runs}):
        on = [r for r in runs if r["dataset"] == dataset]
        has_factors = any(r["metrics"].get("mig") is not None for r in on)
        columns = [*COLUMNS[:-1], *(DISENTANGLEMENT if has_factors else ()), COLUMNS[-1]]
        out.append(f"### {dataset}\n")
        for name, (title, meaning) in OBJECTIVE_GROUPS.items():
            rows = [r for r in on if r["group"] == name]
            if not rows:
                continue
            shown = [c for c in columns if any(r["metrics"].get(c[0]) is not None for r in rows)]
            out.append(f"**{title}**: {meaning}.\n")
            out.append("| model | seeds | " + " | ".join(h for _, h, _ in shown) + " |")
            out.append("|---|---|" + "---|" * len(shown))
            for model in sorted({r["model"] for r in rows}):
                cells = [r["metrics"] for r in rows if r["model"] == model]
                values = []
                for key, _, decimals in shown:
                    text = mean_sd([m.get(key) for m in cells], decimals)
                    if text == "–" and all(key in (m.get("not_applicable") or ()) for m in cells):
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
    from aebench.report.leaderboard import objective_group
    from aebench.store import RunStore

    runs = [
        {
            "dataset": str(r.config.get("dataset")),
            "model": str(r.config.get("model")),
            "group": objective_group(r),
            "metrics": r.metrics or {},
        }
        for r in RunStore(args.out_dir).records(history=False)
        if r.done
    ]
    text = tables(runs)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
