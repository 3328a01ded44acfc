"""The house rules a reviewer would otherwise check by hand: no source file over 300 lines,
in the library and the flows; no function over 60, there and in the benchmarks; and no file
over 300 lines in the tests and benchmarks either."""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(PROJECT / "src" / "flywheel").rglob("*.py"), *(PROJECT / "flows").glob("*.py")])
# Hidden folders hold what is not the project's code (benchmarks/.venvs: peers' environments).
TESTS_AND_BENCHMARKS = sorted(
    p
    for p in [*(PROJECT / "tests").rglob("*.py"), *(PROJECT / "benchmarks").rglob("*.py")]
    if not any(part.startswith(".") for part in p.relative_to(PROJECT).parts)
)
BENCHMARKS = [p for p in TESTS_AND_BENCHMARKS if p.is_relative_to(PROJECT / "benchmarks")]
# being split
KNOWN_LONG: frozenset[str] = frozenset()
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def test_no_source_file_is_over_300_lines() -> None:
    long = {
        p.relative_to(PROJECT).as_posix(): n
        for p in SOURCES
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_test_or_benchmark_file_is_over_300_lines() -> None:
    long = {
        name: n
        for p in TESTS_AND_BENCHMARKS
        if (name := p.relative_to(PROJECT).as_posix()) not in KNOWN_LONG
        and (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in [*SOURCES, *BENCHMARKS]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PROJECT).as_posix()}:{node.name}"] = length
    assert long == {}
