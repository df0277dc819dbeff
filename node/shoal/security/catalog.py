"""Users, roles, grants and privilege groups: the one owner of every security rule's data.

The whole state is one small JSON document under one key of a `MetaStore` (the file
store standalone, etcd in a cluster), rewritten atomically on each change. Passwords are
kept only as bcrypt hashes (cost 10, Milvus's own); the first start creates `root` with
Milvus's default password `Milvus`, or the one the operator configured. `version` grows
on every change so callers (the guard) can cache decisions and drop them when it moves.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

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
from shoal.storage.meta_store import MetaStore

DEFAULT_ROOT_PASSWORD = "Milvus"
BCRYPT_ROUNDS = 10
_KEY = "security/state"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,254}$")
MIN_PASSWORD, MAX_PASSWORD = 6, 256


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
    """`SecurityCatalog(store, root_password=None)`; every method is thread-safe."""

    def __init__(self, store: MetaStore, root_password: str | None = None) -> None:
        self._store = store
        self._lock = threading.RLock()
        self.version = 0
        raw = store.get(_KEY)
        state = json.loads(raw) if raw else {}
        self._users: dict[str, dict[str, str]] = state.get("users", {})
        self._roles: dict[str, dict[str, str]] = state.get("roles", {})
        self._bindings: dict[str, list[str]] = state.get("bindings", {})
        self._grants: dict[tuple[str, ...], Grant] = {}
        for g in state.get("grants", []):
            grant = Grant(**g)
            self._grants[grant.key()] = grant
        self._groups: dict[str, list[str]] = state.get("groups", {})
        self._dummy = b""  # a hash to check unknown users against, made on first need
        if ROOT_USER not in self._users:
            password = root_password or DEFAULT_ROOT_PASSWORD
            check_password(password)
            self._users[ROOT_USER] = {"hash": hash_password(password), "description": ""}
            self._save()

    # ------------------------------------------------------------------ persistence

    def _save(self) -> None:
        state = {
            "users": self._users,
            "roles": self._roles,
            "bindings": self._bindings,
            "grants": [g.__dict__ for g in self._grants.values()],
            "groups": self._groups,
        }
        self._store.commit({_KEY: json.dumps(state, sort_keys=True).encode()}, ())
        self.version += 1

    # ------------------------------------------------------------------ users

    def verify_password(self, user: str, password: str) -> bool:
        entry = self._users.get(user)
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
        with self._lock:
            if user in self._users:
                raise invalid(f"user already exists: {user}")
            self._users[user] = {"hash": hashed, "description": description}
            self._save()

    def update_password(self, user: str, new_password: str) -> None:
        check_password(new_password)
        hashed = hash_password(new_password)
        with self._lock:
            self._require_user(user)
            self._users[user]["hash"] = hashed
            self._save()

    def delete_user(self, user: str) -> None:
        if user == ROOT_USER:
            raise invalid("the root user cannot be deleted")
        with self._lock:
            self._require_user(user)
            del self._users[user]
            self._bindings.pop(user, None)
            self._save()

    def hash_of(self, user: str) -> str | None:
        entry = self._users.get(user)
        return entry["hash"] if entry is not None else None

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._users)

    def has_user(self, user: str) -> bool:
        return user in self._users

    def _require_user(self, user: str) -> None:
        if user not in self._users:
            raise invalid(f"user not found: {user}")

    def description(self, user: str) -> str:
        return self._users.get(user, {}).get("description", "")

    # ------------------------------------------------------------------ roles

    def roles(self) -> list[str]:
        with self._lock:
            return [*BUILTIN_ROLES, *sorted(self._roles)]

    def has_role(self, role: str) -> bool:
        return role in BUILTIN_ROLES or role in self._roles

    def role_description(self, role: str) -> str:
        return self._roles.get(role, {}).get("description", "")

    def create_role(self, role: str, description: str = "") -> None:
        check_role_name(role)
        with self._lock:
            if self.has_role(role):
                raise invalid(f"role [name:\"{role}\"] already exists")
            self._roles[role] = {"description": description}
            self._save()

    def drop_role(self, role: str, force: bool = False) -> None:
        if role in BUILTIN_ROLES:
            raise invalid(f"the built-in role {role} cannot be dropped")
        with self._lock:
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
            self._save()

    def _require_role(self, role: str) -> None:
        if not self.has_role(role):
            raise invalid(f"role not found: {role}")

    def roles_of(self, user: str) -> list[str]:
        """The roles bound to `user` (root is always admin; public is implied, not listed)."""
        with self._lock:
            bound = list(self._bindings.get(user, ()))
        if user == ROOT_USER and ADMIN_ROLE not in bound:
            bound.insert(0, ADMIN_ROLE)
        return bound

    def users_of(self, role: str) -> list[str]:
        with self._lock:
            out = [u for u, roles in self._bindings.items() if role in roles]
        if role == ADMIN_ROLE and ROOT_USER not in out:
            out.insert(0, ROOT_USER)
        return sorted(out)

    def bind(self, user: str, role: str) -> None:
        with self._lock:
            self._require_user(user)
            self._require_role(role)
            roles = self._bindings.setdefault(user, [])
            if role not in roles and role != PUBLIC_ROLE:
                roles.append(role)
                self._save()

    def unbind(self, user: str, role: str) -> None:
        with self._lock:
            self._require_user(user)
            self._require_role(role)
            roles = self._bindings.get(user, [])
            if role in roles:
                roles.remove(role)
                self._save()

    # ------------------------------------------------------------------ grants

    def known_privilege(self, name: str) -> bool:
        return name == ALL or name in PRIVILEGES or name in BUILTIN_GROUP_NAMES or name in self._groups

    def is_group(self, name: str) -> bool:
        return name == ALL or name in BUILTIN_GROUPS or name in self._groups

    def group_privileges(self, name: str) -> frozenset[str]:
        if name in BUILTIN_GROUPS:
            return BUILTIN_GROUPS[name]
        with self._lock:
            return frozenset(self._groups.get(name, ()))

    def grant(self, g: Grant) -> None:
        self._check_grant(g)
        with self._lock:
            self._require_role(g.role)
            if g.key() not in self._grants:
                self._grants[g.key()] = g
                self._save()

    def revoke(self, g: Grant) -> None:
        self._check_grant(g)
        with self._lock:
            self._require_role(g.role)
            if self._grants.pop(g.key(), None) is not None:
                self._save()

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
        with self._lock:
            return [g for g in self._grants.values() if role is None or g.role == role]

    # ------------------------------------------------------------------ privilege groups

    def groups(self) -> dict[str, list[str]]:
        """Built-in and custom groups, by name."""
        out = {name: sorted(privs) for name, privs in BUILTIN_GROUPS.items()}
        with self._lock:
            out.update({name: list(privs) for name, privs in self._groups.items()})
        return out

    def create_group(self, name: str) -> None:
        check_role_name(name)
        with self._lock:
            if name in BUILTIN_GROUP_NAMES or name in PRIVILEGES or name == ALL or name in self._groups:
                raise invalid(f"privilege group [{name}] already exists or is a built-in name")
            self._groups[name] = []
            self._save()

    def drop_group(self, name: str) -> None:
        with self._lock:
            if name in BUILTIN_GROUPS:
                raise invalid(f"the built-in privilege group {name} cannot be dropped")
            if any(g.privilege == name for g in self._grants.values()):
                raise invalid(f"privilege group [{name}] is granted to a role; revoke it first")
            if self._groups.pop(name, None) is not None:
                self._save()

    def change_group(self, name: str, privileges: Iterable[str], add: bool) -> None:
        privs = list(privileges)
        for p in privs:
            if p not in PRIVILEGES:
                raise invalid(f"not found the privilege name [{p}]")
        with self._lock:
            if name in BUILTIN_GROUPS:
                raise invalid(f"the built-in privilege group {name} cannot be changed")
            if name not in self._groups:
                raise ShoalError(Code.PARAMETER_INVALID, f"privilege group [{name}] does not exist")
            current = self._groups[name]
            for p in privs:
                if add and p not in current:
                    current.append(p)
                elif not add and p in current:
                    current.remove(p)
            self._save()

