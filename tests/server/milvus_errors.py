"""The one assertion the Milvus-behaviour tests share: a call fails with Milvus's code and wording."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pymilvus import MilvusException


def fails(call: Callable[[], object], code: int, text: str = "") -> str:
    """Run `call`, expect a MilvusException with `code` whose message contains `text`; return the message."""
    with pytest.raises(MilvusException) as err:
        call()
    assert err.value.code == code, err.value
    assert text in err.value.message, err.value.message
    return err.value.message
