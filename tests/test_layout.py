"""The package's import graph: no cycles, and arrows only go down the documented layers.

Every ``import`` statement counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "localsr_cam"
ROOT = "localsr_cam"

LAYERS: list[tuple[str, ...]] = [
    ("__main__",),
    ("cli",),
    ("train",),
    ("measure",),
    ("pipeline",),
    ("capture", "process", "outputs"),
    ("config",),
    ("zoo",),
    ("runtime",),
    ("models",),
    ("frames", "imaging", "paths"),
    ("errors",),
]
"""Top to bottom, as in DESIGN.md "Layout" and each package's docstring: a module may
import its own part and the parts of lower layers, never a sibling in its layer or a
part above it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module ``name`` imports (``from p import m`` counts as
    an import of module ``p.m`` when that is a module, else of ``p``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in known else target)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def layer(module: str) -> int:
    for index, parts in enumerate(LAYERS):
        if part(module) in parts:
            return index
    raise AssertionError(f"{module} belongs to no layer; add its part to LAYERS")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_the_imports_it_should():
    graph = import_graph()
    assert "localsr_cam.zoo.registry" in graph["localsr_cam.zoo.artifacts"]
    assert "localsr_cam.cli.bench" in graph["localsr_cam.cli.main"]  # from pkg import mod
    assert "localsr_cam.process.ops" in graph["localsr_cam.process.processor"]
    assert "localsr_cam.zoo.backends" in graph["localsr_cam.process.processor"]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_every_module_belongs_to_a_layer():
    for module in all_modules():
        if module != ROOT:
            layer(module)


def test_imports_only_go_down_the_layers():
    wrong = []
    for module, imports in import_graph().items():
        if module == ROOT:
            continue
        for target in imports:
            if target == ROOT:
                wrong.append(f"{module} → {target} (import the module, not the package)")
            elif part(target) != part(module) and layer(target) <= layer(module):
                wrong.append(f"{module} → {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_the_package_root_imports_only_the_errors_eagerly():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    top_level = {node.module for node in tree.body
                 if isinstance(node, ast.ImportFrom) and node.module
                 and node.module.startswith(ROOT)}
    assert top_level == {"localsr_cam.errors"}


@pytest.mark.parametrize("package", ["cli", "pipeline", "capture", "process", "outputs",
                                     "measure", "train", "zoo", "runtime", "models"])
def test_each_subpackage_says_what_it_owns_and_may_import(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and "import" in doc, f"{package}/__init__.py needs a docstring"


def test_no_module_imports_another_modules_private_names():
    """bench and eval once imported cli's ``_Parser`` and ``_size``; train imported
    ``unet._safe_load``. A name with a leading underscore stays in its module."""
    borrowed = []
    for module, path in all_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ROOT):
                borrowed += [f"{module}: from {node.module} import {alias.name}"
                             for alias in node.names
                             if alias.name.startswith("_") and alias.name != "__version__"]
    assert not borrowed, borrowed


def test_nothing_imports_the_command_line():
    """The command line sits on top: measure, train and the rest take options objects."""
    importers = [module for module, imports in import_graph().items()
                 if part(module) not in ("cli", "__main__")
                 and any(part(target) == "cli" for target in imports)]
    assert not importers, importers
