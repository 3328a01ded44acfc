"""Every project file a DVC stage imports is among that stage's code deps in dvc.yaml.

DVC re-runs a stage only when one of its deps changed; a stage whose code is imported from
a file outside its deps would be skipped after that file changed ("nothing to do" on stale
code). The imports are read from the source (every ``import`` and ``from ... import``,
including those inside functions, which is where stages and families defer heavy imports)
plus the ``"module:attr"`` strings of registries that import on demand (the families), and
followed transitively from each stage's module. (The stage table names each stage's module
without an attribute: dispatch imports only the stage that runs, so its entries are not
imports of the other stages.)
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.stages import STAGES

PROJECT = Path(__file__).resolve().parents[3]
SRC = PROJECT / "src"
# "module:attr" strings: targets a registry imports on demand (the families).
_TARGET = re.compile(r"^(flywheel(?:\.\w+)+):\w+$")


def module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node but the bodies of ``if TYPE_CHECKING:`` (never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imported_modules(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _TARGET.match(node.value)
            if match:
                found.add(match.group(1))
    return {m for m in found if m.split(".")[0] == "flywheel" and module_file(m)}


def has_code(path: Path) -> bool:
    """False for a file holding nothing but a docstring (a package's face): nothing to run."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def closure(module: str) -> set[Path]:
    """Files of every project module ``module`` imports, directly or not (and its parents),
    leaving out files with no code."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # parent packages run too
        path = module_file(name)
        if path is not None:
            todo += sorted(imported_modules(path, name) - seen)
    return {p for m in seen if (p := module_file(m)) is not None and has_code(p)}


def _render(value: Any, params: dict[str, Any]) -> Any:
    def lookup(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    if isinstance(value, str):
        return re.sub(r"\$\{([^}]+)\}", lookup, value)
    if isinstance(value, list):
        return [_render(v, params) for v in value]
    if isinstance(value, dict):
        return {_render(k, params): _render(v, params) for k, v in value.items()}
    return value


def code_deps(dvc_yaml: Path, resolved: Path) -> dict[str, list[Path]]:
    """Each stage's deps inside the project's source tree, as absolute paths."""
    variables = yaml.safe_load(resolved.read_text())
    stages = _render(yaml.safe_load(dvc_yaml.read_text())["stages"], variables)
    return {
        name: [(dvc_yaml.parent / d).resolve() for d in stage.get("deps", [])]
        for name, stage in stages.items()
    }


def uncovered(dvc_yaml: Path, resolved: Path) -> dict[str, list[str]]:
    """Per stage, the imported project files that none of its deps covers."""
    deps = code_deps(dvc_yaml, resolved)
    missing: dict[str, list[str]] = {}
    for stage in STAGES:
        covered = deps.get(stage.name, [])
        for path in sorted(closure(stage.module)):
            if not any(path == d or d in path.parents for d in covered):
                missing.setdefault(stage.name, []).append(path.relative_to(SRC).as_posix())
    return missing


def test_every_stage_depends_on_all_the_code_it_imports() -> None:
    assert uncovered(PROJECT / "dvc.yaml", PROJECT / "params.resolved.yaml") == {}


def test_the_check_finds_an_import_left_out(tmp_path: Path) -> None:
    """A dvc.yaml whose train stage forgets the network code must fail the check."""
    raw = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    raw["stages"]["train"]["deps"] = [
        d for d in raw["stages"]["train"]["deps"] if not str(d).endswith("/families")
    ]
    broken = tmp_path / "dvc.yaml"
    broken.write_text(yaml.safe_dump(raw))
    (tmp_path / "params.resolved.yaml").write_text((PROJECT / "params.resolved.yaml").read_text())
    # The resolved params name the code by a path relative to the project: run from there.
    missing = uncovered(broken, tmp_path / "params.resolved.yaml")
    assert "train" in missing
    assert any(f.startswith("flywheel/families/") for f in missing["train"])


@pytest.mark.parametrize("stage", [s.name for s in STAGES])
def test_each_stage_imports_its_own_module(stage: str) -> None:
    module = next(s.module for s in STAGES if s.name == stage)
    assert module_file(module) in closure(module)
