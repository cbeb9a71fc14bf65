"""The HTML leaderboard: ``build_site(out_dir)`` turns stored runs into a static site.

``aebench report RUN_DIR [--out SITE_DIR]`` calls :func:`report_command`.
Runs are read through :class:`aebench.store.RunStore`; the layers, in order:
:mod:`.format` (display text), :mod:`.columns` (leaderboard columns from the
metrics registry), :mod:`.leaderboard` (per-dataset tables),
:mod:`.runpage` (one run's page), :mod:`.comparisons` (which figures compare
runs), :mod:`.plots` (matplotlib/PIL figures) and :mod:`.render` (Jinja2
templates → files).
"""

from __future__ import annotations

from aebench.report.render import SITE_STEPS, SiteProgress, build_site, report_command

__all__ = ["SITE_STEPS", "SiteProgress", "build_site", "report_command"]
