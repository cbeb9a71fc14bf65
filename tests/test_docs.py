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
