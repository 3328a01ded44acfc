"""Request instances to a model input batch, through the served model's family.

Decoding belongs to the family (:meth:`flywheel.families.base.Family.encode`, the same
code ``flywheel predict`` runs), so the server never re-implements preprocessing. This
module adds what only a server needs: inputs are now hostile, so they are encoded under
the server's :class:`~flywheel.families.base.InstanceLimits`, and anything the family
raises while reading them is the client's error (a 4xx), never a crash; and a probe batch
to warm a new model. Nothing here imports torch.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from flywheel.core.errors import InputError
from flywheel.core.sections import ValidateConfig
from flywheel.core.service_sections import ServeConfig
from flywheel.families.base import Family, InstanceLimits, StoredInstance
from flywheel.release.registry import ModelCard

log = logging.getLogger("flywheel.serving")


def instance_limits(serve: ServeConfig, card: ModelCard) -> InstanceLimits:
    """The limits for instances sent to ``card``'s model. Image formats default to the
    ones that model's data was validated with: no other decoder is ever tried."""
    formats = serve.image_formats or _validated_formats(card)
    return InstanceLimits(
        max_image_pixels=serve.max_image_pixels,
        image_formats=tuple(f.upper() for f in formats),
        image_modes=serve.image_modes,
        max_text_chars=serve.max_text_chars,
        max_text_bytes=serve.max_text_bytes,
        max_request_pixels=serve.max_request_pixels,
    )


def _validated_formats(card: ModelCard) -> tuple[str, ...]:
    raw = (card.params.get("validate") or {}).get("allowed_formats")
    if isinstance(raw, list | tuple) and raw and all(isinstance(f, str) for f in raw):
        return tuple(raw)
    return ValidateConfig().allowed_formats


class FamilyDecoder:
    """A family's ``encode`` with client errors contained; its stored form for feedback."""

    def __init__(self, family: Family, spec: Any) -> None:
        self.family = family
        self.spec = spec

    def decode(self, instances: list[Any], limits: InstanceLimits | None = None) -> np.ndarray:
        """One model input batch for ``instances``; :class:`InputError` naming the bad one."""
        try:
            for i, instance in enumerate(instances):
                self.family.check_instance(i, instance)
            return np.ascontiguousarray(self.family.encode(instances, self.spec, limits))
        except InputError:
            raise
        except Exception as err:
            # Family code was written for files it made itself; from a client, any failure
            # to read an instance is that instance's fault. The library's own message
            # (numpy, Pillow, tokenizers) means nothing to a client: it goes to the log.
            log.warning("instances refused: %s: %s", type(err).__name__, err)
            raise InputError(
                "cannot read instances: they do not match the model's input format "
                "(GET /v1/model shows its task and spec)"
            ) from None

    def probe(self, n: int) -> np.ndarray:
        """A valid batch of ``n`` inputs, to warm a model before it serves."""
        return np.ascontiguousarray(self.family.example_batch(self.spec, n))

    def to_stored(self, instance: Any, limits: InstanceLimits | None = None) -> StoredInstance:
        """The normalised bytes kept for an instance :meth:`decode` accepted."""
        try:
            return self.family.stored_form(instance, self.spec, limits)
        except InputError:
            raise
        except Exception as err:
            log.warning("feedback instance refused: %s: %s", type(err).__name__, err)
            raise InputError("cannot store the instance in its normalised form") from None
