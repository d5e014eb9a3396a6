"""Settings of service1 (accounts): the shared base from servicekit plus what is this service's own."""

from servicekit.settings import *  # noqa: F403
from servicekit.settings import INSTALLED_APPS, env

INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.contenttypes", "django.contrib.auth", "accounts"]

TOKEN_LIFETIME_SECONDS = env.int("TOKEN_LIFETIME_SECONDS", default=24 * 3600)
