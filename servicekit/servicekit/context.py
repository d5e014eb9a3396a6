"""What is known of the request being served, readable anywhere (logs, outgoing calls) without passing it around:
its id, and the time by which its answer is due (its deadline)."""

import contextvars
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# time.monotonic() by which the gateway stops waiting for this request's answer; None outside a request.
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


def deadline_from(meta: dict, now: float) -> float | None:
    """The deadline of a request the gateway sent: its budget (X-Request-Budget, seconds) less the time it waited
    since the gateway took it (X-Request-Start, the gateway's clock in seconds); None without a budget."""
    try:
        budget = float(meta["HTTP_X_REQUEST_BUDGET"])
    except (KeyError, ValueError):
        return None
    try:
        waited = min(max(time.time() - float(meta.get("HTTP_X_REQUEST_START", "")), 0.0), budget)
    except ValueError:
        waited = 0.0
    return now + budget - waited


def seconds_left() -> float | None:
    deadline = deadline_var.get()
    return None if deadline is None else deadline - time.monotonic()
