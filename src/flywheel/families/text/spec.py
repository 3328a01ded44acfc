"""The text family's preprocessing spec: labels and the fitted tokenizer, saved as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flywheel.families.text.tokenizer import Tokenizer


@dataclass(frozen=True)
class TextSpec:
    """The labels and the fitted tokenizer: what turns raw text into the model's input."""

    labels: tuple[str, ...]
    tokenizer: Tokenizer
    family: str = "text_classification"

    @property
    def max_len(self) -> int:
        return self.tokenizer.max_len

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.size

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = {"family": self.family, "labels": list(self.labels), **self.tokenizer.to_dict()}
        path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TextSpec:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            labels=tuple(str(v) for v in raw["labels"]),
            tokenizer=Tokenizer.from_dict(raw),
            family=str(raw.get("family", "text_classification")),
        )
