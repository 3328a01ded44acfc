"""One parser for table cells and client values, so validation, training and serving agree.

The validate stage records what these functions reject as findings; the preprocess stage and
the server call the same functions, so a row the suite accepted can always be encoded and a
value a client sends is read exactly as the same text in the training file was.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd


class CellError(ValueError):
    """A value that cannot be read as its column's type; the message says what it was."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_missing(value: Any) -> bool:
    """``None`` or blank text: what imputation (or a missing-value finding) applies to.

    A float NaN is *not* missing here: a client sending NaN sent a broken number. Table
    readers turn their own empty cells into ``None`` first (:func:`cell`)."""
    return value is None or (isinstance(value, str) and not value.strip())


def parse_number(value: Any) -> float | None:
    """A finite float, ``None`` for a missing value; :class:`CellError` otherwise."""
    if is_missing(value):
        return None
    # bool is an int subclass, but True is no house price.
    if isinstance(value, bool | np.bool_):
        raise CellError(f"expected a number, got {_show(value)}")
    if isinstance(value, Real | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise CellError(f"expected a number, got {_show(value)}") from None
    else:
        raise CellError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise CellError(f"expected a finite number, got {_show(value)}")
    return number


def parse_category(value: Any) -> str | None:
    """A category as text, ``None`` for a missing value; integers are read as their digits."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Integral | np.integer) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    raise CellError(f"expected a category (text), got {_show(value)}")


def cell(value: Any) -> Any:
    """A table cell as a client would send it: empty cells (NaN, NA) become ``None`` and
    numpy scalars plain Python values, so a record from a file is JSON-ready."""
    if value is None:
        return None
    if not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def cell_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row of ``frame`` as ``{column name: cell}``; (pandas' own ``map`` would turn
    the ``None`` cells back into NaN.)"""
    return [{str(k): cell(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
