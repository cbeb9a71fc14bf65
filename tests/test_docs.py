"""Documentation stays true: every hook is in the README's hook reference."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from aebench import hookspecs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
HOOKS = [
    n for n, f in vars(hookspecs).items() if inspect.isfunction(f) and n.startswith("register_")
]


def test_there_are_hooks():
    assert {"register_models", "register_datasets"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"{hook}({params})" in README, f"README.md must document `{hook}({params})`"
    assert getattr(hookspecs, hook).__doc__, f"hookspec {hook} needs a docstring"


def test_readme_test_command_is_what_ci_runs():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    match = re.search(r"^\s*(python -m pytest[^\n`]*)", README, re.M)
    assert match, "README must give the test command"
    assert match.group(1).strip() in ci


def test_every_builtin_family_is_in_the_families_table():
    """README's "The families" table names each built-in family once, with its
    defaults as the config class has them."""
    import aebench

    section = README.split("## The families", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    builtin = [s for s in aebench.list_models() if s.plugin.endswith("(built-in)")]
    assert {s.family for s in builtin} == named
    for spec in builtin:
        row = next(r for r in rows if f"`{spec.family}`" in r.split("|")[1])
        defaults = spec.config_cls().to_dict()
        for name, value in re.findall(r"`([a-z_]+)=([^`]+)`", row.split("|")[3]):
            if name in defaults:
                assert _same(defaults[name], value), (spec.family, name, defaults[name], value)


def _same(default: object, text: str) -> bool:
    try:
        return float(str(default)) == float(text)
    except ValueError:
        return str(default).lower() == text.lower()
