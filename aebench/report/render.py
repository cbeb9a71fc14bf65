"""Build the static leaderboard site from a benchmark output directory.

Layout of the site (relative links only, so it can be copied anywhere)::

    index.html                    leaderboards, galleries, comparison plots
    results.csv, results.parquet  the results table (downloads)
    plots/<dataset>-*.png         comparisons across runs (2x PNG)
    plots/<dataset>-gallery/*.png the gallery's reconstruction rows
    runs/<run>.html               one page per run
    runs/<run>/*.png|gif          that run's images and plots

Runs are read through :class:`aebench.store.RunStore`; a corrupt run is left
off the leaderboard and listed by name with what is wrong. Derived per-run
images (t-SNE is the slow one) are reused on a rebuild when they are newer
than the run files they come from. Files this builder wrote before but no
longer produces (a deleted run) are pruned, only inside a folder carrying the
builder's marker file.

Progress: ``build_site(..., on_event=callback)`` calls ``callback`` with a
:class:`SiteProgress` per step (``reading runs``, ``run pages``, ``comparison
plots``, ``gallery``, ``downloads``, ``index``), with how many of how many
items are done.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aebench import results
from aebench._version import __version__
from aebench.errors import DataError
from aebench.metrics.latent import KL_THRESHOLD
from aebench.progress import Message
from aebench.report import plots
from aebench.report.comparisons import dataset_figures, row_label
from aebench.report.format import fmt_value, slugify
from aebench.report.leaderboard import leaderboard_context, model_options
from aebench.report.plots import isolated
from aebench.report.plots.base import UNREADABLE, read_latents
from aebench.report.plots.gallery import crop_grid_rows, tile_scale
from aebench.report.runpage import run_context, sampler_label
from aebench.store import RunRecord, RunStore

MARKER = ".aebench-site"
OWNED_DIRS = ("runs", "plots")
RUN_IMAGES = ("recon", "samples", "interp", "generated")
SITE_STEPS = ("reading runs", "run pages", "comparison plots", "gallery", "downloads", "index")
"""The steps of :func:`build_site`, in order, as :class:`SiteProgress` names them."""


@dataclass(frozen=True)
class SiteProgress:
    """Progress of :func:`build_site`: ``done`` of ``total`` items of ``step`` (one of
    :data:`SITE_STEPS`) are finished; ``item`` names the one just finished, if any."""

    step: str
    done: int
    total: int
    item: str = ""

    @property
    def text(self) -> str:
        return f"leaderboard: {self.step} {self.done}/{self.total}" + (
            f" ({self.item})" if self.item else ""
        )


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


TEMPLATES = Path(__file__).parent / "templates"
_VERBATIM = re.compile(r"(<(pre|script|style|textarea)\b.*?</\2>)", re.S | re.I)
_BETWEEN_TAGS = re.compile(r">\s*\n\s*<")


def compact_html(html: str) -> str:
    """``html`` with each line break and indentation between tags folded into one space
    (which renders the same: HTML collapses white space), leaving ``pre``, ``script``,
    ``style`` and ``textarea`` verbatim. Hand-written rather than a minifier
    dependency: one regex is all the site needs."""
    parts = _VERBATIM.split(html)
    out = []
    for i, part in enumerate(parts):
        kind = i % 3  # split() yields: text, whole verbatim block, its tag name, text, ...
        if kind == 0:
            out.append(_BETWEEN_TAGS.sub("> <", part))
        elif kind == 1:
            out.append(part)
    return "".join(out)


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
        if rel.endswith(".html"):
            text = compact_html(text)
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


def _width(path: Path, scale: int) -> int | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[0] * scale
    except OSError:
        return None


def _load_latents(path: Path, problems: list[str], notes: list[str]) -> tuple[Any, Any] | None:
    try:
        return read_latents(path)
    except UNREADABLE as exc:
        why = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        problems.append(f"{path.name} unreadable: {why}")
        notes.append(f"{path.name} is unreadable ({why})")
        return None


def _unreadable_image(path: Path) -> str | None:
    """Why the image at ``path`` cannot be shown (empty, truncated, not an image), or
    None when it decodes."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except UNREADABLE as exc:
        return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return None


def _sentences(notes: list[str]) -> str:
    """Notes as sentences: ``["a", "b"]`` becomes ``"a. b."``."""
    return " ".join(n if n.endswith(".") else f"{n}." for n in notes)


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
        (*keys, "latent_methods", "latent_animation", "per_class", "kl_per_dim")
    )
    assets["widths"] = {}
    assets["sizes"] = {}
    assets["missing"] = {}  # figure -> why it is not shown (the page says so in its place)
    for name, src in record.images.items():
        if name not in RUN_IMAGES:
            continue
        if (why := _unreadable_image(src)) is not None:
            problems.append(f"{src.name} unreadable: {why}")
            assets["missing"][name] = f"{src.name} is unreadable ({why})."
            continue
        site.copy(src, f"{base}/{name}.png")
        assets[name] = f"{slug}/{name}.png"
        assets["widths"][name] = _display_width(site.root / base / f"{name}.png")

    frames = record.epoch_frames
    if frames:
        target = site.path(f"{base}/recon_epochs.gif")
        if site.fresh(target, list(frames)) or plots.make_epoch_gif(frames, target, problems):
            assets["animation"] = f"{slug}/recon_epochs.gif"
            assets["widths"]["animation"] = _display_width(target)
            assets["animation_frames"] = len(frames)
        else:
            site.discard(f"{base}/recon_epochs.gif")
            assets["missing"]["animation"] = "No per-epoch reconstruction is readable."

    history = record.file("history.csv")
    if record.history:
        for name, fn in (("losses", plots.plot_losses), ("quality", plots.plot_quality)):
            target = site.path(f"{base}/{name}.png")
            if site.fresh(target, [history]) or fn(record.history, target):
                assets[name] = f"{slug}/{name}.png"
                assets["sizes"][name] = plots.display_size(target)

    metrics_file = record.file("metrics.json")
    latents = record.file("latents.npz")
    if latents is not None:
        target = site.path(f"{base}/latents.png")
        notes: list[str] = []
        if site.fresh(target, [latents, metrics_file]):
            assets["latents"] = f"{slug}/latents.png"
        elif (data := _load_latents(latents, problems, notes)) is not None:
            z, y = data
            names = _class_names(record, y)
            drawn = plots.plot_latents(
                z, y, target, class_names=names, seed=_seed(record), notes=notes
            )
            if drawn:
                assets["latents"] = f"{slug}/latents.png"
                assets["latent_methods"] = drawn
        if assets["latents"]:
            assets["sizes"]["latents"] = plots.display_size(target)
        else:
            site.discard(f"{base}/latents.png")
        if notes:
            assets["missing"]["latents"] = _sentences(notes)

    latents_epochs = record.file("latents_epochs.npz")
    if latents_epochs is not None:
        target = site.path(f"{base}/latents_epochs.gif")
        notes = []
        reuse = site.fresh(target, [latents_epochs])
        data = None if reuse else _load_latents(latents_epochs, problems, notes)
        if reuse or (
            data and plots.make_latent_gif(*data, target, seed=_seed(record), notes=notes)
        ):
            assets["latent_animation"] = f"{slug}/latents_epochs.gif"
        else:
            site.discard(f"{base}/latents_epochs.gif")
        if notes:
            assets["missing"]["latent_animation"] = _sentences(notes)

    per_class = (record.metrics or {}).get("per_class")
    if isinstance(per_class, dict) and per_class:
        target = site.path(f"{base}/per_class.png")
        if site.fresh(target, [metrics_file]) or plots.plot_per_class(per_class, target):
            assets["per_class"] = f"{slug}/per_class.png"
            assets["sizes"]["per_class"] = plots.display_size(target)

    kl = (record.metrics or {}).get("kl_per_dim")
    if isinstance(kl, list) and kl and all(isinstance(v, (int, float)) for v in kl):
        target = site.path(f"{base}/kl_per_dim.png")
        if site.fresh(target, [metrics_file]) or plots.plot_kl_per_dim(kl, target, KL_THRESHOLD):
            assets["kl_per_dim"] = f"{slug}/kl_per_dim.png"
            assets["sizes"]["kl_per_dim"] = plots.display_size(target)
        else:
            site.discard(f"{base}/kl_per_dim.png")
    return assets


def _latent_caption(record: RunRecord) -> str:
    latent_dim = model_options(record.config).get("latent_dim")
    if isinstance(latent_dim, int) and latent_dim <= 2:
        return "Latent means plotted directly."
    return "Latent means projected to 2-D: PCA (left) and t-SNE (right, fixed seed)."


# --------------------------------------------------------------------------- the site


def gallery(ds: dict[str, Any], site: _Site) -> dict[str, Any] | None:
    """One dataset's gallery: the test originals once, then per configuration (its
    first seed) the reconstructions of those originals and its sample grid, labelled
    with its sampler. None when no run stored images."""
    rows = []
    originals = None
    base = f"plots/{ds['slug']}-gallery"
    taken: set[str] = set()
    for row in ds["rows"]:
        record = row["members"][0]
        recon, samples = record.images.get("recon"), record.images.get("samples")
        if recon is None and samples is None:
            continue
        name = slugify(record.run_id, taken)
        entry: dict[str, Any] = {
            "label": row_label(row),
            "model": row["model"],
            "family": row["family"],
            "arch": row["arch"],
            "href": row["href"],
            "recon": None,
            "samples": None,
            "sampler": sampler_label(record.metrics or {}),
            "sampler_title": str((record.metrics or {}).get("sampler") or ""),
        }
        if recon is not None:
            rel = f"{base}/{name}-recon.png"
            orig = f"{base}/originals.png" if originals is None else None
            if plots.split_recon(
                recon, site.path(orig) if orig else None, site.path(rel)
            ):  # a crop: cheaper than checking whether it is fresh
                scale = tile_scale(recon)
                entry["recon"] = rel
                entry["recon_width"] = _width(site.root / rel, scale)
                if orig:
                    originals = {"src": orig, "width": _width(site.root / orig, scale)}
            else:
                site.discard(rel)
                if orig:
                    site.discard(orig)
        if samples is not None:
            rel = f"{base}/{name}-samples.png"
            if crop_grid_rows(samples, site.path(rel), rows=2):
                entry["samples"] = rel
                entry["samples_full"] = f"runs/{ds['run_slugs'][record.run_id]}/samples.png"
                entry["samples_width"] = _width(site.root / rel, tile_scale(site.root / rel))
            else:
                site.discard(rel)
        rows.append(entry)
    if not rows:
        return None
    return {"originals": originals, "rows": rows}


def _records_and_root(path: Path) -> tuple[list[RunRecord], Path, Path | None, str | None]:
    try:
        store, run_id = RunStore.locate(path)
    except DataError:
        return [], path / "site", None, None
    if run_id is not None:
        return [store.read(run_id)], path / "site", store.root, run_id
    return store.records(history=True), store.root / "site", store.root, None


def _downloads(store_root: Path | None, run_id: str | None, site: _Site) -> list[dict[str, Any]]:
    """``results.csv`` and ``results.parquet`` of the runs on the site, for download."""
    if store_root is None:
        return []

    frame = results.collect(store_root)
    if run_id is not None and "run_id" in frame.columns:
        frame = frame[frame["run_id"] == run_id]
    out = []
    csv_path = site.path("results.csv")
    frame.to_csv(csv_path, index=False)
    out.append({"href": "results.csv", "label": "CSV", "bytes": csv_path.stat().st_size})
    try:
        pq = site.path("results.parquet")
        results._parquet(frame, pq)
        out.append({"href": "results.parquet", "label": "Parquet", "bytes": pq.stat().st_size})
    except Exception:  # no Parquet engine installed: the CSV is still there
        site.discard("results.parquet")
    return out


def build_site(
    out_dir: Path,
    site_dir: Path | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> Path:
    """Build the static leaderboard site for the runs under ``out_dir``.

    ``out_dir`` is a benchmark output dir (with ``runs/<run_id>/``), its ``runs/``
    dir, or a single run dir. The site goes to ``site_dir`` (default
    ``<output dir>/site``; for a single run dir, ``<run dir>/site``). Returns
    the path of the written ``index.html``. ``on_event`` receives a
    :class:`SiteProgress` as each step (:data:`SITE_STEPS`) advances.
    """

    def emit(step: str, done: int, total: int, item: str = "") -> None:
        if on_event is not None:
            on_event(SiteProgress(step, done, total, item))

    def warn(text: str) -> None:
        if on_event is not None:
            on_event(Message(f"aebench: warning: {text}"))

    emit("reading runs", 0, 1)
    records, default_root, store_root, single = _records_and_root(Path(out_dir))
    emit("reading runs", 1, 1, f"{len(records)} runs")
    final = Path(site_dir) if site_dir is not None else default_root
    stamp = f"Built by aebench {__version__}; runs/ and plots/ are rebuilt.\n"
    marker = final / MARKER
    previous = marker.read_text(encoding="utf-8") if marker.is_file() else None
    ours = previous is not None or not final.exists() or not any(final.iterdir())
    # A site of ours is built aside and swapped in whole, so that nobody (a browser, a
    # web server, a second `aebench report`) ever sees half of one. A folder we did not
    # make is written in place, and only our files in it are touched.
    root = _aside(final) if ours else final
    try:
        root.mkdir(parents=True, exist_ok=True)
        if ours:
            (root / MARKER).write_text(stamp, encoding="utf-8")
        _build(root, records, store_root, single, _Site(root, reuse=previous == stamp), emit, warn)
    except BaseException:
        if root != final:
            shutil.rmtree(root, ignore_errors=True)
        raise
    if root != final:
        _swap(root, final)
    return final / "index.html"


STALE_AGE = 24 * 3600.0
"""Seconds after which a leftover build folder whose process id is alive again (reused
by another program) is removed all the same: no build takes a day."""


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:  # Windows: no such process (or no signal 0)
        return False
    return True


def remove_stale(final: Path, now: float | None = None) -> list[Path]:
    """Remove the ``.<site>.building-<pid>`` and ``.<site>.old-<pid>`` folders beside
    ``final`` that a killed build left: those whose process is gone, or older than
    :data:`STALE_AGE`. A live build's folder (its process running) is never touched.
    Returns the folders removed."""
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.(building|old)-(\d+)$")
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or int(m.group(2)) == os.getpid() or not entry.is_dir():
            continue
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if _pid_alive(int(m.group(2))) and age < STALE_AGE:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def _aside(final: Path) -> Path:
    """A private folder beside ``final`` holding a copy of the current site (modification
    times kept, so unchanged derived files are reused). Folders that killed builds left
    beside it are removed first (:func:`remove_stale`)."""
    remove_stale(final)
    aside = final.parent / f".{final.name}.building-{os.getpid()}"
    shutil.rmtree(aside, ignore_errors=True)
    if final.is_dir():
        shutil.copytree(final, aside)
    return aside


def _swap(new: Path, final: Path) -> None:
    """Put the finished site ``new`` at ``final``: two renames, so ``final`` is always the
    old site or the new one (for an instant, none), never a mixture."""
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _build(
    root: Path,
    records: list[RunRecord],
    store_root: Path | None,
    single: str | None,
    site: _Site,
    emit: Callable[..., None],
    warn: Callable[[str], None] = lambda text: None,
) -> None:
    """Write the site's pages, plots, gallery and downloads into ``root``; ``warn`` gets
    one line per run artefact that cannot be read."""

    env = _env()
    taken: set[str] = set()
    slugs = {r.run_id: slugify(r.run_id, taken) for r in records}
    ctx = leaderboard_context(records, href=lambda r: f"runs/{slugs[r.run_id]}.html")
    colours = plots.model_colours({row["model"] for ds in ctx["datasets"] for row in ds["rows"]})
    ctx["colours"] = colours
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    common = {"version": __version__, "generated": generated}

    run_template = env.get_template("run.html.j2")
    ds_slugs = {ds["name"]: ds["slug"] for ds in ctx["datasets"]}
    siblings: dict[str, list[dict[str, Any]]] = {}
    for ds in ctx["datasets"]:
        for row in ds["rows"]:
            for member in row["members"]:
                siblings[member.run_id] = row["runs"]
    if any(r.file("latents.npz") for r in records):
        isolated.warm()  # t-SNE's helper process imports scikit-learn meanwhile
    emit("run pages", 0, len(records))
    for i, record in enumerate(records, start=1):
        slug = slugs[record.run_id]
        rctx = run_context(record, slug)
        known = len(rctx["problems"])  # the store's, already shown; new ones are artefacts'
        rctx["assets"] = run_assets(record, slug, site, rctx["problems"])
        for problem in rctx["problems"][known:]:
            warn(f"run {record.run_id}: {problem}; its page is built without it")
        rctx["siblings"] = [
            {**s, "href": s["href"].removeprefix("runs/")}
            for s in siblings.get(record.run_id, [])
            if s["run_id"] != record.run_id
        ]
        rctx["latent_caption"] = _latent_caption(record)
        rctx["leaderboard_href"] = f"../index.html#ds-{ds_slugs.get(rctx['dataset'], '')}"
        site.write_text(f"runs/{slug}.html", run_template.render(run=rctx, root="../", **common))
        emit("run pages", i, len(records), record.run_id)

    emit("comparison plots", 0, len(ctx["datasets"]))
    for i, ds in enumerate(ctx["datasets"], start=1):
        ds["run_slugs"] = slugs
        ds["class_names"] = _dataset_class_names(ds)
        ds["plots"] = []
        for figure in dataset_figures(ds, colours):
            rel = f"plots/{ds['slug']}-{figure.name}.png"
            if figure.draw(site.path(rel)):
                size = plots.display_size(site.root / rel)
                ds["plots"].append(
                    {
                        "name": figure.name,
                        "title": figure.title,
                        "src": rel,
                        "alt": f"{figure.title} on {ds['name']}",
                        "caption": figure.caption,
                        "width": size[0] if size else None,
                        "height": size[1] if size else None,
                    }
                )
            else:
                site.discard(rel)
        emit("comparison plots", i, len(ctx["datasets"]), ds["name"])

    emit("gallery", 0, len(ctx["datasets"]))
    for i, ds in enumerate(ctx["datasets"], start=1):
        ds["gallery"] = gallery(ds, site)
        emit("gallery", i, len(ctx["datasets"]), ds["name"])

    emit("downloads", 0, 1)
    ctx["downloads"] = _downloads(store_root, single, site) if records else []
    emit("downloads", 1, 1)

    emit("index", 0, 1)
    # One stylesheet for every page of the site, rather than a copy in each.
    site.write_text("style.css", (TEMPLATES / "site.css").read_text(encoding="utf-8"))
    index = env.get_template("index.html.j2").render(ctx=ctx, root="", **common)
    site.write_text("index.html", index)
    site.prune()
    emit("index", 1, 1)


def _dataset_class_names(ds: dict[str, Any]) -> list[str] | None:
    for row in ds["rows"]:
        per_class = (row["members"][0].metrics or {}).get("per_class")
        if isinstance(per_class, dict) and per_class:
            return [str(k) for k in per_class]
    return None


def report_command(
    run_dir: Path, out: Path | None = None, on_event: Callable[[Any], None] | None = None
) -> Path:
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
    return build_site(run_dir, out, on_event=on_event)
