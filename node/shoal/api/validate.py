"""Request checks Milvus's proxy makes before anything reaches the engine.

Names, topk/nq/limit ranges. Messages follow Milvus's wording so users recognise them.
Pure functions raising `ShoalError` code 1100; used by the translators and the servicer.
"""

from __future__ import annotations

from shoal.errors import Code, ShoalError, invalid
from shoal.schema import MAX_NAME_LENGTH, MAX_NQ, MAX_TOPK

# Milvus calls an alias a "collection alias" in its naming messages
_NOUNS = {"alias": "collection alias"}


def check_name(name: str, kind: str) -> None:
    """Milvus naming rule: ≤255 chars of letters, digits and `_`, not starting with a digit."""
    noun = _NOUNS.get(kind, f"{kind} name")
    label = f"Invalid {noun}: {name}."
    if not name:
        raise invalid(f"{label} {noun} should not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{label} the length of a {noun} must be less than {MAX_NAME_LENGTH} characters")
    first = name[0]
    if not (first == "_" or (first.isascii() and first.isalpha())):
        raise invalid(f"{label} the first character of a {noun} must be an underscore or letter")
    for ch in name:
        if not (ch == "_" or (ch.isascii() and ch.isalnum())):
            raise invalid(f"{label} {noun} can only contain numbers, letters and underscores")


def check_partition_name(name: str) -> None:
    """Milvus's partition-name rule: trimmed; a digit may lead, `-` may follow; capitalised sentences."""
    name = name.strip()
    label = f"Invalid partition name: {name}. "
    if not name:
        raise invalid(f"{label}Partition name should not be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{label}The length of a partition name must be less than {MAX_NAME_LENGTH} characters.")
    if not (name[0] == "_" or (name[0].isascii() and name[0].isalnum())):
        raise invalid(f"{label}The first character of a partition name must be an underscore or letter.")
    if not all(ch in "_-" or (ch.isascii() and ch.isalnum()) for ch in name[1:]):
        raise invalid(f"{label}Partition name can only contain numbers, letters and underscores.")


def check_database_name(name: str) -> None:
    """Milvus's database-name rule: code 802, the reason first, then the name."""
    if not name:
        reason = "database name couldn't be empty"
    elif len(name) > MAX_NAME_LENGTH:
        reason = f"the length of a database name must be less than {MAX_NAME_LENGTH} characters"
    elif not (name[0] == "_" or (name[0].isascii() and name[0].isalpha())):
        reason = "the first character of a database name must be an underscore or letter"
    elif not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
        reason = "database name can only contain numbers, letters and underscores"
    else:
        return
    raise ShoalError(Code.DATABASE_NAME_INVALID, f"{reason}: invalid database name[database={name}]")


# Milvus validates the names a request carries before it looks anything up; only its
# reads, AlterCollection and its create/alter index tasks resolve the name first, answering
# "collection not found" (code 100) for a bad one.
_LOOKED_UP_FIRST = frozenset({
    "Search", "Query", "HybridSearch", "GetCollectionStatistics", "AlterCollection", "CreateIndex", "AlterIndex",
})
_WILDCARD_ALLOWED = frozenset({"OperatePrivilegeV2"})
_NAME_REQUIRED = frozenset({
    "HasCollection", "DescribeCollection", "DropCollection", "LoadCollection", "ReleaseCollection",
    "Insert", "Upsert", "Delete", "CreateAlias", "AlterAlias", "CreatePartition", "DropPartition",
    "HasPartition", "LoadPartitions", "ReleasePartitions", "DropIndex",
})


def check_request_names(method: str, request: object) -> None:
    """The naming rule on every call that carries a collection, partition or alias name."""
    if method in _LOOKED_UP_FIRST:
        return
    name = getattr(request, "collection_name", None)
    if method in _WILDCARD_ALLOWED and name == "*":
        name = ""  # a grant on every collection
    if isinstance(name, str) and (name or (method in _NAME_REQUIRED and not getattr(request, "collectionID", 0))):
        check_name(name, "collection")
    partition = getattr(request, "partition_name", None)
    if isinstance(partition, str) and partition:
        check_partition_name(partition)
    alias = getattr(request, "alias", None)
    if isinstance(alias, str) and alias:
        check_name(alias, "alias")


# Words of the filter language (Milvus's list): a field named so could not be filtered on.
FIELD_NAME_KEYWORDS = frozenset({
    "$meta", "like", "exists", "EXISTS", "and", "or", "not", "in",
    "json_contains", "JSON_CONTAINS", "json_contains_all", "JSON_CONTAINS_ALL",
    "json_contains_any", "JSON_CONTAINS_ANY", "array_contains", "ARRAY_CONTAINS",
    "array_contains_all", "ARRAY_CONTAINS_ALL", "array_contains_any", "ARRAY_CONTAINS_ANY",
    "array_length", "ARRAY_LENGTH", "true", "True", "TRUE", "false", "False", "FALSE",
    "text_match", "TEXT_MATCH", "phrase_match", "PHRASE_MATCH", "random_sample", "RANDOM_SAMPLE",
})


def check_field_name(name: str) -> None:
    """Milvus's field-name rule (code 1701): the naming rule, and no filter keyword."""
    label = f"Invalid field name: {name}. "
    tail = f": field name invalid[field={name}]"
    stripped = name.strip()
    if not stripped:
        raise ShoalError(Code.FIELD_NAME_INVALID, "field name should not be empty")
    if len(stripped) > MAX_NAME_LENGTH:
        raise ShoalError(
            Code.FIELD_NAME_INVALID,
            f"{label}The length of a field name must be less than {MAX_NAME_LENGTH} characters.{tail}",
        )
    first = stripped[0]
    if not (first == "_" or (first.isascii() and first.isalpha())):
        raise ShoalError(Code.FIELD_NAME_INVALID, f"{label}The first character of a field name must be an underscore or letter.{tail}")
    if not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in stripped):
        raise ShoalError(Code.FIELD_NAME_INVALID, f"{label}Field name can only contain numbers, letters, and underscores.{tail}")
    if stripped in FIELD_NAME_KEYWORDS or stripped.lower() == "null":
        raise ShoalError(Code.FIELD_NAME_INVALID, f"{label}{stripped} is keyword in milvus.{tail}")


def check_topk(topk: int) -> None:
    if not 1 <= topk <= MAX_TOPK:
        raise invalid(f"topk [{topk}] is invalid, it should be in range [1, {MAX_TOPK}], but got {topk}")


def check_nq(nq: int) -> None:
    if not 1 <= nq <= MAX_NQ:
        raise invalid(
            f"nq [{nq}] is invalid, nq (number of search vector per search request) should be in range "
            f"[1, {MAX_NQ}], but got {nq}"
        )


def check_result_window(offset: int, limit: int | None) -> None:
    """Milvus's window rule for query and hybrid search: offset >= 0, limit > 0, offset+limit <= 16384."""
    if offset < 0:
        reason = f"offset [{offset}] is invalid, should be gte than 0"
    elif limit is None:
        return
    elif limit <= 0:
        reason = f"limit [{limit}] is invalid, should be greater than 0"
    elif offset + limit > MAX_TOPK:
        reason = f"(offset+limit) should be in range [1, {MAX_TOPK}], but got {offset + limit}"
    else:
        return
    raise invalid(f"invalid max query result window, {reason}")


def check_offset_limit(offset: int, limit: int) -> None:
    if offset < 0:
        raise invalid(f"offset [{offset}] is invalid, it should be non-negative")
    if offset + limit > MAX_TOPK:
        raise invalid(
            f"topk [{offset + limit}] is invalid, top k + offset should be in range [1, {MAX_TOPK}]"
        )
