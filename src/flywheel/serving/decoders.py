"""Request instances to a model input batch, through the served model's family.

Decoding belongs to the family (:meth:`flywheel.families.base.Family.encode`, the same
code ``flywheel predict`` runs), so the server never re-implements preprocessing. This
module adds what only a server needs: inputs are now hostile, so anything the family raises
while reading them is the client's error (a 4xx), never a crash; and a probe batch to warm a
new model. Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flywheel.core.errors import InputError
from flywheel.families.base import Family, StoredInstance


class FamilyDecoder:
    """A family's ``encode`` with client errors contained; its stored form for feedback."""

    def __init__(self, family: Family, spec: Any) -> None:
        self.family = family
        self.spec = spec

    def decode(self, instances: list[Any]) -> np.ndarray:
        """One model input batch for ``instances``; :class:`InputError` naming the bad one."""
        for i, instance in enumerate(instances):
            self.family.check_instance(i, instance)
        try:
            return np.ascontiguousarray(self.family.encode(instances, self.spec))
        except InputError:
            raise
        except (ValueError, TypeError, OverflowError, KeyError, IndexError) as err:
            # Family code was written for files it made itself; from a client, any failure
            # to read an instance is that instance's fault.
            raise InputError(f"cannot read instances: {err}") from None

    def probe(self, n: int) -> np.ndarray:
        """A valid batch of ``n`` inputs, to warm a model before it serves."""
        return np.ascontiguousarray(self.family.example_batch(self.spec, n))

    def to_stored(self, instance: Any) -> StoredInstance:
        return self.family.stored_form(instance)
