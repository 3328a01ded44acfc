"""The watcher's decisions: debounce, content hashing, and when an event goes out."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from flywheel.datasets.hashing import data_hash
from flywheel.triggers.debounce import Debouncer
from flywheel.triggers.monitor import (
    ChangeFilter,
    ChangeMonitor,
    load_last_emitted,
    save_last_emitted,
)
from flywheel.triggers.observer import needs_polling, start_observer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_debounce_waits_for_quiet_after_the_last_change() -> None:
    clock = Clock()
    debouncer = Debouncer(1.0, clock)
    assert not debouncer.take()  # nothing changed
    for _ in range(4):  # a burst: one change every 0.3 s
        debouncer.changed()
        clock.now += 0.3
        assert not debouncer.take()
    clock.now += 0.6  # 0.9 s since the last change
    assert not debouncer.take()
    clock.now += 0.15
    assert debouncer.take()
    assert not debouncer.take()  # fires once per quiet period


def test_debounce_delay_postpones_a_retry() -> None:
    clock = Clock()
    debouncer = Debouncer(1.0, clock)
    debouncer.changed(delay=5.0)
    clock.now += 5.5
    assert not debouncer.take()
    clock.now += 0.5
    assert debouncer.take()


def test_gate_emits_only_new_content() -> None:
    gate = ChangeFilter()
    assert not gate.decide("a.dir", production="a.dir").emit  # what production was trained on
    assert gate.decide("b.dir", production="a.dir").emit
    gate.emitted("b.dir")
    assert not gate.decide("b.dir", production="a.dir").emit  # announced already
    assert gate.decide("c.dir", production="a.dir").emit
    assert ChangeFilter().decide("b.dir", production=None).emit  # no production at all: new


def test_gate_forgets_after_returning_to_production() -> None:
    gate = ChangeFilter("b.dir")
    assert not gate.decide("a.dir", production="a.dir").emit
    # b's run may have failed; the same content arriving again deserves another try.
    assert gate.decide("b.dir", production="a.dir").emit


class Fake:
    def __init__(self, hashes: list[str], production: str | None = "p.dir") -> None:
        self.hashes = hashes
        self.production = production
        self.emitted: list[str] = []
        self.fail = 0
        self.persisted: list[str | None] = []
        self.runs: dict[str, str] = {}  # data hash -> how its run ended

    def hasher(self) -> str:
        value = self.hashes.pop(0)
        if value == "vanished":
            raise FileNotFoundError("data/3/x.png")
        return value

    def emit(self, h: str, _prev: str | None, details: dict) -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("server down")
        assert details["debounce_s"] == 1.0
        self.emitted.append(h)
        return f"event-{len(self.emitted)}"


def _monitor(fake: Fake, clock: Clock) -> ChangeMonitor:
    return ChangeMonitor(
        debouncer=Debouncer(1.0, clock),
        changes=ChangeFilter(max_retries=2),
        hasher=fake.hasher,
        production_hash=lambda: fake.production,
        emit=fake.emit,
        on_emitted=lambda h, _n: fake.persisted.append(h),
        run_state=fake.runs.get,
        retry_s=5.0,
    )


def test_monitor_touch_emits_nothing_and_a_burst_emits_once() -> None:
    clock, fake = Clock(), Fake(["p.dir", "n.dir", "n.dir"])
    monitor = _monitor(fake, clock)
    monitor.changed()  # a touch: same content as production
    clock.now += 1.0
    assert monitor.step() is None
    for _ in range(20):  # 20 writes within 2 s
        monitor.changed()
        clock.now += 0.1
        assert monitor.step() is None
    clock.now += 1.0
    assert monitor.step() == "event-1"
    assert fake.emitted == ["n.dir"] and fake.persisted == ["n.dir"]
    monitor.changed()  # e.g. DVC relinking files during the run: same hash again
    clock.now += 1.0
    assert monitor.step() is None
    assert fake.emitted == ["n.dir"]


def test_monitor_retries_when_the_server_is_down_or_files_vanish() -> None:
    clock, fake = Clock(), Fake(["vanished", "n.dir", "n.dir"])
    fake.fail = 1
    monitor = _monitor(fake, clock)
    monitor.changed()
    clock.now += 1.0
    assert monitor.step() is None  # hashing hit a file deleted mid-walk
    clock.now += 1.0
    assert monitor.step() is None  # emit failed: not recorded as sent
    assert fake.persisted == []
    clock.now += 5.9
    assert monitor.step() is None  # retry waits retry_s + the quiet period
    clock.now += 0.2
    assert monitor.step() == "event-1"
    assert fake.emitted == ["n.dir"]


def test_a_crashed_run_is_announced_again_a_failed_one_never() -> None:
    clock, fake = Clock(), Fake(["n.dir"] * 6 + ["f.dir"] * 3)
    monitor = _monitor(fake, clock)

    def look() -> str | None:
        monitor.recheck()
        clock.now += 1.0
        return monitor.step()

    assert look() == "event-1"
    fake.runs["n.dir"] = "RUNNING"
    assert look() is None
    fake.runs["n.dir"] = "CRASHED"  # e.g. kill -9 of the run, or `flywheel down` during it
    assert look() == "event-2"
    fake.runs["n.dir"] = "CANCELLED_UNSTARTED"
    assert look() == "event-3"
    assert monitor.changes.retries == 2
    fake.runs["n.dir"] = "CRASHED"
    assert look() is None  # max_retries: a run that always crashes is not retried forever
    assert look() is None
    assert fake.emitted == ["n.dir"] * 3
    assert look() == "event-4"  # new content resets the count
    fake.runs["f.dir"] = "FAILED"  # deterministic: the same data would fail the same way
    assert look() is None and look() is None
    assert monitor.changes.retries == 0


def test_last_emitted_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "watcher.json"
    assert load_last_emitted(state) == (None, 0)
    save_last_emitted(state, "abc.dir", 2)
    assert load_last_emitted(state) == ("abc.dir", 2)
    state.write_text("{not json")
    assert load_last_emitted(state) == (None, 0)


def test_local_disk_uses_native_events(tmp_path: Path) -> None:
    assert needs_polling(tmp_path) is False


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_real_folder_touch_vs_content_change(tmp_path: Path, poll: bool) -> None:
    """A real observer and DVC's hash: reading or touching files emits nothing; new bytes do."""
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "a" / "1.png").write_bytes(b"one")
    emitted: list[str] = []
    monitor = ChangeMonitor(
        debouncer=Debouncer(0.3),
        changes=ChangeFilter(),
        hasher=lambda: data_hash(data),
        production_hash=lambda: None,
        emit=lambda h, _p, _d: emitted.append(h) or "id",
    )
    monitor.changes.emitted(data_hash(data))  # as if the current content was announced already
    observer = start_observer(data, monitor.changed, poll=poll, poll_interval=0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            monitor.step()
            stop.wait(0.05)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        os.utime(data / "a" / "1.png", (time.time() + 5, time.time() + 5))
        (data / "a" / "1.png").read_bytes()
        time.sleep(1.5)
        assert emitted == []
        # Whole at once: a plain write seen empty (the writer descheduled for longer than
        # the 0.3 s debounce, as on a loaded machine) would be announced twice.
        staged = tmp_path / "2.png"
        staged.write_bytes(b"two")
        os.replace(staged, data / "a" / "2.png")
        deadline = time.monotonic() + 60
        while not emitted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emitted == [data_hash(data)]
    finally:
        stop.set()
        worker.join()
        observer.stop()
        observer.join()
