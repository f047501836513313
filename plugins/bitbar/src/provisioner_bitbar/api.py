"""Bitbar's REST API (``{url}{api_path}/...``): basic auth with the API key as user name and an empty password
(TDPY ``__build_headers``; DOCS authentication.html), JSON answers. Reads are retried on 5xx, 429 and connection
errors within a time budget on the host's clock; a write is sent once and never retried. Every try has one
overall deadline (``provisioner.deadline``) and a capped body. Failures are ``RemoteError``: one line, no secret.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from loguru import logger

from provisioner import (
    BodyTooLarge, DeadlineAdapter, PluginContext, RemoteError, deadline, deadline_left, is_loopback, read_capped,
    redirect_target,
)

MAX_DELAY = 60.0
MIN_TRY = 0.5
USER_AGENT = "provisioner-bitbar/0.1"


@dataclass(frozen=True)
class Answer:
    """A write's answer: the status and the decoded body (None when it was not JSON)."""

    status: int
    body: Any


class NotSent(Exception):
    """A write that certainly never reached the server (no connection was made)."""


def url_problem(url: str, allow_http: bool) -> str:
    """Why ``url`` must never be called (not http(s), user info in it, plain http off loopback), or ""."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "url is not a URL"
    if "@" in parts.netloc:
        return "url must not carry user info: the API key comes from apikey_env"
    if parts.scheme not in ("https", "http") or not host:
        return "url is not an https URL"
    if parts.scheme == "http" and not (allow_http or is_loopback(host)):
        return f"url is plain http on {host}: the API key would travel in clear text (use https or allow_http)"
    return ""


class BitbarApi:
    """One session per plugin object; safe for the loop's thread and its submission threads (requests' session
    pool is thread-safe for this use; nothing else is shared)."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        self._context = context
        self.base = options["url"].rstrip("/") + "/" + options["api_path"].strip("/") + "/"
        self._key_env: str = options["apikey_env"]
        self._timeout = (float(options["connect_timeout"]), float(options["read_timeout"]))
        self._try_limit = float(options["request_timeout"])
        self._post_limit = float(options["post_timeout"])
        self._budget = float(options["time_budget"])
        self._retries = int(options["retries"])
        self._backoff = float(options["retry_backoff"])
        self._max_body = int(options["max_body_bytes"])
        self._page_size = int(options["page_size"])
        self._max_pages = int(options["max_pages"])
        self.refused = url_problem(options["url"], bool(options["allow_http"]))
        self.session = requests.Session()
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, DeadlineAdapter())

    def _auth(self, what: str) -> tuple[str, str]:
        if self.refused:
            raise RemoteError(f"{what}: {self.refused}; not called")
        key = self._context.environ.get(self._key_env)
        if not key:
            raise RemoteError(f"{what}: environment variable {self._key_env} is not set")
        return key, ""

    def get(self, path: str, params: Mapping[str, Any] | None = None, until: float | None = None) -> Any:
        """The decoded body of ``GET path``, within ``until`` (host clock; default: now + time_budget)."""
        what = f"GET {path}"
        auth = self._auth(what)
        clock = self._context.clock
        until = clock.now() + self._budget if until is None else until
        reason = ""
        for attempt in range(self._retries + 1):
            rest = until - clock.now()
            if rest <= 0:
                raise RemoteError(f"{what}: out of time ({reason or 'no answer yet'})")
            delay = min(MAX_DELAY, self._backoff * 2**attempt)
            try:
                status, content, headers = self._send("GET", path, auth, max(MIN_TRY, min(self._try_limit, rest)),
                                                      params=params)
            except requests.Timeout:
                reason = "timed out"
            except requests.ConnectionError:
                reason = "connection failed"
            except requests.RequestException as exc:  # a broken body, a bad chunk: as unknown as a timeout
                reason = type(exc).__name__
            else:
                if status == 401:
                    raise RemoteError(f"{what}: HTTP 401, the API key was refused (check {self._key_env})")
                if status != 429 and status < 500:
                    if status >= 300:
                        raise RemoteError(f"{what}: HTTP {status}{_message(content)}")
                    return _json(what, content)
                reason = f"HTTP {status}"
                delay = _retry_after(headers.get("Retry-After", ""), delay)
            if attempt < self._retries:
                if clock.now() + delay >= until:
                    raise RemoteError(f"{what}: {reason}; no time left to try again")
                logger.debug("{}: {}, try {} in {:.1f}s", what, reason, attempt + 2, delay)
                clock.sleep(delay)
        raise RemoteError(f"{what}: {reason} ({self._retries + 1} tries)")

    def rows(self, path: str, params: Mapping[str, Any] | None = None, until: float | None = None,
             stop: Any = None) -> Iterator[dict[str, Any]]:
        """Every row of a list (``data``, ``total``: TDJ ``APIList``), page by page with ``limit`` and ``offset``.
        ``stop(page)`` may end the reading early (it has seen enough). A list longer than ``max_pages`` pages, or
        a page that is not a list, raises ``RemoteError``: a list cut short is unknown, never partial."""
        until = self._context.clock.now() + self._budget if until is None else until
        offset = 0
        for _ in range(self._max_pages):
            body = self.get(path, {**(params or {}), "limit": self._page_size, "offset": offset}, until)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
                raise RemoteError(f"GET {path}: no data list in the answer")
            yield from data
            offset += len(data)
            total = body.get("total")
            if not data or (isinstance(total, int) and offset >= total) or (stop is not None and stop(data)):
                return
            if not isinstance(total, int) and len(data) < self._page_size:
                return
        raise RemoteError(f"GET {path}: more than {self._max_pages} pages of {self._page_size}; raise max_pages")

    def write(self, method: str, path: str, json_body: Any = None, form: Any = None) -> Answer:
        """One ``POST``/``DELETE``, sent once. Raises ``NotSent`` when no connection was made, ``RemoteError``
        when the answer is unknown (timed out or broken after it may have reached the server)."""
        what = f"{method} {path}"
        auth = self._auth(what)
        try:
            status, content, _ = self._send(method, path, auth, self._post_limit, json=json_body, data=form)
        except (requests.ConnectTimeout, _ConnectFailed) as exc:
            raise NotSent(f"{what}: could not connect ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise RemoteError(f"{what}: no complete answer ({type(exc).__name__}); it may have reached the server") \
                from None
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        return Answer(status, body)

    def _send(self, method: str, path: str, auth: tuple[str, str], limit: float,
              **kwargs: Any) -> tuple[int, bytes, Mapping[str, str]]:
        url = self.base + path
        timeout = (min(self._timeout[0], limit), min(self._timeout[1], limit))
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        with deadline(limit):
            try:
                response = self.session.request(method, url, auth=auth, timeout=timeout, stream=True,
                                                allow_redirects=False, headers=headers, **kwargs)
            except requests.ConnectionError as exc:
                if _never_connected(exc):
                    raise _ConnectFailed(str(type(exc).__name__)) from None
                raise
            try:
                if 300 <= response.status_code < 400:
                    raise RemoteError(f"{method} {path}: HTTP {response.status_code} redirect"
                                      f"{redirect_target(response)} not followed")
                try:
                    return response.status_code, read_capped(response, self._max_body), response.headers
                except BodyTooLarge:
                    raise RemoteError(f"{method} {path}: answer larger than max_body_bytes; not read") from None
                except requests.RequestException:
                    if (deadline_left() or 0.0) <= 0:
                        raise requests.Timeout("no complete answer in time") from None
                    raise
            finally:
                response.close()

    def close(self) -> None:
        self.session.close()


class _ConnectFailed(requests.ConnectionError):
    """The connection was never made (refused, no route, name not resolved): nothing was sent."""


def _never_connected(exc: requests.ConnectionError) -> bool:
    """A connection error raised before any byte of the request left (urllib3's NewConnectionError, or a name
    that did not resolve)."""
    text = repr(exc.args[0]) if exc.args else ""
    return "NewConnectionError" in text or "NameResolutionError" in text or "connection refused" in text.lower()


def _json(what: str, content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise RemoteError(f"{what}: the answer is not JSON") from None


def _message(content: bytes) -> str:
    """``: <message>`` of an error body (TDJ ``APIExceptionMessage``), one line, cut; "" when there is none."""
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {' '.join(str(message).split())[:200]}" if message else ""


def _retry_after(value: str, default: float) -> float:
    try:
        return min(MAX_DELAY, max(0.0, float(value)))
    except ValueError:
        return default
