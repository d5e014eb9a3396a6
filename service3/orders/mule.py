"""What the uWSGI mule of every orders replica does (service3/uwsgi.ini, orders/outbox_mule.py), on each pass:

1. gives up the orders a crash left pending past ORDER_PENDING_SECONDS, queueing their stock's release
   (orders.services.order_sweep_abandoned);
2. delivers the outbox's messages that are due (orders.outbox.deliver_due).

It sleeps OUTBOX_POLL_SECONDS after a pass that delivered nothing, and OUTBOX_GATHER_SECONDS after one that delivered
less than a full batch, so that the next call carries the events of that time together; a full batch is followed
at once, so a backlog drains at once. The sweep (a query) runs at most every SWEEP_SECONDS, not on every pass.
"""

import logging
import time

from django.conf import settings
from django.db import close_old_connections

from orders.outbox import DELIVERY_BATCH, deliver_due
from orders.services import order_sweep_abandoned

log = logging.getLogger(__name__)


# Orders are abandoned after ORDER_PENDING_SECONDS (tens of seconds): a sweep a second finds them soon enough.
SWEEP_SECONDS = 1.0


def work_one_pass(*, sweep: bool = True) -> int:
    """Both jobs once (the sweep unless told not to); returns how many messages were delivered."""
    if sweep:
        order_sweep_abandoned()
    return deliver_due()


def work_forever() -> None:
    log.info("the mule started: it sweeps abandoned orders and delivers the outbox")
    swept_at = -SWEEP_SECONDS
    while True:
        close_old_connections()  # a connection the database dropped, or one older than DB_CONN_MAX_AGE
        sweep = time.monotonic() - swept_at >= SWEEP_SECONDS
        try:
            delivered = work_one_pass(sweep=sweep)
            swept_at = time.monotonic() if sweep else swept_at
        except Exception:
            log.exception("the mule's pass failed; trying again")
            delivered = 0
        pause = pause_after(delivered)
        if pause:
            time.sleep(pause)


def pause_after(delivered: int) -> float:
    """Seconds to wait after a pass that delivered that many messages."""
    if not delivered:
        return settings.OUTBOX_POLL_SECONDS
    return settings.OUTBOX_GATHER_SECONDS if delivered < DELIVERY_BATCH else 0.0
