"""A real S3-compatible server on loopback for the team-mode tests: moto's server mode.

moto 5.2.5 checks ``If-None-Match`` / ``If-Match`` and then writes, with no lock, on a
threaded server: two racing conditional writes can both win, or one gets an HTTP 500
after its write landed. Real S3 makes the check and the write one step; one lock around
the WSGI app does the same here, so the races the tests stage are decided as S3 decides
them. moto's buckets live in this process, not in the server thread: a server stopped
and started again on the same port still holds them (the "store went away" cases).
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from flywheel.core.remote_section import RemoteConfig


class _Serialized:
    """The moto app one request at a time; and, when armed, a store that dies after a
    given number of object writes (mid-transfer, not between two operations)."""

    def __init__(self, app: Any, on_death: Any) -> None:
        self.app = app
        self.on_death = on_death
        self.lock = threading.Lock()
        self.writes_left: int | None = None  # None: not armed

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self.lock:
            if self.writes_left is not None and self.writes_left <= 0:
                # Dead: the connection is cut as a crashed store cuts it, and the server
                # stops (from its own thread: shutdown waits for this handler's loop).
                environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
                if self.writes_left == 0:
                    threading.Thread(target=self.on_death, daemon=True).start()
                self.writes_left = -1
                return []
            # moto's responses are buffered: materialise them inside the lock.
            body = [b"".join(self.app(environ, start_response))]
            if self.writes_left is not None and environ["REQUEST_METHOD"] in ("PUT", "POST"):
                self.writes_left -= 1
            return body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto on 127.0.0.1, every request executed one at a time."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._app: _Serialized | None = None
        self.died = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.died.clear()
        self._app = _Serialized(DomainDispatcherApplication(create_backend_app), self._die)
        self._server = make_server(
            "127.0.0.1", self.port, self._app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def die_after_writes(self, n: int) -> None:
        """Let ``n`` more object writes through, then cut every connection and stop."""
        assert self._app is not None, "start the server first"
        with self._app.lock:
            self._app.writes_left = n

    def _die(self) -> None:
        self.stop()
        self.died.set()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)

    def bucket(self, name: str | None = None) -> str:
        import boto3

        name = name or f"team-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name


def aws_test_env(mp: pytest.MonkeyPatch) -> None:
    """Dummy credentials for moto, and no real AWS config file to surprise a test."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    mp.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as mp:
        aws_test_env(mp)
        server = S3Server()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def remote(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> RemoteConfig:
    """A fresh bucket on the loopback server, as the ``remote`` params section names it."""
    aws_test_env(monkeypatch)
    bucket = s3_server.bucket()
    return RemoteConfig(
        url=f"s3://{bucket}/team",
        endpoint_url=s3_server.endpoint,
        connect_timeout_s=1.0,
        read_timeout_s=10.0,
        max_attempts=1,
    )
