"""The sentiment family's preprocessing spec: labels, the tokenizer (by package, version and
hash) and ``max_len``, and a record of the encoder it fine-tunes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.families.sentiment.package import EncoderShape, encoder_shape
from flywheel.families.sentiment.tokenizer import TokenizerRef

SPEC_FORMAT = "flywheel.sentiment/1"


@dataclass(frozen=True)
class SentimentSpec:
    """Labels, the tokenizer (by package, version and hash) and ``max_len``; the encoder."""

    labels: tuple[str, ...]
    tokenizer: TokenizerRef
    model: dict[str, Any]

    @property
    def max_len(self) -> int:
        return int(self.tokenizer.max_len)

    def encoder_shape(self) -> EncoderShape:
        """The encoder's heads and hidden size as recorded at preprocessing; for a spec
        written before they were recorded, the installed package's."""
        if "num_attention_heads" in self.model:
            return EncoderShape.from_record(self.model)
        return encoder_shape()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = {
            "format": SPEC_FORMAT,
            "labels": list(self.labels),
            "tokenizer": self.tokenizer.as_dict(),
            "model": self.model,
        }
        path.write_text(json.dumps(raw, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> SentimentSpec:
        raw = json.loads(Path(path).read_text())
        if raw.get("format") != SPEC_FORMAT:
            raise ValueError(f"{path}: not a {SPEC_FORMAT} spec (format {raw.get('format')!r})")
        return cls(
            labels=tuple(str(v) for v in raw["labels"]),
            tokenizer=TokenizerRef.from_dict(raw["tokenizer"]),
            model=dict(raw["model"]),
        )
