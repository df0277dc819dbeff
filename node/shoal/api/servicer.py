"""The gRPC `MilvusService` of a Shoal node: the handler families combined.

Each handler (in `shoal.api.rpc.*`) resolves the database (request `db_name`, else the
`dbname` header, else "default"), checks what Milvus's proxy checks, translates the
request (`shoal.api.translate`), calls the engine (`shoal.engine.facade.EngineAPI`) and
translates the answer back. `install_handlers` turns errors into statuses and answers
every RPC no family defines with code 10. No domain logic lives here.
"""

from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2_grpc

from shoal.api.handlers import install_handlers
from shoal.api.rpc.catalog import CatalogRPCs
from shoal.api.rpc.data import DataRPCs
from shoal.api.rpc.imports import ImportRPCs
from shoal.api.rpc.indexes import IndexRPCs
from shoal.api.rpc.security import SecurityRPCs
from shoal.api.rpc.system import SystemRPCs
from shoal.api.rpc.text import TextRPCs


@install_handlers
class ShoalServicer(
    SystemRPCs, CatalogRPCs, DataRPCs, IndexRPCs, ImportRPCs, TextRPCs, SecurityRPCs, milvus_pb2_grpc.MilvusServiceServicer
):
    """`ShoalServicer(engine, metrics=None, role="standalone", security=None)`."""
