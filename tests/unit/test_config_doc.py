"""docs/configuration.md names every setting `shoal run` reads, with its real default."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from shoal.config import Config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `(\w+)` \| [^|]* \| ([^|]*) \|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip().strip("`")
    return rows


def test_every_setting_is_documented_with_its_default() -> None:
    rows = _rows()
    config = Config()
    assert set(rows) == {f.name for f in fields(Config)}
    for f in fields(Config):
        value = getattr(config, f.name)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            assert rows[f.name] == str(value), f.name
    assert rows["data_dir"] == "./data" and str(config.data_dir) == "data"
