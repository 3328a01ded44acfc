"""The reference profile each deployed model ships with, in the registry beside it.

Built at deploy time from the training split the model learnt from: a sample of every
numeric column (the KS test needs the values, not a summary), the proportions of every
categorical one, the prediction distribution of the model itself on that sample, and for
text its most frequent words (vocabulary coverage). ``<registry>/versions/<v>/reference.json``
is staged with the version at registration and published with it (on a remote, before
its card), so every machine that mirrors the version has it; a version without one is
simply not monitored.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flywheel.monitor.features import instance_features, prediction_features, vocabulary_of
from flywheel.release.registry.store import REFERENCE_FILE

log = logging.getLogger("flywheel.monitor")
# Words kept for text vocabulary coverage.
_VOCABULARY = 20_000


def profile(
    task: str,
    version: str,
    entries: list[dict[str, Any]],
    predictions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The profile of stored-form ``entries`` and the model's ``predictions`` on them."""
    text = task not in ("image_classification", "tabular_regression")
    vocabulary = vocabulary_of(entries, _VOCABULARY) if text else None
    columns = instance_features(task, entries, set(vocabulary) if vocabulary else None)
    prediction_features(columns, predictions)
    return {
        "model_version": version,
        "task": task,
        "rows": len(entries),
        "numeric": {name: {"sample": values} for name, values in columns.numeric.items()},
        "categorical": {name: _proportions(values) for name, values in columns.categorical.items()},
        "vocabulary": vocabulary,
    }


def _proportions(values: list[str]) -> dict[str, Any]:
    counts = Counter(values)
    return {"n": len(values), "proportions": {k: c / len(values) for k, c in counts.items()}}


def reference_path(version_dir: Path) -> Path:
    return version_dir / REFERENCE_FILE


def load_reference(version_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(reference_path(version_dir).read_text()))
    except (OSError, ValueError):
        return None


def training_sample(ws: Any, rows: int) -> list[Any]:
    """(A sample of ``rows`` of) the workspace's training split, as a client sends it."""
    from flywheel.families import get_family

    instances, _ = get_family(ws.params.task).raw_split(ws.params, ws.layout, "train")
    if len(instances) > rows:
        instances = random.Random(ws.params.seed).sample(instances, rows)
    # Image splits hold file bytes; a client (and stored_form) sends them as base64.
    return [{"b64": base64.b64encode(i).decode()} if isinstance(i, bytes) else i for i in instances]


def reference_document(predictor: Any, instances: list[Any]) -> dict[str, Any]:
    """The profile of ``instances`` and of ``predictor``'s model's predictions on them."""
    from flywheel.monitor.prediction_log import stored_entry

    family = predictor.family
    entries = [stored_entry(family.stored_form(i, predictor.spec)) for i in instances]
    predictions = [p.as_dict() for p in predictor.predict_instances(instances)]
    return profile(predictor.card.task, predictor.card.version, entries, predictions)


def write_reference(ws: Any, registry: Any, version: str, rows: int) -> Path:
    """The profile of a registered ``version`` on the training split, into its folder."""
    from flywheel.core.atomic import atomic_write_bytes
    from flywheel.release.predictor import Predictor

    predictor = Predictor.from_registry(registry, version)
    document = reference_document(predictor, training_sample(ws, rows))
    path = reference_path(registry.version_dir(version))
    atomic_write_bytes(path, json.dumps(document).encode())
    return path


def staged_reference(sample: Callable[[], list[Any]]) -> Callable[[Path, Any], None]:
    """What registration calls on a staged version: its profile on ``sample()`` beside its
    model, so the registry publishes both together (a remote's mirrors fetch it with the
    model). A failure leaves the version unmonitored, never unregistered."""

    def write(staging: Path, card: Any) -> None:
        from flywheel.families import get_family
        from flywheel.release.predictor import Predictor
        from flywheel.release.registry.store import MODEL_FILE, SPEC_FILE

        try:
            spec = get_family(card.task).load_spec(staging / SPEC_FILE)
            predictor = Predictor(card, spec, (staging / MODEL_FILE).read_bytes())
            document = reference_document(predictor, sample())
            reference_path(staging).write_bytes(json.dumps(document).encode())
        except Exception as err:
            log.warning("no reference profile for %s (it is not monitored): %s", card.version, err)

    return write
