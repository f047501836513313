"""Every recorded HTTP exchange is free of credentials, whoever recorded it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_Q = r'\\?"'  # a quote, escaped or not (JSON inside a YAML string)
_SECRET_KEY = rf'{_Q}key{_Q}\s*:\s*{_Q}[^"\\]*(?:token|secret|apikey|api_key|access_key|password)[^"\\]*{_Q}'
_CLEAR_VALUE = rf'{_Q}value{_Q}\s*:\s*{_Q}(?!\*\*\*{_Q})[^"\\]{{8,}}'

CASSETTES = sorted((ROOT / "cassettes").rglob("*.yaml"))
FORBIDDEN = [
    re.compile(r"(?im)^\s*-?\s*authorization\s*:"),  # a recorded Authorization header
    re.compile(r"(?i)\bHawk\s+id="),  # a Hawk signature anywhere
    re.compile(r"(?i)\bBasic\s+[A-Za-z0-9+/=]{8,}"),  # basic auth credentials anywhere
    re.compile(r"(?i)accessToken['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9_-]{20,}"),  # a Taskcluster access token
    re.compile(r"(?i)(LT_ACCESS_KEY|access_key)['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9]{12,}"),  # a LambdaTest key
    # a secret in a {"key": ..., "value": ...} item, either order (Bitbar's testRunParameters carry the token)
    re.compile(rf"(?i){_SECRET_KEY}\s*,\s*{_CLEAR_VALUE}"),
    re.compile(rf'(?i){_CLEAR_VALUE}[^"\\]*{_Q}\s*,\s*{_SECRET_KEY}'),
    re.compile(r"(?i)apikey['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9]{20,}"),  # a Bitbar API key
]


def test_there_are_cassettes():
    assert len(CASSETTES) >= 10


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(ROOT / "cassettes")))
def test_cassette_holds_no_credentials(path: Path):
    text = path.read_text()
    for pattern in FORBIDDEN:
        match = pattern.search(text)
        assert match is None, f"{path}: looks like a credential: {match.group(0)[:40]!r}"


FAKE = "x" * 16  # stands for a credential: the patterns look at the shape, never at a real value
TOKEN_ITEM = '{"key": "TASKCLUSTER_ACCESS_TOKEN", "value": "%s"}'


@pytest.mark.parametrize("text, caught", [
    (TOKEN_ITEM % FAKE, True),
    ((TOKEN_ITEM % FAKE).replace('"', '\\"'), True),  # JSON inside a YAML string
    ('{"value": "%s", "key": "MY_SECRET"}' % FAKE, True),
    (TOKEN_ITEM % "***", False),  # masked before writing
    ('{"key": "TC_WORKER_TYPE", "value": "gecko-t-bitbar-gw-perf-a55"}', False),
])
def test_a_token_in_a_key_value_body_is_caught(text: str, caught: bool):
    assert any(pattern.search(text) for pattern in FORBIDDEN) is caught
