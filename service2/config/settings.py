"""Settings of service2 (catalog): the shared base from servicekit plus what is this service's own."""

from servicekit.settings import *  # noqa: F403
