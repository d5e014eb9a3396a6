"""The request id of the request being served, readable anywhere (logs, outgoing calls) without passing it around."""

import contextvars

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
