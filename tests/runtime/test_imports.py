"""runtime/ has no import circle, and every module imports on its own."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME = os.path.join(REPO, "runtime")
MODULES = sorted(f[:-3] for f in os.listdir(RUNTIME) if f.endswith(".py") and f != "__main__.py")


def imports_of(module: str) -> set[str]:
    """runtime modules ``module`` imports, at the top or inside a function."""
    tree = ast.parse(open(os.path.join(RUNTIME, module + ".py"), encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runtime."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("runtime.")}
    return found & set(MODULES)


def test_the_runtime_import_graph_has_no_cycle():
    graph = {m: imports_of(m) for m in MODULES if m != "__init__"}
    assert graph["records"] <= {"errors", "files"}  # the bottom of the scoring path
    assert graph["files"] <= {"errors"}
    done, stack = set(), []

    def visit(m):
        assert m not in stack, "import circle: " + " -> ".join(stack[stack.index(m):] + [m])
        if m in done:
            return
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            visit(n)
        stack.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


@pytest.mark.parametrize("module", [m for m in MODULES if m != "__init__"])
def test_each_module_imports_alone_and_lazily(module):
    """Alone, and without loading an inference runtime or an extra (they load when used)."""
    code = (f"import sys, runtime.{module}\n"
            "print([m for m in ('onnxruntime', 'ai_edge_litert', 'pyarrow', 'pyspark', 'tensorflow') "
            "if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "[]\n")
