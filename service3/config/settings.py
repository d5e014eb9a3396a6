"""Settings of service3 (orders): the shared base from servicekit plus what is this service's own."""

from servicekit.settings import *  # noqa: F403
