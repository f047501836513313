"""The operator's commands: plugins table, broken plugins, unknown counts, holds on unknown phones, state dirs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from test_ops_holds import make
from test_plugins import PLUGIN_SOURCE, cli, make_dist

from provisioner import RemoteError, RoleSpec, hookimpl
from provisioner.cli import cli as main
from provisioner.cli.status import print_snapshot, snapshot
from provisioner.config import load
from provisioner.manager import PluginManager
from provisioner.plugins import build
from provisioner.types import PluginContext

BAD_SIGNATURE = '''
from provisioner import hookimpl

@hookimpl
def provisioner_queue_sources(bogus):
    return []
'''
COPY_OF_SIM = '''
from provisioner import hookimpl, RoleSpec

@hookimpl
def provisioner_device_providers():
    yield RoleSpec("sim", lambda o, c: object())
'''
OUR_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING plugin ")


def site_with(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "provisioner-fakequeue", "fakequeue", PLUGIN_SOURCE.format(name="fakequeue"))
    make_dist(site, "provisioner-badsig", "badsig", BAD_SIGNATURE)
    make_dist(site, "provisioner-copysim", "copysim", COPY_OF_SIM)
    return site


def row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(name + " "))


def test_plugins_table_shows_hooks_conflicts_whole_errors_and_a_broken_plugins_role(tmp_path: Path):
    result = cli("plugins", path=site_with(tmp_path))
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["PLUGIN", "DISTRIBUTION", "VERSION", "OFFERS", "HOOKS", "STATUS"]
    assert "queue source: fakequeue; observer" in row(result.stdout, "fakequeue")
    assert "launch_submitted, queue_sources" in row(result.stdout, "fakequeue")
    broken = row(result.stdout, "badsig")
    assert "queue source " in broken and "observer" not in broken  # its own role, though it offers nothing
    # pluggy's multi-line validation error, whole, on the row's one line
    assert "error: PluginValidationError: Plugin 'provisioner-badsig:badsig' for hook 'provisioner_queue_sources'" in broken
    assert "Argument(s) {'bogus'} are declared in the hookimpl but can not be found in the hookspec" in broken
    conflict = "conflict: device provider 'sim' is offered by both provisioner (sim) and provisioner-copysim (copysim)"
    assert conflict in row(result.stdout, "sim") and conflict in row(result.stdout, "copysim")
    assert result.stdout.splitlines()[-1] == conflict + ": uninstall one"


def test_a_broken_plugin_is_reported_once_per_command_in_our_format(tmp_path: Path):
    site = site_with(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text('[provisioner]\nstate_dir = "state"\n[pools.a]\nqueue = "q"\nudids = ["SIM0000"]\n'
                      'queue_source = "sim"\ndevice_provider = "sim"\nlauncher = "sim"\n')
    for args in (["--help"], ["plugins"], ["check", "-c", str(config)], ["run", "--once", "--dry-run", "-c", str(config)]):
        result = cli(*args, path=site, PROVISIONER_PLUGINS="badsig")
        lines = [line for line in result.stderr.splitlines() if "badsig" in line]
        assert len(lines) == 1, (args, result.stderr)
        assert OUR_LOG_LINE.match(lines[0]) and " | " not in lines[0], lines  # not loguru's default format
        assert "Argument(s) {'bogus'}" in lines[0]


def test_missing_role_methods_are_named(write_config):
    class Half:
        def phones(self):
            return []

    class Plugin:
        @hookimpl
        def provisioner_device_providers(self):
            yield RoleSpec("half", lambda o, c: Half())

    manager = PluginManager(entry_points_=[])
    manager.register(Plugin(), "half")
    path = write_config('[pools.a]\nqueue = "q"\nudids = ["X"]\nqueue_source = "sim"\ndevice_provider = "half"\n'
                        'launcher = "sim"\n[provisioner]\nstate_dir = "state"\n')
    config, _ = load(path)
    _, problems = build(config, manager, PluginContext(environ={}))
    assert [str(p) for p in problems] == [
        f"{path}: plugins.half: does not implement the device provider methods: jobs missing"
    ]


def test_status_shows_unknown_phone_counts_as_question_marks(tmp_path: Path, capsys):
    def break_phones(runtime):
        def phones():
            raise RemoteError("GET privatecloud_devices: HTTP 503")

        runtime.objects["device_provider"]["sim"].phones = phones

    p, runtime, clock = make(tmp_path, tweak=break_phones, perf=2)
    snap = snapshot(p.config, runtime, p.ledger, clock)
    perf = next(r for r in snap["pools"] if r["pool"] == "perf")
    assert (perf["pending"], perf["idle"], perf["busy"], perf["quarantined"], perf["held"]) == (2, None, None, None, None)
    print_snapshot(snap)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("perf "))
    assert line.split()[:9] == ["perf", "2", "0", "?", "?", "0", "?", "?", "0"]


def test_holding_needs_a_usable_state_directory_and_a_valid_udid(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[provisioner]\nstate_dir = "c.toml/state"\n[pools.a]\nqueue = "q"\nudids = ["R5CX1"]\n'
                      'queue_source = "sim"\ndevice_provider = "sim"\nlauncher = "sim"\n')
    env = {"PROVISIONER_PLUGINS": "none"}
    result = CliRunner().invoke(main, ["phones", "hold", "R5CX1", "-c", str(config), "--for", "1h"], env=env)
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.splitlines() == [
        f"{config}: provisioner.state_dir: cannot write in '{tmp_path / 'c.toml' / 'state'}': Not a directory"
    ]
    bad = CliRunner().invoke(main, ["phones", "hold", "R5CX1,evil", "-c", str(config), "--for", "1h", "--force"], env=env)
    assert bad.exit_code == 2 and bad.output.startswith("UDID: 'R5CX1,evil' is not a valid UDID")


def test_check_creates_and_test_writes_the_state_directory(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[provisioner]\nstate_dir = "deep/state"\n[pools.a]\nqueue = "q"\nudids = ["SIM0000"]\n'
                      'queue_source = "sim"\ndevice_provider = "sim"\nlauncher = "sim"\n')
    result = subprocess.run([sys.executable, "-m", "provisioner", "check", "-c", str(config)], capture_output=True,
                            text=True, env={"PROVISIONER_PLUGINS": "none", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    state = tmp_path / "deep" / "state"
    assert state.is_dir() and state.stat().st_mode & 0o077 == 0 and not list(state.iterdir())
