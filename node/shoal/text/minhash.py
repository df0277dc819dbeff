"""MinHash signatures of text: the MinHash schema function's VARCHAR -> BINARY_VECTOR.

Bit for bit Milvus's: a text becomes shingles (`shingle_size` consecutive UTF-8 bytes at
char level, or `shingle_size` consecutive tokens of the input field's analyzer, joined with
no separator, at word level; a text shorter than one shingle is one shingle), each shingle a
32-bit base hash (`hash_function` xxhash64: the low 32 bits of XXH3-64; sha1: the first four
digest bytes, little endian). Permutation i maps x to ((a_i * x + b_i) mod 2^64) folded once
modulo the Mersenne prime 2^61 - 1, keeping the low 32 bits, with (a_i, b_i) drawn from a
64-bit Mersenne Twister seeded with `seed`. The signature is the `num_hashes` uint32 minima,
little endian: a binary vector of dim 32 * num_hashes (all 0xFFFFFFFF for an empty text).
Two texts' signatures agree at position i with probability ~ the Jaccard similarity of their
shingle sets (MHJACCARD).

Neighbours: `engine.fulltext` validates the function and fills its output; `text.analyzer`
tokenizes word-level input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import xxhash

from shoal.errors import invalid

DEFAULT_SHINGLE_SIZE = 3
DEFAULT_SEED = 1234
HASH_FUNCTIONS = {"xxhash64": "xxhash64", "xxhash": "xxhash64", "sha1": "sha1"}
TOKEN_LEVELS = {"word": "word", "char": "char", "character": "char"}
EMPTY = np.uint32(0xFFFFFFFF)  # every minimum of an empty shingle set
MERSENNE_61 = (1 << 61) - 1
_MASK64 = (1 << 64) - 1


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
    seed = _int_param(params, "seed", DEFAULT_SEED, -(1 << 63), (1 << 63) - 1)
    hash_fn = HASH_FUNCTIONS.get(str(params.get("hash_function") or "xxhash64").lower())
    if hash_fn is None:
        raise invalid(f"unknown hash function: {params.get('hash_function')} (expected 'xxhash64' or 'sha1')")
    level = TOKEN_LEVELS.get(str(params.get("token_level", "word")).lower())
    if level is None:
        raise invalid(f"unknown token_level: {params.get('token_level')} (expected 'char' or 'word')")
    return MinHashParams(num_hashes, shingle, hash_fn, level, seed)


def shingles(text: str, p: MinHashParams, words: Callable[[str], Sequence[str]]) -> list[bytes]:
    """The shingles of `text` (a text shorter than one shingle is one shingle)."""
    if p.token_level == "char":
        data = text.encode("utf-8")
        if not data:
            return []
        if len(data) < p.shingle_size:
            return [data]
        return [data[i : i + p.shingle_size] for i in range(len(data) - p.shingle_size + 1)]
    tokens = [t.encode("utf-8") for t in words(text)]
    if not tokens:
        return []
    if len(tokens) < p.shingle_size:
        return [b"".join(tokens)]
    return [b"".join(tokens[i : i + p.shingle_size]) for i in range(len(tokens) - p.shingle_size + 1)]


def _base_hash(shingle: bytes, hash_fn: str) -> int:
    if hash_fn == "sha1":
        return int.from_bytes(hashlib.sha1(shingle).digest()[:4], "little")
    return xxhash.xxh3_64_intdigest(shingle) & 0xFFFFFFFF


def mt19937_64(seed: int, count: int) -> list[int]:
    """The first `count` outputs of C++'s std::mt19937_64 seeded with `seed`."""
    n, m = 312, 156
    upper, lower = 0xFFFFFFFF80000000, 0x7FFFFFFF
    state = [seed & _MASK64]
    for i in range(1, n):
        prev = state[-1]
        state.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & _MASK64)
    out: list[int] = []
    index = n
    while len(out) < count:
        if index >= n:
            for i in range(n):
                x = (state[i] & upper) | (state[(i + 1) % n] & lower)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                state[i] = state[(i + m) % n] ^ xa
            index = 0
        y = state[index]
        index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        out.append(y)
    return out


@lru_cache(maxsize=64)
def _permutations(num_hashes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    raw = mt19937_64(seed, 2 * num_hashes)
    a = np.array([r % (MERSENNE_61 - 1) + 1 for r in raw[0::2]], dtype=np.uint64)
    b = np.array([r % MERSENNE_61 for r in raw[1::2]], dtype=np.uint64)
    return a, b


def signatures(texts: Sequence[str | None], p: MinHashParams, words: Callable[[str], Sequence[str]]) -> np.ndarray:
    """Packed signatures (n, 4 * num_hashes) uint8 of `texts` (None: the empty set)."""
    a, b = _permutations(p.num_hashes, p.seed)
    prime = np.uint64(MERSENNE_61)
    out = np.full((len(texts), p.num_hashes), EMPTY, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for i, text in enumerate(texts):
            pieces = shingles(text, p, words) if text else []
            if not pieces:
                continue
            x = np.fromiter((_base_hash(s, p.hash_function) for s in pieces), np.uint64, len(pieces))
            mixed = x[:, None] * a[None, :] + b[None, :]  # wraps mod 2^64, as in C++
            mixed = (mixed & prime) + (mixed >> np.uint64(61))  # one Mersenne fold
            mixed = np.where(mixed >= prime, mixed - prime, mixed)
            out[i] = (mixed & np.uint64(0xFFFFFFFF)).astype(np.uint32).min(axis=0)
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
