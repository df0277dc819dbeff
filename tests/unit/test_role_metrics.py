"""A cluster role's `/metrics`: its own Milvus families only, with its node id and role name."""

from __future__ import annotations

from shoal.cluster.roles.metrics import RoleMetrics

GAUGES = {"collections": 2, "partitions": 3, "loaded_collections": 1, "loaded_partitions": 1, "rows": 10,
          "loaded_rows": 10, "growing_segments": 1, "sealed_segments": 2, "timestamp": 5}


class _Engine:
    def gauges(self) -> dict[str, int]:
        return dict(GAUGES)


def test_a_query_node_reports_the_querynode_families_with_its_node_id() -> None:
    text = RoleMetrics("query", "query-ab12", _Engine).render().decode()
    assert 'shoal_role_up{node_id="query-ab12",role_name="query"} 1' in text
    assert 'milvus_querynode_segment_num{node_id="query-ab12",segment_state="Sealed"} 2' in text
    assert 'milvus_querynode_entity_num{node_id="query-ab12"} 10' in text
    assert "milvus_rootcoord_" not in text and "milvus_proxy_" not in text and "milvus_datanode_" not in text
    assert "process_" in text or "shoal_role_up" in text  # the process collector is Linux-only


def test_a_role_without_an_engine_yet_still_answers() -> None:
    text = RoleMetrics("streaming", "streaming-1", lambda: None).render().decode()
    assert 'role_name="streaming"' in text and "milvus_" not in text
    coord = RoleMetrics("coord", "coord-1", _Engine).render().decode()
    assert "milvus_rootcoord_collection_num 2" in coord and "milvus_querynode_" not in coord
