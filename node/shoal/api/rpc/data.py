"""Writes (Insert/Upsert/Delete/Flush) and reads (Query/Search/HybridSearch)."""

from __future__ import annotations

import time
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.rpc.base import RpcBase, ok
from shoal.api.translate.common import template_values
from shoal.api.translate.field_data import fields_data_to_batch
from shoal.api.translate.query import query_from_proto, query_result_to_proto
from shoal.api.translate.search import hybrid_from_proto, search_from_proto, search_result_to_proto
from shoal.errors import invalid


class DataRPCs(RpcBase):
    # ------------------------------------------------------------------ writes

    def _check_rows(self, request: Any) -> int:
        n = int(request.num_rows)
        if n <= 0:
            raise invalid("num_rows should be greater than 0")
        if not request.fields_data:
            raise invalid("no field data in the request")
        return n

    def Insert(self, request: milvus_pb2.InsertRequest, context: grpc.ServicerContext) -> Any:
        n = self._check_rows(request)
        batch = fields_data_to_batch(request.fields_data, n)
        res = self.engine.insert(self._db(request, context), request.collection_name, request.partition_name, batch, n)
        if self.metrics is not None:
            self.metrics.inserted_rows.inc(res.insert_count or n)
        return self._mutation(res)

    def Upsert(self, request: milvus_pb2.UpsertRequest, context: grpc.ServicerContext) -> Any:
        n = self._check_rows(request)
        batch = fields_data_to_batch(request.fields_data, n)
        res = self.engine.upsert(
            self._db(request, context), request.collection_name, request.partition_name, batch, n,
            partial_update=request.partial_update,
        )
        if self.metrics is not None:
            self.metrics.inserted_rows.inc(res.upsert_count or n)
        return self._mutation(res)

    def Delete(self, request: milvus_pb2.DeleteRequest, context: grpc.ServicerContext) -> Any:
        if not request.expr.strip():
            raise invalid("expression cannot be empty")
        res = self.engine.delete(
            self._db(request, context), request.collection_name, request.partition_name,
            request.expr, template_values(request.expr_template_values),
        )
        out = self._mutation(res)
        # Milvus ≥ 2.3.2 returns no keys for a delete; pymilvus then reports delete_count
        out.ClearField("IDs")
        del out.succ_index[:]
        return out

    def Flush(self, request: milvus_pb2.FlushRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        flushed = self.engine.flush(db, list(request.collection_names))
        out = milvus_pb2.FlushResponse(status=ok(), db_name=db)
        for name, (segments, flush_ts) in flushed.items():
            out.coll_segIDs[name].data.extend(segments)
            out.flush_coll_segIDs[name].data.extend(segments)
            out.coll_seal_times[name] = int(time.time())
            out.coll_flush_ts[name] = flush_ts
        return out

    def GetFlushState(self, request: milvus_pb2.GetFlushStateRequest, context: grpc.ServicerContext) -> Any:
        done = self.engine.flush_state(self._db(request, context), request.collection_name, request.flush_ts)
        return milvus_pb2.GetFlushStateResponse(status=ok(), flushed=done)

    # ------------------------------------------------------------------ reads

    def Query(self, request: milvus_pb2.QueryRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        req = query_from_proto(request)
        info = self.engine.describe_collection(db, request.collection_name)
        if not req.output_fields:  # Milvus returns only the primary key when none are named
            req.output_fields = [info.schema.primary_field.name]
        res = self.engine.query(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.queries.inc()
        out = query_result_to_proto(res, req.output_fields, info.schema.primary_field.name, info.name)
        out.status.CopyFrom(ok())
        return out

    def Search(self, request: milvus_pb2.SearchRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        if len(request.sub_reqs):
            raise invalid("sub requests are only supported by HybridSearch")
        info = self.engine.describe_collection(db, request.collection_name)
        req = search_from_proto(request, info.schema)
        res = self.engine.search(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.searches.inc()
            self.metrics.search_nq.inc(len(req.queries))
        out = search_result_to_proto(res, req.output_fields, info.name, info.schema)
        out.status.CopyFrom(ok())
        return out

    def HybridSearch(self, request: milvus_pb2.HybridSearchRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        info = self.engine.describe_collection(db, request.collection_name)
        req = hybrid_from_proto(request, info.schema)
        res = self.engine.hybrid_search(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.searches.inc()
            self.metrics.search_nq.inc(len(req.requests[0].queries))
        out = search_result_to_proto(res, req.output_fields, info.name, info.schema)
        out.status.CopyFrom(ok())
        return out

