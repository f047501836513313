"""GET JSON from LambdaTest with basic auth, timeouts and bounded retries; failures become ``RemoteError``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from loguru import logger

from provisioner import PluginContext, RemoteError

MAX_DELAY = 60.0  # no wait between two tries is longer than this, whatever Retry-After says


def credentials(environ: Mapping[str, str], username_env: str, access_key_env: str) -> tuple[str, str]:
    """The LambdaTest username and access key from the environment. ``KeyError`` names the first unset variable."""
    for name in (username_env, access_key_env):
        if not environ.get(name):
            raise KeyError(name)
    return environ[username_env], environ[access_key_env]


class LambdaTestApi:
    """A small JSON client. One instance per provider; not shared across threads."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        self._context = context
        self._username_env: str = options["username_env"]
        self._access_key_env: str = options["access_key_env"]
        self._timeout = (float(options["connect_timeout"]), float(options["read_timeout"]))
        self._retries = max(0, int(options["retries"]))
        self._backoff = float(options["retry_backoff"])
        self.session = requests.Session()

    def _auth(self, url: str) -> tuple[str, str]:
        try:
            return credentials(self._context.environ, self._username_env, self._access_key_env)
        except KeyError as missing:
            raise RemoteError(f"GET {url}: environment variable {missing.args[0]} is not set") from None

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, deadline: float | None = None) -> Any:
        """The decoded JSON body of ``GET url``; retries 5xx, 429, timeouts and connection errors, all before
        ``deadline`` (a time of the host's clock) when given."""
        auth = self._auth(url)
        tries = self._retries + 1
        reason = ""
        clock = self._context.clock
        for attempt in range(tries):
            left = float("inf") if deadline is None else deadline - clock.now()
            if left <= 0:
                raise RemoteError(f"GET {url}: out of time for this cycle ({reason or 'no answer yet'})")
            delay = min(MAX_DELAY, self._backoff * 2**attempt)
            timeout = (min(self._timeout[0], left), min(self._timeout[1], left))
            try:
                response = self.session.get(url, params=params, auth=auth, timeout=timeout)
            except requests.Timeout:
                reason = "timed out"
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
                if status != 429 and status < 500:
                    return _decode(url, response)
                reason = f"HTTP {status}"
                delay = _retry_after(response, delay)
            if attempt + 1 < tries:
                if deadline is not None and clock.now() + delay >= deadline:
                    raise RemoteError(f"GET {url}: {reason}; no time left this cycle to try again")
                logger.debug("GET {}: {}, try {} of {} in {:.1f}s", url, reason, attempt + 2, tries, delay)
                clock.sleep(delay)
        raise RemoteError(f"GET {url}: {reason} ({tries} tries)")

    def close(self) -> None:
        self.session.close()


def _decode(url: str, response: requests.Response) -> Any:
    if response.status_code >= 400:
        raise RemoteError(f"GET {url}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise RemoteError(f"GET {url}: the answer is not JSON") from None


def _retry_after(response: requests.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(MAX_DELAY, max(0.0, float(value)))
    except ValueError:
        return default
