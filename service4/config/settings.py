"""Settings of service4 (notifications): the shared base from servicekit plus what is this service's own."""

from servicekit.settings import *  # noqa: F403
from servicekit.settings import INSTALLED_APPS, env

SERVICE_API = "notifications.api.api"

INSTALLED_APPS = [*INSTALLED_APPS, "notifications"]

# A notification stays in its user's feed this many days after it arrived, then is deleted (uwsgi.ini: hourly).
NOTIFICATION_RETENTION_DAYS = env.float("NOTIFICATION_RETENTION_DAYS", default=90.0)
