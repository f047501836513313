"""Every recorded HTTP exchange is free of credentials, whoever recorded it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = sorted((ROOT / "cassettes").rglob("*.yaml"))
FORBIDDEN = [
    re.compile(r"(?im)^\s*-?\s*authorization\s*:"),  # a recorded Authorization header
    re.compile(r"(?i)\bHawk\s+id="),  # a Hawk signature anywhere
    re.compile(r"(?i)\bBasic\s+[A-Za-z0-9+/=]{8,}"),  # basic auth credentials anywhere
    re.compile(r"(?i)accessToken['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9_-]{20,}"),  # a Taskcluster access token
    re.compile(r"(?i)(LT_ACCESS_KEY|access_key)['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9]{12,}"),  # a LambdaTest key
]


def test_there_are_cassettes():
    assert len(CASSETTES) >= 10


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(ROOT / "cassettes")))
def test_cassette_holds_no_credentials(path: Path):
    text = path.read_text()
    for pattern in FORBIDDEN:
        match = pattern.search(text)
        assert match is None, f"{path}: looks like a credential: {match.group(0)[:40]!r}"
