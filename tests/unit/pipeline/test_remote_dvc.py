"""DVC's remote on a real S3-compatible server (moto on loopback), no training: a data
version pushed from one repository is pulled by hash into another that lacks it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.moto_s3 import S3Server

from flywheel.core.errors import DataChangedError, RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig
from flywheel.core.workspace import Workspace, open_workspace
from flywheel.datasets.hashing import data_hash
from flywheel.pipeline import dvc
from flywheel.pipeline import remote as team
from flywheel.pipeline.data_sharing import share_data

PROJECT = Path(__file__).resolve().parents[3]


def _machine(root: Path, config: RemoteConfig, with_data: bool) -> Workspace:
    root.mkdir()
    (root / "dvc.yaml").write_text((PROJECT / "dvc.yaml").read_text())
    raw = {
        "validate": {"suite": "digits", "labels": ["0", "1"]},
        "remote": config.model_dump(mode="json"),
    }
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    dvc.init_repository(root, author="ci")
    if with_data:
        for label in ("0", "1"):
            (root / "data" / label).mkdir(parents=True)
            for i in range(3):
                (root / "data" / label / f"{i}.png").write_bytes(f"{label}-{i}".encode())
    return open_workspace(project=root)


def test_dvc_config_is_empty_without_a_remote() -> None:
    assert team.dvc_config(RemoteConfig()) is None
    config = team.dvc_config(RemoteConfig(url="s3://b/p", endpoint_url="http://h:1"))
    assert config is not None and config["remote"]["flywheel"]["url"] == "s3://b/p/dvc"
    assert config["core"] == {"remote": "flywheel"}


def test_a_data_version_travels_by_hash(tmp_path: Path, remote: RemoteConfig) -> None:
    a = _machine(tmp_path / "a", remote, with_data=True)
    version = data_hash(a.layout.data)
    dvc.record_data(a.project, a.layout.data, version)
    assert team.push_run(a) > 0
    b = _machine(tmp_path / "b", remote, with_data=False)
    assert team.pull_data(b, version)
    assert data_hash(b.layout.data) == version
    assert not (b.project / "data.dvc").exists()  # recorded only once validated
    assert not team.pull_data(b, version)  # a folder with data is left alone


def test_pull_from_a_stopped_store_is_one_clear_line(
    tmp_path: Path,
    remote: RemoteConfig,
    s3_server: S3Server,
) -> None:
    b = _machine(tmp_path / "b", remote, with_data=False)
    s3_server.stop()
    try:
        with pytest.raises(RemoteUnavailable) as err:
            team.pull_data(b, "0" * 32 + ".dir")
    finally:
        s3_server.start()
    assert remote.url in str(err.value) and "pulling data version 00000000" in str(err.value)
    assert not (b.project / "data.dvc").exists()


def test_a_shared_version_reaches_a_worker_whose_checkout_holds_an_older_one(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    """The watcher's machine shares a version nobody ran yet (data.dvc untouched); a
    worker whose checkout holds the version its data.dvc records gets exactly the new one,
    and one holding edits of its own keeps them."""
    a = _machine(tmp_path / "a", remote, with_data=True)
    first = data_hash(a.layout.data)
    assert share_data(a, first) > 0
    b = _machine(tmp_path / "b", remote, with_data=False)
    assert team.pull_data(b, first)
    dvc.record_data(b.project, b.layout.data, first)  # b's run validated and recorded it

    (a.layout.data / "1" / "new.png").write_bytes(b"new")
    (a.layout.data / "0" / "0.png").unlink()
    second = data_hash(a.layout.data)
    recorded = (a.project / "data.dvc").read_bytes() if (a.project / "data.dvc").exists() else None
    assert share_data(a, second) == 2  # the new file and the new listing
    assert ((a.project / "data.dvc").read_bytes() if recorded else None) == recorded
    assert share_data(a, second) == 0  # there already

    assert team.pull_data(b, second)
    assert data_hash(b.layout.data) == second and not (b.layout.data / "0" / "0.png").exists()
    assert dvc.recorded_hash(b.project / "data.dvc") == first  # recorded once validated

    c = _machine(tmp_path / "c", remote, with_data=True)
    (c.layout.data / "0" / "mine.png").write_bytes(b"an edit made here")
    assert not team.pull_data(c, second)  # not recorded anywhere: never overwritten
    assert (c.layout.data / "0" / "mine.png").exists()


def test_a_folder_that_changed_is_not_shared_under_the_old_hash(
    tmp_path: Path, remote: RemoteConfig
) -> None:
    a = _machine(tmp_path / "a", remote, with_data=True)
    announced = data_hash(a.layout.data)
    (a.layout.data / "1" / "late.png").write_bytes(b"late")
    with pytest.raises(DataChangedError, match="changed while it was shared"):
        share_data(a, announced)
