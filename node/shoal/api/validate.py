"""Request checks Milvus's proxy makes before anything reaches the engine.

Names, topk/nq/limit ranges. Messages follow Milvus's wording so users recognise them.
Pure functions raising `ShoalError` code 1100; used by the translators and the servicer.
"""

from __future__ import annotations

from shoal.errors import invalid
from shoal.schema import MAX_NAME_LENGTH, MAX_NQ, MAX_TOPK


def check_name(name: str, kind: str) -> None:
    """Milvus naming rule: ≤255 chars of letters, digits and `_`, not starting with a digit."""
    label = f"Invalid {kind} name: {name}."
    if not name:
        raise invalid(f"{label} {kind} name should not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{label} the length of a {kind} name must be less than {MAX_NAME_LENGTH} characters")
    first = name[0]
    if not (first == "_" or (first.isascii() and first.isalpha())):
        raise invalid(f"{label} the first character of a {kind} name must be an underscore or letter")
    for ch in name:
        if not (ch == "_" or (ch.isascii() and ch.isalnum())):
            raise invalid(f"{label} {kind} name can only contain numbers, letters and underscores")


def check_topk(topk: int) -> None:
    if not 1 <= topk <= MAX_TOPK:
        raise invalid(f"topk [{topk}] is invalid, it should be in range [1, {MAX_TOPK}]")


def check_nq(nq: int) -> None:
    if not 1 <= nq <= MAX_NQ:
        raise invalid(f"nq [{nq}] is invalid, it should be in range [1, {MAX_NQ}]")


def check_offset_limit(offset: int, limit: int) -> None:
    if offset < 0:
        raise invalid(f"offset [{offset}] is invalid, it should be non-negative")
    if offset + limit > MAX_TOPK:
        raise invalid(
            f"topk [{offset + limit}] is invalid, top k + offset should be in range [1, {MAX_TOPK}]"
        )
