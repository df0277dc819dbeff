"""`python -m bench.compat_table` rewrites the table and the failures, and keeps the prose."""

from __future__ import annotations

from bench.compat_table import render

RESULTS = {
    "shoal": [{"feature": "search.basic", "outcome": "passed", "test": "f.py::test_a", "message": ""},
              {"feature": "fulltext.bm25", "outcome": "failed", "test": "f.py::test_b", "message": "boom | x"}],
    "milvus-lite": [{"feature": "search.basic", "outcome": "passed", "test": "f.py::test_a", "message": ""},
                    {"feature": "fulltext.bm25", "outcome": "passed", "test": "f.py::test_b", "message": ""}],
}


def test_regenerating_keeps_the_prose_and_replaces_table_and_failures() -> None:
    first = render(RESULTS, "3.0.2")
    assert "| fulltext.bm25 | **fail** (0/1) | pass |" in first
    assert "| **tests passed** | 1/2 | 2/2 |" in first
    assert "| shoal | `test_b` | boom / x |" in first
    edited = first.replace("## Milvus's own suite", "A paragraph written by hand.\n\n## Milvus's own suite")
    fixed = {**RESULTS, "shoal": [dict(r, outcome="passed") for r in RESULTS["shoal"]]}
    again = render(fixed, "3.0.2", edited)
    assert "A paragraph written by hand." in again
    assert "| fulltext.bm25 | pass | pass |" in again and "**fail**" not in again
    assert "`test_b`" not in again
    assert again.count("## Failures") == 1 and again.count("| feature |") == 1
