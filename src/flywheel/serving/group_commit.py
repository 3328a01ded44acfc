"""Group commit: items that arrive while a write is under way go out together in the next.

Each answered request used to take its own trip to a decode thread to write its
predictions to the log. Under load those trips, not the writes, were what the event loop
spent its time on; with grouping, the requests answered during one write share the next
write, so the trips per request fall as the load rises, and a lone request still goes
out at once (it waits for nothing but its own write). Every caller still gets its answer
only after its items are written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(self) -> None:
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T, write: Callable[[list[T]], Awaitable[None]]) -> None:
        """Returns once ``item`` is written, by ``write`` (its group's items, in order of
        arrival); raises what that write raised. ``write`` must be the same for every
        caller of one instance."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain(write), name="flywheel-group-commit")
        try:
            # shield: a caller that goes away (a client that hung up) does not cancel the
            # write its neighbours in the group wait for.
            await asyncio.shield(done)
        except asyncio.CancelledError:
            done.add_done_callback(_consume)  # nobody is left to read its outcome
            raise

    async def _drain(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await write([item for item, _ in group])
            except Exception as err:
                for _, done in group:
                    if not done.done():
                        done.set_exception(err)
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)


def _consume(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
