"""The model ranker's checks: what Milvus's rerank layer says for each bad param, in its order."""

from __future__ import annotations

import pytest

from shoal.engine.rerank import parse_function_rerank
from shoal.errors import ShoalError
from shoal.schema import CollectionSchema, DataType, FieldSchema

_SCHEMA = CollectionSchema([
    FieldSchema("id", DataType.INT64, is_primary=True),
    FieldSchema("doc", DataType.VARCHAR, max_length=64),
    FieldSchema("v", DataType.FLOAT_VECTOR, dim=2),
])
_OK = {"reranker": "model", "provider": "vllm", "queries": '["q"]', "endpoint": "https://host:8000"}


def _refusal(params: dict[str, str], inputs: tuple[str, ...] = ("doc",), nq: int = 1) -> ShoalError:
    with pytest.raises(ShoalError) as err:
        parse_function_rerank(_SCHEMA, [("m", list(inputs), params)], nq)
    return err.value


@pytest.mark.parametrize(("queries", "reason"), [
    ('["a", 1]', "json: cannot unmarshal number into Go value of type string"),
    ("[true]", "json: cannot unmarshal bool into Go value of type string"),
    ('"text"', "json: cannot unmarshal string into Go value of type []string"),
    ("[1,]", "invalid character ']' looking for beginning of value"),
    ("  ", "unexpected end of JSON input"),
])
def test_queries_that_are_not_a_list_of_strings_are_refused_with_the_json_reason(queries: str, reason: str) -> None:
    err = _refusal({**_OK, "queries": queries})
    assert (err.code, err.message) == (65535, f"rerank_builder: parse rerank params [queries] failed: {reason}")


def test_json_null_queries_are_empty() -> None:
    assert _refusal({**_OK, "queries": "null"}).message == "rerank_builder: rerank queries must not be empty"


def test_params_are_checked_in_milvus_order() -> None:
    bad = {"reranker": "model", "queries": "x", "endpoint": "nowhere"}  # no provider either
    assert "model input field id must be VarChar, got Int64" in _refusal(bad, inputs=("id",)).message
    assert "parse rerank params [queries] failed" in _refusal(bad).message
    assert _refusal({**bad, "queries": '["q"]'}).message == "rerank_builder: lost rerank params:provider "
    assert "endpoint: [nowhere] is not a valid http/https link" in _refusal({**bad, "queries": '["q"]',
                                                                            "PROVIDER": "TEI"}).message
    assert _refusal(_OK, nq=2).message == "model: queries count (1) != nq count (2)"
    err = _refusal(_OK)
    assert err.code == 10 and "its provider 'vllm' cannot be reached" in err.message


@pytest.mark.parametrize("endpoint", ["http://", "https://h:1", "mailto:x@y", "http//host"])
def test_an_endpoint_needs_an_http_scheme_and_a_host(endpoint: str) -> None:
    err = _refusal({**_OK, "endpoint": endpoint})
    valid = endpoint == "https://h:1"
    assert (err.code == 10) is valid, err.message
