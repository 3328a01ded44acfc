"""Typed failures of ``flywheel up`` / ``down`` / ``status``."""

from __future__ import annotations

from flywheel.core.errors import FlywheelError


class ServiceError(FlywheelError):
    """The long-running service could not be started, reached or stopped."""


class PortInUseError(ServiceError):
    def __init__(self, host: str, port: int, hint: str = "") -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"port {port} on {host} is already in use"
            + (f": {hint}" if hint else "; pass --port to pick another")
        )


class ServerUnavailable(ServiceError):
    """No Prefect server answered at the API address in use."""


class AlreadyRunning(ServiceError):
    """``flywheel up`` is already running for this project."""


class NotRunning(ServiceError):
    """``flywheel down`` found no running ``up`` for this project."""
