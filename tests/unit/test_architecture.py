"""The floor plan, checked from the code's own imports: layers, no circles, a logic-free root.

Every import counts, including those inside functions and under
``TYPE_CHECKING``: a circle hidden behind a function-local import is still a
circle a reader has to untangle.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ads_infra"

# Lower layers first; a module may import its own layer and the layers before it.
LAYERS: list[set[str]] = [
    {"domain"},
    {"core"},
    {"discovery"},
    {"database", "cache", "storage", "external_services", "coordination"},
    {"repositories"},
    {"adapters"},
    {"containers"},
    {"entrypoints"},
]
# The package root holds only public facades (re-exports of deeper modules).
FACADES = {"__init__", "config", "errors", "testing", "infrastructure_demo"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    # os.walk, not rglob: ads_infra/containers is a symlink to the top-level containers/.
    paths = [
        Path(folder, name)
        for folder, _dirs, files in os.walk(PACKAGE, followlinks=True)
        for name in files
        if name.endswith(".py")
    ]
    for path in sorted(paths):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(["ads_infra", *parts])] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every ads_infra module ``module`` imports, wherever the import statement sits."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import submodule" needs the submodule; any other name, the module.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # "from ads_infra.x import name": the module if name is one, else the package.
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("ads_infra") and target != module:
                yield target


GRAPH = {module: set(_imports(module, path)) for module, path in MODULES.items()}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int | None:
    area = _area(module)
    for index, layer in enumerate(LAYERS):
        if area in layer:
            return index
    return None


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_the_imports_it_must() -> None:
    assert "ads_infra.containers.application" in MODULES
    assert "ads_infra.core.loader" in GRAPH["ads_infra.containers.application"]
    assert "ads_infra.database.manager" in GRAPH["ads_infra.database"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_every_module_belongs_to_a_layer_or_is_a_root_facade() -> None:
    strays = [m for m in MODULES if _layer(m) is None and _area(m) not in FACADES]
    assert strays == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_imports_go_down_the_layers(module: str) -> None:
    own = _layer(module)
    assert own is not None
    upward = [
        target
        for target in GRAPH[module]
        if _area(target) in FACADES or (_layer(target) or 0) > own
    ]
    assert upward == [], f"{module} imports a higher layer or a root facade"


def test_the_domain_imports_only_itself_and_the_standard_library() -> None:
    for module, path in MODULES.items():
        if _area(module) != "domain":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or name.startswith("ads_infra.domain")
                assert allowed, f"{module} imports {name}"


def _registers_providers(loop: ast.For) -> bool:
    """``for name in CATALOG: setattr(SomeContainer, name, provider)``: composition, not logic."""
    return all(
        isinstance(s, ast.Expr)
        and isinstance(s.value, ast.Call)
        and isinstance(s.value.func, ast.Name)
        and s.value.func.id == "setattr"
        for s in loop.body
    )


def test_the_composition_root_holds_no_logic() -> None:
    """containers/: imports, provider declarations, one factory function; no control flow."""
    control_flow = (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.AsyncFor, ast.AsyncWith)
    for module, path in MODULES.items():
        if _area(module) != "containers":
            continue
        tree = ast.parse(path.read_text())
        registering = {
            id(n) for n in tree.body if isinstance(n, ast.For) and _registers_providers(n)
        }
        flow = [
            type(n).__name__
            for n in ast.walk(tree)
            if isinstance(n, control_flow) and id(n) not in registering
        ]
        assert flow == [], f"{module} holds control flow: {flow}"
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    assert isinstance(statement, ast.Assign | ast.AnnAssign | ast.Expr), (
                        f"{module}.{node.name} holds a {type(statement).__name__}"
                    )
