"""Services, tasks and their helpers import each other one way only, at module level."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "customers/tasks.py",
    "customers/queue.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "customers/services").glob("*.py")),
    "loyalty/services/accounts.py",
    "loyalty/services/tiers.py",
    "loyalty/lock_objects.py",
]


def _name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _project_imports(tree: ast.AST, *, in_functions: bool) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and in_functions:
            continue
        scope = ast.walk(node) if in_functions else ast.iter_child_nodes(node)
        for child in scope:
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
    return {name for name in found if name.split(".")[0] in {"customers", "loyalty", "campaigns"}}


@pytest.mark.parametrize("path", MODULES)
def test_no_function_level_import_between_services_and_tasks(path):
    tree = ast.parse((ROOT / path).read_text())
    inner = _project_imports(tree, in_functions=True)
    assert not {name for name in inner if name in {_name(m) for m in MODULES}}


def test_the_module_level_imports_of_services_and_tasks_have_no_circle():
    names = {_name(m): m for m in MODULES}
    graph = {}
    for name, path in names.items():
        imports = _project_imports(ast.parse((ROOT / path).read_text()), in_functions=False)
        graph[name] = {dep for dep in imports if dep in names}

    def visit(name, trail):
        assert name not in trail, " -> ".join([*trail, name])
        for dep in graph[name]:
            visit(dep, [*trail, name])

    for name in graph:
        visit(name, [])
