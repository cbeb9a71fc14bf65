"""The layers DESIGN.md names: every import between aebench modules points down.

The layer list is read from DESIGN.md's "Layers" section, so the document and
the check cannot drift apart; every module of the package must appear there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aebench"


def design_layers(text: str) -> dict[str, int]:
    """Module name (``aebench.x.y``; ``aebench`` for the package) -> layer number."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        m = re.match(r"^(\d+)\. [^:]+: (.*)$", line)
        if not m:
            continue
        for name in re.findall(r"`([\w.]+)`", m.group(2)):
            full = "aebench" if name == "aebench" else f"aebench.{name}"
            assert full not in layers, f"{full} is listed twice in DESIGN.md's layers"
            layers[full] = int(m.group(1))
    return layers


def package_sources(root: Path = PACKAGE) -> dict[str, str]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text()
    return out


def _resolve(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, source: str, modules: set[str]) -> list[tuple[str, int, bool]]:
    """(imported aebench module, line, inside a function) for every import that runs."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for sub in node.body for n in ast.walk(sub))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node))
    is_package = module == "aebench" or f"{module}.__init__" in modules
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        for target in targets:
            if target == "aebench" or target.startswith("aebench."):
                resolved = _resolve(target, modules)
                if resolved and resolved != module:
                    out.append((resolved, node.lineno, id(node) in in_function))
    return out


def upward_imports(sources: dict[str, str], layers: dict[str, int]) -> list[str]:
    modules = set(sources)
    bad = []
    for module, source in sorted(sources.items()):
        for target, line, _ in imports_of(module, source, modules):
            if layers[target] > layers[module]:
                bad.append(
                    f"{module}:{line} imports {target} (layer {layers[module]} -> {layers[target]})"
                )
    return bad


@pytest.fixture(scope="module")
def layers() -> dict[str, int]:
    return design_layers((ROOT / "DESIGN.md").read_text())


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return package_sources()


def test_every_module_has_a_layer_and_every_listed_module_exists(layers, sources):
    assert sorted(set(sources) - set(layers)) == [], "modules missing from DESIGN.md's layers"
    assert sorted(set(layers) - set(sources)) == [], "DESIGN.md lists modules that do not exist"


def test_no_import_points_up(layers, sources):
    assert upward_imports(sources, layers) == []


@pytest.mark.parametrize(
    "planted",
    [
        "from aebench.runner import run\n",  # module level
        "def f():\n    from aebench.cli import app\n    return app\n",  # inside a function
        "from . import catalog\n",  # relative
    ],
)
def test_a_planted_upward_import_is_reported(layers, sources, planted):
    """The check is not vacuous: an upward import in a low module fails it."""
    sources = {**sources, "aebench.errors": sources["aebench.errors"] + "\n" + planted}
    bad = upward_imports(sources, layers)
    assert len(bad) == 1 and bad[0].startswith("aebench.errors:")


def test_imports_for_type_checking_only_are_not_counted(layers, sources):
    planted = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aebench.runner import run\n"
    )
    sources = {**sources, "aebench.errors": sources["aebench.errors"] + "\n" + planted}
    assert upward_imports(sources, layers) == []


def test_no_module_is_named_after_a_standard_library_module(sources):
    import sys

    clashes = [m for m in sources if m.rpartition(".")[2] in sys.stdlib_module_names]
    assert clashes == []


def test_every_file_design_md_names_exists():
    """DESIGN.md's owner table and prose name files that exist (a renamed module
    must take its row along)."""
    text = (ROOT / "DESIGN.md").read_text()
    named = set(re.findall(r"`(aebench/[\w/.]+)`", text))
    assert len(named) > 20  # the owner table is there
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == []


def test_only_the_command_line_defers_imports_of_aebench_modules(sources):
    """Everywhere else imports sit at the top, where a reader sees a module's
    dependencies; cli.py defers them so that `aebench --help` does not import torch,
    and the entry point (__main__) imports cli inside a Ctrl-C guard."""
    modules = set(sources)
    deferred = sorted(
        {m for m, s in sources.items() for _, _, inside in imports_of(m, s, modules) if inside}
    )
    assert deferred == ["aebench.__main__", "aebench.cli"]
