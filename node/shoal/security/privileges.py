"""Milvus's privilege vocabulary and the one table from RPC to the privilege it needs.

Milvus's protos mark each request message with a `privilege_ext_obj` option: the object
type (Global, Collection, User, Database), the privilege, and which field names the
object. `RPC_NEEDS` is built from those options once, at import, so the table is
Milvus's own; an RPC without the option needs only an authenticated caller (Connect,
GetVersion, CheckHealth, ShowCollections …), as in Milvus. One adjustment: a few
requests (DescribeCollection, the alias RPCs) are marked Global without a name although
their privilege is a collection-level one (it is in CollectionReadOnly/Admin); they are
checked on the collection they name, so a collection-level grant of them works. Privilege names are the API spelling
(`Search`, not `PrivilegeSearch`). The built-in privilege groups are listed here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import symbol_database
from pymilvus.grpc_gen import common_pb2, milvus_pb2

ANY = "*"
ROOT_USER = "root"
ADMIN_ROLE = "admin"
PUBLIC_ROLE = "public"
BUILTIN_ROLES = (ADMIN_ROLE, PUBLIC_ROLE)
OBJECT_TYPES = tuple(common_pb2.ObjectType.keys())  # Collection, Global, User, Database …


def api_name(enum_name: str) -> str:
    """`PrivilegeGroupCollectionReadOnly` → `CollectionReadOnly`, `PrivilegeSearch` → `Search`."""
    for prefix in ("PrivilegeGroup", "Privilege"):
        if enum_name.startswith(prefix):
            return enum_name[len(prefix):]
    return enum_name


_ENUM = common_pb2.ObjectPrivilege.keys()
ALL = "All"
BUILTIN_GROUP_NAMES = frozenset(api_name(n) for n in _ENUM if n.startswith("PrivilegeGroup"))
PRIVILEGES = frozenset(api_name(n) for n in _ENUM if not n.startswith("PrivilegeGroup")) - {ALL}

_COLL_RO = ("Query", "Search", "IndexDetail", "GetFlushState", "GetLoadState", "GetLoadingProgress",
            "HasPartition", "ShowPartitions", "DescribeCollection", "DescribeAlias", "GetStatistics",
            "ListAliases")
_COLL_RW = _COLL_RO + ("Load", "Release", "Insert", "Delete", "Upsert", "Import", "Flush", "Compaction",
                       "LoadBalance", "CreateIndex", "DropIndex", "CreatePartition", "DropPartition")
_DB_RO = ("ShowCollections", "DescribeDatabase")
_DB_RW = _DB_RO + ("AlterDatabase",)
_CLUSTER_RO = ("ListDatabases", "SelectOwnership", "SelectUser", "DescribeResourceGroup",
               "ListResourceGroups", "ListPrivilegeGroups")
_CLUSTER_RW = _CLUSTER_RO + ("FlushAll", "TransferNode", "TransferReplica", "UpdateResourceGroups")
# the v1 groups (ReadOnly/ReadWrite on a collection, Admin on Global)
_V1_RO = _COLL_RO + ("ShowCollections", "ListDatabases", "DescribeDatabase")
_V1_RW = _V1_RO + ("CreateIndex", "DropIndex", "CreatePartition", "DropPartition", "Load", "Release",
                   "Insert", "Delete", "Upsert", "Import", "Flush", "Compaction", "LoadBalance",
                   "RenameCollection", "CreateAlias", "DropAlias")
_V1_ADMIN = _V1_RW + ("CreateCollection", "DropCollection", "CreateOwnership", "DropOwnership",
                      "SelectOwnership", "ManageOwnership", "SelectUser", "UpdateUser", "BackupRBAC",
                      "RestoreRBAC", "CreateResourceGroup", "UpdateResourceGroups", "DropResourceGroup",
                      "DescribeResourceGroup", "ListResourceGroups", "TransferReplica", "TransferNode",
                      "CreateDatabase", "DropDatabase", "AlterDatabase")

BUILTIN_GROUPS: dict[str, frozenset[str]] = {
    "ReadOnly": frozenset(_V1_RO),
    "ReadWrite": frozenset(_V1_RW),
    "Admin": frozenset(_V1_ADMIN),
    "CollectionReadOnly": frozenset(_COLL_RO),
    "CollectionReadWrite": frozenset(_COLL_RW),
    "CollectionAdmin": frozenset(_COLL_RW + ("CreateAlias", "DropAlias")),
    "DatabaseReadOnly": frozenset(_DB_RO),
    "DatabaseReadWrite": frozenset(_DB_RW),
    "DatabaseAdmin": frozenset(_DB_RW + ("CreateCollection", "DropCollection")),
    "ClusterReadOnly": frozenset(_CLUSTER_RO),
    "ClusterReadWrite": frozenset(_CLUSTER_RW),
    "ClusterAdmin": frozenset(_CLUSTER_RW + (
        "BackupRBAC", "RestoreRBAC", "CreateDatabase", "DropDatabase", "CreateOwnership", "DropOwnership",
        "ManageOwnership", "CreateResourceGroup", "DropResourceGroup", "UpdateUser", "RenameCollection",
        "CreatePrivilegeGroup", "DropPrivilegeGroup", "OperatePrivilegeGroup")),
}

# a grant of the key also allows the values (Milvus: Load → its progress, Flush → its state)
RELATED = {"Load": ("GetLoadState", "GetLoadingProgress"), "Flush": ("GetFlushState",)}

# the level a v2 grant of a privilege lands on (Milvus: cluster > database > collection)
CLUSTER_LEVEL = BUILTIN_GROUPS["ClusterAdmin"]
DATABASE_LEVEL = BUILTIN_GROUPS["DatabaseAdmin"]


@dataclass(frozen=True)
class Need:
    """What one RPC needs: a privilege on an object, named by a field of the request."""

    object_type: str
    privilege: str
    name_field: str | None = None  # the request field that names the object, if any
    names_field: str | None = None  # a repeated field naming several objects (all needed)


def _field_name(message: object, number: int) -> str | None:
    if number <= 0:
        return None
    field = message.DESCRIPTOR.fields_by_number.get(number)  # type: ignore[attr-defined]
    return field.name if field is not None else None


def _build_table() -> dict[str, Need]:
    ext = common_pb2.privilege_ext_obj
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    table: dict[str, Need] = {}
    for method in service.methods:
        options = method.input_type.GetOptions()
        if not options.HasExtension(ext):
            continue
        info = options.Extensions[ext]
        msg = symbol_database.Default().GetSymbol(method.input_type.full_name)
        need = Need(
            object_type=common_pb2.ObjectType.Name(info.object_type),
            privilege=api_name(common_pb2.ObjectPrivilege.Name(info.object_privilege)),
            name_field=_field_name(msg, info.object_name_index),
            names_field=_field_name(msg, info.object_name_indexs),
        )
        if (need.object_type == "Global" and need.name_field is None and need.names_field is None
                and need.privilege in BUILTIN_GROUPS["CollectionAdmin"]
                and "collection_name" in msg.DESCRIPTOR.fields_by_name):
            need = Need("Collection", need.privilege, "collection_name")
        table[method.name] = need
    return table


RPC_NEEDS: dict[str, Need] = _build_table()


def object_type_of(privilege: str) -> str:
    """The object type the RPCs needing `privilege` name (Global when none does)."""
    for need in RPC_NEEDS.values():
        if need.privilege == privilege:
            return need.object_type
    return "Global"
