"""A deterministic word-level tokenizer whose vocabulary is learnt on the training split.

The same :class:`Tokenizer` (saved as JSON inside the family's preprocessing spec) turns
text into ids in ``preprocess``, in the gate, in ``flywheel predict`` and in the server, so
training and serving can never disagree about a token. Determinism is by construction:
normalisation is pure Unicode/regex work, and vocabulary ties are broken alphabetically.

Ids: ``<pad>`` = 0 (fills every row up to ``max_len``), ``<unk>`` = 1 (any token the
training split did not hold often enough), then tokens by descending training frequency.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
# Bumped whenever normalisation or splitting changes, so a spec written by older code is
# refused instead of silently tokenising differently from how its model was trained.
TOKENIZER_VERSION = 1

# Words (letters/digits, inner apostrophes kept: "don't"), or any one other visible symbol
# ("$", "!", "?"), which carry signal for topics (prices) and sentiment (exclamations).
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]")
# Numeric character references that lost their "&" on the way ("#36;" for "$" in AG news).
_BARE_REF = re.compile(r"(?<!&)#(\d{2,6});")
# Literal "\n" and lone backslashes are line breaks escaped by CSV exporters.
_BACKSLASH = re.compile(r"\\n|\\")


def _bare_ref(match: re.Match[str]) -> str:
    code = int(match.group(1))
    return chr(code) if 0 < code < 0x110000 else " "


def normalise(text: str, lowercase: bool = True) -> str:
    """Canonical form of ``text``: HTML entities resolved, NFKC, escaped breaks as spaces."""
    text = html.unescape(_BARE_REF.sub(_bare_ref, text))
    text = unicodedata.normalize("NFKC", _BACKSLASH.sub(" ", text))
    return text.lower() if lowercase else text


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    return _TOKEN.findall(normalise(text, lowercase))


@dataclass(frozen=True)
class Tokenizer:
    """A fitted vocabulary plus the settings that produced it; encodes to fixed-length ids."""

    vocab: tuple[str, ...]
    max_len: int
    lowercase: bool = True
    version: int = TOKENIZER_VERSION
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vocab[:2] != (PAD, UNK):
            raise ValueError(f"vocabulary must start with {PAD!r}, {UNK!r}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocabulary holds duplicate tokens")
        if self.max_len < 1:
            raise ValueError("max_len must be positive")
        if self.version != TOKENIZER_VERSION:
            raise ValueError(
                f"tokenizer version {self.version} is not {TOKENIZER_VERSION}: "
                "re-run preprocess to rebuild the vocabulary"
            )
        object.__setattr__(self, "_index", {tok: i for i, tok in enumerate(self.vocab)})

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        max_len: int,
        vocab_size: int,
        min_freq: int = 1,
        lowercase: bool = True,
    ) -> Tokenizer:
        """The vocabulary of ``texts`` (the training split only): tokens seen at least
        ``min_freq`` times, the most frequent first, ``vocab_size`` entries in all."""
        if vocab_size < 3:
            raise ValueError("vocab_size must leave room for <pad>, <unk> and one token")
        counts = Counter(tok for text in texts for tok in tokenize(text, lowercase))
        ranked = sorted(
            (tok for tok, n in counts.items() if n >= min_freq and tok not in (PAD, UNK)),
            key=lambda tok: (-counts[tok], tok),
        )
        return cls((PAD, UNK, *ranked[: vocab_size - 2]), max_len, lowercase)

    @property
    def size(self) -> int:
        return len(self.vocab)

    def ids(self, text: str) -> list[int]:
        """Ids of every token of ``text``, untruncated."""
        index = self._index
        return [index.get(tok, UNK_ID) for tok in tokenize(text, self.lowercase)]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), max_len)`` int64 ids: truncated, then padded with ``<pad>``."""
        out = np.full((len(texts), self.max_len), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self.ids(text)[: self.max_len]
            out[row, : len(ids)] = ids
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "max_len": self.max_len,
            "lowercase": self.lowercase,
            "vocab": list(self.vocab),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Tokenizer:
        return cls(
            vocab=tuple(str(t) for t in raw["vocab"]),
            max_len=int(raw["max_len"]),
            lowercase=bool(raw["lowercase"]),
            version=int(raw["version"]),
        )
