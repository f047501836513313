"""``provisioner hyperexecute-pin``: GitHub's release answer replayed from a cassette, the downloads served over
https by a local server (a throwaway self-signed certificate, trusted through requests' own REQUESTS_CA_BUNDLE),
reached through the command's test-only PROVISIONER_PIN_MIRROR. Every failure is one line and writes nothing."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner_lambdatest.downloads import ARCHES, downloads, pins
from provisioner_lambdatest.payload import builtin_payload, unpinned, verify
from provisioner_lambdatest import pin
from provisioner_lambdatest.pin import HEADER, MIRROR_ENV, PinError, _mirror

SHIPPED = builtin_payload()
WANTED = downloads(SHIPPED, "87.0.0", ARCHES)
TOKEN = "ghp_notARealToken0123456789abcdefABCDEF"


def body(url: str) -> bytes:
    """What the test server serves for a download: the asset bodies the cassette's digests were computed on."""
    return f"test asset {url.rsplit('/', 1)[1]}\n".encode()


class Mirror:
    """A local https server: /<host>/<path> of each download; github.com paths redirect to its asset host first."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stall = ""  # a path whose answer never comes (until the server stops)
        self.stopping = threading.Event()
        for item in WANTED:
            parts = urllib.parse.urlsplit(item.url)
            path = f"/{parts.hostname}{parts.path}"
            if parts.hostname == "github.com":
                stored = f"/release-assets.githubusercontent.com/production/{parts.path.rsplit('/', 1)[1]}"
                self.routes[path] = (302, {"Location": f"{stored}?sig=x"}, b"")
                path = stored
            self.routes[path] = (200, {}, body(item.url))

    def path_of(self, name: str) -> str:
        """The path that finally serves the download ``name``."""
        tail = "/" + name.rsplit("/", 1)[-1]
        return next(p for p, (status, _, _) in self.routes.items() if status == 200 and p.endswith(tail))

    def handler(self) -> type:
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                mirror.seen.append((self.path, dict(self.headers)))
                if self.path.split("?")[0] == mirror.stall:
                    mirror.stopping.wait(30)
                    return
                status, headers, data = mirror.routes.get(self.path.split("?")[0], (404, {}, b"not found"))
                self.send_response(status)
                for key, value in {"Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def mirror(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    served = Mirror()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), served.handler())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(MIRROR_ENV, f"https://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    yield served
    served.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {"filter_headers": ["authorization"], "ignore_localhost": True, "record_mode": "none",
            "allow_playback_repeats": True}


def run(target: Path, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["hyperexecute-pin", "--tc-version", "87.0.0", "--payload", str(target), *extra])


def assert_refused(result: Any, target: Path, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperexecute-pin: nothing written: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert not target.exists() or not any(target.iterdir()) or (target / "keep.txt").exists()
    assert [p.name for p in target.parent.iterdir() if ".pin-" in p.name or ".old-" in p.name] == []
    assert TOKEN not in result.output
    return lines[0]


@pytest.mark.vcr("github_release_v87.yaml")
def test_pin_writes_the_shipped_payload_with_every_download_pinned(mirror: Mirror, tmp_path: Path):
    target = tmp_path / "pinned"
    result = run(target, "--trust-on-first-use")
    assert result.exit_code == 0, result.output

    shipped = {p.relative_to(SHIPPED) for p in SHIPPED.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    written = {p.relative_to(target) for p in target.rglob("*") if p.is_file()}
    assert written == shipped
    for relative in shipped - {Path("checksums.sha256")}:
        assert (target / relative).read_bytes() == (SHIPPED / relative).read_bytes()
        assert (target / relative).stat().st_mode == (SHIPPED / relative).stat().st_mode

    expected = {item.name: hashlib.sha256(body(item.url)).hexdigest() for item in WANTED}
    assert pins(target) == expected and len(expected) == 11
    assert verify(target) == [] and unpinned(target, "87.0.0") == ""  # what the daemon checks of a pool's payload
    text = (target / "checksums.sha256").read_text()
    assert text.startswith(HEADER) and "Taskcluster v87.0.0 (amd64, arm64)" in text.splitlines()[0]
    publisher, trusted = text.split("# Trust on first use (")
    assert "releases/tags/v87.0.0" in publisher
    assert re.match(r"\d{4}-\d{2}-\d{2}\)", trusted)
    assert {line.split()[1] for line in publisher.splitlines() if not line.startswith("#")} == {
        item.name for item in WANTED if item.release_asset}
    assert {line.split()[1] for line in trusted.splitlines()[1:] if not line.startswith("#")} == {
        "robustcheckout.py", "tooltool.py", "commandlinetools-linux-13114758_latest.zip"}
    assert "8 by the publisher's digest, 3 on trust on first use" in result.stdout
    assert result.stdout.count("review: ") == 3
    # the token went to no download host (the API request is the cassette's), and is shown nowhere
    assert mirror.seen and all("Authorization" not in headers for _, headers in mirror.seen)
    assert TOKEN not in result.output

    again = run(target, "--trust-on-first-use")  # a previous pin's output is replaced
    assert again.exit_code == 0, again.output
    assert pins(target) == expected


@pytest.mark.vcr("github_release_v87.yaml")
def test_a_download_that_differs_from_the_publishers_digest_writes_nothing(mirror: Mirror, tmp_path: Path):
    path = mirror.path_of("generic-worker-insecure-linux-arm64")
    mirror.routes[path] = (200, {}, b"X" * len(mirror.routes[path][2]))  # the listed size, other bytes
    assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                   "v87.0.0/generic-worker-insecure-linux-arm64", "differs from the publisher's digest")


@pytest.mark.vcr("github_release_v87_gaps.yaml")
def test_an_asset_the_release_does_not_list_writes_nothing(mirror: Mirror, tmp_path: Path):
    assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                   "v87.0.0/start-worker-linux-arm64", "lists no asset start-worker-linux-arm64")
    assert mirror.seen == []  # refused before any download


@pytest.mark.vcr("github_release_v87_gaps.yaml")
def test_an_asset_without_digest_writes_nothing(mirror: Mirror, tmp_path: Path):
    assert_refused(run(tmp_path / "pinned", "--arch", "amd64", "--trust-on-first-use"), tmp_path / "pinned",
                   "v87.0.0/livelog-linux-amd64", "no sha256 digest")


@pytest.mark.vcr("github_release_v87.yaml")
def test_a_download_that_is_not_found_writes_nothing(mirror: Mirror, tmp_path: Path):
    del mirror.routes[mirror.path_of("tooltool.py")]
    assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                   "tooltool.py", "HTTP 404 (not found)")


@pytest.mark.vcr("github_release_v87.yaml")
def test_a_redirect_to_another_host_writes_nothing(mirror: Mirror, tmp_path: Path):
    path = "/github.com/taskcluster/taskcluster/releases/download/v87.0.0/livelog-linux-amd64"
    mirror.routes[path] = (302, {"Location": "https://downloads.example.net/livelog?token=secret"}, b"")
    line = assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                          "v87.0.0/livelog-linux-amd64", "a redirect leads to https://downloads.example.net",
                          "not an allowed download host")
    assert "token=secret" not in line


@pytest.mark.vcr("github_release_v87.yaml")
def test_a_redirect_to_plain_http_writes_nothing(mirror: Mirror, tmp_path: Path):
    path = mirror.path_of("robustcheckout.py")
    port = urllib.parse.urlsplit(os.environ[MIRROR_ENV]).port
    mirror.routes[path] = (301, {"Location": f"http://127.0.0.1:{port}{path}"}, b"")
    assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                   "robustcheckout.py: a redirect is http://127.0.0.1, not https")


@pytest.mark.vcr("github_release_v87.yaml")
def test_a_download_that_stalls_past_its_timeout_writes_nothing(mirror: Mirror, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    # Under vcrpy the connection is vcrpy's, not the deadline socket: the per-read timeout is what trips here.
    monkeypatch.setattr(pin, "FILE_SECONDS", 0.5)
    monkeypatch.setattr(pin, "TIMEOUT", (2.0, 0.5))
    mirror.stall = mirror.path_of("livelog-linux-arm64")
    assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                   "v87.0.0/livelog-linux-arm64", "while downloading from 127.0.0.1")


@pytest.mark.vcr("github_release_v87.yaml")
def test_a_body_larger_than_the_listed_size_writes_nothing(mirror: Mirror, tmp_path: Path):
    path = mirror.path_of("taskcluster-proxy-linux-amd64")
    listed = len(mirror.routes[path][2])  # the cassette lists the asset's size as that of the body served
    mirror.routes[path] = (200, {}, b"x" * 4096)
    assert_refused(run(tmp_path / "pinned", "--trust-on-first-use"), tmp_path / "pinned",
                   "v87.0.0/taskcluster-proxy-linux-amd64", f"4096 bytes, more than the {listed} expected")


def test_files_without_publisher_digest_need_trust_on_first_use(mirror: Mirror, tmp_path: Path):
    line = assert_refused(run(tmp_path / "pinned"), tmp_path / "pinned", "--trust-on-first-use")
    assert "robustcheckout.py, tooltool.py, commandlinetools-linux-13114758_latest.zip" in line
    assert mirror.seen == []


def test_a_directory_that_is_not_a_previous_pin_is_left_alone(mirror: Mirror, tmp_path: Path):
    target = tmp_path / "pinned"
    target.mkdir()
    (target / "keep.txt").write_text("the operator's\n")
    assert_refused(run(target, "--trust-on-first-use"), target, "not a previous pin's output")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    (target / "checksums.sha256").write_text(f"{HEADER} on 2026-01-01\n")
    assert_refused(run(target, "--trust-on-first-use"), target, "holds keep.txt")


def test_bad_arguments_are_one_line(tmp_path: Path):
    result = run(tmp_path / "p", "--arch", "riscv64")
    assert result.exit_code == 2 and "--arch 'riscv64'" in result.stderr and len(result.stderr.splitlines()) == 1
    bad = run(tmp_path / "p", "--tc-version", "87.0.0/../../x", "--trust-on-first-use")
    assert bad.exit_code == 1 and "expected a release number" in bad.stderr


@pytest.mark.parametrize("value", ["http://127.0.0.1:8443", "https://github.com", "https://10.0.0.1:443"])
def test_the_test_mirror_is_loopback_https_only(value: str):
    with pytest.raises(PinError, match="for tests only"):
        _mirror({MIRROR_ENV: value})
    assert _mirror({MIRROR_ENV: "https://127.0.0.1:8443/x"}) == "https://127.0.0.1:8443"


def test_the_token_goes_on_the_api_request_alone_which_follows_no_redirect():
    import requests

    sent: list[dict[str, Any]] = []

    class Session:
        def get(self, url: str, **kwargs: Any) -> requests.Response:
            sent.append({"url": url, **kwargs})
            answer = requests.Response()
            answer.status_code, answer._content, answer._content_consumed = 200, b'{"assets": []}', True
            return answer

    assert pin.release_assets(Session(), "87.0.0", TOKEN) == {}  # type: ignore[arg-type]
    assert sent[0]["url"] == "https://api.github.com/repos/taskcluster/taskcluster/releases/tags/v87.0.0"
    assert sent[0]["headers"]["Authorization"] == f"Bearer {TOKEN}" and sent[0]["allow_redirects"] is False
    pin.release_assets(Session(), "87.0.0", "")  # type: ignore[arg-type]
    assert "Authorization" not in sent[1]["headers"]
