from __future__ import annotations

import pytest
import torch

from flywheel.core.errors import ConfigError
from flywheel.core.sections import TrainConfig
from flywheel.nn.fit import resolve_precision


def test_cpu_trains_in_fp32() -> None:
    assert resolve_precision(TrainConfig(accelerator="cpu")) == ("cpu", "32-true")
    assert resolve_precision(TrainConfig(accelerator="cpu", precision="bf16-mixed")) == (
        "cpu",
        "bf16-mixed",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_asking_for_a_missing_gpu_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_precision(TrainConfig(accelerator="gpu"))
    assert resolve_precision(TrainConfig()) == ("cpu", "32-true")
