"""open_repo keeps one DVC repository object per project, one caller at a time, and reads
DVC's config again when it changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flywheel.pipeline.dvc import init_repository, open_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    init_repository(tmp_path, author="ci")
    return tmp_path


def test_one_repository_object_per_project_one_caller_at_a_time(repo: Path) -> None:
    with open_repo(repo) as first, open_repo(repo) as nested:
        assert nested is not first  # in use: the second caller gets its own
    with open_repo(repo) as again:
        assert again is first


def test_a_changed_cache_dir_is_read_again(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with open_repo(repo) as before:
        old_cache = Path(before.cache.local.path)
    elsewhere = tmp_path_factory.mktemp("cache")
    subprocess.run(
        [sys.executable, "-m", "dvc", "config", "cache.dir", str(elsewhere)],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    with open_repo(repo) as after:
        assert after is not before
        assert Path(after.cache.local.path).is_relative_to(elsewhere)
        assert not Path(after.cache.local.path).is_relative_to(old_cache)
