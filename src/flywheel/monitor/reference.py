"""The reference profile each deployed model ships with, in the registry beside it.

Built at deploy time from the training split the model learnt from: a sample of every
numeric column (the KS test needs the values, not a summary), the proportions of every
categorical one, the prediction distribution of the model itself on that sample, and for
text its most frequent words (vocabulary coverage). ``<registry>/versions/<v>/reference.json``
is written once, atomically; a version without one is simply not monitored.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from flywheel.monitor.features import instance_features, prediction_features, vocabulary_of

log = logging.getLogger("flywheel.monitor")
REFERENCE_FILE = "reference.json"
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


def write_reference(ws: Any, registry: Any, version: str, rows: int) -> Path:
    """Profile ``version`` on (a sample of ``rows`` of) the workspace's training split."""
    from flywheel.core.atomic import atomic_write_bytes
    from flywheel.monitor.prediction_log import stored_entry
    from flywheel.release.predictor import Predictor

    predictor = Predictor.from_registry(registry, version)
    family = predictor.family
    instances, _ = family.raw_split(ws.params, ws.layout, "train")
    if len(instances) > rows:
        instances = random.Random(ws.params.seed).sample(instances, rows)
    # Image splits hold file bytes; a client (and stored_form) sends them as base64.
    instances = [
        {"b64": base64.b64encode(i).decode()} if isinstance(i, bytes) else i for i in instances
    ]
    entries = [stored_entry(family.stored_form(i, predictor.spec)) for i in instances]
    predictions = [p.as_dict() for p in predictor.predict_instances(instances)]
    document = profile(predictor.card.task, version, entries, predictions)
    path = reference_path(registry.version_dir(version))
    atomic_write_bytes(path, json.dumps(document).encode())
    return path
