"""Who is calling, and may they: authentication and the privilege check, as Milvus does them.

`Guard.authenticate(header, peer)` reads the `authorization` value pymilvus sends
(base64 of `user:password`) and returns the user, or raises `AuthError`. A verified
header is remembered with the hash it was checked against, so only the first call of a
connection pays for bcrypt; a password change or deletion makes the memory stale.
Failed attempts are counted per (peer host, user): past the limit the pair is refused,
without a bcrypt check, until the window passes.

`Guard.authorize(user, method, request, header_db)` applies `privileges.RPC_NEEDS`: root
and the admin role pass; otherwise a role of the user (or `public`) must hold a grant
that matches the database, the object name and the privilege (itself, `All`, or a group
holding it). Decisions are cached until the catalog's version moves, so a revoke takes
effect on the next request.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import threading
from collections.abc import Callable
from typing import Any

from shoal.security.catalog import Grant, SecurityCatalog
from shoal.security.limits import FailedLogins
from shoal.security.privileges import (
    ADMIN_ROLE,
    ALL,
    ANY,
    CLUSTER_LEVEL,
    PUBLIC_ROLE,
    RELATED,
    ROOT_USER,
    RPC_NEEDS,
    Need,
)

DEFAULT_DB = "default"
current_user: contextvars.ContextVar[str] = contextvars.ContextVar("shoal_user", default="")
_CACHE_MAX = 10_000


class AuthError(Exception):
    """`kind` is "unauthenticated" or "denied"; the message is Milvus's wording."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _unauthenticated(message: str) -> AuthError:
    return AuthError("unauthenticated", message)


def parse_header(header: str) -> tuple[str, str]:
    """base64(`user:password`) → (user, password); raises AuthError when malformed."""
    try:
        raw = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _unauthenticated("invalid token format") from None
    if ":" not in raw:
        raise _unauthenticated("auth check failure, please check api key is correct")
    user, password = raw.split(":", 1)
    return user, password


class Guard:
    def __init__(self, catalog: SecurityCatalog, failed: FailedLogins) -> None:
        self.catalog = catalog
        self._failed = failed
        self._verified: dict[str, tuple[str, str]] = {}  # header → (user, hash it matched)
        self._decisions: dict[tuple[str, ...], bool] = {}
        self._version = -1
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ authentication

    def authenticate(self, header: str | None, peer: str | Callable[[], str]) -> str:
        """`peer` (gRPC's `ipv4:host:port`) may be a callable: it is asked only on a cache miss."""
        if not header:
            raise _unauthenticated("missing authorization in header")
        hit = self._verified.get(header)
        if hit is not None and self.catalog.hash_of(hit[0]) == hit[1]:
            return hit[0]
        user, password = parse_header(header)
        who = (_host(peer() if callable(peer) else peer), user)
        wait = self._failed.blocked(who)
        if wait:
            raise _unauthenticated(
                f"too many failed login attempts for user {user}; try again in {wait:.0f} s"
            )
        hashed = self.catalog.hash_of(user)
        if hashed is None or not self.catalog.verify_password(user, password):
            self._failed.record(who)
            raise _unauthenticated("auth check failure, please check username and password are correct")
        self._failed.clear(who)
        with self._lock:
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[header] = (user, hashed)
        return user

    # ------------------------------------------------------------------ authorization

    def authorize(self, user: str, method: str, request: Any, header_db: str) -> None:
        need = RPC_NEEDS.get(method)
        if need is None or user == ROOT_USER:
            return
        roles = self.catalog.roles_of(user)
        if ADMIN_ROLE in roles:
            return
        roles = [*roles, PUBLIC_ROLE]
        db = header_db or (getattr(request, "db_name", "") if need.name_field != "db_name" else "") or DEFAULT_DB
        name = _field(request, need.name_field) if need.name_field else ANY
        if need.object_type == "User" and name == user:
            return  # one's own password and roles
        if method == "SelectGrant" and request.entity.role.name in roles:
            return
        names = [name]
        if need.names_field:
            names = [str(n) for n in getattr(request, need.names_field)] or [ANY]
        if all(self._permitted(roles, need, db, n or ANY) for n in names):
            return
        raise AuthError(
            "denied", f"Privilege{need.privilege}: permission deny to {user} in the `{db}` database"
        )

    def _permitted(self, roles: list[str], need: Need, db: str, name: str) -> bool:
        key = (*roles, need.object_type, need.privilege, db, name)
        version = self.catalog.version  # read first: a change after it must not be cached as current
        with self._lock:
            if self._version != version:
                self._decisions.clear()
                self._version = version
            known = self._decisions.get(key)
        if known is not None:
            return known
        allowed = any(self._matches(g, need, db, name) for role in roles for g in self.catalog.grants(role))
        with self._lock:
            if self._version == version == self.catalog.version:
                if len(self._decisions) >= _CACHE_MAX:
                    self._decisions.clear()
                self._decisions[key] = allowed
        return allowed

    def _matches(self, g: Grant, need: Need, db: str, name: str) -> bool:
        if g.object_name not in (ANY, name):
            return False
        if g.db_name not in (ANY, db) and need.privilege not in CLUSTER_LEVEL:  # cluster ones span databases
            return False
        if g.privilege == need.privilege or need.privilege in RELATED.get(g.privilege, ()):
            return g.object_type in (need.object_type, "Global")  # a Global grant covers every object
        return g.privilege == ALL or need.privilege in self.catalog.group_privileges(g.privilege)


def _field(request: Any, name: str) -> str:
    """The object's name; a message field (`user: UserEntity`) names it by its first field."""
    value = getattr(request, name, "")
    if hasattr(value, "DESCRIPTOR"):
        first = value.DESCRIPTOR.fields_by_number.get(1)
        value = getattr(value, first.name, "") if first is not None else ""
    return str(value) or ANY


def _host(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` → `127.0.0.1`; `ipv6:[::1]:5000` → `[::1]`."""
    body = peer.split(":", 1)[1] if ":" in peer else peer
    return body.rsplit(":", 1)[0] if ":" in body else body


def http_header(value: str | None) -> str | None:
    """An HTTP `Authorization` value → the gRPC form: `Bearer user:password` (Milvus's REST
    form) or `Basic base64(user:password)`; None for anything else."""
    scheme, _, credential = (value or "").partition(" ")
    if scheme.lower() == "bearer" and credential:
        return base64.b64encode(credential.encode()).decode()
    if scheme.lower() == "basic" and credential:
        return credential
    return None


def http_authenticator(guard: Guard) -> Callable[[str | None], bool]:
    """For the HTTP port's non-REST paths: is this `Authorization` value a valid user?"""

    def check(value: str | None) -> bool:
        try:
            guard.authenticate(http_header(value), "http")
        except AuthError:
            return False
        return True

    return check


def http_admin_check(guard: Guard) -> Callable[[str | None], int]:
    """For the backup admin endpoints: 0 when the caller is root or holds the admin role,
    else the HTTP status that refuses them (401 not authenticated, 403 not an admin)."""

    def check(value: str | None) -> int:
        try:
            user = guard.authenticate(http_header(value), "http")
        except AuthError:
            return 401
        return 0 if user == ROOT_USER or ADMIN_ROLE in guard.catalog.roles_of(user) else 403

    return check
