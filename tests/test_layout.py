"""The house's shape: ``import provisioner`` (what every plugin does) loads the public API and what it needs, not
the loop, the ledger, the CLI or the runtime; and the host's modules import one another without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "provisioner"
# the public API's own modules: the model, the plugin types, the clock, the config's errors and option checks,
# the hook marker, redaction, name checks (the request helpers of httpdeadline and plugin_options load on first use)
PUBLIC = {"provisioner", "provisioner.clock", "provisioner.config", "provisioner.hookspecs", "provisioner.logs",
          "provisioner.model", "provisioner.types", "provisioner.values"}


def test_import_provisioner_loads_only_the_public_api():
    code = "import sys, provisioner; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'provisioner')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) == PUBLIC


def test_the_lazy_names_load_on_first_use():
    code = ("import sys, provisioner; provisioner.plugin_options; provisioner.deadline; "
            "print(' '.join(m for m in ('provisioner.runtime', 'provisioner.httpdeadline') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["provisioner.runtime", "provisioner.httpdeadline"]


def module_imports() -> dict[str, set[str]]:
    """Host module -> the host modules it imports when it is loaded (module level; imports inside functions are
    made on use and cannot make a cycle at load)."""
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
        nodes = [n for top in ast.parse(path.read_text(encoding="utf-8")).body
                 if isinstance(top, (ast.Import, ast.ImportFrom, ast.If, ast.Try)) for n in ast.walk(top)]
        edges = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                edges |= {m for m in (base, *(f"{base}.{a.name}" for a in node.names)) if m in modules}
        graph[name] = edges - {name}
    return graph


def test_the_host_imports_no_cycle():
    graph = module_imports()
    assert "provisioner.loop" in graph["provisioner.cli.run"]  # the graph sees relative imports
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
