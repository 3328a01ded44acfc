"""The fitted tabular preprocessing: imputation, scaling and one-hot, as plain JSON.

Everything here is learnt from the training split only and saved beside the model, so
``flywheel predict`` and the server turn a record into exactly the vector training used.
It is numpy and dataclasses on purpose: no pickled scikit-learn object, whose meaning
depends on the library version that loads it.

Encoding a record (``{column: value}``):

* numeric: the value is parsed (numbers or numeric text), a missing value is replaced by the
  training median where the column allows missing values, then standardised with the
  training mean and standard deviation of the observed values;
* categorical: one 0/1 column per category seen in training, sorted; a missing value (where
  allowed) or a category never seen in training gives all zeros.

The target is standardised too (training mean and std, stored here) and the network undoes
it in its last step, so the ONNX model outputs predictions in the target's own units.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.core.errors import InputError
from flywheel.families.tabular.values import CellError, parse_category, parse_number

SPEC_KIND = "tabular"
_MIN_STD = 1e-12


@dataclass(frozen=True)
class NumericColumn:
    name: str
    mean: float
    std: float
    # The training median, used for missing values; None: the column may not be missing.
    fill: float | None


@dataclass(frozen=True)
class CategoricalColumn:
    name: str
    categories: tuple[str, ...]
    # Missing values encode as all zeros (like an unseen category) where this is True.
    nullable: bool


@dataclass(frozen=True)
class TabularSpec:
    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]
    target: str
    target_mean: float
    target_std: float
    labels: tuple[str, ...] = ()  # a regressor has none; here for the Spec protocol

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.numeric) + tuple(
            f"{c.name}={cat}" for c in self.categorical for cat in c.categories
        )

    @property
    def n_features(self) -> int:
        return len(self.numeric) + sum(len(c.categories) for c in self.categorical)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.numeric) + tuple(c.name for c in self.categorical)

    def encode(self, records: Sequence[Any], strict: bool = False) -> np.ndarray:
        """``(N, n_features)`` float32 model inputs; :class:`InputError` naming the first
        bad record and column. ``strict`` (a client's records): every column must be
        present (null where it may be missing), no other column may be, and an unseen
        category is refused unless the column has a missing-value bucket to put it in."""
        x = np.zeros((len(records), self.n_features), dtype=np.float64)
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputError(
                    f"instance {i}: expected a record {{column: value}}, "
                    f"got {type(record).__name__}"
                )
            if strict:
                self._check_columns(i, record)
            self._encode_into(i, record, x[i], strict)
        return self._single_precision(x)

    def _check_columns(self, i: int, record: Mapping[Any, Any]) -> None:
        expected = self.columns
        missing = [c for c in expected if c not in record]
        extra = sorted(_clip(str(k)) for k in record if k not in expected)
        parts = [f"missing columns {missing}"] if missing else []
        if extra:
            parts.append(f"unexpected columns {extra[:10]}{' ...' if len(extra) > 10 else ''}")
        if parts:
            raise InputError(
                f"instance {i}: {'; '.join(parts)}; send exactly {list(expected)} "
                "(null where a value is unknown)"
            )

    def _single_precision(self, x: np.ndarray) -> np.ndarray:
        # A finite double can still overflow the model's float32 (1e300 becomes inf, and
        # inf then poisons every output): refuse it, naming the column.
        with np.errstate(over="ignore"):
            out = x.astype(np.float32)
        bad = np.argwhere(~np.isfinite(out))
        if len(bad):
            i, j = (int(v) for v in bad[0])
            name = self.numeric[j].name if j < len(self.numeric) else self.feature_names[j]
            raise InputError(
                f"instance {i}: column {name!r} is out of range: scaled by the training "
                "statistics it does not fit the model's 32-bit floats"
            )
        return out

    def _encode_into(
        self, i: int, record: Mapping[Any, Any], row: np.ndarray, strict: bool = False
    ) -> None:
        for j, num in enumerate(self.numeric):
            value = _read(i, num.name, record, parse_number)
            if value is None:
                if num.fill is None:
                    raise InputError(f"instance {i}: column {num.name!r} is missing")
                value = num.fill
            row[j] = (value - num.mean) / num.std
        offset = len(self.numeric)
        for cat in self.categorical:
            label = _read(i, cat.name, record, parse_category)
            if label is None and not cat.nullable:
                raise InputError(f"instance {i}: column {cat.name!r} is missing")
            if strict and label is not None and not cat.nullable and label not in cat.categories:
                # All zeros (where an unseen category lands) is a row training never had.
                known = list(cat.categories[:20]) + (["..."] if len(cat.categories) > 20 else [])
                raise InputError(
                    f"instance {i}: column {cat.name!r}: unknown category {_short(label)}; "
                    f"the model knows {known}"
                )
            if label in cat.categories:
                row[offset + cat.categories.index(label)] = 1.0
            offset += len(cat.categories)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"kind": SPEC_KIND, **asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TabularSpec:
        raw = json.loads(Path(path).read_text())
        if raw.get("kind") != SPEC_KIND:
            raise ValueError(f"{path} is not a tabular preprocessing spec")
        return cls(
            numeric=tuple(
                NumericColumn(
                    name=str(c["name"]),
                    mean=float(c["mean"]),
                    std=float(c["std"]),
                    fill=None if c["fill"] is None else float(c["fill"]),
                )
                for c in raw["numeric"]
            ),
            categorical=tuple(
                CategoricalColumn(
                    name=str(c["name"]),
                    categories=tuple(str(v) for v in c["categories"]),
                    nullable=bool(c["nullable"]),
                )
                for c in raw["categorical"]
            ),
            target=str(raw["target"]),
            target_mean=float(raw["target_mean"]),
            target_std=float(raw["target_std"]),
            labels=tuple(str(v) for v in raw.get("labels", ())),
        )


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _short(value: Any) -> str:
    return _clip(repr(value))


def _read(i: int, name: str, record: Mapping[Any, Any], parse: Any) -> Any:
    try:
        return parse(record.get(name))
    except CellError as err:
        raise InputError(f"instance {i}: column {name!r}: {err}") from None


def _round(value: float) -> float:
    # Rounded so the JSON (and so the DVC hash of the preprocessed folder) is stable.
    return float(f"{value:.9g}")


def _stats(values: np.ndarray) -> tuple[float, float]:
    if not len(values):
        return 0.0, 1.0
    std = float(values.std())
    # A constant column would divide by zero; 1.0 leaves it centred but unscaled.
    return _round(float(values.mean())), _round(std if std > _MIN_STD else 1.0)


def fit_spec(
    records: Sequence[Mapping[str, Any]],
    targets: np.ndarray,
    numeric: Sequence[str],
    categorical: Sequence[str],
    nullable: Sequence[str],
    target: str,
) -> TabularSpec:
    """Learn the spec from the training split's records and targets (nothing else)."""
    num_cols = []
    for name in numeric:
        parsed = [parse_number(r.get(name)) for r in records]
        observed = np.array([v for v in parsed if v is not None], dtype=np.float64)
        mean, std = _stats(observed)
        fill = (
            (_round(float(np.median(observed))) if len(observed) else 0.0)
            if (name in nullable)
            else None
        )
        num_cols.append(NumericColumn(name, mean, std, fill))
    cat_cols = []
    for name in categorical:
        seen = {parse_category(r.get(name)) for r in records}
        categories = tuple(sorted(v for v in seen if v is not None))
        cat_cols.append(CategoricalColumn(name, categories, name in nullable))
    target_mean, target_std = _stats(np.asarray(targets, dtype=np.float64))
    return TabularSpec(tuple(num_cols), tuple(cat_cols), target, target_mean, target_std)
