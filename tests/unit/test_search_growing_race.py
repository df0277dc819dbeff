"""A search whose filter masks were taken before a growing segment took more rows (a write
applied between the two steps, as a query node's WAL tail or a concurrent insert does) serves
the rows of its snapshot instead of failing with "allowed mask should be bool of shape"."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shoal.engine import open_engine
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema

DIM = 4


def test_rows_appended_after_the_masks_are_not_searched(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, {"segment_max_rows": 10_000, "min_index_rows": 1 << 30})
    try:
        schema = CollectionSchema(fields=[FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
                                          FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=101, dim=DIM)])
        engine.create_collection("", "c", schema)

        def insert(ids: np.ndarray) -> None:
            vecs = np.repeat(ids[:, None].astype(np.float32), DIM, axis=1)
            engine.insert("", "c", "", {"id": Column(ids), "vec": Column(vecs)}, len(ids))

        insert(np.arange(20, dtype=np.int64))
        meta = engine.catalog.require("", "c")
        segments = engine.datas[meta.collection_id].snapshot()
        reader = engine.reader
        masks = reader._masks(meta, segments, "id < 100", {}, reader.tso.now())
        insert(np.arange(100, 130, dtype=np.int64))  # the growing segment grows under the read
        assert sum(s.num_rows for s in segments) > sum(len(m) for m in masks if m is not None)
        field = meta.schema.field("vec")
        hits = reader._segment_hits(field, "L2", segments, masks, np.full((1, DIM), 200, np.float32), 5, {})
        rows = hits[0].rows[hits[0].rows >= 0]
        assert len(rows) == 5 and rows.max() < 20  # the nearest rows of the snapshot, none of the new ones
    finally:
        engine.close()
