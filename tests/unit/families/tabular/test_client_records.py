"""Records from a client (strict encoding): exactly the model's columns, known categories
where all-zeros would be a row training never saw, and nothing that overflows float32."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.core.errors import InputError
from flywheel.families.base import InstanceLimits
from flywheel.families.tabular.family import TabularFamily
from flywheel.families.tabular.preprocessing import TabularSpec, fit_spec

LIMITS = InstanceLimits(1, ("PNG",), None, 1, 1)
ROW = {"size": 12.0, "kind": "flat", "city": "north"}


@pytest.fixture
def spec() -> TabularSpec:
    records = [
        {"size": 10.0, "kind": "flat", "city": "north"},
        {"size": 20.0, "kind": "house", "city": None},
        {"size": 30.0, "kind": "flat", "city": "south"},
    ]
    return fit_spec(records, np.arange(3.0), ["size"], ["kind", "city"], ["city"], "price")


def encode(spec: TabularSpec, **changes: object) -> np.ndarray:
    return TabularFamily().encode([{**ROW, **changes}], spec, LIMITS)


def test_missing_and_extra_columns_are_named(spec: TabularSpec) -> None:
    record = {"size": 1.0, "colour": "red", "price": 3}
    with pytest.raises(InputError) as refused:
        TabularFamily().encode([record], spec, LIMITS)
    message = str(refused.value)
    assert "missing columns ['kind', 'city']" in message
    assert "unexpected columns ['colour', 'price']" in message
    # Files the pipeline reads keep their other columns (the target, ids).
    assert TabularFamily().encode([{**ROW, "price": 3}], spec).shape == (1, 5)


def test_unknown_categories_follow_the_columns_missing_bucket(spec: TabularSpec) -> None:
    with pytest.raises(InputError, match=r"'kind': unknown category 'castle'.*\['flat', 'house'\]"):
        encode(spec, kind="castle")
    # city may be missing, so all zeros is a row training had: an unseen city lands there.
    assert encode(spec, city="atlantis")[0, 3:].tolist() == [0.0, 0.0]
    assert encode(spec, city=None)[0, 3:].tolist() == [0.0, 0.0]
    # The pipeline's own rows keep the documented all-zeros for any unseen category.
    assert TabularFamily().encode([{**ROW, "kind": "castle"}], spec)[0, 1:3].tolist() == [0, 0]


@pytest.mark.parametrize("value", [1e300, -1e300, "1e300", 3.5e38 * 8.2])
def test_values_that_overflow_float32_are_refused_naming_the_column(
    spec: TabularSpec, value: object
) -> None:
    with pytest.raises(InputError, match="instance 0: column 'size' is out of range"):
        encode(spec, size=value)
    with pytest.raises(InputError, match="column 'size' is out of range"):
        TabularFamily().encode([{**ROW, "size": value}], spec)
