"""`log_format: json`: one JSON object per line, with the request id of the call that logged it."""

from __future__ import annotations

import json
import logging

import pytest

from shoal.config import ConfigError, load_config
from shoal.logs import REQUEST_ID, JsonFormatter


def _line(message: str, exc: bool = False) -> dict:
    args = ("x",) if "%s" in message else ()
    record = logging.LogRecord("shoal.test", logging.INFO, __file__, 1, message, args, None)
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
    return json.loads(JsonFormatter().format(record))


def test_a_json_line_names_time_level_logger_and_message() -> None:
    line = _line("hello %s")
    assert line["message"] == "hello x" and line["level"] == "INFO" and line["logger"] == "shoal.test"
    assert line["time"].endswith("+00:00") and "request_id" not in line


def test_lines_logged_during_a_call_carry_its_request_id() -> None:
    token = REQUEST_ID.set("abc123")
    try:
        assert _line("in a call")["request_id"] == "abc123"
    finally:
        REQUEST_ID.reset(token)
    assert "request_id" not in _line("after it")


def test_an_exception_is_one_field_of_the_same_line() -> None:
    assert "ValueError: boom" in _line("failed", exc=True)["exception"]


def test_log_format_is_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_config(None, overrides={"log_format": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="log_format"):
        load_config(None, overrides={"log_format": "xml"})
