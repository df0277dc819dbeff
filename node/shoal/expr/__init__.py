"""The Milvus filter language: text -> syntax tree -> typed tree -> numpy bool masks.

Public API (all the engine needs)::

    f = compile_filter('color in ["red", "blue"] and price > {p}', schema, {"p": 10})
    mask = f.evaluate(batch, n)       # np.ndarray of bool, shape (n,)
    f.referenced_fields               # {"color", "price"}
    f.primary_key_values("id")        # keys for `id in [...]` filters, else None

Modules: `lexer` -> `parser` (-> `syntax`) -> `binder` (-> `typed`) -> `evaluator`
(with `like`, `jsonvalues`); `compiled` ties them together. Imports only
`shoal.errors`, `shoal.schema` and numpy.
"""

from shoal.expr.compiled import CompiledFilter, compile_filter

__all__ = ["CompiledFilter", "compile_filter"]
