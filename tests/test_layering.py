"""The import layering the README's design section describes, read from every module with `ast`: the spine
never imports a model package (bar the catalogue), a model package imports only the plug-in contract, the shared
media I/O and itself, `deployments/` never imports the spine, no two project modules import each other (directly
or through others, type-only imports included), and no module is over MAX_MODULE_LINES lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACT = {
    "deployments.contract",
    "deployments.media",
    "deployments.previews",
    "deployments.images",
    "deployments.limits",
    "deployments.weights",
}  # what a model package may import
MAX_MODULE_LINES = 400
SPINE_MAY_NAME_MODELS = {"serve_app.catalogue"}  # the one place a model package is imported from the spine


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def modules(*packages: str) -> dict[str, Path]:
    return {module_name(p): p for package in packages for p in sorted((REPO / package).rglob("*.py"))}


def model_packages() -> set[str]:
    return {f"deployments.{p.parent.name}" for p in (REPO / "deployments").glob("*/__init__.py")} - CONTRACT


def imports(path: Path, type_only: bool = False) -> set[str]:
    """Every project module `path` imports at run time; with `type_only`, those under `if TYPE_CHECKING:` too."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and not type_only:
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    project = modules("serve_app", "deployments", "tests", "client")
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


@pytest.mark.parametrize("module", sorted(modules("deployments")))
def test_deployments_never_import_the_spine(module: str):
    spine = {
        name for name in imports(modules("deployments")[module], type_only=True) if in_package(name, {"serve_app"})
    }
    assert spine == set(), f"{module} imports {spine}"


@pytest.mark.parametrize("module", sorted(m for m in modules("deployments") if in_package(m, model_packages())))
def test_a_model_package_imports_only_the_contract_and_itself(module: str):
    own = in_package(module, model_packages())
    for name in imports(modules("deployments")[module], type_only=True):
        allowed = in_package(name, {own}) or in_package(name, CONTRACT)
        assert allowed, f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(m for m in modules("deployments") if in_package(m, CONTRACT)))
def test_the_contract_imports_no_spine_and_no_model(module: str):
    for name in imports(modules("deployments")[module], type_only=True):
        assert in_package(name, CONTRACT), f"{module} imports {name}"


def test_no_two_modules_import_each_other_directly_or_through_others():
    graph = {name: imports(path, type_only=True) for name, path in modules("serve_app", "deployments").items()}
    graph = {name: {m for m in deps if m in graph and m != name} for name, deps in graph.items()}
    state: dict[str, str] = {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                walk(nxt, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node, [])


@pytest.mark.parametrize("module", sorted(modules("serve_app", "deployments", "client")))
def test_no_module_is_over_the_line_limit(module: str):
    path = modules("serve_app", "deployments", "client")[module]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(REPO)} has {lines} lines (limit {MAX_MODULE_LINES})"


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
