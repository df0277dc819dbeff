"""Schema functions: BM25 full-text search, and the model functions Shoal cannot call.

A BM25 function turns a VARCHAR field (with `enable_analyzer`) into a SPARSE_FLOAT_VECTOR
field holding each row's term counts, filled on insert. A search on that field with raw
text tokenizes the text with the same analyzer and scores BM25 with statistics over the
whole collection (every segment's rows: count, average length, document frequencies), so a
score does not depend on how rows are spread over segments.

Text-embedding and model-rerank functions need an external model service that this node
cannot reach: their schema is accepted, and using them answers code 10 naming the provider.

Neighbours: `shoal.text` (analyzers), `shoal.index.sparse` (BM25 scoring), `validation`
(insert) and `reader` (search) call in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoal.errors import invalid, not_supported
from shoal.index.params import flatten_params, get_float
from shoal.index.sparse import Bm25Context, SparseIndex, SparseRows
from shoal.schema import Batch, CollectionSchema, Column, DataType, FieldSchema, object_array
from shoal.text import minhash, multi
from shoal.text.analyzer import Analyzer, analyzer_for, build_analyzer, parse_params

# schema_pb2.FunctionType
FUNCTION_BM25 = 1
FUNCTION_TEXT_EMBEDDING = 2
FUNCTION_RERANK = 3
FUNCTION_MINHASH = 4

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
K1_RANGE = (1.2, 2.0)
B_RANGE = (0.0, 1.0)


def is_true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1")


def field_analyzer(field: FieldSchema) -> Analyzer:
    """The field's analyzer (a multi-analyzer field's `default` one)."""
    chooser = multi_analyzer(field)
    if chooser is not None:
        return chooser.named(None)
    return analyzer_for(field.type_params.get("analyzer_params"))


def multi_analyzer(field: FieldSchema, schema: CollectionSchema | None = None) -> multi.MultiAnalyzer | None:
    """The analyzers of a field with `multi_analyzer_params` (None: one analyzer). With `schema`
    its by_field is checked too (create_collection); later the stored schema is trusted."""
    raw = field.type_params.get("multi_analyzer_params")
    if raw is None:
        return None

    def kind(name: str) -> str | None:
        if schema is None:
            return "VARCHAR"
        f = schema.field(name)
        return None if f is None else f.dtype.name

    return multi.parse(raw, kind)


def bm25_pairs(schema: CollectionSchema) -> list[tuple[FieldSchema, FieldSchema]]:
    """(input VARCHAR, output sparse) field pairs of the schema's BM25 functions."""
    out = []
    for fn in schema.functions:
        if int(fn.get("type", 0)) != FUNCTION_BM25:
            continue
        src = schema.field(fn["input_field_names"][0])
        dst = schema.field(fn["output_field_names"][0])
        if src is not None and dst is not None:
            out.append((src, dst))
    return out


def bm25_input(schema: CollectionSchema, field: FieldSchema) -> FieldSchema | None:
    """The text field whose BM25 output `field` is (None: not a BM25 output)."""
    if not schema.functions:
        return None
    return next((src for src, dst in bm25_pairs(schema) if dst.name == field.name), None)


def function_outputs(schema: CollectionSchema) -> set[str]:
    return {n for fn in schema.functions for n in fn.get("output_field_names", [])}


# ---------------------------------------------------------------------------- create_collection


def check_functions(schema: CollectionSchema) -> None:
    """Milvus's rules for schema functions, checked at create_collection."""
    names: set[str] = set()
    used_outputs: set[str] = set()
    for fn in schema.functions:
        name = fn.get("name", "")
        if not name:
            raise invalid("function name cannot be empty")
        if name in names:
            raise invalid(f"duplicate function name: {name}")
        names.add(name)
        kind = int(fn.get("type", 0))
        inputs, outputs = fn.get("input_field_names", []), fn.get("output_field_names", [])
        for n in (*inputs, *outputs):
            if schema.field(n) is None:
                raise invalid(f"function input or output field not found: {n}")
        for n in outputs:
            if n in used_outputs:
                raise invalid(f"duplicate function output field: {n}")
            used_outputs.add(n)
        if kind == FUNCTION_BM25:
            _check_bm25(schema, inputs, outputs)
        elif kind == FUNCTION_TEXT_EMBEDDING:
            if len(inputs) != 1 or len(outputs) != 1:
                raise invalid("text embedding function needs one input and one output field")
        elif kind == FUNCTION_RERANK:
            raise invalid("rerank function can only be used in search, not in the collection schema")
        elif kind == FUNCTION_MINHASH:
            _check_minhash(schema, fn, inputs, outputs)
        else:
            raise invalid(f"unknown function type {kind}")
    for f in schema.fields:
        if f.dtype.is_string and "multi_analyzer_params" in f.type_params:
            if is_true(f.type_params.get("enable_match", "false")):
                raise invalid(f"multi analyzer now only support for bm25, but now field {f.name} enable match")
            if f.type_params.get("analyzer_params") not in (None, ""):
                raise invalid(f"field {f.name} analyzer params should be none if has multi analyzer params")
            multi_analyzer(f, schema)
            continue
        if f.dtype.is_string and is_true(f.type_params.get("enable_analyzer", "false")):
            build_analyzer(parse_params(f.type_params.get("analyzer_params")))
        if f.dtype.is_string and is_true(f.type_params.get("enable_match", "false")):
            if not is_true(f.type_params.get("enable_analyzer", "false")):
                # Milvus lets enable_match alone pick the standard analyzer
                build_analyzer(parse_params(f.type_params.get("analyzer_params")))


def _check_bm25(schema: CollectionSchema, inputs: list[str], outputs: list[str]) -> None:
    if len(inputs) != 1:
        raise invalid("BM25 function only supports one input field")
    if len(outputs) != 1:
        raise invalid("BM25 function only supports one output field")
    src, dst = schema.field(inputs[0]), schema.field(outputs[0])
    assert src is not None and dst is not None
    if src.dtype not in (DataType.VARCHAR, DataType.TEXT):
        raise invalid(f"BM25 function input field must be a VARCHAR or TEXT field, got {src.dtype.name}")
    if not is_true(src.type_params.get("enable_analyzer", "false")):
        raise invalid(f"BM25 function input field {src.name} must set enable_analyzer to true")
    if dst.dtype is not DataType.SPARSE_FLOAT_VECTOR:
        raise invalid(f"BM25 function output field must be a SPARSE_FLOAT_VECTOR field, got {dst.dtype.name}")


def _check_minhash(schema: CollectionSchema, fn: Mapping[str, Any], inputs: list[str], outputs: list[str]) -> None:
    if len(inputs) != 1:
        raise invalid(f"MinHash function should have exactly one input field, got {len(inputs)}")
    if len(outputs) != 1:
        raise invalid(f"MinHash function should have exactly one output field, got {len(outputs)}")
    src, dst = schema.field(inputs[0]), schema.field(outputs[0])
    assert src is not None and dst is not None
    if src.dtype not in (DataType.VARCHAR, DataType.TEXT):
        raise invalid(f"MinHash function input field {src.name} must be a VARCHAR field, got {src.dtype.name}")
    if dst.dtype is not DataType.BINARY_VECTOR:
        raise invalid(
            f"MinHash function output field {dst.name} must be a BinaryVector field, got {dst.dtype.name}"
        )
    if dst.nullable:
        raise invalid(f"MinHash function output field {dst.name} cannot be nullable")
    dim = int(dst.dim or 0)
    if dim % 32:
        raise invalid(f"MinHash function output field {dst.name}: dim {dim} should be a multiple of 32")
    p = minhash.parse_params(fn.get("params", {}), dim)
    if dim != 32 * p.num_hashes:
        raise invalid(
            f"MinHash function output field {dst.name}: dim {dim} does not match expected dim "
            f"{32 * p.num_hashes} (32 * num_hashes {p.num_hashes})"
        )


def minhash_function(schema: CollectionSchema, field: FieldSchema) -> Mapping[str, Any] | None:
    """The MinHash function whose output `field` is (None: not a MinHash output)."""
    for fn in schema.functions:
        if int(fn.get("type", 0)) == FUNCTION_MINHASH and fn.get("output_field_names", [None])[0] == field.name:
            return fn
    return None


def minhash_signatures(schema: CollectionSchema, fn: Mapping[str, Any], texts: list[Any]) -> np.ndarray:
    """Packed signatures of `texts` under the MinHash function `fn` (None: the empty set)."""
    src = schema.field(fn["input_field_names"][0])
    dst = schema.field(fn["output_field_names"][0])
    assert src is not None and dst is not None
    p = minhash.parse_params(fn.get("params", {}), dst.dim)
    # word level: the input field's analyzer (the standard one unless it names another), as Milvus
    return minhash.signatures(texts, p, field_analyzer(src).tokens)


# ---------------------------------------------------------------------------- insert


def fill_outputs(schema: CollectionSchema, given: Batch, out: Batch) -> None:
    """Refuse function outputs the client sent; compute the BM25 outputs from `out`'s text."""
    outputs = function_outputs(schema)
    for name in outputs:
        if name in given:
            raise invalid(f"attempt to insert function output field {name}: it is generated by its function")
    for fn in schema.functions:
        kind = int(fn.get("type", 0))
        if kind == FUNCTION_TEXT_EMBEDDING:
            raise unreachable_provider(fn)
    for fn in schema.functions:
        if int(fn.get("type", 0)) != FUNCTION_MINHASH:
            continue
        col = out.get(fn["input_field_names"][0])
        if col is None:  # partial upsert without the text: the output stays as stored
            continue
        ok = col.valid
        texts = [t if (ok is None or ok[i]) else None for i, t in enumerate(col.values.tolist())]
        out[fn["output_field_names"][0]] = Column(minhash_signatures(schema, fn, texts))
    for src, dst in bm25_pairs(schema):
        col = out.get(src.name)
        chooser = multi_analyzer(src)
        if chooser is not None and (col is None) != (chooser.by_field not in out):
            # a partial upsert of one of the two: the other is only in the stored row
            raise not_supported(
                f"a partial upsert of {src.name} or {chooser.by_field} without the other "
                f"({src.name} is analyzed by the analyzer {chooser.by_field} names): give both"
            )
        if col is None:  # partial upsert without the text: the output stays as stored
            continue
        ok = col.valid
        texts = [t if (ok is None or ok[i]) else None for i, t in enumerate(col.values.tolist())]
        if chooser is None:
            analyzers = [field_analyzer(src)] * len(texts)
        else:
            names = out[chooser.by_field]
            named = names.valid
            analyzers = [
                chooser.named(v if named is None or named[i] else None) for i, v in enumerate(names.values.tolist())
            ]
        rows = [a.term_counts(t) if t is not None else {} for a, t in zip(analyzers, texts, strict=True)]
        out[dst.name] = Column(object_array(rows))


def unreachable_provider(fn: Mapping[str, Any]) -> Exception:
    params = fn.get("params", {})
    provider = params.get("provider") or params.get("reranker") or "unknown"
    return not_supported(
        f"function {fn.get('name', '')}: the model provider {provider!r} cannot be reached from this Shoal node "
        "(no external model service is configured)"
    )


# ---------------------------------------------------------------------------- search


@dataclass
class Bm25Query:
    queries: list[dict[int, float]]
    context: Bm25Context


def bm25_params(index_params: Mapping[str, Any] | None) -> tuple[float, float]:
    flat = flatten_params(index_params or {})
    k1 = get_float(flat, "bm25_k1", DEFAULT_K1, *K1_RANGE)
    b = get_float(flat, "bm25_b", DEFAULT_B, *B_RANGE)
    assert k1 is not None and b is not None
    return k1, b


def _segment_stats(
    seg: Any, field: FieldSchema, terms: np.ndarray, live: np.ndarray | None
) -> tuple[int, float, np.ndarray]:
    """Live rows, their total length and per-term document counts in one segment's BM25 column."""
    n = seg.num_rows
    col = seg.columns.get(field.name)
    if n == 0 or col is None:
        return 0, 0.0, np.zeros(len(terms), np.int64)
    live = None if live is None else live[:n]
    index = seg.indexes.get(field.name)
    if isinstance(index, SparseIndex) and index.num_rows == n:
        lengths = index.doc_lengths()
        if live is None:
            return n, float(lengths.sum()), index.term_stats(terms)
        return int(np.count_nonzero(live)), float(lengths[live].sum()), index.term_stats(terms, live)
    rows = SparseRows.from_items(col.values[:n])
    hit = np.isin(rows.indices, terms)
    if live is not None:
        hit &= live[rows.row_ids()]
    lengths = rows.doc_lengths()
    df = np.bincount(np.searchsorted(terms, rows.indices[hit]), minlength=len(terms)).astype(np.int64)
    if live is None:
        return n, float(lengths.sum()), df
    return int(np.count_nonzero(live)), float(lengths[live].sum()), df


@dataclass
class Bm25Stats:
    """BM25's collection statistics for one search: live rows, their total length, and per
    query term the rows holding it. Share mode's proxy sums the query nodes' (`text_stats`)."""

    rows: int
    length: float
    df: dict[int, int]

    @staticmethod
    def total(parts: list[Bm25Stats]) -> Bm25Stats:
        df: dict[int, int] = {}
        for p in parts:
            for t, n in p.df.items():
                df[t] = df.get(t, 0) + n
        return Bm25Stats(sum(p.rows for p in parts), sum(p.length for p in parts), df)


def _query_counts(text_field: FieldSchema, field: FieldSchema, texts: list[Any],
                  analyzer_name: str | None) -> list[dict[int, float]]:
    if not all(isinstance(t, str) for t in texts):
        raise invalid(f"field {field.name} is the output of a BM25 function: search it with raw text")
    chooser = multi_analyzer(text_field)
    analyzer = field_analyzer(text_field) if chooser is None else chooser.named(analyzer_name)
    return [analyzer.term_counts(t) for t in texts]


def bm25_stats(
    text_field: FieldSchema,
    field: FieldSchema,
    texts: list[Any],
    segments: list[Any],
    live: list[np.ndarray | None],
    analyzer_name: str | None = None,
) -> Bm25Stats:
    """The statistics of `segments`' live rows (`live`: per segment, the rows visible to this
    read; None = all) for the terms of raw-text queries."""
    counts = _query_counts(text_field, field, texts, analyzer_name)
    terms = np.array(sorted({t for c in counts for t in c}), dtype=np.int64)
    total_rows, total_len = 0, 0.0
    df = np.zeros(len(terms), np.int64)
    for seg, seg_live in zip(segments, live, strict=True):
        n, length, seg_df = _segment_stats(seg, field, terms, seg_live)
        total_rows += n
        total_len += length
        df += seg_df
    return Bm25Stats(total_rows, total_len, dict(zip(terms.tolist(), df.tolist(), strict=True)))


def bm25_queries(
    text_field: FieldSchema,
    field: FieldSchema,
    texts: list[Any],
    segments: list[Any],
    live: list[np.ndarray | None],
    index_params: Any,
    analyzer_name: str | None = None,
    stats: Bm25Stats | None = None,
) -> Bm25Query:
    """Raw-text queries as idf-weighted term vectors, with the BM25 statistics of the
    collection's live rows (`live`: per segment, the rows visible to this read; None = all),
    or `stats` where given (share mode: the whole collection's, gathered by the proxy).
    `analyzer_name` picks the query's analyzer on a multi-analyzer field."""
    counts = _query_counts(text_field, field, texts, analyzer_name)
    if stats is None:
        stats = bm25_stats(text_field, field, texts, segments, live, analyzer_name)
    terms = np.array(sorted({t for c in counts for t in c}), dtype=np.int64)
    df = np.array([stats.df.get(t, 0) for t in terms.tolist()], dtype=np.int64)
    idf = np.log1p((stats.rows - df + 0.5) / (df + 0.5))
    weight = dict(zip(terms.tolist(), idf.tolist(), strict=True))
    k1, b = bm25_params(index_params)
    avgdl = stats.length / stats.rows if stats.rows else 1.0
    return Bm25Query([{t: c * weight[t] for t, c in q.items()} for q in counts], Bm25Context(k1, b, avgdl))
