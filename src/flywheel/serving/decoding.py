"""Where request bodies become model inputs: a few worker threads, never the event loop.

A 15 KB PNG can declare a hundred million pixels, and 8 MB of JSON takes a while to parse;
either would stall every other request (health probes included) if it ran on the event
loop. Every body is therefore parsed, checked and decoded on ``serve.decode_threads``
threads, and the number of requests being parsed or decoded (waiting for a thread or on
one) is bounded by ``serve.max_decoding``: past it a request is answered 503 +
Retry-After, before its body is read when the pool is already full on arrival, so a flood
of expensive bodies costs the server neither unbounded memory nor a stall. A slot is taken
only once the body is in: a client that sends slowly holds a connection, not a decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from flywheel.serving.requests import RequestRejectedError

P = ParamSpec("P")
T = TypeVar("T")


class DecodePool:
    def __init__(self, threads: int, max_in_flight: int) -> None:
        self.threads = threads
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="flywheel-decode")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def refuse_when_full(self) -> None:
        if self.in_flight >= self.max_in_flight:
            raise RequestRejectedError(
                503,
                "overloaded",
                f"server busy: {self.in_flight} requests are already being decoded "
                f"(serve.max_decoding {self.max_in_flight}); retry shortly",
                headers={"Retry-After": "1"},
            )

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Held while a read body is parsed and decoded; refused when the pool is full.
        Only the event loop touches the count, so it needs no lock."""
        self.refuse_when_full()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            raise RuntimeError("decode pool is not running")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
