"""The HTML leaderboard: ``build_site(out_dir)`` turns stored runs into a static site.

``aebench report RUN_DIR [--out SITE_DIR]`` calls :func:`report_command`.
The layers read in order: :mod:`.context` (run dirs → plain dicts),
:mod:`.plots` (matplotlib/PIL figures), :mod:`.render` (Jinja2 templates → files).
"""

from __future__ import annotations

from aebench.report.render import build_site, report_command

__all__ = ["build_site", "report_command"]
