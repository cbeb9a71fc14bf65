"""Build the static leaderboard site from a benchmark output directory.

Layout of the site (relative links only, so it can be copied anywhere)::

    index.html                    leaderboards, failed runs, comparison plots
    plots/<dataset>-*.png         comparisons across runs
    runs/<run>.html               one page per run
    runs/<run>/*.png|gif          that run's images and plots

Runs are read through :class:`aebench.store.RunStore`; a corrupt run is left
off the leaderboard and listed by name with what is wrong. Derived per-run
images (t-SNE is the slow one) are reused on a rebuild when they are newer
than the run files they come from. Files this builder wrote before but no
longer produces (a deleted run) are pruned, only inside a folder carrying the
builder's marker file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aebench.errors import DataError
from aebench.report import plots
from aebench.report.comparisons import dataset_figures
from aebench.report.format import fmt_value, slugify
from aebench.report.leaderboard import leaderboard_context, model_options
from aebench.report.runpage import run_context
from aebench.store import RunRecord, RunStore

MARKER = ".aebench-site"
OWNED_DIRS = ("runs", "plots")
RUN_IMAGES = ("recon", "samples", "interp", "generated")


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

    def discard(self, rel: str) -> None:
        """``rel`` was not produced after all: a stale copy of it will be pruned."""
        self.written.discard((self.root / rel).resolve())

    def fresh(self, target: Path, sources: list[Path | None]) -> bool:
        """Whether ``target`` can be reused: same builder version, newer than every source."""
        if not self.reuse or not target.is_file():
            return False
        newest = max((s.stat().st_mtime for s in sources if s and s.exists()), default=0.0)
        return target.stat().st_mtime >= newest

    def write_text(self, rel: str, text: str) -> None:
        self.path(rel).write_text(text, encoding="utf-8")

    def copy(self, src: Path, rel: str) -> None:
        dst = self.path(rel)
        if self.fresh(dst, [src]):
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


# --------------------------------------------------------------------------- run assets


def _seed(record: RunRecord) -> int:
    seed = record.config.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0


def _display_width(path: Path) -> int | None:
    """Width to show a small pixel grid at: doubled (pixelated), up to 640 px."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width = im.size[0]
    except OSError:
        return None
    return max(width, min(2 * width, 640))


def _load_latents(path: Path, problems: list[str]) -> tuple[Any, Any] | None:
    import numpy as np

    try:
        with np.load(path) as data:
            return data["z"], (data["y"] if "y" in data.files else None)
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"{path.name} unreadable: {exc}")
        return None


def _class_names(record: RunRecord, y: Any) -> list[str] | None:
    import numpy as np

    per_class = (record.metrics or {}).get("per_class")
    names = [str(k) for k in per_class] if isinstance(per_class, dict) else None
    if names and y is not None and len(y) and int(np.max(y)) >= len(names):
        return None
    return names


def run_assets(record: RunRecord, slug: str, site: _Site, problems: list[str]) -> dict[str, Any]:
    """Copy/make a run's images under ``runs/<slug>/``; hrefs relative to the run page."""
    base = f"runs/{slug}"
    keys = (*RUN_IMAGES, "animation", "animation_frames", "losses", "quality", "latents")
    assets: dict[str, Any] = dict.fromkeys(
        (*keys, "latent_methods", "latent_animation", "per_class")
    )
    assets["widths"] = {}
    for name, src in record.images.items():
        if name not in RUN_IMAGES:
            continue
        site.copy(src, f"{base}/{name}.png")
        assets[name] = f"{slug}/{name}.png"
        assets["widths"][name] = _display_width(site.root / base / f"{name}.png")

    frames = record.epoch_frames
    if frames:
        target = site.path(f"{base}/recon_epochs.gif")
        if site.fresh(target, list(frames)) or plots.make_epoch_gif(frames, target):
            assets["animation"] = f"{slug}/recon_epochs.gif"
            assets["widths"]["animation"] = _display_width(target)
            assets["animation_frames"] = len(frames)

    history = record.file("history.csv")
    if record.history:
        for name, fn in (("losses", plots.plot_losses), ("quality", plots.plot_quality)):
            target = site.path(f"{base}/{name}.png")
            if site.fresh(target, [history]) or fn(record.history, target):
                assets[name] = f"{slug}/{name}.png"

    metrics_file = record.file("metrics.json")
    latents = record.file("latents.npz")
    if latents is not None:
        target = site.path(f"{base}/latents.png")
        if site.fresh(target, [latents, metrics_file]):
            assets["latents"] = f"{slug}/latents.png"
        elif (data := _load_latents(latents, problems)) is not None:
            z, y = data
            names = _class_names(record, y)
            drawn = plots.plot_latents(z, y, target, class_names=names, seed=_seed(record))
            if drawn:
                assets["latents"] = f"{slug}/latents.png"
                assets["latent_methods"] = drawn

    latents_epochs = record.file("latents_epochs.npz")
    if latents_epochs is not None:
        target = site.path(f"{base}/latents_epochs.gif")
        reuse = site.fresh(target, [latents_epochs])
        data = None if reuse else _load_latents(latents_epochs, problems)
        if reuse or (data and plots.make_latent_gif(*data, target, seed=_seed(record))):
            assets["latent_animation"] = f"{slug}/latents_epochs.gif"

    per_class = (record.metrics or {}).get("per_class")
    if isinstance(per_class, dict) and per_class:
        target = site.path(f"{base}/per_class.png")
        if site.fresh(target, [metrics_file]) or plots.plot_per_class(per_class, target):
            assets["per_class"] = f"{slug}/per_class.png"
    return assets


def _latent_caption(record: RunRecord) -> str:
    latent_dim = model_options(record.config).get("latent_dim")
    if isinstance(latent_dim, int) and latent_dim <= 2:
        return "Latent means plotted directly."
    return "Latent means projected to 2-D: PCA (left) and t-SNE (right, fixed seed)."


# --------------------------------------------------------------------------- the site


def _records(path: Path) -> tuple[list[RunRecord], Path]:
    """The runs under ``path`` (an output folder, its runs/ folder or one run dir)
    and where the site goes by default. A missing or foreign folder has no runs."""
    try:
        store, run_id = RunStore.locate(path)
    except DataError:
        return [], path / "site"
    if run_id is not None:
        return [store.read(run_id)], path / "site"
    return store.records(history=True), store.root / "site"


def build_site(out_dir: Path, site_dir: Path | None = None) -> Path:
    """Build the static leaderboard site for the runs under ``out_dir``.

    ``out_dir`` is a benchmark output dir (with ``runs/<run_id>/``), its ``runs/``
    dir, or a single run dir. The site goes to ``site_dir`` (default
    ``<output dir>/site``; for a single run dir, ``<run dir>/site``). Returns
    the path of the written ``index.html``.
    """
    import aebench

    records, default_root = _records(Path(out_dir))
    root = Path(site_dir) if site_dir is not None else default_root
    root.mkdir(parents=True, exist_ok=True)
    stamp = f"Built by aebench {aebench.__version__}; runs/ and plots/ are rebuilt.\n"
    marker = root / MARKER
    previous = marker.read_text(encoding="utf-8") if marker.is_file() else None
    if previous is not None or not any(root.iterdir()):
        marker.write_text(stamp, encoding="utf-8")  # never claim a folder we did not make
    site = _Site(root, reuse=previous == stamp)
    env = _env()
    taken: set[str] = set()
    slugs = {r.run_id: slugify(r.run_id, taken) for r in records}
    ctx = leaderboard_context(records, href=lambda r: f"runs/{slugs[r.run_id]}.html")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    common = {"version": aebench.__version__, "generated": generated}

    run_template = env.get_template("run.html.j2")
    ds_slugs = {ds["name"]: ds["slug"] for ds in ctx["datasets"]}
    siblings: dict[str, list[dict[str, Any]]] = {}
    for ds in ctx["datasets"]:
        for row in ds["rows"]:
            for member in row["members"]:
                siblings[member.run_id] = row["runs"]
    for record in records:
        slug = slugs[record.run_id]
        rctx = run_context(record, slug)
        rctx["assets"] = run_assets(record, slug, site, rctx["problems"])
        rctx["siblings"] = [
            {**s, "href": s["href"].removeprefix("runs/")}
            for s in siblings.get(record.run_id, [])
            if s["run_id"] != record.run_id
        ]
        rctx["latent_caption"] = _latent_caption(record)
        rctx["leaderboard_href"] = f"../index.html#ds-{ds_slugs.get(rctx['dataset'], '')}"
        site.write_text(f"runs/{slug}.html", run_template.render(run=rctx, **common))
    for ds in ctx["datasets"]:
        ds["plots"] = []
        for figure in dataset_figures(ds):
            rel = f"plots/{ds['slug']}-{figure.name}.png"
            if figure.draw(site.path(rel)):
                ds["plots"].append(
                    {
                        "title": figure.title,
                        "src": rel,
                        "alt": f"{figure.title} on {ds['name']}",
                        "caption": figure.caption,
                    }
                )
            else:
                site.discard(rel)

    index = env.get_template("index.html.j2").render(ctx=ctx, **common)
    site.write_text("index.html", index)
    site.prune()
    return root / "index.html"


def report_command(run_dir: Path, out: Path | None = None) -> Path:
    """What ``aebench report RUN_DIR [--out SITE_DIR]`` calls; returns the index path.

    Raises a one-line :class:`aebench.errors.DataError` when ``run_dir`` does not
    exist, is not an output folder (nor its runs/ folder, nor a run dir), or
    holds no runs.
    """
    run_dir = Path(run_dir)
    store, run_id = RunStore.locate(run_dir)
    if run_id is None and not store.run_ids():
        raise DataError(
            f"no runs found in {str(run_dir)!r} (expected {store.runs_dir}/<run_id>/config.json)"
        )
    return build_site(run_dir, out)
