"""Where request bodies become model inputs: a few worker threads, never the event loop.

A 15 KB PNG can declare a hundred million pixels, and 8 MB of JSON takes a while to parse;
either would stall every other request (health probes included) if it ran on the event
loop. Every body is therefore parsed, checked and decoded on ``serve.decode_threads``
threads, and the number of requests between arrival and decoded rows is bounded by
``serve.max_decoding``: past it a request is answered 503 + Retry-After before its body is
read, so a flood of expensive bodies costs the server neither memory nor a stall.
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

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Held from before the body is read until its rows are queued; refused when full.
        Only the event loop touches the count, so it needs no lock."""
        if self.in_flight >= self.max_in_flight:
            raise RequestRejectedError(
                503,
                "overloaded",
                f"server busy: {self.in_flight} requests are already being decoded "
                f"(serve.max_decoding {self.max_in_flight}); retry shortly",
                headers={"Retry-After": "1"},
            )
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
