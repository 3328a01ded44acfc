"""What the journal knows about each version, and the alias moves that depend on it.

:class:`Registry` is the one registry callers use: the files of :class:`RegistryStore`
plus each version's standing (production, retired, superseded, stranded), the last good
production version, and retire / roll back / restore / recover, each recorded in the
journal before the alias moves so that a kill between the two is finished next time.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Literal

from flywheel.core.errors import RegistryError
from flywheel.release.registry.card import ModelCard
from flywheel.release.registry.journal import PROMOTED, RETIRED
from flywheel.release.registry.store import _VERSION, RegistryStore

log = logging.getLogger(__name__)

Status = Literal["production", "retired", "stranded", "superseded"]


class Registry(RegistryStore):
    def _restore_hint(self) -> str:
        good = self.last_good()
        return f" (last good: {good.version})" if good else ""

    def status(self, version: str, production: str | None = None) -> Status:
        """Where ``version`` stands: live, retired (rolled back or failed its check after
        promotion: never redeployed), superseded (was production, replaced by a newer
        one) or stranded (registered, its promotion never happened)."""
        if version == production:
            return "production"
        state = self.journal.state()
        if version in state.retired:
            return "retired"
        if version in state.promoted:
            return "superseded"
        if version not in state.mentioned:
            # Registered before the journal existed: the old rollback removed a version
            # from the alias history, so one outside it was rolled back (or never made it).
            history = self._alias_history_or_empty()
            return "superseded" if version in history else "retired"
        return "stranded"

    def retired_reason(self, version: str) -> str:
        return self.journal.state().retired.get(
            version, "rolled back before this registry kept a journal"
        )

    def verified(self, version: str) -> bool:
        """Whether ``version`` passed its post-promotion check (versions promoted before
        the journal existed passed the check of their day)."""
        state = self.journal.state()
        return version in state.verified or version not in state.mentioned

    def last_good(self, exclude: tuple[str, ...] = ()) -> ModelCard | None:
        """The most recent production version that passed its post-promotion check, is not
        retired and whose files still verify: what to serve when the alias is lost."""
        state = self.journal.state()
        legacy = [v for v in self._alias_history_or_empty() if v not in state.mentioned]
        for version in [*reversed(state.verified), *reversed(legacy)]:
            if version in exclude or version in state.retired:
                continue
            try:
                return self.verify(version)
            except RegistryError:
                continue
        return None

    def retire(self, version: str, reason: str) -> ModelCard | None:
        """Never serve or redeploy ``version`` again; if it is production, production goes
        back to the newest earlier good version (none: no production). Recorded first, so
        a kill before the alias moves is finished by :meth:`recover`. Returns production."""
        with self.lock():
            self.journal.append(RETIRED, version, reason=reason)
            return self._settle_alias()

    def _settle_alias(self) -> ModelCard | None:
        """Move the alias off a retired version, to the newest good one in its history."""
        alias = self._alias()
        current = alias["version"]
        retired = self.journal.state().retired
        if current is None or current not in retired:
            return self.card(current) if current else None
        history = [v for v in alias["history"] if v not in retired]
        target = None
        for candidate in reversed(history):
            with contextlib.suppress(RegistryError):
                target = self.verify(candidate)
                break
        self._write_alias(target.version if target else None, history)
        log.warning(
            "production moved off retired %s to %s", current, target.version if target else "none"
        )
        return target

    def rollback(self) -> ModelCard:
        """Move ``production`` back to the version it pointed at before the current one;
        with a corrupt alias, restore production to the last good version instead."""
        with self.lock():
            try:
                alias = self._alias()
            except RegistryError:
                return self._restore()
            current = alias["version"]
            retired = self.journal.state().retired
            earlier = [v for v in alias["history"] if v != current and v not in retired]
            if current is None or not earlier:
                raise RegistryError("nothing to roll back to: production has no earlier version")
            self.verify(earlier[-1])
            self.journal.append(RETIRED, current, reason="rolled back by `flywheel rollback`")
            card = self._settle_alias()
        assert card is not None
        return card

    def _restore(self) -> ModelCard:
        good = self.last_good()
        if good is None:
            raise RegistryError(
                f"{self.alias_path} is corrupt and no earlier good version verifies; "
                "run the pipeline to deploy a new model"
            )
        state = self.journal.state()
        history = [v for v in state.verified if v not in state.retired] or [good.version]
        self._write_alias(good.version, [*(v for v in history if v != good.version), good.version])
        self.journal.append(PROMOTED, good.version, previous=None, restored=True)
        log.warning("restored %s from the journal: production is %s", self.alias_path, good.version)
        return good

    def recover(self) -> list[str]:
        """Finish what a kill interrupted: clean leftovers, move the alias off a version
        retired a moment before the kill. Call under the lock; returns what it did."""
        done = [f"removed {p.name}" for p in self.clean_leftovers()]
        current = self._alias()["version"]
        if current is not None and current in self.journal.state().retired:
            target = self._settle_alias()
            done.append(
                f"finished retiring {current}: production is {target.version if target else 'none'}"
            )
        return done

    def _alias_history_or_empty(self) -> list[str]:
        try:
            alias = json.loads(self.alias_path.read_text())
            return [str(v) for v in alias["history"] if _VERSION.match(str(v))]
        except (OSError, ValueError, KeyError, TypeError):
            return []
