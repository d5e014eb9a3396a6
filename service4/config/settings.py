"""Settings of service4 (notifications): the shared base from servicekit plus what is this service's own."""

from servicekit.settings import *  # noqa: F403
from servicekit.settings import INSTALLED_APPS

SERVICE_API = "notifications.api.api"

INSTALLED_APPS = [*INSTALLED_APPS, "notifications"]
