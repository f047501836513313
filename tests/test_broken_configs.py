"""The broken-config corpus (``tests/corpus/*.toml``), each through ``check`` and ``run --once --dry-run``.

Each case is a config file whose header says what must be reported: ``# expect: TEXT`` (each must appear in some
problem line) and ``# secret: TEXT`` (must appear nowhere in the output). Both commands must exit 2, print the
same problems, one line each, starting with the file's path, with no traceback. The throwaway plugin in
``tests/corpus/site`` (launchers ``envy`` and ``nolaunch``) declares a variable name, bounded numbers and a worker
env table, like a real launcher.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner import logs
from provisioner.cli import cli

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.toml"))
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|DEBUG) ")  # a plugin saying what it built
ENV = {"PROVISIONER_PLUGINS": "corpusplug", "CORPUS_TOKEN": "corpus-token-value-not-a-secret"}


def header(path: Path, tag: str) -> list[str]:
    prefix = f"# {tag}: "
    return [line[len(prefix):] for line in path.read_text().splitlines() if line.startswith(prefix)]


@pytest.fixture
def corpus_site(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(CORPUS / "site"))  # where entry points are found, as after a pip install
    yield
    logs.setup("INFO")  # run pointed the log at the runner's stream


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert all(header(case, "expect") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_config_is_refused_the_same_by_check_and_run(case: Path, tmp_path: Path, corpus_site):
    config = tmp_path / "config.toml"  # the state directory ("state", relative) lands in tmp_path
    shutil.copy(case, config)
    outputs = []
    for args in (["check"], ["run", "--once", "--dry-run"]):
        result = CliRunner().invoke(cli, [*args, "-c", str(config)], env=ENV)
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        text = result.output
        assert "Traceback" not in text
        for secret in header(case, "secret"):
            assert secret not in text, (args, text)
        lines = [line for line in result.stderr.splitlines() if not LOG_LINE.match(line)]
        assert lines and result.stdout == ""
        assert all(line.startswith(f"{config}: ") for line in lines), (args, lines)
        for expected in header(case, "expect"):
            assert any(expected in line for line in lines), (args, expected, lines)
        outputs.append(lines)
    check_lines, run_lines = outputs
    assert run_lines == check_lines  # one validation step for both commands


def test_the_example_configs_pass_both(tmp_path: Path, corpus_site):
    text = Path("examples/sim.toml").read_text().replace('state_dir = "../state/sim"', 'state_dir = "state"')
    config = tmp_path / "sim.toml"
    config.write_text(text)
    assert CliRunner().invoke(cli, ["check", "-c", str(config)], env=ENV).exit_code == 0
    result = CliRunner().invoke(cli, ["run", "--once", "--dry-run", "-c", str(config)], env=ENV)
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "state").iterdir())  # the test write left nothing behind
