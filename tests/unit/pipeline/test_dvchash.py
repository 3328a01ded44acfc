"""Stage dependencies hashed once per content: DVC's answer, remembered under the files'
inode/size/mtime signature, and recomputed the moment any file of the folder changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flywheel.pipeline import dvchash
from flywheel.pipeline.dvc import init_repository, open_repo

DVC_YAML = """\
stages:
  copy:
    cmd: cp -r src out
    deps: [src]
    outs: [out]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    init_repository(tmp_path, author="ci")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("one\n")
    (tmp_path / "src" / "b.txt").write_text("two\n")
    dvchash.clear()
    return tmp_path


def _dep_hash(root: Path) -> str:
    with open_repo(root) as repo:
        stage = repo.stage.get_target("dvc.yaml:copy")
        return str(stage.deps[0].get_hash().value)


def _dvc_own_hash(root: Path) -> str:
    """DVC's answer with nothing remembered."""
    dvchash.clear()
    return _dep_hash(root)


def _build_count(root: Path, times: int) -> int:
    from dvc_data.hashfile import build as build_module

    calls = 0
    original = build_module._build_tree

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    build_module._build_tree = counted  # type: ignore[assignment]
    try:
        for _ in range(times):
            _dep_hash(root)
    finally:
        build_module._build_tree = original
    return calls


def test_an_unchanged_folder_is_walked_by_dvc_once(repo: Path) -> None:
    first = _dep_hash(repo)
    assert _build_count(repo, 3) == 0
    assert first == _dvc_own_hash(repo)


@pytest.mark.parametrize("change", ["rewrite", "add", "remove", "same_size", "ignore"])
def test_any_change_to_the_folder_is_hashed_afresh(repo: Path, change: str) -> None:
    before = _dep_hash(repo)
    a = repo / "src" / "a.txt"
    if change == "rewrite":
        a.write_text("one, rewritten\n")
    elif change == "add":
        (repo / "src" / "sub").mkdir()
        (repo / "src" / "sub" / "c.txt").write_text("three\n")
    elif change == "remove":
        a.unlink()
    elif change == "same_size":
        stat = a.stat()
        a.write_text("ONE\n")  # same size; the mtime (pinned back a second) still differs
        os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns - 1_000_000_000))
    else:
        (repo / ".dvcignore").write_text("a.txt\n")
    after = _dep_hash(repo)
    assert after != before
    assert after == _dvc_own_hash(repo)
