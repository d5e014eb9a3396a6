"""Stamps every log record with the service, the instance and the current request id.

A record factory rather than a handler filter, so every handler (and pytest's caplog) sees the same fields.
"""

import logging

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
