"""The public plugin API: ``provisioner.__all__`` is what plugins import, each name documented where it is
defined; plugins import nothing else of the host; and the host's imports run one way (nothing outside
``provisioner.cli`` imports the CLI)."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import provisioner

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "provisioner"
PLUGIN_SOURCES = [
    *sorted(REPO.glob("plugins/*/src")), *sorted(REPO.glob("examples/plugins/*/src")), SRC / "sim",
]
ALLOWED_MODULES = {"provisioner"}  # and only the names of its __all__


def imports(path: Path, package: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names) for every import in a file of ``package`` (relative ones made absolute)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            yield node.lineno, module, [a.name for a in node.names]


def package_of(path: Path, root: Path) -> str:
    """The package a file's relative imports start from."""
    parts = list(path.relative_to(root).parts[:-1])
    return ".".join(["provisioner", "sim", *parts] if root == SRC / "sim" else parts)


def test_every_public_name_is_documented_where_it_is_defined():
    undocumented = []
    for name in provisioner.__all__:
        obj = getattr(provisioner, name)
        doc = inspect.getdoc(obj) or ""
        if not doc or doc.startswith(f"{name}("):  # a dataclass's generated signature is no documentation
            undocumented.append(name)
    assert undocumented == []


def test_the_context_documents_every_field():
    doc = inspect.getdoc(provisioner.PluginContext) or ""
    for field in provisioner.PluginContext.__dataclass_fields__:
        assert f"``{field}``" in doc, f"PluginContext does not document {field}"


def test_context_resolve_keeps_absolute_paths_and_puts_relative_ones_under_the_config(tmp_path: Path):
    context = provisioner.PluginContext(config_dir=tmp_path / "etc")
    assert context.resolve("phones.txt") == tmp_path / "etc" / "phones.txt"
    assert context.resolve("/var/lib/phones.txt") == Path("/var/lib/phones.txt")
    assert context.resolve(Path("sub") / "x") == tmp_path / "etc" / "sub" / "x"


@pytest.mark.parametrize("root", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_only_the_public_api(root: Path):
    assert root.is_dir()
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line, module, names in imports(path, package_of(path, root)):
            where = f"{path.relative_to(REPO)}:{line}"
            if module == "provisioner":
                bad += [f"{where}: provisioner.{n} is not public" for n in names if n not in provisioner.__all__]
            elif module.startswith("provisioner.") and not module.startswith("provisioner.sim"):
                bad.append(f"{where}: imports {module}, not the public API (from provisioner import ...)")
            elif module.startswith("provisioner.sim") and root != SRC / "sim":
                bad.append(f"{where}: imports {module}")
    assert bad == []


def test_the_host_never_imports_the_cli():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        package = ".".join(["provisioner", *path.relative_to(SRC).parts[:-1]])
        if package.startswith("provisioner.cli") or path.name == "__main__.py":  # the CLI, and what runs it
            continue
        for line, module, names in imports(path, package):
            targets = [module] + [f"{module}.{n}" for n in names]
            if any(t == "provisioner.cli" or t.startswith("provisioner.cli.") for t in targets):
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {module} {names}")
    assert bad == []


def test_the_test_kit_is_a_pytest_plugin(provisioner_context, provisioner_clock, tmp_path: Path):
    """Loaded through its ``pytest11`` entry point: its fixtures are there without any conftest."""
    assert provisioner_context.clock is provisioner_clock
    assert provisioner_context.state_dir == tmp_path / "state" and provisioner_context.state_dir.is_dir()
    assert provisioner_context.environ == {} and provisioner_context.config_dir == tmp_path
    start = provisioner_clock.now()
    provisioner_clock.sleep(30)
    assert provisioner_clock.now() == start + 30
