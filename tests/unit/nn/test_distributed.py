"""When the train stage goes distributed, and what each rank is given."""

from __future__ import annotations

import pytest

from flywheel.core.errors import ConfigError
from flywheel.core.sections import TrainConfig
from flywheel.nn import distributed


def test_one_process_unless_asked() -> None:
    assert not distributed.wanted(TrainConfig())
    assert distributed.wanted(TrainConfig(devices=2))
    assert distributed.wanted(TrainConfig(num_nodes=2))
    assert distributed.wanted(TrainConfig(strategy="ddp"))
    assert distributed.world_size(TrainConfig(devices=4, num_nodes=2)) == 8


def test_batch_size_is_the_global_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = TrainConfig(batch_size=64, devices=2)
    assert distributed.per_device_batch(cfg) == 64  # not inside torchrun: one process
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert distributed.per_device_batch(cfg) == 32
    with pytest.raises(ConfigError, match="multiple of 2"):
        distributed.per_device_batch(TrainConfig(batch_size=63, devices=2))


def test_ranks_are_not_flow_runs() -> None:
    env = distributed.launch_env({"PREFECT__FLOW_RUN_ID": "abc", "PREFECT_API_URL": "u", "A": "1"})
    assert "PREFECT__FLOW_RUN_ID" not in env and env["PREFECT_API_URL"] == "u"
    assert env["OMP_NUM_THREADS"] == "1" and env["GLOO_SOCKET_IFNAME"] == "lo"
    assert env["PYTHONPATH"].split(":")[0].endswith("src")


def test_several_machines_need_a_rendezvous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(distributed.ENDPOINT_ENV, raising=False)
    with pytest.raises(ConfigError, match=distributed.ENDPOINT_ENV):
        distributed._endpoint(TrainConfig(num_nodes=2))
    assert distributed._endpoint(TrainConfig(devices=2)).startswith("127.0.0.1:")


def test_several_machines_have_fixed_node_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Global rank 0 (which writes the outputs) is on node 0, the pipeline's machine."""
    cfg = TrainConfig(num_nodes=3)
    monkeypatch.setenv(distributed.ENDPOINT_ENV, "10.0.0.1:29400")
    monkeypatch.delenv(distributed.NODE_RANK_ENV, raising=False)
    assert distributed._rendezvous(cfg) == [
        "--node-rank=0",
        "--master-addr=10.0.0.1",
        "--master-port=29400",
    ]
    monkeypatch.setenv(distributed.NODE_RANK_ENV, "2")
    assert distributed._rendezvous(cfg)[0] == "--node-rank=2"
    for bad in ("3", "-1", "one"):
        monkeypatch.setenv(distributed.NODE_RANK_ENV, bad)
        with pytest.raises(ConfigError, match="0 on the machine running the pipeline"):
            distributed.node_rank(cfg)
    monkeypatch.setenv(distributed.ENDPOINT_ENV, "10.0.0.1")
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        distributed._rendezvous(cfg)
    assert distributed._rendezvous(TrainConfig(devices=2))[0] == "--rdzv-backend=c10d"
