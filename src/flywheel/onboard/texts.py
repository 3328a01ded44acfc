"""A text dataset's profile (a text folder here; text tables share :func:`finish_text`):
labels, encoding, lengths in characters and tokens, and the suite's bounds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel.core.errors import DataError
from flywheel.families.text.sources import read_text_examples
from flywheel.onboard.decision import (
    Decision,
    add_gate_floor,
    add_labels,
    add_row_limits,
    n,
    provisional,
)
from flywheel.onboard.facts import column_facts
from flywheel.onboard.images import add_pattern, names
from flywheel.onboard.scan import KindChoice
from flywheel.onboard.sniff import guess_encoding

# Labels the reader needs before the real ones are read from the data.
PLACEHOLDER_LABELS = ("?0", "?1")
# Texts tokenised to size max_len; enough for a stable 95th percentile.
TOKEN_SAMPLE = 5000
COVERED = 95  # percent of texts max_len leaves whole
# (task, params section, the family's default, bounds): longer sequences cost time per step.
MAX_LEN = {
    "text_classification": ("text", 128, (16, 256)),
    "sentiment": ("transformer", 64, (16, 128)),
}


def profile_text_folder(decision: Decision, root: Path, choice: KindChoice) -> None:
    decision.add("data", "kind", "text_folder", "one sub-folder of text files per label")
    add_pattern(decision, choice)
    encoding = guess_encoding([(root / e.rel).read_bytes() for e in choice.files])
    bad = [choice.files[i].rel for i in encoding.not_utf8]
    comment = f"{n(len(bad))} file(s) are not UTF-8: quarantined" if bad else "every file reads"
    decision.add("data", "encoding", encoding.name, comment)
    if bad:
        decision.find("encoding", f"{names(bad)} not {encoding.name}: quarantined")
    params = provisional(decision, labels=list(PLACEHOLDER_LABELS))
    manifest = read_text_examples(params, root)
    decision.find("data", f"text folder: {n(len(manifest))} files")
    decision.note("data", "path", f"{n(len(manifest))} text files")
    finish_text(decision, manifest, "label folders", encoding.name)


def finish_text(decision: Decision, manifest: pd.DataFrame, where: str, encoding: str) -> None:
    """Labels, bounds, max_len, row limits and the gate's floor from the text manifest."""
    labelled = manifest[manifest["label"].notna() & (manifest["label"] != "")]
    counts = labelled.groupby("label")["path"].count()
    if len(counts) < 2:
        raise DataError(
            f"found {len(counts)} label(s) in the {where}: a classifier needs at least two"
        )
    good = labelled[labelled["valid_encoding"] & (labelled["n_chars"] > 0)]
    if good.empty:
        raise DataError(f"none of the {n(len(labelled))} labelled texts is readable text")
    decision.manifest = manifest
    add_labels(decision, counts, where)
    chars = column_facts(good, numeric=["n_chars"])["n_chars"]
    low, high = int(chars.low or 1), int(chars.high or 1)
    decision.add("validate", "min_chars", max(1, low), "the shortest text seen")
    decision.add("validate", "max_chars", max(1, high), "the longest text seen")
    section, default, (lo, hi) = MAX_LEN[decision.task]
    lengths = token_lengths(decision.task, [str(t) for t in good["text"].head(TOKEN_SAMPLE)])
    p95 = int(np.percentile(lengths, COVERED))
    max_len = min(hi, max(lo, 16 * math.ceil(p95 / 16)))
    decision.add(section, "max_len", max_len, f"{COVERED}% of the texts have {p95} tokens or fewer")
    decision.find(
        "text",
        f"{encoding}; {n(low)}-{n(high)} characters; {COVERED}% within {n(p95)} tokens "
        f"-> {section}.max_len {max_len}" + ("" if max_len != default else " (the default)"),
    )
    add_row_limits(decision, counts, len(manifest))
    add_gate_floor(decision, counts)


def token_lengths(task: str, texts: list[str]) -> list[int]:
    """Tokens per text as the task's own tokenizer counts them."""
    if task == "sentiment":
        from flywheel.families.sentiment.tokenizer import current_ref, tokenizer_for

        tokenizer = tokenizer_for(current_ref(512))
        return [len(tokenizer.ids(t)) for t in texts]
    from flywheel.families.text.tokenizer import tokenize

    return [len(tokenize(t)) for t in texts]
