"""How every command reaches a running Remediator: one ``--url``, one ``--key``, the same
environment variables everywhere (docs/CLI.md, "Reaching a server").

- ``--url`` / ``REMEDIATOR_URL`` (default ``http://127.0.0.1:8080``): the server;
- ``--key`` / ``REMEDIATOR_ADMIN_KEY``: an admin key, one of the server's
  ``REMEDIATOR_ADMIN_KEYS`` (``/api``: operating commands, reading events back);
- ``REMEDIATOR_API_KEY``: a receiver key, one of the server's ``REMEDIATOR_API_KEYS`` (or of a
  receiver's own keys), for the commands that post webhooks (``send-test``, ``drill``).

The server's variables are plural (a list, for rotation); a client holds one key. A 401 says
which flag or variable to set, and which of the server's lists it must be in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import click
import httpx
import msgspec

from cli._db import db_option, shown
from cli._exits import Refused, Usage, fail
from engine.errors import StorageError
from engine.store.db import Database

__all__ = [
    "ADMIN_KEY_ENV",
    "API_KEY_ENV",
    "DEFAULT_URL",
    "MAX_ANSWER_BYTES",
    "URL_ENV",
    "Answer",
    "BadAnswer",
    "Reply",
    "Target",
    "admin_refused",
    "call",
    "fetch",
    "receiver_refused",
    "run",
    "where",
    "with_db",
]

URL_ENV = "REMEDIATOR_URL"
ADMIN_KEY_ENV = "REMEDIATOR_ADMIN_KEY"
API_KEY_ENV = "REMEDIATOR_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The most of one answer a command reads (a page of 500 audit records is a few MB): a
server that sends more is not Remediator, and the command stops reading."""


class BadAnswer(httpx.HTTPError):
    """The server's answer was too large, did not end in time, or (:meth:`Answer.json`) is
    not the JSON asked for."""


class Answer(msgspec.Struct, frozen=True):
    """A whole answer, read within its bounds (:func:`fetch`)."""

    status_code: int
    reason_phrase: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; :class:`BadAnswer` if it is not (or nests past any sense)."""
        try:
            return msgspec.json.decode(self.content)
        except (ValueError, RecursionError):
            shown = self.content[:100].decode("utf-8", errors="replace")
            raise BadAnswer(f"answered {self.status_code} with something that is not JSON: "
                            f"{shown!r}") from None

    def object(self) -> dict[str, Any]:
        """The body as a JSON object; :class:`BadAnswer` otherwise."""
        found = self.json()
        if not isinstance(found, dict):
            raise BadAnswer(f"answered {self.status_code} with JSON that is not an object: "
                            f"{type(found).__name__}")
        return found


def fetch(client: httpx.Client, method: str, url: str, *, within: float,
          limit: int = MAX_ANSWER_BYTES, **kwargs: Any) -> Answer:
    """One request, its answer read whole within ``within`` seconds and ``limit`` bytes
    (decoded: a compressed bomb counts as what it inflates to); :class:`BadAnswer` past
    either, every other failure an ``httpx.HTTPError``. Redirects are not followed: the key
    goes to the server named, nowhere else."""
    deadline = time.monotonic() + within
    with client.stream(method, url, timeout=within, follow_redirects=False,
                       **kwargs) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise BadAnswer(f"the answer is larger than {limit // (1024 * 1024)} MiB: "
                                "not a Remediator server?")
            if time.monotonic() > deadline:
                raise BadAnswer(f"no complete answer within {within:g} s")
        return Answer(response.status_code, response.reason_phrase, bytes(body))


def admin_refused(url: str) -> str:
    """What a 401 from ``/api`` means, and what to do about it."""
    return (f"{url} refused the admin key (401): pass --key or set {ADMIN_KEY_ENV} to one of "
            "the server's REMEDIATOR_ADMIN_KEYS")


def receiver_refused(url: str) -> str:
    """What a 401 from a receiver means, and what to do about it."""
    return (f"{url} refused the receiver credential (401): pass --key or set {API_KEY_ENV} to "
            "one of the server's REMEDIATOR_API_KEYS (or the receiver's own "
            "REMEDIATOR_RECEIVER_KEYS_<NAME>), or --basic user:password of its "
            "REMEDIATOR_BASIC_USERS")


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """Where a command acts: a server (``url``, ``key``) or a database file (``db``)."""

    url: str = DEFAULT_URL
    key: str = ""
    db: str = ""
    timeout: float = 30.0


def call(target: Target, method: str, path: str, params: Mapping[str, str] | None = None,
         *, who: str | None = None, body: Any = None) -> Reply:
    """One API request; the JSON object answered on 2xx (a :class:`Reply`), else
    :class:`Refused` with the server's words.

    The key travels in the ``x-api-key`` header (never in the URL, where logs keep it), or,
    with ``who``, as the password of HTTP basic auth whose user name the server records as
    the caller (the admin-key check is the same)."""
    if not target.key:
        raise Usage(f"no admin key: pass --key or set {ADMIN_KEY_ENV} (or use --db PATH)")
    url = target.url.rstrip("/") + path
    auth = {"auth": httpx.BasicAuth(who, target.key)} if who else {
        "headers": {"x-api-key": target.key}}
    try:
        with httpx.Client() as client:
            response = fetch(client, method, url, within=target.timeout, params=params,
                             json=body, **auth)
        if response.status_code < 300:
            return Reply(url, response.object())
    except BadAnswer as exc:
        raise Refused(f"{url}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise Refused(f"cannot reach {target.url}: {type(exc).__name__}: {exc}") from exc
    try:
        body = response.json()
    except BadAnswer:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if response.status_code == 401:
        raise Refused(admin_refused(target.url))
    if response.status_code == 400:
        raise Usage(str(detail or response.text)[:2000])
    raise Refused(str(detail)[:2000] if detail else f"{url} answered {response.status_code} "
                  f"{response.reason_phrase}")


class Reply(dict[str, Any]):
    """The JSON object a server answered: a key it lacks, or a list that is not one of
    objects, is :class:`Refused` saying so (not a traceback), so that a server that is not
    Remediator, or lies, ends the command with a sentence."""

    def __init__(self, url: str, found: dict[str, Any]) -> None:
        super().__init__(found)
        self.url = url

    def __missing__(self, key: str) -> Any:
        raise Refused(f"{self.url}: answered JSON without {key!r}: is it Remediator?")

    def rows(self, key: str) -> list[dict[str, Any]]:
        """``self[key]`` as a list of JSON objects."""
        found = self[key]
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise Refused(f"{self.url}: answered {key!r} that is not a list of objects: is it "
                          "Remediator?")
        return found


def with_db(target: Target, work: Callable[[Database], Any]) -> Any:
    """``work(db)`` on the database file of ``target``; :class:`Refused` if it cannot open."""
    try:
        db = Database(target.db)
    except StorageError as exc:
        raise Refused(f"{shown(target.db)}: {exc}") from exc
    try:
        return work(db)
    finally:
        db.close()


def run(action: Callable[[], int]) -> int:
    """Map our two failures to exit codes, printing the reason."""
    try:
        return action()
    except (Usage, Refused) as exc:
        return fail("remediator", exc)


def where(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that reads or operates the engine shares: where to act."""
    command = db_option(default=None, exists=True, dest="db",
                        help="Act on this database directly (a stopped service).")(command)
    command = click.option("--key", "key", envvar=ADMIN_KEY_ENV, default=None,
                           help=f"Admin API key (default: ${ADMIN_KEY_ENV}).")(command)
    return click.option("--url", envvar=URL_ENV, default=DEFAULT_URL, show_default=True,
                        help=f"The running server (default: ${URL_ENV}).")(command)
