"""Function rerankers of a search: the decay reranker, with Milvus's parameters and formula.

A decay reranker scales each hit's score by how far a numeric field lies from `origin`:
`gauss`, `exp` or `linear` decay reaching `decay` at `offset + scale` from the origin. As in
Milvus, distances (L2, HAMMING, ...) are first turned into "greater is better" scores with
`1 - 2·atan(d)/π`; similarities (IP, COSINE, BM25) are used as they are.

In a plain search a function ranker (decay, RRF, weighted) sees only the page: as Milvus's
proxy, the search's own score picks the hits at `offset .. offset + limit` first, and the
ranker then rescores and reorders those (`rerank_page`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoal.engine.rerank_model import input_field, refuse, refuse_model_ranker
from shoal.errors import invalid, not_supported
from shoal.schema import CollectionSchema, DataType

_NUMERIC = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.FLOAT, DataType.DOUBLE)
# the other types Milvus's rerank input converter carries (its builder then asks for a number)
_CONVERTED = (DataType.BOOL, DataType.STRING, DataType.VARCHAR, DataType.TEXT, DataType.TIMESTAMPTZ)
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


@dataclass
class FusionRerank:
    """An RRF or weighted ranker given as a rerank function: the hybrid search's fusion
    (`engine.requests.RerankSpec`) with the params of Milvus's legacy `rank_params`; in a
    single search it rescores one result list."""

    strategy: str  # "rrf" | "weighted"
    params: dict[str, Any]

    def rescore(self, scores: np.ndarray, metric: str) -> np.ndarray:
        """A single search's page, best first, rescored in place of their order (RRF ranks
        count from the page's first hit)."""
        k, weights, norm = fusion_params(self.strategy, self.params, 1)
        if self.strategy == "rrf":
            return (1.0 / (k + np.arange(len(scores)) + 1)).astype(np.float32)
        base = [normalize(float(s), metric) for s in scores.tolist()] if norm else scores.astype(np.float64)
        return (float(weights[0]) * np.asarray(base, dtype=np.float64)).astype(np.float32)


def rerank_field(rerank: DecayRerank | FusionRerank) -> str | None:
    """The field a plain search's function ranker reads, if any."""
    return rerank.field if isinstance(rerank, DecayRerank) else None


def rerank_page(
    rerank: DecayRerank | FusionRerank, scores: np.ndarray, metric: str,
    values: np.ndarray | None = None, valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The order and new scores of one query's page (the hits left after the offset, best
    first by the search's score; `values`/`valid` are the ranker's field for them)."""
    if isinstance(rerank, FusionRerank):
        return np.arange(len(scores)), rerank.rescore(scores, metric)
    assert values is not None
    rescored = rerank.rescore(scores, metric, np.asarray(values, dtype=np.float64), valid)
    order = np.argsort(-rescored, kind="stable")
    return order, rescored[order]


def fusion_params(strategy: str, params: dict[str, Any], requests: int) -> tuple[float, list[float], bool]:
    """RRF `k`, the weights and `norm_score` of a rank fusion over `requests` searches, checked
    with Milvus's `rank_params` texts (`norm_score` defaults to on, as Milvus's legacy ranker)."""
    weights = params.get("weights") or []
    if strategy == "weighted" and not isinstance(weights, list):
        raise invalid("The weights param should be an array")
    if strategy == "weighted" and any(
        isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1 for w in weights
    ):
        raise invalid(f"rank param weight should be in range [0, 1], got {weights}")
    if strategy == "weighted" and len(weights) != requests:
        raise invalid(
            f"the length of weights param mismatch with ann search requests: "
            f"invalid parameter[expected={requests}][actual={len(weights)}]"
        )
    raw_k = params.get("k", 60)
    if isinstance(raw_k, bool) or not isinstance(raw_k, (int, float)):
        raise invalid(f"The type of rank param k should be float, got {raw_k!r}")
    if strategy == "rrf" and not 0 < float(raw_k) < 16384:
        raise invalid("The rank params k should be in range (0, 16384)")
    return float(raw_k), weights, bool(params.get("norm_score", True))


def normalize(score: float, metric: str) -> float:
    """A score mapped into [0, 1], greater is better, as Milvus's weighted ranker normalizes."""
    metric = metric.upper()
    if metric == "COSINE":
        return (1.0 + score) / 2.0
    if metric == "IP":
        return 0.5 + math.atan(score) / math.pi
    if metric == "BM25":
        return 2.0 * math.atan(score) / math.pi
    if metric == "MHJACCARD":  # already a similarity in [0, 1]
        return score
    return 1.0 - 2.0 * math.atan(score) / math.pi


def to_greater(scores: np.ndarray, metric: str) -> np.ndarray:
    """Scores where greater is better: distances pass through 1 - 2·atan(d)/π, as in Milvus."""
    if metric.upper() in _SIMILARITIES:
        return scores.astype(np.float32)
    return (1.0 - 2 * np.arctan(scores.astype(np.float64)) / math.pi).astype(np.float32)


def _number(params: dict[str, str], key: str) -> float:
    try:
        return float(params[key])
    except ValueError:
        raise refuse(f"Param {key}:{params[key]} is not a number") from None


def parse_function_rerank(
    schema: CollectionSchema, functions: list[tuple[str, list[str], dict[str, str]]], nq: int
) -> DecayRerank | FusionRerank:
    """The function score of a search request (name, input fields, params per function) for
    `nq` query vectors.

    Milvus's rerank layer answers its refusals with code 65535, naming the reranker first: a
    missing or empty `reranker` param, then an unknown one, then the reranker's own params.
    """
    if len(functions) != 1:
        raise not_supported("more than one rerank function in a search")
    name, inputs, raw = functions[0]
    params = {k.lower(): v for k, v in raw.items()}
    kind = params.get("reranker", "").lower()
    if not kind:
        raise refuse("rerank_builder: reranker name not specified")
    if kind == "model":
        refuse_model_ranker(schema, name, inputs, raw, nq)
    if kind in ("rrf", "weighted"):
        return _fusion(kind, params)
    if kind != "decay":
        raise refuse(f"rerank_builder: unsupported reranker {kind}")
    if len(inputs) != 1:
        raise refuse(f"Decay function only supoorts single input, but gets [{inputs}] input")
    field = input_field(schema, inputs[0])
    if field.dtype not in _NUMERIC + _CONVERTED:
        raise refuse(f"unsupported field type: {field.dtype.milvus_name}")
    if field.dtype not in _NUMERIC:
        raise refuse(f"rerank_builder: decay input field {field.name} must be numeric, got {field.dtype.milvus_name}")
    for key in ("origin", "scale"):
        if key not in params:
            raise refuse(f"Decay function lost param: {key}")
    spec = DecayRerank(
        field=field.name,
        function=params.get("function", ""),
        origin=_number(params, "origin"),
        scale=_number(params, "scale"),
        offset=_number(params, "offset") if "offset" in params else 0.0,
        decay=_number(params, "decay") if "decay" in params else 0.5,
    )
    if spec.scale <= 0:
        raise refuse(f"Decay function param: scale must > 0, but got {spec.scale:f}")
    if spec.offset < 0:
        raise refuse(f"Decay function param: offset must >= 0, but got {spec.offset:f}")
    if not 0 < spec.decay < 1:
        raise refuse(f"Decay function param: decay must 0 < decay < 1, but got {spec.decay:f}")
    if spec.function not in _FUNCTIONS:
        raise refuse(f"Invaild decay function: decay, only support [{','.join(_FUNCTIONS)}]")
    return spec


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _fusion(kind: str, params: dict[str, str]) -> FusionRerank:
    """The params of an RRF (`k`) or weighted (`weights`, `norm_score`, off by default) ranker;
    the hybrid search checks their ranges as it does for `rank_params`."""
    if kind == "rrf":
        if "k" not in params:
            return FusionRerank("rrf", {})
        try:
            return FusionRerank("rrf", {"k": float(params["k"])})
        except ValueError:
            raise refuse(f"{params['k']} is not a number") from None
    if "weights" not in params:
        raise refuse("rerank_builder: weighted reranker requires weights parameter")
    try:
        weights = json.loads(params["weights"])
    except json.JSONDecodeError as err:
        raise refuse(f"failed to parse weights: {err.msg}") from None
    if not isinstance(weights, list) or not weights:
        raise refuse("rerank_builder: weighted reranker requires weights parameter")
    norm = params.get("norm_score", "false")
    if norm not in _GO_BOOLS:
        raise refuse(f'failed to parse norm_score: strconv.ParseBool: parsing "{norm}": invalid syntax')
    return FusionRerank("weighted", {"weights": weights, "norm_score": _GO_BOOLS[norm]})
