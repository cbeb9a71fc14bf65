"""Building the site end to end: links, escaping, index, downloads, progress, rebuilds, command."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from report_helpers import EVIL, _refs, write_run

from aebench.store import RunStore


def test_site_is_self_contained(site: Path) -> None:
    pages = [site / "index.html", *sorted((site / "runs").glob("*.html"))]
    assert len(pages) == 10
    for page in pages:
        parser = _refs(page)
        for tag, ref in parser.refs:
            if ref.startswith(("#", "data:")):
                continue
            parts = urlsplit(ref)
            assert not parts.scheme and not parts.netloc, f"{page.name}: absolute link {ref}"
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.exists(), f"{page.name}: broken {tag} -> {ref}"
            assert site.resolve() in target.parents


def test_html_from_plugins_is_escaped(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    assert EVIL not in index
    assert "evil&lt;script&gt;alert(1)&lt;/script&gt;$x^2$" in index
    assert "plugin description &lt;script&gt;" in index  # description tooltip
    assert _refs(site / "index.html").scripts == 1  # only the sorting script
    assert "<b>not bold</b>" not in index
    assert "&lt;b&gt;not bold&lt;/b&gt;" in index
    page = (site / "runs" / "mnist-evil-d4-s0.html").read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _refs(site / "runs" / "mnist-evil-d4-s0.html").scripts == 0


def test_index_content(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    assert 'id="ds-mnist"' in html and 'id="ds-fashion-mnist"' in html
    assert "FID ↓" in html and "inception, n=10000" in html and "offline-cnn, n=2000" in html
    assert "MSE ↓" in html and "SSIM ↑" in html and "PSNR ↑" in html and "Linear probe ↑" in html
    assert 'data-option="latent_dim"' in html and 'data-option="beta"' in html
    assert ">d<" not in html and ">β<" not in html  # no fixed latent/β columns any more
    assert 'title="MSE [per pixel]: Mean squared error per pixel"' in html  # from the registry
    assert "0.02" in html and "± 0.13" in html
    assert len(re.findall(r'<td class="num g-[a-z]+(?: lead)? best"', html)) >= 5
    assert re.search(
        r'<td class="num g-likelihood[a-z ]* na" data-group="likelihood" data-sort="" '
        r'title="not applicable to this model: it applies to [^"]+">—<',
        html,
    )
    assert "Failed or unfinished runs (1)" in html
    assert "loss is NaN at epoch 2" in html
    titles = re.findall(r"<strong>([^<]*)\.</strong>", html)
    assert titles == [
        "Training curves",
        "Metrics vs latent_dim",
        "Metrics vs beta",
        "Rate–distortion",
        "Per-class MSE by configuration",
    ]
    for name in (
        "mnist-training.png",
        "mnist-vs-latent_dim.png",
        "mnist-vs-beta.png",
        "mnist-rate-distortion.png",
        "mnist-per-class-mse.png",
    ):
        assert f"plots/{name}" in html
        assert (site / "plots" / name).stat().st_size > 1000
    # fashion-mnist has a single AE run: no option sweep, no KL runs
    assert not list((site / "plots").glob("fashion-mnist-*.png"))
    assert re.search(r'data-sort="0\.02(0*\d*)?"', html)


def test_images_are_small(site: Path) -> None:
    sizes = {p: p.stat().st_size for p in site.rglob("*") if p.suffix in (".png", ".gif")}
    assert max(sizes.values()) < 120_000, max(sizes.items(), key=lambda kv: kv[1])
    assert sum(sizes.values()) < 3_000_000


def test_rebuild_prunes_removed_runs(tmp_path: Path) -> None:
    import shutil

    from aebench.report import build_site

    write_run(tmp_path, "keep", light=True)
    gone = write_run(tmp_path, "gone", latent_dim=8, light=True)
    out = tmp_path / "site"
    build_site(tmp_path, out)
    assert (out / "runs" / "gone.html").exists()
    assert (out / "plots" / "mnist-vs-latent_dim.png").exists()
    (out / "notes.txt").write_text("user file")
    shutil.rmtree(gone)
    build_site(tmp_path, out)
    assert not (out / "runs" / "gone.html").exists()
    assert not (out / "plots" / "mnist-vs-latent_dim.png").exists()  # one latent_dim left
    assert (out / "runs" / "keep.html").exists()
    assert (out / "notes.txt").exists()  # only runs/ and plots/ are the builder's


def test_a_failed_rebuild_leaves_the_published_site_whole(tmp_path: Path, monkeypatch) -> None:
    from aebench.report import build_site, render

    write_run(tmp_path, "one", light=True)
    out = tmp_path / "site"
    build_site(tmp_path, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_run(tmp_path, "two", latent_dim=8, light=True)

    def half(root: Path, *args: Any) -> None:  # writes part of the new site, then fails
        (root / "index.html").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(render, "_build", half)
    with pytest.raises(RuntimeError):
        build_site(tmp_path, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the old site, untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []
    monkeypatch.undo()
    build_site(tmp_path, out)  # the swap: the new site whole, nothing left beside it
    assert (out / "runs" / "two.html").exists() and (out / "runs" / "one.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []


def test_report_command(tmp_path: Path) -> None:
    from aebench.errors import DataError
    from aebench.report import report_command

    with pytest.raises(DataError, match="does not exist"):
        report_command(tmp_path / "nope")
    with pytest.raises(DataError, match="not an aebench output folder"):
        report_command(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(DataError, match="no runs found") as err:
        report_command(tmp_path)
    assert "\n" not in str(err.value)
    write_run(tmp_path, "one", light=True)
    index = report_command(tmp_path, tmp_path / "public")
    assert index == tmp_path / "public" / "index.html" and index.exists()
    # the runs/ folder and a single run dir work too
    assert report_command(tmp_path / "runs", tmp_path / "from-runs").exists()
    single = report_command(tmp_path / "runs" / "one", tmp_path / "single")
    assert (single.parent / "runs" / "one.html").exists()


def test_build_site_reports_progress(tmp_path: Path) -> None:
    from aebench.report import SITE_STEPS, SiteProgress, build_site

    for i in range(3):
        write_run(tmp_path, f"r{i}", seed=i, light=True)
    events: list[SiteProgress] = []
    build_site(tmp_path, on_event=events.append)
    steps = [e.step for e in events]
    assert [s for i, s in enumerate(steps) if s not in steps[:i]] == list(SITE_STEPS)
    pages = [e for e in events if e.step == "run pages"]
    assert [(e.done, e.total) for e in pages] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert pages[-1].item == "r2" and "run pages 3/3" in pages[-1].text
    assert (events[-1].step, events[-1].done, events[-1].total) == ("index", 1, 1)


def test_downloads_and_model_links(site: Path, bench: Path) -> None:
    import pandas as pd

    html = (site / "index.html").read_text(encoding="utf-8")
    assert '<a href="results.csv" download>CSV</a>' in html
    assert '<a href="results.parquet" download>Parquet</a>' in html
    table = pd.read_csv(site / "results.csv")
    assert set(table["run_id"]) == set(RunStore(bench).run_ids())
    assert set(pd.read_parquet(site / "results.parquet")["run_id"]) == set(table["run_id"])
    # a model name links to its (first) run page
    assert '<a href="runs/mnist-ae-cnn-d16-s0.html">ae-cnn</a>' in html


def test_compact_html_folds_white_space_between_tags_only() -> None:
    from aebench.report.render import compact_html

    page = (
        "<div>\n  <p>a  b</p>\n  <p>c</p>\n<pre>x\n  <b>y</b>\n</pre>"
        "<script>if (a > b)\n  c < d</script>\n</div>"
    )
    out = compact_html(page)
    assert out.startswith("<div> <p>a  b</p> <p>c</p>")  # one space: renders the same
    assert "<pre>x\n  <b>y</b>\n</pre>" in out  # verbatim blocks untouched
    assert "<script>if (a > b)\n  c < d</script>" in out


def test_every_page_uses_the_one_local_stylesheet(site: Path) -> None:
    pages = [site / "index.html", *sorted((site / "runs").glob("*.html"))]
    assert len(pages) > 1 and (site / "style.css").stat().st_size > 1000
    for page in pages:
        html = page.read_text()
        (href,) = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
        assert (page.parent / href).resolve() == (site / "style.css").resolve(), page
        assert "<style>" not in html


def test_corrupt_artefacts_leave_the_site_whole_and_are_named(tmp_path: Path) -> None:
    """A garbage latents.npz, an empty latents_epochs.npz and an empty per-epoch PNG in
    one run: the site is built, without those figures, and the run page says why."""
    from aebench.report import build_site

    run = write_run(tmp_path, "broken", epochs=3)
    (run / "latents.npz").write_bytes(b"not a zip file")
    (run / "latents_epochs.npz").write_bytes(b"")
    (run / "images" / "recon_epoch_002.png").write_bytes(b"")
    write_run(tmp_path, "fine", latent_dim=8)
    out = tmp_path / "site"
    build_site(tmp_path, out)
    page = (out / "runs" / "broken.html").read_text()
    for name in ("latents.npz", "latents_epochs.npz", "recon_epoch_002.png"):
        assert re.search(re.escape(name) + r" unreadable", page), name
    assert (out / "runs" / "broken" / "recon_epochs.gif").exists()  # the readable frames
    assert not (out / "runs" / "broken" / "latents.png").exists()
    assert (out / "runs" / "fine" / "latents.png").exists()
