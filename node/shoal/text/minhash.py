"""MinHash signatures of text: the MinHash schema function's VARCHAR -> BINARY_VECTOR.

A text becomes a set of shingles (`shingle_size` consecutive words or characters), each
shingle a 64-bit base hash (`hash_function`: "xxhash64" or "sha1"), and each of the
`num_hashes` permutations h_i(x) = (a_i * x + b_i) mod 2^64, keeping the top 32 bits, gives
the minimum over the shingles. The signature is the `num_hashes` uint32 minima, little
endian: a binary vector of dim 32 * num_hashes. Two texts' signatures agree at position i
with probability ~ the Jaccard similarity of their shingle sets (MHJACCARD).

The permutations come from `seed` through numpy's PCG64, and "xxhash64" is a keyed
BLAKE2b-64 here (no xxhash package): the Jaccard estimates follow Milvus's, the bits do not.

Neighbours: `engine.fulltext` validates the function and fills its output; `text.analyzer`
tokenizes word-level input when the field has an analyzer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoal.errors import invalid

DEFAULT_SHINGLE_SIZE = 3
DEFAULT_SEED = 1234
HASH_FUNCTIONS = ("xxhash64", "sha1")
TOKEN_LEVELS = ("word", "char")
EMPTY = np.uint32(0xFFFFFFFF)  # every minimum of an empty shingle set


@dataclass(frozen=True)
class MinHashParams:
    num_hashes: int
    shingle_size: int
    hash_function: str
    token_level: str
    seed: int


def _int_param(params: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        if default is None:
            raise invalid(f"MinHash function param {key} is required")
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise invalid(f"MinHash function param {key} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise invalid(f"MinHash function param {key} must be in [{lo}, {hi}], got {value}")
    return value


def parse_params(params: Mapping[str, Any], dim: int | None) -> MinHashParams:
    """Checked function params (num_hashes defaults to dim / 32)."""
    default_hashes = dim // 32 if dim and dim % 32 == 0 else None
    num_hashes = _int_param(params, "num_hashes", default_hashes, 1, 1 << 16)
    shingle = _int_param(params, "shingle_size", DEFAULT_SHINGLE_SIZE, 1, 1 << 16)
    seed = _int_param(params, "seed", DEFAULT_SEED, 0, (1 << 63) - 1)
    hash_fn = str(params.get("hash_function") or "xxhash64").lower()
    if hash_fn not in HASH_FUNCTIONS:
        raise invalid(f"unknown hash function: {params.get('hash_function')}, supported: {list(HASH_FUNCTIONS)}")
    level = str(params.get("token_level", "word")).lower()
    if level not in TOKEN_LEVELS:
        raise invalid(f"unknown token_level: {params.get('token_level')}, supported: {list(TOKEN_LEVELS)}")
    return MinHashParams(num_hashes, shingle, hash_fn, level, seed)


def shingles(text: str, p: MinHashParams, words: Callable[[str], Sequence[str]]) -> set[str]:
    """The shingle set of `text` (a text shorter than one shingle is one shingle)."""
    tokens: Sequence[str] = list(text) if p.token_level == "char" else words(text)
    sep = "" if p.token_level == "char" else " "
    if not tokens:
        return set()
    if len(tokens) <= p.shingle_size:
        return {sep.join(tokens)}
    return {sep.join(tokens[i : i + p.shingle_size]) for i in range(len(tokens) - p.shingle_size + 1)}


def _base_hash(shingle: str, hash_fn: str) -> int:
    data = shingle.encode("utf-8")
    if hash_fn == "sha1":
        return int.from_bytes(hashlib.sha1(data).digest()[:8], "little")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=b"shoal-minhash").digest(), "little")


def _permutations(p: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(p.seed)
    a = rng.integers(0, 1 << 63, p.num_hashes, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    b = rng.integers(0, 1 << 63, p.num_hashes, dtype=np.uint64)
    return a, b


def signatures(texts: Sequence[str | None], p: MinHashParams, words: Callable[[str], Sequence[str]]) -> np.ndarray:
    """Packed signatures (n, 4 * num_hashes) uint8 of `texts` (None: the empty set)."""
    a, b = _permutations(p)
    out = np.full((len(texts), p.num_hashes), EMPTY, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for i, text in enumerate(texts):
            shingle_set = shingles(text, p, words) if text else set()
            if not shingle_set:
                continue
            x = np.fromiter((_base_hash(s, p.hash_function) for s in shingle_set), np.uint64, len(shingle_set))
            mixed = (x[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)  # wraps mod 2^64
            out[i] = mixed.min(axis=0).astype(np.uint32)
    return out.astype("<u4").view(np.uint8).reshape(len(texts), 4 * p.num_hashes)


def mh_jaccard(queries: np.ndarray, block: np.ndarray) -> np.ndarray:
    """MHJACCARD (nq, m): the fraction of equal 32-bit minima between packed signatures."""
    q = np.ascontiguousarray(queries).view("<u4")
    r = np.ascontiguousarray(block).view("<u4")
    if q.shape[1] == 0:
        return np.zeros((len(q), len(r)), np.float32)
    same = np.zeros((len(q), len(r)), np.int64)
    for j in range(q.shape[1]):  # column by column: no (nq, m, hashes) scratch
        same += q[:, j, None] == r[None, :, j]
    return (same / q.shape[1]).astype(np.float32)
