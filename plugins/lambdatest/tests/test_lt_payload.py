"""Payloads: the shipped one, local directories, and git repositories pinned to a tag or a commit."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner import LaunchRequest, PluginContext, Pool
from provisioner_lambdatest import HyperExecuteLauncher
from provisioner_lambdatest.payload import (
    MARKER, PayloadCache, PayloadError, builtin_payload, copy_private, safe_location, verify,
)
from provisioner_lambdatest.render import merge

from lt_support import FakeCli


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A payload repository: tag v1 holds VERSION=1, the branch main goes on to VERSION=2."""
    path = tmp_path / "payload-repo"
    shutil.copytree(builtin_payload(), path)
    git(path, "init", "-q")
    (path / "VERSION").write_text("1\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "v1")
    git(path, "tag", "v1")
    (path / "VERSION").write_text("2\n")
    git(path, "commit", "-q", "-am", "v2")
    return path


def test_the_shipped_payload_is_valid() -> None:
    payload = builtin_payload()
    assert verify(payload) == []
    for script in payload.glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    template = (payload / "worker-runner.yaml.template").read_text()
    assert json.loads(re.sub(r"@json:\w+@", "0", template))["provider"]["providerType"] == "standalone"


def test_a_tag_is_fetched_once_into_the_cache(tmp_path: Path, repo: Path) -> None:
    cache = PayloadCache(tmp_path / "state" / "payloads")
    path = cache.resolve(str(repo), "v1")
    assert path is not None and (path / "VERSION").read_text() == "1\n"
    assert not (path / ".git").exists() and "v1" in (path / MARKER).read_text()
    assert verify(path) == []
    shutil.rmtree(repo)  # the cache alone answers from now on
    assert cache.resolve(str(repo), "v1") == path
    assert PayloadCache(tmp_path / "state" / "payloads").resolve(str(repo), "v1", fetch=False) == path


def test_a_commit_sha_is_a_version(tmp_path: Path, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    cache = PayloadCache(tmp_path / "payloads")
    for ref in (head, head[:10]):
        path = cache.resolve(str(repo), ref)
        assert path is not None and (path / "VERSION").read_text() == "2\n"


def test_a_branch_is_refused(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(PayloadError, match="payload_ref 'main' is a branch; pin a tag or a commit SHA"):
        PayloadCache(tmp_path / "payloads").resolve(str(repo), "main")
    assert list((tmp_path / "payloads").iterdir()) == []  # nothing half-fetched is left


def test_unknown_refs_and_repositories(tmp_path: Path, repo: Path) -> None:
    cache = PayloadCache(tmp_path / "payloads")
    with pytest.raises(PayloadError, match="'v9' is neither a tag nor a commit"):
        cache.resolve(str(repo), "v9")
    with pytest.raises(PayloadError, match="'deadbeef' is neither"):
        cache.resolve(str(repo), "deadbeef")
    with pytest.raises(PayloadError, match="git clone failed: fatal: "):
        cache.resolve(str(tmp_path / "no-repo"), "v1")
    assert cache.resolve("https://example.org/p.git", "v1", fetch=False) is None
    with pytest.raises(PayloadError, match="payload_ref is set but payload names no git repository"):
        cache.resolve("", "v1")


def test_urls_lose_their_credentials_in_messages() -> None:
    assert safe_location("https://user:tok@git.example/p.git") == "https://git.example/p.git"
    assert safe_location("/srv/payload") == "/srv/payload"


def test_verify_names_what_is_wrong(tmp_path: Path) -> None:
    payload = tmp_path / "p"
    payload.mkdir()
    assert verify(payload) == [f"payload {payload}: no job-template.json"]
    (payload / "job-template.json").write_text("{nope")
    assert "is not valid JSON" in verify(payload)[0]
    (payload / "job-template.json").write_text("[]")
    assert verify(payload) == [f"payload {payload}: job-template.json is not a JSON object"]
    (payload / "job-template.json").write_text("{}")
    (payload / "hyperexecute.yaml").write_text("")
    assert verify(payload) == [
        f"payload {payload}: job-template.json has no testRunnerCommand",
        f"payload {payload}: holds a hyperexecute.yaml, which each launch writes itself",
    ]


def test_copies_are_private_and_leave_links_and_git_out(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / ".git").mkdir()
    (source / ".git" / "config").write_text("")
    (source / "sub" / "run.sh").write_text("")
    (source / "sub" / "run.sh").chmod(0o755)
    (source / "data.txt").write_text("x")
    (source / "link").symlink_to("/etc/hostname")
    (source / "linkdir").symlink_to(source / "sub")
    target = tmp_path / "dst"
    target.mkdir(mode=0o700)
    copy_private(source, target)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["data.txt", "sub", "sub/run.sh"]
    assert (target / "data.txt").stat().st_mode & 0o777 == 0o600
    assert (target / "sub" / "run.sh").stat().st_mode & 0o777 == 0o700
    assert (target / "sub").stat().st_mode & 0o777 == 0o700


def test_a_launch_uploads_the_pinned_payload(context: PluginContext, fake_cli: FakeCli, repo: Path) -> None:
    pool = Pool(name="p", queue="prov/wt", queue_source="q", device_provider="d", launcher="hyperexecute",
                udids=("U1",), launch={"client_id_env": "TC_CLIENT_A55", "access_token_env": "TC_TOKEN_A55",
                                       "payload": str(repo), "payload_ref": "v1"})
    launcher = HyperExecuteLauncher({"cli": str(fake_cli.path)}, context)
    assert launcher.check([pool], network=True) == []  # fetched and verified
    result = launcher.launch(LaunchRequest(launch_id="L1", pool=pool, udid="U1", labels=("tcdp", "p", "U1")))
    assert result.ok
    assert "VERSION" in fake_cli.record()["files"]
    assert json.loads(fake_cli.record()["yaml"])["framework"]["args"]["fixedIP"] == "U1"
    branch = Pool(**{**pool.__dict__, "launch": {**pool.launch, "payload_ref": "main"}})
    bad = launcher.launch(LaunchRequest(launch_id="L2", pool=branch, udid="U1", labels=("tcdp", "p", "U1")))
    assert not bad.ok and "is a branch" in bad.detail
    assert launcher.check([branch], network=True) == [f"pool p: payload {repo}: payload_ref 'main' is a branch; "
                                                      "pin a tag or a commit SHA"]


def test_a_local_payload_that_fails_verification_fails_the_launch(
    context: PluginContext, fake_cli: FakeCli, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    pool = Pool(name="p", queue="prov/wt", queue_source="q", device_provider="d", launcher="hyperexecute",
                udids=("U1",), launch={"client_id_env": "TC_CLIENT_A55", "access_token_env": "TC_TOKEN_A55",
                                       "payload": str(tmp_path / "empty")})
    result = HyperExecuteLauncher({"cli": str(fake_cli.path)}, context).launch(
        LaunchRequest(launch_id="L1", pool=pool, udid="U1", labels=("tcdp", "p", "U1")))
    assert not result.ok and result.detail == f"payload {tmp_path / 'empty'}: no job-template.json"


def test_merge_is_deep() -> None:
    assert merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {"a": {"b": 3, "c": 2}, "d": [2]}


FAKE_GIT = """#!{python}
import json, os, sys
with open(os.path.join(os.path.dirname(__file__), "env.json"), "w") as out:
    json.dump(dict(os.environ), out)
print("fatal: repository not found", file=sys.stderr)
sys.exit(128)
"""


def test_git_runs_with_a_minimal_environment(context: PluginContext, tmp_path: Path, fake_cli: FakeCli) -> None:
    """A fake git on PATH dumps its environment: none of the daemon's secrets reaches it."""
    bin_dir = tmp_path / "git-bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(FAKE_GIT.replace("{python}", sys.executable))
    (bin_dir / "git").chmod(0o755)
    environ = dict(context.environ)
    environ.update(PATH=str(bin_dir), LANG="C.UTF-8", LC_CTYPE="C.UTF-8", https_proxy="http://proxy.example:3128",
                   NO_PROXY="localhost", SSL_CERT_FILE="/etc/ssl/ca.pem", GIT_DIR="/elsewhere", GIT_CONFIG_GLOBAL="/x",
                   AWS_SECRET_ACCESS_KEY="aws-secret", TASKCLUSTER_ACCESS_TOKEN="tc-default-token")
    context.environ = environ
    launcher = HyperExecuteLauncher({"cli": str(fake_cli.path)}, context)
    pool = Pool(name="p", queue="proj/wt", queue_source="taskcluster", device_provider="lambdatest",
                launcher="hyperexecute", udids=("U1",),
                launch={"client_id_env": "TC_CLIENT_A55", "access_token_env": "TC_TOKEN_A55",
                        "payload": "https://git.example/payload.git", "payload_ref": "v1"})
    result = launcher.launch(LaunchRequest(launch_id="L1", pool=pool, udid="U1", labels=("tcdp", "p", "U1")))
    assert not result.ok and "git clone failed: fatal: repository not found" in result.detail
    env = json.loads((bin_dir / "env.json").read_text())
    secrets = {"LT_ACCESS_KEY", "LT_USERNAME", "TC_TOKEN_A55", "TC_CLIENT_A55", "UNRELATED_SECRET",
               "AWS_SECRET_ACCESS_KEY", "TASKCLUSTER_ACCESS_TOKEN", "GIT_DIR", "GIT_CONFIG_GLOBAL"}
    assert not secrets & set(env)
    assert not {environ[name] for name in secrets} & set(env.values())
    assert env["PATH"] == str(bin_dir) and env["HOME"] == environ["HOME"] and env["GIT_TERMINAL_PROMPT"] == "0"
    assert (env["https_proxy"], env["NO_PROXY"], env["SSL_CERT_FILE"]) == (
        "http://proxy.example:3128", "localhost", "/etc/ssl/ca.pem")
    assert (env["LANG"], env["LC_CTYPE"], env["LC_ALL"]) == ("C.UTF-8", "C.UTF-8", "C")
    assert not fake_cli.ran()


@pytest.mark.unpinned
def test_a_payload_whose_list_is_not_complete_is_refused_before_any_job(tmp_path, context, fake_cli):
    """The shipped checksums.sha256 pins nothing, and a partly filled one is no better: its pre step would refuse
    to run on the phone, so `check` names what is missing and no job is started; a pool that allows unpinned
    downloads launches; a list with every name of downloads.txt (for one arch) launches."""
    from provisioner_lambdatest.downloads import downloads
    from provisioner_lambdatest.payload import builtin_payload, unpinned

    def pool_with(**launch):
        return Pool(name="p", queue="prov/wt", queue_source="q", device_provider="d", launcher="hyperexecute",
                    udids=("U1",), launch={"client_id_env": "TC_CLIENT_A55", "access_token_env": "TC_TOKEN_A55",
                                           **launch})

    def request_for(pool, n):
        return LaunchRequest(launch_id=f"L{n}", pool=pool, udid="U1", labels=("tcdp", "p", "U1"))

    assert "checksums.sha256 lacks checksums its setup needs for Taskcluster v87.0.0: robustcheckout.py" in (
        unpinned(builtin_payload(), "87.0.0"))
    launcher = HyperExecuteLauncher({"cli": str(fake_cli.path)}, context)
    result = launcher.launch(request_for(pool_with(), 1))
    assert not result.ok and "lacks checksums its setup needs" in result.detail and not fake_cli.ran()
    assert launcher.launch(request_for(pool_with(allow_unpinned_downloads=True), 2)).ok
    payload = tmp_path / "payload"
    shutil.copytree(builtin_payload(), payload)
    names = [d.name for d in downloads(payload, "87.0.0", ("amd64",))]
    with (payload / "checksums.sha256").open("a") as out:  # all but the SDK: refused, naming it
        out.writelines(f"{'a' * 64}  {name}\n" for name in names if not name.endswith(".zip"))
    (line,) = launcher.check([pool_with(payload=str(payload))], network=False)
    assert line == (f"pool p: payload {payload}: checksums.sha256 lacks checksums its setup needs for Taskcluster "
                    "v87.0.0: commandlinetools-linux-13114758_latest.zip (pin them, or set allow_unpinned_downloads)")
    with (payload / "checksums.sha256").open("a") as out:
        out.write(f"{'a' * 64}  commandlinetools-linux-13114758_latest.zip\n")
    assert launcher.check([pool_with(payload=str(payload))], network=False) == []
    assert unpinned(payload, "87.0.0") == "" and "v106.0.0/start-worker-linux-amd64" in unpinned(payload, "106.0.0")
