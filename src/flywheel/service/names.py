"""Names the flow, the deployment, ``up`` and ``status`` must agree on (one spelling)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.workspace import Workspace

FLOW_NAME = "flywheel-pipeline"
DEPLOYMENT = "retrain"


def deployment_name(ws: Workspace) -> str:
    # One deployment per workspace, so several datasets can share one server.
    return DEPLOYMENT if ws.name == "default" else f"{DEPLOYMENT}-{ws.name}"


def full_name(ws: Workspace) -> str:
    return f"{FLOW_NAME}/{deployment_name(ws)}"
