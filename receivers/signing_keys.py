"""Entra ID's signing keys, fetched again when Entra rolls them.

Entra signs tokens with keys it rotates (every few weeks, at once in an emergency): a token
that names a key we do not hold means new keys are out. The keys are loaded when the app is
built (a failure then is a :class:`~engine.errors.ConfigError`); later, a token with an
unknown key id makes a background thread load them again from the same ``jwks_url`` or
``jwks_file``, at most once per ``min_interval_s``: no request waits on the network, and a
stream of made-up key ids costs one fetch per interval. That token is refused (Azure Monitor
retries); the next ones are checked against the new keys. A failed fetch keeps the keys held
and is logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import jwt
import structlog

from engine.errors import ConfigError

__all__ = ["SigningKeys"]

log = structlog.get_logger("remediator.auth")


class SigningKeys:
    """The keys by id; ``get(kid)`` is the request path's only call (a dict look-up)."""

    def __init__(
        self,
        load: Callable[[], jwt.PyJWKSet],
        *,
        min_interval_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._keys = _by_id(load())
        self._loaded_at = clock()
        self._lock = threading.Lock()
        self._fetch: threading.Thread | None = None

    def get(self, kid: object) -> jwt.PyJWK | None:
        """The key named ``kid``; None (and a fetch of the keys, if one is due) when unknown."""
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            self._fetch_if_due()
        return key

    def wait(self, timeout: float = 30.0) -> None:
        """Return once a fetch in progress has ended (or ``timeout`` passed)."""
        fetch = self._fetch
        if fetch is not None:
            fetch.join(timeout)

    def _fetch_if_due(self) -> None:
        with self._lock:
            if self._fetch is not None or self._clock() - self._loaded_at < self._min_interval_s:
                return
            self._loaded_at = self._clock()
            self._fetch = threading.Thread(target=self._refresh, name="entra-keys", daemon=True)
            self._fetch.start()

    def _refresh(self) -> None:
        try:
            self._keys = _by_id(self._load())
            log.info("entra signing keys fetched again", keys=len(self._keys))
        except ConfigError as exc:
            log.warning("entra signing keys not fetched again; keeping the old ones",
                        error=str(exc))
        finally:
            with self._lock:
                self._fetch = None


def _by_id(keys: jwt.PyJWKSet) -> dict[str, jwt.PyJWK]:
    return {key.key_id: key for key in keys.keys if key.key_id}
