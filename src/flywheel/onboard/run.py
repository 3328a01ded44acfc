"""``flywheel init``: decide, try the suite on the data, write the params file and suite.

Nothing is written until the suite has been run over the data in memory and passes: rows
it would quarantine (unreadable files, copies, other encodings) set ``validate.mostly``,
so the first ``flywheel run`` goes on without them. Files that exist and differ from what
would be written are left alone unless ``force``: a rerun on unchanged data rewrites
nothing (same bytes), a rerun after an edit or a data change says so.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_text
from flywheel.core.config import Params
from flywheel.core.errors import ConfigError, DataError
from flywheel.core.layout import Layout
from flywheel.onboard.decision import (
    Decision,
    add_common,
    dataset_name,
    n,
    provisional,
    slug,
)
from flywheel.onboard.facts import trial
from flywheel.onboard.params_file import check_resolves, render
from flywheel.onboard.scan import choose_kind
from flywheel.onboard.sniff import table_shape

TASKS = ("image_classification", "text_classification", "sentiment", "tabular_regression")
KIND_TASKS = {
    "image_folder": ("image_classification",),
    "text_folder": ("text_classification", "sentiment"),
    "table": ("text_classification", "sentiment", "tabular_regression"),
}
# Below this share of rows passing, the data is mostly broken: init says so instead.
MIN_PASSING = 0.5


@dataclass(frozen=True)
class InitResult:
    decision: Decision
    params: Params
    params_file: Path
    suite_file: Path
    written: tuple[Path, ...]  # the files whose bytes changed


def decide(data: Path, project: Path, task: str | None, target: str | None, name: str) -> Decision:
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task {task!r} is not a task; use one of {list(TASKS)}")
    choice = choose_kind(data, table_shape)
    fits = KIND_TASKS[choice.kind]
    if task is not None and task not in fits:
        raise ConfigError(f"--task {task}: {data} is a {choice.kind}, which trains {list(fits)}")
    decision = Decision(task or fits[0], choice.kind)
    add_common(decision, name, data_path(data, project))
    if choice.kind == "image_folder":
        from flywheel.onboard.images import profile_images

        decision.add("data", "kind", "image_folder")
        profile_images(decision, data, choice)
    elif choice.kind == "text_folder":
        from flywheel.onboard.texts import profile_text_folder

        profile_text_folder(decision, data, choice)
    else:
        from flywheel.onboard.table_tasks import profile_table

        profile_table(decision, data, choice, task, target)
    decision.add(None, "task", decision.task, _task_why(decision))
    decision.find("task", f"{decision.task} ({_task_why(decision)})")
    return decision


def data_path(data: Path, project: Path) -> str:
    """``data.path`` as written: relative to the project when inside it (DVC versions it
    there), else absolute (a ``../../..`` walk out of the project reads worse)."""
    try:
        return data.relative_to(project).as_posix()
    except ValueError:
        return data.as_posix()


def _task_why(decision: Decision) -> str:
    return {
        "image_folder": "one sub-folder of images per label",
        "text_folder": "one sub-folder of texts per label",
    }.get(
        decision.kind,
        "text and a label" if decision.task != "tabular_regression" else "a numeric target",
    )


def settle_mostly(decision: Decision, params: Params) -> Params:
    """Try the suite on the manifest; when rows fail, let that share through (they are
    quarantined) and try again. Refuses data whose suite fails for another reason."""
    from flywheel.stages.validate.suite import build_suite

    manifest = decision.manifest
    assert manifest is not None
    result = trial(manifest, build_suite(params))
    bad = len(result.offenders)
    if bad:
        passing = (len(manifest) - bad) / len(manifest)
        if passing < MIN_PASSING:
            raise DataError(
                f"{n(bad)} of {n(len(manifest))} rows fail the checks "
                f"({', '.join(result.failed[:3])}): the data is mostly unusable as it is"
            )
        mostly = math.floor(passing * 100) / 100
        decision.add(
            "validate",
            "mostly",
            mostly,
            f"{n(bad)} of {n(len(manifest))} rows fail a check: quarantined",
        )
        decision.find("quarantine", f"{n(bad)} row(s) fail a check ({_reasons(result.offenders)})")
        params = provisional(decision)
        result = trial(manifest, build_suite(params))
    if not result.success:
        raise DataError(
            f"the checks init derived still fail on this data ({', '.join(result.failed)}); "
            "nothing was written (a gap in flywheel init: run with --verbose and report it)"
        )
    return params


def _reasons(offenders: dict[str, list[str]]) -> str:
    counts: dict[str, int] = {}
    for failed in offenders.values():
        for name in failed:
            counts[name] = counts.get(name, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return ", ".join(f"{k.removeprefix('expect_column_values_to_')} {v}" for k, v in top)


def run_init(
    data: Path,
    *,
    project: Path,
    task: str | None = None,
    params_file: Path | None = None,
    target: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> InitResult:
    data = Path(os.path.abspath(data))
    name = slug(name) if name else dataset_name(data)
    params_file = Path(os.path.abspath(params_file or project / "params" / f"{name}.yaml"))
    decision = decide(data, project, task, target, name)
    params = settle_mostly(decision, provisional(decision))
    # Paths in the file are the project's (where flywheel runs), never the caller's cwd.
    shown = os.path.relpath(params_file, project)
    text = render(decision, data_path(data, project), shown)
    params = check_resolves(text, decision, str(params_file))
    return _write(decision, params, text, params_file, project, force)


def _write(
    decision: Decision, params: Params, text: str, params_file: Path, project: Path, force: bool
) -> InitResult:
    from flywheel.stages.validate.suite import build_suite, save_suite, suite_path

    layout = Layout.from_params(params, project)
    suite_file = suite_path(layout, params.validate_.suite)
    new_suite = _checks(build_suite(params).to_json_dict())
    old_suite = _checks(json.loads(suite_file.read_text())) if suite_file.is_file() else None
    stale = []
    if params_file.is_file() and params_file.read_text() != text:
        stale.append(str(params_file))
    if old_suite is not None and old_suite != new_suite:
        stale.append(str(suite_file))
    if stale and not force:
        raise ConfigError(
            f"{' and '.join(stale)} exist and differ from what init writes for this data "
            "(edited, or the data changed): pass --force to replace them, or --name to "
            "write another dataset's files"
        )
    written = []
    if not params_file.is_file() or params_file.read_text() != text:
        params_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(params_file, text)
        written.append(params_file)
    if old_suite != new_suite:
        save_suite(params, layout)
        written.append(suite_file)
    return InitResult(decision, params, params_file, suite_file, tuple(written))


def _checks(suite: dict[str, Any]) -> list[str]:
    """A suite's expectations without the ids GX assigns, for comparing contents."""
    out = []
    for e in suite.get("expectations", []):
        e = {k: v for k, v in e.items() if k not in ("id", "meta", "notes", "rendered_content")}
        out.append(json.dumps(e, sort_keys=True, default=str))
    return out
