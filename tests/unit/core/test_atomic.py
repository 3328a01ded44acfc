"""Crash-safe writes: temp names that name their writer, sweeping what dead writers left,
durable appends that survive a torn last line, and the fault points the kill tests use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flywheel.core.atomic import append_line, atomic_write_text, sweep_temp, temp_name
from flywheel.core.faults import ENV, FaultInjected, fault_point

DEAD_PID = 999_999  # above the default pid_max: never a live process


def test_temp_names_carry_the_writer_pid() -> None:
    name = temp_name("production.json")
    assert name.startswith(f".production.json.{os.getpid()}.") and name.endswith(".tmp")


def test_sweep_removes_only_what_dead_writers_left(tmp_path: Path) -> None:
    dead = tmp_path / "a" / f".x.json.{DEAD_PID}.0123abcd.tmp"
    dead.parent.mkdir()
    dead.write_text("half")
    mine = tmp_path / temp_name("y.json")
    mine.write_text("being written")
    staging = tmp_path / f".v0003.{DEAD_PID}.89abcdef"
    staging.mkdir()
    plain = tmp_path / "model.onnx.tmp"  # no pid: only an owner of the lock may remove it
    plain.write_text("x")
    removed = sweep_temp(tmp_path)
    assert set(removed) == {dead, staging}
    assert mine.exists() and plain.exists()
    assert set(sweep_temp(tmp_path, any_writer=True)) == {mine, plain}
    shallow = tmp_path / "b"
    shallow.mkdir()
    deep = shallow / f".z.{DEAD_PID}.01234567.tmp"
    deep.write_text("x")
    assert sweep_temp(tmp_path, recursive=False) == []
    assert deep.exists()


def test_append_line_starts_a_fresh_line_after_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    append_line(path, '{"a": 1}')
    with path.open("a") as fh:
        fh.write('{"b": ')  # a kill mid-append
    append_line(path, '{"c": 3}')
    assert path.read_text().splitlines() == ['{"a": 1}', '{"b": ', '{"c": 3}']


def test_a_raise_fault_point_raises_on_the_nth_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "other, test.point@2:raise")
    fault_point("test.point")
    with pytest.raises(FaultInjected, match=r"test\.point"):
        fault_point("test.point")
    fault_point("unarmed.point")


def test_a_kill_inside_an_atomic_write_leaves_the_old_file_and_a_sweepable_temp(
    tmp_path: Path,
) -> None:
    target = tmp_path / "state.json"
    atomic_write_text(target, "old\n")
    code = (
        "import sys; from pathlib import Path; from flywheel.core.atomic import "
        "atomic_write_text as w; w(Path(sys.argv[1]), 'new\\n', fault='t.write')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        env={**os.environ, ENV: "t.write"},
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    assert target.read_text() == "old\n"
    (leftover,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftover.read_text() == "new\n"
    assert sweep_temp(tmp_path) == [leftover]


def test_a_once_fault_fires_in_one_process_only(tmp_path: Path) -> None:
    code = "from flywheel.core.faults import fault_point; fault_point('p'); print('alive')"
    env = {**os.environ, ENV: "p", "FLYWHEEL_FAULT_ONCE": str(tmp_path / "fired")}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [-9, 0]
    assert runs[1].stdout.strip() == "alive"
