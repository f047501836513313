"""The README and the pages under docs/: every relative link leads to a file (and its anchor to a heading of
it), and every command they show runs (``--help``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli import cli

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = CODE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_leads_somewhere(page: Path):
    bad = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            bad.append(f"{target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            bad.append(f"{target}: no heading #{anchor}")
    assert bad == []


def test_every_docs_page_is_linked_from_the_readme_or_another_page():
    linked = {(page.parent / t.partition("#")[0]).resolve() for page in PAGES for t in LINK.findall(page.read_text())}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def shown_commands() -> list[tuple[str, ...]]:
    """Each distinct ``provisioner <command> [<subcommand>]`` the README and the docs pages show in code."""
    code = " ".join(c for page in PAGES for c in CODE.findall(page.read_text(encoding="utf-8")))
    found = set()
    for words in re.findall(r"(?<!from )\bprovisioner((?: [a-z][a-z-]*)+)", code):
        words = words.split()
        command = cli.commands.get(words[0])
        sub = getattr(command, "commands", {})
        found.add((words[0], words[1]) if len(words) > 1 and words[1] in sub else (words[0],))
    return sorted(found)


def test_the_pages_show_commands():
    assert {("run",), ("simulate",), ("phones", "hold"), ("ledger", "copy")} <= set(shown_commands())


@pytest.mark.parametrize("command", shown_commands(), ids=" ".join)
def test_every_command_shown_runs(command: tuple[str, ...]):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_the_readme_s_make_targets_exist():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^make (\w+)", readme, re.M))
    assert targets == {"demo", "test"}
    assert all(re.search(rf"^{t}:", makefile, re.M) for t in targets)
