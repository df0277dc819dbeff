"""Cases of the query file of Milvus's MilvusClient suite that Shoal answered differently.

Wording and codes read from Milvus's proxy (task_query.go, task.go `isIgnoreGrowing`,
util.go output fields) and planner (`VisitTerm`, value casts).
"""

from __future__ import annotations

from milvus_errors import fails
from pymilvus import MilvusClient


def test_query_input_checks_as_milvus(client: MilvusClient, made: str) -> None:
    client.insert(made, [{"id": i, "vector": [float(i), 0.0, 0.0, 1.0], "tag": f"t{i}"} for i in range(5)])
    # an offset without a limit is ignored, so an empty filter still needs a limit
    fails(lambda: client.query(made, filter="", offset=1), 1100, "empty expression should be used with limit")
    assert len(client.query(made, filter="id >= 0", offset=1)) == 5
    fails(lambda: client.query(made, filter="id in 1"), 1100, "the right-hand side of 'in' must be a list")
    fails(lambda: client.query(made, filter="id in [1.0, 2.0]"), 1100,
          "value 'float_val:1' in list cannot be casted to Int64")
    fails(lambda: client.query(made, filter="id in [1, 2.0]"), 1100,
          "value 'float_val:2' in list cannot be casted to Int64")
    for bad in (["*%"], ["**"], ["*", "@"]):  # the quick-setup collection has the dynamic field on
        fails(lambda bad=bad: client.query(made, filter="id >= 0", output_fields=bad), 1100,
              f"parse output field name failed: {bad[-1]}")
    assert client.query(made, filter="id == 1", output_fields=["tag"])[0]["tag"] == "t1"
    for growing in (2.3, "str"):
        fails(lambda growing=growing: client.query(made, filter="id >= 0", ignore_growing=growing), 1100,
              "parse ignore growing field failed")
        fails(lambda growing=growing: client.search(made, data=[[0.0, 0.0, 0.0, 1.0]], limit=1,
                                                    search_params={"ignore_growing": growing}), 1100,
              "parse ignore growing field failed")
    assert len(client.query(made, filter="id >= 0", ignore_growing=False)) == 5
