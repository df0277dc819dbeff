"""Users, roles, grants and privilege groups: the one owner of every security rule's data.

The whole state is one small JSON document under one key of a `MetaStore`, rewritten
atomically on each change. Passwords are kept only as bcrypt hashes (cost 10, Milvus's
own); the first start creates `root` with Milvus's default password `Milvus`, or the one
the operator configured. `version` grows on every change so callers (the guard) can cache
decisions and drop them when it moves.

Standalone: the node's file store, and this process is its only writer. Cluster
(`refresh_s` given, a `RevisionedStore`: etcd): every proxy holds a catalog over the same
key. A change re-reads the document and writes it back only if nobody wrote it since
(compare-and-swap on the key's revision, retried on a conflict), so two proxies changing
users at once lose neither change; reads use the copy in memory and look for a newer
revision at most every `refresh_s` seconds, so a change made through one proxy counts on
every other within that bound (a revoke included).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import bcrypt

from shoal.errors import Code, ShoalError, invalid
from shoal.security.privileges import (
    ADMIN_ROLE,
    ALL,
    BUILTIN_GROUP_NAMES,
    BUILTIN_GROUPS,
    BUILTIN_ROLES,
    OBJECT_TYPES,
    PRIVILEGES,
    PUBLIC_ROLE,
    ROOT_USER,
)
from shoal.storage.meta_store import MetaStore, RevisionedStore

log = logging.getLogger(__name__)
DEFAULT_ROOT_PASSWORD = "Milvus"
BCRYPT_ROUNDS = 10
_KEY = "security/state"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,254}$")
MIN_PASSWORD, MAX_PASSWORD = 6, 256
_CAS_TRIES = 20


@dataclass(frozen=True)
class Grant:
    role: str
    object_type: str
    object_name: str
    db_name: str
    privilege: str
    grantor: str = ROOT_USER

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.role, self.object_type, self.object_name, self.db_name, self.privilege)


def check_username(name: str) -> None:
    if not _NAME.match(name or ""):
        raise invalid(
            f"invalid username {name!r}: it must start with a letter, hold only letters, digits and "
            "underscores, and be at most 32 characters"
        )


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(f"invalid password length: it must be between {MIN_PASSWORD} and {MAX_PASSWORD} characters")


def check_role_name(name: str) -> None:
    if not _ROLE.match(name or ""):
        raise invalid(f"invalid role name {name!r}: letters, digits, '_' and '-', starting with a letter or '_'")


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


class SecurityCatalog:
    """`SecurityCatalog(store, root_password=None, refresh_s=None)`; every method is thread-safe.

    `refresh_s` (a cluster's proxies): `store` is shared with other writers and must be a
    `RevisionedStore`; None: this process is the store's only writer."""

    def __init__(self, store: MetaStore, root_password: str | None = None,
                 refresh_s: float | None = None) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._lock = threading.RLock()
        self._version = 0
        self._revision = -1  # shared: the store revision of the state in memory
        self._checked = 0.0
        self._dummy = b""  # a hash to check unknown users against, made on first need
        self._load(*self._read())
        if ROOT_USER not in self._users:
            password = root_password or DEFAULT_ROOT_PASSWORD
            check_password(password)
            hashed = hash_password(password)

            def add_root() -> bool:
                if ROOT_USER in self._users:
                    return False  # another proxy made it first
                self._users[ROOT_USER] = {"hash": hashed, "description": ""}
                return True

            self._change(add_root)

    @property
    def shared(self) -> bool:
        return self._refresh_s is not None

    @property
    def version(self) -> int:
        self._fresh()
        return self._version

    # ------------------------------------------------------------------ persistence

    def _read(self) -> tuple[bytes | None, int]:
        if self.shared:
            return self._revisioned().get_revision(_KEY)
        return self._store.get(_KEY), 0

    def _revisioned(self) -> RevisionedStore:
        return self._store  # type: ignore[return-value]

    def _load(self, raw: bytes | None, revision: int) -> None:
        state: dict[str, Any] = json.loads(raw) if raw else {}
        grants: dict[tuple[str, ...], Grant] = {}
        for g in state.get("grants", []):
            grant = Grant(**g)
            grants[grant.key()] = grant
        with self._lock:
            self._users: dict[str, dict[str, str]] = state.get("users", {})
            self._roles: dict[str, dict[str, str]] = state.get("roles", {})
            self._bindings: dict[str, list[str]] = state.get("bindings", {})
            self._grants: dict[tuple[str, ...], Grant] = grants
            self._groups: dict[str, list[str]] = state.get("groups", {})
            self._revision = revision
            self._version += 1

    def _fresh(self) -> None:
        """Shared: pick up another writer's change, at most every `refresh_s` seconds."""
        if self._refresh_s is None or time.monotonic() - self._checked < self._refresh_s:
            return
        with self._lock:
            if time.monotonic() - self._checked < self._refresh_s:
                return  # another thread just looked
            try:
                raw, revision = self._read()
            except Exception as e:  # the store is away: keep serving what we know
                log.warning("security catalog: cannot re-read the store (%s); using the state in memory", e)
                raw, revision = None, self._revision
            if revision != self._revision:
                self._load(raw, revision)
            self._checked = time.monotonic()

    def _change(self, apply: Callable[[], bool]) -> None:
        """Apply one change to the newest state and store it; `apply()` says whether it changed
        anything (False: nothing to write). Shared: retried on a concurrent writer's change."""
        with self._lock:
            for _ in range(_CAS_TRIES):
                if self.shared:
                    raw, revision = self._read()
                    if revision != self._revision:
                        self._load(raw, revision)
                try:
                    if not apply():
                        return
                except BaseException:
                    self._revision = -1  # the state in memory may be half changed: re-read it
                    raise
                if self._write():
                    return
                self._revision = -1
            raise ShoalError(Code.SERVICE_UNAVAILABLE, "users and roles changed concurrently too often; try again")

    def _write(self) -> bool:
        state = {
            "users": self._users,
            "roles": self._roles,
            "bindings": self._bindings,
            "grants": [g.__dict__ for g in self._grants.values()],
            "groups": self._groups,
        }
        blob = json.dumps(state, sort_keys=True).encode()
        if self.shared:
            revision = self._revisioned().put_if_revision(_KEY, blob, self._revision)
            if not revision:
                return False
            self._revision = revision
            self._checked = time.monotonic()
        else:
            self._store.commit({_KEY: blob}, ())
        self._version += 1
        return True

    # ------------------------------------------------------------------ users

    def verify_password(self, user: str, password: str) -> bool:
        entry = self._users_now().get(user)
        if entry is None:
            if not self._dummy:
                self._dummy = hash_password("not a password").encode("ascii")
            bcrypt.checkpw(b"x", self._dummy)  # the same work whether or not the user exists
            return False
        return bcrypt.checkpw(password.encode("utf-8"), entry["hash"].encode("ascii"))

    def create_user(self, user: str, password: str, description: str = "") -> None:
        check_username(user)
        check_password(password)
        hashed = hash_password(password)

        def apply() -> bool:
            if user in self._users:
                raise invalid(f"user already exists: {user}")
            self._users[user] = {"hash": hashed, "description": description}
            return True

        self._change(apply)

    def update_password(self, user: str, new_password: str) -> None:
        check_password(new_password)
        hashed = hash_password(new_password)

        def apply() -> bool:
            self._require_user(user)
            self._users[user]["hash"] = hashed
            return True

        self._change(apply)

    def delete_user(self, user: str) -> None:
        if user == ROOT_USER:
            raise invalid("the root user cannot be deleted")

        def apply() -> bool:
            self._require_user(user)
            del self._users[user]
            self._bindings.pop(user, None)
            return True

        self._change(apply)

    def _users_now(self) -> dict[str, dict[str, str]]:
        self._fresh()
        return self._users

    def hash_of(self, user: str) -> str | None:
        entry = self._users_now().get(user)
        return entry["hash"] if entry is not None else None

    def users(self) -> list[str]:
        self._fresh()
        with self._lock:
            return sorted(self._users)

    def has_user(self, user: str) -> bool:
        return user in self._users_now()

    def _require_user(self, user: str) -> None:
        if user not in self._users:
            raise invalid(f"user not found: {user}")

    def description(self, user: str) -> str:
        return self._users_now().get(user, {}).get("description", "")

    # ------------------------------------------------------------------ roles

    def roles(self) -> list[str]:
        self._fresh()
        with self._lock:
            return [*BUILTIN_ROLES, *sorted(self._roles)]

    def has_role(self, role: str) -> bool:
        self._fresh()
        return role in BUILTIN_ROLES or role in self._roles

    def role_description(self, role: str) -> str:
        self._fresh()
        return self._roles.get(role, {}).get("description", "")

    def create_role(self, role: str, description: str = "") -> None:
        check_role_name(role)

        def apply() -> bool:
            if role in BUILTIN_ROLES or role in self._roles:
                raise invalid(f"role [name:\"{role}\"] already exists")
            self._roles[role] = {"description": description}
            return True

        self._change(apply)

    def drop_role(self, role: str, force: bool = False) -> None:
        if role in BUILTIN_ROLES:
            raise invalid(f"the built-in role {role} cannot be dropped")

        def apply() -> bool:
            self._require_role(role)
            grants = [k for k, g in self._grants.items() if g.role == role]
            if grants and not force:
                raise invalid(
                    f"fail to drop the role that it has privileges; revoke them first or drop it with force: {role}"
                )
            for k in grants:
                del self._grants[k]
            for roles in self._bindings.values():
                if role in roles:
                    roles.remove(role)
            del self._roles[role]
            return True

        self._change(apply)

    def _require_role(self, role: str) -> None:
        if role not in BUILTIN_ROLES and role not in self._roles:
            raise invalid(f"role not found: {role}")

    def roles_of(self, user: str) -> list[str]:
        """The roles bound to `user` (root is always admin; public is implied, not listed)."""
        self._fresh()
        with self._lock:
            bound = list(self._bindings.get(user, ()))
        if user == ROOT_USER and ADMIN_ROLE not in bound:
            bound.insert(0, ADMIN_ROLE)
        return bound

    def users_of(self, role: str) -> list[str]:
        self._fresh()
        with self._lock:
            out = [u for u, roles in self._bindings.items() if role in roles]
        if role == ADMIN_ROLE and ROOT_USER not in out:
            out.insert(0, ROOT_USER)
        return sorted(out)

    def bind(self, user: str, role: str) -> None:
        def apply() -> bool:
            self._require_user(user)
            self._require_role(role)
            roles = self._bindings.setdefault(user, [])
            if role in roles or role == PUBLIC_ROLE:
                return False
            roles.append(role)
            return True

        self._change(apply)

    def unbind(self, user: str, role: str) -> None:
        def apply() -> bool:
            self._require_user(user)
            self._require_role(role)
            roles = self._bindings.get(user, [])
            if role not in roles:
                return False
            roles.remove(role)
            return True

        self._change(apply)

    # ------------------------------------------------------------------ grants

    def known_privilege(self, name: str) -> bool:
        self._fresh()
        return name == ALL or name in PRIVILEGES or name in BUILTIN_GROUP_NAMES or name in self._groups

    def is_group(self, name: str) -> bool:
        self._fresh()
        return name == ALL or name in BUILTIN_GROUPS or name in self._groups

    def group_privileges(self, name: str) -> frozenset[str]:
        if name in BUILTIN_GROUPS:
            return BUILTIN_GROUPS[name]
        self._fresh()
        with self._lock:
            return frozenset(self._groups.get(name, ()))

    def grant(self, g: Grant) -> None:
        self._check_grant(g)

        def apply() -> bool:
            self._require_role(g.role)
            if g.key() in self._grants:
                return False
            self._grants[g.key()] = g
            return True

        self._change(apply)

    def revoke(self, g: Grant) -> None:
        self._check_grant(g)

        def apply() -> bool:
            self._require_role(g.role)
            return self._grants.pop(g.key(), None) is not None

        self._change(apply)

    def _check_grant(self, g: Grant) -> None:
        if g.role == ADMIN_ROLE:
            raise invalid("the admin role holds every privilege; its grants cannot change")
        if g.object_type not in OBJECT_TYPES:
            raise invalid(f"invalid object type {g.object_type!r}: one of {', '.join(OBJECT_TYPES)}")
        if not self.known_privilege(g.privilege):
            raise invalid(f"not found the privilege name [{g.privilege}]")
        if not g.object_name:
            raise invalid("object name must not be empty (use '*' for every object)")

    def grants(self, role: str | None = None) -> list[Grant]:
        self._fresh()
        with self._lock:
            return [g for g in self._grants.values() if role is None or g.role == role]

    # ------------------------------------------------------------------ privilege groups

    def groups(self) -> dict[str, list[str]]:
        """Built-in and custom groups, by name."""
        out = {name: sorted(privs) for name, privs in BUILTIN_GROUPS.items()}
        self._fresh()
        with self._lock:
            out.update({name: list(privs) for name, privs in self._groups.items()})
        return out

    def create_group(self, name: str) -> None:
        check_role_name(name)

        def apply() -> bool:
            if name in BUILTIN_GROUP_NAMES or name in PRIVILEGES or name == ALL or name in self._groups:
                raise invalid(f"privilege group [{name}] already exists or is a built-in name")
            self._groups[name] = []
            return True

        self._change(apply)

    def drop_group(self, name: str) -> None:
        if name in BUILTIN_GROUPS:
            raise invalid(f"the built-in privilege group {name} cannot be dropped")

        def apply() -> bool:
            if any(g.privilege == name for g in self._grants.values()):
                raise invalid(f"privilege group [{name}] is granted to a role; revoke it first")
            return self._groups.pop(name, None) is not None

        self._change(apply)

    def change_group(self, name: str, privileges: Iterable[str], add: bool) -> None:
        privs = list(privileges)
        for p in privs:
            if p not in PRIVILEGES:
                raise invalid(f"not found the privilege name [{p}]")
        if name in BUILTIN_GROUPS:
            raise invalid(f"the built-in privilege group {name} cannot be changed")

        def apply() -> bool:
            if name not in self._groups:
                raise ShoalError(Code.PARAMETER_INVALID, f"privilege group [{name}] does not exist")
            current = self._groups[name]
            for p in privs:
                if add and p not in current:
                    current.append(p)
                elif not add and p in current:
                    current.remove(p)
            return True

        self._change(apply)
