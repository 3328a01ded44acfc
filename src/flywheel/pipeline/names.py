"""Names the flow, the deployment, the watcher, ``up`` and ``status`` must agree on
(one spelling each): the flow and deployment, a dataset and its tag, a data hash's short form."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.core.workspace import Workspace

FLOW_NAME = "flywheel-pipeline"
DEPLOYMENT = "retrain"


def deployment_name(ws: Workspace) -> str:
    # One deployment per workspace, so several datasets can share one server.
    return DEPLOYMENT if ws.name == "default" else f"{DEPLOYMENT}-{ws.name}"


def full_name(ws: Workspace) -> str:
    return f"{FLOW_NAME}/{deployment_name(ws)}"


def dataset_name(ws: Workspace) -> str:
    """The dataset's identity: its folder relative to the project (``data``, ``mydata``)."""
    data = ws.layout.data.resolve()
    try:
        return data.relative_to(ws.project.resolve()).as_posix()
    except ValueError:
        return data.name


def dataset_tag(dataset: str) -> str:
    return f"dataset:{dataset}"


def dataset_limit(dataset: str) -> str:
    """The global concurrency limit (one slot) every worker's run of ``dataset`` holds."""
    return f"flywheel-dataset:{dataset}"


def short_hash(data_hash: str) -> str:
    return data_hash.removesuffix(".dir")[:8]
