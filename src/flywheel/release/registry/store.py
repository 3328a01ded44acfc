"""Registry layout::

    registry/
      versions/v0001/{model.onnx, card.json, preprocessing.json, reference.json}
      production.json      # {"version": "v0002", "history": ["v0001", "v0002"]}
      journal.jsonl        # every registration, promotion, check and retirement
      .lock                # serialises registrations and alias moves across processes

:class:`RegistryStore` holds the files; :class:`~.lifecycle.Registry` adds what the
journal knows (which versions are retired, stranded, the last good one) and the moves
that retire, roll back and recover. Versions are written into a hidden staging folder and
renamed into place, so a version folder either exists whole or not at all; the alias file
is replaced atomically; both renames are fsynced with their folder. What a kill leaves
behind (a staging folder, an alias temp file) is cleaned under the lock by the next writer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flywheel.core.atomic import (
    atomic_write_text,
    exclusive_lock,
    rename_durable,
    sweep_temp,
    temp_name,
)
from flywheel.core.errors import IntegrityError, RegistryError
from flywheel.core.faults import fault_point
from flywheel.release.registry.card import ModelCard, sha256_file
from flywheel.release.registry.journal import PROMOTED, REGISTERED, VERIFIED, Journal

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
SPEC_FILE = "preprocessing.json"
# The monitor's reference profile (flywheel.monitor.reference): staged and published with
# the version, so every mirror of it has it; a version may lack one (not monitored).
REFERENCE_FILE = "reference.json"
OPTIONAL_FILES = (REFERENCE_FILE,)
# Writes further files of a version into its staging folder, given the staged card.
Extras = Callable[[Path, ModelCard], None]
_VERSION = re.compile(r"^v(\d{4,})$")


class RegistryStore:
    """The files: versions, cards, the alias, and the writes that create them."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.journal = Journal(self.root / "journal.jsonl")

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
        try:
            return ModelCard.load(path)
        except (ValueError, ValidationError, OSError) as err:
            raise RegistryError(
                f"{path} is corrupt ({str(err).splitlines()[0]}); restore it from a backup, "
                f"or run `flywheel rollback` if {version} is in production (it is never served)"
            ) from err

    def cards(self) -> list[ModelCard]:
        """Every readable card; a corrupt one is logged and left out (see :meth:`card`)."""
        out = []
        for version in self.versions():
            try:
                out.append(self.card(version))
            except RegistryError as err:
                log.warning("%s", err)
        return out

    def _alias(self) -> dict[str, Any]:
        try:
            raw = self.alias_path.read_text()
        except FileNotFoundError:
            return {"version": None, "history": []}
        return self._parse_alias(raw, str(self.alias_path))

    def _parse_alias(self, raw: str, source: str) -> dict[str, Any]:
        try:
            alias = json.loads(raw)
            version, history = alias["version"], list(alias["history"])
            if version is not None:
                self.version_dir(str(version))
            for v in history:
                self.version_dir(str(v))
        except (ValueError, KeyError, TypeError, RegistryError) as err:
            fix = self._restore_hint()
            raise RegistryError(
                f"{source} is corrupt ({type(err).__name__}: {err}); "
                f"`flywheel rollback` restores production to the last good version{fix} "
                "from the registry's journal"
            ) from err
        return {"version": version, "history": [str(v) for v in history]}

    def _restore_hint(self) -> str:
        return ""

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
        check_files(self.version_dir(version), card)
        return card

    def find(self, sha256: str) -> ModelCard | None:
        """The version holding a model with this sha256, if any."""
        return next((c for c in self.cards() if c.sha256 == sha256), None)

    # writing
    def clean_leftovers(self) -> list[Path]:
        """Staging folders and temp files that a killed writer left; call under the lock
        (every writer here holds it, so whatever is left is nobody's work in progress)."""
        removed = sweep_temp(self.root, any_writer=True)
        if self.versions_dir.is_dir():
            # Staging folders of releases before temp names carried the writer's pid.
            for path in self.versions_dir.glob(".v*"):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        for path in removed:
            log.info("registry: removed %s, left by an interrupted write", path)
        return removed

    def next_version(self) -> str:
        """The name the next registration takes (stable while the lock is held)."""
        existing = self.versions()
        return f"v{(int(existing[-1][1:]) + 1) if existing else 1:04d}"

    def register(
        self,
        model: Path,
        spec: Path,
        card_fields: dict[str, Any],
        extras: Extras | None = None,
    ) -> ModelCard:
        """Copy a model and its preprocessing spec in as the next version (with what
        ``extras`` adds beside them); returns its card."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        with self.lock():
            version = self.next_version()
            staging = self.versions_dir / temp_name(version, suffix="")
            staging.mkdir()
            try:
                card = self._stage(staging, version, model, spec, card_fields, extras)
                rename_durable(staging, self.versions_dir / version)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self.journal.append(REGISTERED, version, sha256=card.sha256)
        return card

    def _stage(
        self,
        staging: Path,
        version: str,
        model: Path,
        spec: Path,
        fields: dict[str, Any],
        extras: Extras | None = None,
    ) -> ModelCard:
        shutil.copyfile(model, staging / MODEL_FILE)
        fault_point("registry.register")
        shutil.copyfile(spec, staging / SPEC_FILE)
        card = ModelCard(
            version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            size_bytes=(staging / MODEL_FILE).stat().st_size,
            sha256=sha256_file(staging / MODEL_FILE),
            **fields,
        )
        if extras is not None:
            extras(staging, card)
            beside = [n for n in OPTIONAL_FILES if (staging / n).is_file()]
            if beside:
                card = card.model_copy(
                    update={"files": {n: sha256_file(staging / n) for n in beside}}
                )
        card.save(staging / CARD_FILE)  # once, naming what extras wrote beside the model
        for f in staging.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        return card

    def _write_alias(self, version: str | None, history: list[str]) -> None:
        payload = {
            "version": version,
            "history": history,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write_text(
            self.alias_path, json.dumps(payload, indent=2) + "\n", fault="registry.alias_write"
        )

    def promote(self, version: str, **detail: Any) -> ModelCard:
        """Point ``production`` at ``version``; the one it replaces stays for rollback.
        ``detail`` goes into the journal's record of it (the gate's verdict, say)."""
        with self.lock():
            card = self.verify(version)
            alias = self._alias()
            history = [v for v in alias["history"] if v != version] + [version]
            self._write_alias(version, history)
            self.journal.append(PROMOTED, version, previous=alias["version"], **detail)
        return card

    def mark_verified(self, version: str) -> None:
        self.journal.append(VERIFIED, version)


def check_files(folder: Path, card: ModelCard) -> None:
    """Each optional file the card names is in ``folder`` with the sha256 it names."""
    for name, expected in card.files.items():
        path = folder / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != expected:
            raise IntegrityError(
                f"{card.version}: {name} has sha256 {actual[:12]}, its card says "
                f"{expected[:12]}: refused, never served"
            )
