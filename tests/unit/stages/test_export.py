from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import pytest
import torch

from flywheel.core.errors import ExportMismatchError
from flywheel.core.ort import CPU, available_providers, make_session
from flywheel.nn.onnx_export import check_parity, export_onnx

if TYPE_CHECKING:
    from conftest import Workspace

pytestmark = pytest.mark.slow


def test_onnx_agrees_with_pytorch(workspace: Workspace, exported: dict[str, object]) -> None:
    assert exported["max_abs_diff"] <= workspace.params.evaluate.export_atol  # type: ignore[operator]
    assert exported["argmax_agreement"] == 1.0
    assert workspace.layout.export_report.is_file()


def test_export_is_one_self_contained_file(workspace: Workspace, exported: object) -> None:
    path = workspace.layout.variant_file("fp32")
    model = onnx.load(str(path), load_external_data=False)
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in model.graph.initializer)
    assert sorted(p.name for p in path.parent.iterdir()) == ["export.json", "fp32.onnx"]
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch(workspace: Workspace, exported: object, batch: int) -> None:
    x, _ = workspace.split("test")
    x = np.ascontiguousarray(x[:batch])
    session = make_session(workspace.layout.variant_file("fp32"), providers=[CPU])
    got = session.run(["logits"], {"input": x})[0]
    with torch.inference_mode():
        expected = workspace.network()(torch.from_numpy(x)).numpy()
    assert got.shape == (batch, len(workspace.spec.labels))
    np.testing.assert_allclose(got, expected, atol=workspace.params.evaluate.export_atol)


def test_parity_check_catches_a_wrong_graph(workspace: Workspace, tmp_path: Path) -> None:
    net = workspace.network()
    x, _ = workspace.split("test")
    path = export_onnx(net, workspace.spec.input_shape, tmp_path / "m.onnx")
    assert check_parity(net, path, x, atol=1e-3) <= 1e-3
    drifted = copy.deepcopy(net)
    with torch.no_grad():
        drifted.head[-1][-1].bias += 0.5  # type: ignore[index,operator]
    with pytest.raises(ExportMismatchError):
        check_parity(drifted, path, x, atol=1e-3)


def test_providers_really_run(workspace: Workspace, exported: object) -> None:
    providers = available_providers()
    assert providers[-1] == CPU
    session = make_session(workspace.layout.variant_file("fp32"))
    # Whatever is offered must be what the session actually got, not a silent CPU fallback.
    assert session.get_providers()[0] == providers[0]
