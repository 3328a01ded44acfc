from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.core.config import load_params, parse_params
from flywheel.core.errors import ConfigError


def test_project_params_load(project_root: Path) -> None:
    params = load_params(project_root / "params.yaml")
    assert params.labels == tuple(str(i) for i in range(10))
    assert params.image.channels == 1


def test_fingerprint_is_stable_and_sensitive(raw_params: dict) -> None:
    a = parse_params(raw_params)
    b = parse_params(raw_params)
    raw_params["train"]["lr"] = 0.01
    c = parse_params(raw_params)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("train", "lr", -1.0, "train.lr"),
        ("train", "max_epochs", 0, "train.max_epochs"),
        ("split", "test", 1.5, "split.test"),
        ("gate", "min_accuracy", 2.0, "gate.min_accuracy"),
        ("image", "mode", "CMYK", "image.mode"),
        ("compress", "variants", ["int8"], "compress"),
        ("train", "bogus_key", 1, "train.bogus_key"),
    ],
)
def test_bad_values_name_the_key(
    raw_params: dict, section: str, key: str, value: object, named: str
) -> None:
    raw_params[section][key] = value
    with pytest.raises(ConfigError) as err:
        parse_params(raw_params, "params.yaml")
    assert named in str(err.value)


def test_split_must_leave_training_rows(raw_params: dict) -> None:
    raw_params["split"] = {"val": 0.5, "test": 0.45}
    with pytest.raises(ConfigError, match="at least 10%"):
        parse_params(raw_params)


def test_mode_must_be_allowed(raw_params: dict) -> None:
    raw_params["image"]["mode"] = "RGB"
    with pytest.raises(ConfigError, match="allowed_modes"):
        parse_params(raw_params)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(bad)
