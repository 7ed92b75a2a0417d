"""The package's layout rules, read statically from the source (nothing is imported):

- no gan_jax module imports a private name (`_name`) of another module, by `from m import _x`
  or by `m._x` on an imported module;
- no import circle among gan_jax modules, counting module-level AND function-local imports
  (a circle hidden inside a function is still a circle);
- at most MAX_TOP_ENTRIES entries at the top of gan_jax/;
- no library module over MAX_LINES lines;
- function-local imports of gan_jax modules only where LOCAL_IMPORTS_ALLOWED says why.

Files other helpers are still rewriting fail some rules today; they are marked
xfail(strict=True) with the owner named, so the mark must go when the file is fixed.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "gan_jax")
MAX_TOP_ENTRIES = 12
MAX_LINES = 400

# Function-local imports of gan_jax modules that are deliberate, and why. A module name, or a
# package prefix ending in "." for every module under it.
LOCAL_IMPORTS_ALLOWED = {
    "gan_jax.commands.": "a command imports what it drives when it runs, so `gan-jax --help` and "
    "argument errors never import JAX, Flax or scikit-learn (cli.py imports every command module)",
    "gan_jax.serve.server": "the gRPC front end needs the optional `grpc` extra; the HTTP server runs without it",
    "gan_jax.data.image_folder": "image_tfds imports tensorflow_datasets, the optional `images` extra",
    "gan_jax.data.nuclei": "image_tfds imports tensorflow_datasets, the optional `images` extra",
}

# Other helpers' files that still break a rule: {(rule, module): owner}. Each is an xfail(strict):
# when the owner fixes the file, its test passes, fails as XPASS, and the entry must be removed.
PENDING: dict[tuple[str, str], str] = {}  # every rule holds for every module today


@functools.cache
def modules() -> dict[str, str]:
    """{dotted module name: file path} of every module of the package (a package is its __init__)."""
    found = {}
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[: -len(".py")].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


@functools.cache
def tree(module: str) -> ast.Module:
    with open(modules()[module]) as f:
        return ast.parse(f.read(), modules()[module])


def is_package(module: str) -> bool:
    return modules()[module].endswith("__init__.py")


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, relative imports resolved against `module`."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package(module) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> Iterator[tuple[ast.stmt, list[str], bool]]:
    """(import statement, gan_jax modules it loads, inside a function?) for every import of
    `module`. `from pkg import name` loads pkg.name when that is a module, else pkg."""
    local_nodes = {
        id(n)
        for fn in ast.walk(tree(module))
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for n in ast.walk(fn)
    }
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "gan_jax"]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(module, node)
            if base.split(".")[0] != "gan_jax":
                continue
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]
        else:
            continue
        if targets:
            yield node, targets, id(node) in local_nodes


def private_imports(module: str) -> list[str]:
    """`from m import _x` and `m._x` (m an imported gan_jax module) reaching into another module."""
    found, bound = [], {}
    for node, _, _ in imports(module):
        if isinstance(node, ast.ImportFrom):
            base = absolute(module, node)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules():
                    bound[alias.asname or alias.name] = target
                elif _private(alias.name) and base != module:
                    found.append(f"line {node.lineno}: from {base} import {alias.name}")
        else:
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
            target = bound.get(node.value.id)
            if target and target != module:
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr} ({target})")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def import_graph() -> dict[str, set[str]]:
    """module -> the gan_jax modules it imports anywhere in its file (not itself)."""
    return {
        m: {t for _, targets, _ in imports(m) for t in targets if t != m and t in modules()}
        for m in modules()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def undocumented_local_imports(module: str) -> list[str]:
    if any(module == k or (k.endswith(".") and module.startswith(k)) for k in LOCAL_IMPORTS_ALLOWED):
        return []
    return [f"line {n.lineno}: {ast.unparse(n)}" for n, _, local in imports(module) if local]


def line_count(module: str) -> int:
    with open(modules()[module]) as f:
        return sum(1 for _ in f)


def pending(rule: str, module: str):
    """The module as a pytest param, xfail(strict) where PENDING names its owner."""
    owner = PENDING.get((rule, module))
    if owner is None:
        return module
    mark = pytest.mark.xfail(strict=True, reason=f"{rule} rule: being fixed by {owner}")
    return pytest.param(module, marks=mark)


@pytest.mark.parametrize("module", [pending("private", m) for m in modules()])
def test_no_module_imports_a_private_name_of_another(module):
    assert private_imports(module) == [], f"{module} reaches into another module's private names"


# Circles other helpers are breaking: {modules of the circle: owner}.
PENDING_CIRCLES: dict[tuple[str, ...], str] = {}  # none today


def test_the_package_has_no_import_circle():
    """Function-local imports count: hiding a circle inside a function does not remove it."""
    found = [c for c in circles(import_graph()) if tuple(c) not in PENDING_CIRCLES]
    assert found == [], f"import circles: {found}"


@pytest.mark.parametrize(
    "circle",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=f"circle: being broken by {owner}"))
        for c, owner in PENDING_CIRCLES.items()
    ],
)
def test_a_pending_circle_is_gone(circle):
    assert list(circle) not in circles(import_graph())


def test_the_top_of_the_package_stays_small():
    entries = sorted(e for e in os.listdir(PACKAGE) if e != "__pycache__")
    assert len(entries) <= MAX_TOP_ENTRIES, entries


@pytest.mark.parametrize("module", [pending("lines", m) for m in modules()])
def test_no_library_module_is_over_the_line_limit(module):
    assert line_count(module) <= MAX_LINES, f"{modules()[module]}: {line_count(module)} lines; split it"


@pytest.mark.parametrize("module", [pending("local", m) for m in modules()])
def test_function_local_imports_of_the_package_are_documented(module):
    found = undocumented_local_imports(module)
    assert found == [], (
        f"{module}: function-local imports of gan_jax modules; import at the top, or add the module "
        f"to LOCAL_IMPORTS_ALLOWED with the reason: {found}"
    )


def test_the_library_never_imports_the_benchmarks():
    """benchmarks/ (drivers, README generator, lock reader, energy meter) sits outside the library."""
    found = [
        f"{m} line {n.lineno}: {ast.unparse(n)}"
        for m in modules()
        for n in ast.walk(tree(m))
        if isinstance(n, ast.Import | ast.ImportFrom)
        and any(name.split(".")[0] == "benchmarks" for name in _imported_names(n))
    ]
    assert found == []


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


@pytest.mark.parametrize("folder", ["gan_jax", "benchmarks", "tests", "experiments"])
def test_nothing_edits_sys_path(folder):
    """Modules are imported as packages (pytest's `pythonpath = ["."]`, `python -m benchmarks.x`),
    never by putting a folder on sys.path."""
    found = []
    for dirpath, dirs, files in os.walk(os.path.join(ROOT, folder)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    nodes = ast.walk(ast.parse(f.read(), path))
                found += [
                    f"{os.path.relpath(path, ROOT)}:{n.lineno}"
                    for n in nodes
                    if isinstance(n, ast.Attribute) and n.attr == "path" and ast.unparse(n.value) == "sys"
                ]
    assert found == []


# -- the checks themselves catch what they are for ---------------------------------------------


def test_the_circle_finder_finds_a_circle_and_only_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
