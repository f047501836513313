"""Pictures of the fleet (``simulate --plot``, ``report --plot``), drawn with matplotlib (the optional extra
``provisioner[plot]``) on the Agg backend: files only, no display. PNG or SVG, by the file's extension."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

FORMATS = (".png", ".svg")
INSTALL = "--plot needs matplotlib: pip install 'provisioner[plot]'"


def plot_check(path: Path) -> None:
    """Before any work: a file name we can draw to and matplotlib installed; else one line and exit 2."""
    if path.suffix.lower() not in FORMATS:
        click.echo(f"--plot: {path}: give a .png or .svg file", err=True)
        sys.exit(2)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        click.echo(INSTALL, err=True)
        sys.exit(2)


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (never a display)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format=path.suffix.lower().lstrip("."), dpi=100, bbox_inches="tight")
    pyplot().close(fig)
