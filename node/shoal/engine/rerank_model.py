"""The model reranker (`reranker: model`): its params checked as Milvus checks them.

Milvus calls an external rerank service (TEI, vLLM, Cohere, ...) with the search's `queries`
and each hit's text. It first checks the function: one VarChar input field, a JSON list of
query strings, a known provider and, for the self-hosted providers, an http(s) endpoint; the
number of queries must equal the number of search vectors. A request that passes every check
needs the service, which no Shoal node reaches: it is refused with code 10 naming the provider.
"""

from __future__ import annotations

import json
from typing import NoReturn
from urllib.parse import urlsplit

from shoal.errors import Code, ShoalError, not_supported
from shoal.schema import CollectionSchema, DataType, FieldSchema

# the providers Milvus's rerank layer knows; TEI and vLLM are self-hosted, named by an endpoint
_ENDPOINT_PROVIDERS = ("tei", "vllm")
_PROVIDERS = (*_ENDPOINT_PROVIDERS, "siliconflow", "cohere", "voyageai", "ali", "zilliz")


def refuse(message: str) -> ShoalError:
    """A rerank function Milvus's rerank layer refuses: code 65535 (its plain errors)."""
    return ShoalError(Code.UNEXPECTED, message)


def input_field(schema: CollectionSchema, name: str) -> FieldSchema:
    """A rerank function's input field, which must be one of the collection's fields."""
    field = schema.field(name)
    if field is None:
        raise refuse(f"Function input field not found: {name}")
    return field


def refuse_model_ranker(
    schema: CollectionSchema, name: str, inputs: list[str], params: dict[str, str], nq: int
) -> NoReturn:
    """Check a model ranker in Milvus's order; raise its first error, else the unreachable service."""
    if len(inputs) != 1:
        raise refuse(f"rerank_builder: model reranker requires exactly 1 input field, got {len(inputs)}")
    field = input_field(schema, inputs[0])
    if field.dtype is not DataType.VARCHAR:
        raise refuse(f"rerank_builder: model input field {field.name} must be VarChar, got {field.dtype.milvus_name}")
    queries = _queries(params)
    provider = _provider(params)
    if len(queries) != nq:
        raise refuse(f"model: queries count ({len(queries)}) != nq count ({nq})")
    raise not_supported(
        f"the model ranker {name!r}: its provider {provider!r} cannot be reached from this Shoal node "
        "(no external model service is configured)"
    )


def _queries(params: dict[str, str]) -> list[str]:
    """The `queries` param (its key is matched exactly, as Milvus does): a JSON list of strings."""
    if "queries" not in params:
        raise refuse("rerank_builder: rerank function missing required param: queries")
    raw = params["queries"]
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        reason = (
            "unexpected end of JSON input" if err.pos >= len(raw.rstrip())
            else f"invalid character {raw[err.pos]!r} looking for beginning of value"
        )
        raise refuse(f"rerank_builder: parse rerank params [queries] failed: {reason}") from None
    if value is None:  # JSON null decodes to an empty list in Milvus
        value = []
    if not isinstance(value, list):
        raise refuse(
            f"rerank_builder: parse rerank params [queries] failed: json: cannot unmarshal {_json_kind(value)} "
            "into Go value of type []string"
        )
    for item in value:
        if not isinstance(item, str):
            raise refuse(
                f"rerank_builder: parse rerank params [queries] failed: json: cannot unmarshal {_json_kind(item)} "
                "into Go value of type string"
            )
    if not value:
        raise refuse("rerank_builder: rerank queries must not be empty")
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else "string"


def _provider(params: dict[str, str]) -> str:
    """The provider (key matched without case), known to Milvus, with a valid endpoint where it needs one."""
    given = next((v for k, v in params.items() if k.lower() == "provider"), None)
    if given is None:
        raise refuse("rerank_builder: lost rerank params:provider ")
    provider = given.lower()
    if provider not in _PROVIDERS:
        raise refuse(f"rerank_builder: unknown rerank model provider:{given}")
    if provider in _ENDPOINT_PROVIDERS:
        endpoint = next((v for k, v in params.items() if k.lower() == "endpoint"), "")
        try:
            parts = urlsplit(endpoint)
            valid = parts.scheme in ("http", "https") and bool(parts.netloc)
        except ValueError:
            valid = False
        if not valid:
            raise refuse(f"rerank_builder: endpoint: [{endpoint}] is not a valid http/https link")
    return provider
