"""`provisioner hyperexecute-update`: the plugin's own subcommand, found through the host's CLI."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from provisioner import PluginContext
from provisioner.cli import cli

from lt_support import ENVIRON, LT_KEY, FakeCli


def test_update_command_runs_the_cli_update_under_the_lock(tmp_path: Path, context: PluginContext, fake_cli: FakeCli):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[provisioner]\nstate_dir = "{context.state_dir}"\n'
        f'[pools.a]\nqueue = "p/q"\nudids = ["X"]\n'
        f'[plugins.hyperexecute]\ncli = "{fake_cli.path}"\n'
    )
    fake_cli.mode = "update"
    result = CliRunner().invoke(cli, ["hyperexecute-update", "-c", str(config)], env=dict(ENVIRON))
    assert result.exit_code == 0, result.output
    assert "hyperexecute: updated" in result.output
    assert fake_cli.record()["argv"][1:] == ["update"] and fake_cli.record()["lock"] == "held"

    fake_cli.mode = "update-fail"
    result = CliRunner().invoke(cli, ["hyperexecute-update", "-c", str(config)], env=dict(ENVIRON))
    assert result.exit_code == 1 and LT_KEY not in result.output


def test_update_command_reports_config_problems(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[pools.a]\nqueue = "p/q"\nudids = ["X"]\n[plugins.hyperexecute]\ncli_timeout = "long"\n')
    result = CliRunner().invoke(cli, ["hyperexecute-update", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}: plugins.hyperexecute.cli_timeout: must be a number" in result.output
    result = CliRunner().invoke(cli, ["hyperexecute-update", "-c", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "no such file" in result.output
