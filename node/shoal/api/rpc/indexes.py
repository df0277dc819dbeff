"""Index and compaction RPCs."""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from shoal.api.rpc.base import COMPACTION_STATE, INDEX_STATE, RpcBase, flat_index_params, ok
from shoal.api.translate.common import dict_to_kv, kv_to_dict
from shoal.api.validate import check_name
from shoal.engine.embedding_list import struct_member
from shoal.engine.replicas import STANDALONE_NODE_ID
from shoal.engine.requests import IndexInfo
from shoal.errors import Code, ShoalError, invalid, not_supported
from shoal.schema import DataType

_PLAN_STATE = {
    "Executing": common_pb2.CompactionTaskStateExecuting,
    "Completed": common_pb2.CompactionTaskStateCompleted,
    "Failed": common_pb2.CompactionTaskStateFailed,
}


class IndexRPCs(RpcBase):
    # ------------------------------------------------------------------ indexes

    def CreateIndex(self, request: milvus_pb2.CreateIndexRequest, context: grpc.ServicerContext) -> Any:
        params = flat_index_params(kv_to_dict(request.extra_params))
        db = self._db(request, context)
        info = self.engine.describe_collection(db, request.collection_name)
        field = info.schema.field(request.field_name)
        if field is None and struct_member(info.schema, request.field_name) is not None:
            self.engine.create_index(db, info.name, request.field_name, request.index_name, params)
            return ok()
        dynamic_key = field is None and info.schema.enable_dynamic_field
        if field is None and not dynamic_key:
            raise invalid(f"cannot create index on non-exist field: {request.field_name}")
        # the path defaults to the whole field; the cast type has no default
        if (field is None or field.dtype is DataType.JSON) and "json_cast_type" not in params:
            raise ShoalError(Code.PARAMETER_MISSING, "json index must specify cast type: missing parameter")
        if request.index_name:
            check_name(request.index_name, "index")
        self.engine.create_index(db, info.name, request.field_name, request.index_name, params)
        return ok()

    def _indexes(self, request: Any, context: grpc.ServicerContext) -> list[IndexInfo]:
        infos = self.engine.describe_index(
            self._db(request, context), request.collection_name, request.field_name, request.index_name
        )
        if not infos:
            raise ShoalError(Code.INDEX_NOT_FOUND, f"index not found[collection={request.collection_name}]")
        return infos

    def DescribeIndex(self, request: milvus_pb2.DescribeIndexRequest, context: grpc.ServicerContext) -> Any:
        infos = self._indexes(request, context)
        out = milvus_pb2.DescribeIndexResponse(status=ok())
        for i in infos:
            out.index_descriptions.append(
                milvus_pb2.IndexDescription(
                    index_name=i.index_name, indexID=i.index_id, params=dict_to_kv(i.params),
                    field_name=i.field_name, indexed_rows=i.indexed_rows, total_rows=i.total_rows,
                    state=INDEX_STATE.get(i.state, common_pb2.IndexStateNone),
                    index_state_fail_reason=i.fail_reason, pending_index_rows=i.pending_index_rows,
                )
            )
        return out

    def GetIndexState(self, request: Any, context: grpc.ServicerContext) -> Any:
        i = self._indexes(request, context)[0]
        return milvus_pb2.GetIndexStateResponse(
            status=ok(), state=INDEX_STATE.get(i.state, common_pb2.IndexStateNone), fail_reason=i.fail_reason
        )

    def GetIndexBuildProgress(self, request: Any, context: grpc.ServicerContext) -> Any:
        i = self._indexes(request, context)[0]
        return milvus_pb2.GetIndexBuildProgressResponse(
            status=ok(), indexed_rows=i.indexed_rows, total_rows=i.total_rows
        )

    def DropIndex(self, request: milvus_pb2.DropIndexRequest, context: grpc.ServicerContext) -> Any:
        self.engine.drop_index(self._db(request, context), request.collection_name, request.field_name, request.index_name)
        return ok()

    def AlterIndex(self, request: milvus_pb2.AlterIndexRequest, context: grpc.ServicerContext) -> Any:
        self.engine.alter_index(
            self._db(request, context), request.collection_name, request.index_name,
            kv_to_dict(request.extra_params), list(request.delete_keys),
        )
        return ok()

    # ------------------------------------------------------------------ maintenance

    def ManualCompaction(self, request: milvus_pb2.ManualCompactionRequest, context: grpc.ServicerContext) -> Any:
        if request.collection_name:
            db, name = self._db(request, context), request.collection_name
        else:
            info = self._collection_by_id(request.collectionID)
            db, name = info.database, info.name
        if request.target_size < 0:
            raise invalid(f"target_size ({request.target_size}) should not be negative")
        # A target size is Milvus's force merge: every segment is planned, packed into full segments.
        cid = self.engine.compact(db, name, force=request.target_size > 0)
        return milvus_pb2.ManualCompactionResponse(status=ok(), compactionID=cid, compactionPlanCount=1)

    def GetCompactionState(self, request: Any, context: grpc.ServicerContext) -> Any:
        s = self.engine.compaction_state(request.compactionID)
        return milvus_pb2.GetCompactionStateResponse(
            status=ok(), state=COMPACTION_STATE.get(s.state, common_pb2.UndefiedState),
            executingPlanNo=s.executing_plans, timeoutPlanNo=s.timeout_plans, completedPlanNo=s.completed_plans,
        )

    def GetCompactionStateWithPlans(self, request: milvus_pb2.GetCompactionPlansRequest, context: grpc.ServicerContext) -> Any:
        if not request.compactionID:
            raise not_supported("listing the compaction tasks of a collection (ask by compaction id)")
        s = self.engine.compaction_state(request.compactionID)
        out = milvus_pb2.GetCompactionPlansResponse(
            status=ok(), state=COMPACTION_STATE.get(s.state, common_pb2.UndefiedState)
        )
        for i, plan in enumerate(s.plans):
            out.mergeInfos.append(
                milvus_pb2.CompactionMergeInfo(
                    sources=plan.sources, target=plan.target, targets=[plan.target] if plan.target else [],
                    plan_id=s.compaction_id + i, trigger_id=s.compaction_id, collection_id=s.collection_id,
                    partition_id=plan.partition_id, type=common_pb2.CompactionTypeMix,
                    state=_PLAN_STATE[plan.state],
                )
            )
        return out

    # ------------------------------------------------------------------ segments

    def GetPersistentSegmentInfo(
        self, request: milvus_pb2.GetPersistentSegmentInfoRequest, context: grpc.ServicerContext
    ) -> Any:
        states = [common_pb2.SegmentState.Name(s) for s in request.states]
        infos = self.engine.persistent_segments(self._segment_db(request, context), request.collectionName, states)
        out = milvus_pb2.GetPersistentSegmentInfoResponse(status=ok())
        for i in infos:
            out.infos.append(
                milvus_pb2.PersistentSegmentInfo(
                    segmentID=i.segment_id, collectionID=i.collection_id, partitionID=i.partition_id,
                    num_rows=i.num_rows, state=common_pb2.SegmentState.Value(i.state), level=common_pb2.L1,
                    is_sorted=i.is_sorted, compaction_from=i.compaction_from,
                )
            )
        return out

    def GetQuerySegmentInfo(self, request: milvus_pb2.GetQuerySegmentInfoRequest, context: grpc.ServicerContext) -> Any:
        db = self._segment_db(request, context)
        infos = self.engine.query_segments(db, request.collectionName)
        # a segment is served once per replica group (every node holds it): one node of each
        nodes = [g.node_ids[0] for g in self.engine.describe_replicas(db, request.collectionName) if g.node_ids]
        nodes = nodes or [STANDALONE_NODE_ID]
        out = milvus_pb2.GetQuerySegmentInfoResponse(status=ok())
        for i in infos:
            out.infos.append(
                milvus_pb2.QuerySegmentInfo(
                    segmentID=i.segment_id, collectionID=i.collection_id, partitionID=i.partition_id,
                    num_rows=i.num_rows, mem_size=i.mem_size, index_name=i.index_name, indexID=i.index_id,
                    nodeID=nodes[0], nodeIds=nodes, state=common_pb2.Sealed,
                    level=common_pb2.L1, is_sorted=i.is_sorted,
                )
            )
        return out

    def _segment_db(self, request: Any, context: grpc.ServicerContext) -> str:
        # these two requests spell the database field `dbName`
        return request.dbName or self._db(request, context)


