"""Full-text RPCs: RunAnalyzer (tokens of texts through an analyzer, as a BM25 field sees them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.rpc.base import RpcBase, ok
from shoal.engine.fulltext import multi_analyzer
from shoal.errors import invalid
from shoal.text.analyzer import Analyzer, analyzer_for


class TextRPCs(RpcBase):
    def RunAnalyzer(self, request: Any, context: grpc.ServicerContext) -> Any:
        analyzers = self._analyzers(request, context)
        out = milvus_pb2.RunAnalyzerResponse(status=ok())
        for i, raw in enumerate(request.placeholder):
            analyzer = analyzers(i)
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

    def _analyzers(self, request: Any, context: grpc.ServicerContext) -> Callable[[int], Analyzer]:
        """The analyzer of each text (by its index): the one the request's params name, or the
        one of a collection's field; on a multi-analyzer field, `analyzer_names` picks it (one
        name for every text, or one per text; none: the field's `default`)."""
        if request.collection_name:
            info = self.engine.describe_collection(self._db(request, context), request.collection_name)
            field = info.schema.field(request.field_name)
            if field is None:
                raise invalid(f"field {request.field_name} not found in collection {request.collection_name}")
            chooser = multi_analyzer(field)
            if chooser is None:
                single = analyzer_for(field.type_params.get("analyzer_params"))
                return lambda i: single
            names = list(request.analyzer_names)
            if len(names) > 1 and len(names) != len(request.placeholder):
                raise invalid(
                    f"analyzer_names: {len(names)} names for {len(request.placeholder)} texts "
                    "(give one name, or one per text)"
                )
            return lambda i: chooser.named(names[i] if len(names) > 1 else names[0] if names else None)
        params = request.analyzer_params or ""
        if params:
            try:
                json.loads(params)
            except json.JSONDecodeError:
                raise invalid(f"analyzer_params is not valid JSON: {params!r}") from None
        single = analyzer_for(params)
        return lambda i: single
