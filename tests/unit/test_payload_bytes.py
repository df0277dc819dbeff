"""The byte counters' size estimate: close to the wire size, without serialising."""

import numpy as np
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.milvus_metrics import payload_bytes


def test_insert_payload_is_near_the_wire_size() -> None:
    request = milvus_pb2.InsertRequest(collection_name="c", num_rows=2000)
    vectors = request.fields_data.add()
    vectors.vectors.dim = 8
    vectors.vectors.float_vector.data.extend(np.random.default_rng(1).random(16000).tolist())
    names = request.fields_data.add()
    names.scalars.string_data.data.extend([f"name-{i}" for i in range(2000)])
    ids = request.fields_data.add()
    ids.scalars.long_data.data.extend(range(2000))
    wire = request.ByteSize()
    assert 0.8 * wire <= payload_bytes(request) <= 1.2 * wire


def test_search_reply_counts_ids_scores_and_fields() -> None:
    reply = milvus_pb2.SearchResults()
    reply.results.scores.extend([0.5] * 100)
    reply.results.ids.int_id.data.extend(range(100))
    field = reply.results.fields_data.add()
    field.scalars.long_data.data.extend(range(100))
    assert payload_bytes(reply) == 4 * 100 + 8 * 100 + 8 * 100


def test_small_messages_use_the_exact_size() -> None:
    request = milvus_pb2.DeleteRequest(collection_name="c", expr="id in [1, 2, 3]")
    assert payload_bytes(request) == request.ByteSize()
