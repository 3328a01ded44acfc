"""Refuse request bodies over a byte limit, whether or not they declare their length.

A ``Content-Length`` over the limit is refused before the app reads a byte. A chunked body
(no ``Content-Length``) is counted as it streams in and refused the moment it passes the
limit, so a client can never make the server buffer more than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flywheel.serving.telemetry import ServingMetrics

# After refusing, the rest of the body is read and thrown away (a "lingering close"):
# closing a socket with unread data makes the kernel send a reset, and most clients, still
# busy sending, would then lose the 413 and see a bare connection error. A client that
# keeps sending past this much, or for this long, is cut off regardless.
_DRAIN_BYTES = 32 * 1024 * 1024
_DRAIN_SECONDS = 2.0


class BodyTooLargeError(Exception):
    pass


async def _drain(receive: Receive, budget: int) -> None:
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            while drained <= budget:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                drained += len(message.get("body", b""))


async def send_error(
    send: Send, status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """The same JSON error shape the routes use, for middleware that answers before routing."""
    body = json.dumps({"error": message, "kind": kind}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, metrics: ServingMetrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def _too_large(self, send: Send) -> None:
        self.metrics.errors.labels(kind="body_too_large").inc()
        message = f"request body is larger than the limit of {self.max_bytes} bytes"
        # The unread rest of the body makes the connection unusable; tell the client so.
        await send_error(send, 413, "body_too_large", message, {"connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the server rejects a malformed length before we run
                if declared > self.max_bytes:
                    if declared <= _DRAIN_BYTES:
                        await _drain(receive, declared)
                    await self._too_large(send)
                    return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await _drain(receive, _DRAIN_BYTES)
            await self._too_large(send)
