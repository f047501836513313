"""Plugin discovery through real entry points: a throwaway distribution (a *.dist-info on the path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provisioner import RoleSpec, hookimpl
from provisioner.manager import PluginError, PluginManager

PLUGIN_SOURCE = '''
from provisioner import hookimpl, RoleSpec, Option, LaunchResult, QueueCounts

class Queue:
    def __init__(self, options, context):
        self.pending = options["pending"]
    def counts(self, queues):
        return {{q: QueueCounts(self.pending, 0) for q in queues}}
    def workers(self, queues):
        return {{q: [] for q in queues}}

@hookimpl
def provisioner_queue_sources():
    yield RoleSpec("{name}", Queue, options={{"pending": Option(int, 0, "tasks to report")}})

@hookimpl
def provisioner_launch_submitted(launch, result):
    print("OBSERVED", launch.pool, result.job_id, flush=True)
'''


def make_dist(root: Path, dist: str, module: str, source: str, ep_name: str | None = None) -> None:
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[provisioner]\n{ep_name or module} = {module}\n")


def cli(*args: str, path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "PROVISIONER_PLUGINS"}
    environ.update(PYTHONPATH=str(path), **env)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=environ, timeout=60
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "provisioner-fakequeue", "fakequeue", PLUGIN_SOURCE.format(name="fakequeue"))
    make_dist(site, "provisioner-broken", "brokenplug", "raise ImportError('needs libfoo')\n")
    return site


def test_discovered_by_entry_point_and_used_by_name_from_a_config(site: Path, tmp_path: Path):
    listing = json.loads(cli("plugins", "--json", path=site).stdout)
    names = {p["name"]: p for p in listing["plugins"]}
    assert names["fakequeue"]["distribution"] == "provisioner-fakequeue"
    assert names["fakequeue"]["version"] == "1.2.3"
    assert names["fakequeue"]["roles"] == {"queue_source": ["fakequeue"]}
    assert "provisioner_launch_submitted" in names["fakequeue"]["hooks"]
    assert names["brokenplug"]["error"] == "ImportError: needs libfoo"

    config = tmp_path / "c.toml"
    config.write_text(textwrap.dedent(f"""
        [provisioner]
        state_dir = "{tmp_path / 'state'}"
        launch_interval = 0
        [pools.a]
        queue = "q"
        udids = ["SIM0000", "SIM0001"]
        queue_source = "fakequeue"
        device_provider = "sim"
        launcher = "sim"
        [plugins.fakequeue]
        pending = 1
        [plugins.sim]
        phones = 2
        list_lag_seconds = 0
    """))
    result = cli("run", "-c", str(config), "--once", path=site)
    assert result.returncode == 0, result.stderr
    assert "pool a: pending 1 claimed 0" in result.stderr
    assert "launched 1" in result.stderr
    assert "OBSERVED a " in result.stdout  # the plugin's event hook was called
    assert "brokenplug" in result.stderr and "needs libfoo" in result.stderr  # reported, not fatal


def test_broken_plugin_never_bricks_the_cli(site: Path):
    assert cli("--help", path=site).returncode == 0
    result = cli("plugins", path=site)
    assert result.returncode == 0
    assert "error: ImportError: needs libfoo" in result.stdout


def test_env_var_loads_no_or_some_third_party_plugins(site: Path):
    none = json.loads(cli("plugins", "--json", path=site, PROVISIONER_PLUGINS="none").stdout)
    assert [p["name"] for p in none["plugins"]] == ["sim", "metrics"]
    some = json.loads(cli("plugins", "--json", path=site, PROVISIONER_PLUGINS="fakequeue").stdout)
    assert [p["name"] for p in some["plugins"]] == ["sim", "metrics", "fakequeue"]


def test_two_distributions_offering_one_name_is_a_one_line_error(site: Path, tmp_path: Path):
    make_dist(site, "provisioner-copycat", "copycat", PLUGIN_SOURCE.format(name="fakequeue"))
    config = tmp_path / "c.toml"
    config.write_text('[pools.a]\nqueue = "q"\nudids = ["X"]\nqueue_source = "fakequeue"\ndevice_provider = "sim"\nlauncher = "sim"\n')
    result = cli("check", "-c", str(config), path=site)
    assert result.returncode == 2
    line = [x for x in result.stderr.splitlines() if "fakequeue" in x and "both" in x]
    assert line == [
        f"{config}: pools.a.queue_source: queue source 'fakequeue' is offered by both "
        "provisioner-copycat (copycat) and provisioner-fakequeue (fakequeue): uninstall one"
    ]
    assert "Traceback" not in result.stderr


def test_a_plugin_returning_garbage_is_reported_and_skipped():
    class Bad:
        @hookimpl
        def provisioner_device_providers(self):
            return ["not a spec"]

    class Good:
        @hookimpl
        def provisioner_device_providers(self):
            return [RoleSpec("good", lambda o, c: None)]

    manager = PluginManager(entry_points_=[])
    bad = manager.register(Bad(), "bad")
    manager.register(Good(), "good")
    assert "not RoleSpec" in bad.error
    assert manager.names("device_provider") == ["good", "sim"]
    with pytest.raises(PluginError, match="unknown device provider 'bad'"):
        manager.spec("device_provider", "bad")


def test_role_spec_validates_its_name():
    with pytest.raises(ValueError, match="invalid plugin name"):
        RoleSpec("Bad Name", lambda o, c: None)
