"""The JSON card beside every registered model: what it is, what made it, how good it is."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from flywheel.core.errors import RegistryError


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    version: str
    created_at: str
    task: str
    labels: tuple[str, ...]
    data_hash: str
    params_hash: str
    code_version: str
    variant: str
    recipe: dict[str, Any]
    metrics: dict[str, float]
    size_bytes: int
    sha256: str
    params: dict[str, Any]
    evaluation: dict[str, Any]
    run: dict[str, Any] = {}
    # sha256 of each optional file registered beside the model (its reference profile), so
    # a download is checked like the model's; absent on cards older than the field.
    files: dict[str, str] = {}

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except (ValueError, ValidationError) as err:  # JSONDecodeError is a ValueError
            first = err.errors()[0] if isinstance(err, ValidationError) else None
            why = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(err)
            raise RegistryError(
                f"model card {os.path.normpath(path)} is corrupt ({why}); restore it from a "
                "backup (other versions are unaffected)"
            ) from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
