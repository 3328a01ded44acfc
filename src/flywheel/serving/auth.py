"""Bearer-token check for every route but the probes, and the rule for where the server may bind.

The check runs as ASGI middleware, before routing and before the body is read, so an
unauthenticated client cannot make the server parse anything.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from starlette.types import ASGIApp, Receive, Scope, Send

from flywheel.core.errors import ConfigError
from flywheel.serving.limits import send_error
from flywheel.serving.telemetry import ServingMetrics

TOKEN_ENV = "FLYWHEEL_API_TOKEN"
# Orchestrators probe these without credentials; they reveal nothing but up/ready.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})


def token_from_env() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        # Any other name may resolve to a public interface; treat it as one.
        return False


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on non-loopback address {host!r} without authentication: "
            f"set {TOKEN_ENV} to a secret token, or bind to 127.0.0.1"
        )


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, token: str, metrics: ServingMetrics) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        self.metrics.errors.labels(kind="unauthorized").inc()
        await send_error(
            send,
            401,
            "unauthorized",
            "missing or wrong bearer token",
            {"www-authenticate": "Bearer"},
        )
