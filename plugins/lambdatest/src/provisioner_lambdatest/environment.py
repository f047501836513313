"""The environment a child program (the HyperExecute CLI, git) gets: what it needs to run, reach the network
and talk TLS, and nothing else of the daemon's (its LambdaTest key, the pools' Taskcluster tokens, ...)."""

from __future__ import annotations

from collections.abc import Mapping

PASS = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TMPDIR", "TZ",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
})
PROXIES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})  # either case


def base_env(environ: Mapping[str, str], *extra: str) -> dict[str, str]:
    """The variables of ``environ`` a child may see: ``PASS``, ``LC_*``, proxies, and the names in ``extra``."""
    return {
        key: value
        for key, value in environ.items()
        if key in PASS or key.startswith("LC_") or key.lower() in PROXIES or key in extra
    }
