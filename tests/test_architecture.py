"""The house: no import cycle anywhere in the package (imports inside functions included; those under
``TYPE_CHECKING`` are exempt: they never run), no module over the line budget, and the lower modules never
import the ones that use them."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "NeuralNetworks"
ROOT = PACKAGE.name
MAX_MODULE_LINES = 400
# modules that take a model as an argument and must never import the model classes
MODEL_USERS = ("nn.training", "nn.parallel", "nn.saving", "nn.callbacks", "nn.inspection", "nn.graph")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST):
    """Every import statement that can run: all of them but those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports (a name imported from a package counts as its __init__
    unless it is a submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in runtime_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        found.update(target for target in targets if target in MODULES and target != name)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_package():
    assert cycles() == []


@pytest.mark.parametrize("user", MODEL_USERS)
def test_what_takes_a_model_never_imports_the_model_classes(user):
    prefix = f"{ROOT}.{user}"
    importers = {name: targets for name, targets in GRAPH.items() if name == prefix or name.startswith(prefix + ".")}
    assert importers, f"no module {prefix}"
    for name, targets in importers.items():
        assert f"{ROOT}.nn.models" not in targets, name


def test_export_never_imports_the_web_app():
    for name, targets in GRAPH.items():
        if name.startswith(f"{ROOT}.export"):
            assert not any(target.startswith(f"{ROOT}.app") for target in targets), name


def test_no_module_is_over_the_line_budget():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_the_import_reader_finds_a_cycle_when_there_is_one():
    """The check above can fail: two modules that import each other form a component."""
    saved = dict(GRAPH)
    try:
        GRAPH[f"{ROOT}.budget"] = {*GRAPH[f"{ROOT}.budget"], f"{ROOT}.nn.models"}
        assert any(f"{ROOT}.budget" in component for component in cycles())
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
