"""Bulk import over gRPC (`Import`, `GetImportState`, `ListImportTasks`: what
`utility.do_bulk_insert` calls) and TruncateCollection. The job itself runs in the engine
(`shoal.engine.importer`); these handlers translate its state into Milvus's."""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from shoal.api.rpc.base import RpcBase, ok
from shoal.api.translate.common import dict_to_kv, kv_to_dict
from shoal.api.validate import check_name
from shoal.engine.importer import COMPLETED, FAILED, PENDING, ImportJob
from shoal.errors import invalid, not_supported

_STATE = {PENDING: common_pb2.ImportPending, FAILED: common_pb2.ImportFailed, COMPLETED: common_pb2.ImportCompleted}
IMPORT_OPTIONS = ("sep", "nullkey", "timeout")


def import_options(options: dict[str, str]) -> dict[str, str]:
    """The import options Shoal acts on; `backup` (a Milvus backup's binlogs) is refused."""
    if options.get("backup", "").lower() in ("true", "1"):
        raise not_supported("import of Milvus backup binlogs (backup=true)")
    return {k: v for k, v in options.items() if k in IMPORT_OPTIONS}


class ImportRPCs(RpcBase):
    def Import(self, request: milvus_pb2.ImportRequest, context: grpc.ServicerContext) -> Any:
        check_name(request.collection_name, "collection")
        files = list(request.files)
        if not files:
            raise invalid("import request is empty")
        # one file group: a row-based file, or the .npy files of one batch
        job = self.engine.import_files(
            self._db(request, context), request.collection_name, request.partition_name, [files],
            import_options(kv_to_dict(request.options)),
        )
        return milvus_pb2.ImportResponse(status=ok(), tasks=[job.job_id])

    def GetImportState(self, request: milvus_pb2.GetImportStateRequest, context: grpc.ServicerContext) -> Any:
        out = import_state(self.engine.import_job(request.task))
        out.status.CopyFrom(ok())
        return out

    def ListImportTasks(self, request: milvus_pb2.ListImportTasksRequest, context: grpc.ServicerContext) -> Any:
        jobs = self.engine.list_import_jobs(self._db(request, context), request.collection_name)
        jobs.sort(key=lambda j: j.job_id)
        if request.limit > 0:
            jobs = jobs[-request.limit:]
        return milvus_pb2.ListImportTasksResponse(status=ok(), tasks=[import_state(j) for j in jobs])

    def TruncateCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_name(request.collection_name, "collection")
        self.engine.truncate_collection(self._db(request, context), request.collection_name)
        return milvus_pb2.TruncateCollectionResponse(status=ok())


def import_state(job: ImportJob) -> milvus_pb2.GetImportStateResponse:
    infos = {
        "files": ",".join(p for g in job.files for p in g),
        "collection": job.collection,
        "partition": job.partition,
        "failed_reason": job.reason,
        "progress_percent": str(job.progress),
    }
    return milvus_pb2.GetImportStateResponse(
        status=ok(),
        state=_STATE.get(job.state, common_pb2.ImportStarted),
        row_count=job.imported_rows,
        infos=dict_to_kv(infos),
        id=job.job_id,
        collection_id=job.collection_id,
        segment_ids=job.segment_ids,
        create_ts=int(job.created),
    )
