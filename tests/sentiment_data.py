"""Generated positive/negative review sentences for the sentiment tests.

Sentences are built from templates, subjects and clearly positive or negative words, a few
with stray quote marks (as in the real amazon/yelp files), written as headerless
``sentence<TAB>label`` files. Deterministic for a given seed; every sentence is unique.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

POSITIVE = ["great", "excellent", "wonderful", "amazing", "fantastic", "lovely", "superb"]
NEGATIVE = ["terrible", "awful", "horrible", "disappointing", "dreadful", "useless", "bad"]
SUBJECTS = [
    "the food",
    "the service",
    "this phone",
    "the battery",
    "the staff",
    "the screen",
    "the headset",
    "the pizza",
    "the sound",
    "the waiter",
]
TEMPLATES = [
    "{s} was {a}.",
    "Honestly, {s} is {a}!",
    'I thought {s} was "{a}".',
    "{s} turned out {a}, really {a}.",
    "Wow, {s} was just {a}",
]
LABELS = ("0", "1")

# Tiny but real settings for the sentiment family: a frozen encoder but the top block, one
# short epoch, short rows.
SENTIMENT_PARAMS: dict[str, Any] = {
    "task": "sentiment",
    "data": {
        "kind": "table",
        "format": "tsv",
        "pattern": "*_labelled.txt",
        "header": False,
        "quoting": "none",
        "text_column": 0,
        "label_column": 1,
    },
    "transformer": {"max_len": 32, "freeze_layers": 5},
    "validate": {"labels": list(LABELS), "min_rows": 20, "min_rows_per_class": 10},
    "model": {"hidden": [], "dropout": 0.1},
    "train": {"max_epochs": 1, "batch_size": 16, "lr": 0.003, "patience": 1, "limit_batches": 4},
    "compress": {"variants": ["fp32", "dynamic-int8"], "calibration_samples": 16},
    "gate": {"metric": "accuracy", "min_accuracy": 0.75, "max_drop": 0.05},
}


def sentences(per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(sentence, label)`` pairs, ``per_class`` of each label, interleaved."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    pools = {"0": NEGATIVE, "1": POSITIVE}
    counts = dict.fromkeys(LABELS, 0)
    while min(counts.values()) < per_class:
        for label, words in pools.items():
            if counts[label] >= per_class:
                continue
            template = rng.choice(TEMPLATES)
            text = template.format(s=rng.choice(SUBJECTS), a=rng.choice(words))
            text = text[0].upper() + text[1:]
            if text in seen:
                continue
            seen.add(text)
            out.append((text, label))
            counts[label] += 1
    return out


def write_labelled(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Rows as the amazon/yelp files hold them: ``sentence<TAB>label``, no header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    return path
