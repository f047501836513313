"""``provisioner import-devicepool FILE``: another tool's configuration (YAML) as a config.toml, through the one
importer (hook ``provisioner_config_importers``) that accepts it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


@click.command("import-devicepool")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_devicepool(file: Path) -> None:
    """Print a config.toml equivalent of FILE (e.g. mozilla-bitbar-devicepool's config/lambdatest.yml) to stdout,
    and one line per setting it cannot carry over to stderr. Review the result before use.

    Exits 2 with one line when FILE cannot be read or parsed, or when not exactly one importer accepts it."""
    import yaml

    from ..manager import plugin_manager

    def fail(why: str) -> None:
        click.echo(f"{file}: {why}", err=True)
        sys.exit(2)

    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read: {getattr(exc, 'strerror', None) or exc}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        fail(f"not valid YAML{where}: {getattr(exc, 'problem', None) or type(exc).__name__}")
    importers = [i for found in plugin_manager().hook.provisioner_config_importers() for i in found or ()]
    accepting = [i for i in importers if _accepts(i, document)]
    if len(accepting) != 1:
        names = ", ".join(i.name for i in (accepting or importers)) or "none installed"
        fail(f"{len(accepting) or 'no'} importers accept this file ({names}): need exactly one"
             if accepting else f"no importer accepts this file (known: {names})")
    importer = accepting[0]
    try:
        result = importer.convert(document, str(file))
    except (ValueError, TypeError, KeyError) as exc:
        fail(f"importer {importer.name} failed: {type(exc).__name__}: {exc}")
    click.echo(result.toml, nl=not result.toml.endswith("\n"))
    for line in result.not_carried:
        click.echo(f"{file}: {line}", err=True)


def _accepts(importer: Any, document: Any) -> bool:
    try:
        return bool(importer.accepts(document))
    except Exception:  # noqa: BLE001 - an importer that cannot read the document does not accept it
        return False
