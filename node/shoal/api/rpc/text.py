"""Full-text RPCs: RunAnalyzer (tokens of texts through an analyzer, as a BM25 field sees them)."""

from __future__ import annotations

import json
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.rpc.base import RpcBase, ok
from shoal.errors import invalid
from shoal.text.analyzer import Analyzer, analyzer_for


class TextRPCs(RpcBase):
    def RunAnalyzer(self, request: Any, context: grpc.ServicerContext) -> Any:
        analyzer = self._analyzer(request, context)
        out = milvus_pb2.RunAnalyzerResponse(status=ok())
        for raw in request.placeholder:
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
            result = out.results.add()
            for token, start, end, position in analyzer.detailed(text):
                tok = result.tokens.add()
                tok.token = token
                if request.with_detail:
                    tok.start_offset, tok.end_offset, tok.position, tok.position_length = start, end, position, 1
                if request.with_hash:
                    tok.hash = analyzer.hash(token)
        return out

    def _analyzer(self, request: Any, context: grpc.ServicerContext) -> Analyzer:
        """The analyzer named by the request, or the one of a collection's field."""
        if request.collection_name:
            info = self.engine.describe_collection(self._db(request, context), request.collection_name)
            field = info.schema.field(request.field_name)
            if field is None:
                raise invalid(f"field {request.field_name} not found in collection {request.collection_name}")
            return analyzer_for(field.type_params.get("analyzer_params"))
        params = request.analyzer_params or ""
        if params:
            try:
                json.loads(params)
            except json.JSONDecodeError:
                raise invalid(f"analyzer_params is not valid JSON: {params!r}") from None
        return analyzer_for(params)
