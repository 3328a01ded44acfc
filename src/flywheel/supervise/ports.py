"""Loopback ports: is one taken, and which one is free."""

from __future__ import annotations

import socket


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on ``host:port``.

    SO_REUSEADDR mirrors what uvicorn does, so a port left in TIME_WAIT by a server that
    just stopped counts as free (uvicorn will bind it), while a live listener does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
