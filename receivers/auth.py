"""Who may call: API keys, HTTP basic auth and Entra ID bearer tokens, checked per receiver.

An :class:`Authenticator` is built once from the settings when the app starts; the Entra signing
keys are loaded then (from ``jwks_file`` or ``jwks_url``) and fetched again, off the request path,
when Entra rolls them (:mod:`receivers.signing_keys`).
Every refusal raises :class:`Unauthorized`, whose answer never says which part was wrong.
Secrets are compared in constant time, against every configured value (several keys at once
allow rotation).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from engine.config import RECEIVERS, RESERVED_ACTOR, EntraSettings, Secret, Settings
from engine.errors import ConfigError
from receivers.passwords import DEFAULT_COST, cost_of, dummy, verify_password
from receivers.signing_keys import SigningKeys

__all__ = [
    "ADMIN",
    "Authenticator",
    "Caller",
    "Unauthorized",
    "admin_guard",
    "load_jwks",
]

_VERIFIED_MAX = 1024
"""Named users' logins remembered as verified (the oldest forgotten first)."""

ADMIN = "admin"
"""The name under which the management endpoints (``/api/...``) are authenticated."""


class Unauthorized(Exception):
    """The request carries no valid credentials; ``challenges`` feed ``WWW-Authenticate``."""

    def __init__(self, challenges: tuple[str, ...]) -> None:
        super().__init__("unauthorized")
        self.challenges = challenges


class Caller(msgspec.Struct, frozen=True):
    """Who was let in, for the log line: the method and a non-secret name."""

    method: str
    name: str


def load_jwks(entra: EntraSettings) -> jwt.PyJWKSet:
    """The signing keys of Entra ID, from ``jwks_file`` or ``jwks_url``.

    Raises :class:`ConfigError` naming the source when the keys cannot be loaded.
    """
    source = entra.jwks_file or entra.jwks_url
    try:
        if entra.jwks_file:
            data = json.loads(Path(entra.jwks_file).read_text())
        elif entra.jwks_url:
            response = httpx.get(entra.jwks_url, timeout=10.0)
            response.raise_for_status()
            data = response.json()
        else:
            raise ConfigError("entra: set jwks_file or jwks_url")
        keys = jwt.PyJWKSet.from_dict(data)
    except (OSError, ValueError, httpx.HTTPError) as exc:
        raise ConfigError(f"entra: cannot load signing keys from {source}: {exc}") from exc
    except jwt.PyJWTError as exc:
        raise ConfigError(f"entra: no usable signing key in {source}: {exc}") from exc
    return keys


def _matches(given: str, secrets: tuple[Secret, ...] | list[Secret]) -> bool:
    """Constant-time comparison against every secret (no early exit that times the match)."""
    if not given:
        return False
    given_bytes = given.encode()
    found = False
    for secret in secrets:
        # An empty configured secret (an unset env: value) must never match anything.
        found |= bool(secret) and hmac.compare_digest(given_bytes, secret.reveal().encode())
    return found


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


_HIDDEN = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
"""What a label shown as the caller must not hold: control characters (a terminal's escape
sequences), bidi overrides and invisible ones, private-use, surrogates, line separators."""


def _printable(label: str) -> str:
    """``label`` without the characters of :data:`_HIDDEN`: the shared key's user name is
    free text, recorded as the actor in the audit log and shown on pages and terminals."""
    return "".join(c for c in label if unicodedata.category(c) not in _HIDDEN)


def _bearer_token(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Authenticator:
    """Checks the credentials of one request against what the named receiver takes.

    Built once per app from the :class:`~engine.config.Settings`; holds no per-request state.
    """

    def __init__(
        self,
        settings: Settings,
        jwks: jwt.PyJWKSet | None = None,
        *,
        jwks_refresh_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``jwks``: the signing keys (else loaded from ``[entra]``, and loaded again when a
        token names a key not held, at most every ``jwks_refresh_s`` by ``clock``)."""
        self._settings = settings
        self._keys: SigningKeys | None = None
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, str] = {}
        self._verified_lock = threading.Lock()  # the checks run on several threads
        self.hash_limiter: Any = None  # anyio.CapacityLimiter, made in the loop on first use
        # An unknown name is checked at the dearest configured user's cost (a cheaper dummy
        # would tell the names apart by time), made now so the first takes no longer.
        self._dummy_cost = max((cost_of(s.reveal()) for s in settings.http.users.values()),
                               key=lambda c: (c[0] * c[1] * c[2], c), default=DEFAULT_COST)
        if settings.http.users:
            dummy(self._dummy_cost)
        entra = settings.entra
        if jwks is not None:
            self._keys = SigningKeys(lambda: jwks, min_interval_s=jwks_refresh_s, clock=clock)
        elif entra is not None:
            self._keys = SigningKeys(lambda: load_jwks(entra), min_interval_s=jwks_refresh_s,
                                     clock=clock)

    @property
    def signing_keys(self) -> SigningKeys | None:
        return self._keys

    def problems(self) -> list[str]:
        """Why some endpoints can accept no caller at all (logged as warnings at start)."""
        out = []
        s = self._settings
        if not (s.api_keys or s.admin_keys or s.basic_users or s.entra or s.http.users):
            out.append("no api_keys, admin_keys, basic_users or entra configured: "
                       "every endpoint but /health and /ready refuses all requests")
            return out
        for name in RECEIVERS:
            if not self._usable(name, s.receiver(name).auth):
                out.append(f"receiver /{name} has no usable credentials for "
                           f"{list(s.receiver(name).auth)}: it refuses all requests")
        if not s.admin_keys and not s.http.users:
            out.append("no admin_keys configured: /api refuses all requests")
        return out

    def _usable(self, name: str, methods: tuple[str, ...]) -> bool:
        s = self._settings
        return (("api_key" in methods and bool(s.receiver_keys(name)))
                or ("basic" in methods and bool(s.basic_users))
                or ("entra" in methods and self._keys is not None and s.entra is not None))

    def key_scope_warnings(self) -> list[str]:
        """Keys that open more than they should (logged as warnings at start): one key that
        opens several receivers (a key leaked from an Azure Monitor webhook URL would open
        /databricks-monitor too), or a receiver key that is also an admin key. Never a key's
        value: where it is configured."""
        s = self._settings
        opened: dict[str, list[str]] = {}
        where: dict[str, str] = {}
        for name in RECEIVERS:
            own = s.receiver(name).api_keys
            for index, key in enumerate(s.receiver_keys(name)):
                if not key:
                    continue
                value = key.reveal()
                opened.setdefault(value, []).append(name)
                where.setdefault(value, f"receivers.{name}.api_keys[{index}]" if own is not None
                                 else f"api_keys[{index}]")
        admin = {key.reveal() for key in s.admin_keys if key}
        out = []
        for value, names in opened.items():
            if len(names) > 1:
                endpoints = ", ".join(f"/{n}" for n in names)
                out.append(
                    f"{where[value]} opens {len(names)} receivers ({endpoints}): a key leaked "
                    "from one sender opens them all; give each receiver its own keys "
                    "([receivers.<name>] api_keys, or REMEDIATOR_RECEIVER_KEYS_<NAME>)")
            if value in admin:
                out.append(f"{where[value]} is also an admin key: a receiver's key opens /api")
        return out

    def check(self, name: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Caller:
        """Let the request in for receiver ``name`` (or :data:`ADMIN`), or raise Unauthorized.

        Receivers take what ``Settings.receiver(name).auth`` lists: ``api_key`` (``x-api-key``
        header or ``api_key`` query parameter, one of the receiver's own ``api_keys``, else of
        the global ``api_keys``), ``basic`` (one of
        ``basic_users``) and ``entra`` (a bearer token). The management endpoints take an admin
        key in ``x-api-key`` or as the password of basic auth with any user name (so that a
        browser can log in; the name is a label), or a named user's name and password
        (``[http.users]``).
        """
        if name == ADMIN:
            caller = self._check_admin(headers)
            if caller is None:
                raise Unauthorized(('Basic realm="remediator-admin"',))
            return caller
        methods = self._settings.receiver(name).auth
        caller = None
        if "api_key" in methods:
            caller = self._check_api_key(name, headers, query)
        if caller is None and "basic" in methods:
            caller = self._check_basic(headers)
        if caller is None and "entra" in methods:
            caller = self._check_entra(headers)
        if caller is None:
            raise Unauthorized(self._challenges(methods))
        return caller

    @staticmethod
    def _challenges(methods: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        if "basic" in methods:
            out.append('Basic realm="remediator"')
        if "entra" in methods:
            out.append('Bearer realm="remediator"')
        if "api_key" in methods:
            out.append('ApiKey realm="remediator", header="x-api-key", query="api_key"')
        return tuple(out)

    def _check_admin(self, headers: Mapping[str, str]) -> Caller | None:
        keys, users = self._settings.admin_keys, self._settings.http.users
        given = headers.get("x-api-key")
        if given is not None and _matches(given, keys):
            return Caller("admin_key", "admin")
        basic = _basic_credentials(headers)
        if basic is None:
            return None
        if _matches(basic[1], keys):
            # The shared key: the user name is only a label. Beside named users it says so,
            # so that the audit log never passes it off as a person who logged in.
            label = _printable(basic[0])[:64]
            # "engine" is the engine's own actor in the audit log: never a person's label.
            marked = users or label.strip().lower() == RESERVED_ACTOR
            return Caller("admin_basic", f"{label} (admin key)" if marked else label)
        if users and self._named_user(*basic):
            return Caller("admin_user", basic[0])
        return None

    def hashing_needed(self, headers: Mapping[str, str]) -> bool:
        """Whether checking this request means computing a password hash (a named user's
        basic auth not verified yet): :func:`admin_guard` then checks it off the event loop."""
        basic = _basic_credentials(headers)
        users = self._settings.http.users
        # The shared key as password costs no hash: it never queues behind made-up names.
        return (basic is not None and bool(users)
                and self._verified_key(*basic) not in self._verified
                and not _matches(basic[1], self._settings.admin_keys))

    def _verified_key(self, user: str, password: str) -> bytes:
        """A process-keyed HMAC of the credentials: what the cache of verified logins holds
        (never the password itself)."""
        return hmac.new(self._cache_key, f"{user}\0{password}".encode(), "sha256").digest()

    def _named_user(self, user: str, password: str) -> bool:
        """``user`` is a named admin user and ``password`` theirs. A success is remembered
        (bounded, by HMAC) so that the dashboard's requests do not pay the hash each time;
        an unknown name is checked against a dummy hash (the time does not tell names)."""
        users = self._settings.http.users
        key = self._verified_key(user, password)
        if self._verified.get(key) == user:
            return True
        stored = users.get(user)
        ok = verify_password(password, stored.reveal() if stored is not None
                             else dummy(self._dummy_cost))
        if ok and stored is not None:
            with self._verified_lock:
                if len(self._verified) >= _VERIFIED_MAX:
                    self._verified.pop(next(iter(self._verified)))
                self._verified[key] = user
            return True
        return False

    def _check_api_key(self, name: str, headers: Mapping[str, str],
                       query: Mapping[str, str]) -> Caller | None:
        keys = self._settings.receiver_keys(name)
        if not keys:
            return None
        for given in (headers.get("x-api-key"), query.get("api_key")):
            if given is not None and _matches(given, keys):
                return Caller("api_key", "api_key")
        return None

    def _check_basic(self, headers: Mapping[str, str]) -> Caller | None:
        users = self._settings.basic_users
        basic = _basic_credentials(headers)
        if not users or basic is None:
            return None
        user, password = basic
        found = None
        # Every user is compared, so that the time taken does not tell which names exist.
        for name, secret in users.items():
            same_user = hmac.compare_digest(user.encode(), name.encode())
            same_password = hmac.compare_digest(password.encode(), secret.reveal().encode())
            if same_user and same_password and secret:
                found = name
        return Caller("basic", found) if found is not None else None

    def _check_entra(self, headers: Mapping[str, str]) -> Caller | None:
        entra = self._settings.entra
        token = _bearer_token(headers)
        if entra is None or self._keys is None or token is None:
            return None
        claims = self._verify_token(token, entra, self._keys)
        if claims is None:
            return None
        app_id = _caller_app_id(claims)
        roles = claims.get("roles") or []
        if (claims.get("tid") != entra.tenant_id
                or app_id not in entra.allowed_app_ids
                or (entra.required_role and (not isinstance(roles, list)
                                             or entra.required_role not in roles))):
            return None
        return Caller("entra", str(app_id))

    @staticmethod
    def _verify_token(
        token: str, entra: EntraSettings, keys: SigningKeys
    ) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                return None
            key = keys.get(header.get("kid"))
            if key is None:
                return None
            return jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                audience=entra.audience,
                issuer=list(entra.accepted_issuers()),
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None


def _caller_app_id(claims: dict[str, Any]) -> object:
    """``appid`` in v1 tokens, ``azp`` in v2 tokens."""
    if claims.get("ver") == "2.0":
        return claims.get("azp")
    if claims.get("ver") == "1.0":
        return claims.get("appid")
    return claims.get("appid") or claims.get("azp")


def _authenticator(connection: ASGIConnection[Any, Any, Any, Any]) -> Authenticator:
    return connection.app.state["authenticator"]


async def admin_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A Litestar guard: only admin keys (``x-api-key``, or basic auth with one as password)
    and named users (``[http.users]``).

    Async: Litestar runs a sync guard in a worker thread, a thread hop per request for a check
    that takes microseconds (the signing keys are loaded at start). A named user's password
    not verified yet takes a scrypt hash (about 0.1 s): that one runs in a worker thread, at
    most two at once, so that the event loop never waits for it."""
    authenticator = _authenticator(connection)
    headers, query = connection.headers, connection.query_params
    if not authenticator.hashing_needed(headers):
        authenticator.check(ADMIN, headers, query)
        return
    if authenticator.hash_limiter is None:
        authenticator.hash_limiter = anyio.CapacityLimiter(2)
    await anyio.to_thread.run_sync(authenticator.check, ADMIN, headers, query,
                                   limiter=authenticator.hash_limiter)
