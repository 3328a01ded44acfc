"""The house rules a reviewer would otherwise check by hand: no source file over 300 lines,
no function over 60, in the library and the flows."""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(PROJECT / "src" / "flywheel").rglob("*.py"), *(PROJECT / "flows").glob("*.py")])
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def test_no_source_file_is_over_300_lines() -> None:
    long = {
        p.relative_to(PROJECT).as_posix(): n
        for p in SOURCES
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PROJECT).as_posix()}:{node.name}"] = length
    assert long == {}
