"""Config: every problem is one line naming file, key path and reason; `check` exits 2 and shows no traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner.config import ConfigError, load

SIM = """
[provisioner]
state_dir = "state"
[defaults]
queue_source = "sim"
device_provider = "sim"
launcher = "sim"
priority = 3
"""


def problems_of(write_config, text):
    _, problems = load(write_config(text))
    return [str(p) for p in problems]


def test_valid_config_with_defaults(write_config):
    path = write_config(SIM + """
[pools.a]
queue = "p/a"
udids = ["X1", "X2"]
[pools.b]
queue = "p/b"
udid = "Y"
priority = 9
disabled = true
[pools.c]
queue = "p/c"
selector = { model = "Galaxy A55 5G", os_version = 14 }
targeting = "selector"
[pools.d]
queue = "p/d"
udids = ["G1", "G2", "G3", "G4"]
targeting = "group"
""")
    config, problems = load(path)
    assert problems == []
    a, b, c, d = config.pools
    assert (a.queue_source, a.priority, a.udids) == ("sim", 3, ("X1", "X2"))
    assert (b.udids, b.priority, b.enabled) == (("Y",), 9, False)
    assert (c.selector.model, c.selector.os_version) == ("Galaxy A55 5G", "14")
    assert (d.targeting, d.udids, d.selector) == ("group", ("G1", "G2", "G3", "G4"), None)
    assert [p.cloud_picks for p in (a, b, c, d)] == [False, False, True, True]
    # what a launch aims at, in logs and dry runs: the phone, the selector, or the group (never "None")
    assert (a.target("X1"), c.target(), d.target(), d.target("G2")) == (
        "X1", "Galaxy A55 5G/14", "group of 4 (G1, G2, G3 and 1 more)", "G2")
    assert config.settings.state_dir == path.parent / "state"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[provisioner]\nintervall = 3\n", "provisioner.intervall: unknown key"),
        ("[provisioner]\ninterval = 'soon'\n", "provisioner.interval: must be a number, not str 'soon'"),
        ("[provisioner]\nlaunch_concurrency = 0\n", "provisioner.launch_concurrency: must be at least 1, not 0"),
        ("[pools.a]\nudids = ['X']\n", "pools.a.queue: missing (required)"),
        ("[pools.a]\nqueue = 'q'\nudids = ['X', 'Y', 'X']\n", "pools.a.udids[2]: phone X is listed twice in this pool"),
        ("[pools.a]\nqueue = 'q'\n", "pools.a: names no phones"),
        ("[pools.a]\nqueue = 'q'\nudids = ['X']\npriority = true\n", "pools.a.priority: must be an integer, not True"),
        ("[pools.a]\nqueue = 'q'\nudids = ['X']\ntargeting = 'any'\n", "pools.a.targeting: must be one of"),
        ("[pools.a]\nqueue = 'q'\nudids = ['X']\nselector = {model = 'M'}\n", "pools.a: names phones both by udids and by selector"),
        ("[pools.a]\nqueue = 'q'\nselector = {model = 'M'}\ntargeting = 'group'\n",
         "pools.a.targeting: 'group' targeting needs udids (the group's members), not a selector"),
        ("[pools.a]\nqueue = 'q'\ntargeting = 'group'\n", "pools.a: names no phones: give udids, udid or selector"),
        ("[pool.a]\nqueue = 'q'\n", "pool: unknown table"),
        ("", "pools: no pool is defined"),
        ("[pools.a]\nqueue = 'q'\nudids = ['X']\n[pools.b]\nqueue = 'q'\nudids = ['Y']\n",
         "pools.b.queue: queue q is already pool a's"),
    ],
)
def test_each_problem_is_one_line_with_key_path(write_config, text, expected):
    lines = problems_of(write_config, text)
    assert any(expected in line for line in lines), lines
    assert all("\n" not in line and line.startswith(str(write_config(text))) for line in lines)


def test_invalid_toml_and_missing_file(write_config, tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write_config("[pools\n"))
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.toml")


def run_check(path, env=None):
    return CliRunner().invoke(cli, ["check", "-c", str(path)], env=env or {"PROVISIONER_PLUGINS": "none"})


def test_check_ok_on_the_sim_example():
    result = run_check("examples/sim.toml")
    assert result.exit_code == 0, result.output
    assert "ok (3 pools" in result.output


def test_check_reports_unknown_plugin_and_plugin_keys(write_config):
    path = write_config(SIM + """
[pools.a]
queue = "p/a"
udids = ["X"]
launcher = "nosuch"
[plugins.sim]
phones = "many"
colour = "blue"
[plugins.other]
x = 1
""")
    result = run_check(path)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert f"{path}: pools.a.launcher: unknown launcher 'nosuch' (known: sim" in lines[0]
    assert any("plugins.sim.phones: must be an integer" in line for line in lines)
    assert any("plugins.sim.colour: unknown key" in line for line in lines)
    assert any("plugins.other: unknown plugin" in line for line in lines)

    path.write_text(path.read_text().replace("[provisioner]", "[provisioner]\ninterval = -1"))
    both = run_check(path).output  # a problem of the host's table does not hide the plugins' problems
    assert "provisioner.interval: must be at least 1, not -1" in both and "plugins.sim.colour: unknown key" in both
    assert "Traceback" not in result.output


def test_check_reports_missing_environment_variable(write_config, monkeypatch):
    """An env-var option the file names must be set (uses a throwaway plugin declaring one)."""
    from provisioner import Option, RoleSpec, hookimpl
    from provisioner.manager import PluginManager

    class Plugin:
        @hookimpl
        def provisioner_job_launchers(self):
            yield RoleSpec("envy", lambda o, c: object(), options={"token_env": Option(str, "TOKEN", env=True)})

    from provisioner.config import load as load_config
    from provisioner.plugins import build
    from provisioner.types import PluginContext

    manager = PluginManager(entry_points_=[])
    manager.register(Plugin(), "envy")
    path = write_config(SIM + """
[pools.a]
queue = "p/a"
udids = ["X"]
launcher = "envy"
[plugins.envy]
token_env = "MY_SECRET_TOKEN"
""")
    config, _ = load_config(path)
    _, problems = build(config, manager, PluginContext(environ={}))
    assert [str(p) for p in problems] == [f"{path}: plugins.envy.token_env: environment variable MY_SECRET_TOKEN is not set"]
    _, problems = build(config, manager, PluginContext(environ={"MY_SECRET_TOKEN": "s3cret"}))
    assert any("does not implement the launcher methods" in str(p) for p in problems)
