"""GET JSON from LambdaTest: basic auth; per try, an overall deadline (connect, headers and body together) and a
cap on the answer's size; no redirect followed; bounded retries on the host's clock. Failures become
``RemoteError`` (one line, no secret)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

import requests
from loguru import logger

from provisioner import (
    BodyTooLarge, DeadlineAdapter, PluginContext, RemoteError, deadline, deadline_left, is_loopback, monotonic,
    read_capped, redirect_target,
)


MAX_DELAY = 60.0  # no wait between two tries is longer than this, whatever Retry-After says
MIN_TRY = 0.5  # seconds: a try clamped to what is left of the budget never gets less than this



class Overdue(requests.Timeout):
    """One try had no complete answer within its overall deadline."""


def credentials(environ: Mapping[str, str], username_env: str, access_key_env: str) -> tuple[str, str]:
    """The LambdaTest username and access key from the environment. ``KeyError`` names the first unset variable."""
    for name in (username_env, access_key_env):
        if not environ.get(name):
            raise KeyError(name)
    return environ[username_env], environ[access_key_env]



def url_problem(key: str, url: str, allow_http: bool) -> str:
    """One line when ``url`` must never be called: not an http(s) URL, user info in it, or plain http on a host
    that is not loopback unless ``allow_http`` (basic auth would travel in clear text). "" when it may be."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{key} is not a URL"
    if "@" in parts.netloc:
        return f"{key} must not carry user info: the credentials come from environment variables"
    if parts.scheme not in ("https", "http") or not host:
        return f"{key} is not an https URL"
    if parts.scheme == "http" and not (allow_http or is_loopback(host)):
        return (f"{key} is plain http on {host}, which is not loopback: the access key would travel in clear text; "
                "use https (or set allow_http = true)")
    return ""


def new_session() -> requests.Session:
    """A session whose connections honour ``deadline()``."""
    session = requests.Session()
    for prefix in ("https://", "http://"):
        session.mount(prefix, DeadlineAdapter())
    return session




class LambdaTestApi:
    """A small JSON client. One instance per provider; not shared across threads."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        self._context = context
        self._username_env: str = options["username_env"]
        self._access_key_env: str = options["access_key_env"]
        self._timeout = (float(options["connect_timeout"]), float(options["read_timeout"]))
        self._request_timeout = float(options["request_timeout"])
        self._max_body = int(options["max_body_bytes"])
        self._retries = int(options["retries"])
        self._backoff = float(options["retry_backoff"])
        self.session = new_session()

    def _auth(self, url: str) -> tuple[str, str]:
        try:
            return credentials(self._context.environ, self._username_env, self._access_key_env)
        except KeyError as missing:
            raise RemoteError(f"GET {url}: environment variable {missing.args[0]} is not set") from None

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, deadline: float | None = None) -> Any:
        """The decoded JSON body of ``GET url``; retries 5xx, 429, timeouts and connection errors, all before
        ``deadline`` (a time of the host's monotonic clock: ``provisioner.monotonic(clock)``) when given."""
        auth = self._auth(url)
        tries = self._retries + 1
        reason = ""
        clock = self._context.clock
        for attempt in range(tries):
            rest = float("inf") if deadline is None else deadline - monotonic(clock)
            if rest <= 0:
                raise RemoteError(f"GET {url}: out of time for this cycle ({reason or 'no answer yet'})")
            delay = min(MAX_DELAY, self._backoff * 2**attempt)
            try:
                response, content = self._try(url, params, auth, max(MIN_TRY, min(self._request_timeout, rest)))
            except BodyTooLarge:
                raise RemoteError(f"GET {url}: answer larger than max_body_bytes ({self._max_body}); not read") from None
            except requests.Timeout as exc:
                reason = "timed out" + (f" ({exc.args[0]})" if isinstance(exc, Overdue) else "")
            except requests.ConnectionError:
                reason = "connection failed"
            except requests.RequestException as exc:
                raise RemoteError(f"GET {url}: {type(exc).__name__}") from None
            else:
                status = response.status_code
                if status == 401:
                    raise RemoteError(
                        f"GET {url}: HTTP 401, the credentials were refused "
                        f"(check {self._username_env} and {self._access_key_env})"
                    )
                if 300 <= status < 400:
                    raise RemoteError(f"GET {url}: HTTP {status} redirect{redirect_target(response)} not followed")
                if status != 429 and status < 500:
                    return _decode(url, status, content)
                reason = f"HTTP {status}"
                delay = _retry_after(response, delay)
            if attempt + 1 < tries:
                if deadline is not None and monotonic(clock) + delay >= deadline:
                    raise RemoteError(f"GET {url}: {reason}; no time left this cycle to try again")
                logger.debug("GET {}: {}, try {} of {} in {:.1f}s", url, reason, attempt + 2, tries, delay)
                clock.sleep(delay)
        raise RemoteError(f"GET {url}: {reason} ({tries} tries)")

    def _try(self, url: str, params: Mapping[str, Any] | None, auth: tuple[str, str],
             limit: float) -> tuple[requests.Response, bytes]:
        """One try: connect, headers and body within ``limit`` seconds (real time), the body read whole, capped."""
        timeout = (min(self._timeout[0], limit), min(self._timeout[1], limit))
        with deadline(limit):
            try:
                response = self.session.get(url, params=params, auth=auth, timeout=timeout, stream=True,
                                            allow_redirects=False)
                try:
                    return response, read_capped(response, self._max_body)
                finally:
                    response.close()
            except requests.RequestException:
                if (deadline_left() or 0.0) <= 0:
                    raise Overdue(f"no complete answer within {limit:g}s") from None
                raise

    def close(self) -> None:
        self.session.close()


def _decode(url: str, status: int, content: bytes) -> Any:
    if status >= 400:
        raise RemoteError(f"GET {url}: HTTP {status}")
    try:
        return json.loads(content)
    except ValueError:
        raise RemoteError(f"GET {url}: the answer is not JSON") from None


def _retry_after(response: requests.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(MAX_DELAY, max(0.0, float(value)))
    except ValueError:
        return default
