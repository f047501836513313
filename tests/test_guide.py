"""docs/writing-a-plugin.md, followed step by step: its files written from the guide as they are, the plugin
built and installed offline (``--no-index --no-build-isolation`` with the test venv's setuptools, into a
``--target`` directory on ``PYTHONPATH``), listed by ``provisioner plugins``, used by ``check`` and
``run --dry-run --once``, and its contract tests passing. Runs under ``make test`` like any other test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"
FENCE = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```$", re.M | re.S)


def blocks() -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(GUIDE.read_text(encoding="utf-8"))]


def run(*argv: str, cwd: Path, site: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PROVISIONER_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_guide_from_an_empty_directory_to_a_dry_run(tmp_path: Path):
    shell = "\n".join(text for lang, _, text in blocks() if lang == "sh")
    for step in ("mkdir provisioner-shelf", "pip install -e .", "provisioner plugins",
                 "provisioner check -c config.toml", "provisioner run -c config.toml --dry-run --once",
                 "python -m pytest -q tests"):
        assert step in shell, f"the guide no longer says {step!r}: update this test with it"

    project = tmp_path / "provisioner-shelf"  # step 1: an empty directory, then the guide's files
    (project / "src" / "provisioner_shelf").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "src" / "provisioner_shelf" / "__init__.py").write_text("")
    files = [(name, text) for _, name, text in blocks() if name]
    assert {name for name, _ in files} == {
        "pyproject.toml", "src/provisioner_shelf/plugin.py", "phones.txt", "config.toml", "tests/test_shelf.py"}
    for name, text in files:
        (project / name).write_text(text)

    site = tmp_path / "site"  # step 3, offline: no index, the test venv's setuptools
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(project)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr

    listed = run(sys.executable, "-m", "provisioner", "plugins", "--json", cwd=project, site=site)
    assert listed.returncode == 0, listed.stderr
    shelf = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}["shelf"]
    assert shelf["distribution"] == "provisioner-shelf" and not shelf["error"]
    assert shelf["roles"] == {"device_provider": ["shelf"], "launcher": ["shelf"]}

    checked = run(sys.executable, "-m", "provisioner", "check", "-c", "config.toml", cwd=project, site=site)
    assert checked.returncode == 0, checked.stderr

    dry = run(sys.executable, "-m", "provisioner", "run", "-c", str(project / "config.toml"), "--dry-run", "--once",
              cwd=Path("/"), site=site)  # from / like systemd: phones.txt is found next to the config
    assert dry.returncode == 0, dry.stderr
    assert "pool shelf: pending 2" in dry.stderr and "would launch 2" in dry.stderr
    shown = re.search(r"dry run: would launch for pool shelf on (SHELF-PHONE-\d):\nstart a worker on (\S+) for pool", dry.stderr)
    assert shown and shown.group(1) == shown.group(2), dry.stderr  # render's text, once for the pool
    assert not (project / "state" / "ledger.sqlite3").exists()  # a dry run records nothing

    tested = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=project, site=site)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"\b\d+ passed", tested.stdout)
