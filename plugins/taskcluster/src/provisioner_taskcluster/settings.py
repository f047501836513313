"""The plugin's options (``[plugins.taskcluster]``) and what they resolve to, without touching the network."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provisioner import Option

from .transport import RetryPolicy

DEFAULT_ROOT_URL = "https://firefox-ci-tc.services.mozilla.com"
ROOT_URL_VARIABLE = "TASKCLUSTER_ROOT_URL"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

OPTIONS: dict[str, Option] = {
    "root_url": Option(str, "", help=f"Taskcluster root URL; empty: ${ROOT_URL_VARIABLE}, else {DEFAULT_ROOT_URL}"),
    "client_id_env": Option(str, "TASKCLUSTER_CLIENT_ID", env=True,
                            help="variable holding the client id; unset: anonymous calls"),
    "access_token_env": Option(str, "TASKCLUSTER_ACCESS_TOKEN", env=True,
                               help="variable holding the access token; unset: anonymous calls"),
    "connect_timeout": Option((int, float), 5.0, help="seconds to establish a connection, per attempt"),
    "read_timeout": Option((int, float), 15.0, help="seconds to wait for the server's answer, per attempt"),
    "max_attempts": Option(int, 4, help="attempts per call (retries on 5xx, 429, timeouts, connection errors)"),
    "backoff": Option((int, float), 0.5, help="seconds before the first retry; doubles each retry, at most 8"),
    "time_budget": Option((int, float), 30.0,
                          help="seconds counts() and quarantined() may each spend per cycle, retries included"),
    "batch": Option(bool, True, help="ask all queues' counts in one call (falls back to one call per queue on 404)"),
    "max_pages": Option(int, 10, help="most listWorkers pages read per queue per cycle; more: quarantine unknown"),
    "quarantine_refresh": Option((int, float), 120.0,
                                 help="seconds a queue's quarantine list is reused before it is read again "
                                      "(0: every cycle); listWorkers has no batch form"),
}


@dataclass(frozen=True)
class Credentials:
    client_id: str
    access_token: str = field(repr=False)


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
    quarantine_refresh: float = 0.0

    @property
    def who(self) -> str:
        return f"client {self.credentials.client_id}" if self.credentials else "anonymous"

    @classmethod
    def resolve(cls, options: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
        """Fill defaults, check numbers, pick the root URL and the credentials. Raises ValueError (one line)."""
        values = {name: option.default for name, option in OPTIONS.items()}
        values.update(options)
        check_numbers(values)
        root_url, source = pick_root_url(values["root_url"], environ)
        credentials, problem = pick_credentials(values["client_id_env"], values["access_token_env"], environ)
        policy = RetryPolicy(
            connect_timeout=float(values["connect_timeout"]),
            read_timeout=float(values["read_timeout"]),
            max_attempts=int(values["max_attempts"]),
            backoff=float(values["backoff"]),
        )
        return cls(root_url, source, credentials, problem, policy, float(values["time_budget"]),
                   bool(values["batch"]), int(values["max_pages"]), float(values["quarantine_refresh"]))


def check_numbers(values: Mapping[str, Any]) -> None:
    for name in ("connect_timeout", "read_timeout", "time_budget"):
        if not values[name] > 0:
            raise ValueError(f"taskcluster: option {name} must be more than 0 seconds, not {values[name]!r}")
    for name in ("max_attempts", "max_pages"):
        if not values[name] >= 1:
            raise ValueError(f"taskcluster: option {name} must be at least 1, not {values[name]!r}")
    if not values["quarantine_refresh"] >= 0:
        raise ValueError(f"taskcluster: option quarantine_refresh must be 0 or more seconds, "
                         f"not {values['quarantine_refresh']!r}")
    if not values["backoff"] >= 0:
        raise ValueError(f"taskcluster: option backoff must be 0 or more seconds, not {values['backoff']!r}")


def pick_root_url(configured: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The config's root_url, else $TASKCLUSTER_ROOT_URL, else Firefox-CI; with where it came from."""
    if configured:
        return configured.rstrip("/"), "config"
    if environ.get(ROOT_URL_VARIABLE):
        return environ[ROOT_URL_VARIABLE].rstrip("/"), ROOT_URL_VARIABLE
    return DEFAULT_ROOT_URL, "default"


def pick_credentials(client_id_env: str, access_token_env: str,
                     environ: Mapping[str, str]) -> tuple[Credentials | None, str]:
    """Credentials when both variables are set; anonymous (and a one-line problem) when only one is."""
    client_id = environ.get(client_id_env, "") if client_id_env else ""
    access_token = environ.get(access_token_env, "") if access_token_env else ""
    if client_id and access_token:
        return Credentials(client_id, access_token), ""
    if client_id or access_token:
        have, lack = (client_id_env, access_token_env) if client_id else (access_token_env, client_id_env)
        return None, f"taskcluster: {have} is set but {lack or 'its partner'} is not: calls go anonymous"
    return None, ""


def root_url_problem(root_url: str, source: str) -> str:
    """One line when the root URL is not an https URL (plain http is allowed on loopback, for test stubs)."""
    where = "root_url" if source in ("config", "default") else f"root_url (from ${source})"
    try:
        parts = urllib.parse.urlsplit(root_url)
        host = parts.hostname
    except ValueError:
        return f"taskcluster: {where} is not a URL"
    if parts.username or parts.password:
        return f"taskcluster: {where} must not carry user info; credentials come from environment variables"
    if not host or parts.query or parts.fragment:
        return f"taskcluster: {where} {root_url!r} is not an https URL like {DEFAULT_ROOT_URL}"
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return ""
    return f"taskcluster: {where} {root_url!r} is not an https URL like {DEFAULT_ROOT_URL}"
