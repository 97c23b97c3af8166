"""Password hashes of the named admin users (``[http.users]``): make one, check one.

A hash reads ``scrypt$N$r$p$SALT$HASH`` (salt and hash in base64): scrypt (RFC 7914) with a
16-byte random salt and a 32-byte key. ``remediator hash-password`` makes one with
:data:`DEFAULT_COST`; the cost travels with the hash, so it can be raised later without
breaking older hashes (engine/config.py bounds what a configuration may ask, so that a check
never takes long). A check compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

__all__ = ["DEFAULT_COST", "cost_of", "dummy", "hash_password", "verify_password"]

DEFAULT_COST = (2**15, 8, 1)
"""scrypt's N, r, p for new hashes: 32 MiB and about 0.1 s per check on one core."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, cost: tuple[int, int, int] = DEFAULT_COST,
                  salt: bytes | None = None) -> str:
    """The ``scrypt$N$r$p$SALT$HASH`` of ``password`` (a fresh random salt unless given)."""
    n, r, p = cost
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                         maxmem=_maxmem(n, r))
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _maxmem(n: int, r: int) -> int:
    return 128 * r * n + 2 * 1024 * 1024


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (False for a hash that does
    not parse: engine/config.py refuses those at start)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        expected = base64.b64decode(key, validate=True)
        given = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt, validate=True),
                               n=int(n), r=int(r), p=int(p), dklen=len(expected),
                               maxmem=_maxmem(int(n), int(r)))
    except (ValueError, binascii.Error):
        return False
    return scheme == "scrypt" and hmac.compare_digest(given, expected)


def cost_of(stored: str) -> tuple[int, int, int]:
    """The ``(N, r, p)`` a hash was made with (engine/config.py checked its format)."""
    _, n, r, p, _, _ = stored.split("$")
    return int(n), int(r), int(p)


@functools.cache
def dummy(cost: tuple[int, int, int] = DEFAULT_COST) -> str:
    """A hash of ``cost`` to check against when the user name is unknown, so that the time
    taken does not tell which names exist (made once per cost, on first use)."""
    return hash_password("not a password", cost=cost, salt=b"\0" * 16)
