"""servicekit as a Django app: under uWSGI, it publishes the service's public key before any worker serves."""

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class ServicekitConfig(AppConfig):
    name = "servicekit"

    def ready(self) -> None:
        from servicekit import identity, server

        # Only the server publishes: django-admin commands and unit tests have no socket volume.
        if server.uwsgi is not None:
            identity.publish_public_key(Path(settings.SOCKET_DIR))
