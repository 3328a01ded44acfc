"""Tabular preprocessing: cell parsing, the fitted spec, and encode's handling of bad records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from flywheel.core.config import parse_params
from flywheel.core.errors import InputError
from flywheel.families import get_family
from flywheel.families.tabular.preprocessing import TabularSpec, fit_spec
from flywheel.families.tabular.values import CellError, parse_category, parse_number

RECORDS = [
    {"size": "10", "rooms": 1, "kind": "a"},
    {"size": 20.0, "rooms": None, "kind": "b"},
    {"size": " 30 ", "rooms": 3, "kind": "a"},
    {"size": "40", "rooms": "", "kind": None},
]
TARGETS = np.array([100.0, 200.0, 300.0, 400.0], dtype=np.float32)


@pytest.fixture
def spec() -> TabularSpec:
    return fit_spec(
        RECORDS,
        TARGETS,
        numeric=["size", "rooms"],
        categorical=["kind"],
        nullable=["rooms", "kind"],
        target="price",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("1.5", 1.5),
        (" -2 ", -2.0),
        (3, 3.0),
        (np.float32(0.5), 0.5),
        (np.int64(7), 7.0),
        ("1e3", 1000.0),
    ],
)
def test_parse_number_accepts(value: object, expected: float | None) -> None:
    assert parse_number(value) == expected


@pytest.mark.parametrize(
    "value", ["abc", "nan", "inf", float("nan"), float("-inf"), True, [1], {"a": 1}, b"1"]
)
def test_parse_number_rejects(value: object) -> None:
    with pytest.raises(CellError):
        parse_number(value)


def test_parse_category() -> None:
    assert parse_category("INLAND") == "INLAND"
    assert parse_category(3) == "3"
    assert parse_category(None) is None and parse_category("") is None
    for bad in (1.5, True, ["a"]):
        with pytest.raises(CellError):
            parse_category(bad)


def test_fit_learns_from_given_rows_only(spec: TabularSpec) -> None:
    size, rooms = spec.numeric
    assert (size.mean, size.fill) == (25.0, None)  # required: no imputation value
    assert size.std == pytest.approx(np.std([10, 20, 30, 40]))
    assert rooms.mean == 2.0 and rooms.fill == 2.0  # median of the observed 1 and 3
    assert spec.categorical[0].categories == ("a", "b")
    assert spec.feature_names == ("size", "rooms", "kind=a", "kind=b")
    assert (spec.target_mean, spec.n_features) == (250.0, 4)


def test_encode_scales_imputes_and_one_hots(spec: TabularSpec) -> None:
    x = spec.encode(RECORDS)
    assert x.dtype == np.float32 and x.shape == (4, 4)
    std = spec.numeric[0].std
    np.testing.assert_allclose(x[:, 0], (np.array([10, 20, 30, 40]) - 25) / std, rtol=1e-6)
    # Missing rooms ("" and None) take the training median, i.e. 0 after centring.
    assert x[1, 1] == 0.0 and x[3, 1] == 0.0
    np.testing.assert_array_equal(x[:, 2:], [[1, 0], [0, 1], [1, 0], [0, 0]])


def test_unknown_category_and_extra_keys(spec: TabularSpec) -> None:
    x = spec.encode([{"size": 25, "rooms": 2, "kind": "never-seen", "price": 1, "id": "x"}])
    np.testing.assert_array_equal(x, [[0, 0, 0, 0]])


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"rooms": 1, "kind": "a"}, ["instance 1", "'size'", "missing"]),
        ({"size": None, "kind": "a"}, ["instance 1", "'size'", "missing"]),
        ({"size": "ten", "kind": "a"}, ["instance 1", "'size'", "'ten'"]),
        ({"size": float("nan"), "kind": "a"}, ["instance 1", "'size'", "finite"]),
        ({"size": float("inf"), "kind": "a"}, ["instance 1", "'size'", "finite"]),
        ({"size": True, "kind": "a"}, ["instance 1", "'size'"]),
        ({"size": 1, "kind": 2.5}, ["instance 1", "'kind'"]),
    ],
)
def test_encode_rejects_bad_records(spec: TabularSpec, record: dict, words: list[str]) -> None:
    with pytest.raises(InputError) as err:
        spec.encode([RECORDS[0], record])
    assert all(w in str(err.value) for w in words), err.value


@pytest.mark.parametrize("instance", [[1, 2, 3], "size=1", 5, None])
def test_encode_rejects_non_records(spec: TabularSpec, instance: object) -> None:
    with pytest.raises(InputError, match="instance 0: expected a record"):
        spec.encode([instance])


def test_required_category_must_be_present() -> None:
    spec = fit_spec(RECORDS[:3], TARGETS[:3], ["size"], ["kind"], nullable=[], target="price")
    with pytest.raises(InputError, match="'kind' is missing"):
        spec.encode([{"size": 1}])


def test_encode_from_a_json_body(spec: TabularSpec) -> None:
    """A JSON body may carry NaN (Python's json reads it); it must be a 4xx, not a NaN input."""
    body = json.loads('[{"size": NaN, "kind": "a"}]')
    assert math.isnan(body[0]["size"])
    with pytest.raises(InputError, match="finite"):
        spec.encode(body)


def test_spec_round_trips_through_json(spec: TabularSpec, tmp_path: Path) -> None:
    spec.save(tmp_path / "preprocessing.json")
    loaded = TabularSpec.load(tmp_path / "preprocessing.json")
    assert loaded == spec
    np.testing.assert_array_equal(loaded.encode(RECORDS), spec.encode(RECORDS))
    assert json.loads((tmp_path / "preprocessing.json").read_text())["kind"] == "tabular"


def test_spec_load_refuses_other_specs(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"size": 8, "labels": ["a"]}))
    with pytest.raises(ValueError, match="not a tabular"):
        TabularSpec.load(tmp_path / "p.json")


def test_constant_column_is_not_divided_by_zero() -> None:
    spec = fit_spec([{"c": 5}, {"c": 5}], np.array([1.0, 1.0]), ["c"], [], [], "t")
    assert spec.numeric[0].std == 1.0 and spec.target_std == 1.0
    assert spec.encode([{"c": 6}])[0, 0] == 1.0


def test_family_reads_csv_records_and_postprocesses(spec: TabularSpec, tmp_path: Path) -> None:
    family = get_family("tabular_regression")
    (tmp_path / "in.csv").write_text("size,rooms,kind\n10,,a\n20,3,zzz\n")
    records = family.read_inputs([tmp_path / "in.csv"])
    assert records == [
        {"size": "10", "rooms": None, "kind": "a"},
        {"size": "20", "rooms": "3", "kind": "zzz"},
    ]
    assert family.encode(records, spec).shape == (2, 4)
    assert family.postprocess(np.array([[1.25], [2.5]], np.float32), spec) == [
        {"value": 1.25},
        {"value": 2.5},
    ]
    with pytest.raises(InputError, match="cannot read"):
        family.read_inputs([tmp_path / "absent.csv"])


def test_network_outputs_target_units(spec: TabularSpec) -> None:
    import torch

    params = parse_params(
        {
            "task": "tabular_regression",
            "data": {"kind": "table", "target": "price", "numeric_columns": ["size"]},
            "validate": {},
            "model": {"hidden": []},
            "gate": {"metric": "r2"},
        }
    )
    family = get_family("tabular_regression")
    net = family.build_network(params, spec).eval()
    body = net.body[-1]
    with torch.no_grad():
        body.weight.zero_()
        body.bias.fill_(1.0)  # one standard deviation above the mean
        out = net(family.example_input(spec, 3))
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out.numpy(), spec.target_mean + spec.target_std, rtol=1e-6)
