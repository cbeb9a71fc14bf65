"""Build the static leaderboard site from a benchmark output directory.

Layout of the site (relative links only, so it can be copied anywhere)::

    index.html                    leaderboards, failed runs, comparison plots
    plots/<dataset>-*.png         comparisons across runs
    runs/<run>.html               one page per run
    runs/<run>/*.png|gif          that run's images and plots

Derived per-run images (t-SNE is the slow one) are reused on a rebuild when
they are newer than the run files they come from. Files this builder wrote
before but no longer produces (a deleted run) are pruned, only inside a
folder carrying the builder's marker file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aebench.report import plots
from aebench.report.context import (
    config_label,
    fmt_value,
    leaderboard_context,
    load_runs,
    run_context,
)

MARKER = ".aebench-site"
OWNED_DIRS = ("runs", "plots")
COMPARISON_METRICS = ("test_total", "test_mse", "test_ssim")


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aebench.report", "templates"),
        autoescape=True,  # everything from configs/plugins is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["value"] = fmt_value
    return env


def _fresh(site: _Site, target: Path, sources: list[Path]) -> bool:
    """Whether ``target`` can be reused: same builder version, newer than every source."""
    if not site.reuse or not target.is_file():
        return False
    newest = max((s.stat().st_mtime for s in sources if s.exists()), default=0.0)
    return target.stat().st_mtime >= newest


class _Site:
    def __init__(self, root: Path, reuse: bool) -> None:
        self.root = root
        self.reuse = reuse  # reuse derived files from an earlier build of this version
        self.written: set[Path] = set()

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        self.written.add(p.resolve())
        return p

    def write_text(self, rel: str, text: str) -> None:
        self.path(rel).write_text(text, encoding="utf-8")

    def copy(self, src: Path, rel: str) -> None:
        dst = self.path(rel)
        if _fresh(self, dst, [src]):
            return
        plots.copy_image(src, dst)

    def prune(self) -> None:
        if not (self.root / MARKER).exists():
            return
        for name in OWNED_DIRS:
            base = self.root / name
            if not base.is_dir():
                continue
            for dirpath, _dirs, files in os.walk(base, topdown=False):
                for f in files:
                    p = Path(dirpath) / f
                    if p.resolve() not in self.written:
                        p.unlink()
                if Path(dirpath) != base and not any(Path(dirpath).iterdir()):
                    Path(dirpath).rmdir()


def _run_assets(run: dict[str, Any], site: _Site) -> dict[str, Any]:
    """Copy/make a run's images under ``runs/<slug>/``; hrefs relative to the run page."""
    slug = run["slug"]
    base = f"runs/{slug}"
    keys = (
        "recon",
        "samples",
        "interp",
        "animation",
        "animation_frames",
        "losses",
        "quality",
        "latents",
        "latent_methods",
        "latent_animation",
        "per_class",
    )
    assets: dict[str, Any] = dict.fromkeys(keys)
    assets["widths"] = {}
    for name, src in run["images"].items():
        site.copy(src, f"{base}/{name}.png")
        assets[name] = f"{slug}/{name}.png"
        assets["widths"][name] = _display_width(site.root / base / f"{name}.png")

    if run["epoch_frames"]:
        target = site.path(f"{base}/recon_epochs.gif")
        if _fresh(site, target, run["epoch_frames"]) or plots.make_epoch_gif(
            run["epoch_frames"], target
        ):
            assets["animation"] = f"{slug}/recon_epochs.gif"
            assets["widths"]["animation"] = _display_width(target)
            assets["animation_frames"] = len(run["epoch_frames"])

    history_src = [run["dir"] / "history.csv"]
    if run["history"]:
        for name, fn in (("losses", plots.plot_losses), ("quality", plots.plot_quality)):
            target = site.path(f"{base}/{name}.png")
            if _fresh(site, target, history_src) or fn(run["history"], target):
                assets[name] = f"{slug}/{name}.png"

    if run["latents"] is not None:
        target = site.path(f"{base}/latents.png")
        if _fresh(site, target, [run["latents"], run["dir"] / "metrics.json"]):
            assets["latents"] = f"{slug}/latents.png"
        else:
            drawn = _plot_latents(run, target)
            if drawn:
                assets["latents"] = f"{slug}/latents.png"
                assets["latent_methods"] = drawn

    if run.get("latents_epochs") is not None:
        target = site.path(f"{base}/latents_epochs.gif")
        if _fresh(site, target, [run["latents_epochs"]]) or _latent_animation(run, target):
            assets["latent_animation"] = f"{slug}/latents_epochs.gif"

    per_class = (run["metrics"] or {}).get("per_class")
    if isinstance(per_class, dict) and per_class:
        target = site.path(f"{base}/per_class.png")
        if _fresh(site, target, [run["dir"] / "metrics.json"]) or plots.plot_per_class(
            per_class, target
        ):
            assets["per_class"] = f"{slug}/per_class.png"
    return assets


def _display_width(path: Path) -> int | None:
    """Width to show a small pixel grid at: doubled (pixelated), up to 640 px."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width = im.size[0]
    except OSError:
        return None
    return max(width, min(2 * width, 640))


def _latent_animation(run: dict[str, Any], target: Path) -> bool:
    import numpy as np

    try:
        with np.load(run["latents_epochs"]) as data:
            z = data["z"]
            y = data["y"] if "y" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        run["problems"].append(f"latents_epochs.npz unreadable: {exc}")
        return False
    seed = run["config"].get("seed")
    return plots.make_latent_gif(
        z, y, target, seed=seed if isinstance(seed, int) and seed >= 0 else 0
    )


def _plot_latents(run: dict[str, Any], target: Path) -> list[str]:
    import numpy as np

    try:
        with np.load(run["latents"]) as data:
            z = data["z"]
            y = data["y"] if "y" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        run["problems"].append(f"latents.npz unreadable: {exc}")
        return []
    per_class = (run["metrics"] or {}).get("per_class")
    names = [str(k) for k in per_class] if isinstance(per_class, dict) else None
    if names and y is not None and len(y) and int(np.max(y)) >= len(names):
        names = None
    seed = run["config"].get("seed")
    return plots.plot_latents(
        z, y, target, class_names=names, seed=seed if isinstance(seed, int) and seed >= 0 else 0
    )


def _dataset_plots(ds: dict[str, Any], site: _Site) -> list[dict[str, str]]:
    """Comparison figures for one dataset; returns ``[{title, src, alt, caption}]``."""
    out: list[dict[str, str]] = []
    slug = ds["slug"]
    columns = [c for c in ds["columns"] if c["key"] in COMPARISON_METRICS]
    fid_cols = [c for c in ds["columns"] if c["key"].startswith("fid:")]
    if fid_cols:  # the FID column with the most values, never a mix of extractors
        columns.append(
            max(fid_cols, key=lambda c: sum(r["cells"][c["key"]]["n"] > 0 for r in ds["rows"]))
        )

    for x_key, x_label, title in (
        ("latent_dim", "latent dim", "Metrics vs latent dimension"),
        ("beta", "β", "Metrics vs β"),
    ):
        rel = f"plots/{slug}-vs-{x_key}.png"
        if plots.plot_metric_vs(ds["rows"], x_key, columns, site.path(rel), x_label):
            out.append(
                {
                    "title": title,
                    "src": rel,
                    "alt": f"{title} on {ds['name']}",
                    "caption": "Mean over seeds; error bars are ± one standard deviation.",
                }
            )
        else:
            site.written.discard((site.root / rel).resolve())

    points = []
    for row in ds["rows"]:
        for run in row["members"]:
            m = run["metrics"]
            if str(m.get("regulariser") or "").lower().startswith("kl"):
                short = f"d={row['latent_dim']}"
                if row["beta"] is not None:
                    short += f" β={fmt_value(row['beta'])}"
                points.append(
                    {
                        "model": row["model"],
                        "short": short,
                        "rate": _num(m.get("test_reg")),
                        "distortion": _num(m.get("test_recon")),
                    }
                )
    rel = f"plots/{slug}-rate-distortion.png"
    if plots.plot_rate_distortion(points, site.path(rel)):
        out.append(
            {
                "title": "Rate–distortion",
                "src": rel,
                "alt": f"Rate-distortion scatter on {ds['name']}",
                "caption": "One point per run with a KL regulariser: test KL (rate) vs "
                "test reconstruction term (distortion), both in nats per image.",
            }
        )
    else:
        site.written.discard((site.root / rel).resolve())

    class_rows = []
    for row in ds["rows"]:
        sums: dict[str, list[float]] = {}
        for run in row["members"]:
            pc = run["metrics"].get("per_class")
            if isinstance(pc, dict):
                for name, vals in pc.items():
                    v = _num(vals.get("mse")) if isinstance(vals, dict) else None
                    if v is not None:
                        sums.setdefault(str(name), []).append(v)
        if sums:
            label = config_label(row["config"]) + (f" ({row['variant']})" if row["variant"] else "")
            class_rows.append(
                {"label": label, "per_class": {k: sum(v) / len(v) for k, v in sums.items()}}
            )
    rel = f"plots/{slug}-per-class-mse.png"
    if plots.plot_per_class_compare(class_rows, site.path(rel)):
        out.append(
            {
                "title": "Per-class MSE by configuration",
                "src": rel,
                "alt": f"Per-class MSE by configuration on {ds['name']}",
                "caption": "Test MSE per pixel for each class, mean over seeds "
                "(first 10 configurations).",
            }
        )
    else:
        site.written.discard((site.root / rel).resolve())
    return out


def _num(v: Any) -> float | None:
    from aebench.report.context import _number

    return _number(v)


def build_site(out_dir: Path, site_dir: Path | None = None) -> Path:
    """Build the static leaderboard site for the runs under ``out_dir``.

    ``out_dir`` is a benchmark output dir (with ``runs/<run_id>/``), a ``runs/``
    dir, or a single run dir. The site goes to ``site_dir`` (default
    ``out_dir/site``). Returns the path of the written ``index.html``.
    """
    import aebench

    out_dir = Path(out_dir)
    root = Path(site_dir) if site_dir is not None else out_dir / "site"
    root.mkdir(parents=True, exist_ok=True)
    stamp = f"Built by aebench {aebench.__version__}; runs/ and plots/ are rebuilt.\n"
    marker = root / MARKER
    previous = marker.read_text(encoding="utf-8") if marker.is_file() else None
    if previous is not None or not any(root.iterdir()):
        marker.write_text(stamp, encoding="utf-8")  # never claim a folder we did not make
    site = _Site(root, reuse=previous == stamp)
    env = _env()
    runs = load_runs(out_dir) if out_dir.is_dir() else []
    ctx = leaderboard_context(runs)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    common = {"version": aebench.__version__, "generated": generated}

    run_template = env.get_template("run.html.j2")
    ds_slugs = {ds["name"]: ds["slug"] for ds in ctx["datasets"]}
    siblings: dict[int, list[dict[str, Any]]] = {}
    for ds in ctx["datasets"]:
        for row in ds["rows"]:
            for member in row["members"]:
                siblings[id(member)] = row["runs"]
    for run in runs:
        rctx = run_context(run)
        rctx["assets"] = _run_assets(run, site)
        rctx["problems"] = run["problems"]
        rctx["siblings"] = [
            {**s, "href": s["href"].removeprefix("runs/")}
            for s in siblings.get(id(run), [])
            if s["run_id"] != run["run_id"]
        ]
        latent_dim = run["config"].get("latent_dim")
        rctx["latent_caption"] = (
            "Latent means plotted directly."
            if isinstance(latent_dim, int) and latent_dim <= 2
            else "Latent means projected to 2-D: PCA (left) and t-SNE (right, fixed seed)."
        )
        rctx["leaderboard_href"] = f"../index.html#ds-{ds_slugs.get(rctx['dataset'], '')}"
        site.write_text(f"runs/{run['slug']}.html", run_template.render(run=rctx, **common))
    for ds in ctx["datasets"]:
        ds["plots"] = _dataset_plots(ds, site)

    index = env.get_template("index.html.j2").render(ctx=ctx, **common)
    site.write_text("index.html", index)
    site.prune()
    return root / "index.html"


def report_command(run_dir: Path, out: Path | None = None) -> Path:
    """What ``aebench report RUN_DIR [--out SITE_DIR]`` calls; returns the index path.

    Raises :class:`aebench.errors.DataError` when ``run_dir`` does not exist or
    holds no run directories.
    """
    from aebench.errors import DataError
    from aebench.report.context import find_run_dirs

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory {str(run_dir)!r} does not exist")
    if not find_run_dirs(run_dir):
        raise DataError(
            f"no runs found in {str(run_dir)!r} (expected {run_dir}/runs/<run_id>/config.json)"
        )
    return build_site(run_dir, out)
