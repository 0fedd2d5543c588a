"""Reloading the policy of a running proxy when its config file changes or on SIGHUP.

The reloader compares the file's bytes with the last version it read, every
``interval`` seconds. Comparing bytes, not the mtime, also catches a
Kubernetes ConfigMap update, which swaps the ``..data`` symlink of the volume
so that the path the proxy was given resolves to a new file. ``request()``
(wired to SIGHUP) reloads at once, even when the bytes did not change.

Only the ``policy`` section is applied in place: connections read the policy
before every decision, so the next message uses the new version and no session
is dropped. A file that does not validate is rejected with its errors logged,
each naming its field, and the running policy stays. Changes to any other
section are logged as needing a restart and are not applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import ConfigError, PolicyConfig, parse_config, read_config_file

log = logging.getLogger("imtegrity.policy")

DEFAULT_INTERVAL_SECONDS = 2.0


class PolicyReloader:
    """Watch one config file and hand each valid new policy to ``apply``."""

    def __init__(
        self,
        path: str | Path,
        apply: Callable[[PolicyConfig], None],
        interval: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        self.path = Path(path)
        self._apply = apply
        self._interval = interval
        self._wake = asyncio.Event()
        self._forced = False
        self._digest = self._read_digest()
        self._sections = _other_sections(_read_mapping(self.path))

    def request(self) -> None:
        """Reload at the next chance, even if the file did not change (for SIGHUP)."""
        self._forced = True
        self._wake.set()

    async def run(self) -> None:
        """Check the file every interval, or at once after ``request``, until cancelled."""
        log.info("watching %s for policy changes every %.1fs", self.path, self._interval)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            forced, self._forced = self._forced, False
            self.check(forced=forced)

    def check(self, *, forced: bool = False) -> bool:
        """Reload when the file changed (or when ``forced``); return True when applied."""
        digest = self._read_digest()
        if digest is None or (digest == self._digest and not forced):
            return False
        self._digest = digest
        trigger = "SIGHUP" if forced else "file change"
        try:
            data = read_config_file(self.path)
            config = parse_config(data)
        except ConfigError as error:
            log.error(
                "policy reload from %s (%s) rejected; the running policy stays: %s",
                self.path,
                trigger,
                "; ".join(error.errors),
            )
            return False
        self._warn_about_restart(data)
        self._apply(config.policy)
        policy = config.policy
        log.info(
            "policy reloaded from %s (%s): %d identities, %d content rules, "
            "%d remote-party rules, unregistered %s",
            self.path,
            trigger,
            len(policy.identities),
            len(policy.rules),
            len(policy.remote_parties),
            policy.unregistered,
        )
        return True

    def _read_digest(self) -> str | None:
        try:
            content = self.path.read_bytes()
        except OSError as error:
            log.error("failed to read %s for a policy reload: %s", self.path, error.strerror)
            return None
        return hashlib.sha256(content).hexdigest()

    def _warn_about_restart(self, data: Any) -> None:
        sections = _other_sections(data)
        changed = sorted(
            key
            for key in sections.keys() | self._sections.keys()
            if sections.get(key) != self._sections.get(key)
        )
        self._sections = sections
        if changed:
            log.warning(
                "changes to %s in %s need a restart; only policy was reloaded",
                ", ".join(changed),
                self.path,
            )


def _read_mapping(path: Path) -> Any:
    try:
        return read_config_file(path)
    except ConfigError as error:
        log.error("failed to read %s: %s", path, error)
        return None


def _other_sections(data: Any) -> dict[str, Any]:
    """Return every top-level section of raw config data except ``policy``."""
    if not isinstance(data, Mapping):
        return {}
    return {key: value for key, value in data.items() if key != "policy"}
