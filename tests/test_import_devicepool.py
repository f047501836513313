"""``provisioner import-devicepool FILE``: the YAML goes to the one importer that accepts it; anything else is
one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provisioner import ConfigImporter, ImportResult, hookimpl
from provisioner import manager
from provisioner.cli import cli


class Importers:
    def __init__(self, *importers: ConfigImporter) -> None:
        self.importers = importers

    @hookimpl
    def provisioner_config_importers(self) -> Any:
        return list(self.importers)


def kind(value: str, toml: str = "", not_carried: tuple[str, ...] = ()) -> ConfigImporter:
    return ConfigImporter(f"kind-{value}", f"files whose kind is {value}",
                          accepts=lambda doc: doc.get("kind") == value,
                          convert=lambda doc, source: ImportResult(toml or f"# from {source}\n", not_carried))


def broken_accepts(doc: Any) -> bool:
    raise KeyError("boom")


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch):
    def install(*importers: ConfigImporter) -> None:
        pm = manager.PluginManager(entry_points_=[], only="none")
        pm.register(Importers(*importers), "importers")
        monkeypatch.setattr(manager, "plugin_manager", lambda *a, **k: pm)

    return install


def run(path: Path) -> Any:
    return CliRunner().invoke(cli, ["import-devicepool", str(path)])


def one_line(result: Any, path: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: "), result.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_the_one_accepting_importer_prints_the_toml_and_what_it_cannot_carry(installed, tmp_path: Path):
    installed(kind("a", '[pools.x]\nqueue = "p/x"\n', ("extra: no equivalent", "other: dropped")),
              kind("b"), ConfigImporter("broken", "raises", accepts=broken_accepts, convert=lambda d, s: None))
    path = tmp_path / "old.yml"
    path.write_text("kind: a\nextra: 1\n")
    result = run(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == '[pools.x]\nqueue = "p/x"\n'
    assert result.stderr.splitlines() == [f"{path}: extra: no equivalent", f"{path}: other: dropped"]


def test_two_accepting_importers_are_refused(installed, tmp_path: Path):
    installed(kind("a"), ConfigImporter("also-a", "greedy", accepts=lambda doc: True, convert=lambda d, s: None))
    path = tmp_path / "old.yml"
    path.write_text("kind: a\n")
    one_line(run(path), path, "2 importers accept this file", "kind-a", "also-a")


def test_a_file_no_importer_accepts_is_refused(installed, tmp_path: Path):
    installed(kind("a"), kind("b"))
    path = tmp_path / "old.yml"
    path.write_text("kind: c\n")
    one_line(run(path), path, "no importer accepts this file", "kind-a, kind-b")


def test_bad_yaml_and_missing_files_are_one_line(installed, tmp_path: Path):
    installed(kind("a"))
    path = tmp_path / "old.yml"
    path.write_text("kind: a\nprojects: [1,\n")
    one_line(run(path), path, "not valid YAML at line 3")
    one_line(run(tmp_path / "absent.yml"), tmp_path / "absent.yml", "cannot read")
