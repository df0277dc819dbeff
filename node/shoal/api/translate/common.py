"""Small shared translations: key/value pairs, template values, consistency.

Used by the search, query, schema and servicer translations. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from shoal.engine.requests import ConsistencyLevel, ReadConsistency
from shoal.errors import invalid
from shoal.schema import MAX_ARRAY_CAPACITY


def kv_to_dict(pairs: Iterable[common_pb2.KeyValuePair]) -> dict[str, str]:
    return {p.key: p.value for p in pairs}


def dict_to_kv(d: Mapping[str, Any]) -> list[common_pb2.KeyValuePair]:
    return [common_pb2.KeyValuePair(key=str(k), value=str(v)) for k, v in d.items()]


def parse_json(raw: str | bytes, what: str) -> Any:
    """JSON from a request; malformed or too deeply nested → code 1100 naming `what`."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise invalid(f"{what}: the JSON value is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise invalid(f"{what}: invalid JSON ({e})") from None


def parse_int(value: str, name: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        # Milvus shows the value trimmed: " " reads "limit [] is invalid"
        raise invalid(f"{name} [{str(value).strip()}] is invalid, it should be an integer") from None


def field_int_param(params: dict[str, str], key: str, field: str) -> int | None:
    """An integer type param of a field (`dim`, `max_length`, `max_capacity`), None when absent."""
    if key not in params:
        return None
    try:
        return int(params[key])
    except ValueError:
        raise invalid(f"the value for {key} of field {field} must be an integer, got {params[key]!r}") from None


def array_capacity(params: dict[str, str], field: str, member: str = "") -> int:
    """An ARRAY field's `max_capacity` (of a struct's `member` when given), checked as Milvus does."""
    cap = field_int_param(params, "max_capacity", member or field)
    if cap is None:
        raise invalid(f"type param(max_capacity) should be specified for array field {field}")
    if not 1 <= cap <= MAX_ARRAY_CAPACITY:
        raise invalid(
            f"the maximum capacity specified for a Array should be in (0, {MAX_ARRAY_CAPACITY}], but got {cap} instead"
        )
    return cap


def parse_bool(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def parse_ignore_growing(kv: dict[str, str]) -> bool:
    """`ignore_growing` as Milvus's proxy reads it (Go's ParseBool); anything else is refused."""
    value = kv.get("ignore_growing", "false")
    if value not in _GO_BOOLS:
        raise invalid("parse ignore growing field failed")
    return _GO_BOOLS[value]


def parse_json_params(value: str, name: str = "params") -> dict[str, Any]:
    if not value:
        return {}
    out = parse_json(value, name)
    if not isinstance(out, dict):
        raise invalid(f"{name} must be a JSON object")
    return out


def template_values(values: Mapping[str, schema_pb2.TemplateValue]) -> dict[str, Any]:
    """`expr_template_values` → plain Python values for `{name}` placeholders in filters."""
    return {name: _template_value(v) for name, v in values.items()}


def _template_value(v: schema_pb2.TemplateValue) -> Any:
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    if kind == "array_val":
        return _template_array(v.array_val)
    if kind == "bytes_val":
        return bytes(v.bytes_val)
    return getattr(v, kind)


def _template_array(a: schema_pb2.TemplateArrayValue) -> list[Any]:
    kind = a.WhichOneof("data")
    if kind is None:
        return []
    if kind == "array_data":
        return [_template_array(x) for x in a.array_data.data]
    if kind == "json_data":
        return [parse_json(x, "expression template value") for x in a.json_data.data]
    return list(getattr(a, kind).data)


def read_consistency(
    guarantee_ts: int, level: int, use_default: bool, travel_ts: int = 0
) -> ReadConsistency:
    try:
        lvl = ConsistencyLevel(level)
    except ValueError:
        raise invalid(f"consistency level {level} is invalid") from None
    if 0 < travel_ts < _HYBRID_FLOOR:
        travel_ts <<= 18  # old clients pass Unix milliseconds; the engine reads hybrid timestamps
    return ReadConsistency(
        guarantee_ts=guarantee_ts, level=lvl, use_default=use_default, travel_ts=travel_ts
    )


# hybrid timestamps are physical_ms << 18, so any current one exceeds 2**46
_HYBRID_FLOOR = 1 << 46
