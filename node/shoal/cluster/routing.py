"""Which role answers which `EngineAPI` method: the one table the proxy and the roles share."""

# the coordinator: every DDL and metadata change, load state, index and compaction requests
COORD_METHODS = frozenset({
    "alloc_timestamp",
    "create_database", "drop_database", "list_databases", "describe_database", "alter_database",
    "create_collection", "drop_collection", "has_collection", "describe_collection", "list_collections",
    "rename_collection", "alter_collection", "add_collection_field",
    "create_partition", "drop_partition", "has_partition", "list_partitions",
    "create_alias", "alter_alias", "drop_alias", "describe_alias", "list_aliases",
    "load_collection", "release_collection", "load_partitions", "release_partitions", "load_state",
    "loading_progress", "create_index", "drop_index", "alter_index",
})
# the shard's owner (streaming node)
WRITE_METHODS = frozenset({"insert", "upsert", "delete", "truncate_collection", "flush"})
# query nodes
READ_METHODS = frozenset({
    "query", "search", "hybrid_search", "text_stats", "describe_index", "collection_row_count", "partition_row_count",
    "persistent_segments", "query_segments",
})
# the shard's owner decides and runs compactions; it logs each in the WAL and the query nodes
# repeat it, so every node holds the same segments under the same ids
COMPACTION_METHODS = frozenset({"compact", "compaction_state"})


def channel_of(collection_id: int, channels: int) -> int:
    """The WAL channel (Kafka partition) that takes a collection's writes. Collection ids are
    handed out in order, so collections spread round robin; `channels` is the topic's partition
    count, fixed when the cluster's topic is made, so a collection never changes channel."""
    return collection_id % channels
