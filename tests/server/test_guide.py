"""The Milvus guide's ORM walkthrough, step by step, against Shoal."""

from __future__ import annotations

import numpy as np
from conftest import Target
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility


def test_guide_walkthrough(target_server: Target, name: str) -> None:
    connections.connect(alias="default", host="127.0.0.1", port=str(target_server.port), user="username", password="password")
    try:
        assert "default" in [c[0] for c in connections.list_connections()]
        fields = [
            FieldSchema(name="id", dtype=DataType.INT64, is_primary=True, auto_id=False),
            FieldSchema(name="embedding", dtype=DataType.FLOAT_VECTOR, dim=128),
            FieldSchema(name="text", dtype=DataType.VARCHAR, max_length=1000),
            FieldSchema(name="category", dtype=DataType.VARCHAR, max_length=100),
        ]
        collection = Collection(name=name, schema=CollectionSchema(fields=fields, description="문서 검색 컬렉션"))
        collection.create_index(
            field_name="embedding",
            index_params={"metric_type": "L2", "index_type": "IVF_FLAT", "params": {"nlist": 1024}},
            index_name="embedding_index",
        )
        collection.create_index(field_name="category", index_name="category_index")
        rng = np.random.default_rng(3)
        vectors = [rng.random(128).tolist() for _ in range(5)]
        mr = collection.insert([[1, 2, 3, 4, 5], vectors, ["텍스트 1", "텍스트 2", "텍스트 3", "텍스트 4", "텍스트 5"],
                                ["A", "B", "A", "C", "B"]])
        assert mr.insert_count == 5
        collection.flush()
        collection.load()

        results = collection.search(
            data=[vectors[2]], anns_field="embedding", param={"metric_type": "L2", "params": {"nprobe": 10}},
            limit=10, output_fields=["text", "category"], expr="category == 'A'",
        )
        hits = results[0]
        assert [h.id for h in hits] == [3, 1]
        assert hits[0].entity.get("text") == "텍스트 3" and hits[0].distance == 0.0
        for expr, expected in [("category in ['A', 'B', 'C']", 5), ("text like '%3'", 1), ("not (category == 'A')", 3)]:
            res = collection.search(data=[vectors[0]], anns_field="embedding", param={"metric_type": "L2"},
                                    limit=10, expr=expr)
            assert len(res[0]) == expected, expr
        for level in ("Strong", "Eventually"):  # ConsistencyLevel.Strong etc. in older pymilvus
            res = collection.search(data=[vectors[0]], anns_field="embedding", param={"metric_type": "L2"},
                                    limit=10, consistency_level=level)
            assert len(res[0]) <= 5

        rows = collection.query(expr="id in [1, 2, 3]", output_fields=["text", "category"])
        assert sorted(r["id"] for r in rows) == [1, 2, 3]
        rows = collection.query(expr="category == 'A' and id > 1", output_fields=["id", "text"], limit=10)
        assert [r["id"] for r in rows] == [3]

        collection.delete(expr="id in [1, 2, 3]")
        collection.delete(expr="category == 'B'")
        collection.insert([[1], [rng.random(128).tolist()], ["업데이트된 텍스트"], ["A"]])
        rows = collection.query(expr="id >= 0", output_fields=["text"], consistency_level="Strong")
        assert sorted((r["id"], r["text"]) for r in rows) == [(1, "업데이트된 텍스트"), (4, "텍스트 4")]

        collection.compact()
        collection.wait_for_compaction_completed(timeout=60)
        assert collection.get_compaction_state().state.name == "Completed"
        collection.release()
        collection.drop_index(index_name="category_index")
        assert [i.index_name for i in collection.indexes] == ["embedding_index"]
        collection.drop()
        assert name not in utility.list_collections()
    finally:
        connections.disconnect("default")
