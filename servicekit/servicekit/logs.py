"""Stamps every log record with the service, the instance and the current request id.

A record factory rather than a handler filter, so every handler (and pytest's caplog) sees the same fields.
"""

import logging
from datetime import UTC, datetime

import pythonjsonlogger.json
from django.conf import settings

from servicekit.context import request_id_var

_default_factory = logging.getLogRecordFactory()


def record_with_context(*args, **kwargs) -> logging.LogRecord:
    record = _default_factory(*args, **kwargs)
    record.service = settings.SERVICE_NAME
    record.instance = settings.INSTANCE_NAME
    record.request_id = request_id_var.get()
    return record


class RequestContextFilter(logging.Filter):
    """Installs the record factory when Django configures logging (settings.LOGGING names this filter)."""

    def __init__(self, name: str = ""):
        super().__init__(name)
        logging.setLogRecordFactory(record_with_context)


def iso_utc(seconds: float) -> str:
    """The stack's one timestamp format, the gateway's too (nginx/nginx.conf): 2026-11-28T21:03:24.092Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """python-json-logger's formatter, with the stack's timestamps."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's)
        return iso_utc(record.created)
