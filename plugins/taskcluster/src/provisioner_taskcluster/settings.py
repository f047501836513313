"""The plugin's options (``[plugins.taskcluster]``) and what they resolve to, without touching the network."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from provisioner import Option, is_loopback

from .transport import RetryPolicy

DEFAULT_ROOT_URL = "https://firefox-ci-tc.services.mozilla.com"
ROOT_URL_VARIABLE = "TASKCLUSTER_ROOT_URL"
REQUEST_TIMEOUT_BOUNDS = (0.5, 600.0)  # seconds
MAX_BODY_BOUNDS = (1024, 256 * 1024 * 1024)  # bytes

OPTIONS: dict[str, Option] = {
    "root_url": Option(str, "", help=f"Taskcluster root URL; empty: ${ROOT_URL_VARIABLE}, else {DEFAULT_ROOT_URL}"),
    "client_id_env": Option(str, "TASKCLUSTER_CLIENT_ID", env=True,
                            help="variable holding the client id; unset: anonymous calls"),
    "access_token_env": Option(str, "TASKCLUSTER_ACCESS_TOKEN", env=True,
                               help="variable holding the access token; unset: anonymous calls"),
    "certificate_env": Option(str, "TASKCLUSTER_CERTIFICATE", env=True,
                              help="variable holding the certificate (JSON) of temporary credentials; "
                                   "unset: permanent credentials"),
    "connect_timeout": Option((int, float), 5.0, help="seconds to establish a connection, per attempt"),
    "read_timeout": Option((int, float), 15.0, help="seconds to wait for the server's answer, per attempt"),
    "request_timeout": Option((int, float), 30.0,
                              help="seconds one attempt may take, connect, headers and body together "
                                   f"({REQUEST_TIMEOUT_BOUNDS[0]:g}-{REQUEST_TIMEOUT_BOUNDS[1]:g})"),
    "max_body_bytes": Option(int, 4 * 1024 * 1024,
                             help=f"largest answer read, in bytes ({MAX_BODY_BOUNDS[0]}-{MAX_BODY_BOUNDS[1]})"),
    "max_attempts": Option(int, 4, help="attempts per call (retries on 5xx, 429, timeouts, connection errors)"),
    "backoff": Option((int, float), 0.5, help="seconds before the first retry; doubles each retry, at most 8"),
    "time_budget": Option((int, float), 30.0,
                          help="seconds counts() and workers() may each spend per cycle, retries included"),
    "batch": Option(bool, True, help="ask all queues' counts in one call (falls back to one call per queue on 404)"),
    "max_pages": Option(int, 10, help="most listWorkers pages read per queue per cycle; more: workers unknown"),
    "allow_http": Option(bool, False, help="accept a plain-http root_url on a host other than loopback"),
    "quarantine_refresh": Option((int, float), None,
                                 help="deprecated and ignored: the workers are read every cycle"),
}
DEPRECATED = "taskcluster: option quarantine_refresh is deprecated and ignored: workers are read every cycle"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    access_token: str = field(repr=False)
    certificate: str = field(default="", repr=False)  # temporary credentials' certificate, as JSON text


@dataclass(frozen=True)
class Settings:
    """Options resolved against the environment."""

    root_url: str
    root_url_source: str  # "config", the variable's name, or "default"
    credentials: Credentials | None
    credential_problem: str  # one line when only half of the credentials is set, else ""
    policy: RetryPolicy
    time_budget: float
    batch: bool
    max_pages: int
    allow_http: bool = False
    deprecated: str = ""  # one line when a deprecated option is set, else ""
    certificate_env: str = "TASKCLUSTER_CERTIFICATE"
    client_id_env: str = "TASKCLUSTER_CLIENT_ID"
    access_token_env: str = "TASKCLUSTER_ACCESS_TOKEN"

    @property
    def who(self) -> str:
        return f"client {self.credentials.client_id}" if self.credentials else "anonymous"

    def credential_variables(self) -> str:
        """The variables the credentials come from (names, never values): ``$A and $B`` (``, $C`` when temporary)."""
        names = [self.client_id_env, self.access_token_env]
        if self.credentials and self.credentials.certificate:
            names.append(self.certificate_env)
        return ", ".join(f"${n}" for n in names[:-1]) + f" and ${names[-1]}"

    @classmethod
    def resolve(cls, options: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
        """Fill defaults, check numbers, pick the root URL and the credentials. Raises ValueError (one line)."""
        values = {name: option.default for name, option in OPTIONS.items()}
        values.update(options)
        check_numbers(values)
        root_url, source = pick_root_url(values["root_url"], environ)
        credentials, problem = pick_credentials(values["client_id_env"], values["access_token_env"], environ,
                                                values["certificate_env"])
        policy = RetryPolicy(
            connect_timeout=float(values["connect_timeout"]),
            read_timeout=float(values["read_timeout"]),
            max_attempts=int(values["max_attempts"]),
            backoff=float(values["backoff"]),
            request_timeout=float(values["request_timeout"]),
            max_body_bytes=int(values["max_body_bytes"]),
        )
        return cls(root_url, source, credentials, problem, policy, float(values["time_budget"]),
                   bool(values["batch"]), int(values["max_pages"]), bool(values["allow_http"]),
                   DEPRECATED if values["quarantine_refresh"] is not None else "", values["certificate_env"],
                   values["client_id_env"], values["access_token_env"])


def check_numbers(values: Mapping[str, Any]) -> None:
    for name in ("connect_timeout", "read_timeout", "time_budget"):
        if not values[name] > 0:
            raise ValueError(f"taskcluster: option {name} must be more than 0 seconds, not {values[name]!r}")
    for name in ("max_attempts", "max_pages"):
        if not values[name] >= 1:
            raise ValueError(f"taskcluster: option {name} must be at least 1, not {values[name]!r}")
    for name, (low, high), unit in (("request_timeout", REQUEST_TIMEOUT_BOUNDS, "seconds"),
                                    ("max_body_bytes", MAX_BODY_BOUNDS, "bytes")):
        if not low <= values[name] <= high:
            raise ValueError(f"taskcluster: option {name} must be {low:g} to {high:g} {unit}, not {values[name]!r}")
    if not values["backoff"] >= 0:
        raise ValueError(f"taskcluster: option backoff must be 0 or more seconds, not {values['backoff']!r}")


def pick_root_url(configured: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The config's root_url, else $TASKCLUSTER_ROOT_URL, else Firefox-CI; with where it came from."""
    if configured:
        return configured.rstrip("/"), "config"
    if environ.get(ROOT_URL_VARIABLE):
        return environ[ROOT_URL_VARIABLE].rstrip("/"), ROOT_URL_VARIABLE
    return DEFAULT_ROOT_URL, "default"


def pick_credentials(client_id_env: str, access_token_env: str, environ: Mapping[str, str],
                     certificate_env: str = "") -> tuple[Credentials | None, str]:
    """Credentials when both variables are set (with the certificate, if any); else anonymous and one line.

    A problem line names variables, never their values.
    """
    client_id = environ.get(client_id_env, "") if client_id_env else ""
    access_token = environ.get(access_token_env, "") if access_token_env else ""
    certificate = environ.get(certificate_env, "") if certificate_env else ""
    if client_id and access_token:
        if not (client_id + access_token).isascii():
            return None, f"taskcluster: {client_id_env} or {access_token_env} is not ASCII: calls go anonymous"
        problem = certificate_problem(certificate)
        if problem:
            return None, f"taskcluster: {certificate_env} {problem}: calls go anonymous"
        return Credentials(client_id, access_token, certificate), ""
    if client_id or access_token:
        have, lack = (client_id_env, access_token_env) if client_id else (access_token_env, client_id_env)
        return None, f"taskcluster: {have} is set but {lack or 'its partner'} is not: calls go anonymous"
    if certificate:
        return None, f"taskcluster: {certificate_env} is set but {client_id_env} and {access_token_env} are not"
    return None, ""


def certificate_problem(certificate: str) -> str:
    """Why a temporary credentials' certificate cannot be used ('' when it can, or when there is none)."""
    if not certificate:
        return ""
    try:
        parsed = json.loads(certificate) if certificate.isascii() else None
    except ValueError:
        parsed = None
    return "" if isinstance(parsed, dict) else "is not a JSON certificate (an ASCII JSON object)"


def certificate_expired(certificate: str, now: float) -> str:
    """When a certificate's ``expiry`` (milliseconds since the epoch) has passed: the UTC date, else ''."""
    expiry = json.loads(certificate).get("expiry") if certificate else None
    if isinstance(expiry, bool) or not isinstance(expiry, (int, float)) or expiry / 1000 > now:
        return ""
    return datetime.fromtimestamp(expiry / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")



def root_url_problem(root_url: str, source: str, allow_http: bool = False) -> str:
    """One line when the root URL is not an https URL (plain http: loopback, or with ``allow_http``)."""
    where = "root_url" if source in ("config", "default") else f"root_url (from ${source})"
    try:
        parts = urllib.parse.urlsplit(root_url)
        host = parts.hostname
    except ValueError:
        return f"taskcluster: {where} is not a URL"
    if parts.username or parts.password:
        return f"taskcluster: {where} must not carry user info; credentials come from environment variables"
    if not host or parts.query or parts.fragment or parts.scheme not in ("https", "http"):
        return f"taskcluster: {where} {root_url!r} is not an https URL like {DEFAULT_ROOT_URL}"
    if parts.scheme == "http" and not (allow_http or is_loopback(host)):
        return (f"taskcluster: {where} {root_url!r} is plain http on a host that is not loopback; "
                "use https (or set allow_http = true)")
    return ""
