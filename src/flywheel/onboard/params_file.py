"""The params file init writes: only what differs from the task's defaults, each key with a
comment saying what was seen, in a fixed order (no timestamps), so a rerun on the same data
writes the same bytes.

PyYAML cannot write comments, so the file is laid out here line by line; each value is
written by PyYAML (quoting, flow lists) and the whole file is read back and resolved by
:func:`flywheel.core.config.parse_params` before it is kept (:func:`check_resolves`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from flywheel.core.config import Params, parse_params, task_defaults
from flywheel.core.errors import FlywheelError
from flywheel.onboard.decision import Decision, Entry

COMMENT_COLUMN = 34
# Keys written even where they equal a default: the file reads wrong without them.
ALWAYS = {(None, "task"), ("validate", "suite"), ("validate", "labels")}
HEADER = (
    "# Written by `flywheel init {data}`.\n"
    "# Only what this data needs beyond the {task} defaults, each key with what\n"
    "# init saw. Every value in force: flywheel params --params {params}\n"
)


def _section_order() -> list[str]:
    return [f.alias or name for name, f in Params.model_fields.items()]


def default_value(task: str, path: tuple[str, ...]) -> Any:
    """The value ``path`` (section, key) has when the params file does not set it."""
    if len(path) == 1:
        return Params.model_fields[path[0]].default
    section, key = path[0], path[1]
    family = task_defaults(task).get(section, {})
    if key in family:
        return family[key]
    field = next(f for name, f in Params.model_fields.items() if (f.alias or name) == section)
    section_model: Any = field.annotation  # every section's model has a default for every key
    return section_model().model_dump(mode="json", by_alias=True).get(key)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def minimal(decision: Decision) -> list[Entry]:
    """The entries that differ from the task's defaults (nested ones always do)."""
    return [
        e
        for e in decision.entries
        if (e.section, e.key) in ALWAYS
        or "." in e.key
        or not _same(e.value, default_value(decision.task, e.path))
    ]


def _value(value: Any) -> str:
    text = yaml.safe_dump({"k": value}, default_flow_style=True, width=10**9, sort_keys=False)
    return text.strip()[len("{k: ") : -1]


def _line(indent: str, key: str, value: Any, comment: str) -> str:
    body = f"{indent}{key}: {_value(value)}" if value is not ... else f"{indent}{key}:"
    if not comment:
        return body
    return (
        f"{body.ljust(COMMENT_COLUMN)}  # {comment}" if len(body) < 80 else f"{body}  # {comment}"
    )


def render(decision: Decision, data: str, params_name: str) -> str:
    entries = minimal(decision)
    lines = [HEADER.format(data=data, task=decision.task, params=params_name).rstrip("\n")]
    top = [e for e in entries if e.section is None]
    lines += [_line("", e.key, e.value, e.comment) for e in top]
    for section in _section_order():
        inside = [e for e in entries if e.section == section]
        if not inside:
            continue
        lines += ["", f"{section}:"]
        opened: set[str] = set()
        for e in inside:
            if "." not in e.key:
                lines.append(_line("  ", e.key, e.value, e.comment))
                continue
            parent, child = e.key.split(".", 1)
            if parent not in opened:
                opened.add(parent)
                lines.append(f"  {parent}:")
            lines.append(_line("    ", child, e.value, e.comment))
    return "\n".join(lines) + "\n"


def check_resolves(text: str, decision: Decision, source: str) -> Params:
    """Read ``text`` back as flywheel will: every decided value must come out as decided,
    written or a default."""
    params = parse_params(yaml.safe_load(text), source)
    resolved = params.as_dict()
    for entry in decision.entries:
        node: Any = resolved
        for part in entry.path:
            node = node.get(part) if isinstance(node, dict) else None
        if not _within(entry.value, node):
            raise FlywheelError(
                f"init wrote {'.'.join(entry.path)} = {entry.value!r} but it resolves to "
                f"{node!r} (a bug in flywheel init; please report it)"
            )
    return params


def _within(decided: Any, resolved: Any) -> bool:
    if isinstance(decided, dict):
        return isinstance(resolved, dict) and all(
            _within(v, resolved.get(k)) for k, v in decided.items()
        )
    return _same(decided, resolved)
