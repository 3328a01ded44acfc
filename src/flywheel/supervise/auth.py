"""Who may reach what ``flywheel up`` starts: the bind rules and the Prefect credentials.

Neither server may listen beyond loopback without authentication. The model server needs
``FLYWHEEL_API_TOKEN`` (see :mod:`flywheel.serving.auth`); the Prefect server needs an HTTP
basic auth string, ``PREFECT_SERVER_API_AUTH_STRING`` (``user:password``), which Prefect's
server enforces on every API route but its health probes. The same string is handed to
every child as ``PREFECT_API_AUTH_STRING``, the setting Prefect's clients send, so the
serve process, the watcher and the model server keep working against the locked API.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from flywheel.core.errors import ConfigError

SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_AUTH_ENV = "PREFECT_API_AUTH_STRING"


def auth_string(env: Mapping[str, str] | None = None) -> str | None:
    """The Prefect basic auth string the user set (server setting first), or None."""
    env = os.environ if env is None else env
    return env.get(SERVER_AUTH_ENV) or env.get(CLIENT_AUTH_ENV) or None


def authorization(auth: str | None) -> dict[str, str]:
    """The header Prefect's own clients send for ``auth`` (none without one)."""
    if not auth:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth.encode("utf-8")).decode("ascii")}


def check_prefect_bind(host: str, auth: str | None) -> None:
    """Refuse a Prefect server on a non-loopback address without an auth string."""
    from flywheel.serving.auth import is_loopback

    if not is_loopback(host) and not auth:
        raise ConfigError(
            f"refusing to start the Prefect server on non-loopback address {host!r} without "
            f"authentication: set {SERVER_AUTH_ENV} to a secret 'user:password', or bind to "
            "127.0.0.1"
        )


def check_model_server_bind(host: str) -> None:
    """The model server's own rule, checked before anything starts (its child would
    otherwise fail on every restart)."""
    from flywheel.serving.auth import check_bind, token_from_env

    check_bind(host, token_from_env())


def add_client_auth(env: dict[str, str], auth: str | None) -> dict[str, str]:
    if auth:
        env[CLIENT_AUTH_ENV] = auth
    return env


def add_server_auth(env: dict[str, str], auth: str | None) -> dict[str, str]:
    if auth:
        env[SERVER_AUTH_ENV] = auth
    return env
