"""Milvus's multi-analyzer fields: `multi_analyzer_params` picks each row's analyzer by the
value of another VARCHAR field of the row.

`{"by_field": "language", "analyzers": {"english": {...}, "default": {...}}, "alias": {"en":
"english"}}`: a row whose `language` is `en` or `english` is analyzed by `english`; a null or
unknown value by `default` (required). A search names the analyzer of its query text with
`analyzer_name` in its search params (resolved the same way; none given: `default`). BM25
statistics stay the collection's: every row's term counts land in one sparse column.
Checks and their wording follow Milvus's (create_collection answers 1100).

Neighbours: `text.analyzer` (each named analyzer), `engine.fulltext` (insert and search).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shoal.errors import invalid
from shoal.text.analyzer import Analyzer, build_analyzer

PARAMS = ("by_field", "analyzers", "alias")
DEFAULT = "default"


@dataclass(frozen=True)
class MultiAnalyzer:
    by_field: str
    analyzers: Mapping[str, Analyzer]
    alias: Mapping[str, str]

    def named(self, name: Any) -> Analyzer:
        """The analyzer a by_field value (or a search's analyzer_name) selects: alias first, then
        the analyzers' own names, else `default` (also for null)."""
        if not isinstance(name, str):
            return self.analyzers[DEFAULT]
        return self.analyzers.get(self.alias.get(name, name)) or self.analyzers[DEFAULT]


def _loads(raw: Any) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise invalid(f"multi_analyzer_params is not valid JSON: {e}") from None
    if not isinstance(raw, Mapping):
        raise invalid("multi_analyzer_params should be a JSON object")
    return raw


def parse(raw: Any, field_kind: Callable[[str], str | None]) -> MultiAnalyzer:
    """Check `multi_analyzer_params` as Milvus does and build every analyzer it names.
    `field_kind(name)`: the data type name of the collection's field `name` (None: no such field)."""
    params = _loads(raw)
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise invalid(f"multi analyzer params: unknown keys {unknown} (expected: by_field, analyzers, alias)")
    if "by_field" not in params:
        raise invalid("multi analyzer params now must set by_field to specify with field decide analyzer")
    by_field = params["by_field"]
    if not isinstance(by_field, str):
        raise invalid(f"multi analyzer params by_field must be string but now: {json.dumps(by_field)}")
    kind = field_kind(by_field)
    if kind is None:
        raise invalid(f"multi analyzer dependent field {by_field} not exist in collection")
    if kind != "VARCHAR":
        raise invalid(f"multi analyzer params now only support by string field, but field {by_field} is not string")
    alias = params.get("alias", {})
    if not isinstance(alias, Mapping) or not all(isinstance(v, str) for v in alias.values()):
        raise invalid(f"multi analyzer alias must be string map but now: {json.dumps(alias)}")
    if "analyzers" not in params:
        raise invalid("multi analyzer params must set analyzers")
    raw_analyzers = params["analyzers"]
    if not isinstance(raw_analyzers, Mapping):
        raise invalid(f"unmarshal analyzers failed: analyzers should be an object, got {json.dumps(raw_analyzers)}")
    if DEFAULT not in raw_analyzers:
        raise invalid("multi analyzer must set default analyzer for all unknown value")
    analyzers = {}
    for name, spec in raw_analyzers.items():
        if not isinstance(spec, Mapping):
            raise invalid(f"multi analyzer {name}: analyzer params should be an object, got {json.dumps(spec)}")
        analyzers[name] = _built(json.dumps(spec, sort_keys=True))
    return MultiAnalyzer(by_field, analyzers, dict(alias))


@lru_cache(maxsize=256)
def _built(spec: str) -> Analyzer:
    return build_analyzer(json.loads(spec))
