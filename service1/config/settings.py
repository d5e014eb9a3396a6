"""Settings of service1 (accounts): the shared base from servicekit plus what is this service's own."""

from servicekit.settings import *  # noqa: F403
