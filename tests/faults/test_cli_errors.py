"""Every documented error a user's data or params can cause, through the real command line:
one line on stderr naming the problem and the fix, the documented exit code (README: 2 bad
params, 3 unusable data or failed validation, 1 anything else), and no traceback.

Each case breaks one thing in a copy of a small working project and runs ``python -m
flywheel.cli`` in a fresh process, as a user's shell would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests import onboard_data
from tests.text_corpus import news_corpus, write_news_folder

from flywheel.pipeline.dvc import init_repository

pytestmark = [pytest.mark.slow]  # a fresh interpreter per case, as a user's shell runs it

PROJECT = Path(__file__).resolve().parents[2]
TEXT = "task: text_classification\n"
# Code deps point at the real source tree, outside the temporary project.
GOOD = (
    TEXT + "data: {path: data/news, kind: text_folder}\n"
    "validate: {suite: news, labels: ['1', '2', '3', '4']}\n"
    f"paths: {{registry: registry/news, code: '{PROJECT / 'src' / 'flywheel'}'}}\n"
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose params.yaml validates: a text folder, its suite, one registered card."""
    root = tmp_path_factory.mktemp("cli-errors") / "project"
    root.mkdir()
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    write_news_folder(root / "data" / "news", news_corpus(6, seed=2))
    (root / "params.yaml").write_text(GOOD)
    init_repository(root, author="ci")
    assert _cli(root, "expectations", "init").returncode == 0
    version = root / "registry" / "news" / "versions" / "v0001"
    version.mkdir(parents=True)
    (version / "card.json").write_text(json.dumps({"version": "v0001", "task": 3}))
    (root / "registry" / "news" / "production.json").write_text(
        '{"version": "v0001", "history": ["v0001"]}'
    )
    return root


def _cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{PROJECT / 'src'}{os.pathsep}{PROJECT}"}
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _params(text: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / "params.yaml").write_text(text)

    return write


def _replace(rel: str, content: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / rel).write_text(content)

    return write


def _add_file(rel: str, content: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        onboard_data.write_text(root / rel, content)

    return write


def _table_with(extra: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        onboard_data.write_text(root / "data" / "table.csv", "text,label\nsome words,1\n")
        table = GOOD.replace("data/news, kind: text_folder", f"data/table.csv, {extra}")
        (root / "params.yaml").write_text(table)

    return write


def _commit_data(root: Path) -> None:
    for cmd in (["git", "add", "data/news"], ["git", "commit", "-qm", "data"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)


def _no_setup(root: Path) -> None:
    del root


def _junk(case: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        shutil.move(onboard_data.not_datasets(root / "junk")[case], root / "thing")

    return make


CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...], int, str]] = {
    # params
    "bad YAML": (_params(TEXT + "data: {path: data\n"), ("validate",), 2, "not valid YAML at line"),
    "unknown key": (
        _params(GOOD + "train: {epochs: 3}\n"),
        ("validate",),
        2,
        "train.epochs: unknown key",
    ),
    "wrong data.kind": (
        _params(GOOD.replace("text_folder", "image_folder")),
        ("validate",),
        2,
        "data.kind 'image_folder' does not fit task",
    ),
    "unknown task": (
        _params(GOOD.replace(TEXT, "task: topics\n")),
        ("params",),
        2,
        "unknown task 'topics'",
    ),
    "no validate section": (_params(TEXT), ("params",), 2, "validate: section is required"),
    # data and the params that describe it
    "data.path absent": (
        _params(GOOD.replace("data/news", "data/gone")),
        ("validate",),
        3,
        "dataset not found",
    ),
    "missing table files": (
        _params(GOOD.replace(", kind: text_folder", "")),
        ("validate",),
        2,
        "set data.kind to text_folder",
    ),
    "unknown label column": (
        _table_with("label_column: topic"),
        ("validate",),
        2,
        "data.label_column: no column 'topic'; set it to one of ['text', 'label']",
    ),
    "unknown encoding": (
        _params(GOOD.replace("kind: text_folder", "kind: text_folder, encoding: klingon")),
        ("validate",),
        2,
        "data.encoding: unknown encoding",
    ),
    "validation fails": (
        _add_file("data/news/5/x.txt", "a topic the suite does not know"),
        ("validate",),
        3,
        "data validation failed for suite 'news'",
    ),
    "suite missing": (
        _params(GOOD.replace("suite: news", "suite: other")),
        ("run",),
        2,
        "flywheel init data/news",
    ),
    "suite corrupt": (
        _replace("expectations/gx/expectations/news.json", "{not json"),
        ("validate",),
        2,
        "cannot be loaded",
    ),
    "paths.code absent": (
        _params(GOOD.replace(str(PROJECT / "src" / "flywheel"), "lib/flywheel")),
        ("run",),
        2,
        "paths.code:",
    ),
    # inside the Prefect flow (a real ephemeral server): Prefect's own failure report and
    # its traceback stay off the terminal, the command's one line says it
    "error inside the flow": (
        _table_with("label_column: topic"),
        ("run",),
        2,
        "data.label_column: no column 'topic'",
    ),
    "data committed to git": (_commit_data, ("run",), 3, "is committed to git"),
    # the registry
    "bad card": (_no_setup, ("models",), 1, "card.json is corrupt"),
    "corrupt registry alias": (
        _replace("registry/news/production.json", "{oops"),
        ("models",),
        1,
        "production.json",
    ),
    # flywheel init on what is not a dataset
    "init: empty folder": (_junk("empty"), ("init", "thing"), 3, "is empty"),
    "init: mixed files": (_junk("mixed"), ("init", "thing"), 3, "mixes kinds of files"),
    "init: binary file": (_junk("binary"), ("init", "thing"), 3, "is a binary file"),
    "init: one column": (_junk("one_column"), ("init", "thing"), 3, "has 1 column"),
    "init: no such path": (_no_setup, ("init", "nowhere"), 3, "does not exist"),
    # team mode
    "up: database of another kind": (
        _no_setup,
        ("up", "--database", "mysql://u@db/prefect"),
        2,
        "use postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB",
    ),
    "up: PostgreSQL not answering": (
        _no_setup,
        ("up", "--port", "0", "--database", "postgresql+asyncpg://u:pw@127.0.0.1:1/prefect"),
        1,
        "PostgreSQL at 127.0.0.1:1 does not accept connections",
    ),
    "up: unknown role": (_no_setup, ("up", "--role", "scheduler"), 2, "unknown --role"),
    "worker: not a checkout": (_no_setup, ("worker",), 2, "is not a flywheel checkout"),
    "init: task the data cannot train": (
        _no_setup,
        ("init", "data/news", "--task", "tabular_regression"),
        2,
        "which trains",
    ),
}


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    """One ``error:`` line, last; before it, only what a run logs on success too (DVC's
    hint to ``git add`` a new .dvc file), never an ERROR record or a traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    if "run" not in proc.args:
        assert len(lines) == 1, proc.stderr
    assert not [line for line in lines if " ERROR " in line], proc.stderr
    assert needle in errors[0], errors[0]
    assert proc.returncode == code, (proc.returncode, errors[0])


@pytest.mark.parametrize("name", list(CASES))
def test_error_is_one_line_with_its_exit_code(base: Path, tmp_path: Path, name: str) -> None:
    setup, argv, code, needle = CASES[name]
    root = tmp_path / "project"
    shutil.copytree(base, root, symlinks=True)
    setup(root)
    assert_one_line(_cli(root, *argv), code, needle)


def test_up_database_with_an_external_server_is_one_line(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing answers there: the conflict is named before any server is asked.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    root = tmp_path / "project"
    shutil.copytree(base, root, symlinks=True)
    proc = _cli(root, "up", "--database", "postgresql+asyncpg://u:pw@db:5432/prefect")
    assert_one_line(proc, 2, "--database conflicts with PREFECT_API_URL=http://127.0.0.1:1/api")
    assert "unset PREFECT_API_URL" in proc.stderr and "drop --database" in proc.stderr


def test_verbose_adds_the_traceback(base: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(base, root, symlinks=True)
    _params(GOOD.replace("data/news", "data/gone"))(root)
    proc = _cli(root, "--verbose", "validate")
    assert proc.returncode == 3 and "Traceback" in proc.stderr
