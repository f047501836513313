"""Constants and helpers shared by the taskcluster plugin's tests (imported as ``tc_helpers``)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[3]
CASSETTES = REPO / "cassettes" / "taskcluster"
START = 1_749_544_200.0  # 2025-06-10T08:30:00Z, the moment of the reference examples
ROOT = "https://firefox-ci-tc.services.mozilla.com"
Q1 = "proj-autophone/gecko-t-lambda-perf-a55"
Q2 = "proj-autophone/gecko-t-lambda-alpha-a55"


def recorded_bodies(cassette: Any) -> list[Any]:
    """The JSON bodies of a cassette's responses (as replayed, or as just recorded)."""
    return [json.loads(response["body"]["string"]) for response in cassette.responses]


def make_response(request: requests.PreparedRequest, status: int, body: Any,
                  headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.raw = io.BytesIO(body.encode() if isinstance(body, str) else json.dumps(body).encode())
    response.headers.update({"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    response.request = request
    response.url = request.url or ""
    return response


class StubAdapter(requests.adapters.BaseAdapter):
    """A transport for a Session: ``handler(request)`` answers a Response or raises; every call is kept."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], requests.Response]) -> None:
        super().__init__()
        self.handler = handler
        self.calls: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append((request, kwargs))
        return self.handler(request)

    def close(self) -> None:
        pass


def unknown(read: Callable[[], Any]) -> str:
    """The one line of the ``RemoteError`` a read raises when it knows no queue (an outage, refused credentials)."""
    from provisioner import RemoteError

    try:
        answer = read()
    except RemoteError as exc:
        line = str(exc)
        assert "\n" not in line and line
        return line
    raise AssertionError(f"expected RemoteError, got {answer!r}")
