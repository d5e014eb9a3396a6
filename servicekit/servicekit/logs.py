"""Stamps every log record with the service, the instance and the current request id."""

import logging

from django.conf import settings

from servicekit.context import request_id_var


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.service = settings.SERVICE_NAME
        record.instance = settings.INSTANCE_NAME
        record.request_id = request_id_var.get()
        return True
