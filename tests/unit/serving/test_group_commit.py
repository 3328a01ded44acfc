"""Group commit: items arriving during a write share the next one; each caller returns
only once its own item is written, and a write's failure reaches exactly its group."""

from __future__ import annotations

import asyncio

import pytest

from flywheel.serving.group_commit import GroupCommit


class Writes:
    def __init__(self, fail_on: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.fail_on = fail_on
        self.release = asyncio.Event()

    async def __call__(self, group: list[int]) -> None:
        self.groups.append(group)
        await self.release.wait()  # a write that takes a while, like one on a thread
        if self.fail_on in group:
            raise OSError("disk full")


def test_a_lone_item_is_written_at_once() -> None:
    async def main() -> list[list[int]]:
        writes, commits = Writes(), GroupCommit[int]()
        writes.release.set()
        await commits.submit(7, writes)
        return writes.groups

    assert asyncio.run(main()) == [[7]]


def test_items_arriving_during_a_write_share_the_next_one() -> None:
    async def main() -> tuple[list[list[int]], list[int]]:
        writes, commits = Writes(), GroupCommit[int]()
        done: list[int] = []

        async def one(i: int) -> None:
            await commits.submit(i, writes)
            done.append(i)

        first = asyncio.create_task(one(0))
        await asyncio.sleep(0)  # the first write is under way
        rest = [asyncio.create_task(one(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        assert done == []  # nobody returns before its item is written
        writes.release.set()
        await asyncio.gather(first, *rest)
        return writes.groups, done

    groups, done = asyncio.run(main())
    assert groups == [[0], [1, 2, 3, 4, 5]]
    assert sorted(done) == list(range(6))


def test_a_failed_write_fails_its_group_only() -> None:
    async def main() -> list[object]:
        writes, commits = Writes(fail_on=2), GroupCommit[int]()
        first = asyncio.create_task(commits.submit(0, writes))
        await asyncio.sleep(0)
        group = [asyncio.create_task(commits.submit(i, writes)) for i in (1, 2)]
        await asyncio.sleep(0)
        writes.release.set()
        outcomes = await asyncio.gather(first, *group, return_exceptions=True)
        writes.fail_on = None
        await commits.submit(3, writes)  # the next write goes ahead
        return [type(o).__name__ if o else None for o in outcomes]

    assert asyncio.run(main()) == [None, "OSError", "OSError"]


def test_a_caller_that_goes_away_does_not_cancel_its_neighbours_write() -> None:
    async def main() -> list[list[int]]:
        writes, commits = Writes(), GroupCommit[int]()
        first = asyncio.create_task(commits.submit(0, writes))
        await asyncio.sleep(0)
        leaving = asyncio.create_task(commits.submit(1, writes))
        staying = asyncio.create_task(commits.submit(2, writes))
        await asyncio.sleep(0)
        leaving.cancel()
        writes.release.set()
        await asyncio.gather(first, staying)
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return writes.groups

    assert asyncio.run(main()) == [[0], [1, 2]]
