"""Writes (Insert/Upsert/Delete/Flush) and reads (Query/Search/HybridSearch)."""

from __future__ import annotations

import time
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.rpc.base import RpcBase, ok
from shoal.api.translate.common import kv_to_dict, read_consistency, template_values
from shoal.api.translate.field_data import fields_data_to_batch
from shoal.api.translate.query import query_from_proto, query_result_to_proto
from shoal.api.translate.search import (
    empty_search_results,
    hybrid_from_proto,
    search_from_proto,
    search_ids,
    search_result_to_proto,
)
from shoal.engine.requests import CollectionInfo, QueryRequest
from shoal.errors import Code, ShoalError, invalid


class DataRPCs(RpcBase):
    # ------------------------------------------------------------------ writes

    def _check_rows(self, request: Any) -> int:
        n = int(request.num_rows)
        if n <= 0:
            raise invalid("num_rows should be greater than 0")
        if not request.fields_data:
            raise invalid("no field data in the request")
        return n

    def _check_schema_version(self, db: str, request: Any) -> None:
        """As Milvus's proxy: a write that names the schema version it was built for
        (`schema_timestamp`, the collection's `update_timestamp` when the client read it) is
        refused once the schema changed since, so the client re-reads it and builds the rows
        again (pymilvus retries on code 109 by itself) instead of filing a new field's values
        under the dynamic field."""
        if request.schema_timestamp:
            info = self.engine.describe_collection(db, request.collection_name)
            if info.updated_ts and request.schema_timestamp != info.updated_ts:
                raise ShoalError(Code.COLLECTION_SCHEMA_MISMATCH, f"collection schema mismatch[collection={info.name}]")

    def Insert(self, request: milvus_pb2.InsertRequest, context: grpc.ServicerContext) -> Any:
        self._check_schema_version(self._db(request, context), request)
        n = self._check_rows(request)
        batch = fields_data_to_batch(request.fields_data, n)
        res = self.engine.insert(self._db(request, context), request.collection_name, request.partition_name, batch, n)
        if self.metrics is not None:
            self.metrics.inserted_rows.inc(res.insert_count or n)
        return self._mutation(res)

    def Upsert(self, request: milvus_pb2.UpsertRequest, context: grpc.ServicerContext) -> Any:
        self._check_schema_version(self._db(request, context), request)
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
        ids = search_ids(request)
        vectors, nulls = self._vectors_of(db, info, request, ids, null_rows=True) if ids else (None, [])
        if ids and len(nulls) == len(ids):
            return empty_search_results(len(ids), info.name, info.schema)
        req = search_from_proto(request, info.schema, vectors)
        res = self.engine.search(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.searches.inc()
            self.metrics.search_nq.inc(len(req.queries))
        out = search_result_to_proto(res, req.output_fields, info.name, info.schema)
        if nulls:  # as Milvus: a key whose vector is null keeps its place, with no hits
            topks = list(out.results.topks)
            for at in nulls:
                topks.insert(at, 0)
            del out.results.topks[:]
            out.results.topks.extend(topks)
            out.results.num_queries = len(topks)
        out.status.CopyFrom(ok())
        return out

    def _vectors_of(
        self, db: str, info: CollectionInfo, request: milvus_pb2.SearchRequest, ids: list, scope: Any = None,
        null_rows: bool = False,
    ) -> Any:
        """Search by primary key: the stored vectors of `ids`, in the order asked.

        As in Milvus, a key whose vector is null is left out (the search has one query fewer);
        when every key's vector is null the search is refused. `scope` is the request whose
        partitions and consistency the keys are read with: the search itself, or the hybrid
        search around a sub-request.
        """
        scope = scope or request
        kv = kv_to_dict(request.search_params)
        anns = kv.get("anns_field") or ""
        if not anns:
            vectors = info.schema.vector_fields
            if len(vectors) != 1:
                raise invalid("multiple anns_fields exist, please specify a anns_field in search_params")
            anns = vectors[0].name
        field = info.schema.field(anns)
        if field is None or not field.dtype.is_vector:
            raise invalid(f"failed to create query plan: failed to get field schema by name: fieldName({anns}) not found")
        pk = info.schema.primary_field
        if len(set(ids)) != len(ids):
            raise invalid("search by primary keys: duplicate primary keys are not allowed")
        found = self.engine.query(
            db, request.collection_name,
            QueryRequest(
                expr=f"{pk.name} in {{keys}}", expr_params={"keys": ids}, output_fields=[pk.name, anns],
                partition_names=list(scope.partition_names),
                consistency=read_consistency(
                    scope.guarantee_timestamp, scope.consistency_level, scope.use_default_consistency,
                    scope.travel_timestamp,
                ),
            ),
        )
        keys = found.fields[pk.name].values.tolist()
        where = {k: i for i, k in enumerate(keys)}
        missing = [k for k in ids if k not in where]
        if missing:
            raise invalid(f"search by primary keys: primary keys not found: {missing[:10]}")
        column = found.fields[anns]
        order = [where[k] for k in ids if column.valid is None or column.valid[where[k]]]
        # a plain search (`null_rows`): the positions of null vectors answer no hits
        nulls = [i for i, k in enumerate(ids) if column.valid is not None and not column.valid[where[k]]]
        if not order:
            if null_rows:
                return None, nulls
            raise ShoalError(Code.UNEXPECTED, "all provided IDs have null vector values")
        values = column.values
        picked = [values[i] for i in order] if isinstance(values, list) or values.dtype == object else values[order]
        return (picked, nulls) if null_rows else picked

    def HybridSearch(self, request: milvus_pb2.HybridSearchRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        info = self.engine.describe_collection(db, request.collection_name)
        id_vectors = [
            self._vectors_of(db, info, sub, ids, request) if (ids := search_ids(sub)) else None
            for sub in request.requests
        ]
        req = hybrid_from_proto(request, info.schema, id_vectors)
        res = self.engine.hybrid_search(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.searches.inc()
            self.metrics.search_nq.inc(len(req.requests[0].queries))
        out = search_result_to_proto(res, req.output_fields, info.name, info.schema)
        out.status.CopyFrom(ok())
        return out

