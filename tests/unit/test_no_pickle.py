"""Nothing the project loads is a pickle: a pickle runs code when loaded, and checkpoints,
split files and models come back from the DVC cache or a remote that others can write.

Checked on the syntax of the library, the flows and the benchmarks: torch.load only with
weights_only=True, np.load never with allow_pickle=True, no pickle-based loader at all, and
no Prefect task that would persist its result (Prefect's default serializer is pickle).
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [
        *(PROJECT / "src" / "flywheel").rglob("*.py"),
        *(PROJECT / "flows").glob("*.py"),
        *(PROJECT / "benchmarks").rglob("*.py"),
    ]
)
PICKLING_MODULES = {"pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal", "_pickle"}
PICKLING_CALLS = {"read_pickle", "unsafe_load", "full_load"}


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else kw.value
    return None


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _findings(path: Path) -> list[str]:
    where = path.relative_to(PROJECT).as_posix()
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            out += [
                f"{where}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] in PICKLING_MODULES
            ]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name == "torch.load" and _keyword(node, "weights_only") is not True:
            out.append(f"{where}:{node.lineno} torch.load without weights_only=True")
        if name.endswith("np.load") and _keyword(node, "allow_pickle") not in (None, False):
            out.append(f"{where}:{node.lineno} np.load with allow_pickle")
        if name.split(".")[-1] in PICKLING_CALLS or name == "yaml.load":
            out.append(f"{where}:{node.lineno} {name}")
        if name in ("task", "prefect.task") and not (
            _keyword(node, "persist_result") is False
            or _dotted(_keyword(node, "cache_policy") or ast.Name("?")).endswith("NO_CACHE")
        ):
            out.append(f"{where}:{node.lineno} a Prefect task that may persist (pickle) results")
    return out


def test_nothing_pickled_is_ever_loaded() -> None:
    assert [f for path in SOURCES for f in _findings(path)] == []
