"""The flow is one-directional: no import circle inside vidcluster, and no import hidden in a function
(deferred imports are kept for optional dependencies only)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import vidcluster

PACKAGE = Path(vidcluster.__file__).parent
OPTIONAL = {"ray"}  # optional extras, imported where they are used
# Builders of model graphs: they import onnx (~0.5 CPU s) and are needed only when a graph is not
# cached yet (models.graphs). They import nothing of vidcluster, so importing them late cannot hide
# an import circle (test_graph_builders_import_nothing_of_vidcluster).
BUILDERS = {"vidcluster.models.dlib_graph", "vidcluster.models.onnx_float"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = ".".join(p for p in (base if node.level else "", node.module or "") if p)
    names = [f"{target}.{a.name}" for a in node.names]
    return [target, *names]


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """({module: vidcluster modules it imports at the top}, [(module, name) imported inside a function])."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    deferred: list[tuple[str, str]] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(module, node, path.name == "__init__.py") if node.level else [node.module or ""]
            else:
                continue
            late_ok = any(t.split(".")[0] in OPTIONAL or t in BUILDERS for t in targets)
            if id(node) not in top and not late_ok:
                deferred.append((module, ", ".join(targets)))
            graph[module] |= {t for t in targets if t in modules and t != module}
    return graph, deferred


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_circle():
    graph, _ = import_graph()
    assert len(graph) > 20
    # the package itself re-exports analyse; every other module must be reachable without a circle
    inner = {m: {n for n in deps if n != "vidcluster"} for m, deps in graph.items() if m != "vidcluster"}
    assert _cycle(inner) is None, " -> ".join(_cycle(inner))


def test_no_deferred_imports():
    _, deferred = import_graph()
    assert deferred == []


# Layers from the bottom up: a module imports only from its own layer and the layers below it.
LAYERS = [
    {
        "vidcluster.errors",
        "vidcluster.version",
        "vidcluster.types",
        "vidcluster.catalog",
        "vidcluster.config",
        "vidcluster.procs",
    },
    {"vidcluster.video"},
    {"vidcluster.models"},
    {"vidcluster.case"},
    {"vidcluster.analysis"},
    {"vidcluster.report"},
    {"vidcluster.run"},
    {"vidcluster.commands"},
    {"vidcluster.serve"},
    {"vidcluster.cli", "vidcluster.__main__", "vidcluster"},
]


def layer_of(module: str) -> int:
    """Index in LAYERS of the layer holding `module` (a module or any module of a sub-package)."""
    for i, layer in enumerate(LAYERS):
        if any(module == top or (module.startswith(top + ".") and top != "vidcluster") for top in layer):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {n}" for m, deps in graph.items() for n in deps if layer_of(n) > layer_of(m))


def test_every_layer_imports_only_below_itself():
    graph, _ = import_graph()
    assert {layer_of(m) for m in graph} == set(range(len(LAYERS)))  # every layer holds modules
    assert upward_imports(graph) == []


def test_the_layer_check_sees_an_upward_import():
    assert upward_imports({"vidcluster.case.store": {"vidcluster.analysis.tracks"}}) == [
        "vidcluster.case.store -> vidcluster.analysis.tracks"
    ]
    assert upward_imports({"vidcluster.analysis.tracks": {"vidcluster.case.store"}}) == []


def test_importing_the_package_loads_no_model_library():
    code = (
        "import sys, vidcluster, vidcluster.types, vidcluster.config; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dlib', 'cv2', 'av', 'faiss', 'scipy', 'onnxruntime'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_graph_builders_import_nothing_of_vidcluster():
    graph, _ = import_graph()
    assert all(graph[b] == set() for b in BUILDERS)


def test_a_run_does_not_import_onnx():
    # the models' graphs come from the cache; the onnx package is for building them only
    code = "import sys, vidcluster.cli; print('onnx' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_checker_sees_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_a_run_does_not_import_scikit_learn():
    # scikit-learn's import (scipy.stats with it) cost ~2 CPU s, more than a short clip's analysis
    code = (
        "import sys, vidcluster.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'vidcluster'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['vidcluster']"
