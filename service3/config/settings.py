"""Settings of service3 (orders): the shared base from servicekit plus what is this service's own."""

from django.core.exceptions import ImproperlyConfigured

from servicekit.server import request_timeout_seconds
from servicekit.settings import *  # noqa: F403
from servicekit.settings import INSTALLED_APPS, env

SERVICE_API = "orders.api.api"

INSTALLED_APPS = [*INSTALLED_APPS, "orders"]

# The services orders depends on, by their names in the stack.
CATALOG_SERVICE = env.str("CATALOG_SERVICE", default="service2")
NOTIFICATIONS_SERVICE = env.str("NOTIFICATIONS_SERVICE", default="service4")

# Outbox delivery: how often the mule looks for due messages, and how retries back off.
OUTBOX_POLL_SECONDS = env.float("OUTBOX_POLL_SECONDS", default=0.5)
# After a pass that delivered part of a batch, the mule waits this long for more events to go in the next call:
# under load an order's event then shares a call (and a transaction at each end) with others.
OUTBOX_GATHER_SECONDS = env.float("OUTBOX_GATHER_SECONDS", default=0.05)
OUTBOX_BASE_BACKOFF_SECONDS = env.float("OUTBOX_BASE_BACKOFF_SECONDS", default=0.5)
OUTBOX_MAX_BACKOFF_SECONDS = env.float("OUTBOX_MAX_BACKOFF_SECONDS", default=2.0)
OUTBOX_CIRCUIT_RESET_SECONDS = env.float("OUTBOX_CIRCUIT_RESET_SECONDS", default=1.0)
# How long a deliverer holds a message it attempts (longer than one attempt with its retries can take).
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=30.0)
# An order still pending after this long was left by a crash: it is given up and its stock released. Longer than
# any request lives (uWSGI's harakiri, REQUEST_TIMEOUT_SECONDS: 30 s unless set), so a live request never loses its
# order. Only the mule sweeps, under uWSGI; outside it (django-admin, unit tests) no request is alive.
REQUEST_LIVES_AT_MOST = request_timeout_seconds()
ORDER_PENDING_SECONDS = env.float("ORDER_PENDING_SECONDS", default=(REQUEST_LIVES_AT_MOST or 30) + 5.0)
if REQUEST_LIVES_AT_MOST is not None and ORDER_PENDING_SECONDS <= REQUEST_LIVES_AT_MOST:
    raise ImproperlyConfigured(
        f"ORDER_PENDING_SECONDS={ORDER_PENDING_SECONDS:g}: a request lives up to {REQUEST_LIVES_AT_MOST} s here "
        "(REQUEST_TIMEOUT_SECONDS), so a live one would lose its order; choose more, or leave it unset"
    )

# Delivered messages are kept this many days (to look a delivery up), then deleted (uwsgi.ini: hourly).
OUTBOX_RETENTION_DAYS = env.float("OUTBOX_RETENTION_DAYS", default=7.0)

HEALTH_DETAILS = ["orders.outbox.outbox_health"]
