"""Users, roles, grants and privilege groups: the RBAC RPCs pymilvus calls.

Translation only; the rules live in `shoal.security.catalog`. Passwords arrive base64
encoded (pymilvus's encoding) and are never logged. Who is calling comes from
`guard.current_user` (empty when authorization is off). v1 grants name the object
(`Global`/`Collection`/`User`/`Database` and a name); v2 grants name a database and a
collection and land on the level of the privilege (cluster, database or collection).
BackupRBAC/RestoreRBAC are not served (code 10).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.rpc.base import DEFAULT_DB, RpcBase, ok
from shoal.errors import invalid, not_supported
from shoal.security.catalog import Grant, SecurityCatalog
from shoal.security.guard import current_user
from shoal.security.privileges import (
    ADMIN_ROLE,
    ANY,
    CLUSTER_LEVEL,
    DATABASE_LEVEL,
    ROOT_USER,
    object_type_of,
)

_GRANT, _REVOKE = milvus_pb2.OperatePrivilegeType.Grant, milvus_pb2.OperatePrivilegeType.Revoke


def _password(raw: bytes | str, what: str = "password") -> str:
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(f"the {what} must be base64 encoded") from None


def _header_db(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "dbname" and value:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return ""


def _grant_entity(g: Grant) -> milvus_pb2.GrantEntity:
    return milvus_pb2.GrantEntity(
        role=milvus_pb2.RoleEntity(name=g.role),
        object=milvus_pb2.ObjectEntity(name=g.object_type),
        object_name=g.object_name,
        db_name=g.db_name,
        grantor=milvus_pb2.GrantorEntity(
            user=milvus_pb2.UserEntity(name=g.grantor), privilege=milvus_pb2.PrivilegeEntity(name=g.privilege)
        ),
    )


class SecurityRPCs(RpcBase):

    def _sec(self) -> SecurityCatalog:
        if self.security is None:
            raise not_supported("RBAC without a security catalog")
        return self.security

    def _operator(self) -> str:
        return current_user.get() or ROOT_USER

    def _is_superuser(self, user: str) -> bool:
        return user == ROOT_USER or ADMIN_ROLE in self._sec().roles_of(user)

    # ------------------------------------------------------------------ credentials

    def CreateCredential(self, request: milvus_pb2.CreateCredentialRequest, context: grpc.ServicerContext) -> Any:
        self._sec().create_user(request.username, _password(request.password), request.description)
        return ok()

    def UpdateCredential(self, request: milvus_pb2.UpdateCredentialRequest, context: grpc.ServicerContext) -> Any:
        sec = self._sec()
        new = _password(request.newPassword, "new password")
        caller = current_user.get()
        if not (caller and caller != request.username and self._is_superuser(caller)):
            old = _password(request.oldPassword, "old password")
            if not sec.has_user(request.username) or not sec.verify_password(request.username, old):
                raise invalid(f"old password not correct for {request.username}")
        sec.update_password(request.username, new)
        return ok()

    def DeleteCredential(self, request: milvus_pb2.DeleteCredentialRequest, context: grpc.ServicerContext) -> Any:
        self._sec().delete_user(request.username)
        return ok()

    def ListCredUsers(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.ListCredUsersResponse(status=ok(), usernames=self._sec().users())

    # ------------------------------------------------------------------ roles

    def CreateRole(self, request: milvus_pb2.CreateRoleRequest, context: grpc.ServicerContext) -> Any:
        self._sec().create_role(request.entity.name, request.entity.description)
        return ok()

    def DropRole(self, request: milvus_pb2.DropRoleRequest, context: grpc.ServicerContext) -> Any:
        self._sec().drop_role(request.role_name, request.force_drop)
        return ok()

    def OperateUserRole(self, request: milvus_pb2.OperateUserRoleRequest, context: grpc.ServicerContext) -> Any:
        sec = self._sec()
        if request.type == milvus_pb2.OperateUserRoleType.AddUserToRole:
            sec.bind(request.username, request.role_name)
        else:
            if request.username == ROOT_USER and request.role_name == ADMIN_ROLE:
                raise invalid("root cannot leave the admin role")
            sec.unbind(request.username, request.role_name)
        return ok()

    def SelectRole(self, request: milvus_pb2.SelectRoleRequest, context: grpc.ServicerContext) -> Any:
        sec = self._sec()
        if request.HasField("role") and request.role.name:
            if not sec.has_role(request.role.name):
                return milvus_pb2.SelectRoleResponse(status=ok())
            names = [request.role.name]
        else:
            names = sec.roles()
        out = milvus_pb2.SelectRoleResponse(status=ok())
        for name in names:
            users = sec.users_of(name) if request.include_user_info else []
            out.results.add(
                role=milvus_pb2.RoleEntity(name=name, description=sec.role_description(name)),
                users=[milvus_pb2.UserEntity(name=u) for u in users],
            )
        return out

    def SelectUser(self, request: milvus_pb2.SelectUserRequest, context: grpc.ServicerContext) -> Any:
        sec = self._sec()
        if request.HasField("user") and request.user.name:
            if not sec.has_user(request.user.name):
                return milvus_pb2.SelectUserResponse(status=ok())
            names = [request.user.name]
        else:
            names = sec.users()
        out = milvus_pb2.SelectUserResponse(status=ok())
        for name in names:
            roles = sec.roles_of(name) if request.include_role_info else []  # public is implied, not listed
            out.results.add(
                user=milvus_pb2.UserEntity(name=name),
                roles=[milvus_pb2.RoleEntity(name=r) for r in roles],
                description=sec.description(name),
            )
        return out

    # ------------------------------------------------------------------ grants

    def OperatePrivilege(self, request: milvus_pb2.OperatePrivilegeRequest, context: grpc.ServicerContext) -> Any:
        e = request.entity
        grant = Grant(
            role=e.role.name,
            object_type=e.object.name,
            object_name=e.object_name,
            db_name=e.db_name or _header_db(context) or DEFAULT_DB,
            privilege=e.grantor.privilege.name,
            grantor=self._operator(),
        )
        self._operate(grant, request.type)
        return ok()

    def OperatePrivilegeV2(self, request: milvus_pb2.OperatePrivilegeV2Request, context: grpc.ServicerContext) -> Any:
        sec = self._sec()
        privilege = request.grantor.privilege.name
        if not sec.known_privilege(privilege):
            raise invalid(f"not found the privilege name [{privilege}]")
        db = request.db_name or _header_db(context) or DEFAULT_DB
        collection = request.collection_name or ANY
        level = _level(privilege)
        if level == "Cluster":
            if db != ANY or collection != ANY:
                raise invalid(f"{privilege} is a cluster-level privilege: db_name and collection_name must be '*'")
            object_type, name = "Global", ANY
        elif level == "Database":
            if collection != ANY:
                raise invalid(f"{privilege} is a database-level privilege: collection_name must be '*'")
            object_type, name = "Global", ANY
        else:
            object_type, name = "Collection", collection
        if not sec.is_group(privilege):
            object_type = object_type_of(privilege)
        grant = Grant(request.role.name, object_type, name, db, privilege, self._operator())
        self._operate(grant, request.type)
        return ok()

    def _operate(self, grant: Grant, kind: int) -> None:
        if kind == _GRANT:
            self._sec().grant(grant)
        elif kind == _REVOKE:
            self._sec().revoke(grant)
        else:
            raise invalid(f"invalid operate privilege type {kind}")

    def SelectGrant(self, request: milvus_pb2.SelectGrantRequest, context: grpc.ServicerContext) -> Any:
        sec = self._sec()
        e = request.entity
        role = e.role.name
        if not role:
            raise invalid("the role name in the grant entity must not be empty")
        if not sec.has_role(role):
            raise invalid(f"role not found: {role}")
        out = milvus_pb2.SelectGrantResponse(status=ok())
        for g in sec.grants(role):
            if e.object.name and g.object_type != e.object.name:
                continue
            if e.object_name and g.object_name != e.object_name:
                continue
            if e.db_name and g.db_name not in (e.db_name, ANY):
                continue
            out.entities.append(_grant_entity(g))
        return out

    def BackupRBAC(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise not_supported("BackupRBAC")

    def RestoreRBAC(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise not_supported("RestoreRBAC")

    # ------------------------------------------------------------------ privilege groups

    def CreatePrivilegeGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._sec().create_group(request.group_name)
        return ok()

    def DropPrivilegeGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._sec().drop_group(request.group_name)
        return ok()

    def ListPrivilegeGroups(self, request: Any, context: grpc.ServicerContext) -> Any:
        out = milvus_pb2.ListPrivilegeGroupsResponse(status=ok())
        for name, privileges in self._sec().groups().items():
            out.privilege_groups.add(
                group_name=name, privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in privileges]
            )
        return out

    def OperatePrivilegeGroup(self, request: milvus_pb2.OperatePrivilegeGroupRequest,
                              context: grpc.ServicerContext) -> Any:
        add = request.type == milvus_pb2.OperatePrivilegeGroupType.AddPrivilegesToGroup
        self._sec().change_group(request.group_name, [p.name for p in request.privileges], add)
        return ok()


def _level(privilege: str) -> str:
    """Cluster, Database or Collection: where a v2 grant of `privilege` lands."""
    if privilege.startswith("Cluster") or privilege in CLUSTER_LEVEL:
        return "Cluster"
    if privilege.startswith("Database") or privilege in DATABASE_LEVEL:
        return "Database"
    return "Collection"
