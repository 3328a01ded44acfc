"""Registry layout::

    registry/
      versions/v0001/{model.onnx, card.json, preprocessing.json}
      production.json      # {"version": "v0002", "history": ["v0001", "v0002"]}
      .lock                # serialises registrations and alias moves across processes

Versions are written into a hidden staging folder and renamed into place, so a version
folder either exists whole or not at all. The alias file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.core.atomic import atomic_write_text, exclusive_lock, fsync_dir
from flywheel.core.errors import IntegrityError, RegistryError
from flywheel.release.registry.card import ModelCard, sha256_file

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
SPEC_FILE = "preprocessing.json"
_VERSION = re.compile(r"^v(\d{4,})$")


class Registry:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # paths
    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def alias_path(self) -> Path:
        return self.root / "production.json"

    def version_dir(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise RegistryError(f"not a version name: {version!r} (expected e.g. v0001)")
        return self.versions_dir / version

    def model_path(self, version: str) -> Path:
        return self.version_dir(version) / MODEL_FILE

    def spec_path(self, version: str) -> Path:
        return self.version_dir(version) / SPEC_FILE

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held around every promotion so two can never overlap, whatever started them."""
        with exclusive_lock(self.root / ".lock"):
            yield

    # reading
    def versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        names = [p.name for p in self.versions_dir.iterdir() if _VERSION.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def card(self, version: str) -> ModelCard:
        path = self.version_dir(version) / CARD_FILE
        if not path.is_file():
            raise RegistryError(f"version {version} not found in {self.root}")
        return ModelCard.load(path)

    def cards(self) -> list[ModelCard]:
        return [self.card(v) for v in self.versions()]

    def registered(self, sha256: str) -> tuple[ModelCard, str] | None:
        """The version already holding a model with this sha256, and whether it is live."""
        production = self.production_version()
        for card in self.cards():
            if card.sha256 == sha256:
                why = (
                    "already in production"
                    if card.version == production
                    else "already registered (and since rolled back); not redeploying it"
                )
                return card, why
        return None

    def _alias(self) -> dict[str, Any]:
        if not self.alias_path.is_file():
            return {"version": None, "history": []}
        return dict(json.loads(self.alias_path.read_text()))

    def production_version(self) -> str | None:
        version = self._alias()["version"]
        return str(version) if version else None

    def production(self) -> ModelCard | None:
        version = self.production_version()
        return self.card(version) if version else None

    def verify(self, version: str) -> ModelCard:
        """The card, after checking the model file is whole and is the one the card names."""
        card = self.card(version)
        path = self.model_path(version)
        if not path.is_file():
            raise IntegrityError(f"{version}: model file missing at {path}")
        actual = sha256_file(path)
        if actual != card.sha256:
            raise IntegrityError(
                f"{version}: model sha256 {actual[:12]} does not match its card {card.sha256[:12]}"
            )
        if not self.spec_path(version).is_file():
            raise IntegrityError(f"{version}: preprocessing spec missing")
        return card

    # writing
    def register(self, model: Path, spec: Path, card_fields: dict[str, Any]) -> ModelCard:
        """Copy a model and its preprocessing spec in as the next version; returns its card."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        with self.lock():
            existing = self.versions()
            version = f"v{(int(existing[-1][1:]) + 1) if existing else 1:04d}"
            staging = Path(tempfile.mkdtemp(dir=self.versions_dir, prefix=f".{version}."))
            try:
                shutil.copyfile(model, staging / MODEL_FILE)
                shutil.copyfile(spec, staging / SPEC_FILE)
                card = ModelCard(
                    version=version,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    size_bytes=(staging / MODEL_FILE).stat().st_size,
                    sha256=sha256_file(staging / MODEL_FILE),
                    **card_fields,
                )
                card.save(staging / CARD_FILE)
                for f in staging.iterdir():
                    with f.open("rb") as fh:
                        os.fsync(fh.fileno())
                os.rename(staging, self.versions_dir / version)
                fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return card

    def _write_alias(self, version: str, history: list[str]) -> None:
        payload = {
            "version": version,
            "history": history,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write_text(self.alias_path, json.dumps(payload, indent=2) + "\n")

    def promote(self, version: str) -> ModelCard:
        """Point ``production`` at ``version``; the one it replaces stays for rollback."""
        with self.lock():
            card = self.verify(version)
            alias = self._alias()
            history = [v for v in alias["history"] if v != version] + [version]
            self._write_alias(version, history)
        return card

    def rollback(self) -> ModelCard:
        """Move ``production`` back to the version it pointed at before the current one."""
        with self.lock():
            alias = self._alias()
            history = list(alias["history"])
            if len(history) < 2:
                raise RegistryError("nothing to roll back to: production has no earlier version")
            history.pop()
            card = self.verify(history[-1])
            self._write_alias(history[-1], history)
        return card
