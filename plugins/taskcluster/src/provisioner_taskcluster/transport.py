"""HTTP for the Taskcluster queue source: timeouts, bounded retries on the injected clock, Hawk signing.

Why the plugin does its own HTTP instead of calling ``taskcluster.Queue().taskQueueCounts(...)``:

- the official client calls ``requests.request()`` with no timeout, and offers no way to pass a session or a
  timeout: one stalled connection would block the provisioner's loop forever;
- it retries with ``time.sleep`` (not our clock, so tests would really sleep), up to ``maxRetries`` whatever
  time is left in the cycle, and never on 429;
- it logs every request's headers, ``Authorization`` included, at DEBUG through stdlib logging (the very leak
  operators complained about).

So the calls go through one ``requests.Session`` with a connect and a read timeout and an overall deadline
(``deadline.py``) on every request, read at most ``max_body_bytes`` of an answer, follow no redirect, retry with
backoff sleep through ``context.clock`` and stop when the cycle's time budget is spent. The official client
still does what it does well: it builds the URLs (``buildUrl``, see ``urls.py``) and the Hawk ``ext``
(``makeHawkExt``); the header itself is signed with ``mohawk`` exactly as the client signs it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from provisioner import BodyTooLarge, Clock, deadline, deadline_left, monotonic, read_capped, redirect_target


# Sign(method, url, body) -> value of the Authorization header.
Signer = Callable[[str, str, bytes | None], str]

MAX_BACKOFF = 8.0  # seconds; a single backoff sleep never exceeds this
MIN_TIMEOUT = 0.5  # seconds; a timeout clamped to the budget never goes below this


@dataclass(frozen=True)
class RetryPolicy:
    """How long one request may take and how often it is tried."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_attempts: int = 4
    backoff: float = 0.5  # first retry delay; doubles on each retry (with jitter), capped at MAX_BACKOFF
    request_timeout: float = 30.0  # connect, headers and body of one attempt together
    max_body_bytes: int = 4 * 1024 * 1024  # an answer larger than this is not read


class Budget:
    """The time one cycle's calls may spend, measured on the injected clock's monotonic time (a step of the wall
    clock neither ends nor stretches it)."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.deadline = monotonic(clock) + seconds

    def remaining(self) -> float:
        return self.deadline - monotonic(self.clock)


def describe(endpoint: str, method: str, url: str, reason: str) -> str:
    """The one line that reports a failed call: ``taskcluster taskQueueCounts GET https://...: HTTP 500 ...``."""
    return f"taskcluster {endpoint} {method} {url}: {reason}"


class CallError(Exception):
    """One call failed; ``str()`` is one line naming the endpoint and the reason, without any secret."""

    def __init__(self, endpoint: str, method: str, url: str, reason: str, status: int | None = None,
                 body: Any = None) -> None:
        super().__init__(describe(endpoint, method, url, reason))
        self.status = status
        self.body = body


class DeadlineExceeded(requests.Timeout):
    """One attempt had no complete answer within its overall deadline."""





def is_retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def retry_after(response: requests.Response | None) -> float:
    """Seconds the server asked us to wait (``Retry-After`` in seconds), 0 when absent or unreadable."""
    if response is None:
        return 0.0
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def error_code(body: Any) -> str:
    """Taskcluster's error ``code`` (e.g. ``ResourceNotFound``) from an error body, '' when there is none."""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return body["code"]
    return ""


def insufficient_scopes(body: Any) -> str:
    """The scopes a 403 ``InsufficientScopes`` body says are needed, as one short phrase.

    The message holds the required scope expression as JSON between triple backticks, e.g.
    ``{"AllOf": ["queue:pending-count:p/wt", "queue:claimed-count:p/wt"]}``.
    """
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return "scopes not named in the response"
    parts = message.split("```")
    if len(parts) < 3:
        return "scopes not named in the response"
    try:
        return render_scopes(json.loads(parts[1]))
    except ValueError:
        return "scopes not named in the response"


def render_scopes(expression: Any) -> str:
    """``{"AllOf": [a, b]}`` -> ``a, b``; ``{"AnyOf": [a, b]}`` -> ``one of (a | b)``; nested as needed."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and isinstance(expression.get("AllOf"), list):
        return ", ".join(render_scopes(e) for e in expression["AllOf"])
    if isinstance(expression, dict) and isinstance(expression.get("AnyOf"), list):
        return "one of (" + " | ".join(render_scopes(e) for e in expression["AnyOf"]) + ")"
    raise ValueError("not a scope expression")


class Transport:
    """Sends JSON requests with timeouts and bounded retries; answers the decoded JSON object."""

    def __init__(self, session: requests.Session, policy: RetryPolicy, clock: Clock, rng: random.Random,
                 signer: Signer | None = None, who: str = "anonymous") -> None:
        self.session = session
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.signer = signer
        self.who = who  # "anonymous" or "client <clientId>" (a client id is not a secret)

    def request(self, endpoint: str, method: str, url: str, budget: Budget, payload: Any = None) -> dict[str, Any]:
        """Send one call, retrying 5xx, 429, timeouts and connection errors while attempts and budget last.

        Raises ``CallError`` when the call failed or its body is not a JSON object.
        """
        body = json.dumps(payload).encode() if payload is not None else None
        if budget.remaining() <= 0:  # earlier calls of this cycle spent it all
            raise CallError(endpoint, method, url, "no time left in this cycle's budget")
        attempt = 0
        while True:
            attempt += 1
            response: requests.Response | None = None
            try:
                response, content = self._send(method, url, body, budget.remaining())
            except DeadlineExceeded as exc:
                reason = f"timed out ({exc})"
            except BodyTooLarge:
                cap = self.policy.max_body_bytes
                raise CallError(endpoint, method, url, f"answer larger than max_body_bytes ({cap}); not read") from None
            except requests.Timeout as exc:
                reason = f"timed out ({type(exc).__name__})"
            except requests.ConnectionError as exc:
                reason = f"connection failed ({type(exc).__name__})"
            except requests.RequestException as exc:
                raise CallError(endpoint, method, url, f"request failed ({type(exc).__name__})") from None
            else:
                if response.status_code < 300:
                    return self._decode(endpoint, method, url, response.status_code, content)
                if 300 <= response.status_code < 400:
                    reason = f"HTTP {response.status_code} redirect{redirect_target(response)} not followed"
                    raise CallError(endpoint, method, url, reason, status=response.status_code)
                if not is_retryable(response.status_code):
                    raise self._http_error(endpoint, method, url, response.status_code, content)
                reason = f"HTTP {response.status_code}"
            delay = max(self._backoff(attempt), retry_after(response))
            attempts = f"{attempt} attempt{'s' if attempt > 1 else ''}"
            status = response.status_code if response is not None else None
            if attempt >= self.policy.max_attempts:
                raise CallError(endpoint, method, url, f"{reason}; gave up after {attempts}", status=status)
            if delay >= budget.remaining():
                reason += f"; no time left in this cycle's budget to retry after {attempts}"
                raise CallError(endpoint, method, url, reason, status=status)
            self.clock.sleep(delay)

    def _send(self, method: str, url: str, body: bytes | None,
              remaining: float) -> tuple[requests.Response, bytes]:
        """One attempt: connect, headers and body within one overall deadline; the body read whole, capped."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.signer is not None:
            headers["Authorization"] = self.signer(method, url, body)
        # Never wait longer than the budget has left, and never less than MIN_TIMEOUT.
        limit = max(MIN_TIMEOUT, min(self.policy.request_timeout, remaining))
        timeout = (min(self.policy.connect_timeout, limit), min(self.policy.read_timeout, limit))
        with deadline(limit):
            try:
                response = self.session.request(method, url, data=body, headers=headers, timeout=timeout,
                                                allow_redirects=False, stream=True)
                try:
                    return response, read_capped(response, self.policy.max_body_bytes)
                finally:
                    response.close()
            except requests.RequestException:
                if (deadline_left() or 0.0) <= 0:
                    raise DeadlineExceeded(f"no complete answer within {limit:g} s") from None
                raise

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (from the seeded rng): 0.5, 1, 2, 4... times 0.8-1.2."""
        return min(MAX_BACKOFF, self.policy.backoff * (2 ** (attempt - 1)) * self.rng.uniform(0.8, 1.2))

    @staticmethod
    def _decode(endpoint: str, method: str, url: str, status: int, content: bytes) -> dict[str, Any]:
        try:
            data = json.loads(content)
        except ValueError:
            raise CallError(endpoint, method, url, f"malformed JSON in HTTP {status} answer") from None
        if not isinstance(data, dict):
            raise CallError(endpoint, method, url, f"expected a JSON object, got {type(data).__name__}")
        return data

    def _http_error(self, endpoint: str, method: str, url: str, status: int, content: bytes) -> CallError:
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        code = error_code(data)
        if status == 403:
            reason = f"HTTP 403 {code or 'Forbidden'}: missing scopes {insufficient_scopes(data)} ({self.who})"
        else:
            reason = f"HTTP {status}" + (f" {code}" if code else "")
        return CallError(endpoint, method, url, reason, status=status, body=data)
