"""The registry on the team's object store, behind the same :class:`Registry` interface.

Remote layout (under ``remote.url``)::

    registry/versions/v0001/{model.onnx, preprocessing.json, reference.json, card.json}
    registry/production.json     # the alias: moved only by a conditional write
    registry/journal/<ms>-<random>.json

Every object is written create-only, except the alias. A version is claimed by its model
(the first create-only write; a loser moves to the next number) and exists for readers
only once its card, the last write, is there: nobody sees a partial version. The alias
moves by compare-and-swap against the ETag this machine read first under its lock, so a
deploy gated against one production cannot replace another that a second machine put
there meanwhile; every alias payload carries a nonce, so equal content never gives an
old ETag a second life. The local registry folder is this machine's verified mirror:
a version is downloaded whole into it, sha256-checked against its card, before use, and
the alias is mirrored there after each move (a server on this machine follows it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flywheel.core.atomic import atomic_write_text, rename_durable, temp_name
from flywheel.core.errors import AliasMoved, IntegrityError, RegistryError
from flywheel.release.registry.card import ModelCard, sha256_file
from flywheel.release.registry.journal import REGISTERED
from flywheel.release.registry.lifecycle import Registry
from flywheel.release.registry.remote_journal import RemoteJournal
from flywheel.release.registry.store import (
    _VERSION,
    CARD_FILE,
    MODEL_FILE,
    OPTIONAL_FILES,
    SPEC_FILE,
    Extras,
    RegistryStore,
    check_files,
)
from flywheel.remote.objects import ObjectStore, PreconditionFailed

# The model first (it claims the number), the card last (it publishes the version): a
# reader that sees the card finds the optional files the version was staged with too.
_PUBLISH_ORDER = (MODEL_FILE, SPEC_FILE, *OPTIONAL_FILES, CARD_FILE)


class RemoteRegistry(Registry):
    def __init__(self, root: Path | str, store: ObjectStore) -> None:
        super().__init__(root)
        self.store = store
        self.journal = RemoteJournal(store, store.key("registry", "journal"), self.journal.path)
        self._cards: dict[str, ModelCard] = {}
        self._etag: str | None = None  # of the alias as last read
        self._pin: str | None = None  # of the alias as first read under the lock
        self._depth = 0

    @property
    def alias_key(self) -> str:
        return self.store.key("registry", "production.json")

    def _key(self, version: str, name: str = "") -> str:
        self.version_dir(version)  # validates the name
        return self.store.key("registry", "versions", version, name)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """This machine's lock, plus the alias ETag pinned at the first read under it."""
        with super().lock():
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._pin = None

    # reading
    def _remote_versions(self) -> tuple[list[str], list[str]]:
        """(published versions, every claimed number) on the remote."""
        keys = self.store.keys(self.store.key("registry", "versions") + "/", "listing versions")
        published, claimed = set(), set()
        for key in keys:
            version, name = key.rsplit("/", 2)[-2:]
            if _VERSION.match(version):
                claimed.add(version)
                if name == CARD_FILE:
                    published.add(version)
        order = lambda names: sorted(names, key=lambda n: int(n[1:]))  # noqa: E731
        return order(published), order(claimed)

    def versions(self) -> list[str]:
        return self._remote_versions()[0]

    def local_versions(self) -> list[str]:
        """The versions this machine's mirror holds (each verified when it was fetched)."""
        return RegistryStore.versions(self)

    def next_version(self) -> str:
        claimed = self._remote_versions()[1]
        return f"v{(int(claimed[-1][1:]) + 1) if claimed else 1:04d}"

    def card(self, version: str) -> ModelCard:
        if version in self._cards:
            return self._cards[version]
        # Always the remote's card (once per process): the local folder only mirrors it.
        blob = self.store.get(self._key(version, CARD_FILE), f"reading the card of {version}")
        if blob is None:
            raise RegistryError(f"version {version} not found in {self.store.url}/registry")
        try:
            card = ModelCard.model_validate_json(blob.body)
        except ValidationError as err:
            raise RegistryError(
                f"{self.store.uri(self._key(version, CARD_FILE))} is corrupt "
                f"({str(err).splitlines()[0]}); {version} is never served"
            ) from None
        self._cards[version] = card
        return card

    def verify(self, version: str) -> ModelCard:
        self.fetch_version(version)
        return super().verify(version)

    def fetch_version(self, version: str) -> None:
        """Download ``version`` whole into the local registry, checked against its card."""
        final = self.version_dir(version)
        card = self.card(version)
        if final.is_dir():
            if super().card(version).sha256 != card.sha256:
                raise RegistryError(
                    f"{final} is not the {version} on {self.store.url} (another model): this "
                    "folder mirrors the remote registry; move it aside and run again"
                )
            return
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = self.versions_dir / temp_name(version, suffix="")
        staging.mkdir()
        try:
            for name in (MODEL_FILE, SPEC_FILE):
                key = self._key(version, name)
                if not self.store.download(key, staging / name, f"downloading {version}"):
                    raise IntegrityError(f"{version}: {self.store.uri(key)} is missing")
            actual = sha256_file(staging / MODEL_FILE)
            if actual != card.sha256:
                raise IntegrityError(
                    f"{version}: {self.store.uri(self._key(version, MODEL_FILE))} has sha256 "
                    f"{actual[:12]}, its card says {card.sha256[:12]}: refused, never served"
                )
            for name in OPTIONAL_FILES:  # absent on the remote: the version has none
                self.store.download(
                    self._key(version, name), staging / name, f"downloading {version}"
                )
            check_files(staging, card)
            card.save(staging / CARD_FILE)
            rename_durable(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _alias(self) -> dict[str, Any]:
        blob = self.store.get(self.alias_key, "reading the production alias")
        self._etag = blob.etag if blob else None
        if self._depth and self._pin is None:
            self._pin = self._etag or ""
        if blob is None:
            return {"version": None, "history": []}
        return self._parse_alias(blob.body.decode(errors="replace"), self.store.uri(self.alias_key))

    def _alias_history_or_empty(self) -> list[str]:
        try:
            return list(self._alias()["history"])
        except RegistryError:
            return []

    # writing
    def register(
        self,
        model: Path,
        spec: Path,
        card_fields: dict[str, Any],
        extras: Extras | None = None,
    ) -> ModelCard:
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        with self.lock():
            version = self.next_version()
            while True:
                staging = self.versions_dir / temp_name(version, suffix="")
                staging.mkdir()
                try:
                    card = self._stage(staging, version, model, spec, card_fields, extras)
                    if self._publish(staging, version):
                        rename_durable(staging, self.version_dir(version))
                        break
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                shutil.rmtree(staging, ignore_errors=True)
                version = f"v{int(version[1:]) + 1:04d}"
            self.journal.append(REGISTERED, version, sha256=card.sha256)
        self._cards[version] = card
        return card

    def _publish(self, staging: Path, version: str) -> bool:
        """Upload a staged version create-only; False when another machine claimed it."""
        if self.version_dir(version).exists():
            raise RegistryError(
                f"{self.version_dir(version)} exists locally but not on {self.store.url}: "
                "this folder mirrors the remote registry; move it aside and run again"
            )
        for name in _PUBLISH_ORDER:
            if name in OPTIONAL_FILES and not (staging / name).is_file():
                continue
            try:
                body = (staging / name).read_bytes()
                self.store.put(
                    self._key(version, name), body, f"uploading {version}", create_only=True
                )
            except PreconditionFailed:
                if name == MODEL_FILE:
                    return False
                raise
        return True

    def _write_alias(self, version: str | None, history: list[str]) -> None:
        nonce = uuid.uuid4().hex
        payload = {
            "version": version,
            "history": history,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "nonce": nonce,
        }
        text = json.dumps(payload, indent=2) + "\n"
        expected = self._pin if self._depth else self._etag
        doing = f"moving production to {version}"
        try:
            if expected:
                etag = self.store.put(self.alias_key, text.encode(), doing, if_match=expected)
            else:
                etag = self.store.put(self.alias_key, text.encode(), doing, create_only=True)
        except PreconditionFailed:
            won = self._won_anyway(nonce)
            if won is None:
                raise self._moved(version) from None
            etag = won
        self._etag = etag
        if self._depth:
            self._pin = etag
        if version is not None:
            self.fetch_version(version)
        atomic_write_text(self.alias_path, text, fault="registry.alias_write")

    def _won_anyway(self, nonce: str) -> str | None:
        """A retried write can lose to its own first attempt: the nonce tells."""
        blob = self.store.get(self.alias_key, "re-reading the production alias")
        with contextlib.suppress(ValueError, AttributeError):
            if blob is not None and json.loads(blob.body).get("nonce") == nonce:
                return blob.etag
        return None

    def _moved(self, version: str | None) -> AliasMoved:
        try:
            now = self._alias()["version"]
        except RegistryError:
            now = "unreadable"
        return AliasMoved(
            f"production on {self.store.url} moved to {now} on another machine while this one "
            f"was moving it to {version}; nothing was promoted here: run again to gate "
            "against the new production"
        )
