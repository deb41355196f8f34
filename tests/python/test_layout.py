"""The tree's boundaries: what executors import, and the adapter's import graph.

``python_udfs`` is shipped to Spark's executors (``make dist``, Connect
artifacts): it imports nothing of the tools for people (``stabilization_tools``:
the report, the evaluation, synthetic data) nor of dbt. The adapter's modules
import each other in one direction only (function-level imports included).
"""

from __future__ import annotations

import ast
import sys
from graphlib import CycleError, TopologicalSorter

from conftest import PROJECT_DIR


def imported_modules(path) -> set[str]:
    """Every module a file imports, at any level (``from . import x`` resolved)."""
    package = ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_what_executors_import_needs_no_tool_and_no_dbt():
    shipped = sorted((PROJECT_DIR / "python_udfs").glob("*.py"))
    assert shipped
    allowed = {"python_udfs", "numpy", "pandas", "pyarrow", "pyspark", "__future__"}
    for path in shipped:
        third_party = {
            name.split(".")[0]
            for name in imported_modules(path)
            if name.split(".")[0] not in sys.stdlib_module_names
        }
        assert third_party <= allowed, (path.name, third_party - allowed)


def test_the_adapter_modules_import_each_other_in_one_direction():
    folder = PROJECT_DIR / "dbt" / "adapters" / "sparksession"
    prefix = "dbt.adapters.sparksession."
    graph = {}
    for path in folder.glob("*.py"):
        module = prefix + path.stem
        graph[module] = {
            name for name in imported_modules(path) if name.startswith(prefix) and name != module
        } & {prefix + p.stem for p in folder.glob("*.py")}
    assert graph[prefix + "connections"]  # the graph was read: connections imports others
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None
