"""Function rerankers of a search: the decay reranker, with Milvus's parameters and formula.

A decay reranker scales each hit's score by how far a numeric field lies from `origin`:
`gauss`, `exp` or `linear` decay reaching `decay` at `offset + scale` from the origin. As in
Milvus, distances (L2, HAMMING, ...) are first turned into "greater is better" scores with
`1 - 2·atan(d)/π`; similarities (IP, COSINE, BM25) are used as they are. The reranker
reorders the `limit + offset` hits the search found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shoal.errors import invalid, not_supported
from shoal.schema import CollectionSchema, DataType

_NUMERIC = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.FLOAT, DataType.DOUBLE)
_FUNCTIONS = ("gauss", "exp", "linear")
_SIMILARITIES = ("IP", "COSINE", "BM25", "MHJACCARD")


@dataclass
class DecayRerank:
    field: str
    function: str
    origin: float
    scale: float
    offset: float = 0.0
    decay: float = 0.5

    def factors(self, values: np.ndarray) -> np.ndarray:
        distance = np.maximum(0.0, np.abs(values.astype(np.float64) - self.origin) - self.offset)
        if self.function == "gauss":
            return np.exp(distance**2 / (self.scale**2 / math.log(self.decay)))
        if self.function == "exp":
            return np.exp(math.log(self.decay) / self.scale * distance)
        return np.maximum(self.decay, 1 - (1 - self.decay) / self.scale * distance)

    def decayed(self, fused: list[float], values: np.ndarray, valid: np.ndarray | None) -> list[float]:
        """A hybrid search's fused "greater is better" scores scaled by the field's `values`
        (a null one scales to 0)."""
        factors = self.factors(np.asarray(values, dtype=np.float64)).astype(np.float32)
        if valid is not None:
            factors[~np.asarray(valid, bool)] = 0.0
        return [float(np.float32(s) * f) for s, f in zip(fused, factors.tolist(), strict=True)]

    def rescore(
        self, scores: np.ndarray, metric: str, values: np.ndarray, valid: np.ndarray | None = None
    ) -> np.ndarray:
        greater = to_greater(scores, metric)
        factors = self.factors(values).astype(np.float32)
        if valid is not None:
            factors[~valid] = 0.0  # a null input field ranks last
        return factors * greater


def to_greater(scores: np.ndarray, metric: str) -> np.ndarray:
    """Scores where greater is better: distances pass through 1 - 2·atan(d)/π, as in Milvus."""
    if metric.upper() in _SIMILARITIES:
        return scores.astype(np.float32)
    return (1.0 - 2 * np.arctan(scores.astype(np.float64)) / math.pi).astype(np.float32)


def _number(params: dict[str, str], key: str) -> float:
    try:
        return float(params[key])
    except ValueError:
        raise invalid(f"Param {key}:{params[key]} is not a number") from None


def parse_function_rerank(
    schema: CollectionSchema, functions: list[tuple[str, list[str], dict[str, str]]]
) -> DecayRerank:
    """The function score of a search request (name, input fields, params per function)."""
    if len(functions) != 1:
        raise not_supported("more than one rerank function in a search")
    _, inputs, raw = functions[0]
    params = {k.lower(): v for k, v in raw.items()}
    kind = params.get("reranker", "")
    if kind != "decay":
        if kind in ("model", "rrf", "weighted"):
            raise not_supported(f"the {kind} rerank function in search")
        raise invalid(f"Unsupported rerank function: [{kind}] , list of supported [decay,model,rrf,weighted]")
    if len(inputs) != 1:
        raise invalid(f"Decay function only supoorts single input, but gets [{inputs}] input")
    field = schema.field(inputs[0])
    if field is None:
        raise invalid(f"Function input field not found: {inputs[0]}")
    if field.dtype not in _NUMERIC:
        raise invalid(f"Decay rerank: unsupported input field type:{field.dtype.name}, only support numberic field")
    for key in ("origin", "scale"):
        if key not in params:
            raise invalid(f"Decay function lost param: {key}")
    spec = DecayRerank(
        field=field.name,
        function=params.get("function", ""),
        origin=_number(params, "origin"),
        scale=_number(params, "scale"),
        offset=_number(params, "offset") if "offset" in params else 0.0,
        decay=_number(params, "decay") if "decay" in params else 0.5,
    )
    if spec.scale <= 0:
        raise invalid(f"Decay function param: scale must > 0, but got {spec.scale:f}")
    if spec.offset < 0:
        raise invalid(f"Decay function param: offset must >= 0, but got {spec.offset:f}")
    if not 0 < spec.decay < 1:
        raise invalid(f"Decay function param: decay must 0 < decay < 1, but got {spec.decay:f}")
    if spec.function not in _FUNCTIONS:
        raise invalid(f"Invaild decay function: decay, only support [{','.join(_FUNCTIONS)}]")
    return spec
