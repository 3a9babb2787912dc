"""The import layering the README's design section describes, read from every module with `ast`:
the spine never imports a model package (bar the catalogue), a model package imports of the spine only its
error hierarchy, the contract modules import neither, and no import cycle exists between project modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACT = {"deployments.plugin", "deployments.base", "deployments.media", "deployments.weights", "serve_app.errors"}
SPINE_MAY_NAME_MODELS = {"serve_app.catalogue"}  # the one place a model package is imported from the spine


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def modules(*packages: str) -> dict[str, Path]:
    return {module_name(p): p for package in packages for p in sorted((REPO / package).rglob("*.py"))}


def model_packages() -> set[str]:
    return {f"deployments.{p.parent.name}" for p in (REPO / "deployments").glob("*/__init__.py")}


def imports(path: Path) -> set[str]:
    """Every project module `path` imports at run time (`if TYPE_CHECKING:` blocks are not run)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    project = modules("serve_app", "deployments", "tests")
    return {name for name in found if name in project}


def in_package(module: str, packages: set[str]) -> str | None:
    return next((p for p in packages if module == p or module.startswith(p + ".")), None)


@pytest.mark.parametrize("module", sorted(modules("serve_app")))
def test_the_spine_never_imports_a_model_package(module: str):
    named = {m for m in imports(modules("serve_app")[module]) if in_package(m, model_packages())}
    if module in SPINE_MAY_NAME_MODELS:
        assert all(m.endswith(".spec") or m.endswith(".SPEC") for m in named), named  # specs only: no torch
    else:
        assert named == set(), f"{module} imports model packages {named}"


@pytest.mark.parametrize("module", sorted(m for m in modules("deployments") if in_package(m, model_packages())))
def test_a_model_package_imports_only_the_contract_and_itself(module: str):
    own = in_package(module, model_packages())
    for name in imports(modules("deployments")[module]):
        allowed = name in CONTRACT or in_package(name, {own}) or in_package(name, CONTRACT)
        assert allowed, f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_the_contract_imports_no_spine_and_no_model(module: str):
    path = modules("serve_app", "deployments")[module]
    for name in imports(path):
        assert in_package(name, CONTRACT), f"{module} imports {name}"


def test_no_import_cycle_between_project_modules():
    graph = {name: imports(path) for name, path in modules("serve_app", "deployments").items()}
    graph = {name: {m for m in deps if m in graph} for name, deps in graph.items()}
    state: dict[str, str] = {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph[node]:
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                walk(nxt, [*path, node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            walk(node, [])


def test_no_spine_module_but_the_catalogue_and_builder_names_a_model():
    pattern = re.compile(r"ltx2|wav2lip")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for name, path in modules("serve_app").items()
        if name not in {"serve_app.catalogue", "serve_app.app"}
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
